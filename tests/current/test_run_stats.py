"""A run's `stats` on GET /v1/runs and GET /v1/runs/{id}, and its last frame (GET /v1/runs/{id}/thumbnail),
over both backends: the counts follow the run's events, and the thumbnail is the newest recorded frame."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from app.core import clock, datadir, ids
from app.live.models import Recording
from app.runs.models import Run, RunEvent

# The run list is a core flow of the embedded defaults too.
pytestmark = pytest.mark.sqlite
CURRENT = {"BCTRL-Version": "2026-10-03"}


async def _run_with(server, api, events: list[tuple[str, str, dict]]) -> uuid.UUID:
    space_id = uuid.UUID((await api.get("/v1/auth/whoami", headers=CURRENT)).json()["defaultSpaceId"])
    async with server.ctx.db.read() as s:
        from app.spaces.models import Space

        account_id = (await s.get(Space, space_id)).account_id
    started = clock.now() - timedelta(minutes=5)
    run = Run(
        id=ids.new_id(),
        account_id=account_id,
        space_id=space_id,
        runtime_id=ids.new_id(),
        runtime_type="browser",
        status="completed",
        recording=True,
        failure=None,
        end_reason="stop requested",
        event_seq=len(events),
        created_at=started,
        started_at=started,
        finished_at=started + timedelta(seconds=30),
    )
    async with server.ctx.db.transaction() as s:
        s.add(run)
        await s.flush()
        for seq, (type_, category, data) in enumerate(events, 1):
            s.add(
                RunEvent(
                    id=ids.new_id(),
                    run_id=run.id,
                    seq=seq,
                    time=started + timedelta(seconds=seq),
                    type=type_,
                    category=category,
                    source="browser",
                    data=data,
                )
            )
    return run.id


async def test_stats_count_pages_requests_and_errors_and_the_thumbnail_is_the_last_frame(server, api):
    run_id = await _run_with(
        server,
        api,
        [
            ("page.navigated", "browser", {"url": "about:blank"}),
            ("page.navigated", "browser", {"url": "http://a.test/one"}),
            ("network.request", "network", {"requestId": "1", "url": "http://a.test/one"}),
            ("network.response", "network", {"requestId": "1", "status": 200}),
            ("network.request", "network", {"requestId": "2", "url": "http://a.test/x.json"}),
            ("network.failed", "network", {"requestId": "2", "errorText": "net::ERR_FAILED"}),
            ("console.message", "console", {"level": "log", "text": "hi"}),
            ("console.message", "console", {"level": "error", "text": "bad"}),
            ("page.error", "console", {"message": "boom"}),
            ("page.navigated", "browser", {"url": "http://a.test/two"}),
        ],
    )
    listed = (await api.get("/v1/runs", params={"limit": 5}, headers=CURRENT)).json()["data"]
    mine = next(r for r in listed if r["id"] == str(run_id))
    expected = {"events": 10, "pagesVisited": 2, "requests": 2, "errors": 3, "lastFrameAtMs": None}
    assert mine["stats"] == expected
    assert (await api.get(f"/v1/runs/{run_id}", headers=CURRENT)).json()["stats"] == expected

    missing = await api.get(f"/v1/runs/{run_id}/thumbnail", headers=CURRENT)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "recording.not_found"

    # Two frames recorded: the thumbnail is the second, and the stats say when it was taken.
    frames = datadir.recording_frames(server.settings.data_dir, run_id)
    frames.mkdir(parents=True)
    (frames / "000001.jpg").write_bytes(b"\xff\xd8first\xff\xd9")
    (frames / "000002.jpg").write_bytes(b"\xff\xd8second\xff\xd9")
    (frames / "index.jsonl").write_bytes(b'{"seq": 1, "t": 100}\n{"seq": 2, "t": 2500}\n')
    now = clock.now()
    async with server.ctx.db.transaction() as s:
        s.add(
            Recording(
                run_id=run_id, status="ready", frames=2, bytes=20, last_frame_ms=2500, created_at=now, updated_at=now
            )
        )
    thumb = await api.get(f"/v1/runs/{run_id}/thumbnail", headers=CURRENT)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content == b"\xff\xd8second\xff\xd9"
    assert (await api.get(f"/v1/runs/{run_id}", headers=CURRENT)).json()["stats"]["lastFrameAtMs"] == 2500


async def test_another_accounts_run_has_no_stats_or_thumbnail_to_show(server, api):
    run_id = await _run_with(server, api, [("page.navigated", "browser", {"url": "http://a.test/"})])
    async with await server.client("other") as other:
        assert (await other.get(f"/v1/runs/{run_id}/thumbnail", headers=CURRENT)).status_code == 404
        listed = (await other.get("/v1/runs", headers=CURRENT)).json()["data"]
        assert all(r["id"] != str(run_id) for r in listed)
