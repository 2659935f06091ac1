"""A thin client for the two LLM wire formats the server speaks: OpenAI chat completions (OpenAI,
vLLM, Ollama's /v1, LM Studio, anything compatible) and Anthropic Messages, with tool calling.

Messages and tools are given in one neutral form and translated per format. The API key goes in a
header and nowhere else: not in logs, errors or events.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    # Hosted providers that speak the OpenAI wire format, at their documented OpenAI-compatible roots.
    "cerebras": "https://api.cerebras.ai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "google": "https://generativelanguage.googleapis.com/v1beta/openai",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "perplexity": "https://api.perplexity.ai",
    "togetherai": "https://api.together.xyz/v1",
    "vercel-ai-gateway": "https://ai-gateway.vercel.sh/v1",
    "xai": "https://api.x.ai/v1",
}
# Anthropic pages its model list; more pages than this is not a model list.
MAX_MODEL_PAGES = 20
ANTHROPIC_VERSION = "2023-06-01"


class LlmError(Exception):
    """The endpoint failed us; `code` is stable, `message` says why without any secret."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Endpoint:
    provider: str  # openai | openai-compatible | anthropic
    base_url: str
    api_key: str | None
    model: str

    @property
    def anthropic(self) -> bool:
        return self.provider == "anthropic"


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Reply:
    text: str
    tool_calls: list[ToolCall]
    input_tokens: int
    output_tokens: int
    latency_ms: int
    raw_stop: str | None = None
    assistant: dict[str, Any] = field(default_factory=dict)  # the reply as a message to send back


def base_url(provider: str, configured: str | None) -> str:
    return (configured or DEFAULT_BASE_URLS.get(provider, "")).rstrip("/")


class LlmClient:
    def __init__(self, timeout: float = 60.0) -> None:
        self.http = httpx.AsyncClient(timeout=timeout, trust_env=False)

    async def close(self) -> None:
        await self.http.aclose()

    def _headers(self, ep: Endpoint) -> dict[str, str]:
        if ep.anthropic:
            headers = {"anthropic-version": ANTHROPIC_VERSION}
            if ep.api_key:
                headers["x-api-key"] = ep.api_key
            return headers
        return {"Authorization": f"Bearer {ep.api_key}"} if ep.api_key else {}

    async def _post(self, ep: Endpoint, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{ep.base_url}{path}"
        try:
            response = await self.http.post(
                url, content=orjson.dumps(body), headers={**self._headers(ep), "content-type": "application/json"}
            )
        except httpx.TimeoutException:
            raise LlmError("llm.timeout", f"The model endpoint {ep.base_url} did not answer in time") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise LlmError(
                "llm.unreachable", f"The model endpoint {ep.base_url} cannot be reached: {type(exc).__name__}"
            ) from None
        if response.status_code >= 400:
            raise LlmError(
                "llm.http_error", f"The model endpoint answered {response.status_code}: {_error_text(response)}"
            )
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise LlmError("llm.bad_response", "The model endpoint answered with something that is not JSON") from None

    async def chat(
        self,
        ep: Endpoint,
        system: str,
        messages: list[dict[str, Any]],
        tools: list[Tool],
        *,
        require_tool: bool = True,
        temperature: float | None = None,
        max_tokens: int = 2048,
    ) -> Reply:
        """One model turn. `messages` are neutral: {"role": "user", "text"} | {"role": "assistant", ...
        (a previous Reply.assistant)} | {"role": "tool", "id", "content"}."""
        started = time.perf_counter()
        if ep.anthropic:
            body: dict[str, Any] = {
                "model": ep.model,
                "max_tokens": max_tokens,
                "system": system,
                "messages": _anthropic_messages(messages),
                "tools": [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in tools],
            }
            if tools and require_tool:
                body["tool_choice"] = {"type": "any"}
            if temperature is not None:
                body["temperature"] = temperature
            data = await self._post(ep, "/v1/messages", body)
            reply = _anthropic_reply(data)
        else:
            body = {
                "model": ep.model,
                "messages": [{"role": "system", "content": system}, *_openai_messages(messages)],
                "max_tokens": max_tokens,
            }
            if tools:
                body["tools"] = [
                    {
                        "type": "function",
                        "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                    }
                    for t in tools
                ]
                body["tool_choice"] = "required" if require_tool else "auto"
            if temperature is not None:
                body["temperature"] = temperature
            data = await self._post(ep, "/chat/completions", body)
            reply = _openai_reply(data)
        reply.latency_ms = int((time.perf_counter() - started) * 1000)
        return reply

    async def check(self, ep: Endpoint) -> tuple[bool, str]:
        """Whether the endpoint answers with these credentials (lists its models; no tokens spent)."""
        path = "/v1/models" if ep.anthropic else "/models"
        try:
            response = await self.http.get(f"{ep.base_url}{path}", headers=self._headers(ep), timeout=10.0)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return False, f"{ep.base_url} cannot be reached: {type(exc).__name__}"
        if response.status_code in (401, 403):
            return False, f"{ep.base_url} refused the credentials ({response.status_code})"
        if response.status_code >= 400:
            return False, f"{ep.base_url} answered {response.status_code}: {_error_text(response)}"
        return True, f"{ep.base_url} answered"

    async def list_models(self, ep: Endpoint) -> list[dict[str, Any]]:
        """The endpoint's model list as it gives it (OpenAI `GET /models`, Anthropic `GET /v1/models`
        followed page by page). LlmError `llm.refused` when it refuses the credentials, `llm.rate_limited`,
        `llm.unreachable`, `llm.timeout`, `llm.http_error` or `llm.bad_response` otherwise."""
        if not ep.anthropic:
            return _model_entries(await self._get(ep, "/models", {}))
        models: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 1000}
        for _ in range(MAX_MODEL_PAGES):
            data = await self._get(ep, "/v1/models", params)
            models += _model_entries(data)
            if not data.get("has_more") or not data.get("last_id"):
                return models
            params = {"limit": 1000, "after_id": data["last_id"]}
        raise LlmError("llm.bad_response", f"The model endpoint {ep.base_url} kept paging its model list")

    async def _get(self, ep: Endpoint, path: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self.http.get(
                f"{ep.base_url}{path}", params=params, headers=self._headers(ep), timeout=10.0
            )
        except httpx.TimeoutException:
            raise LlmError("llm.timeout", f"The model endpoint {ep.base_url} did not answer in time") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise LlmError(
                "llm.unreachable", f"The model endpoint {ep.base_url} cannot be reached: {type(exc).__name__}"
            ) from None
        if response.status_code in (401, 403):
            raise LlmError("llm.refused", f"{ep.base_url} refused the credentials ({response.status_code})")
        if response.status_code == 429:
            raise LlmError("llm.rate_limited", f"{ep.base_url} is rate limiting these credentials (429)")
        if response.status_code >= 400:
            raise LlmError(
                "llm.http_error", f"The model endpoint answered {response.status_code}: {_error_text(response)}"
            )
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise LlmError("llm.bad_response", "The model endpoint answered with something that is not JSON") from None
        if not isinstance(data, dict):
            raise LlmError("llm.bad_response", "The model endpoint's model list is not an object")
        return data


def _model_entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    entries = data.get("data")
    if not isinstance(entries, list):
        raise LlmError("llm.bad_response", "The model endpoint's answer has no model list (`data`)")
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str) and e["id"]]


def _error_text(response: httpx.Response) -> str:
    try:
        data = response.json()
        error = data.get("error", data)
        message = error.get("message") if isinstance(error, dict) else str(error)
    except ValueError:
        message = response.text
    return (message or "")[:300]


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw or "{}")
    except (orjson.JSONDecodeError, TypeError):
        raise LlmError("llm.bad_tool_call", "The model called a tool with arguments that are not JSON") from None
    if not isinstance(value, dict):
        raise LlmError("llm.bad_tool_call", "The model called a tool with arguments that are not an object")
    return value


def _openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        if m["role"] == "user":
            out.append({"role": "user", "content": m["text"]})
        elif m["role"] == "assistant":
            out.append(m["openai"])
        elif m["role"] == "tool":
            out.append({"role": "tool", "tool_call_id": m["id"], "content": m["content"]})
    return out


def _anthropic_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "user":
            out.append({"role": "user", "content": m["text"]})
        elif m["role"] == "assistant":
            out.append(m["anthropic"])
        elif m["role"] == "tool":
            block = {"type": "tool_result", "tool_use_id": m["id"], "content": m["content"]}
            # Consecutive tool results go in one user message, as the format requires.
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
    return out


def _openai_reply(data: dict[str, Any]) -> Reply:
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise LlmError("llm.bad_response", "The model's answer has no choices") from None
    calls = [
        ToolCall(
            id=c.get("id") or f"call_{i}",
            name=c["function"]["name"],
            arguments=_arguments(c["function"].get("arguments")),
        )
        for i, c in enumerate(message.get("tool_calls") or [])
        if c.get("function", {}).get("name")
    ]
    usage = data.get("usage") or {}
    assistant = {
        "role": "assistant",
        "content": message.get("content"),
        **({"tool_calls": message["tool_calls"]} if message.get("tool_calls") else {}),
    }
    return Reply(
        text=message.get("content") or "",
        tool_calls=calls,
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        latency_ms=0,
        raw_stop=choice.get("finish_reason"),
        assistant={"role": "assistant", "openai": assistant},
    )


def _anthropic_reply(data: dict[str, Any]) -> Reply:
    blocks = data.get("content")
    if not isinstance(blocks, list):
        raise LlmError("llm.bad_response", "The model's answer has no content")
    text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    calls = [
        ToolCall(id=b.get("id") or f"toolu_{i}", name=b["name"], arguments=_arguments(b.get("input")))
        for i, b in enumerate(blocks)
        if b.get("type") == "tool_use" and b.get("name")
    ]
    usage = data.get("usage") or {}
    return Reply(
        text=text,
        tool_calls=calls,
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        latency_ms=0,
        raw_stop=data.get("stop_reason"),
        assistant={"role": "assistant", "anthropic": {"role": "assistant", "content": blocks}},
    )
