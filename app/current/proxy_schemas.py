"""`proxy` of a current-generation browser and `/v1/proxies` (saved proxies) wire models (the 0.3
wheel's BrowserProxyInput, BrowserResourceProxy, Proxy (custom), ProxyTestResponse, ProxyPool and
ProxyLocation).

This deployment has saved proxies only (`type: custom`): managed rotating and managed static proxies,
pools, geo targets and locations are not offered, and asking for them is refused with their documented
codes (`proxy.managed_rotating.provider_unavailable`, `proxy.pool_not_found`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from app.core.errors import InvalidRequest, NotFound
from app.core.schemas import RequestModel, Timestamp, WireModel
from app.proxies import service
from app.proxies.models import SavedProxy
from app.proxies.service import TestResult

DnsResolution = Literal["local", "proxy"]
# `required` is refused (proxy.udp_protocol_unsupported): UDP does not go through proxies here.
UdpMode = Literal["disabled", "auto"]
Protocol = Literal["http", "https", "socks5"]
ProxyName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
Secret = Annotated[str, Field(max_length=1024)]
ProxyUrl = Annotated[
    str,
    Field(
        max_length=2048,
        pattern=service.URL_PATTERN,
        description="scheme://user:password@host:port (http, https or socks5; user and password percent-encoded)",
        examples=["http://user:secret@127.0.0.1:3128"],
    ),
]
Host = Annotated[
    str, Field(max_length=253, pattern=f"^{service.HOST_PATTERN}$", description="A name or an IPv4 address")
]
Port = Annotated[int, Field(ge=1, le=65535, description="Default: 8080 (http), 443 (https), 1080 (socks5)")]

_CONNECTION_PROPERTIES = {
    "username": {"type": "string", "maxLength": 1024},
    "password": {"type": "string", "maxLength": 1024, "description": "Write-only: stored encrypted"},
    "dnsResolution": {"enum": ["local", "proxy"]},
    "udpMode": {"enum": ["disabled", "auto"]},
    "type": {"enum": ["custom"]},
}
# What a browser's `proxy` may be (BrowserProxyInput): a proxy URL or a saved proxy's id, a saved proxy
# ({id}), an inline URL ({url, ...}) or an inline connection ({protocol, host, port, ...}).
PROXY_SETTING_SCHEMA = {
    "anyOf": [
        {"type": "string", "maxLength": 2048, "pattern": service.URL_PATTERN},
        {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "description": "A saved proxy's id"},
        {
            "type": "object",
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 64},
                "pool": {"enum": ["pool1", "pool2"]},
            },
            "required": ["id"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "url": {"type": "string", "maxLength": 2048, "pattern": service.URL_PATTERN},
                **_CONNECTION_PROPERTIES,
            },
            "required": ["url"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "properties": {
                "protocol": {"enum": ["http", "https", "socks5"]},
                "host": {"type": "string", "maxLength": 253, "pattern": f"^{service.HOST_PATTERN}$"},
                "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                **_CONNECTION_PROPERTIES,
            },
            "required": ["protocol", "host", "port"],
            "additionalProperties": False,
        },
    ],
    "description": "A proxy URL, a saved proxy's id or {id}, or an inline {url} or {protocol, host, port}; "
    "managed rotating proxies are refused (proxy.managed_rotating.provider_unavailable)",
}

# What only managed proxies have: refused on a custom proxy.
_MANAGED_FIELDS = (
    "autoRenew",
    "city",
    "country",
    "device",
    "geoId",
    "ipFamily",
    "isp",
    "pool",
    "preference",
    "region",
    "rotation",
    "state",
    "stickyKey",
)
_INLINE_FIELDS = {"type", "url", "protocol", "host", "port", "username", "password", "dnsResolution", "udpMode"}


def managed_unavailable(field: str = "type") -> InvalidRequest:
    why = "managed rotating proxies are not offered by this deployment; save your own proxy (type custom)"
    return InvalidRequest(
        why,
        code="proxy.managed_rotating.provider_unavailable",
        details={"fields": [{"field": field, "in": "body", "message": why, "type": "unsupported"}]},
    )


def pool_not_found(pool_id: Any) -> NotFound:
    return NotFound(
        "Proxy pool not found: this deployment has no managed proxy pools",
        code="proxy.pool_not_found",
        details={"poolId": str(pool_id)[:200]},
    )


def _refuse_reference(password: Any) -> None:
    if isinstance(password, str) and password.startswith("secret:"):
        why = "secret references are not offered by this server; pass the password itself (it is stored encrypted)"
        raise InvalidRequest(
            f"password: {why}",
            code="proxy.password_reference_unsupported",
            details={"fields": [{"field": "password", "in": "body", "message": why, "type": "unsupported"}]},
        )


def _fields_invalid(fields: list[str], why: str) -> InvalidRequest:
    return InvalidRequest(
        f"{', '.join(fields)}: {why}",
        code="proxy.update_fields_invalid",
        details={"fields": [{"field": f, "in": "body", "message": why, "type": "unsupported"} for f in fields]},
    )


def _precheck(data: dict) -> None:
    """The proxies' own codes before the schema's generic ones: an unsupported protocol or a malformed
    URL, UDP required."""
    if data.get("udpMode") == "required":
        service._check_modes(None, "required")
    if isinstance(data.get("protocol"), str):
        service._protocol(data["protocol"], "protocol")
    if isinstance(data.get("url"), str):
        service.connection_of(url=data["url"])


# --- a browser's proxy ---


def _setting(value: Any) -> Any:
    """A browser's proxy input, checked and normalised: `{"id": ...}` for a saved proxy, else the inline
    connection's wire words (the password still plain: launch_checks seals it before it is kept)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"url": value} if "://" in value else {"id": value}
    if not isinstance(value, dict):
        raise InvalidRequest(
            "proxy: a proxy URL, a saved proxy ({id}) or a connection ({protocol, host, port})",
            details={"fields": [{"field": "proxy", "in": "body", "message": "wrong type", "type": "invalid"}]},
        )
    if value.get("type") == "managed-rotating" or ("pool" in value and "id" not in value):
        raise managed_unavailable("proxy")
    if "id" in value:
        if not isinstance(value["id"], str) or not 0 < len(value["id"]) <= 64:
            raise InvalidRequest(
                "proxy.id: a saved proxy's id",
                code="proxy.not_found",
                status=404,
                details={"proxyId": str(value["id"])[:64]},
            )
        overrides = sorted(k for k, v in value.items() if k not in ("id", "pool") and v is not None)
        if overrides:
            why = "a saved custom proxy is used as saved; these settings apply to managed proxies"
            raise InvalidRequest(
                f"proxy: {', '.join(overrides)}: {why}",
                code="proxy.overrides_unsupported",
                details={"fields": [{"field": f"proxy.{k}", "in": "body", "message": why} for k in overrides]},
            )
        return {"id": value["id"]}
    unknown = sorted(set(value) - _INLINE_FIELDS)
    if unknown:
        raise InvalidRequest(
            f"proxy: unknown fields {', '.join(unknown)}",
            details={"fields": [{"field": f"proxy.{k}", "in": "body", "message": "unknown field"} for k in unknown]},
        )
    if value.get("type") not in (None, "custom"):
        raise service._invalid("proxy.kind_mismatch", "proxy.type", "custom (the only kind offered here)")
    _refuse_reference(value.get("password"))
    for key in ("username", "password"):
        if value.get(key) is not None and (not isinstance(value[key], str) or len(value[key]) > 1024):
            raise service._invalid("request.invalid", f"proxy.{key}", "a string of at most 1024 characters")
    service.connection_of_setting(value)
    return {k: v for k, v in value.items() if v is not None}


ProxySetting = Annotated[Any, BeforeValidator(_setting), WithJsonSchema(PROXY_SETTING_SCHEMA)]


def proxy_out(options: dict) -> Any:
    """The browser's `proxy` as the wire shows it (`{id}` of a saved proxy, or the inline connection
    without its password: `hasPassword`), or None."""
    return service.setting_out(options.get("proxy"))


# --- saved proxies ---


class ProxyCreate(RequestModel):
    """A custom proxy from `url`, or from `host` (and `protocol`, default http, and `port`, default the
    protocol's); fields beside a `url` override it."""

    # A url or a host, not null (a null one is as good as absent).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["url"], "properties": {"url": {"type": "string"}}},
                {"required": ["host"], "properties": {"host": {"type": "string"}}},
            ]
        }
    )

    type: Literal["custom"] | None = Field(default=None, description="custom: the only kind offered here")
    name: ProxyName | None = Field(default=None, description="Unique in the account; defaults to one made up")
    url: ProxyUrl | None = None
    protocol: Protocol | None = None
    host: Host | None = None
    port: Port | None = None
    username: Secret | None = None
    password: Secret | None = Field(default=None, description="Write-only: stored encrypted, never returned")
    dns_resolution: DnsResolution | None = None
    udp_mode: UdpMode | None = None

    @model_validator(mode="before")
    @classmethod
    def _kinds(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("type") == "managed-rotating":
                raise managed_unavailable()
            if data.get("type") == "managed-static":
                raise pool_not_found(data.get("poolId"))
            _refuse_reference(data.get("password"))
            _precheck(data)
        return data

    def connection(self) -> service.Connection:
        return service.connection_of(
            url=self.url,
            protocol=self.protocol,
            host=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            dns_resolution=self.dns_resolution,
            udp_mode=self.udp_mode,
        )


MANAGED_ONLY = "Managed proxies only; not offered here (a value is refused: proxy.update_fields_invalid)"


class ProxyUpdate(RequestModel):
    """Fields given are changed; `password: null` removes the stored password, `username: null` the
    username. Managed proxies' fields (pool, geo, rotation...) are refused with `proxy.update_fields_invalid`."""

    name: ProxyName = None
    url: ProxyUrl = None
    protocol: Protocol = None
    host: Host = None
    port: Port = None
    username: Secret | None = None
    password: Secret | None = None
    dns_resolution: DnsResolution = None
    udp_mode: UdpMode = None
    auto_renew: None = Field(default=None, description=MANAGED_ONLY)
    city: None = Field(default=None, description=MANAGED_ONLY)
    country: None = Field(default=None, description=MANAGED_ONLY)
    device: None = Field(default=None, description=MANAGED_ONLY)
    geo_id: None = Field(default=None, description=MANAGED_ONLY)
    ip_family: None = Field(default=None, description=MANAGED_ONLY)
    isp: None = Field(default=None, description=MANAGED_ONLY)
    pool: None = Field(default=None, description=MANAGED_ONLY)
    preference: None = Field(default=None, description=MANAGED_ONLY)
    region: None = Field(default=None, description=MANAGED_ONLY)
    rotation: None = Field(default=None, description=MANAGED_ONLY)
    state: None = Field(default=None, description=MANAGED_ONLY)
    sticky_key: None = Field(default=None, description=MANAGED_ONLY)

    @model_validator(mode="before")
    @classmethod
    def _managed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            given = [f for f in _MANAGED_FIELDS if data.get(f) is not None]
            if given:
                raise _fields_invalid(given, "these apply to managed proxies; this deployment has custom proxies only")
            _refuse_reference(data.get("password"))
            _precheck(data)
        return data

    def connection_over(self, current: service.Connection) -> service.Connection | None:
        """The connection after this update (None when the request changes none of it)."""
        given = self.model_fields_set
        parts = ("url", "protocol", "host", "port", "username", "password", "dns_resolution", "udp_mode")
        if not given & set(parts):
            return None
        if "url" in given and self.url is not None:
            # A new URL replaces where the proxy is and who signs in; fields beside it override it.
            return service.connection_of(
                url=self.url,
                protocol=self.protocol,
                host=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                dns_resolution=self.dns_resolution if "dns_resolution" in given else current.dns_resolution,
                udp_mode=self.udp_mode if "udp_mode" in given else current.udp_mode,
            )

        def pick(field: str) -> Any:
            return getattr(self, field) if field in given else getattr(current, field)

        return service.connection_of(
            protocol=pick("protocol"),
            host=pick("host"),
            port=pick("port"),
            username=pick("username"),
            password=pick("password"),
            dns_resolution=pick("dns_resolution"),
            udp_mode=pick("udp_mode"),
        )


class ProxyOut(WireModel):
    id: str
    object: Literal["proxy"] = "proxy"
    type: Literal["custom"] = "custom"
    name: str
    protocol: str
    host: str
    port: int
    username: str | None = None
    has_password: bool
    password_reference: str | None = None
    dns_resolution: DnsResolution | None = None
    udp_mode: UdpMode | None = None
    subaccount_id: str | None = None
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, row: SavedProxy) -> ProxyOut:
        return cls(
            id=str(row.id),
            name=row.name,
            protocol=row.protocol,
            host=row.host,
            port=row.port,
            username=row.username,
            has_password=row.password_encrypted is not None,
            dns_resolution=row.dns_resolution,
            udp_mode=row.udp_mode,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ProxyDeletedOut(WireModel):
    id: str
    object: Literal["proxy"] = "proxy"
    deleted: bool = True


class ProxyTestOut(WireModel):
    object: Literal["test.result"] = "test.result"
    ok: bool
    exit_ip: str | None = Field(default=None, description="The address the test URL saw: where the proxy leaves from")
    http_status: int | None = None
    latency_seconds: float | None = None
    country: str | None = Field(default=None, description="Not known here (no geo database)")
    error: str | None = None
    code: str | None = Field(
        default=None,
        description="Why it failed: proxy.auth_rejected, proxy.connection_refused, proxy.unreachable, "
        "proxy.destination_refused, proxy.protocol_error, proxy.policy_refused, proxy.password_unreadable",
    )

    @classmethod
    def of(cls, result: TestResult) -> ProxyTestOut:
        return cls(
            ok=result.ok,
            exit_ip=result.exit_ip,
            http_status=result.http_status,
            latency_seconds=result.latency_seconds,
            error=result.error,
            code=result.code,
        )


class ProxyPoolOut(WireModel):
    id: str
    object: Literal["proxy_pool"] = "proxy_pool"
    label: str
    category: str
    country: str
    city: str | None = None
    available_count: int
    price_credits: int
    term_days: int


class ProxyLocationOut(WireModel):
    geo_id: str
    object: Literal["proxy_location"] = "proxy_location"
    name: str
    type: str
    country: str
    region: str | None = None
    subdivision: str | None = None
    pools: list[str]
    available_for: list[str]
