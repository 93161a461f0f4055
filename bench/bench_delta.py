"""Micro-benchmark of the Delta table format on the local filesystem.

The measurements are those of ``bench/bench_iceberg.py`` (shared code in
``bench/format_bench.py``, same output lines), plus Delta's own knob:

* commit rate of small commits (one tiny Parquet file each; with and without fsync),
  and the rate of log-only commits (file already written);
* the cost of ``snapshot()`` when nothing changed (the engine calls it often);
* the time to open a table of N commits (default 1,000) and build its latest
  snapshot, with checkpoints every 10 commits and with none — ours, and delta-rs
  for comparison. These tables add synthetic file entries (with statistics) instead
  of writing Parquet files: opening a table only reads the log;
* the copy-on-write cost of changing a few rows of a large data file.

Usage::

    python bench/bench_delta.py [--commits 200] [--table-commits 1000] [--rewrite-rows 100000]

Not a test; prints one line per figure. ``bench/bench_iceberg.py --formats iceberg,delta``
prints both formats side by side.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.format_bench import bench_commits, bench_open, bench_rewrite  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--table-commits", type=int, default=1000)
    ap.add_argument("--rewrite-rows", type=int, default=100_000)
    args = ap.parse_args()
    print(f"# bench_delta {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-delta-") as base:
        bench_commits("delta", base, args.commits, fsync=True)
        bench_commits("delta", base, args.commits, fsync=False)
        bench_open("delta", base, args.table_commits, "checkpoint every 10", {"delta.checkpointInterval": "10"})
        bench_open("delta", base, args.table_commits, "no checkpoint", {"delta.checkpointInterval": str(10 ** 9)})
        bench_rewrite("delta", base, args.rewrite_rows, 10)


if __name__ == "__main__":
    main()
