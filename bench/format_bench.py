"""Table-format micro-benchmarks shared by ``bench/bench_delta.py`` and ``bench/bench_iceberg.py``.

The same code measures every format through the ``Table`` interface only, and prints one
line per figure prefixed with the format (``[delta  ]``, ``[iceberg]``), so the two
scripts' outputs line up:

* ``bench_commits``: small commits (write one tiny Parquet file + commit), metadata-only
  commits (file already written), and ``snapshot()`` when nothing changed;
* ``bench_open``: open a table of N commits and build its latest snapshot and an older
  one (synthetic file entries with statistics: opening only reads metadata), with the
  format's own reader for comparison (delta-rs, pyiceberg);
* ``bench_rewrite``: the copy-on-write cost the engine's flush pays when a few documents
  of a large data file change: read it, write it again without them, commit
  remove + add;
* ``bench_position_deletes``: the same change as merge-on-read, for formats with
  position deletes (Iceberg): read the file's ``_key`` column, find the changed rows'
  positions, commit a position delete file; and what a full read of the file costs
  with the deleted rows masked.
"""
from __future__ import annotations

import os
import time
import uuid

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mongolake.formats.base import DataFile, get_format
from mongolake.storage import FileStorage

SCHEMA = pa.schema([("_id", pa.string()), ("_key", pa.binary()), ("_doc", pa.binary()), ("n", pa.int64()),
                    ("p", pa.struct([("x", pa.int64()), ("s", pa.string())]))])
STATS = ["_id", "_key", "n", "p"]


def say(fmt: str, text: str) -> None:
    print(f"[{fmt:7}] {text}", flush=True)


def batch(i: int, rows: int = 3, doc_bytes: int = 5) -> pa.Table:
    docs = ([b"\x05\x00\x00\x00\x00"] * rows if doc_bytes <= 5 else    # incompressible, like real BSON mixes
            [os.urandom(doc_bytes) for _ in range(rows)])
    return pa.table({"_id": [f"id{i}-{r:07d}" for r in range(rows)],
                     "_key": [f"{i:08d}{r:07d}".encode() for r in range(rows)],
                     "_doc": docs, "n": list(range(rows)),
                     "p": [{"x": r, "s": "abc"} for r in range(rows)]}, schema=SCHEMA)


def synthetic(fmt: str, i: int) -> DataFile:
    folder = "data/" if fmt == "iceberg" else ""
    return DataFile(path=f"{folder}part-{uuid.uuid4()}.zstd.parquet", size=4096, num_records=100,
                    min_values={"_id": f"id{i:06d}", "_key": f"{i:08d}".encode(), "n": i, "p.x": 0, "p.s": "a"},
                    max_values={"_id": f"id{i:06d}z", "_key": f"{i:08d}z".encode(), "n": i + 99, "p.x": 9,
                                "p.s": "zz"},
                    null_count={"_id": 0, "_key": 0, "n": 0, "p.x": 3, "p.s": 3},
                    modification_time=int(time.time() * 1000))


def bench_commits(fmt: str, base: str, n: int, fsync: bool) -> dict:
    storage = FileStorage(os.path.join(base, f"{fmt}-commits-{fsync}"), fsync=fsync)
    table = get_format(fmt).create_table(storage, "t", SCHEMA)
    t0 = time.perf_counter()
    for i in range(n):
        table.commit(adds=[table.write_data_file(batch(i), stats_columns=STATS)], app_id="wal", app_version=i)
    small = n / (time.perf_counter() - t0)
    say(fmt, f"small commits (write file + commit), fsync={fsync!s:5}: {small:8.1f} commits/s "
             f"({1000 / small:.2f} ms each)")
    files = [table.write_data_file(batch(i)) for i in range(n)]
    t0 = time.perf_counter()
    for f in files:
        table.commit(adds=[f])
    meta_only = n / (time.perf_counter() - t0)
    say(fmt, f"metadata-only commits (file already written), fsync={fsync!s:5}: {meta_only:8.1f} commits/s")
    reps = 2000
    t0 = time.perf_counter()
    for _ in range(reps):
        table.snapshot()
    snap_us = (time.perf_counter() - t0) / reps * 1e6
    say(fmt, f"snapshot() with nothing new: {snap_us:8.1f} µs per call")
    return {"small_commits_per_s": small, "metadata_commits_per_s": meta_only, "snapshot_us": snap_us}


def _other_reader(fmt: str, storage: FileStorage) -> str:
    if fmt == "iceberg":
        try:
            from pyiceberg.table import StaticTable
        except ImportError:
            return ""
        table = get_format(fmt).open_table(storage, "t")
        uri = table.metadata_uri(table.refresh_state().version)
        t0 = time.perf_counter()
        n = len(list(StaticTable.from_metadata(uri).scan().plan_files()))
        return f", pyiceberg open+plan {(time.perf_counter() - t0) * 1000:7.1f} ms ({n} files)"
    try:
        from deltalake import DeltaTable as RsTable
    except ImportError:
        return ""
    t0 = time.perf_counter()
    RsTable(storage.local_path("t")).file_uris()
    return f", delta-rs {(time.perf_counter() - t0) * 1000:7.1f} ms"


def bench_open(fmt: str, base: str, commits: int, label: str = "defaults",
               properties: dict[str, str] | None = None) -> dict:
    storage = FileStorage(os.path.join(base, f"{fmt}-open-{label.replace(' ', '-')}"), fsync=False)
    table = get_format(fmt).create_table(storage, "t", SCHEMA, properties=properties)
    t0 = time.perf_counter()
    for i in range(commits):
        table.commit(adds=[synthetic(fmt, i)], app_id="wal", app_version=i)
    build = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        snap = get_format(fmt).open_table(FileStorage(storage.root, fsync=False), "t").snapshot()
        times.append(time.perf_counter() - t0)
    assert snap.version == commits and len(snap.files) == commits
    t0 = time.perf_counter()
    old = get_format(fmt).open_table(FileStorage(storage.root, fsync=False), "t").snapshot(commits // 2)
    old_t = time.perf_counter() - t0
    assert len(old.files) == commits // 2
    say(fmt, f"open {commits} commits ({label}): {min(times) * 1000:7.1f} ms (best of 3); version {commits // 2}: "
             f"{old_t * 1000:7.1f} ms{_other_reader(fmt, storage)}; built at {commits / build:.0f} commits/s")
    return {"open_ms": min(times) * 1000, "open_old_ms": old_t * 1000, "build_commits_per_s": commits / build}


def bench_rewrite(fmt: str, base: str, rows: int, changed: int, reps: int = 5) -> dict:
    """Copy-on-write of ``changed`` rows of one ``rows``-row data file (200-byte ``_doc``)."""
    storage = FileStorage(os.path.join(base, f"{fmt}-rewrite"), fsync=True)
    table = get_format(fmt).create_table(storage, "t", SCHEMA)
    live = table.write_data_file(batch(0, rows, doc_bytes=200), stats_columns=STATS, row_group_size=4096)
    table.commit(adds=[live])
    times = []
    for r in range(reps):
        t0 = time.perf_counter()
        data = pq.read_table(storage.local_path(f"t/{live.path}"))
        drop = pa.array([f"{0:08d}{(r * 7919 + k * 104729) % rows:07d}".encode() for k in range(changed)])
        kept = data.filter(pc.invert(pc.is_in(data["_key"], value_set=drop)))
        new = table.write_data_file(kept.select(SCHEMA.names).cast(SCHEMA), stats_columns=STATS,
                                    row_group_size=4096)
        table.commit(removes=[live], adds=[new], operation="WRITE")
        times.append(time.perf_counter() - t0)
        live = new
    ms = sorted(times)[len(times) // 2] * 1000
    say(fmt, f"copy-on-write of {changed} of {rows:,} rows (read + rewrite + commit): {ms:8.1f} ms (median of "
             f"{reps}); file {live.size / 1e6:.1f} MB")
    return {"rewrite_ms": ms, "file_mb": live.size / 1e6}


def bench_position_deletes(fmt: str, base: str, rows: int, changed: int, reps: int = 5) -> dict | None:
    """Merge-on-read of ``changed`` rows of one ``rows``-row data file (what the engine's
    flush does when few rows of a large file change and the format supports it)."""
    import numpy as np

    storage = FileStorage(os.path.join(base, f"{fmt}-posdel"), fsync=True)
    table = get_format(fmt).create_table(storage, "t", SCHEMA)
    if not table.supports_position_deletes:
        return None
    live = table.write_data_file(batch(0, rows, doc_bytes=200), stats_columns=STATS, row_group_size=4096)
    table.commit(adds=[live])
    times = []
    for r in range(reps):
        t0 = time.perf_counter()
        keys = pq.read_table(storage.local_path(f"t/{live.path}"), columns=["_key"]).column(0)
        drop = pa.array([f"{0:08d}{(r * 7919 + k * 104729) % rows:07d}".encode() for k in range(changed)])
        pos = np.flatnonzero(pc.is_in(keys, value_set=drop).to_numpy(zero_copy_only=False))
        table.commit(position_deletes={live.path: [int(p) for p in pos]}, operation="WRITE")
        times.append(time.perf_counter() - t0)
    ms = sorted(times)[len(times) // 2] * 1000
    snap = table.snapshot()
    (f,) = snap.files
    t0 = time.perf_counter()
    data = pq.read_table(storage.local_path(f"t/{f.path}"))
    keep = np.ones(data.num_rows, dtype=bool)
    keep[np.asarray(f.deletes, dtype=np.int64)] = False
    data = data.filter(pa.array(keep))
    read_ms = (time.perf_counter() - t0) * 1000
    say(fmt, f"position deletes of {changed} of {rows:,} rows (read keys + delete file + commit): {ms:8.1f} ms "
             f"(median of {reps}); masked full read {read_ms:.1f} ms, {len(f.deletes)} rows deleted, "
             f"{data.num_rows:,} live")
    return {"posdel_ms": ms, "masked_read_ms": read_ms}


def bench_engine_flush(base: str, rows: int, changed: int, reps: int = 5) -> None:
    """The engine's flush after ``changed`` single-document updates in a ``rows``-document
    Iceberg collection (one data file), copy-on-write vs position deletes."""
    from mongolake.engine import Engine, flush

    saved = flush.POSITION_DELETE_MIN_ROWS
    try:
        for label, min_rows in (("copy-on-write", 1 << 62), ("position deletes", saved)):
            flush.POSITION_DELETE_MIN_ROWS = min_rows
            e = Engine(os.path.join(base, f"engine-{min_rows}"), table_format="iceberg", flush_interval=3600).open()
            try:
                e.insert("db", "c", [{"_id": i, "n": i, "pad": "x" * 150} for i in range(rows)])
                e.flush()
                times = []
                for r in range(reps):
                    ids = [(r * 7919 + k * 104729) % rows for k in range(changed)]
                    e.update("db", "c", {"_id": {"$in": ids}}, {"$inc": {"n": 1}}, multi=True)
                    t0 = time.perf_counter()
                    e.flush()
                    times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                n = sum(1 for _ in e.find("db", "c", {}))
                scan_ms = (time.perf_counter() - t0) * 1000
            finally:
                e.close()
            say("iceberg", f"engine flush of {changed} updated of {rows:,} documents, {label:16}: "
                           f"{sorted(times)[len(times) // 2] * 1000:7.1f} ms (median of {reps}); full scan after "
                           f"{scan_ms:.0f} ms ({n:,} documents)")
    finally:
        flush.POSITION_DELETE_MIN_ROWS = saved
