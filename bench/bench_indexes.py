"""Secondary-index benchmark (embedded engine): an equality lookup on an indexed
non-``_id`` field vs the same query without the index (zone maps + Arrow pushdown
+ residual matcher over the flushed Parquet files); a sort with a small limit
served by an index walk vs a scan and an in-memory top-k; the index build
(``createIndexes`` path: from a snapshot, outside the lock) with the latency of
writes committed while it runs.

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
import threading
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


def timed_top(e: Engine, reps: int) -> tuple[float, list]:
    t0 = time.perf_counter()
    out: list = []
    for _ in range(reps):
        out = [(d["score"], d["_id"]) for d in e.find("db", "c", {},
                                                     sort={"score": -1, "_id": -1}, limit=10, as_raw=False)]
    return (time.perf_counter() - t0) / reps, out


def build_with_writers(e: Engine, c, spec: dict, n: int) -> tuple[float, list[float]]:
    """Build ``spec`` through the createIndexes path while a thread updates documents."""
    stop = threading.Event()
    lat: list[float] = []

    def writer() -> None:
        r = random.Random(3)
        while not stop.is_set():
            t0 = time.perf_counter()
            e.update("db", "c", {"_id": r.randrange(n)}, {"$set": {"age": r.randrange(90)}}, wait=False)
            lat.append(time.perf_counter() - t0)
            time.sleep(0.002)

    w = threading.Thread(target=writer)
    w.start()
    t0 = time.perf_counter()
    try:
        e.indexes.create(c, [spec])
    finally:
        dt = time.perf_counter() - t0
        stop.set()
        w.join()
    return dt, sorted(lat)


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
        print(f"load average at start: {os.getloadavg()[0]:.1f}")
        t0 = time.perf_counter()
        for i in range(0, n, 10_000):
            e.insert("db", "c", [doc(j, n) for j in range(i, min(n, i + 10_000))], wait=False)
        e.flush()
        print(f"load: {n} docs inserted and flushed in {time.perf_counter() - t0:.1f}s")
        rnd = random.Random(1)
        values = [f"user{rnd.randrange(n)}@example.com" for _ in range(args.queries)]
        scan_t, scan_found = timed_queries(e, values[:args.scan_queries], "email")
        print(f"equality on email without index: {scan_t * 1000:.1f} ms/query ({scan_found} docs found)")
        top_scan_t, top_scan = timed_top(e, 2)
        print(f"sort score desc, limit 10, without index: {top_scan_t * 1000:.1f} ms/query")
        c = e.get_collection("db", "c")
        dt, lat = build_with_writers(e, c, {"v": 2, "key": {"email": 1}, "name": "email_1"}, n)
        print(f"index build (email_1, {n} docs, createIndexes path): {dt:.1f}s; {len(lat)} updates meanwhile, "
              f"latency p50 {lat[len(lat) // 2] * 1000:.1f} ms, p99 {lat[int(len(lat) * .99)] * 1000:.1f} ms, "
              f"max {lat[-1] * 1000:.0f} ms" if lat else f"index build: {dt:.1f}s")
        timed_queries(e, values[:5], "email")                          # warm the file caches
        ix_t, ix_found = timed_queries(e, values, "email")
        check_t, check_found = timed_queries(e, values[:args.scan_queries], "email")
        assert check_found == scan_found, "index and scan disagree"
        print(f"equality on email with index: {ix_t * 1000:.3f} ms/query ({ix_found} docs found)")
        print(f"speed-up: {scan_t / ix_t:.0f}x (target >= 20x)")
        t0 = time.perf_counter()
        e.indexes.create(c, [{"v": 2, "key": {"score": 1}, "name": "score_1"}])
        print(f"index build (score_1): {time.perf_counter() - t0:.1f}s")
        timed_top(e, 3)
        top_ix_t, top_ix = timed_top(e, 50)
        assert top_ix == top_scan, "index walk and scan disagree"
        print(f"sort score desc, limit 10, index walk: {top_ix_t * 1000:.3f} ms/query "
              f"(speed-up {top_scan_t / top_ix_t:.0f}x)")
        e.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
