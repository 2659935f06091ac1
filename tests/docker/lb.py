"""nginx in front of N API replicas, as a deployment behind a load balancer runs them (issue 18).

`load_balancer(servers, directory)` starts Debian's nginx (scripts/ensure-nginx.sh installs it) as a
process of its own, config, logs, pid file and temp paths all under `directory`, listening on a free
loopback port, and yields a `Balancer` (its base URL, which replica served which request). On exit nginx
is stopped and waited for: nothing is left running.

The proxy settings (websocket upgrades, no buffering for SSE, hour-long read timeouts, the body limit)
are deploy/nginx/bctrl.conf, included as a deployment's balancer includes it; this module adds the
upstreams (round robin, keepalive, so consecutive requests of one client land on different replicas; a
refused connection is tried on the next replica, as nginx does by default) and the access log that says
which replica served each request.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.support import free_port

# One line per request: the replica that answered (`$upstream_addr`, several when nginx moved on
# after a refused connection), the status, the method and path (no query: it can carry tokens).
LOG_FORMAT = "$upstream_addr $status $request_method $uri"
PROXY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "bctrl.conf"

CONFIG = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;
events {{ worker_connections 4096; }}
http {{
    log_format replicas '{log_format}';
    access_log {dir}/access.log replicas;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    # The proxy settings a deployment ships (deploy/nginx/bctrl.conf): the tier runs what users run.
    include {proxy_conf};

    upstream replicas {{
{servers}
        keepalive 32;
    }}

    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://replicas;
        }}
    }}
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not found:
        raise RuntimeError("nginx is missing: run scripts/ensure-nginx.sh (or apt-get install nginx)")
    return found


def address_of(url: str) -> str:
    """host:port of a replica's base URL, as nginx writes it in `$upstream_addr`."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


@dataclass
class Balancer:
    url: str
    directory: Path
    process: subprocess.Popen

    @property
    def address(self) -> str:
        return address_of(self.url)

    def served(self) -> collections.Counter[str]:
        """Requests answered per replica (host:port) so far; a request nginx moved on from a dead replica
        counts for the one that answered it."""
        counts: collections.Counter[str] = collections.Counter()
        log = self.directory / "access.log"
        if not log.exists():
            return counts
        for line in log.read_text(errors="replace").splitlines():
            upstreams = line.split(" ", 1)[0].split(", ")
            if upstreams[-1] and upstreams[-1] != "-":
                counts[upstreams[-1]] += 1
        return counts

    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def load_balancer(servers: Sequence, directory: Path, port: int | None = None) -> Iterator[Balancer]:
    """nginx on 127.0.0.1:`port` (a free one if None) balancing over `servers` (anything with a `.url`,
    such as tests/e2e's LiveServer, or base URLs). Choose `port` ahead when the replicas must know the
    balancer's URL before they start (BCTRL_PUBLIC_URL)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    upstreams = "\n".join(
        f"        server {address_of(getattr(s, 'url', s))} max_fails=1 fail_timeout=2s;" for s in servers
    )
    config = directory / "nginx.conf"
    config.write_text(
        CONFIG.format(dir=directory, port=port, servers=upstreams, proxy_conf=PROXY_CONF, log_format=LOG_FORMAT)
    )
    binary = nginx_binary()
    # -e: errors before the config is read go to our log too, not /var/log/nginx; -p: no system prefix.
    command = [binary, "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(config)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True)
    if checked.returncode != 0:
        raise RuntimeError(f"nginx refused its config:\n{checked.stderr}")
    process = subprocess.Popen(
        [*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=open(directory / "stderr.log", "wb")
    )
    balancer = Balancer(url=f"http://127.0.0.1:{port}", directory=directory, process=process)
    try:
        _wait_listening(balancer)
        yield balancer
    finally:
        stop(balancer)


def _wait_listening(balancer: Balancer, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if balancer.process.poll() is not None:
            raise RuntimeError(f"nginx exited at start:\n{balancer.error_log()}")
        try:
            httpx.get(f"{balancer.url}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen within {timeout} s:\n{balancer.error_log()}")


def stop(balancer: Balancer) -> None:
    """SIGTERM (nginx's fast shutdown: open SSE streams and sockets are closed, not waited for), then wait;
    SIGKILL to the master and its workers if it hangs."""
    process = balancer.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            for pid in _children(process.pid):
                _kill(pid)
            process.kill()
            process.wait()


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
