"""Our Stagehand-style engine: Playwright over CDP to the runtime's browser, a fresh AI-mode aria
snapshot (elements carry refs) every step, and tool calling on the account's own LLM.

act: one decision `perform_action{ref, method, arguments}` (or `no_match`), executed on the ref,
re-snapshotting and asking once more if the ref went stale. observe: `report_elements`. extract:
a forced `return_data` tool whose parameters are the output schema, validated, asked again once
with the validation error. agent: a loop of browser tools until `done`, the step limit, a
cancellation (checked between steps) or the timeout (enforced by the worker).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
from playwright.async_api import Browser, Page
from playwright.async_api import Error as PlaywrightError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012, specification_with

from app.ai.llm import Endpoint, LlmClient, LlmError, Reply, Tool

SNAPSHOT_LIMIT = 40_000  # characters of aria snapshot sent per step
METHODS = ["click", "fill", "type", "press", "select", "hover", "check", "uncheck", "dblclick"]
ACTION_TIMEOUT_MS = 5_000


class EngineFailure(Exception):
    def __init__(self, code: str, message: str, details: dict | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


class Cancelled(Exception):
    pass


@dataclass
class Reporter:
    """How the engine tells the world: a step, an LLM call, and whether it should stop."""

    step: Callable[[dict[str, Any]], Awaitable[None]]
    llm: Callable[[Reply, str], Awaitable[None]]
    cancelled: Callable[[], bool]


SYSTEM = (
    "You operate a web browser for a user. The page is given as an accessibility snapshot in YAML; "
    "elements you can act on carry [ref=...] markers. Use only refs that appear in the latest snapshot. "
    "Answer only with the tools you are given."
)


# Values the model must never read: those of password inputs and of the fields `secrets.fill` typed
# into (it marks them `data-bctrl-secret`), in the frame it is evaluated in.
SECRET_VALUES = """() => [...document.querySelectorAll('input[type=password], [data-bctrl-secret]')]
  .map((el) => el.value).filter((v) => typeof v === 'string' && v.length > 0)"""
REDACTED = "[redacted]"


async def secret_values(page: Page) -> list[str]:
    """The page's secret values (every frame), longest first."""
    values: set[str] = set()
    for frame in page.frames:
        with contextlib.suppress(PlaywrightError):
            values.update(await frame.evaluate(SECRET_VALUES))
    return sorted(values, key=len, reverse=True)


def redact(text: str, values: list[str]) -> str:
    """`text` without any of `values`, raw or as escaped in a YAML/JSON string."""
    for value in values:
        for spelling in {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}:
            text = text.replace(spelling, REDACTED)
    return text


async def page_message(page: Page, visible_text: bool = False) -> str:
    """What the model reads of the page: URL, title, aria snapshot (and the body's visible text), with
    the values of password inputs and filled secrets redacted from all of it."""
    values = await secret_values(page)
    text = await page.aria_snapshot(mode="ai")
    if len(text) > SNAPSHOT_LIMIT:
        text = text[:SNAPSHOT_LIMIT] + "\n# (snapshot truncated)"
    message = f"URL: {page.url}\nTitle: {await page.title()}\nPage snapshot:\n{text}"
    if visible_text:
        message += f"\n\nVisible text:\n{(await page.inner_text('body'))[:SNAPSHOT_LIMIT]}"
    return redact(message, values)


async def _xpath(page: Page, ref: str) -> str | None:
    with contextlib.suppress(PlaywrightError):
        return await page.locator(f"aria-ref={ref}").evaluate(
            """el => {
          const parts = [];
          for (; el && el.nodeType === 1; el = el.parentNode) {
            let i = 1; for (let s = el.previousElementSibling; s; s = s.previousElementSibling) if (s.nodeName === el.nodeName) i++;
            parts.unshift(el.nodeName.toLowerCase() + '[' + i + ']');
          }
          return 'xpath=/' + parts.join('/');
        }""",
            timeout=2_000,
        )
    return None


async def perform(page: Page, ref: str, method: str, arguments: list[str]) -> None:
    target = page.locator(f"aria-ref={ref}")
    first = arguments[0] if arguments else ""
    if method == "click":
        await target.click(timeout=ACTION_TIMEOUT_MS)
    elif method == "dblclick":
        await target.dblclick(timeout=ACTION_TIMEOUT_MS)
    elif method == "hover":
        await target.hover(timeout=ACTION_TIMEOUT_MS)
    elif method == "fill":
        await target.fill(first, timeout=ACTION_TIMEOUT_MS)
    elif method == "type":
        await target.press_sequentially(first, timeout=ACTION_TIMEOUT_MS)
    elif method == "press":
        await target.press(first or "Enter", timeout=ACTION_TIMEOUT_MS)
    elif method == "select":
        await target.select_option(first, timeout=ACTION_TIMEOUT_MS)
    elif method == "check":
        await target.check(timeout=ACTION_TIMEOUT_MS)
    elif method == "uncheck":
        await target.uncheck(timeout=ACTION_TIMEOUT_MS)
    else:
        raise EngineFailure("invocation.stagehand_failed", f"Unknown action method {method!r}")


ACTION_SCHEMA = {
    "type": "object",
    "properties": {
        "ref": {"type": "string", "description": "The element's ref from the snapshot"},
        "method": {"type": "string", "enum": METHODS},
        "arguments": {"type": "array", "items": {"type": "string"}, "description": "e.g. the text to fill"},
        "description": {"type": "string", "description": "What this action does, in a few words"},
    },
    "required": ["ref", "method"],
}
PERFORM = Tool("perform_action", "Perform one action on an element of the page", ACTION_SCHEMA)
NO_MATCH = Tool(
    "no_match",
    "Nothing on the page matches the instruction",
    {"type": "object", "properties": {"reason": {"type": "string"}}, "required": ["reason"]},
)
REPORT = Tool(
    "report_elements",
    "Report the elements that match the instruction",
    {"type": "object", "properties": {"elements": {"type": "array", "items": ACTION_SCHEMA}}, "required": ["elements"]},
)
DEFAULT_EXTRACT_SCHEMA = {
    "type": "object",
    "properties": {"extraction": {"type": "string"}},
    "required": ["extraction"],
}


class Engine:
    def __init__(self, llm: LlmClient, endpoint: Endpoint, reporter: Reporter) -> None:
        self.llm, self.endpoint, self.reporter = llm, endpoint, reporter

    async def _ask(self, messages: list[dict[str, Any]], tools: list[Tool], system: str = SYSTEM) -> Reply:
        if self.reporter.cancelled():
            raise Cancelled()
        try:
            reply = await self.llm.chat(self.endpoint, system, messages, tools, require_tool=True, temperature=0)
        except LlmError as exc:
            raise EngineFailure("invocation.stagehand_failed", exc.message, {"llmCode": exc.code}) from None
        await self.reporter.llm(reply, self.endpoint.model)
        return reply

    async def run(
        self, connect: Callable[[], Awaitable[Browser]], method: str, request: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            browser = await connect()
        except PlaywrightError as exc:
            raise EngineFailure(
                "invocation.dispatch_unavailable", f"The runtime's browser cannot be reached: {str(exc)[:200]}"
            ) from None
        try:
            context = browser.contexts[0] if browser.contexts else await browser.new_context()
            target = (request.get("target") or {}).get("page", "active")
            page = await context.new_page() if target == "new" or not context.pages else context.pages[-1]
            instruction = request["instruction"]
            if method == "act":
                return await self.act(page, instruction)
            if method == "observe":
                return {"elements": await self.observe(page, instruction)}
            if method == "extract":
                return await self.extract(page, instruction, request.get("outputSchema"))
            return await self.agent(
                context, page, instruction, int(request.get("maxSteps") or 10), request.get("outputSchema")
            )
        except PlaywrightError as exc:
            raise EngineFailure("invocation.stagehand_failed", f"The browser failed: {str(exc)[:300]}") from None

    # --- act / observe / extract ---

    async def act(self, page: Page, instruction: str) -> dict[str, Any]:
        for attempt in (1, 2):
            reply = await self._ask(
                [{"role": "user", "text": f"Instruction: {instruction}\n\n{await page_message(page)}"}],
                [PERFORM, NO_MATCH],
            )
            call = _one_call(reply, {"perform_action", "no_match"})
            if call.name == "no_match":
                return {
                    "success": False,
                    "message": call.arguments.get("reason") or "No matching element",
                    "actionDescription": None,
                    "actions": [],
                }
            ref, how = str(call.arguments.get("ref", "")), str(call.arguments.get("method", "click"))
            args = [str(a) for a in call.arguments.get("arguments") or []]
            selector = await _xpath(page, ref)
            if selector is None and attempt == 1:
                continue  # stale or invented ref: look again, once
            try:
                await perform(page, ref, how, args)
            except PlaywrightError as exc:
                if attempt == 1:
                    continue
                raise EngineFailure("invocation.stagehand_failed", f"The action failed: {str(exc)[:200]}") from None
            description = call.arguments.get("description") or f"{how} {ref}"
            await self.reporter.step({"action": how, "target": selector, "url": page.url, "reasoning": description})
            return {
                "success": True,
                "message": f"Performed {how}",
                "actionDescription": description,
                "actions": [{"selector": selector, "method": how, "arguments": args}],
            }
        raise EngineFailure("invocation.stagehand_failed", "The model kept naming elements that are not on the page")

    async def observe(self, page: Page, instruction: str) -> list[dict[str, Any]]:
        reply = await self._ask(
            [{"role": "user", "text": f"Find: {instruction}\n\n{await page_message(page)}"}],
            [REPORT],
        )
        call = _one_call(reply, {"report_elements"})
        found = []
        for element in call.arguments.get("elements") or []:
            if not isinstance(element, dict):
                continue
            selector = await _xpath(page, str(element.get("ref", "")))
            if selector:
                found.append(
                    {
                        "selector": selector,
                        "description": element.get("description") or "",
                        "method": element.get("method") or "click",
                        "arguments": [str(a) for a in element.get("arguments") or []],
                    }
                )
        await self.reporter.step(
            {"action": "observe", "target": None, "url": page.url, "reasoning": f"{len(found)} element(s) found"}
        )
        return found

    async def extract(self, page: Page, instruction: str, schema: dict | None) -> dict[str, Any]:
        schema = schema or DEFAULT_EXTRACT_SCHEMA
        tool = Tool("return_data", "Return the data extracted from the page", _object_schema(schema))
        messages: list[dict[str, Any]] = [
            {"role": "user", "text": f"Extract: {instruction}\n\n{await page_message(page, visible_text=True)}"}
        ]
        for _attempt in (1, 2):
            reply = await self._ask(messages, [tool])
            call = _one_call(reply, {"return_data"})
            data = _unwrap(call.arguments, schema)
            problem = _validation_error(data, schema)
            if problem is None:
                await self.reporter.step(
                    {"action": "extract", "target": None, "url": page.url, "reasoning": "data extracted"}
                )
                return data if isinstance(data, dict) else {"data": data}
            messages += [
                reply.assistant,
                {"role": "tool", "id": call.id, "content": f"That does not match the schema: {problem}. Try again."},
            ]
        raise EngineFailure(
            "invocation.output_validation_failed", f"The extracted data does not match outputSchema: {problem}"
        )

    # --- agent ---

    async def agent(self, context, page: Page, instruction: str, max_steps: int, schema: dict | None) -> dict[str, Any]:
        tools = _agent_tools(schema)
        messages: list[dict[str, Any]] = [{"role": "user", "text": f"Task: {instruction}"}]
        system = SYSTEM + (
            " Work step by step with one tool call per turn. When the task is complete (or cannot "
            "be completed), call done."
        )
        for step in range(1, max_steps + 1):
            page = context.pages[-1] if context.pages else await context.new_page()
            messages.append(
                {"role": "user", "text": f"Step {step} of at most {max_steps}.\n{await page_message(page)}"}
            )
            reply = await self._ask(messages, tools, system)
            messages.append(reply.assistant)
            call = _one_call(reply, {t.name for t in tools})
            outcome = await self._agent_action(page, call.name, call.arguments)
            await self.reporter.step(
                {
                    "action": call.name,
                    "target": call.arguments.get("ref") or call.arguments.get("url"),
                    "url": page.url,
                    "reasoning": (reply.text or "")[:300],
                    "step": step,
                }
            )
            if call.name == "done":
                result = call.arguments.get("result")
                if schema is not None:
                    problem = _validation_error(result, schema)
                    if problem is not None:
                        raise EngineFailure(
                            "invocation.output_validation_failed",
                            f"The agent's result does not match outputSchema: {problem}",
                        )
                return {"success": bool(call.arguments.get("success", True)), "result": result, "steps": step}
            # Older snapshots collapse to one line: the model always reads the current page.
            for earlier in messages[:-2]:
                if earlier.get("role") == "user" and "Page snapshot:" in earlier.get("text", ""):
                    earlier["text"] = earlier["text"].split("Page snapshot:")[0] + "(earlier snapshot omitted)"
            messages.append({"role": "tool", "id": call.id, "content": outcome})
        raise EngineFailure("invocation.stagehand_incomplete", f"The agent did not finish within {max_steps} steps")

    async def _agent_action(self, page: Page, name: str, args: dict[str, Any]) -> str:
        try:
            if name == "goto":
                await page.goto(str(args.get("url", "")), wait_until="domcontentloaded", timeout=30_000)
            elif name in ("click", "fill", "press", "select"):
                value = [str(args["text"])] if "text" in args else ([str(args["value"])] if "value" in args else [])
                await perform(page, str(args.get("ref", "")), name, value)
            elif name == "scroll":
                await page.mouse.wheel(0, 600 if args.get("direction", "down") == "down" else -600)
            elif name == "go_back":
                await page.go_back(timeout=15_000)
            elif name == "wait":
                await page.wait_for_timeout(min(float(args.get("seconds", 1)), 10) * 1000)
            elif name == "done":
                return "finished"
        except (PlaywrightError, ValueError) as exc:
            return f"That failed: {str(exc)[:300]}"
        with contextlib.suppress(PlaywrightError):
            await page.wait_for_load_state("domcontentloaded", timeout=5_000)
        return "ok"


def _agent_tools(schema: dict | None) -> list[Tool]:
    ref = {"type": "string", "description": "element ref from the latest snapshot"}
    done_result = schema if schema is not None else {"type": "string", "description": "the answer or a summary"}
    return [
        Tool(
            "goto",
            "Open a URL in the current tab",
            {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
        ),
        Tool("click", "Click an element", {"type": "object", "properties": {"ref": ref}, "required": ["ref"]}),
        Tool(
            "fill",
            "Replace the text of an input",
            {"type": "object", "properties": {"ref": ref, "text": {"type": "string"}}, "required": ["ref", "text"]},
        ),
        Tool(
            "press",
            "Press a key in an element",
            {
                "type": "object",
                "properties": {"ref": ref, "text": {"type": "string", "description": "a key such as Enter"}},
                "required": ["ref"],
            },
        ),
        Tool(
            "select",
            "Choose an option of a select",
            {"type": "object", "properties": {"ref": ref, "value": {"type": "string"}}, "required": ["ref", "value"]},
        ),
        Tool(
            "scroll",
            "Scroll the page",
            {"type": "object", "properties": {"direction": {"type": "string", "enum": ["down", "up"]}}},
        ),
        Tool("go_back", "Go back in history", {"type": "object", "properties": {}}),
        Tool("wait", "Wait a moment for the page", {"type": "object", "properties": {"seconds": {"type": "number"}}}),
        Tool(
            "done",
            "Finish the task",
            {
                "type": "object",
                "properties": {"success": {"type": "boolean"}, "result": done_result},
                "required": ["success", "result"],
            },
        ),
    ]


def _one_call(reply: Reply, allowed: set[str]):
    calls = [c for c in reply.tool_calls if c.name in allowed]
    if not calls:
        named = ", ".join(c.name for c in reply.tool_calls) or "no tool"
        raise EngineFailure(
            "invocation.stagehand_failed",
            f"The model answered with {named} instead of one of {', '.join(sorted(allowed))}",
        )
    return calls[0]


def _object_schema(schema: dict) -> dict:
    """Tool parameters must be an object: wrap anything else as {"value": schema}."""
    return (
        schema
        if schema.get("type") == "object"
        else {"type": "object", "properties": {"value": schema}, "required": ["value"]}
    )


def _unwrap(arguments: dict[str, Any], schema: dict) -> Any:
    return arguments if schema.get("type") == "object" else arguments.get("value")


def _validation_error(data: Any, schema: dict) -> str | None:
    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as exc:
        return exc.message[:300]
    except Unresolvable as exc:
        return f"the schema has a reference that cannot be resolved: {str(exc)[:200]}"
    return None


# Keywords whose values are data, not schemas: a "$ref" key inside them is no reference.
_DATA_KEYWORDS = {"const", "enum", "default", "examples", "example"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    if not isinstance(node, dict):
        return []
    found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    return found + [ref for key, value in node.items() if key not in _DATA_KEYWORDS for ref in _refs(value)]


def schema_problem(schema: dict) -> str | None:
    """Why `schema` is not a JSON Schema a value can be checked against, or None: it must be valid for
    its dialect and every `$ref` in it must resolve within it (nothing is fetched), else validating an
    answer would fail with no answer ever accepted."""
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return exc.message[:300]
    dialect = cls.META_SCHEMA.get("$id") or cls.META_SCHEMA.get("id") or ""
    resource = specification_with(dialect, default=DRAFT202012).create_resource(schema)
    resolver = Registry().resolver_with_root(resource)
    for ref in _refs(schema):
        try:
            resolver.lookup(ref)
        except Unresolvable:
            return f"the reference {ref[:100]!r} cannot be resolved within the schema"
    return None


def check_schema(schema: Any) -> str | None:
    """Why `schema` is not a usable JSON Schema, or None."""
    if not isinstance(schema, dict):
        return "outputSchema must be a JSON Schema object"
    return schema_problem(schema)
