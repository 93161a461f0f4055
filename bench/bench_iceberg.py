"""Micro-benchmark of the Iceberg table format, side by side with Delta, on the local filesystem.

Same measurements and output lines as ``bench/bench_delta.py`` (shared code in
``bench/format_bench.py``), run for every format given, each figure on both before the
next:

* commit rate of small commits (one tiny Parquet file each; fsync on and off), and
  of metadata-only commits (file already written);
* the cost of ``snapshot()`` when nothing changed (the engine calls it often);
* the time to open a table of N commits (default 1,000) and build its latest
  snapshot, and to build an older one. These tables add synthetic file entries (with
  statistics) instead of writing Parquet files: opening a table only reads metadata.
  Iceberg merges manifests every 100 (``commit.manifest.min-count-to-merge``); Delta
  checkpoints every 10. pyiceberg's ``StaticTable`` open + plan and delta-rs are shown
  for comparison;
* the copy-on-write cost of changing a few rows of a large data file, and the same
  change as Iceberg position deletes (merge-on-read; Delta has no such line).

Usage::

    python bench/bench_iceberg.py [--commits 200] [--table-commits 1000] [--rewrite-rows 100000] [--only rewrite]
                                  [--formats iceberg,delta]

Not a test; prints one line per figure. ``python -m bench --formats delta,iceberg`` runs
the server workloads on both formats.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import datetime, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.format_bench import (bench_commits, bench_engine_flush, bench_open, bench_position_deletes,  # noqa: E402
                                bench_rewrite)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--table-commits", type=int, default=1000)
    ap.add_argument("--rewrite-rows", type=int, default=100_000)
    ap.add_argument("--formats", default="iceberg,delta")
    ap.add_argument("--only", choices=("all", "rewrite"), default="all",
                    help="rewrite: only the copy-on-write vs position-delete figures")
    args = ap.parse_args()
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    print(f"# bench_iceberg {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="bench-iceberg-") as base:
        if args.only == "all":
            for fsync in (True, False):
                for fmt in formats:
                    bench_commits(fmt, base, args.commits, fsync=fsync)
            for fmt in formats:
                bench_open(fmt, base, args.table_commits)
        for fmt in formats:
            bench_rewrite(fmt, base, args.rewrite_rows, 10)
            bench_position_deletes(fmt, base, args.rewrite_rows, 10)
        if "iceberg" in formats:
            bench_engine_flush(base, args.rewrite_rows, 10)


if __name__ == "__main__":
    main()
