"""In-process storage for tests and embedded use (``memory://``)."""
from __future__ import annotations

import itertools
import threading
import time

from .base import (FileInfo, NotFoundError, StorageBackend, VersionMismatchError, check_range, validate_path,
                   validate_prefix)


class MemoryStorage(StorageBackend):
    def __init__(self, url: str = "memory://"):
        self.url = url
        self._objects: dict[str, tuple[bytes, float, str]] = {}
        self._lock = threading.Lock()
        self._versions = itertools.count(1)

    def _get(self, path: str) -> tuple[bytes, float, str]:
        validate_path(path)
        try:
            return self._objects[path]
        except KeyError:
            raise NotFoundError(path) from None

    def _count(self, data: bytes) -> bytes:
        with self._lock:
            self.bytes_read += len(data)
        return data

    def read(self, path: str) -> bytes:
        return self._count(self._get(path)[0])

    def read_range(self, path: str, start: int, length: int) -> bytes:
        check_range(start, length)
        return self._count(self._get(path)[0][start:start + length])

    def exists(self, path: str) -> bool:
        validate_path(path)
        return path in self._objects

    def stat(self, path: str) -> FileInfo:
        data, mtime, ver = self._get(path)
        return FileInfo(path, len(data), mtime, ver)

    def list(self, prefix: str = "") -> list[FileInfo]:
        validate_prefix(prefix)
        with self._lock:
            items = [(p, v) for p, v in self._objects.items() if p.startswith(prefix)]
        return sorted((FileInfo(p, len(d), m, ver) for p, (d, m, ver) in items), key=lambda f: f.path)

    def _put(self, path: str, data: bytes) -> str:
        ver = str(next(self._versions))
        self._objects[path] = (bytes(data), time.time(), ver)
        return ver

    def write(self, path: str, data: bytes) -> None:
        validate_path(path)
        with self._lock:
            self._put(path, data)

    def write_conditional(self, path: str, data: bytes, expected_version: str | None) -> str:
        validate_path(path)
        with self._lock:
            cur = self._objects.get(path)
            if expected_version is None:
                if cur is not None:
                    raise VersionMismatchError(f"{path} already exists")
            elif cur is None or cur[2] != expected_version:
                raise VersionMismatchError(f"{path} changed (expected version {expected_version})")
            return self._put(path, data)

    def delete(self, path: str) -> None:
        validate_path(path)
        with self._lock:
            self._objects.pop(path, None)
