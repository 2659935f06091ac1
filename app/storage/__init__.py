"""Object storage for file and artifact bytes. `make_store(settings)` picks the configured backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.storage.base import ObjectStore, StoredObject, TooLarge, new_key
from app.storage.filesystem import FilesystemStore

if TYPE_CHECKING:
    from app.core.config import Settings

__all__ = ["FilesystemStore", "ObjectStore", "StoredObject", "TooLarge", "make_store", "new_key"]


def make_store(settings: Settings) -> ObjectStore:
    """The filesystem store under `objects_dir`; it holds no state, so building one per call is cheap."""
    return FilesystemStore(settings.objects_dir)
