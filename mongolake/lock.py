"""Exclusive use of a store: one running server (or one admin command) at a time.

Two locks, both taken by :meth:`StoreLock.acquire`:

* **The store** (``<storage>/_mongolake/server.lock``). On a local filesystem an
  ``flock`` on that file: the kernel releases it when the process dies, so a
  crashed server never leaves a stale lock; the file's JSON content only names
  the last holder for the error message. On object stores (S3) a *lease*: the
  object is created with put-if-absent and renewed by a heartbeat thread every
  ``ttl / 3`` seconds with a conditional write; a lease whose heartbeat is older
  than ``ttl`` (or whose holder was a process on this host that no longer runs)
  may be taken over. ``memory://`` stores live in one process and need no lock.
* **The WAL folder** (``<wal_dir>/LOCK``, ``flock``), which also remembers the
  store it belongs to (``<wal_dir>/STORE``): a WAL with unflushed records is never
  replayed into a different store.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

from mongolake.storage import NotFoundError, StorageBackend, StorageError, VersionMismatchError

log = logging.getLogger("mongolake.lock")

LOCK_PATH = "_mongolake/server.lock"
DEFAULT_TTL = 30.0


class StoreInUseError(Exception):
    """The store (or WAL folder) is held by another process; the message says by whom."""


def _holder_text(info: dict | None) -> str:
    if not info:
        return "another process"
    role = info.get("role", "process")
    since = info.get("since")
    when = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(since)) if isinstance(since, (int, float)) else ""
    return f"a MongoLake {role} (pid {info.get('pid', '?')} on host {info.get('host', '?')}{when})"


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, TypeError, ValueError):
        return True
    return True


class _FileLock:
    """``flock`` on a local file, with JSON holder information inside."""

    def __init__(self, path: str, info: dict, what: str):
        self.path = path
        self.info = info
        self.what = what
        self.fd: int | None = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 65536, 0) or b"null")
            except (OSError, ValueError):
                holder = None
            os.close(fd)
            raise StoreInUseError(f"{self.what} is in use by {_holder_text(holder)}: stop it first "
                                  f"(SIGTERM lets a server flush and exit); lock file {self.path}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(self.info).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


class _Lease:
    """A renewed lease object on a store without file locks (S3)."""

    def __init__(self, storage: StorageBackend, info: dict, ttl: float):
        self.storage = storage
        self.info = info
        self.ttl = ttl
        self.version: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _data(self) -> bytes:
        return json.dumps({**self.info, "heartbeat": time.time(), "ttl": self.ttl}).encode()

    def acquire(self) -> None:
        try:
            self.version = self.storage.write_conditional(LOCK_PATH, self._data(), None)
        except VersionMismatchError:
            self._take_over()
        self._thread = threading.Thread(target=self._renew_loop, name="store-lease", daemon=True)
        self._thread.start()

    def _take_over(self) -> None:
        try:
            st = self.storage.stat(LOCK_PATH)
            holder = json.loads(self.storage.read(LOCK_PATH))
        except NotFoundError:          # released meanwhile
            self.version = self.storage.write_conditional(LOCK_PATH, self._data(), None)
            return
        except ValueError:
            holder = {}
        age = time.time() - max(float(holder.get("heartbeat") or 0), st.mtime)
        dead_here = holder.get("host") == self.info["host"] and not _pid_alive(holder.get("pid"))
        if age <= float(holder.get("ttl") or self.ttl) and not dead_here:
            raise StoreInUseError(
                f"the store {self.storage.url} is in use by {_holder_text(holder)} (lease renewed {age:.0f} s "
                f"ago): stop it first; a lease not renewed for {holder.get('ttl', self.ttl):g} s expires")
        log.warning("taking over the store lease of %s (%s)", _holder_text(holder),
                    "not running" if dead_here else f"not renewed for {age:.0f} s")
        try:
            self.version = self.storage.write_conditional(LOCK_PATH, self._data(), st.version)
        except VersionMismatchError:
            raise StoreInUseError(f"the store {self.storage.url} was just locked by another process") from None

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.version = self.storage.write_conditional(LOCK_PATH, self._data(), self.version)
            except VersionMismatchError:
                self.lost = True
                log.error("the store lease %s was taken by another process: two writers may now share the "
                          "store; stop one of them", LOCK_PATH)
                return
            except StorageError as e:
                log.warning("renewing the store lease failed (will retry): %s", e)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.lost or self.version is None:
            return
        try:
            if self.storage.stat(LOCK_PATH).version == self.version:
                self.storage.delete(LOCK_PATH)
        except StorageError as e:
            log.warning("could not remove the store lease: %s", e)
        self.version = None


class StoreLock:
    """Hold ``storage`` (and ``wal_dir``, if given) exclusively. ``role`` ("server",
    "compact", ...) is recorded for the message another process gets."""

    def __init__(self, storage: StorageBackend, wal_dir: str | None = None, *, role: str = "server",
                 ttl: float = DEFAULT_TTL):
        self.storage = storage
        self.wal_dir = wal_dir
        self.info = {"pid": os.getpid(), "host": socket.gethostname(), "role": role, "since": time.time(),
                     "owner": uuid.uuid4().hex, "storage": storage.url}
        self.ttl = ttl
        self._parts: list[Any] = []

    def acquire(self) -> "StoreLock":
        try:
            if self.wal_dir is not None:
                wal_lock = _FileLock(os.path.join(self.wal_dir, "LOCK"), self.info, f"the WAL folder {self.wal_dir}")
                wal_lock.acquire()
                self._parts.append(wal_lock)
                self._check_wal_store()
            local = self.storage.local_path("_mongolake") if hasattr(self.storage, "local_path") else None
            if local is not None:
                part: Any = _FileLock(os.path.join(local, "server.lock"), self.info, f"the store {self.storage.url}")
            elif self.storage.url.startswith("memory://"):
                part = None
            else:
                part = _Lease(self.storage, self.info, self.ttl)
            if part is not None:
                part.acquire()
                self._parts.append(part)
        except BaseException:
            self.release()
            raise
        return self

    def _check_wal_store(self) -> None:
        local = self.storage.local_path("_mongolake") if hasattr(self.storage, "local_path") else None
        if local is not None and os.path.abspath(self.wal_dir).startswith(os.path.dirname(local) + os.sep):
            return    # a WAL inside its store moves with it
        marker = os.path.join(self.wal_dir, "STORE")
        url = self.storage.url
        try:
            with open(marker, encoding="utf-8") as f:
                owner = f.read().strip()
        except FileNotFoundError:
            owner = None
        if owner and owner != url and _wal_has_records(self.wal_dir):
            raise StoreInUseError(f"the WAL folder {self.wal_dir} holds unflushed writes of the store {owner}, "
                                  f"not {url}: start that store with it, or use another --wal-dir")
        if owner != url:
            with open(marker, "w", encoding="utf-8") as f:
                f.write(url + "\n")

    @property
    def lost(self) -> bool:
        return any(getattr(p, "lost", False) for p in self._parts)

    def release(self) -> None:
        for part in reversed(self._parts):
            try:
                part.release()
            except Exception:   # noqa: BLE001 - releasing must go on
                log.exception("releasing a lock failed")
        self._parts.clear()

    def __enter__(self) -> "StoreLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _wal_has_records(wal_dir: str) -> bool:
    try:
        return any(n.startswith("wal-") and n.endswith(".log") and os.path.getsize(os.path.join(wal_dir, n)) > 0
                   for n in os.listdir(wal_dir))
    except OSError:
        return False
