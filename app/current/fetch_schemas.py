"""Wire models of a browser's fetch (the 0.3 wheel's `BrowserFetchRequest`, `BrowserFetchResult`,
`BrowserFetchResponse`), and how a request body becomes the service's FetchSpec."""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from pydantic import Field

from app.browsing import fetch
from app.core.errors import InvalidRequest
from app.core.schemas import RequestModel, WireModel

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class BrowserFetchStreamIn(RequestModel):
    url: str = Field(min_length=1, max_length=8192, description="An absolute http or https URL")
    method: Method | None = None
    headers: dict[str, str] | None = Field(
        default=None, description="Extra request headers; a Cookie given here follows the browser's own"
    )
    body: str | None = Field(default=None, max_length=fetch.MAX_REQUEST_BODY * 4 // 3 + 4)
    body_encoding: Literal["utf8", "base64"] | None = None
    timeout_ms: int | None = Field(
        default=None,
        ge=1,
        le=fetch.MAX_TIMEOUT_MS,
        description=f"Default {fetch.DEFAULT_TIMEOUT_MS}; past it the answer is 504 browser.fetch_timeout",
    )

    def spec(self, max_bytes: int = fetch.DEFAULT_MAX_BYTES) -> fetch.FetchSpec:
        method = self.method or "GET"
        body: bytes | None = None
        if self.body is not None:
            if method in ("GET", "HEAD"):
                raise InvalidRequest(
                    f"body: a {method} request has no body",
                    details={
                        "fields": [{"field": "body", "in": "body", "message": "not allowed", "type": "value_error"}]
                    },
                )
            if self.body_encoding == "base64":
                try:
                    body = base64.b64decode(self.body, validate=True)
                except (binascii.Error, ValueError):
                    raise InvalidRequest(
                        "body: not valid base64",
                        details={
                            "fields": [{"field": "body", "in": "body", "message": "not base64", "type": "value_error"}]
                        },
                    ) from None
            else:
                body = self.body.encode()
            if len(body) > fetch.MAX_REQUEST_BODY:
                raise InvalidRequest(f"body: at most {fetch.MAX_REQUEST_BODY} bytes")
        return fetch.FetchSpec(
            url=fetch.check_url(self.url),
            method=method,
            headers=fetch.check_headers(self.headers),
            body=body,
            timeout_ms=self.timeout_ms or fetch.DEFAULT_TIMEOUT_MS,
            max_bytes=max_bytes,
        )


class BrowserFetchIn(BrowserFetchStreamIn):
    max_bytes: int | None = Field(
        default=None,
        ge=1,
        le=fetch.MAX_BYTES_LIMIT,
        description=f"Body bytes returned (default {fetch.DEFAULT_MAX_BYTES}); beyond it `truncated` is true",
    )


class FetchTimingOut(WireModel):
    duration_ms: int


class BrowserFetchResponseOut(WireModel):
    object: Literal["fetch.response"] = "fetch.response"
    url: str = Field(description="The final URL, after redirects")
    status: int
    status_text: str
    headers: dict[str, str]
    body: str
    body_encoding: Literal["base64"] = "base64"
    body_bytes: int
    truncated: bool
    redirected: bool
    timing: FetchTimingOut
    run_id: str


class BrowserFetchResultOut(WireModel):
    object: Literal["fetch.result"] = "fetch.result"
    status: Literal["succeeded", "unknown"] = "succeeded"
    event_id: str = Field(description="The run event that records this request")
    data: BrowserFetchResponseOut


def result_out(got: fetch.Fetched) -> BrowserFetchResultOut:
    return BrowserFetchResultOut(
        event_id=got.event_id,
        data=BrowserFetchResponseOut(
            url=got.url,
            status=got.status,
            status_text=got.status_text,
            headers=got.headers,
            body=base64.b64encode(got.body).decode(),
            body_bytes=len(got.body),
            truncated=got.truncated,
            redirected=got.redirected,
            timing=FetchTimingOut(duration_ms=got.duration_ms),
            run_id=str(got.run_id),
        ),
    )
