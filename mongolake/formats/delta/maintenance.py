"""Vacuum (delete unreferenced data files) and log expiry (drop old commits)."""
from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from .log import LOG_DIR, join
from .state import LogState

if TYPE_CHECKING:
    from .table import DeltaTable

_LOG_FILE_RE = re.compile(r"^(\d{20})\.(json|crc|checkpoint(\.\d{10}\.\d{10})?\.parquet)$")
CHANGE_DATA_DIR = "_change_data"


def _hidden(rel: str) -> bool:
    """Delta ignores files and folders whose names start with '_' or '.', except ``_change_data``."""
    parts = rel.split("/")
    if parts[0] == CHANGE_DATA_DIR and len(parts) > 1:
        parts = parts[1:]
    return any(p.startswith(("_", ".")) for p in parts)


def vacuum(table: "DeltaTable", state: LogState, *, retention_seconds: float, dry_run: bool) -> dict[str, Any]:
    """Delete data and change-data files that no snapshot of the last ``retention_seconds``
    references. A file is kept when it is live, when it was removed within the retention
    period (its tombstone is still in the state), or when it was itself written within the
    retention period (it may belong to a commit in progress)."""
    if retention_seconds < 0:
        raise ValueError("retention_seconds must be >= 0")
    now_ms = time.time() * 1000
    cutoff = now_ms - retention_seconds * 1000
    keep = set(state.files)
    keep.update(p for p, r in state.tombstones.items() if (r.get("deletionTimestamp") or now_ms) >= cutoff)
    prefix = join(table.root, "")
    doomed: list[tuple[str, int]] = []
    for info in table.storage.list(prefix):
        rel = info.path[len(prefix):]
        if rel.split("/", 1)[0] == LOG_DIR or _hidden(rel) or rel in keep:
            continue
        if info.mtime * 1000 >= cutoff:
            continue
        doomed.append((rel, info.size))
    if not dry_run:
        for rel, _ in doomed:
            table.storage.delete(prefix + rel)
    return {"files_deleted": len(doomed), "bytes_deleted": sum(s for _, s in doomed),
            "files": [r for r, _ in doomed], "dry_run": dry_run}


def expire_log(table: "DeltaTable", latest: LogState, *, older_than_ms: int, min_snapshots: int) -> dict[str, Any]:
    """Delete log files (commits, checkpoints, checksums) older than the newest checkpoint
    that was committed before ``older_than_ms`` and leaves at least ``min_snapshots``
    versions. Versions before that checkpoint can no longer be read."""
    listing = table.log.list()
    newest_allowed = latest.version - max(1, min_snapshots) + 1
    chosen = None
    for c in sorted(listing.checkpoints, reverse=True):
        if c > newest_allowed:
            continue
        ts = table._commit_timestamp(c, listing.commits.get(c, listing.checkpoint_mtimes.get(c)))
        if ts is not None and ts <= older_than_ms:
            chosen = c
            break
    earliest = listing.earliest_reconstructable()
    if chosen is None or (earliest is not None and chosen <= earliest):
        return {"snapshots_expired": 0, "files_deleted": 0, "earliest_version": earliest}
    doomed = []
    for info in table.storage.list(table.log.dir + "/"):
        m = _LOG_FILE_RE.match(info.path[len(table.log.dir) + 1:])
        if m and int(m.group(1)) < chosen:
            doomed.append((int(m.group(1)), info.path))
    doomed.sort()                       # oldest first: never leave a gap in the middle
    for _, path in doomed:
        table.storage.delete(path)
    expired = sum(1 for v in listing.commits if v < chosen)
    return {"snapshots_expired": expired, "files_deleted": len(doomed), "earliest_version": chosen}
