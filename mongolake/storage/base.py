"""The StorageBackend interface: bytes at relative POSIX paths under one root.

Every backend (memory, filesystem, S3) implements the same contract, so the
table formats above never know where their bytes live.

Paths are relative, '/'-separated, and may never leave the root: ``..``
components, absolute paths, backslashes, NUL and control characters are
refused with :class:`InvalidPathError` before any I/O happens.
"""
from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator, TypeVar

T = TypeVar("T")


class StorageError(Exception):
    """Base class of every storage failure."""


class NotFoundError(StorageError, FileNotFoundError):
    """The object does not exist."""


class InvalidPathError(StorageError, ValueError):
    """The path would escape the storage root or contains forbidden characters."""


class VersionMismatchError(StorageError):
    """A conditional write lost: the object exists (put-if-absent) or changed."""


class TransientStorageError(StorageError):
    """A retryable failure (throttling, 5xx, timeouts) that outlived its retries."""


@dataclass(frozen=True)
class FileInfo:
    path: str          # relative to the backend root
    size: int
    mtime: float       # seconds since the epoch
    version: str       # opaque: an etag on S3, (mtime_ns, size, inode) locally


def _check_components(path: str) -> None:
    if path.startswith("/") or "\\" in path:
        raise InvalidPathError(f"storage path must be relative and use '/': {path!r}")
    for ch in path:
        o = ord(ch)
        # C0 controls, DEL, C1 controls
        if o < 0x20 or 0x7F <= o <= 0x9F:
            raise InvalidPathError(f"storage path contains a control character: {path!r}")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPathError(f"storage path is not valid UTF-8 (lone surrogate): {path!r}") from None
    parts = path.split("/")
    for p in parts:
        if p in ("..", "."):
            raise InvalidPathError(f"storage path may not contain '.' or '..' components: {path!r}")
    if any(p == "" for p in parts[:-1]):
        raise InvalidPathError(f"storage path has an empty component: {path!r}")


def validate_path(path: str) -> str:
    """Return ``path`` (an object path) unchanged, or raise :class:`InvalidPathError`.

    Refused: non-strings, the empty string, absolute paths, backslashes, NUL and
    other control characters (C0, DEL, C1), lone surrogates, ``.``/``..`` and empty
    components, and a trailing ``/`` (an object path names a file, not a folder).
    """
    if not isinstance(path, str) or not path:
        raise InvalidPathError("storage path must be a non-empty string")
    _check_components(path)
    if path.endswith("/"):
        raise InvalidPathError(f"storage object path may not end with '/': {path!r}")
    return path


def validate_prefix(prefix: str) -> str:
    """Like :func:`validate_path`, but the empty prefix (the root) and a trailing
    ``/`` are allowed."""
    if not isinstance(prefix, str):
        raise InvalidPathError("storage prefix must be a string")
    if prefix == "":
        return prefix
    _check_components(prefix)
    return prefix


def check_range(start: int, length: int) -> None:
    """Refuse negative offsets/lengths for :meth:`StorageBackend.read_range`."""
    if start < 0 or length < 0:
        raise ValueError(f"read_range needs start >= 0 and length >= 0 (got {start}, {length})")


class StorageBackend(ABC):
    """Byte storage at relative paths. All methods are thread-safe."""

    url: str = ""
    #: Bytes returned by ``read``/``read_range`` so far (S3: bytes fetched by GET).
    #: Lets tests and benchmarks count the I/O of a point read. Not reset automatically.
    bytes_read: int = 0

    @abstractmethod
    def read(self, path: str) -> bytes:
        """Whole object; :class:`NotFoundError` if missing."""

    @abstractmethod
    def read_range(self, path: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end of the object)."""

    @abstractmethod
    def exists(self, path: str) -> bool: ...

    @abstractmethod
    def stat(self, path: str) -> FileInfo:
        """:class:`NotFoundError` if missing."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[FileInfo]:
        """Every object whose path starts with ``prefix`` (recursive), sorted by path."""

    @abstractmethod
    def write(self, path: str, data: bytes) -> None:
        """Create or replace; readers never see a partial object."""

    def write_atomic(self, path: str, data: bytes) -> None:
        """Create or replace atomically and durably (same as write on object stores)."""
        self.write(path, data)

    @abstractmethod
    def write_conditional(self, path: str, data: bytes, expected_version: str | None) -> str:
        """Write only if the object is absent (``expected_version is None``) or still
        has ``expected_version``; return the new version. Raise
        :class:`VersionMismatchError` if the condition fails. Atomic across processes."""

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove; missing objects are ignored."""

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; return how many."""
        items = self.list(prefix)
        for info in items:
            self.delete(info.path)
        return len(items)

    def copy(self, src: str, dst: str) -> None:
        self.write(dst, self.read(src))

    def move(self, src: str, dst: str) -> None:
        if src == dst:   # copy-then-delete would lose the object
            validate_path(src)
            if not self.exists(src):
                raise NotFoundError(src)
            return
        self.copy(src, dst)
        self.delete(src)

    def local_path(self, path: str) -> str | None:
        """An OS path for ``path`` when the backend is the local filesystem, else None.
        Lets pyarrow memory-map local Parquet files."""
        return None

    def open_input(self, path: str) -> BinaryIO:
        """A seekable, read-only file object that fetches byte ranges on demand
        (for Parquet footers and row groups without whole-object downloads)."""
        return RangeReader(self, path)

    def close(self) -> None:
        pass


class RangeReader:
    """A minimal seekable file object over :meth:`StorageBackend.read_range`."""

    def __init__(self, backend: StorageBackend, path: str, size: int | None = None):
        self._backend = backend
        self._path = path
        self._size = backend.stat(path).size if size is None else size
        self._pos = 0
        self.closed = False
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._pos

    def size(self) -> int:
        return self._size

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = offset
        elif whence == 1:
            self._pos += offset
        else:
            self._pos = self._size + offset
        return self._pos

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._size - self._pos
        n = max(0, min(n, self._size - self._pos))
        if n == 0:
            return b""
        data = self._backend.read_range(self._path, self._pos, n)
        self._pos += len(data)
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def retry(fn: Callable[[], T], *, attempts: int = 6, base_delay: float = 0.05, max_delay: float = 2.0,
          retry_on: tuple[type[BaseException], ...] = (TransientStorageError,)) -> T:
    """Call ``fn`` until it succeeds, with exponential backoff and full jitter."""
    for attempt in range(attempts):
        try:
            return fn()
        except retry_on:
            if attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0, min(max_delay, base_delay * (2 ** attempt))))
    raise AssertionError("unreachable")


def iter_chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]
