"""Security review of issue 15, `human.request` answers (app/toolcalls/service.py `respond`): the request's
schema is written by the model (which a hostile page can steer), and every answer to it must end in a
documented error or an accepted answer."""

from __future__ import annotations

import pytest

V = {"BCTRL-Version": "2026-10-03"}


@pytest.mark.parametrize("server", ["postgres"], indirect=True)  # the answer route is the same on both
async def test_an_answer_to_a_schema_with_an_unresolvable_ref_is_a_documented_error(server, api):
    """A model asks with `schema: {"$ref": "#/definitions/missing"}`: `check_schema` accepts it, and
    `respond` runs `jsonschema.validate`, which raises `_WrappedReferencingError` (not a ValidationError):
    the answer route is a 500 and the request can never be answered (the task waits until it expires).
    Expected: 400 `tool_call.response_invalid` (or the request refused when it is made)."""
    made = await api.post(
        "/v1/tools/human.request/calls?wait=5",
        json={"input": {"prompt": "Which plan?", "schema": {"$ref": "#/definitions/missing"}, "timeoutSeconds": 60}},
        headers=V,
    )
    assert made.status_code == 201, made.text
    call = made.json()
    if call["status"] == "failed":  # refused when asked: fine, documented
        assert call["error"]["code"] == "tool.input_invalid", call
        return
    assert call["status"] == "awaiting_input", call
    try:
        async with server.anonymous(headers=dict(api.headers), raise_app_exceptions=False) as raw:
            answered = await raw.post(f"/v1/tool-calls/{call['id']}/respond", json="pro", headers=V)
        assert answered.status_code in (200, 400), answered.text
        if answered.status_code == 400:
            assert answered.json()["error"]["code"] == "tool_call.response_invalid", answered.text
    finally:
        await api.post(f"/v1/tool-calls/{call['id']}/cancel", headers=V)
