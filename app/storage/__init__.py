"""Object storage for file and artifact bytes. `make_store(settings)` picks the configured backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.storage.base import ObjectStore, StoredObject, TooLarge, new_key
from app.storage.filesystem import FilesystemStore

if TYPE_CHECKING:
    from app.core.config import Settings

__all__ = ["FilesystemStore", "ObjectStore", "StoredObject", "TooLarge", "make_store", "new_key"]


def make_store(settings: Settings) -> ObjectStore:
    """The filesystem store under `objects_dir` unless `storage_url` names an S3-compatible bucket.

    Neither holds state of its own (the S3 store shares one connection pool per event loop), so
    building one per call is cheap.
    """
    if settings.storage_url:
        from app.storage.s3 import S3Store

        return S3Store(
            settings.storage_url,
            endpoint=settings.storage_endpoint,
            region=settings.storage_region,
            access_key_id=settings.storage_access_key_id,
            secret_access_key=settings.storage_secret_access_key,
            part_bytes=settings.storage_part_bytes,
            timeout_seconds=settings.storage_timeout_seconds,
        )
    return FilesystemStore(settings.objects_dir)
