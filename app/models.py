"""Imports every table so that Alembic and metadata-based tooling see the whole schema."""

from app.accounts.models import Account, ApiKey
from app.core.db import Base
from app.core.idempotency import IdempotencyRecord
from app.runs.models import Run, RunEvent
from app.runtimes.models import Runtime
from app.spaces.models import Space

__all__ = ["Account", "ApiKey", "Base", "IdempotencyRecord", "Run", "RunEvent", "Runtime", "Space"]
