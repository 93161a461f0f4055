"""Local filesystem storage (the default): atomic, durable writes.

* ``write``/``write_atomic``: temp file in the same folder, fsync, rename, fsync of the folder.
* put-if-absent: the temp file is hard-linked to the target (``link`` fails if the
  target exists), which is atomic across processes.
* if-version-matches: an exclusive ``flock`` on a sidecar lock file serialises
  writers of one path; the version is ``mtime_ns-size-inode``.
* Every written file gets an explicit, strictly increasing nanosecond mtime, so a
  version is never reused even when the filesystem's clock is coarse and an inode
  number is recycled (no ABA on if-version writes).
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat as _stat
import threading
import time
import uuid

from .base import (FileInfo, InvalidPathError, NotFoundError, StorageBackend, VersionMismatchError,
                   check_range, validate_path, validate_prefix)

_TMP_MARK = ".tmp-"
_LOCK_SUFFIX = ".mllock"


def _version(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"


_clock_lock = threading.Lock()
_last_ns = 0


def _unique_ns() -> int:
    """Wall-clock nanoseconds, strictly increasing within this process."""
    global _last_ns
    with _clock_lock:
        _last_ns = max(_last_ns + 1, time.time_ns())
        return _last_ns


class FileStorage(StorageBackend):
    def __init__(self, root: str, *, fsync: bool = True):
        self.root = os.path.abspath(root)
        self.url = "file://" + self.root
        self.fsync = fsync
        os.makedirs(self.root, exist_ok=True)
        self._dir_cache: set[str] = set()
        self._lock = threading.Lock()

    # -- paths ---------------------------------------------------------------
    def _abs(self, path: str) -> str:
        validate_path(path)
        full = os.path.normpath(os.path.join(self.root, path))
        if full != self.root and not full.startswith(self.root + os.sep):
            raise InvalidPathError(f"path escapes the storage root: {path!r}")
        return full

    def local_path(self, path: str) -> str | None:
        return self._abs(path)

    def _ensure_dir(self, d: str) -> None:
        if d in self._dir_cache:
            return
        os.makedirs(d, exist_ok=True)
        self._dir_cache.add(d)

    def _tmp_for(self, full: str, data: bytes) -> tuple[str, str]:
        """Write ``data`` to a new temp file beside ``full``; return (temp path, version).

        The version is taken from the temp file itself: link/rename keep the inode,
        size and mtime, so it is the version the target has right after the swap.
        """
        d = os.path.dirname(full)
        self._ensure_dir(d)
        tmp = os.path.join(d, f"{_TMP_MARK}{uuid.uuid4().hex}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:
            # the folder was pruned meanwhile (delete_prefix here or in another process)
            self._dir_cache.discard(d)
            self._ensure_dir(d)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            ns = _unique_ns()
            os.utime(fd, ns=(ns, ns))
            if self.fsync:
                os.fsync(fd)
            version = _version(os.fstat(fd))
        except BaseException:
            os.close(fd)
            _silent_unlink(tmp)
            raise
        os.close(fd)
        return tmp, version

    def _fsync_dir(self, d: str) -> None:
        if not self.fsync:
            return
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- reads ---------------------------------------------------------------
    def _count(self, data: bytes) -> bytes:
        with self._lock:
            self.bytes_read += len(data)
        return data

    def read(self, path: str) -> bytes:
        try:
            with open(self._abs(path), "rb") as f:
                return self._count(f.read())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(path) from None

    def read_range(self, path: str, start: int, length: int) -> bytes:
        check_range(start, length)
        try:
            with open(self._abs(path), "rb") as f:
                f.seek(start)
                return self._count(f.read(length))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(path) from None

    def exists(self, path: str) -> bool:
        return os.path.isfile(self._abs(path))

    def stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(self._abs(path))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(path) from None
        if not _stat.S_ISREG(st.st_mode):
            raise NotFoundError(path)
        return FileInfo(path, st.st_size, st.st_mtime, _version(st))

    def list(self, prefix: str = "") -> list[FileInfo]:
        validate_prefix(prefix)
        # walk from the deepest folder the prefix names
        base_rel = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = os.path.join(self.root, base_rel) if base_rel else self.root
        out: list[FileInfo] = []
        if not os.path.isdir(base):
            return out
        for dirpath, _dirs, files in os.walk(base):
            rel_dir = os.path.relpath(dirpath, self.root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            for name in files:
                if name.startswith(_TMP_MARK) or name.endswith(_LOCK_SUFFIX):
                    continue
                rel = rel_dir + name
                if not rel.startswith(prefix):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except FileNotFoundError:
                    continue
                out.append(FileInfo(rel, st.st_size, st.st_mtime, _version(st)))
        out.sort(key=lambda f: f.path)
        return out

    # -- writes --------------------------------------------------------------
    def write(self, path: str, data: bytes) -> None:
        full = self._abs(path)
        tmp, _ = self._tmp_for(full, data)
        try:
            os.replace(tmp, full)
        except BaseException:
            _silent_unlink(tmp)
            raise
        self._fsync_dir(os.path.dirname(full))

    def write_conditional(self, path: str, data: bytes, expected_version: str | None) -> str:
        full = self._abs(path)
        tmp, new_version = self._tmp_for(full, data)
        try:
            if expected_version is None:
                try:
                    os.link(tmp, full)
                except FileExistsError:
                    raise VersionMismatchError(f"{path} already exists") from None
                _silent_unlink(tmp)
            else:
                with open(full + _LOCK_SUFFIX, "a+b") as lockf:
                    fcntl.flock(lockf.fileno(), fcntl.LOCK_EX)
                    try:
                        cur = _version(os.stat(full))
                    except FileNotFoundError:
                        raise VersionMismatchError(f"{path} does not exist") from None
                    if cur != expected_version:
                        raise VersionMismatchError(f"{path} changed (expected {expected_version}, found {cur})")
                    os.replace(tmp, full)
        finally:
            _silent_unlink(tmp)
        self._fsync_dir(os.path.dirname(full))
        return new_version

    def delete(self, path: str) -> None:
        full = self._abs(path)
        _silent_unlink(full)
        _silent_unlink(full + _LOCK_SUFFIX)

    def delete_prefix(self, prefix: str) -> int:
        n = super().delete_prefix(prefix)
        # prune now-empty folders below the prefix's folder
        base_rel = prefix.rstrip("/")
        if base_rel:
            base = self._abs(base_rel)
            if os.path.isdir(base):
                for dirpath, _dirs, _files in os.walk(base, topdown=False):
                    try:
                        os.rmdir(dirpath)
                    except OSError:
                        pass
                self._dir_cache = {d for d in self._dir_cache if not d.startswith(base)}
        return n

    def copy(self, src: str, dst: str) -> None:
        self.write(dst, self.read(src))

    def move(self, src: str, dst: str) -> None:
        s, d = self._abs(src), self._abs(dst)
        if not os.path.isfile(s):
            raise NotFoundError(src)
        self._ensure_dir(os.path.dirname(d))
        os.replace(s, d)
        self._fsync_dir(os.path.dirname(d))

    def open_input(self, path: str):
        full = self._abs(path)
        if not os.path.isfile(full):
            raise NotFoundError(path)
        try:
            return open(full, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(path) from None


def _silent_unlink(p: str) -> None:
    try:
        os.unlink(p)
    except OSError as e:
        if e.errno not in (errno.ENOENT, errno.EISDIR):
            pass
