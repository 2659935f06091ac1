"""Agents: named, versioned definitions of what a task runs (model, instructions, tools, scope, memory).

- Create makes the agent and its version 1, promoted. An update that changes behaviour (model,
  instructions, tools, scope, memory, requireApprovalForPromotion) appends version latest+1 built on
  the latest version; name and metadata change the agent alone. Versions are never edited. Tasks run
  the promoted version unless they name one; only `promote` moves it.
- `promote` with `requireApprovalForPromotion` (on the promoted or the target version): only a person
  may promote, i.e. a request authenticated with an account API key (`by_person=True`); anything acting
  for an agent (a task, a tool) gets 403 `agent.promotion_approval_required`.
- Delete archives: the agent leaves lists and name lookups, its name is free again, its versions stay
  readable by the agent's id, and tasks that ran it keep pointing at their version.
- Every space has two built-in agents, made the first time the space's agents are looked at:
  `browser` (engine "stagehand": the task runner's loop with every built-in tool offered here) and
  `browser-use` (engine "browser-use"). They cannot be changed or deleted (403
  `agent.builtin_immutable`) and their names cannot be taken. Their model is `default`: at task time,
  the default model of the account's first enabled AI credential (by creation), else the first model
  its endpoint lists; with no enabled credential a task is refused with 400
  `ai_credential.not_configured`.
- `model` must be offered by one of the account's enabled AI credentials (their endpoints are asked):
  the model's id as the endpoint lists it (`gpt-4o`, `standin-model`, `meta-llama/Llama-3-8B`), or
  `<provider>/<id>` to pick the credential's provider (`openai/gpt-4o`, `custom/qwen`); else 400
  `agent.model_unavailable`.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError

from app.accounts.service import Principal
from app.agents.models import Agent, AgentVersion
from app.ai import catalog
from app.ai.models import AiConnection
from app.core import clock, ids
from app.core.context import AppContext
from app.core.errors import Conflict, DomainError, InvalidRequest, NotFound, the_one_named
from app.core.paging import PageParams, fetch_by_id
from app.spaces import service as spaces
from app.spaces.models import Space
from app.tools import service as tools
from app.tools.catalog import BUILTIN

STAGEHAND, BROWSER_USE = "stagehand", "browser-use"
BUILTIN_MODEL = "default"
MAX_CONCURRENT_RUNTIMES = 100

BUILTIN_AGENTS: dict[str, dict[str, Any]] = {
    "browser": {
        "engine": STAGEHAND,
        "instructions": "You operate a web browser to complete the user's task with the tools you are given. "
        "Ask a person (human.request) when you need information you do not have; use secrets.fill for "
        "sign-ins, never ask for passwords.",
        "tools": list(BUILTIN),
        "metadata": {"builtin": True, "engine": STAGEHAND},
    },
    "browser-use": {
        "engine": BROWSER_USE,
        "instructions": "",
        "tools": [],
        "metadata": {"builtin": True, "engine": BROWSER_USE},
    },
}


@dataclass
class AgentSpec:
    """What create or update takes. On update only the names in `given` change."""

    name: str | None = None
    model: str | None = None
    instructions: str | None = None
    tools: list[str] | None = None
    scope: dict[str, Any] | None = None  # wire words: spaces, capabilities, maxConcurrentRuntimes, budgetUsd
    memory: str | None = None
    require_approval: bool | None = None
    metadata: dict[str, Any] | None = None
    given: set[str] = field(default_factory=set)


# --- errors ---


def agent_not_found(ref: object) -> NotFound:
    return NotFound(f"Agent not found: {str(ref)[:200]}", code="agent.not_found", details={"agent": str(ref)[:200]})


def version_not_found(agent: Agent, version: object) -> NotFound:
    return NotFound(
        f"Agent {agent.id} has no version {version}",
        code="agent.version_not_found",
        details={"agentId": str(agent.id), "version": version, "latestVersion": agent.latest_version},
    )


def name_conflict(name: str) -> Conflict:
    return Conflict(
        f"An agent named {name!r} already exists in this space", code="agent.name_conflict", details={"name": name}
    )


def builtin_immutable(agent: Agent) -> DomainError:
    """403: the contract's delete answers no 409, and a built-in is refused whatever its state."""
    return DomainError(
        f"{agent.name} is a built-in agent: it cannot be changed or deleted; create your own agent instead",
        code="agent.builtin_immutable",
        status=403,
        details={"agentId": str(agent.id), "name": agent.name},
    )


def _invalid(field_name: str, message: str, code: str = "request.invalid") -> InvalidRequest:
    return InvalidRequest(
        f"{field_name}: {message}",
        code=code,
        details={"fields": [{"field": field_name, "in": "body", "message": message, "type": "invalid"}]},
    )


# --- models ---


def _principal(account_id: uuid.UUID) -> Principal:
    return Principal(account_id=account_id, key_id=uuid.UUID(int=0))


def _provider_words(stored: str) -> set[str]:
    return {stored, "custom"} if stored == "openai-compatible" else {stored}


def model_unavailable(model: str, offered: list[str], why: str | None = None) -> InvalidRequest:
    message = why or f"No enabled AI credential of this account offers the model {model[:300]!r}"
    return InvalidRequest(
        message,
        code="agent.model_unavailable",
        details={
            "model": model[:300],
            "offered": offered[:50],
            "fields": [{"field": "model", "in": "body", "message": message, "type": "invalid"}],
        },
    )


async def _enabled(ctx: AppContext, account_id: uuid.UUID) -> list[AiConnection]:
    stmt = select(AiConnection).where(AiConnection.account_id == account_id, AiConnection.enabled.is_(True))
    async with ctx.db.read() as s:
        return list((await s.execute(stmt.order_by(AiConnection.id))).scalars())


async def resolve_model(ctx: AppContext, account_id: uuid.UUID, model: str) -> tuple[AiConnection, str]:
    """The enabled credential that serves `model` (the first by creation when several do) and the model
    id to send it. `default` (the built-in agents' model) is the first enabled credential's default
    model. 400 `agent.model_unavailable`, 400 `ai_credential.not_configured` (no enabled credential,
    for `default`), or the endpoint's own failure (502) when no credential offers it and one could not
    be asked."""
    rows = await _enabled(ctx, account_id)
    p = _principal(account_id)
    if model == BUILTIN_MODEL:
        if not rows:
            raise InvalidRequest(
                "The account has no enabled AI credential: add one (POST /v1/ai/credentials) to run agents",
                code="ai_credential.not_configured",
            )
        first = rows[0]
        if first.default_model:
            return first, first.default_model
        listed = await catalog.offered(ctx, p, credential=first)
        if not listed:
            raise InvalidRequest(
                f"AI credential {first.id} has no default model and its endpoint lists none",
                code="ai_credential.not_configured",
                details={"credentialId": str(first.id)},
            )
        return first, sorted(m.id for m in listed)[0]
    if not rows:
        raise model_unavailable(model, [], "The account has no enabled AI credential to serve the model")
    answers = await asyncio.gather(*(catalog.offered(ctx, p, credential=row) for row in rows), return_exceptions=True)
    failure: BaseException | None = None
    offered: list[str] = []
    by_row: list[tuple[AiConnection, set[str]]] = []
    for row, answer in zip(rows, answers, strict=True):
        if isinstance(answer, BaseException):
            if not isinstance(answer, DomainError):
                raise answer
            failure = failure or answer
            continue
        names = {m.id for m in answer}
        by_row.append((row, names))
        offered += sorted(names)
    for row, names in by_row:
        if model in names:
            return row, model
    if "/" in model:
        prefix, rest = model.split("/", 1)
        for row, names in by_row:
            if prefix in _provider_words(row.provider) and rest in names:
                return row, rest
    if failure is not None:
        raise failure
    raise model_unavailable(model, sorted(set(offered)))


# --- scope, memory ---


def scope_unsupported(field_name: str, why: str) -> InvalidRequest:
    return _invalid(field_name, why, "agent.scope_unsupported")


async def _check_scope(ctx: AppContext, p: Principal, raw: dict[str, Any] | None) -> dict[str, Any]:
    raw = raw or {}
    if raw.get("budgetUsd") is not None:
        raise scope_unsupported("scope.budgetUsd", "spend ceilings are not offered: this server does not bill AI use")
    if raw.get("capabilities"):
        raise scope_unsupported("scope.capabilities", "no capabilities are defined on this server; use []")
    limit = raw.get("maxConcurrentRuntimes")
    if limit is None:
        limit = 1
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CONCURRENT_RUNTIMES:
        raise _invalid("scope.maxConcurrentRuntimes", f"an integer from 1 to {MAX_CONCURRENT_RUNTIMES}")
    spaces_given = raw.get("spaces") or []
    resolved: list[str] = []
    for i, ref in enumerate(spaces_given):
        try:
            space = await spaces.get(ctx, p, ref)
        except NotFound:
            raise NotFound(
                f"scope.spaces[{i}]: no space {str(ref)[:64]!r} in this account",
                code="space.not_found",
                details={"spaceId": str(ref)[:64], "fields": [{"field": f"scope.spaces[{i}]", "in": "body"}]},
            ) from None
        if str(space.id) not in resolved:
            resolved.append(str(space.id))
    return {"spaces": resolved, "capabilities": [], "maxConcurrentRuntimes": limit, "budgetUsd": None}


def _check_memory(memory: str | None) -> str:
    if memory in (None, "none"):
        return "none"
    if memory == "space_notes":
        raise _invalid("memory", "space notes are not offered on this server; use none", "agent.memory_unsupported")
    raise _invalid("memory", "one of none, space_notes")


# --- built-in agents ---


async def ensure_builtins(ctx: AppContext, account_id: uuid.UUID, space_ids: list[uuid.UUID] | None = None) -> None:
    """Makes the built-in agents of the account's spaces (of `space_ids` when given) that lack them."""
    missing = select(Space.id).where(
        Space.account_id == account_id,
        ~exists().where(Agent.space_id == Space.id, Agent.builtin.is_(True), Agent.archived_at.is_(None)),
    )
    if space_ids is not None:
        missing = missing.where(Space.id.in_(space_ids))
    async with ctx.db.read() as s:
        todo = list((await s.execute(missing)).scalars())
    for space_id in todo:
        try:
            async with ctx.db.transaction() as s:
                for name, spec in BUILTIN_AGENTS.items():
                    now = clock.now()
                    agent = Agent(
                        id=ids.new_id(),
                        account_id=account_id,
                        space_id=space_id,
                        name=name,
                        builtin=True,
                        metadata_=dict(spec["metadata"]),
                        promoted_version=1,
                        latest_version=1,
                        archived_at=None,
                        created_at=now,
                        updated_at=now,
                    )
                    s.add(agent)
                    await s.flush()
                    s.add(
                        AgentVersion(
                            id=ids.new_id(),
                            agent_id=agent.id,
                            account_id=account_id,
                            version=1,
                            model=BUILTIN_MODEL,
                            instructions=spec["instructions"],
                            tools=list(spec["tools"]),
                            scope={"spaces": [], "capabilities": [], "maxConcurrentRuntimes": 1, "budgetUsd": None},
                            memory="none",
                            require_approval=False,
                            engine=spec["engine"],
                            created_at=now,
                        )
                    )
        except IntegrityError:
            pass  # another request made them first


# --- reading ---


async def _find(
    ctx: AppContext, account_id: uuid.UUID, ref: str, space: Space | None, *, archived: bool = False
) -> Agent:
    """A live agent by id (archived ones too when `archived`), or by name (live only) in `space`, else
    in any of the account's spaces (409 `resource.name_ambiguous` when the name means several)."""
    await ensure_builtins(ctx, account_id, None if space is None else [space.id])
    row_id = ids.parse_uuid(ref)
    async with ctx.db.read() as s:
        if row_id is not None:
            agent = await s.get(Agent, row_id)
            if (
                agent is not None
                and agent.account_id == account_id
                and (archived or agent.archived_at is None)
                and (space is None or agent.space_id == space.id)
            ):
                return agent
        stmt = select(Agent).where(Agent.account_id == account_id, Agent.name == ref, Agent.archived_at.is_(None))
        if space is not None:
            stmt = stmt.where(Agent.space_id == space.id)
        found = list((await s.execute(stmt.limit(2))).scalars())
    return the_one_named(found, ref, "agent", agent_not_found(ref))


async def find(ctx: AppContext, p: Principal, ref: str, space: Space | None, *, archived: bool = False) -> Agent:
    return await _find(ctx, p.account_id, ref, space, archived=archived)


async def version_of(ctx: AppContext, agent: Agent, version: int | None = None) -> AgentVersion:
    """The agent's `version`, or its promoted one: 404 `agent.version_not_found`."""
    number = agent.promoted_version if version is None else version
    stmt = select(AgentVersion).where(AgentVersion.agent_id == agent.id, AgentVersion.version == number)
    async with ctx.db.read() as s:
        row = (await s.execute(stmt)).scalar_one_or_none()
    if row is None:
        raise version_not_found(agent, version)
    return row


async def with_promoted(ctx: AppContext, agents: list[Agent]) -> list[tuple[Agent, AgentVersion]]:
    if not agents:
        return []
    wanted = {(a.id, a.promoted_version) for a in agents}
    stmt = select(AgentVersion).where(AgentVersion.agent_id.in_([a.id for a in agents]))
    async with ctx.db.read() as s:
        versions = {
            (v.agent_id, v.version): v for v in (await s.execute(stmt)).scalars() if (v.agent_id, v.version) in wanted
        }
    return [(a, versions[(a.id, a.promoted_version)]) for a in agents]


async def list_agents(
    ctx: AppContext, p: Principal, space: Space | None, page: PageParams, *, name: str | None, newest_first: bool
) -> tuple[list[tuple[Agent, AgentVersion]], str | None]:
    await ensure_builtins(ctx, p.account_id, None if space is None else [space.id])
    stmt = select(Agent).where(Agent.account_id == p.account_id, Agent.archived_at.is_(None))
    if space is not None:
        stmt = stmt.where(Agent.space_id == space.id)
    if name is not None:
        stmt = stmt.where(Agent.name == name)
    rows, cursor = await fetch_by_id(ctx.db, stmt, Agent.id, page, newest_first=newest_first)
    return await with_promoted(ctx, rows), cursor


async def list_versions(
    ctx: AppContext, agent: Agent, page: PageParams, *, newest_first: bool
) -> tuple[list[AgentVersion], str | None]:
    stmt = select(AgentVersion).where(AgentVersion.agent_id == agent.id)
    return await fetch_by_id(ctx.db, stmt, AgentVersion.id, page, newest_first=newest_first)


async def resolve_for_task(
    ctx: AppContext, p: Principal, ref: str, space: Space, version: int | None
) -> tuple[Agent, AgentVersion]:
    """The live agent `ref` (id or name) of `space` and the version a task runs: `version`, else the
    promoted one. 404 `agent.not_found` / `agent.version_not_found`."""
    agent = await _find(ctx, p.account_id, ref, space)
    return agent, await version_of(ctx, agent, version)


async def needs_browser(ctx: AppContext, account_id: uuid.UUID, version: AgentVersion) -> bool:
    """Whether a task of this version drives a browser: the browser-use engine always does, the
    stagehand loop when one of its tools needs one (custom tools never do)."""
    if version.engine == BROWSER_USE:
        return True
    return any(BUILTIN[name].needs_browser for name in version.tools if name in BUILTIN)


def allowed_spaces(version: AgentVersion, task_space_id: uuid.UUID) -> list[uuid.UUID]:
    """The spaces a task of this version may touch: its scope's, else (empty) the task's own space."""
    listed = [uuid.UUID(s) for s in (version.scope or {}).get("spaces") or []]
    return listed or [task_space_id]


# --- writing ---


def _taken_by_builtin(name: str) -> bool:
    return name in BUILTIN_AGENTS


async def create(ctx: AppContext, p: Principal, space: Space, spec: AgentSpec) -> tuple[Agent, AgentVersion]:
    name = spec.name or ""
    await ensure_builtins(ctx, p.account_id, [space.id])
    if _taken_by_builtin(name):
        raise name_conflict(name)
    memory = _check_memory(spec.memory)
    scope = await _check_scope(ctx, p, spec.scope)
    tool_refs = await tools.check_refs(ctx, p.account_id, space.id, list(spec.tools or []))
    model = spec.model or ""
    await resolve_model(ctx, p.account_id, model)
    now = clock.now()
    agent = Agent(
        id=ids.new_id(),
        account_id=p.account_id,
        space_id=space.id,
        name=name,
        builtin=False,
        metadata_=spec.metadata,
        promoted_version=1,
        latest_version=1,
        archived_at=None,
        created_at=now,
        updated_at=now,
    )
    version = AgentVersion(
        id=ids.new_id(),
        agent_id=agent.id,
        account_id=p.account_id,
        version=1,
        model=model,
        instructions=spec.instructions or "",
        tools=tool_refs,
        scope=scope,
        memory=memory,
        require_approval=bool(spec.require_approval),
        engine=STAGEHAND,
        created_at=now,
    )
    try:
        async with ctx.db.transaction() as s:
            taken = await s.execute(
                select(Agent.id).where(Agent.space_id == space.id, Agent.name == name, Agent.archived_at.is_(None))
            )
            if taken.first() is not None:
                raise name_conflict(name)
            s.add(agent)
            await s.flush()
            s.add(version)
    except IntegrityError:
        raise name_conflict(name) from None
    return agent, version


def _definition(v: AgentVersion) -> dict[str, Any]:
    return {
        "model": v.model,
        "instructions": v.instructions,
        "tools": list(v.tools),
        "scope": dict(v.scope),
        "memory": v.memory,
        "require_approval": v.require_approval,
    }


async def update(ctx: AppContext, p: Principal, agent: Agent, spec: AgentSpec) -> tuple[Agent, AgentVersion]:
    """Name and metadata change the agent; a behaviour change appends a version (not promoted)."""
    if agent.builtin:
        raise builtin_immutable(agent)
    latest = await version_of(ctx, agent, agent.latest_version)
    wanted = _definition(latest)
    given = spec.given
    if "model" in given and spec.model != latest.model:
        await resolve_model(ctx, p.account_id, spec.model or "")
        wanted["model"] = spec.model
    if "instructions" in given:
        wanted["instructions"] = spec.instructions or ""
    if "tools" in given:
        wanted["tools"] = await tools.check_refs(ctx, p.account_id, agent.space_id, list(spec.tools or []))
    if "scope" in given:
        wanted["scope"] = await _check_scope(ctx, p, spec.scope)
    if "memory" in given:
        wanted["memory"] = _check_memory(spec.memory)
    if "require_approval" in given:
        wanted["require_approval"] = bool(spec.require_approval)
    if "name" in given and spec.name is not None and spec.name != agent.name and _taken_by_builtin(spec.name):
        raise name_conflict(spec.name)
    changed = wanted != _definition(latest)
    now = clock.now()
    try:
        async with ctx.db.transaction() as s:
            row = await s.get(Agent, agent.id, with_for_update=True)
            if row is None or row.archived_at is not None:
                raise agent_not_found(agent.id)
            if changed and row.latest_version != latest.version:
                raise Conflict(
                    "The agent got a new version while this update was checked; read it and try again",
                    code="resource.conflict",
                    details={"agentId": str(row.id), "latestVersion": row.latest_version},
                )
            if "name" in given and spec.name is not None and spec.name != row.name:
                taken = await s.execute(
                    select(Agent.id).where(
                        Agent.space_id == row.space_id, Agent.name == spec.name, Agent.archived_at.is_(None)
                    )
                )
                if taken.first() is not None:
                    raise name_conflict(spec.name)
                row.name = spec.name
            if "metadata" in given:
                row.metadata_ = spec.metadata
            if changed:
                row.latest_version += 1
                s.add(
                    AgentVersion(
                        id=ids.new_id(),
                        agent_id=row.id,
                        account_id=row.account_id,
                        version=row.latest_version,
                        model=wanted["model"],
                        instructions=wanted["instructions"],
                        tools=wanted["tools"],
                        scope=wanted["scope"],
                        memory=wanted["memory"],
                        require_approval=wanted["require_approval"],
                        engine=latest.engine,
                        created_at=now,
                    )
                )
            row.updated_at = now
    except IntegrityError:
        raise name_conflict(spec.name or "") from None
    return row, await version_of(ctx, row)


async def promote(ctx: AppContext, agent: Agent, version: int, *, by_person: bool) -> tuple[Agent, AgentVersion]:
    """Future tasks run `version`. When the promoted or the target version requires approval, only a
    person (an account API key) may promote: otherwise 403 `agent.promotion_approval_required`."""
    if agent.builtin and version != agent.promoted_version:
        raise builtin_immutable(agent)
    target = await version_of(ctx, agent, version)
    current = await version_of(ctx, agent)
    if (target.require_approval or current.require_approval) and not by_person:
        raise DomainError(
            "Promoting this agent's versions needs a person's approval: promote it with an account API key",
            code="agent.promotion_approval_required",
            status=403,
            details={"agentId": str(agent.id), "version": version},
        )
    async with ctx.db.transaction() as s:
        row = await s.get(Agent, agent.id, with_for_update=True)
        if row is None or row.archived_at is not None:
            raise agent_not_found(agent.id)
        if row.promoted_version != version:
            row.promoted_version = version
            row.updated_at = clock.now()
    return row, target


async def delete(ctx: AppContext, agent: Agent) -> uuid.UUID:
    """Archives the agent: versions and tasks stay readable, the name is free again."""
    if agent.builtin:
        raise builtin_immutable(agent)
    async with ctx.db.transaction() as s:
        row = await s.get(Agent, agent.id, with_for_update=True)
        if row is None or row.archived_at is not None:
            raise agent_not_found(agent.id)
        row.archived_at = row.updated_at = clock.now()
    return agent.id
