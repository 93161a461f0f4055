"""``mongolake inspect STORAGE [DB.COLLECTION]``: what a store holds.

Without a namespace: every collection with its format, table version, files,
documents and bytes, plus the WAL folder. With one: catalog entry, versions
(history), files, schema and column statistics. ``--json`` for machines.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
from typing import Any

from .common import Store, add_store_args, collections, emit, human_bytes, open_store, open_table


def add_args(p: argparse.ArgumentParser) -> None:
    add_store_args(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--versions", type=int, default=20, metavar="N", help="newest N versions to list (default 20)")


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ms else "-"


def _short(v: Any, n: int = 40) -> str:
    s = v.hex() if isinstance(v, bytes) else str(v)
    return s if len(s) <= n else s[:n - 1] + "…"


def wal_summary(wal_dir: str) -> dict:
    segs, total = 0, 0
    if os.path.isdir(wal_dir):
        for name in os.listdir(wal_dir):
            if name.startswith("wal-") and name.endswith(".log"):
                segs += 1
                total += os.path.getsize(os.path.join(wal_dir, name))
    return {"dir": wal_dir, "segments": segs, "bytes": total}


def _summary(meta: Any, st: Store, small_bytes: int) -> dict:
    table = open_table(st, meta)
    snap = table.snapshot()
    return {"ns": meta.ns, "format": meta.format, "path": meta.path, "version": snap.version,
            "committed": _when(snap.timestamp_ms), "files": len(snap.files), "documents": snap.num_records,
            "bytes": snap.size_bytes, "small_files": sum(1 for f in snap.files if f.size < small_bytes),
            "wal_position": snap.app_versions.get("mongolake", 0)}


def column_stats(files: Any) -> list[dict]:
    """Per column: null count, and min/max where every file has exact statistics."""
    cols: dict[str, dict] = {}
    for f in files:
        for name in set(f.null_count) | set(f.min_values):
            c = cols.setdefault(name, {"column": name, "files_with_stats": 0, "nulls": 0, "min": None, "max": None})
            if name in f.null_count:
                c["files_with_stats"] += 1
                c["nulls"] += f.null_count[name]
            lo, hi = f.min_values.get(name), f.max_values.get(name)
            try:
                if lo is not None and (c["min"] is None or lo < c["min"]):
                    c["min"] = lo
                if hi is not None and (c["max"] is None or hi > c["max"]):
                    c["max"] = hi
            except TypeError:       # values of different types: no overall range
                c["min"] = c["max"] = "(mixed)"
    n = len(files)
    for c in cols.values():
        c["exact"] = c["files_with_stats"] == n
    return [cols[k] for k in sorted(cols)]


def _detail(meta: Any, st: Store, versions: int) -> dict:
    table = open_table(st, meta)
    snap = table.snapshot()
    hist = table.history(limit=versions)
    return {
        "ns": meta.ns, "uuid": meta.uuid, "format": meta.format, "path": meta.path,
        "created": _when(meta.created_ms), "options": meta.options,
        "indexes": [ix.get("name") for ix in meta.indexes],
        "version": snap.version, "committed": _when(snap.timestamp_ms), "documents": snap.num_records,
        "bytes": snap.size_bytes, "wal_position": snap.app_versions.get("mongolake", 0),
        "properties": snap.properties,
        "versions": [{"version": h.version, "time": _when(h.timestamp_ms), "operation": h.operation,
                      "info": h.info} for h in hist],
        "files": [{"path": f.path, "bytes": f.size, "documents": f.num_records} for f in snap.files],
        "schema": [f"{field.name}: {field.type}" for field in snap.schema],
        "stats": column_stats(snap.files),
    }


def _text_summary(rows: list[dict], wal: dict, url: str) -> str:
    out = [f"store {url}", f"WAL {wal['dir']}: {wal['segments']} segment(s), {human_bytes(wal['bytes'])}", ""]
    if not rows:
        return "\n".join(out + ["(no collections)"])
    w = max(len(r["ns"]) for r in rows)
    out.append(f"{'collection':<{w}}  format   version  files  small   documents        size  last commit")
    for r in rows:
        out.append(f"{r['ns']:<{w}}  {r['format']:<7}  {r['version']:>7}  {r['files']:>5}  {r['small_files']:>5}  "
                   f"{r['documents']:>10,}  {human_bytes(r['bytes']):>10}  {r['committed']}")
    return "\n".join(out)


def _text_detail(d: dict) -> str:
    out = [f"{d['ns']}  ({d['format']} table at {d['path']}, uuid {d['uuid']})",
           f"  created {d['created']}; indexes: {', '.join(d['indexes']) or '-'}; options: {d['options'] or '-'}",
           f"  version {d['version']} committed {d['committed']}: {d['documents']:,} documents, "
           f"{len(d['files'])} files, {human_bytes(d['bytes'])}; WAL position {d['wal_position']}", "",
           "versions (newest first):"]
    for v in d["versions"]:
        info = ", ".join(f"{k}={_short(x, 30)}" for k, x in sorted(v["info"].items()))
        out.append(f"  {v['version']:>6}  {v['time']}  {v['operation']:<10} {info}")
    out += ["", "files:"]
    for f in d["files"]:
        out.append(f"  {f['path']}  {human_bytes(f['bytes'])}  {f['documents']:,} documents")
    out += ["", "schema:"] + [f"  {s}" for s in d["schema"]]
    out += ["", "column statistics (min/max over files; 'exact' = every file has statistics):"]
    for c in d["stats"]:
        rng = f"[{_short(c['min'])} .. {_short(c['max'])}]" if c["min"] is not None else ""
        out.append(f"  {c['column']:<24} nulls {c['nulls']:>8,}  {'exact' if c['exact'] else 'partial':<7} {rng}")
    return "\n".join(out)


def run(args: argparse.Namespace, cfg: Any) -> int:
    with open_store(cfg, "inspect") as st:
        metas = collections(st, args.ns)
        if args.ns:
            d = _detail(metas[0], st, args.versions)
            emit(d, args.json, _text_detail(d))
        else:
            small = (cfg.compact_target_size << 20) // 2
            rows = [_summary(m, st, small) for m in metas]
            wal = wal_summary(st.wal_dir)
            emit({"storage": st.storage.url, "wal": wal, "collections": rows}, args.json,
                 _text_summary(rows, wal, st.storage.url))
    return 0
