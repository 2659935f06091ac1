"""Imports every table so that Alembic and metadata-based tooling see the whole schema."""

from app.accounts.models import Account, ApiKey
from app.ai.models import AiConnection
from app.artifacts.models import Artifact
from app.connections.models import Connection
from app.core.db import Base
from app.core.idempotency import IdempotencyRecord
from app.core.server_key import ServerKey
from app.files.models import StorageFile
from app.live.models import Recording, Viewer
from app.runs.command_models import Command
from app.runs.models import Run, RunEvent
from app.runtimes.models import Runtime
from app.spaces.models import Space
from app.views.models import View, ViewViewer

__all__ = [
    "Account",
    "AiConnection",
    "ApiKey",
    "Artifact",
    "Base",
    "Command",
    "Connection",
    "IdempotencyRecord",
    "Recording",
    "Run",
    "RunEvent",
    "Runtime",
    "ServerKey",
    "Space",
    "StorageFile",
    "View",
    "ViewViewer",
    "Viewer",
]
