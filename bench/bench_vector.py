"""Vector search benchmark: ``$vectorSearch`` top-10 over N vectors of D dimensions,
approximate (IVF, ``numCandidates`` = 20 × limit, Atlas' advice) against exact
search: milliseconds per query and recall@10.

    python bench/bench_vector.py [--docs 100000] [--dims 384] [--queries 100]
                                 [--data latent|random] [--no-server] [--cache-size MB]

Two measurements:

* in-process: the index alone (``VectorIndex.search``), no server, no documents;
* through the server: pymongo ``aggregate([$vectorSearch, $project score])`` against a
  MongoLake server process (documents inserted, flushed, index built at first query).

Data: ``latent`` (default) puts vectors on a 24-dimensional manifold embedded in D
dimensions plus noise and normalises them — neighbourhoods like sentence embeddings
have (nearest neighbour cosine ≈ 0.7, random pairs ≈ 0); ``random`` is isotropic
Gaussian noise, where nearest neighbours are barely nearer than anything else and
no approximate index reaches a high recall cheaply (reported for honesty).
Not a test: figures depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mongolake.engine.indexing.vector import VectorIndex  # noqa: E402


def make_data(n: int, d: int, kind: str, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "random":
        X = rng.standard_normal((n, d))
    else:
        z = rng.standard_normal((n, 24))
        w = np.random.default_rng(12345).standard_normal((24, d)) / np.sqrt(24)
        X = z @ w + 0.3 * rng.standard_normal((n, d))
    X = X.astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def spec(d: int) -> dict:
    return VectorIndex.validate_spec({"name": "vi", "definition": {"fields": [
        {"type": "vector", "path": "v", "numDimensions": d, "similarity": "cosine"}]}})


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def in_process(X: np.ndarray, Q: np.ndarray, limit: int, nc: int) -> None:
    ix = VectorIndex(spec(X.shape[1]))
    t0 = time.perf_counter()
    for i, x in enumerate(X):
        ix.add({"v": x.tolist()}, i.to_bytes(4, "big"))
    t1 = time.perf_counter()
    ix.finish_build()
    t2 = time.perf_counter()
    st = ix.stores["v"]
    print(f"in-process: {len(X)} vectors added in {t1 - t0:.1f}s, IVF trained in {t2 - t1:.1f}s "
          f"({len(st.lists)} lists)")
    ann, exact, recall, scanned = [], [], [], []
    for q in Q:
        a = time.perf_counter()
        got, ex = ix.search("v", q, limit, num_candidates=nc, exact=False)
        ann.append(time.perf_counter() - a)
        a = time.perf_counter()
        want, _ = ix.search("v", q, limit, num_candidates=nc, exact=True)
        exact.append(time.perf_counter() - a)
        recall.append(len({k for k, _ in got} & {k for k, _ in want}) / limit)
        scanned.append(ex)
    print(f"in-process approximate: median {statistics.median(ann) * 1000:.2f} ms, p95 {pct(ann, .95) * 1000:.2f} ms"
          f"/query, recall@{limit} {statistics.mean(recall):.3f} (min {min(recall):.2f}), "
          f"{statistics.mean(scanned) / len(X):.1%} of vectors scored")
    print(f"in-process exact:       median {statistics.median(exact) * 1000:.2f} ms, "
          f"p95 {pct(exact, .95) * 1000:.2f} ms/query")


def through_server(X: np.ndarray, Q: np.ndarray, limit: int, nc: int, cache_mb: int) -> None:
    from pymongo import MongoClient
    from pymongo.operations import SearchIndexModel

    from tests.serverutil import ServerProcess

    root = tempfile.mkdtemp(prefix="ml-bench-vec-")
    srv = ServerProcess(root, extra=["--cache-size", str(cache_mb)]).start()
    try:
        with MongoClient(srv.url, socketTimeoutMS=0, heartbeatFrequencyMS=60000) as cl:
            c = cl.bench.vec
            t0 = time.perf_counter()
            step = 1000
            for a in range(0, len(X), step):
                c.insert_many([{"_id": a + i, "v": x.tolist()} for i, x in enumerate(X[a:a + step])],
                              ordered=False)
            cl.admin.command("fsync")
            t1 = time.perf_counter()
            print(f"server: {len(X)} documents inserted and flushed in {t1 - t0:.1f}s")
            t0 = time.perf_counter()
            c.create_search_index(SearchIndexModel(spec(X.shape[1])["definition"], name="vi", type="vectorSearch"))
            print(f"server: createSearchIndexes (index built from the table + IVF training) "
                  f"{time.perf_counter() - t0:.1f}s")

            def run(q, exact: bool) -> list:
                stage = {"index": "vi", "path": "v", "queryVector": q.tolist(), "limit": limit}
                stage.update({"exact": True} if exact else {"numCandidates": nc})
                return [d["_id"] for d in c.aggregate([{"$vectorSearch": stage},
                                                       {"$project": {"_id": 1,
                                                                     "s": {"$meta": "vectorSearchScore"}}}])]
            t0 = time.perf_counter()
            run(Q[0], False)
            print(f"server: first query {(time.perf_counter() - t0) * 1000:.1f} ms")
            t0 = time.perf_counter()
            for q in Q:                              # warm the read cache with the result documents
                run(q, False)
                run(q, True)
            print(f"server: cache warm-up pass {time.perf_counter() - t0:.1f}s (result documents read from "
                  f"Parquet row groups: what a cold query mostly pays)")
            ann, exact, recall = [], [], []
            for q in Q:
                a = time.perf_counter()
                got = run(q, False)
                ann.append(time.perf_counter() - a)
                a = time.perf_counter()
                want = run(q, True)
                exact.append(time.perf_counter() - a)
                recall.append(len(set(got) & set(want)) / limit)
            print(f"server approximate: median {statistics.median(ann) * 1000:.2f} ms, "
                  f"p95 {pct(ann, .95) * 1000:.2f} ms/query, recall@{limit} {statistics.mean(recall):.3f} "
                  f"(min {min(recall):.2f})")
            print(f"server exact:       median {statistics.median(exact) * 1000:.2f} ms, "
                  f"p95 {pct(exact, .95) * 1000:.2f} ms/query")
    finally:
        srv.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--data", choices=("latent", "random"), default="latent")
    ap.add_argument("--no-server", action="store_true")
    ap.add_argument("--cache-size", type=int, default=1024, help="server --cache-size (MB)")
    args = ap.parse_args()
    nc = 20 * args.limit
    data = make_data(args.docs + args.queries, args.dims, args.data)
    Q, X = data[:args.queries], data[args.queries:]
    print(f"{args.docs} x {args.dims} ({args.data}), top-{args.limit}, numCandidates {nc}, "
          f"load average {os.getloadavg()[0]:.1f}")
    in_process(X, Q, args.limit, nc)
    if not args.no_server:
        through_server(X, Q, args.limit, nc, args.cache_size)


if __name__ == "__main__":
    main()
