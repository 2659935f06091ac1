"""Invocation requests in every documented shape, normalised to (provider, method, request)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from app.core.schemas import RequestModel, WireModel, list_model
from app.runs import commands
from app.runs.command_models import Command
from app.runs.schemas import CommandOut

Instruction = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]
PROVIDERS = {
    "stagehand": "stagehand",
    "browserUse": "browserUse",
    "browser-use": "browserUse",
    "browser_use": "browserUse",
}


class Target(RequestModel):
    type: Literal["browser_page"] = "browser_page"
    page: Literal["active", "new"] = "active"


class Knobs(RequestModel):
    """What a caller may tune, in every shape."""

    output_schema: dict[str, Any] | None = None
    model: Annotated[str, StringConstraints(max_length=200)] | None = None
    connection: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, description="The AI connection to use (else the space's default, else the account's first)"
    )
    max_steps: int | None = Field(default=None, ge=1, le=100)
    timeout_seconds: int | None = Field(default=None, ge=1, le=3600)
    temperature: float | None = Field(default=None, ge=0, le=2)


class SeedInput(RequestModel):
    instruction: Instruction
    model_config = {**RequestModel.model_config, "extra": "allow"}


class SeedInvocation(Knobs):
    """Both seed shapes: {provider, operation: "agent.execute", input} and {provider, method, target, input,
    files, outputSchema}."""

    # What _seed() needs to pick a method, for the API description.
    model_config = {
        **Knobs.model_config,
        "json_schema_extra": {
            "anyOf": [
                {"required": ["method"]},
                {"required": ["operation"]},
                {"properties": {"provider": {"enum": [k for k, v in PROVIDERS.items() if v == "browserUse"]}}},
            ]
        },
    }
    provider: str = Field(json_schema_extra={"enum": list(PROVIDERS)})
    operation: Literal["agent.execute"] | None = None
    method: Literal["act", "observe", "extract", "agent"] | None = None
    target: Target | None = None
    input: SeedInput
    files: list[dict[str, Any]] | None = Field(default=None, max_length=50)

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise ValueError("must be stagehand or browserUse")
        return PROVIDERS[value]


class FlatInvocation(Knobs):
    action: Literal["act", "observe", "extract", "stagehandAgent", "browserUse"]
    instruction: Instruction
    target: Target | None = None


def normalise_seed(body: SeedInvocation) -> tuple[str, str, dict[str, Any]]:
    method = body.method or ("agent" if body.operation == "agent.execute" or body.provider == "browserUse" else None)
    if method is None:
        raise ValueError("method")
    request = {"instruction": body.input.instruction, **_knobs(body), "target": (body.target or Target()).model_dump()}
    return body.provider, method, request


def normalise_flat(body: FlatInvocation) -> tuple[str, str, dict[str, Any]]:
    provider = "browserUse" if body.action == "browserUse" else "stagehand"
    method = {"stagehandAgent": "agent", "browserUse": "agent"}.get(body.action, body.action)
    request = {"instruction": body.instruction, **_knobs(body), "target": (body.target or Target()).model_dump()}
    return provider, method, request


def _knobs(body: Knobs) -> dict[str, Any]:
    return {
        k: v
        for k, v in {
            "outputSchema": body.output_schema,
            "model": body.model,
            "connection": body.connection,
            "maxSteps": body.max_steps,
            "timeoutSeconds": body.timeout_seconds,
            "temperature": body.temperature,
        }.items()
        if v is not None
    }


# --- responses ----------------------------------------------------------------------------------


class InvocationOut(CommandOut):
    """An invocation: its command record with the request, result and error, and who runs it."""

    request: Any = None
    result: Any = None
    error: Any = None
    provider: str | None
    method: str | None
    output: Any = Field(default=None, description="Same as `result`")

    @classmethod
    def of(cls, c: Command) -> InvocationOut:
        wire = commands.as_wire(c, {"request", "result", "error"})
        return cls.model_validate({**wire, "provider": c.provider, "method": c.method, "output": c.result})


InvocationList = list_model(InvocationOut, "invocations")


class WaitOut(WireModel):
    invocation: InvocationOut
    timed_out: bool
    wait_status: Literal["timeout", "completed"]
    timeout_ms: int = Field(description="The wait used (the ask, or the maximum when it asked for more)")
    timeout_clamped: bool
