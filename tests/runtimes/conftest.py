"""Fixtures of the runtime tests that run their own server processes."""

from tests.e2e.conftest import pages  # noqa: F401  (the page server fixture)
