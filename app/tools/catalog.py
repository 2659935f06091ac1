"""The built-in tool catalogue: what an agent may name in its `tools`, with the JSON-Schema input the
model is shown and the output a call answers with.

`BUILTIN` holds the tools this server implements (the executors live in `app/toolcalls/executors.py`).
`REFUSED` names the contract's other built-ins and why they are not offered here: an agent naming one
is 400 `tool.unavailable` (never accepted silently), and `GET /v1/tools` does not list them.

`needs_browser`: a task whose agent version has such a tool drives a browser (the one named by
`metadata.browserId`, else one launched in its space for the task)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# When this catalogue was last changed: the built-ins' createdAt/updatedAt on the wire.
CATALOG_DATE = datetime(2026, 12, 6, tzinfo=UTC)

_PAGE_ID = {
    "type": "string",
    "maxLength": 64,
    "description": "A page's id (browser.pages.list); the active page when absent",
}


@dataclass(frozen=True)
class BuiltinTool:
    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    needs_browser: bool
    runtime_types: list[str] = field(default_factory=lambda: ["browser"])


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


_PAGE = _obj(
    {
        "id": {"type": "string"},
        "url": {"type": "string"},
        "title": {"type": "string"},
        "active": {"type": "boolean"},
    },
    ["id", "url"],
)
_ANY_OBJECT: dict[str, Any] = {"type": "object"}

_TOOLS = [
    BuiltinTool(
        "stagehand.act",
        "Perform one action on the page described in plain words (click a button, type into a field, "
        "choose an option). Returns what was done.",
        _obj(
            {
                "instruction": {"type": "string", "minLength": 1, "maxLength": 2000},
                "pageId": _PAGE_ID,
            },
            ["instruction"],
        ),
        _obj({"success": {"type": "boolean"}, "action": {"type": "string"}, "message": {"type": "string"}}),
        True,
    ),
    BuiltinTool(
        "stagehand.observe",
        "List the elements of the page that match a description, with the action each one suggests.",
        _obj(
            {
                "instruction": {"type": "string", "minLength": 1, "maxLength": 2000},
                "pageId": _PAGE_ID,
            },
            ["instruction"],
        ),
        _obj({"elements": {"type": "array", "items": _ANY_OBJECT}}, ["elements"]),
        True,
    ),
    BuiltinTool(
        "stagehand.extract",
        "Extract data from the page as described, shaped by an optional JSON Schema.",
        _obj(
            {
                "instruction": {"type": "string", "minLength": 1, "maxLength": 2000},
                "schema": {"type": "object", "description": "JSON Schema of the data wanted"},
                "pageId": _PAGE_ID,
            },
            ["instruction"],
        ),
        _obj({"data": {}}, ["data"]),
        True,
    ),
    BuiltinTool(
        "human.request",
        "Ask a person for input and wait for the answer (the task shows as awaiting_input until someone "
        "answers through tasks.input, the tool call's respond, or a view with control).",
        _obj(
            {
                "prompt": {"type": "string", "minLength": 1, "maxLength": 4000},
                "schema": {"type": "object", "description": "JSON Schema the answer must satisfy"},
                "timeoutSeconds": {"type": "integer", "minimum": 10, "maximum": 86400},
            },
            ["prompt"],
        ),
        _obj({"value": {}}, ["value"]),
        False,
    ),
    BuiltinTool(
        "browser.pages.list",
        "List the browser's open pages (id, url, title, which one is active).",
        _obj({}),
        _obj({"pages": {"type": "array", "items": _PAGE}}, ["pages"]),
        True,
    ),
    BuiltinTool(
        "browser.pages.open",
        "Open a new page, optionally at a URL, and make it the active one.",
        _obj({"url": {"type": "string", "maxLength": 8192}}),
        _PAGE,
        True,
    ),
    BuiltinTool(
        "browser.pages.get",
        "Describe one page (the active page when no id is given): id, url, title.",
        _obj({"pageId": _PAGE_ID}),
        _PAGE,
        True,
    ),
    BuiltinTool(
        "browser.pages.activate",
        "Make a page the active one (the page the other browser tools act on by default).",
        _obj({"pageId": _PAGE_ID}, ["pageId"]),
        _PAGE,
        True,
    ),
    BuiltinTool(
        "browser.pages.close",
        "Close a page.",
        _obj({"pageId": _PAGE_ID}, ["pageId"]),
        _obj({"closed": {"type": "boolean"}}, ["closed"]),
        True,
    ),
    BuiltinTool(
        "secrets.list",
        "List the vault's secrets the task may use (path, type, which fields are set); never their values.",
        _obj({"prefix": {"type": "string", "maxLength": 512}}),
        _obj({"secrets": {"type": "array", "items": _ANY_OBJECT}}, ["secrets"]),
        False,
    ),
    BuiltinTool(
        "secrets.fill",
        "Fill a login secret (username, password, and a one-time code when it has a TOTP seed) into the "
        "page's sign-in form, only if the page's origin is one the secret allows. The values never reach "
        "the model.",
        _obj(
            {
                "secret": {"type": "string", "minLength": 1, "maxLength": 512, "description": "Secret path or id"},
                "pageId": _PAGE_ID,
                "submit": {"type": "boolean", "description": "Submit the form after filling (default false)"},
            },
            ["secret"],
        ),
        _obj(
            {
                "filled": {"type": "array", "items": {"enum": ["username", "password", "totp"]}},
                "origin": {"type": "string"},
            },
            ["filled"],
        ),
        True,
    ),
    BuiltinTool(
        "files.list",
        "List files of the task's space (path, size, content type).",
        _obj(
            {
                "prefix": {"type": "string", "maxLength": 1024},
                "limit": {"type": "integer", "minimum": 1, "maximum": 200},
            }
        ),
        _obj({"files": {"type": "array", "items": _ANY_OBJECT}}, ["files"]),
        False,
    ),
    BuiltinTool(
        "files.read_text",
        "Read a text file of the task's space (UTF-8, at most maxBytes).",
        _obj(
            {
                "path": {"type": "string", "minLength": 1, "maxLength": 1024},
                "maxBytes": {"type": "integer", "minimum": 1, "maximum": 1_000_000},
            },
            ["path"],
        ),
        _obj({"text": {"type": "string"}, "truncated": {"type": "boolean"}}, ["text"]),
        False,
    ),
]

BUILTIN: dict[str, BuiltinTool] = {t.name: t for t in _TOOLS}

# The contract's other built-ins: refused (400 tool.unavailable) with the reason.
REFUSED: dict[str, str] = {
    "captcha.solve": "no captcha solver is available on this server",
    "captcha.status": "no captcha solver is available on this server",
    "captcha.wait": "no captcha solver is available on this server",
    "computer.use": "computer-use actions are not offered to agents on this server; use stagehand.act",
    "browser.setInputFiles": "uploading files into pages is not offered to agents on this server",
    "runtime.files.list": "browser-local files are not offered to agents on this server; use files.list",
    "run.files.list": "run files are not offered to agents on this server; use files.list",
    "run.files.add": "run files are not offered to agents on this server",
    "run.files.collect": "run files are not offered to agents on this server",
    "run.files.export": "run files are not offered to agents on this server",
    "secrets.request": "asking a person for a new secret is not offered; use human.request and the vault",
    "code.execute": "code execution is not offered on this server",
}


def is_builtin_name(name: str) -> bool:
    return name in BUILTIN or name in REFUSED
