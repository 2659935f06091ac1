"""The official 0.3 client (`AsyncBctrl`) against an in-process server, as a fresh account."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from bctrl import AsyncBctrl
from bctrl._generated.errors import ConflictError, NotFoundError

from tests.sdk import sdk_of


@pytest.fixture
async def sdk(server) -> AsyncIterator[AsyncBctrl]:
    async with sdk_of(server, "usage") as client:
        yield client


@pytest.fixture
async def browsers(sdk):
    """`browsers(id)`: stopped in teardown whatever the test did, so no slot stays held."""
    made: list[tuple[AsyncBctrl, str]] = []
    yield lambda client, browser_id: made.append((client, browser_id))
    for client, browser_id in made:
        with contextlib.suppress(ConflictError, NotFoundError):  # already stopped, or deleted: fine
            await client.browsers.stop(browser_id)
