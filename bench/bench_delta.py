"""Micro-benchmark of the Delta table format on the local filesystem.

Measures:

* commit rate of small commits (one tiny Parquet file each; with and without fsync),
  and the rate of log-only commits (file already written);
* the cost of ``snapshot()`` when nothing changed (the engine calls it often);
* the time to open a table of N commits (default 1,000) and build its latest
  snapshot, with checkpoints every 10 commits and with none — ours, and delta-rs
  for comparison. These tables add synthetic file entries (with statistics) instead
  of writing Parquet files: opening a table only reads the log.

Usage::

    python bench/bench_delta.py [--commits 200] [--table-commits 1000]

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
from mongolake.formats.delta import DeltaTable  # noqa: E402
from mongolake.storage import FileStorage  # noqa: E402

SCHEMA = pa.schema([("_id", pa.string()), ("_key", pa.binary()), ("_doc", pa.binary()), ("n", pa.int64()),
                    ("p", pa.struct([("x", pa.int64()), ("s", pa.string())]))])


def _batch(i: int, rows: int = 3) -> pa.Table:
    return pa.table({"_id": [f"id{i}-{r}" for r in range(rows)], "_key": [f"{i:08d}{r}".encode() for r in range(rows)],
                     "_doc": [b"\x05\x00\x00\x00\x00"] * rows, "n": list(range(rows)),
                     "p": [{"x": r, "s": "abc"} for r in range(rows)]}, schema=SCHEMA)


def _synthetic(i: int) -> DataFile:
    return DataFile(path=f"part-{uuid.uuid4()}.zstd.parquet", size=4096, num_records=100,
                    min_values={"_id": f"id{i:06d}", "_key": f"{i:08d}".encode(), "n": i, "p.x": 0, "p.s": "a"},
                    max_values={"_id": f"id{i:06d}z", "_key": f"{i:08d}z".encode(), "n": i + 99, "p.x": 9,
                                "p.s": "zz"},
                    null_count={"_id": 0, "_key": 0, "n": 0, "p.x": 3, "p.s": 3},
                    modification_time=int(time.time() * 1000))


def bench_commits(base: str, n: int, fsync: bool) -> None:
    storage = FileStorage(os.path.join(base, f"commits-{fsync}"), fsync=fsync)
    table = get_format("delta").create_table(storage, "t", SCHEMA)
    t0 = time.perf_counter()
    for i in range(n):
        table.commit(adds=[table.write_data_file(_batch(i), stats_columns=["_id", "_key", "n", "p"])],
                     app_id="wal", app_version=i)
    dt = time.perf_counter() - t0
    print(f"small commits (write file + commit), fsync={fsync}: {n / dt:8.1f} commits/s "
          f"({dt / n * 1000:.2f} ms each, checkpoint every 10 included)")
    files = [table.write_data_file(_batch(i)) for i in range(n)]
    t0 = time.perf_counter()
    for f in files:
        table.commit(adds=[f])
    dt = time.perf_counter() - t0
    print(f"log-only commits (file already written), fsync={fsync}: {n / dt:8.1f} commits/s")
    t0 = time.perf_counter()
    reps = 2000
    for _ in range(reps):
        table.snapshot()
    dt = time.perf_counter() - t0
    print(f"snapshot() with nothing new: {dt / reps * 1e6:8.1f} µs per call")


def build_table(base: str, name: str, commits: int, interval: int) -> str:
    storage = FileStorage(os.path.join(base, name), fsync=False)
    table = get_format("delta").create_table(storage, "t", SCHEMA,
                                             properties={"delta.checkpointInterval": str(interval)})
    for i in range(commits):
        table.commit(adds=[_synthetic(i)], app_id="wal", app_version=i)
    return storage.local_path("t")


def bench_open(base: str, commits: int) -> None:
    for label, interval in (("checkpoint every 10", 10), ("no checkpoint", 10 ** 9)):
        t0 = time.perf_counter()
        path = build_table(base, label.replace(" ", "-"), commits, interval)
        build = time.perf_counter() - t0
        root_dir, name = os.path.split(path)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            snap = DeltaTable(FileStorage(root_dir, fsync=False), name).snapshot()
            times.append(time.perf_counter() - t0)
        assert snap.version == commits and len(snap.files) == commits
        t0 = time.perf_counter()
        DeltaTable(FileStorage(root_dir, fsync=False), name).snapshot(commits // 2)
        old = time.perf_counter() - t0
        rs = ""
        try:
            from deltalake import DeltaTable as RsTable

            t0 = time.perf_counter()
            dt = RsTable(path)
            dt.file_uris()
            rs = f", delta-rs {(time.perf_counter() - t0) * 1000:7.1f} ms"
        except ImportError:
            pass
        print(f"open {commits} commits ({label}): {min(times) * 1000:7.1f} ms (best of 3); "
              f"version {commits // 2}: {old * 1000:7.1f} ms{rs}; built at {commits / build:.0f} commits/s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--table-commits", type=int, default=1000)
    args = ap.parse_args()
    print(f"# bench_delta {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-delta-") as base:
        bench_commits(base, args.commits, fsync=True)
        bench_commits(base, args.commits, fsync=False)
        bench_open(base, args.table_commits)


if __name__ == "__main__":
    main()
