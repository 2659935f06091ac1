"""The guard itself: a connection or name lookup off this machine is refused (and would fail the test)."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.ai.conftest import OffMachine


def test_off_machine_connections_and_lookups_are_refused(no_traffic_off_this_machine):
    with socket.socket() as sock, pytest.raises(OffMachine):
        sock.connect(("192.0.2.1", 443))
    with pytest.raises(httpx.ConnectError):
        httpx.get("https://api.openai.com/v1/models", timeout=2)
    assert no_traffic_off_this_machine == ["192.0.2.1", "api.openai.com"]
    no_traffic_off_this_machine.clear()  # seen: this test meant to try
