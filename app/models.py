"""Imports every table so that Alembic and metadata-based tooling see the whole schema."""

from app.accounts.models import Account, ApiKey
from app.admission import models as _admission  # noqa: F401
from app.agents import models as _agents  # noqa: F401
from app.ai.models import AiConnection
from app.artifacts.models import Artifact
from app.connections.models import Connection
from app.core.db import Base
from app.core.idempotency import IdempotencyRecord
from app.core.server_key import ServerKey
from app.drains import models as _drains  # noqa: F401
from app.extensions.models import BrowserExtension
from app.files.models import StorageFile
from app.live import frame_models as _frame_models  # noqa: F401
from app.live.models import Recording, Viewer
from app.outbox import models as _outbox  # noqa: F401
from app.pool import models as _pool  # noqa: F401
from app.proxies.models import SavedProxy
from app.runs.command_models import Command
from app.runs.models import Run, RunEvent
from app.runtimes.models import Runtime
from app.spaces.models import Space
from app.tasks import models as _tasks  # noqa: F401
from app.toolcalls import models as _toolcalls  # noqa: F401
from app.tools import models as _tools  # noqa: F401
from app.usage import models as _usage  # noqa: F401
from app.vault import models as _vault  # noqa: F401
from app.views.models import View, ViewViewer
from app.webhooks import models as _webhooks  # noqa: F401

__all__ = [
    "Account",
    "AiConnection",
    "ApiKey",
    "Artifact",
    "Base",
    "BrowserExtension",
    "Command",
    "Connection",
    "IdempotencyRecord",
    "Recording",
    "Run",
    "SavedProxy",
    "RunEvent",
    "Runtime",
    "ServerKey",
    "Space",
    "StorageFile",
    "View",
    "ViewViewer",
    "Viewer",
]
