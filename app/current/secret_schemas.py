"""`/v1/secrets` wire models (the 0.3 wheel's Secret, SecretList, SecretVersion, SecretVersionList,
SecretRevealResponse, SecretDeleteResponse and the create/update/reveal bodies).

Secret fields (password, totp, value, notes) are write-only: answers say which are set (`hasPassword`,
...), and only `reveal` returns them. The vault's own codes (`secrets.path_invalid`, `secrets.field_empty`,
`secrets.origin_invalid`, ...) are checked before the generic schema checks, so a bad path or an empty
value is named by its code."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from app.core.schemas import RequestModel, Timestamp, WireModel
from app.current.schemas import PageOut
from app.vault import checks
from app.vault import service as vault
from app.vault.models import VaultSecret, VaultSecretVersion

SecretType = Literal["login", "value"]
PATH_DESCRIPTION = (
    "Secret path, for example `prod/github/bot`: segments of letters, digits and . _ - @ + = , ~ separated by "
    "`/` (no leading or trailing `/`, no empty, `.` or `..` segment; at most 512 characters)"
)
ORIGINS_DESCRIPTION = (
    "Origins a `login` may be filled into: `https://host[:port]` (or http), or `https://*.host` for any subdomain"
)
Path = Annotated[
    str, Field(min_length=1, max_length=checks.MAX_PATH, pattern=checks.PATH_PATTERN, description=PATH_DESCRIPTION)
]
Origin = Annotated[str, Field(max_length=checks.MAX_ORIGIN, pattern=checks.ORIGIN_PATTERN)]
Origins = Annotated[list[Origin], Field(max_length=checks.MAX_ORIGINS, description=ORIGINS_DESCRIPTION)]
NOT_BLANK = checks.NOT_BLANK_PATTERN
Label = Annotated[str, Field(min_length=1, max_length=checks.LIMITS["label"], pattern=NOT_BLANK)]
Username = Annotated[
    str,
    Field(min_length=1, max_length=checks.LIMITS["username"], pattern=NOT_BLANK, description="Not secret; readable"),
]
Password = Annotated[
    str,
    Field(
        min_length=1,
        max_length=checks.LIMITS["password"],
        pattern=NOT_BLANK,
        description="Password of a `login`. Write-only.",
    ),
]
Totp = Annotated[
    str,
    Field(
        min_length=16,
        max_length=checks.LIMITS["totp"],
        pattern=checks.TOTP_PATTERN,
        description="TOTP seed (base32, at least 16 characters; spaces and dashes ignored) of a `login`. "
        "Write-only: codes are made on the server.",
    ),
]
Value = Annotated[
    str,
    Field(
        min_length=1,
        max_length=checks.LIMITS["value"],
        pattern=NOT_BLANK,
        description="The value of a `value` secret. Write-only.",
    ),
]
Notes = Annotated[
    str, Field(min_length=1, max_length=checks.LIMITS["notes"], description="Free-form notes. Write-only.")
]

# What the type asks of the other fields: a `value` secret holds a value and none of a login's fields; a
# `login` holds no value and at least one of username, password and totp.
_NONE = {"type": "null"}
CREATE_SHAPES = {
    "anyOf": [
        {
            "properties": {
                "type": {"const": "value"},
                "value": {"type": "string"},
                "username": _NONE,
                "password": _NONE,
                "totp": _NONE,
                "origins": {"anyOf": [_NONE, {"type": "array", "maxItems": 0}]},
            },
            "required": ["type", "value"],
        },
        *(
            {
                "properties": {"type": {"const": "login"}, "value": _NONE, name: {"type": "string"}},
                "required": ["type", name],
            }
            for name in ("username", "password", "totp")
        ),
    ]
}
# fromVersion alone, or at least one field without it.
UPDATE_SHAPES = {
    "anyOf": [
        {"required": ["fromVersion"], "maxProperties": 1},
        {"not": {"required": ["fromVersion"]}, "minProperties": 1},
    ]
}

MAX_VERSION = 2**31 - 1
FIELDS = ("label", "notes", "origins", "password", "totp", "username", "value")


def _precheck(data: Any) -> Any:
    """The vault's own codes before the schema's: a bad path, an empty or over-long field, a bad origin."""
    if not isinstance(data, dict):
        return data
    if "path" in data:
        checks.path(data["path"])
    for name in FIELDS:
        if name == "origins":
            if isinstance(data.get(name), list):
                checks.origins(data[name])
        elif isinstance(data.get(name), str):
            checks.field(name, data[name])
    return data


class _SecretFields(RequestModel):
    """The fields a create and an update both take, checked the same way."""

    label: Label | None = None
    notes: Notes | None = None
    origins: Origins | None = None
    password: Password | None = None
    totp: Totp | None = None
    username: Username | None = None
    value: Value | None = None

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        return _precheck(data)


class SecretCreate(_SecretFields):
    model_config = ConfigDict(json_schema_extra=CREATE_SHAPES)

    path: Path
    type: SecretType = Field(description="`login`: username, password and TOTP seed for a site. `value`: one value.")

    def spec(self) -> vault.SecretSpec:
        return vault.SecretSpec(
            path=self.path,
            type=self.type,
            label=self.label,
            notes=self.notes,
            origins=self.origins,
            password=self.password,
            totp=self.totp,
            username=self.username,
            value=self.value,
        )


class SecretUpdate(_SecretFields):
    """Fields given are changed (a new version); `null` clears one; `fromVersion` alone restores the
    values (username, password, totp, value, notes) of that version."""

    model_config = ConfigDict(json_schema_extra=UPDATE_SHAPES)

    from_version: int = Field(
        default=None, ge=1, le=MAX_VERSION, description="Restore values of this version; send alone."
    )

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS if name in self.model_fields_set}


class SecretRevealIn(RequestModel):
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION, description="Defaults to the current version.")


class SecretOut(WireModel):
    id: str
    object: Literal["secret"] = "secret"
    path: str
    type: SecretType
    label: str | None = None
    username: str | None = None
    origins: list[str]
    has_password: bool
    has_totp: bool
    has_value: bool
    has_notes: bool
    version: int = Field(description="Current version; the ETag of the secret.")
    subaccount_id: str | None = None
    last_used_at: Timestamp | None = None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, row: VaultSecret) -> SecretOut:
        return cls(
            id=str(row.id),
            path=row.path,
            type=row.type,
            label=row.label,
            username=row.username,
            origins=list(row.origins),
            has_password=vault.has(row, "password"),
            has_totp=vault.has(row, "totp"),
            has_value=vault.has(row, "value"),
            has_notes=vault.has(row, "notes"),
            version=row.version,
            last_used_at=row.last_used_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class SecretDeletedOut(SecretOut):
    deleted: bool = True

    @classmethod
    def of(cls, row: VaultSecret) -> SecretDeletedOut:
        return cls(**SecretOut.of(row).model_dump(by_alias=False), deleted=True)


class SecretPage(PageOut):
    data: list[SecretOut]
    folders: list[str] = Field(
        default_factory=list,
        description="With `delimiter`: common prefixes, each ending in `/`. They count toward `limit`.",
    )


class SecretVersionOut(WireModel):
    id: str
    object: Literal["secret.version"] = "secret.version"
    secret_id: str
    version: int
    created_by: str = Field(description="Who wrote it: `key:<API key id>` for a person's key")
    has_password: bool
    has_totp: bool
    has_value: bool
    has_notes: bool
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, row: VaultSecretVersion) -> SecretVersionOut:
        return cls(
            id=str(row.id),
            secret_id=str(row.secret_id),
            version=row.version,
            created_by=row.created_by,
            has_password=vault.has(row, "password"),
            has_totp=vault.has(row, "totp"),
            has_value=vault.has(row, "value"),
            has_notes=vault.has(row, "notes"),
            created_at=row.created_at,
            updated_at=row.created_at,
        )


class SecretVersionPage(PageOut):
    data: list[SecretVersionOut]


class SecretRevealOut(WireModel):
    id: str
    object: Literal["secret.reveal_result"] = "secret.reveal_result"
    path: str
    version: int
    username: str | None = None
    password: str | None = None
    totp: str | None = None
    value: str | None = None
    notes: str | None = None

    @classmethod
    def of(cls, revealed: vault.Revealed) -> SecretRevealOut:
        v = revealed.values
        return cls(
            id=str(revealed.secret.id),
            path=revealed.secret.path,
            version=revealed.version,
            username=v.get("username"),
            password=v.get("password"),
            totp=v.get("totp"),
            value=v.get("value"),
            notes=v.get("notes"),
        )
