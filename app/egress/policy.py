"""Which destinations a browser may reach (`BCTRL_BROWSER_EGRESS`).

Always refused: the control plane itself (the API's port, its database, Redis, this proxy and the
browsers' own debugging ports, on any address of this host: those of the browsers the driver reports,
and any port of this host a Chromium with a debugging port listens on, found in /proc, so that browsers
of another server on this host, adopted ones and containers on host networking are covered too), link-local addresses (169.254/16,
fe80::/10, which hold cloud metadata services), well-known metadata addresses, multicast and the
unspecified address. `private` (default) lets browsers reach private ranges (RFC 1918, ULA, CGNAT,
loopback other than the control plane: intranet sites and test pages on 127.0.0.1); `public` refuses
every address that is not globally routable.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MODES = ("private", "public")
# Metadata services outside link-local: AWS over IPv6, Alibaba Cloud (in CGNAT space), Oracle's alias.
METADATA = {ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192")}
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
CGNAT = ipaddress.ip_network("100.64.0.0/10")
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # connecting to 0.0.0.0 reaches this host on Linux


def normalize(ip: Address) -> Address:
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            return mapped
    return ip


def _bindable(ip: Address) -> bool:
    """Whether `ip` is an address of this host (binding to it succeeds only then)."""
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((str(ip), 0))
        return True
    except OSError:
        return False


def _listening_inodes(port: int) -> frozenset[str]:
    """Inodes of the sockets listening on `port` (any address) in this network namespace."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return frozenset(found)


def _owned_by_devtools(inodes: frozenset[str]) -> bool:
    """Whether a process holding one of these sockets is a browser with a debugging port."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") not in wanted:
                    continue
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    return b"--remote-debugging-port" in f.read()
            except OSError:
                continue
    return False


def endpoint_of_url(url: str | None, default_port: int) -> tuple[str, int] | None:
    """(host, port) of a database or Redis URL; None for URLs without a network address (SQLite)."""
    if not url:
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port or default_port
    except ValueError:
        return None
    return parts.hostname, port


class EgressPolicy:
    def __init__(
        self,
        mode: str,
        control_plane: Iterable[tuple[str, int]] = (),
        local_ports: Callable[[], Iterable[int]] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"BCTRL_BROWSER_EGRESS must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        # Ports of this host's control plane (the API, a local database or Redis, this proxy).
        self.local_blocked: set[int] = set()
        # Remote control-plane endpoints (a database on another host), by resolved address.
        self.remote_blocked: set[tuple[Address, int]] = set()
        self.local_ports = local_ports or (lambda: ())
        self._local_cache: dict[Address, bool] = {}
        # Listening sockets (by inode) found to be, or not to be, a browser's debugging port.
        self._devtools_cache: dict[frozenset[str], bool] = {}
        for host, port in control_plane:
            self.add_endpoint(host, port)

    def add_endpoint(self, host: str, port: int) -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            infos = []
        addresses = {normalize(ipaddress.ip_address(info[4][0].split("%")[0])) for info in infos}
        if not addresses or any(self.is_local(a) for a in addresses) or host in ("0.0.0.0", "::", ""):
            self.local_blocked.add(port)
        for address in addresses:
            self.remote_blocked.add((address, port))

    def is_local(self, ip: Address) -> bool:
        ip = normalize(ip)
        if ip.is_loopback or ip.is_unspecified or ip in _THIS_NETWORK:
            return True
        known = self._local_cache.get(ip)
        if known is None:
            if len(self._local_cache) > 4096:
                self._local_cache.clear()
            known = self._local_cache[ip] = _bindable(ip)
        return known

    def refusal(self, ip: Address, port: int) -> str | None:
        """Why a connection to ip:port is refused, or None when it is allowed."""
        ip = normalize(ip)
        if ip in METADATA or any(ip in net for net in LINK_LOCAL):
            return "link-local and metadata addresses are not reachable from browsers"
        if (
            ip.is_multicast
            or ip.is_unspecified
            or ip in _THIS_NETWORK
            or (ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255"))
        ):
            return "this address is not a destination"
        if (ip, port) in self.remote_blocked:
            return "the control plane's own services are not reachable from browsers"
        local = self.is_local(ip)
        if local and (port in self.local_blocked or port in set(self.local_ports())):
            return "the control plane's own services are not reachable from browsers"
        if self.mode == "public" and (local or not ip.is_global or ip in CGNAT):
            return "private and loopback addresses are not reachable from browsers (BCTRL_BROWSER_EGRESS=public)"
        return None

    def devtools_listener(self, ip: Address, port: int) -> bool:
        """Whether ip:port is an address of this host where a browser's debugging port listens (reads
        /proc: call it off the event loop). Known results are kept per listening socket."""
        if not self.is_local(ip):
            return False
        inodes = _listening_inodes(port)
        if not inodes:
            return False
        known = self._devtools_cache.get(inodes)
        if known is None:
            if len(self._devtools_cache) > 4096:
                self._devtools_cache.clear()
            known = self._devtools_cache[inodes] = _owned_by_devtools(inodes)
        return known
