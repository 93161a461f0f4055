"""Micro-benchmark of the Iceberg table format, side by side with Delta, on the local filesystem.

Same approach as ``bench/bench_delta.py``, run for both formats in one process:

* commit rate of small commits (one tiny Parquet file each; fsync on and off), and
  of metadata-only commits (file already written);
* the cost of ``snapshot()`` when nothing changed (the engine calls it often);
* the time to open a table of N commits (default 1,000) and build its latest
  snapshot, and to build an older one. These tables add synthetic file entries (with
  statistics) instead of writing Parquet files: opening a table only reads metadata.
  Iceberg merges manifests every 100 (``commit.manifest.min-count-to-merge``); Delta
  checkpoints every 10. pyiceberg's ``StaticTable`` open + plan is shown for comparison.

Usage::

    python bench/bench_iceberg.py [--commits 200] [--table-commits 1000] [--formats iceberg,delta]

Not a test; prints one line per figure.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import pyarrow as pa  # noqa: E402

from mongolake.formats.base import DataFile, get_format  # noqa: E402
from mongolake.storage import FileStorage  # noqa: E402

SCHEMA = pa.schema([("_id", pa.string()), ("_key", pa.binary()), ("_doc", pa.binary()), ("n", pa.int64()),
                    ("p", pa.struct([("x", pa.int64()), ("s", pa.string())]))])


def _batch(i: int, rows: int = 3) -> pa.Table:
    return pa.table({"_id": [f"id{i}-{r}" for r in range(rows)], "_key": [f"{i:08d}{r}".encode() for r in range(rows)],
                     "_doc": [b"\x05\x00\x00\x00\x00"] * rows, "n": list(range(rows)),
                     "p": [{"x": r, "s": "abc"} for r in range(rows)]}, schema=SCHEMA)


def _synthetic(fmt: str, i: int) -> DataFile:
    folder = "data/" if fmt == "iceberg" else ""
    return DataFile(path=f"{folder}part-{uuid.uuid4()}.zstd.parquet", size=4096, num_records=100,
                    min_values={"_id": f"id{i:06d}", "_key": f"{i:08d}".encode(), "n": i, "p.x": 0, "p.s": "a"},
                    max_values={"_id": f"id{i:06d}z", "_key": f"{i:08d}z".encode(), "n": i + 99, "p.x": 9,
                                "p.s": "zz"},
                    null_count={"_id": 0, "_key": 0, "n": 0, "p.x": 3, "p.s": 3},
                    modification_time=int(time.time() * 1000))


def bench_commits(fmt: str, base: str, n: int, fsync: bool) -> None:
    storage = FileStorage(os.path.join(base, f"{fmt}-commits-{fsync}"), fsync=fsync)
    table = get_format(fmt).create_table(storage, "t", SCHEMA)
    t0 = time.perf_counter()
    for i in range(n):
        table.commit(adds=[table.write_data_file(_batch(i), stats_columns=["_id", "_key", "n", "p"])],
                     app_id="wal", app_version=i)
    dt = time.perf_counter() - t0
    print(f"[{fmt:7}] small commits (write file + commit), fsync={fsync!s:5}: {n / dt:8.1f} commits/s "
          f"({dt / n * 1000:.2f} ms each)")
    files = [table.write_data_file(_batch(i)) for i in range(n)]
    t0 = time.perf_counter()
    for f in files:
        table.commit(adds=[f])
    dt = time.perf_counter() - t0
    print(f"[{fmt:7}] metadata-only commits (file already written), fsync={fsync!s:5}: {n / dt:8.1f} commits/s")
    t0 = time.perf_counter()
    reps = 2000
    for _ in range(reps):
        table.snapshot()
    dt = time.perf_counter() - t0
    print(f"[{fmt:7}] snapshot() with nothing new: {dt / reps * 1e6:8.1f} µs per call")


def build_table(fmt: str, base: str, commits: int) -> tuple[FileStorage, float]:
    storage = FileStorage(os.path.join(base, f"{fmt}-open"), fsync=False)
    table = get_format(fmt).create_table(storage, "t", SCHEMA)
    t0 = time.perf_counter()
    for i in range(commits):
        table.commit(adds=[_synthetic(fmt, i)], app_id="wal", app_version=i)
    return storage, time.perf_counter() - t0


def bench_open(fmt: str, base: str, commits: int) -> None:
    storage, build = build_table(fmt, base, commits)
    root_dir = storage.root
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        snap = get_format(fmt).open_table(FileStorage(root_dir, fsync=False), "t").snapshot()
        times.append(time.perf_counter() - t0)
    assert snap.version == commits and len(snap.files) == commits
    t0 = time.perf_counter()
    old = get_format(fmt).open_table(FileStorage(root_dir, fsync=False), "t").snapshot(commits // 2)
    old_t = time.perf_counter() - t0
    assert len(old.files) == commits // 2
    other = ""
    if fmt == "iceberg":
        try:
            from pyiceberg.table import StaticTable

            table = get_format(fmt).open_table(storage, "t")
            uri = table.metadata_uri(table.refresh_state().version)
            t0 = time.perf_counter()
            n = len(list(StaticTable.from_metadata(uri).scan().plan_files()))
            other = f", pyiceberg open+plan {(time.perf_counter() - t0) * 1000:7.1f} ms ({n} files)"
        except ImportError:
            pass
    else:
        try:
            from deltalake import DeltaTable as RsTable

            t0 = time.perf_counter()
            RsTable(storage.local_path("t")).file_uris()
            other = f", delta-rs {(time.perf_counter() - t0) * 1000:7.1f} ms"
        except ImportError:
            pass
    print(f"[{fmt:7}] open {commits} commits: {min(times) * 1000:7.1f} ms (best of 3); "
          f"version {commits // 2}: {old_t * 1000:7.1f} ms{other}; built at {commits / build:.0f} commits/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--table-commits", type=int, default=1000)
    ap.add_argument("--formats", default="iceberg,delta")
    args = ap.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    print(f"# bench_iceberg {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-iceberg-") as base:
        for fsync in (True, False):
            for fmt in formats:
                bench_commits(fmt, base, args.commits, fsync=fsync)
        for fmt in formats:
            bench_open(fmt, base, args.table_commits)


if __name__ == "__main__":
    main()
