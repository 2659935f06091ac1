"""The LLM client against the stand-in, in both wire formats: tool calls come back parsed with their
token counts, and every way an endpoint can fail becomes a coded error without the key in it."""

from __future__ import annotations

import pytest

from app.ai.llm import Endpoint, LlmClient, LlmError, Tool

CLICK = Tool(
    name="click",
    description="Click an element",
    parameters={"type": "object", "properties": {"ref": {"type": "string"}}, "required": ["ref"]},
)


def endpoints(llm):
    return [
        Endpoint("openai-compatible", f"{llm.base}/v1", "sk-test", "m"),
        Endpoint("anthropic", llm.base, "sk-test", "m"),
    ]


@pytest.fixture
async def client():
    c = LlmClient(timeout=2.0)
    yield c
    await c.close()


@pytest.mark.parametrize("kind", [0, 1], ids=["openai", "anthropic"])
async def test_tool_call_round_trip(llm, client, kind):
    ep = endpoints(llm)[kind]
    llm.then({"tool": "click", "args": {"ref": "e12"}}, {"text": "done"})
    reply = await client.chat(ep, "You drive a browser.", [{"role": "user", "text": "press buy"}], [CLICK])
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("click", {"ref": "e12"})]
    assert (reply.input_tokens, reply.output_tokens) == (100, 20) and reply.latency_ms >= 0
    # The tool result goes back in the format's own shape.
    follow = [
        {"role": "user", "text": "press buy"},
        reply.assistant,
        {"role": "tool", "id": reply.tool_calls[0].id, "content": "clicked"},
    ]
    second = await client.chat(ep, "You drive a browser.", follow, [CLICK], require_tool=False)
    assert second.text == "done" and second.tool_calls == []
    sent = llm.requests[-1]["body"]
    if kind == 0:
        assert sent["messages"][0]["role"] == "system" and sent["messages"][-1]["role"] == "tool"
        assert sent["tools"][0]["function"]["name"] == "click"
    else:
        assert sent["system"] == "You drive a browser." and sent["messages"][-1]["content"][0]["type"] == "tool_result"
        assert sent["tools"][0]["input_schema"]["required"] == ["ref"]


@pytest.mark.parametrize("kind", [0, 1], ids=["openai", "anthropic"])
@pytest.mark.parametrize(
    "step, code",
    [
        ({"status": 500}, "llm.http_error"),
        ({"status": 429, "message": "slow down"}, "llm.http_error"),
        ({"raw": b"<html>gateway</html>"}, "llm.bad_response"),
        ({"raw": b"{}"}, "llm.bad_response"),
        ({"delay": 3, "text": "late"}, "llm.timeout"),
    ],
)
async def test_failures_are_coded(llm, client, kind, step, code):
    llm.then(step)
    with pytest.raises(LlmError) as raised:
        await client.chat(endpoints(llm)[kind], "s", [{"role": "user", "text": "x"}], [CLICK])
    assert raised.value.code == code and "sk-test" not in raised.value.message


async def test_tool_arguments_that_are_not_json(llm, client):
    llm.then({"tool": "click", "args": "{ref: e12"})
    with pytest.raises(LlmError) as raised:
        await client.chat(endpoints(llm)[0], "s", [{"role": "user", "text": "x"}], [CLICK])
    assert raised.value.code == "llm.bad_tool_call"


async def test_unreachable_endpoint(client):
    with pytest.raises(LlmError) as raised:
        await client.chat(
            Endpoint("openai-compatible", "http://127.0.0.1:9/v1", "k", "m"),
            "s",
            [{"role": "user", "text": "x"}],
            [CLICK],
        )
    assert raised.value.code == "llm.unreachable"
