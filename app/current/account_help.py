"""`GET /v1/help`: the current generation's operations, read from the application's own routes (every
route whose handler lives in `app.current`), so the list is never out of step with what is served.

`tools` is what the MCP server offers (app/mcp/catalog.py: (method, path) -> tool name), given by the
caller: a topic that is a tool has the `mcp` audience and names its tool and resources."""

from __future__ import annotations

import re
from collections.abc import Mapping

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.core.errors import NotFound
from app.current.account_schemas import (
    HelpApiOperationOut,
    HelpMcpToolOut,
    HelpOverviewOut,
    HelpSdkMethodOut,
    HelpTopicDetailOut,
    HelpTopicOut,
)

SUMMARY = (
    "A self-hosted BCTRL control plane speaking the API generation BCTRL-Version 2026-10-03 (the bctrl 0.3 "
    "client). Authenticate with `Authorization: Bearer <API key>`; `BCTRL-Space` (or `?spaceId`) scopes a "
    "request to one space. Ask for one topic with `?topic=` (e.g. `browsers.create`)."
)
AUDIENCES = ("api", "sdk", "mcp")  # no CLI speaks these operations here
HELP_RESOURCE = "bctrl://help"  # the MCP resources of the topics (app/mcp/resources.py)
OPENAPI_RESOURCE = "bctrl://docs/openapi.json"
Tools = Mapping[tuple[str, str], str]
_VERBS = {("GET", False): "list", ("POST", False): "create", ("GET", True): "get", ("PATCH", True): "update"}
_VERBS |= {("DELETE", True): "delete", ("PUT", True): "replace", ("PATCH", False): "update", ("PUT", False): "replace"}


# Paths that name one thing without an id (the SDK calls them get/update, or by their own name).
_SINGLETONS = {
    ("GET", "/v1/account"): "account.get",
    ("PATCH", "/v1/account"): "account.update",
    ("GET", "/v1/auth/whoami"): "auth.whoami",
    ("GET", "/v1/help"): "help",
}


def _topic_of(method: str, path: str) -> str:
    """`browsers.create`, `browsers.runs.list`, `browsers.stop`, `auth.whoami`: the SDK's naming."""
    if (method, path) in _SINGLETONS:
        return _SINGLETONS[method, path]
    parts = [p for p in path.removeprefix("/v1/").split("/") if p]
    names: list[str] = []
    ends_with_param = False
    for i, part in enumerate(parts):
        is_param = part.startswith("{")
        if not is_param:
            last_static = i == len(parts) - 1 and i > 0 and parts[i - 1].startswith("{")
            if last_static and method == "POST":  # an action on one resource: POST /v1/browsers/{id}/stop
                return ".".join([*names, part.replace("-", "_")])
            names.append(part.replace("-", "_"))
        ends_with_param = is_param
    verb = _VERBS.get((method, ends_with_param))
    return ".".join([*names, verb]) if verb else ".".join(names)


_CONVERTER = re.compile(r":[a-z]+}")


def _routes(routes, prefix: str = ""):
    """Every APIRoute with its full path as /openapi.json names it (no `:path` converter), through included
    routers (FastAPI keeps those as branches)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield _CONVERTER.sub("}", prefix + route.path), route
        elif (router := getattr(route, "original_router", None)) is not None:
            extra = getattr(getattr(route, "include_context", None), "prefix", "") or ""
            yield from _routes(router.routes, prefix + extra)


def _topics(app: FastAPI, tools: Tools) -> dict[str, HelpTopicDetailOut]:
    found: dict[str, HelpTopicDetailOut] = {}
    for path, route in _routes(app.routes):
        if not route.endpoint.__module__.startswith("app.current"):
            continue
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            topic = _topic_of(method, path)
            doc = (route.endpoint.__doc__ or route.name.replace("_", " ")).strip().split("\n\n")[0]
            tool = tools.get((method, path))
            found.setdefault(
                topic,
                HelpTopicDetailOut(
                    topic=topic,
                    title=route.name.replace("_", " ").capitalize(),
                    summary=" ".join(doc.split()),
                    api=HelpApiOperationOut(method=method, path=path),
                    sdk=[HelpSdkMethodOut(language="python", method=f"client.{topic}", package="bctrl")],
                    mcp=HelpMcpToolOut(
                        tool_name=tool,
                        operation_resource=f"{HELP_RESOURCE}/{topic}",
                        schema_resources=[OPENAPI_RESOURCE],
                    )
                    if tool
                    else None,
                ),
            )
    return dict(sorted(found.items()))


def _audiences(t: HelpTopicDetailOut) -> list[str]:
    return [a for a in AUDIENCES if a != "mcp" or t.mcp is not None]


def overview(app: FastAPI, audience: str | None, tools: Tools) -> HelpOverviewOut:
    topics = [t for t in _topics(app, tools).values() if audience is None or audience in _audiences(t)]
    return HelpOverviewOut(
        audience=audience,
        summary=SUMMARY,
        topics=[
            HelpTopicOut(
                topic=t.topic,
                title=t.title,
                summary=t.summary,
                audiences=_audiences(t),
                method=t.api.method,
                path=t.api.path,
            )
            for t in topics
        ],
    )


def topic(app: FastAPI, name: str, audience: str | None, tools: Tools) -> HelpTopicDetailOut:
    found = _topics(app, tools).get(name.strip().lower())
    if found is None or audience is not None and audience not in _audiences(found):
        raise NotFound(
            f"No help topic {name!r}" + (f" for the {audience} audience" if audience else ""),
            code="help.not_found",
            details={"topic": name, "hint": "GET /v1/help lists the topics"},
        )
    found.audience = audience
    return found
