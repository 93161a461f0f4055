"""Aggregation on N documents through the server (pymongo): the pushed-down paths
against the document-at-a-time path for the same pipelines.

    python bench/bench_aggregate.py [--n 1000000]

The data is loaded with the embedded engine (fast, no client round trips), flushed,
then served by a real server process. Prints one line per figure.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pymongo import MongoClient  # noqa: E402

from mongolake.engine import Engine  # noqa: E402
from tests.serverutil import ServerProcess  # noqa: E402

CITIES = ["Paris", "Oslo", "Lima", "Pune", "Kyiv", "Rome", "Accra", "Quito"]


def load(storage: str, n: int) -> None:
    e = Engine(storage, sync="none", flush_interval=3600, memtable_bytes=1 << 40).open()
    try:
        for i in range(0, n, 50_000):
            e.insert("bench", "agg", [{"_id": j, "city": CITIES[j % 8], "age": j % 90, "score": (j * 7919) % 10_000,
                                       "pad": "x" * 40} for j in range(i, min(n, i + 50_000))], wait=False)
            if (i // 50_000) % 4 == 3:
                e.flush()
        e.flush()
    finally:
        e.close()


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        storage = os.path.join(d, "lake")
        t = time.perf_counter()
        load(storage, a.n)
        print(f"loaded {a.n:,} documents in {time.perf_counter() - t:.1f} s", flush=True)
        srv = ServerProcess(storage).start(timeout=600)
        try:
            # long document-at-a-time runs block the server's loop: no monitor timeout may cancel them
            coll = MongoClient(srv.url, socketTimeoutMS=600_000, connectTimeoutMS=600_000,
                               heartbeatFrequencyMS=600_000).bench.agg
            group = [{"$match": {"age": {"$gte": 30}}},
                     {"$group": {"_id": "$city", "avg": {"$avg": "$score"}, "total": {"$sum": "$score"}}}]
            slow_group = [group[0], {"$addFields": {"_z": 1}}, group[1]]
            topk = [{"$sort": {"score": -1}}, {"$limit": 10}]
            slow_topk = [{"$addFields": {"_z": 1}}, *topk]
            # column pruning: $first of a string is not columnar, but reads only city/pad/age
            pruned = [group[0], {"$group": {"_id": "$city", "first": {"$first": "$pad"}, "n": {"$sum": 1}}}]
            slow_pruned = [group[0], {"$match": {"$expr": {"$ne": ["$$ROOT", None]}}}, pruned[1]]
            # a full sort: in memory under 100 MB, an external merge sort under a 16 MB limit
            full_sort = [{"$sort": {"score": 1, "_id": 1}}, {"$skip": a.n - 10}, {"$project": {"pad": 0}}]
            admin = coll.database.client.admin

            def spilled():
                admin.command("setParameter", 1, internalQueryMaxBlockingSortMemoryUsageBytes=16 << 20)
                try:
                    return list(coll.aggregate(full_sort))
                finally:
                    admin.command("setParameter", 1, internalQueryMaxBlockingSortMemoryUsageBytes=100 << 20)
            rows = [
                ("[$match range, $group city $avg $sum]", lambda: list(coll.aggregate(group))),
                ("  same, document at a time", lambda: list(coll.aggregate(slow_group))),
                ("[$match range, $group city $first pad] pruned", lambda: list(coll.aggregate(pruned))),
                ("  same, document at a time", lambda: list(coll.aggregate(slow_pruned))),
                ("[$sort score, $limit 10]", lambda: list(coll.aggregate(topk))),
                ("  same, document at a time", lambda: list(coll.aggregate(slow_topk))),
                ("count_documents({age: {$gte: 30, $lt: 60}})",
                 lambda: coll.count_documents({"age": {"$gte": 30, "$lt": 60}})),
                ("[$sort score _id, $skip n-10] in memory (once)", lambda: list(coll.aggregate(full_sort))),
                ("  same, spilled under a 16 MB limit (once)", spilled),
            ]
            for name, fn in rows:
                repeat = 1 if "document at a time" in name or "once" in name else 3
                print(f"{name:<48} {timed(fn, repeat) * 1000:>10,.1f} ms", flush=True)
        finally:
            srv.stop(timeout=600)


if __name__ == "__main__":
    main()
