"""Secondary-index benchmark (embedded engine): an equality lookup on an indexed
non-``_id`` field vs the same query without the index (zone maps + Arrow pushdown
+ residual matcher over the flushed Parquet files), plus the index build time.

    python bench/bench_indexes.py [--docs 1000000] [--queries 200]

Prints one line per figure. Not a test: figures depend on the machine.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mongolake.engine.engine import Engine  # noqa: E402


def doc(i: int, n: int) -> dict:
    return {"_id": i, "email": f"user{(i * 7919) % n}@example.com", "age": i % 90,
            "city": ("Paris", "Oslo", "Lima", "Pune")[i % 4], "score": (i * 31) % 1000 / 10.0, "pad": "x" * 60}


def timed_queries(e: Engine, values: list, field: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    found = 0
    for v in values:
        found += sum(1 for _ in e.find("db", "c", {field: v}))
    return (time.perf_counter() - t0) / len(values), found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--scan-queries", type=int, default=5)
    args = ap.parse_args()
    n = args.docs
    root = tempfile.mkdtemp(prefix="ml-bench-ix-")
    try:
        e = Engine(os.path.join(root, "store"), sync="always", flush_interval=3600,
                   memtable_bytes=1 << 40).open()
        t0 = time.perf_counter()
        for i in range(0, n, 10_000):
            e.insert("db", "c", [doc(j, n) for j in range(i, min(n, i + 10_000))], wait=False)
        e.flush()
        print(f"load: {n} docs inserted and flushed in {time.perf_counter() - t0:.1f}s")
        rnd = random.Random(1)
        values = [f"user{rnd.randrange(n)}@example.com" for _ in range(args.queries)]
        scan_t, scan_found = timed_queries(e, values[:args.scan_queries], "email")
        print(f"equality on email without index: {scan_t * 1000:.1f} ms/query ({scan_found} docs found)")
        c = e.get_collection("db", "c")
        t0 = time.perf_counter()
        e.set_indexes(c, c.meta.indexes + [{"v": 2, "key": {"email": 1}, "name": "email_1"}])
        e.indexes.for_collection(c)
        print(f"index build (email_1, {n} docs): {time.perf_counter() - t0:.1f}s")
        timed_queries(e, values[:5], "email")                          # warm the file caches
        ix_t, ix_found = timed_queries(e, values, "email")
        check_t, check_found = timed_queries(e, values[:args.scan_queries], "email")
        assert check_found == scan_found, "index and scan disagree"
        print(f"equality on email with index: {ix_t * 1000:.3f} ms/query ({ix_found} docs found)")
        print(f"speed-up: {scan_t / ix_t:.0f}x (target >= 20x)")
        e.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
