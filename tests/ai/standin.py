"""A stand-in LLM server on 127.0.0.1 that speaks the real OpenAI chat-completions and Anthropic
Messages wire formats, answering from a script the test gives it (tool calls, text, errors, garbage,
delays). It records every request, headers included, so tests can check what was sent."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support import free_port

DEFAULT_MODELS = ({"id": "standin-model", "object": "model"},)


class StandInLlm:
    def __init__(self, api_key: str = "sk-test") -> None:
        self.api_key = api_key
        self.script: deque[dict[str, Any]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.model_list: list[dict[str, Any]] = list(DEFAULT_MODELS)
        self.models_status: int | None = None  # answer GET /v1/models with this error status instead
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "stand-in LLM did not start"
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def then(self, *replies) -> StandInLlm:
        """Queue replies: {"tool": name, "args": {...}}, {"text": "..."}, {"status": 500}, {"raw": b"..."},
        "delay" (seconds) on any of them, or a function of the request body returning one of those."""
        self.script.extend(replies)
        return self

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()
        self.model_list = list(DEFAULT_MODELS)
        self.models_status = None

    # --- wire formats ---

    def _authorized(self, request: Request, anthropic: bool) -> bool:
        if anthropic:
            return request.headers.get("x-api-key") == self.api_key
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    async def _next(self, request: Request, anthropic: bool) -> tuple[dict[str, Any] | None, Response | None]:
        body = orjson.loads(await request.body())
        self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": body})
        if not self._authorized(request, anthropic):
            return None, JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
        step = self.script.popleft() if self.script else {"text": "(the script is empty)"}
        if callable(step):
            step = step(body)  # a reply computed from the request (e.g. a ref read off the page snapshot)
        if step.get("delay"):
            await asyncio.sleep(step["delay"])
        if "status" in step:
            return None, JSONResponse(
                {"error": {"message": step.get("message", "scripted failure")}}, status_code=step["status"]
            )
        if "raw" in step:
            return None, Response(step["raw"], media_type="application/json")
        return step, None

    async def _openai(self, request: Request) -> Response:
        step, early = await self._next(request, anthropic=False)
        if early:
            return early
        message: dict[str, Any] = {"role": "assistant", "content": step.get("text")}
        if "tool" in step:
            args = step["args"] if isinstance(step["args"], str) else orjson.dumps(step["args"]).decode()
            message["tool_calls"] = [
                {
                    "id": f"call_{len(self.requests)}",
                    "type": "function",
                    "function": {"name": step["tool"], "arguments": args},
                }
            ]
        return JSONResponse(
            {
                "id": "chatcmpl-standin",
                "object": "chat.completion",
                "model": "standin",
                "choices": [
                    {"index": 0, "message": message, "finish_reason": "tool_calls" if "tool" in step else "stop"}
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }
        )

    async def _anthropic(self, request: Request) -> Response:
        step, early = await self._next(request, anthropic=True)
        if early:
            return early
        content: list[dict[str, Any]] = []
        if step.get("text"):
            content.append({"type": "text", "text": step["text"]})
        if "tool" in step:
            content.append(
                {"type": "tool_use", "id": f"toolu_{len(self.requests)}", "name": step["tool"], "input": step["args"]}
            )
        return JSONResponse(
            {
                "id": "msg_standin",
                "type": "message",
                "role": "assistant",
                "model": "standin",
                "content": content,
                "stop_reason": "tool_use" if "tool" in step else "end_turn",
                "usage": {"input_tokens": 100, "output_tokens": 20},
            }
        )

    async def _models(self, request: Request) -> Response:
        anthropic = "anthropic-version" in request.headers
        self.requests.append({"path": request.url.path, "headers": dict(request.headers), "body": None})
        if not self._authorized(request, anthropic):
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
        if self.models_status is not None:
            return JSONResponse({"error": {"message": "scripted failure"}}, status_code=self.models_status)
        if not anthropic:  # OpenAI: the whole list at once
            return JSONResponse({"object": "list", "data": self.model_list})
        # Anthropic: pages of `limit` after `after_id`, with has_more and last_id.
        ids = [m["id"] for m in self.model_list]
        after = request.query_params.get("after_id")
        start = ids.index(after) + 1 if after in ids else 0
        limit = int(request.query_params.get("limit", "20"))
        chunk = self.model_list[start : start + limit]
        return JSONResponse(
            {
                "data": chunk,
                "has_more": start + limit < len(ids),
                "first_id": chunk[0]["id"] if chunk else None,
                "last_id": chunk[-1]["id"] if chunk else None,
            }
        )
