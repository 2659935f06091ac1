"""The egress policy's decisions, and the runtime image's policy file kept equal to the code's."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from pathlib import Path

from app.drivers.local import QUIET_FLAGS
from app.drivers.policy import STATIC
from app.egress.policy import EgressPolicy
from app.egress.proxy import EgressProxy
from tests.support import free_port

ip = ipaddress.ip_address


def test_runtime_image_policy_matches_the_code():
    baked = Path(__file__).parents[2] / "runtime_images" / "chromium" / "policies" / "bctrl.json"
    assert json.loads(baked.read_text()) == STATIC


def test_runtime_image_starts_chromium_with_the_local_drivers_quiet_flags():
    script = (Path(__file__).parents[2] / "runtime_images" / "chromium" / "start-chromium.sh").read_text()
    words = set(script.replace("\\\n", " ").split())
    assert [flag for flag in QUIET_FLAGS if flag not in words] == []


def test_private_mode_refuses_the_control_plane_and_metadata_only():
    policy = EgressPolicy("private", [("127.0.0.1", 8787), ("127.0.0.1", 5432), ("db.invalid", 6379)])
    for address, port in (
        ("127.0.0.1", 8787),
        ("127.0.0.2", 5432),
        ("::1", 8787),
        ("::ffff:127.0.0.1", 8787),
        ("0.0.0.0", 80),
        ("169.254.169.254", 80),
        ("fe80::1", 80),
        ("fd00:ec2::254", 80),
        ("100.100.100.200", 80),
        ("224.0.0.1", 80),
    ):
        assert policy.refusal(ip(address), port), (address, port)
    for address, port in (
        ("127.0.0.1", 8080),
        ("10.0.0.5", 5432),
        ("192.168.1.1", 80),
        ("100.64.0.1", 80),
        ("fd12::1", 443),
        ("93.184.216.34", 443),
    ):
        assert policy.refusal(ip(address), port) is None, (address, port)


def test_public_mode_refuses_every_non_global_address():
    policy = EgressPolicy("public", [("127.0.0.1", 8787)])
    for address in ("127.0.0.1", "10.0.0.5", "172.16.0.1", "192.168.1.1", "100.64.0.1", "fd12::1", "198.18.0.1"):
        assert policy.refusal(ip(address), 443), address
    assert policy.refusal(ip("93.184.216.34"), 443) is None


async def test_the_proxy_also_answers_on_an_adopted_browsers_earlier_port():
    # A browser adopted after a restart keeps the proxy address it was started with: the new proxy
    # must answer there with the same policy, and refuse that port as a destination too.
    proxy = EgressProxy(EgressPolicy("private"), "127.0.0.1", 0)
    await proxy.start()
    earlier = free_port()
    try:
        await proxy.also_serve(f"http://127.0.0.1:{earlier}")
        assert earlier in proxy.policy.local_blocked
        for port in (proxy.port, earlier):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.close()
            assert head.startswith(b"HTTP/1.1 403") and b"X-Bctrl-Egress: refused" in head, head
    finally:
        await proxy.close()
