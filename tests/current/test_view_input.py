"""A person answers an agent in a view, in process over both backends: a view with `control` on the
browser lists the pending input requests (human.request tool calls waiting for a person) of the
browser's run with their prompt and fields, and answers one (validated against the request's schema,
recorded as the view's answer, the call runs on); a view without control is 403, another run 404, an
answered or expired request 409."""

from __future__ import annotations

import uuid
from datetime import timedelta

from app.core import clock
from app.toolcalls import service as toolcalls
from tests.support import started_runtime

V = {"BCTRL-Version": "2026-10-03"}
SCHEMA = {
    "type": "object",
    "properties": {
        "size": {"type": "string", "enum": ["S", "M", "L"], "title": "Size"},
        "count": {"type": "integer", "description": "How many"},
    },
    "required": ["size"],
}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}", **V}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    return body["error"] if isinstance(body["error"], dict) else body


async def view_of(api, runtime_id: str, control: bool) -> str:
    made = await api.post("/v1/views", json={"scope": {"runtimeId": runtime_id}, "control": control}, headers=V)
    assert made.status_code == 201, made.text
    return made.json()["token"]


async def ask(server, account_id, runtime: dict, *, prompt: str, schema: dict, expires_in: float = 600):
    """A human.request tool call suspended on the browser's run, as the tool executor leaves it."""
    call = await toolcalls.record(
        server.ctx,
        account_id=account_id,
        tool_name="human.request",
        input={"prompt": prompt, "schema": schema},
        caller_type="agent",
        task_id=uuid.uuid4(),
        run_id=uuid.UUID(runtime["activeRunId"]),
        runtime_id=uuid.UUID(runtime["id"]),
        status="running",
    )
    expires_at = clock.now() + timedelta(seconds=expires_in)
    request = {"prompt": prompt, "schema": schema, "handoff": False, "expiresAt": clock.iso(expires_at)}
    assert await toolcalls.suspend(server.ctx, call.id, request, expires_at)
    return call


async def test_a_view_with_control_lists_and_answers_the_agents_questions(server, api):
    account_id = uuid.UUID((await api.get("/v1/auth/whoami", headers=V)).json()["organizationId"])
    async with started_runtime(api) as runtime:
        run_id = runtime["activeRunId"]
        call = await ask(server, account_id, runtime, prompt="Which size?", schema=SCHEMA)
        plain = await ask(server, account_id, runtime, prompt="Your name?", schema={"type": "string"})
        gone = await ask(server, account_id, runtime, prompt="Too late", schema={}, expires_in=-1)
        controlling, watching = await view_of(api, runtime["id"], True), await view_of(api, runtime["id"], False)
        async with server.anonymous(headers=bearer(controlling)) as person:
            listed = await person.get("/view/input-requests", params={"runId": run_id})
            assert listed.status_code == 200, listed.text
            items = listed.json()["items"]
            assert [i["id"] for i in items] == [str(call.id), str(plain.id)]  # oldest first, not the expired
            first = items[0]
            assert first["prompt"] == "Which size?" and first["toolName"] == "human.request"
            assert [(f["name"], f["type"], f["required"]) for f in first["fields"]] == [
                ("size", "string", True),
                ("count", "integer", False),
            ]
            assert first["fields"][0]["enum"] == ["S", "M", "L"] and first["fields"][0]["title"] == "Size"
            assert [f["name"] for f in items[1]["fields"]] == ["value"]

            # Another run, an unknown request: not found.
            elsewhere = await person.get("/view/input-requests", params={"runId": str(uuid.uuid4())})
            assert elsewhere.status_code == 404, elsewhere.text
            unknown = await person.post(
                f"/view/input-requests/{uuid.uuid4()}", json={"runId": run_id, "value": {"size": "S"}}
            )
            assert error_of(unknown, 404)["code"] == "tool_call.not_found"

            # An answer that does not match the schema is refused and the request stays.
            bad = await person.post(f"/view/input-requests/{call.id}", json={"runId": run_id, "value": {"size": "XL"}})
            assert error_of(bad, 400)["code"] == "tool_call.response_invalid"
            answered = await person.post(
                f"/view/input-requests/{call.id}", json={"runId": run_id, "value": {"size": "M", "count": 2}}
            )
            assert answered.status_code == 200, answered.text
            assert answered.json() == {"id": str(call.id), "status": "running"}
            row = await toolcalls.load(server.ctx, call.id)
            assert row.response == {"size": "M", "count": 2}
            assert row.responded_by["type"] == "view" and row.responded_by["viewId"]
            again = await person.post(f"/view/input-requests/{call.id}", json={"runId": run_id, "value": {"size": "S"}})
            assert error_of(again, 409)["code"] == "tool_call.input_already_responded"
            expired = await person.post(f"/view/input-requests/{gone.id}", json={"runId": run_id, "value": "x"})
            assert error_of(expired, 409)["code"] == "tool_call.input_expired"
            left = (await person.get("/view/input-requests", params={"runId": run_id})).json()["items"]
            assert [i["id"] for i in left] == [str(plain.id)]

        # Without control the view neither sees nor answers them.
        async with server.anonymous(headers=bearer(watching)) as watcher:
            refused = await watcher.get("/view/input-requests", params={"runId": run_id})
            assert error_of(refused, 403)["code"] == "viewer.control_forbidden"
            refused = await watcher.post(f"/view/input-requests/{plain.id}", json={"runId": run_id, "value": "Ann"})
            assert error_of(refused, 403)["code"] == "viewer.control_forbidden"
        assert (await toolcalls.load(server.ctx, plain.id)).status == "awaiting_input"

        # Another account's view of its own browser does not reach this run.
        async with await server.client("other") as other_api, started_runtime(other_api) as theirs:
            token = await view_of(other_api, theirs["id"], True)
            async with server.anonymous(headers=bearer(token)) as stranger:
                assert (await stranger.get("/view/input-requests", params={"runId": run_id})).status_code == 404
                stolen = await stranger.post(
                    f"/view/input-requests/{plain.id}", json={"runId": theirs["activeRunId"], "value": "x"}
                )
                assert error_of(stolen, 404)["code"] == "tool_call.not_found"
