"""OTLP/HTTP protobuf bodies: events as log records (`/v1/logs`), finished spans as traces (`/v1/traces`).

One LogRecord per event: its time, a severity from its outcome (failed: ERROR, denied: WARN, else INFO),
`event_name` its type, the event as JSON in the body, its ids and words as `bctrl.*` attributes, and
the trace it belongs to (`traceId`, 32 hex digits) when it has one. Spans are the current generation's
OpenTelemetry spans of a finished run (app/current/traces.py `span_out`), sent once, when the run ends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

SCOPE = InstrumentationScope(name="bctrl-server.drains")
CONTENT_TYPE = "application/x-protobuf"
_SEVERITY = {
    "failed": (SeverityNumber.SEVERITY_NUMBER_ERROR, "ERROR"),
    "denied": (SeverityNumber.SEVERITY_NUMBER_WARN, "WARN"),
}
_INFO = (SeverityNumber.SEVERITY_NUMBER_INFO, "INFO")
# Event fields carried as attributes (the whole event is also the record's body).
_ATTRIBUTES = {
    "id": "bctrl.event.id",
    "type": "bctrl.event.type",
    "category": "bctrl.event.category",
    "channel": "bctrl.event.channel",
    "source": "bctrl.event.source",
    "outcome": "bctrl.event.outcome",
    "seq": "bctrl.event.seq",
    "runId": "bctrl.run.id",
    "runtimeId": "bctrl.browser.id",
    "spaceId": "bctrl.space.id",
    "pageId": "bctrl.page.id",
    "taskId": "bctrl.task.id",
    "conversationId": "bctrl.conversation.id",
}
_SPAN_KINDS = {
    "internal": Span.SpanKind.SPAN_KIND_INTERNAL,
    "server": Span.SpanKind.SPAN_KIND_SERVER,
    "client": Span.SpanKind.SPAN_KIND_CLIENT,
    "producer": Span.SpanKind.SPAN_KIND_PRODUCER,
    "consumer": Span.SpanKind.SPAN_KIND_CONSUMER,
}


def _value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    return AnyValue(string_value=orjson.dumps(value).decode())


def _attributes(pairs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=_value(value)) for key, value in pairs.items() if value is not None]


def _nanos(iso: str | None) -> int:
    if not iso:
        return 0
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _resource(account_id: str) -> Resource:
    return Resource(attributes=_attributes({"service.name": "bctrl-server", "bctrl.account.id": account_id}))


def _hex_bytes(text: str | None, size: int) -> bytes:
    try:
        raw = bytes.fromhex(text or "")
    except ValueError:
        return b""
    return raw if len(raw) == size else b""


def log_record(event: dict[str, Any], observed: int) -> LogRecord:
    number, text = _SEVERITY.get(event.get("outcome", ""), _INFO)
    actor = event.get("actor") or {}
    pairs = {attribute: event.get(field) for field, attribute in _ATTRIBUTES.items()}
    pairs["bctrl.actor.type"] = actor.get("type")
    pairs["bctrl.actor.id"] = actor.get("id")
    return LogRecord(
        time_unix_nano=_nanos(event.get("time")),
        observed_time_unix_nano=observed,
        severity_number=number,
        severity_text=text,
        event_name=event.get("type", ""),
        body=AnyValue(string_value=orjson.dumps(event).decode()),
        attributes=_attributes(pairs),
        trace_id=_hex_bytes(event.get("traceId"), 16),
    )


def logs_body(account_id: str, events: list[dict[str, Any]], observed: int) -> bytes:
    records = [log_record(e, observed) for e in events]
    request = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(resource=_resource(account_id), scope_logs=[ScopeLogs(scope=SCOPE, log_records=records)])
        ]
    )
    return request.SerializeToString()


def _span(span: dict[str, Any]) -> Span:
    failed = span.get("status") == "error"
    return Span(
        trace_id=_hex_bytes(span.get("traceId"), 16),
        span_id=_hex_bytes(span.get("spanId"), 8),
        parent_span_id=_hex_bytes(span.get("parentSpanId"), 8),
        name=span.get("name", ""),
        kind=_SPAN_KINDS.get(span.get("kind", ""), Span.SpanKind.SPAN_KIND_INTERNAL),
        start_time_unix_nano=_nanos(span.get("startTime")),
        end_time_unix_nano=_nanos(span.get("endTime")),
        attributes=_attributes({**(span.get("attributes") or {}), "bctrl.event_ids": span.get("eventIds")}),
        status=Status(code=Status.StatusCode.STATUS_CODE_ERROR if failed else Status.StatusCode.STATUS_CODE_OK),
    )


def traces_body(account_id: str, spans: list[dict[str, Any]]) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=_resource(account_id), scope_spans=[ScopeSpans(scope=SCOPE, spans=[_span(s) for s in spans])]
            )
        ]
    )
    return request.SerializeToString()
