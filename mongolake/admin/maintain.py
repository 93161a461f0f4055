"""``mongolake compact`` and ``mongolake vacuum`` on a stopped server's store.

``compact`` first replays the WAL and flushes it (the engine's compaction works on
the latest data), then rewrites the files below half of ``--compact-target-size``
into files of about that size (one new table version per collection).
``--dry-run`` only reads the table logs and says what it would rewrite.

``vacuum`` deletes data files that no table version younger than the retention
period references (older versions can no longer be time-travelled to).
"""
from __future__ import annotations

import argparse
from typing import Any

from .common import add_store_args, collections, emit, human_bytes, open_store, open_table


def add_compact_args(p: argparse.ArgumentParser) -> None:
    add_store_args(p)
    p.add_argument("--dry-run", action="store_true", help="only report what would be rewritten")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def add_vacuum_args(p: argparse.ArgumentParser) -> None:
    add_store_args(p)
    p.add_argument("--retention-hours", type=float, default=168.0, metavar="H",
                   help="keep files that versions of the last H hours reference (default 168 = 7 days)")
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _dry_compact(st: Any, meta: Any, target: int) -> dict:
    snap = open_table(st, meta).snapshot()
    small = [f for f in snap.files if f.size < target // 2]
    return {"ns": meta.ns, "files_before": len(snap.files), "candidates": len(small),
            "bytes_before": sum(f.size for f in small), "dry_run": True,
            "would_rewrite": len(small) if len(small) >= 2 else 0}


def run_compact(args: argparse.Namespace, cfg: Any) -> int:
    target = cfg.compact_target_size << 20
    results = []
    if args.dry_run:
        with open_store(cfg, "compact") as st:
            results = [_dry_compact(st, m, target) for m in collections(st, args.ns)]
        lines = [f"{r['ns']}: would rewrite {r['would_rewrite']} of {r['files_before']} files "
                 f"({human_bytes(r['bytes_before'])} in files below {human_bytes(target // 2)})" for r in results]
    else:
        with open_store(cfg, "compact", engine=True) as st:
            for meta in collections(st, args.ns):
                m = st.engine.compact(meta.db, meta.name, target_file_size=target)
                results.append({"ns": meta.ns, **m})
        lines = [f"{r['ns']}: {r.get('files_rewritten', 0)} small files rewritten into {r.get('files_written', 0)}; "
                 f"{r['files_before']} -> {r['files_after']} files" for r in results]
    emit(results, args.json, "\n".join(lines) or "(no collections)")
    return 0


def run_vacuum(args: argparse.Namespace, cfg: Any) -> int:
    results = []
    with open_store(cfg, "vacuum") as st:
        for meta in collections(st, args.ns):
            m = open_table(st, meta).vacuum(retention_seconds=args.retention_hours * 3600, dry_run=args.dry_run)
            results.append({"ns": meta.ns, **m})
    verb = "would delete" if args.dry_run else "deleted"
    lines = [f"{r['ns']}: {verb} {r.get('files_deleted', len(r.get('files', [])))} files "
             f"({human_bytes(r.get('bytes_deleted', 0))})" for r in results]
    emit(results, args.json, "\n".join(lines) or "(no collections)")
    return 0
