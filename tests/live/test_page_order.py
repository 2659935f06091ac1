"""The order a picture follows tabs in: the run's pages by their first `page.created` event. An observer
that starts on a running browser (after a takeover or a restart) announces every open page again, in
Chromium's order, which is not the order they were opened in."""

from __future__ import annotations

import pytest

from app.runs import events, streams
from tests.current.runs import active_run

pytestmark = pytest.mark.sqlite


async def test_pages_are_ordered_by_their_first_announcement(server, api):
    run = await active_run(server, api)
    async with server.ctx.db.transaction() as s:
        for page_id in ["launch", "second", "third", "third", "launch", "second", "fourth"]:
            await events.append(s, run.id, "page.created", "browser", {"targetId": page_id}, page_id=page_id)
    assert await streams.pages_opened(server.ctx, run.id) == ["launch", "second", "third", "fourth"]
