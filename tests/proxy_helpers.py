"""Small proxies and an address echo for tests, each on 127.0.0.1 in a thread of its own.

- `TestProxy(kind="http")`: an HTTP forward proxy (CONNECT tunnels and plain-HTTP absolute-form
  requests); `kind="socks5"`: a SOCKS5 proxy (CONNECT). With `username`/`password` it demands them
  (Basic Proxy-Authorization, 407 otherwise; SOCKS5 username/password, RFC 1929). It connects onward
  from `source` (127.0.0.2 by default), so a server behind it sees that address, not 127.0.0.1, and it
  records every destination it was asked for (`seen`) and every refused sign-in (`refused`).
- `EchoServer`: answers any GET with `{"ip": <the client's address>}`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import json
import threading


class _Threaded:
    """An asyncio server on a loop in a daemon thread."""

    def _start(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def main() -> None:
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(main(), self.loop).result(10)
        ready.wait(10)

    def close(self) -> None:
        if not self.loop.is_running():
            return

        async def stop() -> None:
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    async def _handle(self, reader, writer) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class EchoServer(_Threaded):
    def __init__(self) -> None:
        self._start()
        self.url = f"http://127.0.0.1:{self.port}/ip"

    async def _handle(self, reader, writer) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            body = json.dumps({"ip": writer.get_extra_info("peername")[0]}).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class TestProxy(_Threaded):
    __test__ = False  # not a pytest class

    def __init__(
        self, kind: str = "http", username: str | None = None, password: str | None = None, source: str = "127.0.0.2"
    ) -> None:
        self.kind, self.username, self.password, self.source = kind, username, password, source
        self.seen: list[str] = []  # "host:port" of each connection asked for (plain HTTP: the URL)
        self.refused: list[str] = []  # the usernames (or "-") of refused sign-ins
        self._start()
        self.url = f"{kind}://127.0.0.1:{self.port}"

    def url_with(self, username: str, password: str) -> str:
        return f"{self.kind}://{username}:{password}@127.0.0.1:{self.port}"

    async def _handle(self, reader, writer) -> None:
        try:
            if self.kind == "socks5":
                await self._socks5(reader, writer)
            else:
                await self._http(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _onward(self, host: str, port: int):
        return await asyncio.open_connection(host, port, local_addr=(self.source, 0))

    async def _http(self, reader, writer) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if self.username is not None:
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            given = headers.get("proxy-authorization", "")
            if given != f"Basic {expected}":
                user = "-"
                with contextlib.suppress(Exception):
                    user = base64.b64decode(given.split(" ", 1)[1]).decode().split(":", 1)[0]
                self.refused.append(user)
                writer.write(
                    b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n'
                    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
                )
                await writer.drain()
                return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            self.seen.append(target)
            up_reader, up_writer = await self._onward(host.strip("[]"), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
        else:
            self.seen.append(target)
            rest = target.split("://", 1)[1]
            authority, _, path = rest.partition("/")
            host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "80")
            up_reader, up_writer = await self._onward(host, int(port))
            kept = [line for line in lines[1:] if line and not line.lower().startswith("proxy-")]
            up_writer.write(f"{method} /{path} {version}\r\n".encode() + "\r\n".join(kept).encode() + b"\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _socks5(self, reader, writer) -> None:
        version, count = await reader.readexactly(2)
        methods = await reader.readexactly(count)
        want = 2 if self.username is not None else 0
        if version != 5 or want not in methods:
            if self.username is not None:
                self.refused.append("-")
            writer.write(b"\x05\xff")
            await writer.drain()
            return
        writer.write(bytes([5, want]))
        await writer.drain()
        if want == 2:
            _, ulen = await reader.readexactly(2)
            user = (await reader.readexactly(ulen)).decode()
            plen = (await reader.readexactly(1))[0]
            password = (await reader.readexactly(plen)).decode()
            if (user, password) != (self.username, self.password):
                self.refused.append(user)
                writer.write(b"\x01\x01")
                await writer.drain()
                return
            writer.write(b"\x01\x00")
            await writer.drain()
        _, command, _, kind = await reader.readexactly(4)
        if kind == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif kind == 4:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        else:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
        port = int.from_bytes(await reader.readexactly(2), "big")
        self.seen.append(f"{host}:{port}")
        try:
            up_reader, up_writer = await self._onward(host, port)
        except OSError:
            writer.write(b"\x05\x05\x00\x01" + bytes(6))
            await writer.drain()
            return
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader, writer) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()
