"""Wire models of the current generation for browser extensions (the 0.3 wheel's `BrowserExtension`,
`BrowserExtensionListResponse`, `BrowserExtensionDeleteResponse` and the create and update bodies)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from app.core.schemas import NOT_BLANK, RequestModel, Timestamp, WireModel
from app.current.schemas import page_model
from app.extensions.models import BrowserExtension

ExtensionFormat = Literal["crx", "zip"]
ExtensionSource = Literal["upload", "url"]
ExtensionName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NOT_BLANK]


class ExtensionImport(RequestModel):
    """JSON body of a create: the package is fetched from `url`."""

    url: str = Field(
        min_length=1, max_length=2048, description="A Chrome Web Store item's page, or a .crx/.zip address"
    )
    name: ExtensionName | None = Field(default=None, description="Defaults to the manifest's name")


class ExtensionUpdate(RequestModel):
    name: ExtensionName | None = None


class ExtensionOut(WireModel):
    object: Literal["extension"] = "extension"
    id: str
    name: str
    version: str
    format: ExtensionFormat = Field(description="What was uploaded: a packed crx or a zip of an unpacked extension")
    manifest_version: int | None = None
    chrome_extension_id: str | None = Field(default=None, description="Chromium's id of it, the same in every browser")
    content_hash: str | None = Field(default=None, description="SHA-256 of the package as uploaded")
    size_bytes: int | None = None
    source_url: str | None = None
    subaccount_id: str | None = None
    admission_policy_version: int | None = None
    permissions: list[str]
    host_permissions: list[str]
    verification_status: Literal["ready", "verification_required"] = "ready"
    browser_count: int = Field(ge=0, description="Browsers of the account that name it")
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, row: BrowserExtension, browser_count: int = 0) -> ExtensionOut:
        perms = row.permissions or {}
        return cls(
            id=str(row.id),
            name=row.name,
            version=row.version,
            format=row.format,
            manifest_version=row.manifest_version,
            chrome_extension_id=row.chrome_extension_id,
            content_hash=row.content_hash,
            size_bytes=row.size_bytes,
            source_url=row.source_url,
            permissions=list(perms.get("permissions") or []),
            host_permissions=list(perms.get("hostPermissions") or []),
            browser_count=browser_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ExtensionDeletedOut(WireModel):
    object: Literal["extension"] = "extension"
    id: str
    deleted: bool = True


ExtensionPage = page_model(ExtensionOut)
