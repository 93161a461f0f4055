"""Snapshot expiry and vacuum (expiry of superseded snapshots + removal of unreferenced files)."""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Callable

from .commit import CHANGES_KEY, Built, next_metadata, run_metadata_commit
from .metadata import DATA_DIR, METADATA_DIR, current_snapshot, find_metadata_version, join, snapshots_sorted
from .state import TableState, build_snap_state

if TYPE_CHECKING:
    from .table import IcebergTable

Chooser = Callable[[list[dict], dict], set[int]]     # (snapshots by sequence, metadata) -> ids to expire


def _expire(table: "IcebergTable", choose: Chooser) -> tuple[TableState, list[dict], list[dict]]:
    """Commit metadata without the snapshots ``choose`` picks (never the current one).
    Returns (new state, expired snapshots, retained snapshots)."""
    expired: list[dict] = []

    def build(base: TableState, attempt: int, ts: int) -> Built | None:
        md = base.metadata
        snaps = snapshots_sorted(md)
        cur = current_snapshot(md)
        doomed = choose(snaps, md) - ({cur["snapshot-id"]} if cur else set())
        expired[:] = [s for s in snaps if s["snapshot-id"] in doomed]
        if not expired:
            return None
        new_md = next_metadata(table, base, ts)
        keep = [s for s in md.get("snapshots") or [] if s["snapshot-id"] not in doomed]
        ids = {s["snapshot-id"] for s in keep}
        new_md["snapshots"] = keep
        new_md["snapshot-log"] = [e for e in md.get("snapshot-log") or [] if e.get("snapshot-id") in ids]
        new_md["refs"] = {k: r for k, r in (md.get("refs") or {}).items() if r.get("snapshot-id") in ids}
        return Built(new_md, base=base)

    state, _ = run_metadata_commit(table, table.refresh_state(), build, lambda old, new: None)
    return state, expired, snapshots_sorted(state.metadata)


def _manifest_paths(table: "IcebergTable", md: dict, snaps: list[dict]) -> set[str]:
    """Storage paths of the manifest lists and manifests of ``snaps``."""
    out: set[str] = set()
    for s in snaps:
        uri = s.get("manifest-list")
        if not uri:
            continue
        out.add(table.cache.storage_path(uri, md["location"], table.location))
        for mf in table.cache.manifest_list(uri, md["location"], table.location):
            out.add(table.cache.storage_path(mf.path, md["location"], table.location))
    return out


def expire_snapshots(table: "IcebergTable", *, older_than_ms: int, min_snapshots: int) -> dict[str, Any]:
    """Drop snapshots committed before ``older_than_ms`` (keeping the newest
    ``min_snapshots`` and the current one), then delete their manifest lists and the
    manifests no retained snapshot uses. Data files are left to :func:`vacuum`."""
    keep_n = max(1, min_snapshots)

    def choose(snaps: list[dict], md: dict) -> set[int]:
        older = snaps[:-keep_n] if len(snaps) > keep_n else []
        return {s["snapshot-id"] for s in older if int(s["timestamp-ms"]) < older_than_ms}

    before = table.refresh_state()
    state, expired, retained = _expire(table, choose)
    files_deleted = 0
    if expired:
        md = state.metadata
        doomed = _manifest_paths(table, before.metadata, expired) - _manifest_paths(table, md, retained)
        for path in sorted(doomed):
            table.storage.delete(path)
        files_deleted = len(doomed)
    return {"snapshots_expired": len(expired), "files_deleted": files_deleted,
            "earliest_version": earliest_version(state.metadata)}


def earliest_version(md: dict) -> int:
    """The oldest version still readable: 0 while the first snapshot (sequence 1) is
    kept (its parent is the empty table), else the oldest retained sequence number."""
    seqs = [int(s.get("sequence-number", 0)) for s in md.get("snapshots") or []]
    if not seqs or min(seqs) <= 1:
        return 0
    return min(seqs)


def _superseded_before(cutoff_ms: float) -> Chooser:
    def choose(snaps: list[dict], md: dict) -> set[int]:
        return {s["snapshot-id"] for s, nxt in zip(snaps, snaps[1:]) if int(nxt["timestamp-ms"]) < cutoff_ms}
    return choose


def vacuum(table: "IcebergTable", *, retention_seconds: float, dry_run: bool) -> dict[str, Any]:
    """Expire the snapshots that stopped being current before the retention window,
    then delete every file under ``data/`` and ``metadata/`` that no retained snapshot
    references and that was written before the window (so uncommitted files of a commit
    in progress survive). With ``dry_run`` nothing is expired or deleted."""
    if retention_seconds < 0:
        raise ValueError("retention_seconds must be >= 0")
    cutoff_ms = time.time() * 1000 - retention_seconds * 1000
    choose = _superseded_before(cutoff_ms)
    if dry_run:
        state = table.refresh_state()
        snaps = snapshots_sorted(state.metadata)
        gone = choose(snaps, state.metadata)
        retained = [s for s in snaps if s["snapshot-id"] not in gone]
        expired_n = len(gone)
    else:
        state, expired, retained = _expire(table, choose)
        expired_n = len(expired)
    md = state.metadata
    keep = _manifest_paths(table, md, retained)
    for s in retained:
        snap = state.head if s["snapshot-id"] == state.head.snapshot_id else build_snap_state(
            md, s, table.cache, md["location"], table.location)
        keep.update(table.storage_path(p) for p in snap.live)
        keep.update(table.storage_path(p) for p in snap.deletes)
        for c in json.loads((s.get("summary") or {}).get(CHANGES_KEY, "[]")):
            keep.add(table.storage_path(c["path"]))
    logged = {find_metadata_version(e.get("metadata-file", "")) for e in md.get("metadata-log") or []}
    data_doomed: list[tuple[str, int]] = []
    meta_doomed: list[str] = []
    for folder in (DATA_DIR, METADATA_DIR):
        prefix = join(table.root, folder) + "/"
        for info in table.storage.list(prefix):
            if info.path in keep or info.mtime * 1000 >= cutoff_ms:
                continue
            if folder == DATA_DIR:
                if info.path.endswith(".parquet"):
                    data_doomed.append((info.path, info.size))
                continue
            name = info.path[len(prefix):]
            v = find_metadata_version(name)
            if v is not None and (v >= state.version or v in logged):
                continue
            if v is not None or name.endswith(".avro"):
                meta_doomed.append(info.path)
    if not dry_run:
        for path, _ in data_doomed:
            table.storage.delete(path)
        for path in meta_doomed:
            table.storage.delete(path)
    root = join(table.root, "")
    return {"files_deleted": len(data_doomed), "bytes_deleted": sum(s for _, s in data_doomed),
            "files": [p[len(root):] for p, _ in data_doomed], "dry_run": dry_run,
            "snapshots_expired": expired_n, "metadata_files_deleted": len(meta_doomed)}
