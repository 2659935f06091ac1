"""`networkTraffic` of a current-generation browser: what the browser itself refuses to load
(enforced by app/cdp/traffic.py from the run observer; each refused request is a `network.blocked` run
event).

A URL pattern is either
- a URL pattern, `<scheme>://<rest>` where the scheme may be `*`: `*` matches any run of characters
  (none included), everything else itself, matched against the whole request URL (query included,
  fragment never sent); scheme and host are compared lower-cased: `https://*.example.com/*.js`;
- a host pattern, `example.com` or `example.com:8080`: that host and its subdomains, any scheme, port
  (unless given: a URL without one is on its scheme's default, 80 or 443) and path; `*.example.com`:
  only its subdomains.
Printable ASCII without spaces or backslashes (browsers send URLs percent-encoded and hosts in
punycode), at most 2048 characters.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from app.core.errors import InvalidRequest
from app.core.schemas import RequestModel, WireModel

ResourceType = Literal["media", "texttrack", "font", "image", "ping", "prefetch", "beacon"]

URL_PATTERN = r"(\*|[A-Za-z][A-Za-z0-9+.\-]*)://[!-\[\]-~]+"
HOST_PATTERN = r"(\*\.)?[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*(:[0-9]{1,5})?"
PATTERN = rf"^({URL_PATTERN}|{HOST_PATTERN})$"
MAX_PATTERNS = 1000

_PATTERN_RE = re.compile(PATTERN)


def _pattern(value: str) -> str:
    if not _PATTERN_RE.match(value):
        raise ValueError(
            "not a URL pattern: `<scheme>://<rest>` (`*` wildcards) or a host such as `example.com`, in "
            "printable ASCII without spaces or backslashes"
        )
    return value


UrlPattern = Annotated[
    str,
    AfterValidator(_pattern),
    Field(
        min_length=1,
        max_length=2048,
        json_schema_extra={"pattern": PATTERN},
        description="`<scheme>://<rest>` with `*` wildcards, matched against the whole URL; or a host "
        "(`example.com`, `example.com:8080`: it and its subdomains; `*.example.com`: its subdomains only)",
    ),
]
_SAVER_REFUSED = (
    "data saver levels are not offered here (they would rewrite or drop content in ways a page cannot "
    "tell from a blocked request); block resource types instead, or use none"
)


def normalize_pattern(pattern: str) -> str:
    """Scheme and host lower-cased (URLs are canonicalised that way); the rest as written."""
    if "://" not in pattern:
        return pattern.lower()
    scheme, rest = pattern.split("://", 1)
    authority, slash, path = rest.partition("/")
    return f"{scheme.lower()}://{authority.lower()}{slash}{path}"


class NetworkTraffic(RequestModel):
    block_ads: bool | None = Field(default=None, description="Refuse requests to well-known ad hosts")
    block_resource_types: list[ResourceType] | None = Field(default=None, max_length=7)
    block_trackers: bool | None = Field(default=None, description="Refuse requests to well-known tracker hosts")
    saver: Literal["none"] | None = Field(default=None, description="Data saver levels are not offered: none")
    url_allowlist: list[UrlPattern] | None = Field(
        default=None,
        max_length=MAX_PATTERNS,
        description="When set, only requests whose URL matches one of these load (every other rule still applies)",
    )
    url_blocklist: list[UrlPattern] | None = Field(
        default=None, max_length=MAX_PATTERNS, description="Requests whose URL matches one of these never load"
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_saver(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("saver") in ("light", "medium", "high"):
            raise InvalidRequest(
                f"networkTraffic.saver is not supported by this server: {_SAVER_REFUSED}",
                code="browser.option_unsupported",
                details={
                    "fields": [
                        {
                            "field": "networkTraffic.saver",
                            "in": "body",
                            "message": _SAVER_REFUSED,
                            "type": "unsupported",
                        }
                    ],
                    "value": data["saver"],
                },
            )
        return data

    @field_validator("url_allowlist", "url_blocklist")
    @classmethod
    def _normalized(cls, patterns: list[str] | None) -> list[str] | None:
        if patterns is None:
            return None
        return list(dict.fromkeys(normalize_pattern(p) for p in patterns))

    @field_validator("block_resource_types")
    @classmethod
    def _unique(cls, types: list[str] | None) -> list[str] | None:
        return None if types is None else list(dict.fromkeys(types))


class NetworkTrafficOut(WireModel):
    block_ads: bool | None = None
    block_resource_types: list[ResourceType] | None = None
    block_trackers: bool | None = None
    saver: str | None = None
    url_allowlist: list[str] | None = None
    url_blocklist: list[str] | None = None
