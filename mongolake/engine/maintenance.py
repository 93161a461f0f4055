"""Compaction, vacuum and the purge of soft-deleted documents."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import bson
import pyarrow as pa
import pyarrow.compute as pc

from mongolake.errors import ErrorCode, MongoError
from mongolake.query import zonemap
from mongolake.query.bsonorder import CODEC_OPTIONS

from . import softdelete as soft
from .flush import FIXED_STATS

if TYPE_CHECKING:
    from .collection import Collection
    from .engine import Engine


def _need(engine: "Engine", db: str, name: str) -> "Collection":
    c = engine.get_collection(db, name)
    if c is None:
        raise MongoError(ErrorCode.NamespaceNotFound, f"ns not found: {db}.{name}")
    return c


def _install(engine: "Engine", c: "Collection", removed: list) -> soft.LiveSnapshot:
    new_snap = c.table.snapshot()
    with engine.lock:
        c.snapshot = new_snap
    engine.reader.forget_files(c.table, {f.path for f in removed})
    return new_snap


def _ms(v) -> int | None:
    return int(v.timestamp() * 1000) if v is not None else None


def _purge_locked(engine: "Engine", c: "Collection", cutoff_ms: int, filter: dict | None, dry_run: bool,
                  commit: bool = True) -> tuple[dict, list, list]:
    """Tombstone rows deleted before ``cutoff_ms`` (and matching ``filter``) leave their
    files. Call with ``engine.flush_lock`` held. Returns (metrics, adds, removes)."""
    from mongolake.query.filter import parse_filter
    from mongolake.query.matcher import compile_matcher

    expr = parse_filter(filter) if filter else None
    matcher = compile_matcher(expr) if expr is not None else None
    snap = soft.live_view(c.snapshot)
    adds, removes = [], []
    purged = kept = 0
    for f in snap.tomb_files:
        lo = _ms(f.min_values.get(soft.DELETED_AT))
        if lo is not None and lo >= cutoff_ms:
            continue
        if expr is not None and not zonemap.might_match(expr, f, c.specs):
            continue
        t = engine.reader.parquet(c.table, f).read()
        mask = pc.less(soft.deleted_ms(t.column(soft.DELETED_AT)), pa.scalar(cutoff_ms, pa.int64()))
        mask = pc.fill_null(mask, False)
        if matcher is not None:
            hits = [matcher(bson.decode(r, CODEC_OPTIONS)) for r in t.column("_doc").to_pylist()]
            mask = pc.and_(mask, pa.array(hits, pa.bool_()))
        n = pc.sum(mask).as_py() or 0
        if not n:
            continue
        purged += n
        removes.append(f)
        rest = t.filter(pc.invert(mask))
        kept += rest.num_rows
        if rest.num_rows and not dry_run:
            adds.append(c.table.write_data_file(rest, stats_columns=sorted(set(f.null_count) | set(FIXED_STATS)),
                                                compression=engine.compression,
                                                row_group_size=engine.row_group_rows, tags={soft.TOMB_TAG: "1"}))
    metrics = {"purged": purged, "tombstone_files_rewritten": len(removes), "tombstones_kept": kept,
               "dry_run": dry_run}
    if commit and removes and not dry_run:
        c.table.commit(adds=adds, removes=removes, operation="DELETE", read_version=snap.version,
                       info={"purgedSoftDeletes": purged})
        metrics["version"] = _install(engine, c, removes).version
    return metrics, adds, removes


def purge_deleted(engine: "Engine", db: str, name: str, *, older_than_seconds: float | None = None,
                  filter: dict | None = None, dry_run: bool = False) -> dict:
    engine.flush()
    c = _need(engine, db, name)
    age = soft.retention_seconds(c.meta.options) if older_than_seconds is None else float(older_than_seconds)
    cutoff = int((time.time() - age) * 1000) + (1 if age <= 0 else 0)
    with engine.flush_lock:
        return _purge_locked(engine, c, cutoff, filter, dry_run)[0]


def _merge(engine: "Engine", c: "Collection", files: list, target_file_size: int, tags: dict | None) -> list:
    tables = [engine.reader.parquet(c.table, f).read() for f in files]
    merged = pa.concat_tables(tables, promote_options="permissive").sort_by("_key")
    exact = set.intersection(*(set(f.null_count) for f in files)) | set(FIXED_STATS)
    avg_row = max(1, sum(f.size for f in files) // max(1, merged.num_rows))
    rows_per_file = max(1, target_file_size // avg_row)
    adds = []
    for i in range(0, merged.num_rows, rows_per_file):
        adds.append(c.table.write_data_file(merged.slice(i, rows_per_file), stats_columns=sorted(exact),
                                            compression=engine.compression,
                                            row_group_size=engine.row_group_rows, tags=tags))
    return adds


def compact(engine: "Engine", db: str, name: str, *, target_file_size: int = 128 << 20, max_files: int = 1000,
            dry_run: bool = False) -> dict:
    """Rewrite files smaller than half the target into files of about the target size,
    and files with position deletes without their deleted rows (their delete files go
    with them); soft-deleted documents past the collection's retention are purged on
    the way, and tombstone files are compacted among themselves. Returns metrics; with ``dry_run``
    only says what it would do."""
    engine.flush()
    c = _need(engine, db, name)
    with engine.flush_lock:
        cutoff = int((time.time() - soft.retention_seconds(c.meta.options)) * 1000)
        pm = _purge_locked(engine, c, cutoff, None, dry_run)[0]
        snap = soft.live_view(c.snapshot)
        small = [f for f in snap.files if f.size < target_file_size // 2 or f.deletes][:max_files]
        with_deletes = any(f.deletes for f in small)
        small_tombs = [f for f in snap.tomb_files if f.size < target_file_size // 2][:max_files]
        metrics = {"files_before": len(snap.files), "candidates": len(small),
                   "bytes_before": sum(f.size for f in small), "dry_run": dry_run, "purged": pm["purged"],
                   "tombstone_files": len(snap.tomb_files)}
        rewrite_live = len(small) >= 2 or with_deletes
        if (not rewrite_live and len(small_tombs) < 2) or dry_run:
            metrics.update({"files_after": len(snap.files), "bytes_after": metrics["bytes_before"],
                            "files_rewritten": 0 if not dry_run else len(small) if rewrite_live else 0})
            return metrics
        adds, removes = [], []
        if rewrite_live:
            adds += _merge(engine, c, small, target_file_size, None)
            removes += small
        live_adds = len(adds)
        if len(small_tombs) >= 2:
            adds += _merge(engine, c, small_tombs, target_file_size, {soft.TOMB_TAG: "1"})
            removes += small_tombs
        c.table.commit(adds=adds, removes=removes, operation="OPTIMIZE", read_version=snap.version,
                       info={"filesRemoved": len(removes), "filesAdded": len(adds)})
        new_snap = _install(engine, c, removes)
        rewritten = small if rewrite_live else []
        metrics.update({"files_after": len(new_snap.files), "bytes_after": sum(f.size for f in adds[:live_adds]),
                        "files_rewritten": len(rewritten), "files_written": live_adds, "version": new_snap.version,
                        "tombstone_files_after": len(new_snap.tomb_files)})
        return metrics


def vacuum(engine: "Engine", db: str, name: str, *, retention_seconds: float = 7 * 86400,
           dry_run: bool = False) -> dict:
    """Purge soft-deleted documents past the collection's retention, then delete the
    table's files no snapshot within ``retention_seconds`` references."""
    c = _need(engine, db, name)
    purged = 0
    if soft.live_view(c.snapshot).tomb_files or any(e.tomb is not None for m in c.memtables()
                                                    for e in list(m.entries.values())):
        purged = purge_deleted(engine, db, name, dry_run=dry_run)["purged"]
    out = c.table.vacuum(retention_seconds=retention_seconds, dry_run=dry_run)
    return {**out, "purged": purged} if purged else out
