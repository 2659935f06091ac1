"""The browserUse provider: one subprocess per invocation, in browser-use's own virtualenv, attached
to the runtime's browser by its CDP URL (see browser_use_runner.py for the protocol)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import orjson

from app.ai.llm import Endpoint, Reply
from app.invocations import agents
from app.invocations.browser_use_runner import OFFLINE
from app.invocations.engine import Cancelled, EngineFailure, Reporter

# Only what the subprocess needs: no BCTRL_* settings, no secrets of the server's own.
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")


async def run(ctx, runtime, row, endpoint: Endpoint, reporter: Reporter) -> dict[str, Any]:
    venv = ctx.settings.resolved_browser_use_venv
    if not agents.installed(venv):
        raise EngineFailure("invocation.browser_use_failed", agents.MISSING)
    home = venv / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    env.update(OFFLINE, HOME=str(home), BROWSER_USE_CONFIG_DIR=str(home / "config"))
    job = {
        "cdpUrl": runtime.driver_state["wsUrl"],
        "task": row.request["instruction"],
        "maxSteps": row.request.get("maxSteps") or 10,
        "downloadsPath": ctx.driver.downloads_dir(row.run_id),
        "llm": {
            "provider": endpoint.provider,
            "baseUrl": endpoint.base_url,
            "apiKey": endpoint.api_key,
            "model": endpoint.model,
        },
    }
    proc = await asyncio.create_subprocess_exec(
        str(agents.python_of(venv)),
        str(agents.RUNNER),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    stopping = False
    try:
        proc.stdin.write(orjson.dumps(job) + b"\n")
        await proc.stdin.drain()
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise EngineFailure(
                    "invocation.browser_use_failed", f"browser-use exited without a result (code {await proc.wait()})"
                )
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a library printing to stdout
            if message.get("type") == "llm":
                await reporter.llm(
                    Reply(
                        text="",
                        tool_calls=[],
                        input_tokens=int(message.get("inputTokens") or 0),
                        output_tokens=int(message.get("outputTokens") or 0),
                        latency_ms=0,
                    ),
                    message.get("model") or endpoint.model,
                )
            elif message.get("type") == "step":
                asked_to_stop = False
                try:
                    await reporter.step({k: message.get(k) for k in ("action", "url", "reasoning")})
                except Cancelled:
                    asked_to_stop = True
                if (asked_to_stop or reporter.cancelled()) and not stopping:
                    stopping = True  # between steps: ask the agent to stop before the next one
                    proc.stdin.write(b"stop\n")
                    await proc.stdin.drain()
            elif message.get("type") == "result":
                return _checked(message, row.request.get("outputSchema"))
            elif message.get("type") == "error":
                if stopping:
                    raise Cancelled()
                raise EngineFailure(
                    message.get("code") or "invocation.browser_use_failed",
                    message.get("message") or "browser-use failed",
                )
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def _checked(message: dict[str, Any], schema: dict | None) -> dict[str, Any]:
    result = {
        "success": message.get("success"),
        "result": message.get("result"),
        "steps": message.get("steps"),
        "urls": message.get("urls") or [],
    }
    if schema is not None:
        import jsonschema

        try:
            jsonschema.validate(orjson.loads(message.get("result") or "null"), schema)
        except (orjson.JSONDecodeError, jsonschema.ValidationError) as exc:
            raise EngineFailure(
                "invocation.output_validation_failed",
                f"browser-use's result does not match outputSchema: {str(exc)[:300]}",
            ) from None
    return result
