"""Wire models of the pages of a running browser in the current generation (the 0.3 wheel's
`PageResult`, `PagesResult`, `PageDeleteResult`, `PagePdfResult`, `PageScreenshotResult` and what they
hold). Every result is `{object: "pages.result", status, eventId, data}`; `status` is `unknown` when an
operation was started but its outcome is not known (a navigation that ran out of time)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from app.browsing.pages import MAX_CAPTURE_SIDE
from app.core.schemas import RequestModel, WireModel

ResultStatus = Literal["succeeded", "unknown"]
MAX_URL = 8192
# A navigation waits at most this long (the SDK's own request timeout is 60 s; raise it to wait longer).
MAX_TIMEOUT_MS = 120_000


# What the validator below accepts, for the API description (a URL's host must be there).
# (A name or IPv4 host: IPv6 literals are not described; a port within 0..65535, or none.)
HTTP_URL = (
    r"[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9._~!$&'()*+,;=:-]*@)?[A-Za-z0-9._~-]*[A-Za-z0-9][A-Za-z0-9._~-]*"
    r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])?)?(?:[/?#]\S*)?"
)


def _http_url(value: str, also_blank: bool) -> str:
    if also_blank and value == "about:blank":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        allowed = "an http(s) URL or about:blank" if also_blank else "an http(s) URL"
        raise ValueError(f"must be {allowed}")
    return value


# --- requests ---


class PageOpenIn(RequestModel):
    url: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_URL,
        pattern=f"^(?:about:blank|{HTTP_URL})$",
        description="http(s) URL or about:blank",
        examples=["https://example.com/"],
    )
    activate: bool | None = Field(default=None, description="Bring the new page to the front (default true)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, also_blank=True)


class PageNavigateIn(RequestModel):
    url: str = Field(
        min_length=1,
        max_length=MAX_URL,
        pattern=f"^{HTTP_URL}$",
        description="http(s) URL",
        examples=["https://example.com/"],
    )
    timeout_ms: int | None = Field(
        default=None, ge=100, le=MAX_TIMEOUT_MS, description="How long to wait for the document (default 30000)"
    )
    wait_until: Literal["load", "domcontentloaded", "networkidle", "commit"] | None = Field(
        default=None, description="What the wait waits for (default `load`); an extension of this server"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value, also_blank=False)


class PagePdfIn(RequestModel):
    landscape: bool | None = None
    print_background: bool | None = None
    scale: float | None = Field(default=None, ge=0.1, le=2.0, description="0.1 to 2 (default 1)")


class ClipIn(RequestModel):
    """A rectangle in CSS pixels: relative to the viewport, or to the page's top left with fullPage."""

    x: float = Field(ge=0, le=MAX_CAPTURE_SIDE)
    y: float = Field(ge=0, le=10 * MAX_CAPTURE_SIDE)
    width: float = Field(gt=0, le=MAX_CAPTURE_SIDE)
    height: float = Field(gt=0, le=MAX_CAPTURE_SIDE)


class PageScreenshotIn(RequestModel):
    format: Literal["png", "jpeg", "webp"] | None = Field(default=None, description="Default png")
    quality: int | None = Field(default=None, ge=0, le=100, description="jpeg and webp only")
    full_page: bool | None = None
    clip: ClipIn | None = Field(default=None, description="Capture this rectangle only; an extension of this server")

    @model_validator(mode="after")
    def _quality_needs_lossy(self) -> PageScreenshotIn:
        if self.quality is not None and (self.format or "png") == "png":
            raise ValueError("quality applies to jpeg and webp only")
        return self


# --- results ---


class BrowserPageOut(WireModel):
    id: str = Field(description="The page's id (its CDP target id), stable for the run; run events' pageId")
    object: Literal["page"] = "page"
    run_id: str
    url: str
    title: str
    active: bool = Field(description="The page API actions (computer use) go to, shown in front")


class BrowserPagesListOut(WireModel):
    data: list[BrowserPageOut]
    has_more: bool
    next_cursor: str | None = None


class BrowserPageDeletedOut(WireModel):
    id: str
    object: Literal["page"] = "page"
    run_id: str
    deleted: bool = True


class PagePdfOut(WireModel):
    object: Literal["page.pdf"] = "page.pdf"
    page_id: str
    run_id: str
    mime_type: Literal["application/pdf"] = "application/pdf"
    data: str = Field(description="The document, base64")


class PageScreenshotOut(WireModel):
    object: Literal["page.screenshot"] = "page.screenshot"
    page_id: str
    run_id: str
    mime_type: Literal["image/png", "image/jpeg", "image/webp"]
    data: str = Field(description="The image, base64")


class _Result(WireModel):
    object: Literal["pages.result"] = "pages.result"
    status: ResultStatus = "succeeded"
    event_id: str = Field(description="The run event this operation recorded")


class PageResultOut(_Result):
    data: BrowserPageOut | None = None


class PagesResultOut(_Result):
    data: BrowserPagesListOut | None = None


class PageDeleteResultOut(_Result):
    data: BrowserPageDeletedOut | None = None


class PagePdfResultOut(_Result):
    data: PagePdfOut | None = None


class PageScreenshotResultOut(_Result):
    data: PageScreenshotOut | None = None
