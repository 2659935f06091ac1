"""Fixtures of the drains tier reused by the review's tests (a server allowing loopback destinations and
an OTLP collector on 127.0.0.1)."""

from tests.drains.conftest import dserver, otlp_receiver, sdk  # noqa: F401
