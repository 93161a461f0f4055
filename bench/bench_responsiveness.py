"""Does one long query stall everybody else? Ping latency on one connection while
another runs full scans, plus the cost of small queries.

    python bench/bench_responsiveness.py [--n 200000] [--seconds 5]

Prints: small find (non-_id equality) ops/s, find_one by _id ops/s, and the
p50/p99/max round trip of ``ping`` from a second client while a first one runs
unindexed full-collection finds back to back.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pymongo import MongoClient  # noqa: E402

from tests.serverutil import ServerProcess  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    a = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as d:
        srv = ServerProcess(d, extra=["--sync", "none"]).start()
        try:
            c = MongoClient(srv.url, socketTimeoutMS=600_000)
            coll = c.b.docs
            for i in range(0, a.n, 10_000):
                coll.insert_many([{"_id": j, "k": j % 1000, "pad": "x" * 100} for j in range(i, min(a.n, i + 10_000))])
            c.admin.command("fsync")
            for name, q in (("find {k: v} (scan, small result)", lambda i: list(coll.find({"k": i % 1000}).limit(1))),
                            ("find_one by _id", lambda i: coll.find_one({"_id": i}))):
                t, n = time.perf_counter(), 0
                while time.perf_counter() - t < a.seconds / 2:
                    q(n)
                    n += 1
                print(f"{name:<40} {n / (time.perf_counter() - t):10,.1f} ops/s", flush=True)
            stop = threading.Event()

            def scanner() -> None:
                sc = MongoClient(srv.url, socketTimeoutMS=600_000)
                while not stop.is_set():
                    sum(1 for _ in sc.b.docs.find({"pad": {"$ne": "y"}}))
                sc.close()

            th = threading.Thread(target=scanner, daemon=True)
            th.start()
            time.sleep(0.5)
            p = MongoClient(srv.url)
            lat = []
            t = time.perf_counter()
            while time.perf_counter() - t < a.seconds:
                t0 = time.perf_counter()
                p.admin.command("ping")
                lat.append(time.perf_counter() - t0)
                time.sleep(0.01)
            stop.set()
            th.join()
            lat.sort()
            print(f"ping during full scans: n={len(lat)} p50 {lat[len(lat) // 2] * 1e3:.1f} ms, "
                  f"p99 {lat[int(len(lat) * 0.99)] * 1e3:.1f} ms, max {lat[-1] * 1e3:.1f} ms", flush=True)
            p.close()
            c.close()
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
