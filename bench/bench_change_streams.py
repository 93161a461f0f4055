"""Change-stream benchmarks against a MongoLake server process.

``--latency N``: N single-document inserts, one at a time, each after a short random
pause so the watcher is already waiting in its getMore; the latency of an insert is
the time from the moment insert_one returns (the write is acknowledged, hence
durable) to the moment its event reaches the watcher thread (a separate client
blocked in getMore). Prints p50 / p90 / p99 / max in milliseconds (target p50 < 5 ms).

``--exactly-once N``: N writes (inserts, with every fourth op an update of the
writer's previous document) from 8 concurrent writer threads while 4 watchers
(two collection streams, a database stream and a cluster stream with a ``$match``)
read the changes; checks that every watcher sees every write exactly once, in commit
order (resume tokens strictly increasing) and each writer's writes in the order it
made them, and that the four watchers saw identical sequences.

Usage::

    python bench/bench_change_streams.py [--latency 2000] [--exactly-once 100000] [--json]

Both start their own server (``tests.serverutil.ServerProcess``) in a temporary folder.
``run_exactly_once`` is also what ``tests/commands/test_change_streams_load.py`` runs,
scaled down.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pymongo import MongoClient  # noqa: E402

ID_STRIDE = 10_000_000


def _writer_ops(w: int, per_writer: int) -> list[tuple[str, int]]:
    """What writer ``w`` does, in order: ("insert"|"update", _id)."""
    ops = []
    for k in range(per_writer):
        if k % 4 == 3:
            ops.append(("update", w * ID_STRIDE + k - 1))
        else:
            ops.append(("insert", w * ID_STRIDE + k))
    return ops


def run_exactly_once(url: str, dbname: str, writers: int, per_writer: int, *, watchers: int = 4,
                     timeout: float = 600.0) -> dict:
    """Run the workload; return what each watcher saw, summarised."""
    admin = MongoClient(url, serverSelectionTimeoutMS=10000)
    admin.drop_database(dbname)
    admin[dbname].create_collection("c")
    total = writers * per_writer
    seen: list[list[tuple[str, str, int]]] = [[] for _ in range(watchers)]
    errors: list[BaseException] = []
    ready = threading.Barrier(watchers + 1)
    deadline = time.time() + timeout

    def watch(i: int) -> None:
        cl = MongoClient(url, serverSelectionTimeoutMS=10000)
        try:
            kind = i % 4
            if kind in (0, 1):
                stream = cl[dbname].c.watch(batch_size=1000, max_await_time_ms=200)
            elif kind == 2:
                stream = cl[dbname].watch(batch_size=1000, max_await_time_ms=200)
            else:
                stream = cl.watch([{"$match": {"ns.db": dbname}}], batch_size=1000, max_await_time_ms=200)
            with stream:
                ready.wait()
                out = seen[i]
                while len(out) < total and time.time() < deadline:
                    ev = stream.try_next()
                    if ev is not None:
                        out.append((ev["_id"]["_data"], ev["operationType"], ev["documentKey"]["_id"]))
        except BaseException as e:   # noqa: BLE001 - reported below
            errors.append(e)
            try:
                ready.abort()
            except threading.BrokenBarrierError:
                pass
        finally:
            cl.close()

    wthreads = [threading.Thread(target=watch, args=(i,), daemon=True) for i in range(watchers)]
    for t in wthreads:
        t.start()
    ready.wait()
    coll = admin[dbname].c
    t0 = time.time()

    def write(w: int) -> None:
        try:
            for op, _id in _writer_ops(w, per_writer):
                if op == "insert":
                    coll.insert_one({"_id": _id, "w": w})
                else:
                    coll.update_one({"_id": _id}, {"$set": {"u": 1}})
        except BaseException as e:   # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t_written = time.time()
    for t in wthreads:
        t.join(max(1.0, deadline - time.time()))
    t_done = time.time()
    admin.close()
    if errors:
        raise errors[0]
    expected = {w: _writer_ops(w, per_writer) for w in range(writers)}
    summaries = []
    for evs in seen:
        toks = [e[0] for e in evs]
        per_writer_seen: dict[int, list] = {}
        for _tok, op, _id in evs:
            per_writer_seen.setdefault(_id // ID_STRIDE, []).append((op, _id))
        summaries.append({"events": len(evs), "distinct": len(set(toks)),
                          "in_order": all(a < b for a, b in zip(toks, toks[1:])),
                          "writer_order": per_writer_seen == expected})
    return {"writes": total, "write_seconds": round(t_written - t0, 2),
            "writes_per_s": round(total / max(1e-9, t_written - t0)),
            "all_delivered_seconds": round(t_done - t0, 2), "watchers": summaries,
            "identical": all(s == seen[0] for s in seen)}


def measure_latency(url: str, n: int, *, pause: tuple[float, float] = (0.002, 0.006)) -> dict:
    """Acknowledged insert -> event at a waiting watcher, ``n`` times."""
    admin = MongoClient(url, serverSelectionTimeoutMS=10000)
    admin.drop_database("cs_latency")
    admin.cs_latency.create_collection("c")
    arrived: dict[int, float] = {}
    got_all = threading.Event()
    ready = threading.Event()

    def watch() -> None:
        cl = MongoClient(url, serverSelectionTimeoutMS=10000)
        with cl.cs_latency.c.watch(max_await_time_ms=1000) as stream:
            ready.set()
            while len(arrived) < n:
                ev = stream.try_next()
                if ev is not None:
                    arrived[ev["documentKey"]["_id"]] = time.perf_counter()
        got_all.set()
        cl.close()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    ready.wait(30)
    coll = admin.cs_latency.c
    acked: dict[int, float] = {}
    for i in range(n):
        time.sleep(random.uniform(*pause))
        coll.insert_one({"_id": i})
        acked[i] = time.perf_counter()
    got_all.wait(60)
    admin.close()
    lat = sorted(max(0.0, arrived[i] - acked[i]) * 1000 for i in range(n) if i in arrived)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3)
    return {"events": len(lat), "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": round(lat[-1], 3), "mean_ms": round(statistics.mean(lat), 3)}


def main(argv: list[str] | None = None) -> int:
    from tests.serverutil import ServerProcess
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency", type=int, default=2000, help="inserts to time (0: skip)")
    ap.add_argument("--exactly-once", type=int, default=0, help="writes for the 8-writer / 4-watcher check")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out: dict = {}
    with tempfile.TemporaryDirectory() as d:
        srv = ServerProcess(os.path.join(d, "lake")).start()
        try:
            if args.latency:
                out["latency"] = measure_latency(srv.url, args.latency)
            if args.exactly_once:
                per = max(1, args.exactly_once // 8)
                out["exactly_once"] = run_exactly_once(srv.url, "cs_exactly_once", 8, per)
        finally:
            srv.stop()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        if "latency" in out:
            r = out["latency"]
            print(f"insert -> event latency over {r['events']} events: p50 {r['p50_ms']} ms, p90 {r['p90_ms']} ms, "
                  f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms")
        if "exactly_once" in out:
            r = out["exactly_once"]
            ok = all(w["events"] == r["writes"] and w["distinct"] == r["writes"] and w["in_order"]
                     and w["writer_order"] for w in r["watchers"]) and r["identical"]
            print(f"exactly-once: {r['writes']} writes by 8 writers in {r['write_seconds']} s "
                  f"({r['writes_per_s']}/s), 4 watchers done after {r['all_delivered_seconds']} s: "
                  f"{'OK' if ok else 'FAILED'} {r['watchers']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
