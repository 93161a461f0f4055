"""Storage backends: ``memory://``, a path or ``file://…`` (default), ``s3://bucket/prefix``."""
from __future__ import annotations

from typing import Any

from .base import (FileInfo, InvalidPathError, NotFoundError, RangeReader, StorageBackend, StorageError,
                   TransientStorageError, VersionMismatchError, retry, validate_path)
from .filesystem import FileStorage
from .memory import MemoryStorage

__all__ = ["FileInfo", "InvalidPathError", "NotFoundError", "RangeReader", "StorageBackend", "StorageError",
           "TransientStorageError", "VersionMismatchError", "retry", "validate_path", "FileStorage",
           "MemoryStorage", "open_storage"]

_MEMORY_STORES: dict[str, MemoryStorage] = {}


def open_storage(url: str, **options: Any) -> StorageBackend:
    """Open a backend from a URL.

    ``memory://name`` (one shared store per name in this process), a plain path or
    ``file:///abs/path``, or ``s3://bucket/prefix`` (options: endpoint_url, region,
    access_key_id, secret_access_key, session_token, path_style; else the usual
    AWS_* environment variables).
    """
    if not isinstance(url, str) or not url:
        raise ValueError("storage URL must be a non-empty string")
    if url.startswith("memory://"):
        return _MEMORY_STORES.setdefault(url, MemoryStorage(url))
    if url.startswith("s3://"):
        from .s3 import S3Storage

        return S3Storage.from_url(url, **options)
    if url.startswith("file://"):
        url = url[len("file://"):]
    if "://" in url:
        raise ValueError(f"unsupported storage URL scheme: {url!r} (use a path, file://, memory:// or s3://)")
    unknown = set(options) - {"fsync"}
    if unknown:
        raise ValueError(f"unknown option(s) for filesystem storage: {', '.join(sorted(unknown))}")
    return FileStorage(url, **options)
