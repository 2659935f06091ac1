"""Traces in the current generation, on both backends: a run with hosted AI work (the stand-in LLM)
reads back as spans (the run, its commands, the invocation with its step and LLM call), as a page of
trace spans with filters and cursors, and as OpenTelemetry spans by the run's traceId."""

from __future__ import annotations

import re
import uuid

from tests.ai.conftest import fresh_script, llm, no_traffic_off_this_machine  # noqa: F401
from tests.invocations.test_invocations import connection, finished, invoke, ref_of, runtime_on, shop  # noqa: F401
from tests.support import eventually

CURRENT = {"BCTRL-Version": "2026-10-03"}


async def _spans(api, run_id: str, **params) -> list[dict]:
    """Every span of the run, page by page (two at a time, so the cursor is walked)."""
    found, cursor = [], None
    while True:
        query = {"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        page = await api.get(f"/v1/runs/{run_id}/trace", params=query, headers=CURRENT)
        assert page.status_code == 200, page.text
        body = page.json()
        found += body["data"]
        if not body["hasMore"]:
            assert body["nextCursor"] is None
            return found
        cursor = body["nextCursor"]


async def _recording_settled(api, run_id: str) -> bool:
    status = (await api.post(f"/v1/runs/{run_id}/recording", json={})).json()["status"]
    return status not in ("preparing", "processing")


async def test_a_run_with_an_invocation_reads_back_as_spans(server, api, llm, shop):  # noqa: F811
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html", flat=True) as runtime:
        run_id = runtime["activeRunId"]
        llm.then(
            lambda body: {
                "tool": "perform_action",
                "args": {"ref": ref_of(body, 'button "Buy now"'), "method": "click", "description": "press Buy now"},
            }
        )
        invocation = await invoke(api, runtime, action="act", instruction="buy the mug")
        assert (await finished(api, invocation))["status"] == "succeeded"

        live = await _spans(api, run_id, order="asc")
        root = next(s for s in live if s["parentId"] is None)
        assert root["id"] == run_id and root["kind"] == "runtime" and root["status"] == "running"
        assert root["finishedAt"] is None and root["durationMs"] is None
    # The run has ended (the runtime was stopped leaving the block); its recording is made after it.
    await eventually(lambda: _recording_settled(api, run_id), timeout=60)
    spans = await _spans(api, run_id, order="asc")
    by_kind: dict[str, list[dict]] = {}
    for span in spans:
        assert span["object"] == "trace_span" and span["runId"] == run_id
        by_kind.setdefault(span["kind"], []).append(span)
    (root,) = [s for s in spans if s["parentId"] is None]
    assert root["status"] == "succeeded" and root["finishedAt"] is not None and root["durationMs"] > 0
    assert root["resourceType"] == "run" and root["resourceId"] == run_id

    commands = {s["name"]: s for s in by_kind["system"]}
    assert {"runtime.start", "runtime.stop", "connection.create"} <= set(commands), commands
    assert commands["runtime.start"]["resourceId"] == runtime["id"] and commands["runtime.start"]["parentId"] == run_id

    (agent,) = by_kind["agent"]
    assert agent["id"] == invocation["id"] and agent["parentId"] == run_id and agent["status"] == "succeeded"
    assert agent["name"] == "invoke_agent act" and agent["resourceType"] == "agent_turn"
    assert agent["data"]["gen_ai.operation.name"] == "invoke_agent"
    assert agent["data"]["gen_ai.request.model"] == "standin-model"
    (step,) = by_kind["tool"]
    assert step["parentId"] == agent["id"] and step["name"] == "execute_tool click"
    assert step["data"]["url.full"].endswith("/shop.html") and len(step["data"]["eventIds"]) == 1
    (call,) = by_kind["llm"]
    assert call["parentId"] == agent["id"] and call["name"] == "chat standin-model"
    assert call["data"]["gen_ai.usage.input_tokens"] > 0
    (recording,) = by_kind["file"]
    assert recording["name"] == "artifact recording" and recording["resourceType"] == "artifact"
    for span in spans:
        assert span["finishedAt"] >= span["startedAt"] and span["durationMs"] >= 0, span
    # Ascending by start time; the default (desc) is the same spans the other way round.
    assert [s["startedAt"] for s in spans] == sorted(s["startedAt"] for s in spans)
    newest_first = await _spans(api, run_id)
    assert [s["id"] for s in newest_first] == [s["id"] for s in reversed(spans)]

    # Filters.
    assert [s["id"] for s in await _spans(api, run_id, kind="llm")] == [call["id"]]
    children = await _spans(api, run_id, parentId=agent["id"], order="asc")
    assert {s["id"] for s in children} == {step["id"], call["id"]}
    both = await _spans(api, run_id, kind=["tool", "llm"])
    assert {s["id"] for s in both} == {step["id"], call["id"]}
    assert [s["id"] for s in await _spans(api, run_id, resourceType="agent_turn")] == [agent["id"]]
    assert await _spans(api, run_id, status="failed") == []

    # The same run as OpenTelemetry spans, by the traceId the run carries.
    run = (await api.get(f"/v1/runs/{run_id}", headers=CURRENT)).json()
    assert run["traceId"] == uuid.UUID(run_id).hex
    read = await api.get(f"/v1/traces/{run['traceId']}", headers=CURRENT)
    assert read.status_code == 200, read.text
    otel = read.json()
    assert otel["object"] == "trace" and otel["traceId"] == run["traceId"] and otel["semconv"]["genAi"]
    assert len(otel["spans"]) == len(spans)
    seen = set()
    for span in otel["spans"]:
        assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"]) and span["endTime"] >= span["startTime"]
        assert span["parentSpanId"] is None or span["parentSpanId"] in seen, "a child before its parent"
        seen.add(span["spanId"])
    chat = next(s for s in otel["spans"] if s["name"] == "chat standin-model")
    agent_otel = next(s for s in otel["spans"] if s["name"] == "invoke_agent act")
    assert chat["kind"] == "client" and chat["parentSpanId"] == agent_otel["spanId"] and chat["status"] == "ok"
    assert chat["eventIds"] == call["data"]["eventIds"]
    assert agent_otel["parentSpanId"] == otel["spans"][0]["spanId"] and otel["spans"][0]["parentSpanId"] is None
    # The run's id as written elsewhere names the same trace.
    assert (await api.get(f"/v1/traces/{run_id}", headers=CURRENT)).json()["traceId"] == run["traceId"]


async def test_a_failed_invocation_is_an_error_span(server, api, llm, shop):  # noqa: F811
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html", flat=True) as runtime:
        run_id = runtime["activeRunId"]
        llm.then({"status": 500, "message": "model crashed"})
        invocation = await invoke(api, runtime, action="act", instruction="buy the mug")
        assert (await finished(api, invocation))["status"] == "failed"
    (agent,) = await _spans(api, run_id, kind="agent")
    assert agent["status"] == "failed" and agent["data"]["error.type"].startswith("invocation.")
    assert [s["id"] for s in await _spans(api, run_id, status="failed")] == [agent["id"]]
    otel = (await api.get(f"/v1/traces/{uuid.UUID(run_id).hex}", headers=CURRENT)).json()
    assert next(s for s in otel["spans"] if s["name"].startswith("invoke_agent"))["status"] == "error"


async def test_unknown_foreign_and_bad_requests(server, api):
    created = await api.post("/v1/browsers", params={"wait": 30}, json={}, headers=CURRENT)
    assert created.status_code == 201, created.text
    browser = created.json()
    try:
        run_id = browser["currentRun"]["id"]
        for trace_id in (uuid.uuid4().hex, "not-a-trace", "0" * 32):
            missing = await api.get(f"/v1/traces/{trace_id}", headers=CURRENT)
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "trace.not_found", missing.text
        assert (await api.get(f"/v1/runs/{uuid.uuid4()}/trace", headers=CURRENT)).status_code == 404
        async with await server.client("someone-else") as other:
            foreign = await other.get(f"/v1/traces/{uuid.UUID(run_id).hex}", headers=CURRENT)
            assert foreign.status_code == 404 and foreign.json()["error"]["code"] == "trace.not_found"
            assert (await other.get(f"/v1/runs/{run_id}/trace", headers=CURRENT)).status_code == 404
        for params in ({"kind": "nope"}, {"status": "done"}, {"resourceType": "x"}, {"cursor": "!"}, {"limit": 0}):
            bad = await api.get(f"/v1/runs/{run_id}/trace", params=params, headers=CURRENT)
            assert bad.status_code == 400 and bad.json()["error"]["reasonClass"] == "invalid_input", (params, bad.text)
        numeric = "eyJhIjoxMjN9"  # a cursor of another list (a number), not one of this list's
        assert (
            await api.get(f"/v1/runs/{run_id}/trace", params={"cursor": numeric}, headers=CURRENT)
        ).status_code == 400
    finally:
        await api.delete(f"/v1/browsers/{browser['id']}", headers=CURRENT)
