"""The ``_delta_log`` folder: file naming, commit files (newline-delimited JSON
actions), put-if-absent commits, listing, ``_last_checkpoint``.

Every read and write goes through the :class:`~mongolake.storage.StorageBackend`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mongolake.storage import NotFoundError, StorageBackend, VersionMismatchError

LOG_DIR = "_delta_log"
_COMMIT_RE = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT_RE = re.compile(r"^(\d{20})\.checkpoint(?:\.(\d{10})\.(\d{10}))?\.parquet$")

Action = dict[str, Any]


def join(root: str, rel: str) -> str:
    return f"{root}/{rel}" if root else rel


def encode_actions(actions: list[Action]) -> bytes:
    return "".join(json.dumps(a, separators=(",", ":"), ensure_ascii=False) + "\n" for a in actions).encode()


def decode_actions(data: bytes) -> list[Action]:
    out = []
    for line in data.decode("utf-8").splitlines():
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out


@dataclass
class LogListing:
    """What ``_delta_log`` holds: commit versions (with mtimes) and complete checkpoints."""
    commits: dict[int, float] = field(default_factory=dict)          # version -> mtime (s)
    checkpoints: dict[int, list[str]] = field(default_factory=dict)  # version -> part paths (complete only)
    checkpoint_mtimes: dict[int, float] = field(default_factory=dict)

    @property
    def latest(self) -> int | None:
        return max(self.commits) if self.commits else (max(self.checkpoints) if self.checkpoints else None)

    def checkpoint_at_or_before(self, version: int) -> int | None:
        c = [v for v in self.checkpoints if v <= version]
        return max(c) if c else None

    def earliest_reconstructable(self) -> int | None:
        """The lowest version whose state can be rebuilt from what is still stored."""
        starts = set(self.checkpoints) | ({0} if 0 in self.commits else set())
        return min(starts) if starts else None


class DeltaLog:
    """File-level access to one table's ``_delta_log``."""

    def __init__(self, storage: StorageBackend, root: str):
        self.storage = storage
        self.root = root
        self.dir = join(root, LOG_DIR)

    # -- paths -------------------------------------------------------------------
    def commit_path(self, version: int) -> str:
        return f"{self.dir}/{version:020d}.json"

    def checkpoint_path(self, version: int) -> str:
        return f"{self.dir}/{version:020d}.checkpoint.parquet"

    @property
    def last_checkpoint_path(self) -> str:
        return f"{self.dir}/_last_checkpoint"

    # -- commits -----------------------------------------------------------------
    def read_commit(self, version: int) -> list[Action] | None:
        """The actions of ``version``, or None when that commit file does not exist."""
        try:
            data = self.storage.read(self.commit_path(version))
        except NotFoundError:
            return None
        return decode_actions(data)

    def try_write_commit(self, version: int, actions: list[Action]) -> bool:
        """Put-if-absent of commit ``version``; False when another writer won it."""
        try:
            self.storage.write_conditional(self.commit_path(version), encode_actions(actions), None)
        except VersionMismatchError:
            return False
        return True

    def commit_mtime_ms(self, version: int) -> int | None:
        try:
            return int(self.storage.stat(self.commit_path(version)).mtime * 1000)
        except NotFoundError:
            return None

    # -- listing -----------------------------------------------------------------
    def list(self) -> LogListing:
        listing = LogListing()
        parts: dict[int, dict[int, str]] = {}
        expected: dict[int, int] = {}
        for info in self.storage.list(self.dir + "/"):
            name = info.path[len(self.dir) + 1:]
            if "/" in name:
                continue
            m = _COMMIT_RE.match(name)
            if m:
                listing.commits[int(m.group(1))] = info.mtime
                continue
            m = _CHECKPOINT_RE.match(name)
            if m:
                v = int(m.group(1))
                if m.group(2) is None:
                    listing.checkpoints[v] = [info.path]
                    listing.checkpoint_mtimes[v] = info.mtime
                else:
                    parts.setdefault(v, {})[int(m.group(2))] = info.path
                    expected[v] = int(m.group(3))
        for v, ps in parts.items():
            if v not in listing.checkpoints and len(ps) == expected[v] and set(ps) == set(range(1, expected[v] + 1)):
                listing.checkpoints[v] = [ps[i] for i in sorted(ps)]
        return listing

    # -- _last_checkpoint ----------------------------------------------------------
    def read_last_checkpoint(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.storage.read(self.last_checkpoint_path))
        except (NotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("version"), int) else None

    def checkpoint_files(self, info: dict[str, Any]) -> list[str]:
        v = info["version"]
        n = info.get("parts")
        if n:
            return [f"{self.dir}/{v:020d}.checkpoint.{i:010d}.{n:010d}.parquet" for i in range(1, n + 1)]
        return [self.checkpoint_path(v)]

    def write_last_checkpoint(self, info: dict[str, Any]) -> None:
        """Record the newest checkpoint (never moves the hint backwards, best effort)."""
        cur = self.read_last_checkpoint()
        if cur is not None and cur["version"] >= info["version"]:
            return
        self.storage.write(self.last_checkpoint_path, json.dumps(info, separators=(",", ":")).encode())
