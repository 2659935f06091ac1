"""A person answers an agent in a view: the pending input requests (`human.request` tool calls waiting
for a person) of the tasks driving a run of the view, and the answer, through the view's token.

Only a view that grants `control` sees and answers them (403 `viewer.control_forbidden` otherwise):
answering steers the agent as much as taking the browser would. A run the view may not show is 404, as
for the page's other routes; the answer goes through the tool call's own `respond` (validated against
the request's schema, 409 once answered, expired or no longer waiting), recorded as the view's answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import Field
from sqlalchemy import select

from app.core import clock
from app.core.context import AppContext, CtxDep
from app.core.errors import NotFound
from app.core.schemas import RequestModel
from app.runs.models import Run
from app.toolcalls import service as toolcalls
from app.toolcalls.models import ToolCall
from app.views import service as views
from app.views.models import View
from app.views.router import PageView, ViewRun
from app.views.service import Forbidden

pages = APIRouter(include_in_schema=False)
routers = (pages,)

# How many pending requests the page lists at most (the oldest first: asked first, answered first).
SHOWN = 50


class InputAnswerIn(RequestModel):
    run_id: str = Field(max_length=64)
    value: Any = None


def _require_control(view: View) -> None:
    if not view.control:
        raise Forbidden("This view does not allow control: it cannot answer the agent", code="viewer.control_forbidden")


def request_not_found(request_id: object) -> NotFound:
    return NotFound(
        "No such input request on this run", code="tool_call.not_found", details={"toolCallId": str(request_id)}
    )


def fields_of(schema: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The answer's fields as a form shows them: an object schema's properties (name, type, title,
    description, enum, required), else one field named `value` of the schema's type."""
    schema = schema if isinstance(schema, dict) else {}
    props = schema.get("properties")
    if schema.get("type") == "object" and isinstance(props, dict):
        required = set(schema.get("required") or [])
        return [
            {
                "name": name,
                "type": (prop or {}).get("type") or "string",
                "title": (prop or {}).get("title") or name,
                "description": (prop or {}).get("description"),
                "enum": (prop or {}).get("enum"),
                "required": name in required,
            }
            for name, prop in props.items()
            if isinstance(name, str)
        ]
    return [
        {
            "name": "value",
            "type": schema.get("type") or "string",
            "title": schema.get("title") or "Answer",
            "description": schema.get("description"),
            "enum": schema.get("enum"),
            "required": True,
        }
    ]


def _out(call: ToolCall) -> dict[str, Any]:
    request = call.input_request or {}
    schema = request.get("schema")
    return {
        "id": str(call.id),
        "taskId": str(call.task_id) if call.task_id else None,
        "toolName": call.tool_name,
        "prompt": request.get("prompt") or request.get("summary") or "",
        "schema": schema,
        "fields": fields_of(schema),
        "handoff": bool(request.get("handoff")),
        "expiresAt": clock.iso(call.expires_at),
        "createdAt": clock.iso(call.created_at),
    }


async def pending(ctx: AppContext, view: View, run: Run) -> list[ToolCall]:
    now = clock.now()
    async with ctx.db.read() as s:
        rows = (
            await s.execute(
                select(ToolCall)
                .where(
                    ToolCall.account_id == view.account_id,
                    ToolCall.run_id == run.id,
                    ToolCall.status == "awaiting_input",
                )
                .order_by(ToolCall.created_at, ToolCall.id)
                .limit(SHOWN)
            )
        ).scalars()
        return [r for r in rows if r.input_request and (r.expires_at is None or r.expires_at > now)]


@pages.get("/view/input-requests")
async def view_input_requests(ctx: CtxDep, view: PageView, run: ViewRun) -> dict[str, Any]:
    """What the agents driving the run ask a person now (403 unless the view allows control)."""
    _require_control(view)
    return {"items": [_out(call) for call in await pending(ctx, view, run)]}


@pages.post("/view/input-requests/{request_id}")
async def view_answer_input(
    ctx: CtxDep, view: PageView, request_id: Annotated[str, PathParam(max_length=64)], body: InputAnswerIn
) -> dict[str, Any]:
    """Answer one of them: `value` must match the request's schema (400 `tool_call.response_invalid`);
    409 once answered, expired (`tool_call.input_expired`) or no longer waiting; the task then runs on."""
    run = await views.visible_run(ctx, view, body.run_id)
    _require_control(view)
    try:
        call_id = uuid.UUID(request_id)
    except ValueError:
        raise request_not_found(request_id) from None
    async with ctx.db.read() as s:
        call = await s.get(ToolCall, call_id)
    if call is None or call.account_id != view.account_id or call.run_id != run.id or call.input_request is None:
        raise request_not_found(request_id)
    answered = await toolcalls.respond(ctx, call, body.value, actor={"type": "view", "viewId": str(view.id)})
    return {"id": str(answered.id), "status": answered.status}
