"""The AI tier's fixtures: the stand-in LLM, and a guard that fails any test whose code tries to
reach an address off this machine (hosted LLMs included). tests/invocations imports them too."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from tests.ai.standin import StandInLlm

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


class OffMachine(AssertionError):
    pass


def _loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def no_traffic_off_this_machine(monkeypatch):
    attempts: list[str] = []

    def check(address) -> None:
        if isinstance(address, tuple) and not _loopback(str(address[0])):
            attempts.append(str(address[0]))
            raise OffMachine(f"refused: a connection to {address[0]} (tests stay on loopback)")

    def connect(self, address):
        check(address)
        return _real_connect(self, address)

    def connect_ex(self, address):
        check(address)
        return _real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _loopback(str(host)):
            attempts.append(str(host))
            raise socket.gaierror(f"refused: name lookup of {host} (tests stay on loopback)")
        return _real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert not attempts, f"the test tried to leave this machine: {attempts}"


@pytest.fixture(scope="session")
def llm():
    server = StandInLlm()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def fresh_script(llm):
    llm.reset()
    yield
