from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from app.core.schemas import JsonObject, Name, RequestModel, Timestamp, WireModel, list_model
from app.spaces.models import Space

Region = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]


class StorageMount(RequestModel):
    space: str | None = Field(default=None, max_length=120)


class VaultMount(RequestModel):
    allow: list[Annotated[str, StringConstraints(max_length=400)]] = Field(default_factory=list, max_length=100)
    deny: list[Annotated[str, StringConstraints(max_length=400)]] = Field(default_factory=list, max_length=100)
    allow_raw_reads: bool = False


class AiDefault(RequestModel):
    connection: str = Field(min_length=1, max_length=64)
    model: str | None = Field(default=None, max_length=200)


class AiDefaults(RequestModel):
    stagehand: AiDefault | None = None
    browser_use: AiDefault | None = None


class AiMount(RequestModel):
    allow_connections: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        default_factory=list, max_length=100
    )
    defaults: AiDefaults | None = None


class Mounts(RequestModel):
    storage: StorageMount | None = None
    vault: VaultMount | None = None
    ai: AiMount | None = None


class SpaceCreate(RequestModel):
    name: Name
    region: Region | None = None
    metadata: JsonObject | None = None
    mounts: Mounts | None = None


class SpaceUpdate(RequestModel):
    name: Name | None = None
    region: Region | None = None
    metadata: JsonObject | None = None
    mounts: Mounts | None = None


class SpaceOut(WireModel):
    id: str
    name: str
    region: str
    metadata: JsonObject | None
    mounts: JsonObject
    is_default: bool
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, s: Space) -> SpaceOut:
        return cls(
            id=str(s.id),
            name=s.name,
            region=s.region,
            metadata=s.metadata_,
            mounts=s.mounts or {},
            is_default=s.is_default,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


SpaceList = list_model(SpaceOut, "spaces")
