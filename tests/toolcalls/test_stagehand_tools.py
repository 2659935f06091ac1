"""Stagehand tools called directly (POST /v1/tools/stagehand.*/calls with runtimeId), in process over
both backends in a real Chromium, on the account's AI credential (the stand-in LLM): act clicks on the
active page, extract returns data, and the engine's failure is a failed call. Nothing leaves this
machine (the AI tier's guard)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.ai.conftest import no_traffic_off_this_machine  # noqa: F401
from tests.support import PageServer
from tests.toolcalls.test_browser_tools import call, result_of

PAGES = Path(__file__).resolve().parents[1] / "e2e" / "pages"


def ref_of(body: dict, pattern: str) -> str:
    found = re.search(pattern + r"[^\n\\]*?\[ref=(\w+)\]", str(body))
    assert found, f"{pattern!r} is not in the snapshot sent to the model"
    return found.group(1)


async def test_stagehand_tools_act_on_the_active_page_with_the_accounts_model(server, api, stop_afterwards, llm):
    shop = PageServer(PAGES)
    try:
        created = await api.post(
            "/v1/ai-connections",
            json={
                "label": "stand-in",
                "provider": "openai-compatible",
                "baseUrl": f"{llm.base}/v1",
                "apiKey": "sk-test",
                "defaultModel": "standin-model",
            },
        )
        assert created.status_code == 201, created.text
        runtime = (await api.post("/v1/runtimes", json={"start": True})).json()
        stop_afterwards(runtime["id"])
        assert (await call(api, "browser.pages.open", {"url": f"{shop.url}/shop.html"}, runtime["id"]))["status"] == (
            "succeeded"
        )
        llm.then(
            lambda body: {
                "tool": "perform_action",
                "args": {"ref": ref_of(body, 'button "Buy now"'), "method": "click", "description": "press Buy now"},
            }
        )
        acted = await call(api, "stagehand.act", {"instruction": "buy the mug"}, runtime["id"])
        assert acted["status"] == "succeeded", acted
        assert await result_of(api, acted["id"]) == {
            "success": True,
            "action": "press Buy now",
            "message": "Performed click",
        }
        got = await call(api, "browser.pages.get", {}, runtime["id"])
        assert (await result_of(api, got["id"]))["title"] == "bought"
        llm.then({"tool": "return_data", "args": {"price": "$42"}})
        extracted = await call(
            api,
            "stagehand.extract",
            {"instruction": "the price", "schema": {"type": "object", "properties": {"price": {"type": "string"}}}},
            runtime["id"],
        )
        assert (await result_of(api, extracted["id"])) == {"data": {"price": "$42"}}
        llm.then({"status": 500}, {"status": 500}, {"status": 500})
        broken = await call(api, "stagehand.observe", {"instruction": "buttons"}, runtime["id"])
        assert broken["status"] == "failed" and broken["error"]["code"] == "tool.host_failed", broken
    finally:
        shop.close()
