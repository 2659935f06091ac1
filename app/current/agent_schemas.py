"""`/v1/agents` wire models (the 0.3 wheel's Agent, AgentVersion, AgentScope, AgentCreateRequest,
AgentUpdateRequest, AgentsDeleteResponse)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from app.agents.models import Agent, AgentVersion
from app.agents.service import AgentSpec
from app.core.schemas import JsonObject, RequestModel, Timestamp, WireModel

ResourceName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"\S")]
Model = Annotated[
    str,
    Field(
        min_length=1,
        max_length=300,
        pattern=r"^\S+$",
        description="A model an enabled AI credential offers: its id (`gpt-4o`) or `<provider>/<id>` (`custom/qwen`)",
    ),
]
ToolRef = Annotated[str, Field(min_length=1, max_length=200)]
Instructions = Annotated[str, Field(max_length=100_000)]
Memory = Literal["space_notes", "none"]


class ScopeIn(RequestModel):
    budget_usd: int | None = Field(default=None, description="Not offered here: null only (agent.scope_unsupported)")
    capabilities: list[str] | None = Field(default=None, max_length=50, description="None are defined here: [] only")
    max_concurrent_runtimes: int | None = Field(default=None, description="1 to 100 (default 1)")
    spaces: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=100, description="Space ids (or `default`); empty: the task starter's space"
    )

    def words(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class _AgentFields(RequestModel):
    instructions: Instructions | None = None
    memory: Memory | None = Field(
        default=None, description="none (space_notes is not offered: agent.memory_unsupported)"
    )
    metadata: JsonObject | None = None
    require_approval_for_promotion: bool | None = None
    scope: ScopeIn | None = None
    tools: list[ToolRef] | None = Field(
        default=None, max_length=64, description="Built-in tool names and custom tools' ids or names"
    )


class AgentCreate(_AgentFields):
    model: Model
    name: ResourceName
    space_id: str | None = Field(default=None, max_length=64, description="Space id or `default`")

    def spec(self) -> AgentSpec:
        return AgentSpec(
            name=self.name,
            model=self.model,
            instructions=self.instructions,
            tools=self.tools,
            scope=None if self.scope is None else self.scope.words(),
            memory=self.memory,
            require_approval=self.require_approval_for_promotion,
            metadata=self.metadata,
        )


_SPEC_NAMES = {"require_approval_for_promotion": "require_approval"}


class AgentUpdate(_AgentFields):
    model: Model | None = None
    name: ResourceName | None = None

    def spec(self) -> AgentSpec:
        # null on a behaviour field means "as it is": nothing but metadata can be cleared.
        given = {
            _SPEC_NAMES.get(n, n) for n in self.model_fields_set if getattr(self, n) is not None or n == "metadata"
        }
        return AgentSpec(
            name=self.name,
            model=self.model,
            instructions=self.instructions,
            tools=self.tools,
            scope=None if self.scope is None else self.scope.words(),
            memory=self.memory,
            require_approval=self.require_approval_for_promotion,
            metadata=self.metadata,
            given=given,
        )


class PromoteBody(RequestModel):
    pass


class AgentScopeOut(WireModel):
    budget_usd: int | None = None
    capabilities: list[str]
    max_concurrent_runtimes: int
    spaces: list[str]


class AgentVersionOut(WireModel):
    id: str
    object: Literal["agent.version"] = "agent.version"
    agent_id: str
    version: int
    model: str
    instructions: str
    tools: list[str]
    scope: AgentScopeOut
    memory: Memory
    require_approval_for_promotion: bool
    created_at: Timestamp

    @classmethod
    def of(cls, v: AgentVersion) -> AgentVersionOut:
        scope = v.scope or {}
        return cls(
            id=str(v.id),
            agent_id=str(v.agent_id),
            version=v.version,
            model=v.model,
            instructions=v.instructions,
            tools=list(v.tools),
            scope=AgentScopeOut(
                budget_usd=scope.get("budgetUsd"),
                capabilities=list(scope.get("capabilities") or []),
                max_concurrent_runtimes=scope.get("maxConcurrentRuntimes") or 1,
                spaces=list(scope.get("spaces") or []),
            ),
            memory=v.memory,  # type: ignore[arg-type]
            require_approval_for_promotion=v.require_approval,
            created_at=v.created_at,
        )


class AgentOut(WireModel):
    id: str
    object: Literal["agent"] = "agent"
    name: str
    space_id: str
    metadata: JsonObject | None = None
    latest_version: int
    promoted_version: int
    version: AgentVersionOut = Field(description="The promoted version")
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def of(cls, agent: Agent, version: AgentVersion) -> AgentOut:
        return cls(
            id=str(agent.id),
            name=agent.name,
            space_id=str(agent.space_id),
            metadata=agent.metadata_,
            latest_version=agent.latest_version,
            promoted_version=agent.promoted_version,
            version=AgentVersionOut.of(version),
            created_at=agent.created_at,
            updated_at=agent.updated_at,
        )


class AgentDeletedOut(WireModel):
    id: str
    deleted: Literal[True] = True
