"""Wire models of computer use in the current generation (the 0.3 wheel's ComputerActionRequest*,
ComputerResult, ComputerUseOutput*, ComputerBatchResult* and ComputerClipboard* models)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from app.browsing import computer
from app.core.schemas import RequestModel, WireModel

# A coordinate is inside the page's viewport (at most 7680 x 4320, the largest one a browser can have).
Number = Annotated[float, Field(allow_inf_nan=False, ge=0, le=7680)]
Coordinate = Annotated[
    list[Number],
    Field(
        min_length=2,
        max_length=2,
        description="[x, y] in CSS pixels of the active page's viewport (a screenshot's pixels)",
    ),
]
Modifiers = Annotated[
    str | None,
    Field(
        max_length=64,
        pattern=computer.MODIFIERS_PATTERN,
        description="Modifier keys held during the action, joined with +: `ctrl+shift`",
    ),
]
Button = Literal["left", "right", "middle"]
Direction = Literal["up", "down", "left", "right"]
ClickCount = Annotated[int | None, Field(ge=1, le=3, description="1 to 3; 2 and 3 need the left button")]
Amount = Annotated[int, Field(ge=1, le=computer.MAX_SCROLL_AMOUNT, description="Wheel notches of 100 CSS pixels")]
Text = Annotated[str, Field(min_length=1, max_length=computer.MAX_TYPE_CHARS)]
Keys = Annotated[
    str,
    Field(
        min_length=1,
        max_length=computer.MAX_KEYS_CHARS,
        pattern=computer.CHORD_PATTERN,
        description="One chord: modifiers and a key joined with +, e.g. `Enter`, `ctrl+a`, `shift+Tab`",
    ),
]
Repeat = Annotated[int | None, Field(ge=1, le=computer.MAX_REPEAT)]
Duration = Annotated[float | None, Field(ge=0, le=computer.MAX_WAIT_SECONDS, description="Seconds (default 1)")]
Path = Annotated[list[Coordinate] | None, Field(max_length=computer.MAX_PATH_POINTS)]


# --- requests ----------------------------------------------------------------------------------------


class ClickBody(RequestModel):
    button: Button | None = None
    click_count: ClickCount = None
    coordinate: Coordinate | None = None
    modifiers: Modifiers = None


class DoubleClickBody(RequestModel):
    coordinate: Coordinate | None = None
    modifiers: Modifiers = None


class MoveBody(RequestModel):
    coordinate: Coordinate


class DragBody(RequestModel):
    coordinate: Coordinate
    modifiers: Modifiers = None
    path: Path = None
    start_coordinate: Coordinate | None = None


class ScrollBody(RequestModel):
    amount: Amount
    coordinate: Coordinate | None = None
    direction: Direction
    modifiers: Modifiers = None


class TypeBody(RequestModel):
    text: Text


class KeyBody(RequestModel):
    keys: Keys
    repeat: Repeat = None


class WaitBody(RequestModel):
    duration: Duration = None


class ClipboardWrite(RequestModel):
    text: str = Field(description="At most 256 KiB of UTF-8; empty clears the clipboard")


class ScreenshotAction(RequestModel):
    action: Literal["screenshot"]


class ClickAction(ClickBody):
    action: Literal["click"]


class DoubleClickAction(DoubleClickBody):
    action: Literal["doubleClick"]


class MoveAction(MoveBody):
    action: Literal["move"]


class DragAction(DragBody):
    action: Literal["drag"]


class ScrollAction(ScrollBody):
    action: Literal["scroll"]


class TypeAction(TypeBody):
    action: Literal["type"]


class KeyAction(KeyBody):
    action: Literal["key"]


class WaitAction(WaitBody):
    action: Literal["wait"]


class CursorAction(RequestModel):
    action: Literal["cursor"]


ActionRequest = Annotated[
    ScreenshotAction
    | ClickAction
    | DoubleClickAction
    | MoveAction
    | DragAction
    | ScrollAction
    | TypeAction
    | KeyAction
    | WaitAction
    | CursorAction,
    Field(discriminator="action"),
]


class BatchBody(RequestModel):
    actions: list[ActionRequest] = Field(
        min_length=1, max_length=computer.MAX_BATCH, description=f"1 to {computer.MAX_BATCH} actions, run in order"
    )


def _point(value: list[float] | None) -> tuple[float, float] | None:
    return None if value is None else (value[0], value[1])


def action_of(body: RequestModel, kind: str, at: str = "") -> computer.Action:
    """A request (a single action's body or a batch item) as the service's action."""
    fields: dict[str, Any] = {"kind": kind, "at": at}
    if isinstance(body, ClickBody):
        fields.update(button=body.button or "left", clicks=body.click_count or 1, modifiers=body.modifiers)
    if isinstance(body, ClickBody | DoubleClickBody | MoveBody | DragBody | ScrollBody):
        fields["coordinate"] = _point(body.coordinate)
    if isinstance(body, DoubleClickBody | DragBody | ScrollBody):
        fields["modifiers"] = body.modifiers
    if isinstance(body, DragBody):
        fields.update(start=_point(body.start_coordinate), path=tuple(_point(p) for p in body.path or ()))
    if isinstance(body, ScrollBody):
        fields.update(direction=body.direction, amount=body.amount)
    if isinstance(body, TypeBody):
        fields["text"] = body.text
    if isinstance(body, KeyBody):
        fields.update(keys=body.keys, repeat=body.repeat or 1)
    if isinstance(body, WaitBody):
        fields["duration"] = 1.0 if body.duration is None else body.duration
    return computer.Action(**fields)


# --- responses ---------------------------------------------------------------------------------------

OutputAction = Literal[
    "screenshot",
    "left_click",
    "right_click",
    "middle_click",
    "double_click",
    "triple_click",
    "type",
    "key",
    "mouse_move",
    "scroll",
    "left_click_drag",
    "wait",
    "cursor_position",
]
ResultStatus = Literal["succeeded", "unknown"]


class ImageOut(WireModel):
    data: str = Field(description="Base64 JPEG of the active page's viewport, in CSS pixels")
    mime_type: Literal["image/jpeg"] = "image/jpeg"


class ComputerUseOutputOut(WireModel):
    action: OutputAction
    coordinate: list[float] | None = None
    width: int = Field(description="The viewport's width in CSS pixels (a screenshot's width)")
    height: int
    image: ImageOut | None = None

    @classmethod
    def of(cls, out: computer.Output) -> ComputerUseOutputOut:
        return cls(
            action=out.action,
            coordinate=out.coordinate,
            width=out.width,
            height=out.height,
            image=ImageOut(data=out.image) if out.image is not None else None,
        )


class FailureOut(WireModel):
    code: str
    message: str


class ComputerResultOut(WireModel):
    object: Literal["computer.result"] = "computer.result"
    status: ResultStatus
    event_id: str
    data: ComputerUseOutputOut | None = None
    error: FailureOut | None = Field(default=None, description="Why the status is unknown: what the browser said")

    @classmethod
    def of(cls, result: computer.Result) -> ComputerResultOut:
        return cls(
            status="succeeded" if result.output is not None else "unknown",
            event_id=result.event_id,
            data=ComputerUseOutputOut.of(result.output) if result.output is not None else None,
            error=FailureOut(**result.error) if result.error else None,
        )


class BatchDataOut(WireModel):
    results: list[ComputerUseOutputOut]


class ComputerBatchResultOut(WireModel):
    object: Literal["computer.result"] = "computer.result"
    status: ResultStatus
    event_id: str
    data: BatchDataOut | None = Field(default=None, description="Every action's output; null when status is unknown")
    failed_index: int | None = Field(default=None, description="The action the browser failed (status unknown)")
    completed: int = Field(description="How many actions took effect")
    error: FailureOut | None = None

    @classmethod
    def of(cls, result: computer.BatchResult) -> ComputerBatchResultOut:
        failed = result.failed_index is not None
        return cls(
            status="unknown" if failed else "succeeded",
            event_id=result.event_id,
            data=None if failed else BatchDataOut(results=[ComputerUseOutputOut.of(o) for o in result.outputs]),
            failed_index=result.failed_index,
            completed=len(result.outputs),
            error=FailureOut(**result.error) if result.error else None,
        )


class ClipboardReadDataOut(WireModel):
    object: Literal["computer.clipboard"] = "computer.clipboard"
    run_id: str
    text: str


class ClipboardWriteDataOut(WireModel):
    object: Literal["computer.clipboard"] = "computer.clipboard"
    run_id: str
    written: bool


class ClipboardReadOut(WireModel):
    object: Literal["computer.result"] = "computer.result"
    status: ResultStatus = "succeeded"
    event_id: str
    data: ClipboardReadDataOut | None = None


class ClipboardWriteOut(WireModel):
    object: Literal["computer.result"] = "computer.result"
    status: ResultStatus = "succeeded"
    event_id: str
    data: ClipboardWriteDataOut | None = None
