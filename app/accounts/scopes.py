"""What an API key may do: a small scope vocabulary, checked once per request with the key.

- `*`: everything its account may do (also what a key with no scopes, `[]`, may do: keys made before
  scopes existed keep working).
- `read`: every read (GET, HEAD) of every area.
- `<area>:read`, `<area>:write`: reads, or reads and writes, of one area. The area is the first path
  segment after `/v1/` (`browsers`, `spaces`, `runs`, `files`, `tasks`, `api-keys`, `subaccounts`, ...);
  so a seed path `/v1/spaces/{id}/runtimes` is in the `spaces` area.

A key lacking the scope a request needs gets 403 `auth.forbidden` (`details.requiredScope`). A key
can only create keys whose scopes its own cover (no widening), and managing keys or subaccounts is an
area like any other (`api-keys:write`, `subaccounts:write`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from app.core.errors import DomainError

ALL = "*"
READ_ALL = "read"
SCOPE_PATTERN = r"^(\*|read|[a-z][a-z0-9-]{0,63}:(read|write))$"
_SCOPE = re.compile(SCOPE_PATTERN)
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SCOPES = 64


def valid(scope: str) -> bool:
    return _SCOPE.fullmatch(scope) is not None


def area_of(path: str) -> str:
    """The area of a request path: `/v1/browsers/x/stop` is `browsers`; a path outside /v1 is its first segment."""
    parts = [p for p in path.split("/") if p]
    if parts and parts[0] == "v1":
        parts = parts[1:]
    return parts[0] if parts else ""


def required(method: str, path: str) -> str:
    return f"{area_of(path)}:{'read' if method.upper() in READ_METHODS else 'write'}"


def covers(held: Iterable[str] | None, need: str) -> bool:
    """Whether scopes `held` allow `need` (an `<area>:read|write`, or `*`/`read` when widening is checked)."""
    held = set(held or ())
    if not held or ALL in held:
        return True
    if need == ALL:
        return False
    if need == READ_ALL:
        return READ_ALL in held
    area, _, access = need.partition(":")
    if access == "read" and (READ_ALL in held or f"{area}:read" in held):
        return True
    return f"{area}:write" in held


def check(held: Iterable[str] | None, method: str, path: str) -> None:
    """Raise 403 when the key's scopes do not allow this request."""
    held = list(held or ())
    if not held:
        return
    need = required(method, path)
    if not covers(held, need):
        raise DomainError(
            f"This API key lacks the scope {need!r} this request needs",
            code="auth.forbidden",
            status=403,
            details={"requiredScope": need, "keyScopes": held, "reason": "scope"},
        )


# Whatever sends a vault secret's value where the key's holder chooses (a drain's credentials) needs this.
SECRETS_USE = "secrets:read"


def check_secret_use(held: Iterable[str] | None) -> None:
    """Raise 403 unless the key may put the account's vault secrets to use: a key scoped to another area
    (`drains:write`) would otherwise send their values to an address it picks, reading the vault."""
    held = list(held or ())
    if held and not covers(held, SECRETS_USE):
        raise DomainError(
            "This API key lacks the scope 'secrets:read' that using the vault's secrets needs",
            code="auth.forbidden",
            status=403,
            details={"requiredScope": SECRETS_USE, "keyScopes": held, "reason": "scope"},
        )


def check_widening(held: Iterable[str] | None, wanted: Iterable[str] | None) -> None:
    """A key may only make keys it could stand in for: each wanted scope covered by its own (403)."""
    held = list(held or ())
    wanted = list(wanted or ()) or [ALL]
    wider = [scope for scope in wanted if not covers(held, scope)]
    if wider:
        raise DomainError(
            "A key cannot create a key with scopes it does not hold itself",
            code="auth.forbidden",
            status=403,
            details={"scopes": wider, "keyScopes": held, "reason": "scope_widening"},
        )


def normalised(scopes: Iterable[str] | None) -> list[str]:
    """Stored form: sorted, unique; `*` alone stands for everything."""
    unique = sorted(set(scopes or ()))
    return [ALL] if ALL in unique else unique
