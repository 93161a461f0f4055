"""``mongolake check STORAGE [DB.COLLECTION] [--deep]``: verify tables against their logs.

For every collection in the catalog: the table exists, its latest version and its
whole history load, and every data file the latest version references exists
with the size the log records. ``--deep`` also reads each file's Parquet footer
and compares its row count with the log's. The WAL's records are checked against
their CRCs. Tables on the store that no catalog entry names are reported as
orphans (a warning: an interrupted drop leaves them; the next create removes them).

Exit status 1 when anything is damaged.
"""
from __future__ import annotations

import argparse
import os
import struct
from typing import Any

from mongolake.storage import NotFoundError, StorageError

from .common import Progress, Store, add_store_args, collections, emit, open_store, open_table

_WAL_HDR = struct.Struct("<II")


def add_args(p: argparse.ArgumentParser) -> None:
    add_store_args(p)
    p.add_argument("--deep", action="store_true", help="also read every Parquet footer and compare row counts")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress line on standard error (default: when it is a terminal)")


def check_collection(st: Store, meta: Any, *, deep: bool = False, progress: Progress | None = None) -> dict:
    from mongolake.formats.base import get_format

    res: dict[str, Any] = {"ns": meta.ns, "path": meta.path, "damage": [], "files_checked": 0}
    dmg = res["damage"]
    try:
        if not get_format(meta.format).table_exists(st.storage, meta.path):
            dmg.append(f"table missing: no {meta.format} table at {meta.path}")
            return res
        table = open_table(st, meta)
        snap = table.snapshot()
    except (StorageError, Exception) as e:   # noqa: BLE001 - any failure to load is damage
        dmg.append(f"table log unreadable: {type(e).__name__}: {e}")
        return res
    res["version"] = snap.version
    try:
        res["versions"] = len(table.history())
    except Exception as e:   # noqa: BLE001
        dmg.append(f"history unreadable: {type(e).__name__}: {e}")
    for f in snap.files:
        full = table.file_path(f)
        try:
            info = st.storage.stat(full)
        except NotFoundError:
            dmg.append(f"missing data file {f.path} (version {snap.version} references it)")
            continue
        except StorageError as e:
            dmg.append(f"cannot read {f.path}: {e}")
            continue
        res["files_checked"] += 1
        if info.size != f.size:
            dmg.append(f"size mismatch {f.path}: the log says {f.size} bytes, the store has {info.size}")
            continue
        if deep:
            try:
                rows = table.open_data_file(f).metadata.num_rows
            except Exception as e:   # noqa: BLE001 - a broken footer is damage
                dmg.append(f"unreadable Parquet footer {f.path}: {type(e).__name__}: {e}")
                continue
            if rows != f.num_records:
                dmg.append(f"row count mismatch {f.path}: the log says {f.num_records}, the file has {rows}")
        if progress is not None:
            progress.update(progress.done + 1)
    return res


def check_wal(wal_dir: str) -> dict:
    """CRC-check every WAL record (read only; a torn last record is dropped at the next start)."""
    import crc32c

    res: dict[str, Any] = {"dir": wal_dir, "records": 0, "damage": [], "warnings": []}
    if not os.path.isdir(wal_dir):
        return res
    segs = sorted(n for n in os.listdir(wal_dir) if n.startswith("wal-") and n.endswith(".log"))
    for k, name in enumerate(segs):
        with open(os.path.join(wal_dir, name), "rb") as fh:
            data = fh.read()
        pos = 0
        while pos < len(data):
            if pos + 8 > len(data):
                bad = f"{name}: torn record header at byte {pos}"
                break
            n, crc = _WAL_HDR.unpack_from(data, pos)
            payload = data[pos + 8:pos + 8 + n]
            if len(payload) < n:
                bad = f"{name}: torn record at byte {pos} ({len(payload)} of {n} bytes)"
                break
            if crc32c.crc32c(payload) != crc:
                bad = f"{name}: CRC mismatch in the record at byte {pos}"
                break
            res["records"] += 1
            pos += 8 + n
        else:
            continue
        # a bad record at the very end of the last segment is a torn write (never acknowledged)
        if k == len(segs) - 1 and "torn" in bad:
            res["warnings"].append(bad + " (an unacknowledged write; dropped at the next start)")
        else:
            res["damage"].append(bad)
    return res


def orphan_tables(st: Store, known: set[str]) -> list[str]:
    roots = set()
    for info in st.storage.list(""):
        p = info.path
        if p.startswith("_mongolake/"):
            continue
        if "/_delta_log/" in p:
            roots.add(p[:p.index("/_delta_log/")])
        elif p.endswith(".metadata.json") and "/metadata/" in p:
            roots.add(p[:p.rindex("/metadata/")])
    return sorted(r for r in roots if r not in known)


def run(args: argparse.Namespace, cfg: Any) -> int:
    with open_store(cfg, "check") as st:
        metas = collections(st, args.ns)
        prog = Progress("check", unit="files", enabled=args.progress)
        results = [check_collection(st, m, deep=args.deep, progress=prog) for m in metas]
        prog.finish()
        wal = check_wal(st.wal_dir)
        orphans = orphan_tables(st, {m.path for m in metas}) if args.ns is None else []
    damaged = [r for r in results if r["damage"]] + ([wal] if wal["damage"] else [])
    lines = []
    for r in results:
        status = "DAMAGED" if r["damage"] else "ok"
        lines.append(f"{r['ns']}: {status} (version {r.get('version', '?')}, {r['files_checked']} files checked)")
        lines += [f"  - {d}" for d in r["damage"]]
    lines.append(f"WAL {wal['dir']}: {'DAMAGED' if wal['damage'] else 'ok'} ({wal['records']} records)")
    lines += [f"  - {d}" for d in wal["damage"]] + [f"  warning: {w}" for w in wal["warnings"]]
    lines += [f"warning: orphan table {o} (not in the catalog)" for o in orphans]
    lines.append(f"{len(damaged)} damaged" if damaged else "no damage found")
    emit({"collections": results, "wal": wal, "orphans": orphans, "damaged": len(damaged)}, args.json,
         "\n".join(lines))
    return 1 if damaged else 0
