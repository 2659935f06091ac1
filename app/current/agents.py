"""`/v1/agents`: agents and their immutable versions (see `app/agents/service.py` for the rules:
behaviour changes append versions, promotion picks what tasks run, built-in agents `browser` and
`browser-use` in every space, `model` offered by an enabled AI credential). The A2A routes under
`/v1/agents/{id}/a2a` live in `a2a.py`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from app.accounts.auth import CtxDep, IdempotencyDep, PrincipalDep
from app.agents import service
from app.agents.models import Agent
from app.core.paging import PageParams, page_params
from app.core.schemas import errors
from app.current.agent_schemas import (
    AgentCreate,
    AgentDeletedOut,
    AgentOut,
    AgentUpdate,
    AgentVersionOut,
    PromoteBody,
)
from app.current.paths import ScopeSpace, SpaceHeader, chosen_space
from app.current.schemas import Order, page_model
from app.spaces import service as spaces

router = APIRouter(prefix="/v1/agents", tags=["agents"])
routers = (router,)

Page = Annotated[PageParams, Depends(page_params)]
OrderQuery = Annotated[Order, Query(description="By creation; newest first by default")]
AgentPage = page_model(AgentOut)
AgentVersionPage = page_model(AgentVersionOut)
AgentRef = Annotated[str, Path(min_length=1, max_length=200, description="Agent id, or its name in the space")]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


async def path_agent(ctx: CtxDep, p: PrincipalDep, agent_id: AgentRef, space: ScopeSpace) -> Agent:
    """A live agent by id or by name (in the `spaceId`/`BCTRL-Space` space, else any): 404 `agent.not_found`."""
    return await service.find(ctx, p, agent_id, space)


async def path_agent_history(ctx: CtxDep, p: PrincipalDep, agent_id: AgentRef, space: ScopeSpace) -> Agent:
    """An agent whose versions are read: a deleted (archived) one too, by its id."""
    return await service.find(ctx, p, agent_id, space, archived=True)


PathAgent = Annotated[Agent, Depends(path_agent)]
PathAgentHistory = Annotated[Agent, Depends(path_agent_history)]


@router.get("", response_model=AgentPage, responses=errors(400, 404))
async def list_agents(
    ctx: CtxDep,
    p: PrincipalDep,
    page: Page,
    space: ScopeSpace,
    name: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    order: OrderQuery = "desc",
) -> AgentPage:
    """The live agents of the space (of every space without one), built-in agents included, each
    with its promoted version."""
    rows, cursor = await service.list_agents(ctx, p, space, page, name=name, newest_first=order == "desc")
    return AgentPage(data=[AgentOut.of(a, v) for a, v in rows], has_more=cursor is not None, next_cursor=cursor)


@router.post("", status_code=201, response_model=AgentOut, responses=errors(400, 404, 409, 429, 502))
async def create_agent(
    ctx: CtxDep, p: PrincipalDep, body: AgentCreate, idem: IdempotencyDep, header_space: SpaceHeader = None
) -> AgentOut:
    """The agent and its version 1, promoted. `model` must be offered by an enabled AI credential (400
    `agent.model_unavailable`); `tools` name built-ins offered here or the space's custom tools (400
    `tool.not_found`, `tool.unavailable`); `scope.spaces` must be the account's (404 `space.not_found`)."""
    space = await spaces.resolve(ctx, p, chosen_space(body.space_id, header_space))

    async def make() -> AgentOut:
        return AgentOut.of(*await service.create(ctx, p, space, body.spec()))

    return await idem.once(make, body.model_dump(mode="json"))


@router.get("/{agent_id}", response_model=AgentOut, responses=errors(404, 409))
async def get_agent(ctx: CtxDep, agent: PathAgent) -> AgentOut:
    return AgentOut.of(agent, await service.version_of(ctx, agent))


@router.patch("/{agent_id}", response_model=AgentOut, responses=errors(400, 403, 404, 409, 429, 502))
async def update_agent(
    ctx: CtxDep, p: PrincipalDep, agent: PathAgent, body: AgentUpdate, idem: IdempotencyDep
) -> AgentOut:
    """A change of model, instructions, tools, scope, memory or requireApprovalForPromotion appends a
    version (not promoted: promote it to have tasks run it); name and metadata change the agent only.
    Built-in agents are 403 `agent.builtin_immutable`."""

    async def make() -> AgentOut:
        return AgentOut.of(*await service.update(ctx, p, agent, body.spec()))

    return await idem.once(make, body.model_dump(mode="json", exclude_unset=True))


@router.delete("/{agent_id}", response_model=AgentDeletedOut, responses=errors(403, 404, 409))
async def delete_agent(ctx: CtxDep, agent: PathAgent, idem: IdempotencyDep) -> AgentDeletedOut:
    """Archives the agent: its versions stay readable by id (`/versions`) and its tasks keep theirs.
    Built-in agents are 403 `agent.builtin_immutable`."""

    async def make() -> AgentDeletedOut:
        return AgentDeletedOut(id=str(await service.delete(ctx, agent)))

    return await idem.once(make, {})


@router.get("/{agent_id}/versions", response_model=AgentVersionPage, responses=errors(400, 404, 409))
async def list_versions(
    ctx: CtxDep, agent: PathAgentHistory, page: Page, order: OrderQuery = "desc"
) -> AgentVersionPage:
    rows, cursor = await service.list_versions(ctx, agent, page, newest_first=order == "desc")
    return AgentVersionPage(data=[AgentVersionOut.of(v) for v in rows], has_more=cursor is not None, next_cursor=cursor)


@router.get("/{agent_id}/versions/{version}", response_model=AgentVersionOut, responses=errors(404, 409))
async def get_version(ctx: CtxDep, agent: PathAgentHistory, version: VersionNumber) -> AgentVersionOut:
    return AgentVersionOut.of(await service.version_of(ctx, agent, version))


@router.post("/{agent_id}/versions/{version}/promote", response_model=AgentOut, responses=errors(403, 404, 409))
async def promote_version(
    ctx: CtxDep, agent: PathAgent, version: VersionNumber, idem: IdempotencyDep, body: PromoteBody | None = None
) -> AgentOut:
    """Future tasks run this version. A request made with an account API key is a person's, so it may
    promote a version that requires approval; an agent's own action (a task) gets 403
    `agent.promotion_approval_required`."""

    async def make() -> AgentOut:
        return AgentOut.of(*await service.promote(ctx, agent, version, by_person=True))

    return await idem.once(make, {"version": version})
