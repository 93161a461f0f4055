"""Geospatial queries on N points through the server (pymongo): ``$near`` with
a limit and with ``$maxDistance``, ``$nearSphere`` on a legacy pair, the
``$geoNear`` stage — all answered by the 2dsphere index.

    python bench/bench_geo.py [--n 1000000] [--queries 50]

The points (GeoJSON, uniform over the sphere, plus 20% clustered around a few
cities) are loaded with the embedded engine and flushed, then served by a real
server process; the index is built by the first query. Prints one line per
figure: median and p95 latency per query over random query points.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pymongo import GEOSPHERE, MongoClient  # noqa: E402

from mongolake.engine import Engine  # noqa: E402
from tests.serverutil import ServerProcess  # noqa: E402

CITIES = [(2.35, 48.86), (-74.0, 40.7), (139.7, 35.7), (-43.2, -22.9), (28.0, -26.2), (77.2, 28.6)]


def point(rnd: random.Random) -> list[float]:
    if rnd.random() < 0.2:
        cx, cy = rnd.choice(CITIES)
        return [round(cx + rnd.gauss(0, 0.3), 6), round(max(-90, min(90, cy + rnd.gauss(0, 0.3))), 6)]
    return [round(rnd.uniform(-180, 180), 6), round(math.degrees(math.asin(rnd.uniform(-1, 1))), 6)]


def load(storage: str, n: int) -> None:
    rnd = random.Random(1)
    e = Engine(storage, sync="none", flush_interval=3600, memtable_bytes=1 << 40).open()
    try:
        for i in range(0, n, 50_000):
            e.insert("bench", "geo", [{"_id": j, "loc": {"type": "Point", "coordinates": point(rnd)},
                                       "kind": j % 10} for j in range(i, min(n, i + 50_000))], wait=False)
            if (i // 50_000) % 4 == 3:
                e.flush()
        e.flush()
    finally:
        e.close()


def timed(fn, queries) -> tuple[float, float]:
    ts = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        ts.append(time.perf_counter() - t)
    ts.sort()
    return statistics.median(ts) * 1000, ts[int(len(ts) * 0.95) - 1] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=50)
    a = ap.parse_args()
    rnd = random.Random(2)
    queries = [point(rnd) for _ in range(a.queries)]
    with tempfile.TemporaryDirectory() as d:
        storage = os.path.join(d, "lake")
        t = time.perf_counter()
        load(storage, a.n)
        print(f"loaded {a.n:,} points in {time.perf_counter() - t:.1f} s", flush=True)
        srv = ServerProcess(storage).start(timeout=600)
        try:
            coll = MongoClient(srv.url, socketTimeoutMS=600_000).bench.geo
            t = time.perf_counter()
            coll.create_index([("loc", GEOSPHERE)])
            first = coll.find({"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}}).limit(1)
            list(first)
            print(f"createIndex + index build (first query): {time.perf_counter() - t:.1f} s", flush=True)

            def near10(q):
                docs = list(coll.find({"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": q}}}})
                            .limit(10))
                assert len(docs) == 10

            counts: list[int] = []

            def near_max(q):
                counts.append(len(list(coll.find({"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": q},
                                                                    "$maxDistance": 50_000}}}))))

            def near_sphere(q):
                list(coll.find({"loc": {"$nearSphere": q, "$maxDistance": 0.01}}).limit(10))

            def near_filtered(q):
                list(coll.find({"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": q}}},
                                "kind": 3}).limit(10))

            def geonear(q):
                list(coll.aggregate([{"$geoNear": {"near": {"type": "Point", "coordinates": q},
                                                   "distanceField": "d"}}, {"$limit": 10}]))

            for name, fn in (("$near limit 10", near10), ("$near $maxDistance 50 km", near_max),
                             ("$nearSphere legacy, 0.01 rad, limit 10", near_sphere),
                             ("$near + {kind: 3} limit 10", near_filtered), ("$geoNear + $limit 10", geonear)):
                med, p95 = timed(fn, queries)
                extra = f"   results: median {statistics.median(counts):.0f}, max {max(counts)}" \
                    if fn is near_max else ""
                print(f"{name:<42} median {med:7.2f} ms   p95 {p95:7.2f} ms{extra}", flush=True)
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
