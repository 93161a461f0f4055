"""Compaction and vacuum of collection tables."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from mongolake.errors import ErrorCode, MongoError

from .flush import FIXED_STATS

if TYPE_CHECKING:
    from .engine import Engine


def compact(engine: "Engine", db: str, name: str, *, target_file_size: int = 128 << 20, max_files: int = 1000,
            dry_run: bool = False) -> dict:
    """Rewrite files smaller than half the target into files of about the target size.
    Returns metrics; with ``dry_run`` only says what it would do."""
    engine.flush()
    c = engine.get_collection(db, name)
    if c is None:
        raise MongoError(ErrorCode.NamespaceNotFound, f"ns not found: {db}.{name}")
    with engine.flush_lock:
        snap = c.snapshot
        small = [f for f in snap.files if f.size < target_file_size // 2][:max_files]
        metrics = {"files_before": len(snap.files), "candidates": len(small),
                   "bytes_before": sum(f.size for f in small), "dry_run": dry_run}
        if len(small) < 2 or dry_run:
            metrics.update({"files_after": len(snap.files), "bytes_after": metrics["bytes_before"],
                            "files_rewritten": 0 if not dry_run else len(small) if len(small) >= 2 else 0})
            return metrics
        tables = [engine.reader.parquet(c.table, f).read() for f in small]
        merged = pa.concat_tables(tables, promote_options="permissive").sort_by("_key")
        exact = set.intersection(*(set(f.null_count) for f in small)) | set(FIXED_STATS)
        avg_row = max(1, metrics["bytes_before"] // max(1, merged.num_rows))
        rows_per_file = max(1, target_file_size // avg_row)
        adds = []
        for i in range(0, merged.num_rows, rows_per_file):
            adds.append(c.table.write_data_file(merged.slice(i, rows_per_file), stats_columns=sorted(exact),
                                                compression=engine.compression,
                                                row_group_size=engine.row_group_rows))
        c.table.commit(adds=adds, removes=small, operation="OPTIMIZE", read_version=snap.version,
                       info={"filesRemoved": len(small), "filesAdded": len(adds)})
        new_snap = c.table.snapshot()
        with engine.lock:
            c.snapshot = new_snap
        engine.reader.forget_files(c.table, {f.path for f in small})
        metrics.update({"files_after": len(new_snap.files), "bytes_after": sum(f.size for f in adds),
                        "files_rewritten": len(small), "files_written": len(adds), "version": new_snap.version})
        return metrics


def vacuum(engine: "Engine", db: str, name: str, *, retention_seconds: float = 7 * 86400,
           dry_run: bool = False) -> dict:
    c = engine.get_collection(db, name)
    if c is None:
        raise MongoError(ErrorCode.NamespaceNotFound, f"ns not found: {db}.{name}")
    return c.table.vacuum(retention_seconds=retention_seconds, dry_run=dry_run)
