"""LLM tokens in `/v1/usage`: an invocation's model calls (the stand-in LLM answers 100 input and 20
output tokens a call) are counted once each, from the invocation's own record."""

from __future__ import annotations

from tests.ai.conftest import fresh_script, llm, no_traffic_off_this_machine  # noqa: F401
from tests.invocations.test_invocations import connection, finished, invoke, ref_of, runtime_on, shop  # noqa: F401

CURRENT = {"BCTRL-Version": "2026-10-03"}


async def tokens(api) -> dict:
    got = await api.get("/v1/usage", headers=CURRENT)
    assert got.status_code == 200, got.text
    return got.json()["measured"]["llmTokens"]


async def test_an_invocations_model_calls_are_counted(server, api, llm, shop):  # noqa: F811
    assert await tokens(api) == {"input": 0, "output": 0, "total": 0}
    await connection(api, llm)
    async with runtime_on(server, api, f"{shop.url}/shop.html") as runtime:
        llm.then(
            lambda body: {
                "tool": "report_elements",
                "args": {
                    "elements": [{"ref": ref_of(body, 'button "Buy now"'), "description": "buy", "method": "click"}]
                },
            }
        )
        done = await finished(api, await invoke(api, runtime, action="observe", instruction="find the buy button"))
        assert done["status"] == "succeeded", done
    calls = len(llm.requests)
    assert calls >= 1
    assert await tokens(api) == {"input": 100 * calls, "output": 20 * calls, "total": 120 * calls}
