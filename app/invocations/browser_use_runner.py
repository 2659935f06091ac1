"""Runs one browser-use task; executed by the python of the browser-use virtualenv
(`bctrl-server agents install`), never imported by the server.

Protocol: the job arrives as one JSON line on stdin (the API key with it, so it is in no command
line or environment); events leave as JSON lines on stdout: {"type": "step", ...}, then one
{"type": "result", ...} or {"type": "error", ...}. A line "stop" on stdin asks the agent to stop
before its next step. Telemetry, cloud sync, version checks and the judge are off (environment
variables set below); nothing leaves for the hosted services.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading

OFFLINE = {
    "ANONYMIZED_TELEMETRY": "false",
    "BROWSER_USE_CLOUD_SYNC": "false",
    "BROWSER_USE_VERSION_CHECK": "false",
    "BROWSER_USE_CLOUD_HINTS": "false",
    "BROWSER_USE_DISABLE_EXTENSIONS": "1",
    "BROWSER_USE_SETUP_LOGGING": "false",
}


# Values the model must never read (as in app/invocations/engine.py): those of password inputs and of
# the fields `secrets.fill` typed into (marked `data-bctrl-secret`), in the page and its same-origin frames.
SECRET_VALUES = """(() => {
  const out = [];
  const walk = (doc) => {
    for (const el of doc.querySelectorAll('input[type=password], [data-bctrl-secret]')) {
      if (typeof el.value === 'string' && el.value) out.push(el.value);
    }
    for (const f of doc.querySelectorAll('iframe, frame')) {
      try { if (f.contentDocument) walk(f.contentDocument); } catch (e) {}
    }
  };
  walk(document);
  return out;
})()"""
REDACTED = "[redacted]"


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def secret_values(session) -> list[str]:
    """The secret values of the page the agent is on, longest first (none when it cannot be read)."""
    try:
        cdp = await session.get_or_create_cdp_session(focus=False)
        got = await cdp.cdp_client.send.Runtime.evaluate(
            params={"expression": SECRET_VALUES, "returnByValue": True}, session_id=cdp.session_id
        )
        values = got.get("result", {}).get("value") or []
    except Exception:
        return []
    return sorted({v for v in values if isinstance(v, str) and v}, key=len, reverse=True)


def redact_messages(messages: list, values: list[str]) -> list:
    """The messages with every value replaced, wherever it is (page state, tool results, extractions)."""
    if not values:
        return messages
    spellings = [json.dumps(v, ensure_ascii=False)[1:-1] for v in values]
    out = []
    for message in messages:
        text = message.model_dump_json()
        for spelling in spellings:
            text = text.replace(spelling, REDACTED)
        out.append(type(message).model_validate_json(text))
    return out


def redacting(llm, session):
    """`llm`, whose every call first redacts the page's secret values from what it sends."""
    original = llm.ainvoke

    async def ainvoke(messages, output_format=None, **kwargs):
        return await original(redact_messages(messages, await secret_values(session)), output_format, **kwargs)

    object.__setattr__(llm, "ainvoke", ainvoke)
    return llm


def quiet_about_blank() -> None:
    """browser-use paints an animation on about:blank tabs whose logo the browser fetches from
    cf.browser-use.com: a request to the hosted service from every run. Turned off."""
    try:
        from browser_use.browser.watchdogs.aboutblank_watchdog import AboutBlankWatchdog
    except ImportError:
        return

    async def nothing(self, *args, **kwargs) -> None:
        return None

    AboutBlankWatchdog._show_dvd_screensaver_loading_animation_cdp = nothing


async def run(job: dict, stop: threading.Event) -> None:
    from browser_use import Agent, BrowserSession
    from browser_use.llm.anthropic.chat import ChatAnthropic
    from browser_use.llm.openai.chat import ChatOpenAI

    llm_conf = job["llm"]
    if llm_conf["provider"] == "anthropic":
        llm = ChatAnthropic(model=llm_conf["model"], api_key=llm_conf["apiKey"], base_url=llm_conf["baseUrl"])
    else:
        llm = ChatOpenAI(
            model=llm_conf["model"],
            api_key=llm_conf["apiKey"] or "none",
            base_url=llm_conf["baseUrl"],
            max_retries=0,
            frequency_penalty=None,
        )
    quiet_about_blank()
    session = BrowserSession(cdp_url=job["cdpUrl"], keep_alive=True, downloads_path=job.get("downloadsPath"))

    async def should_stop() -> bool:
        return stop.is_set()

    agent = Agent(
        task=job["task"],
        llm=redacting(llm, session),
        browser_session=session,
        use_judge=False,
        enable_planning=False,
        use_vision=False,
        enable_signal_handler=False,
        calculate_cost=False,
        register_should_stop_callback=should_stop,
    )

    seen_calls = 0

    async def on_step_end(a) -> None:
        nonlocal seen_calls
        for entry in a.token_cost_service.usage_history[seen_calls:]:
            emit(
                {
                    "type": "llm",
                    "model": entry.model,
                    "inputTokens": entry.usage.prompt_tokens,
                    "outputTokens": entry.usage.completion_tokens,
                }
            )
        seen_calls = len(a.token_cost_service.usage_history)
        last = a.history.history[-1] if a.history.history else None
        actions = []
        if last is not None and last.model_output is not None:
            actions = [next(iter(action.model_dump(exclude_none=True)), "?") for action in last.model_output.action]
        emit(
            {
                "type": "step",
                "step": a.state.n_steps - 1,
                "action": ",".join(actions) or None,
                "url": last.state.url if last is not None else None,
                "reasoning": (last.model_output.next_goal if last is not None and last.model_output else None),
            }
        )

    history = await agent.run(max_steps=job.get("maxSteps") or 10, on_step_end=on_step_end)
    if stop.is_set() and not history.is_done():
        emit({"type": "error", "code": "invocation.browser_use_interrupted", "message": "Stopped on request"})
    elif not history.is_done():
        emit(
            {
                "type": "error",
                "code": "invocation.browser_use_incomplete",
                "message": f"The agent did not finish within {job.get('maxSteps') or 10} steps",
            }
        )
    else:
        emit(
            {
                "type": "result",
                "success": bool(history.is_successful()),
                "result": history.final_result(),
                "steps": len(history.history),
                "urls": [u for u in history.urls() if u],
            }
        )


def main() -> None:
    # Run as a script, this file's directory would come first on sys.path, where the server's own
    # modules could shadow the library's: drop it.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    os.environ.update(OFFLINE)
    job = json.loads(sys.stdin.readline())
    stop = threading.Event()

    def watch_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        asyncio.run(run(job, stop))
    except Exception as exc:  # reported to the server, which fails the invocation with it
        emit(
            {"type": "error", "code": "invocation.browser_use_failed", "message": f"{type(exc).__name__}: {exc}"[:500]}
        )


if __name__ == "__main__":
    main()
