"""The workloads: the same pymongo client code against every server.

A workload is a function ``fn(ctx) -> Result`` registered in :data:`WORKLOADS` (in the
order the runner executes them).  Each one repeats its operation until the time cap
(``ctx.limits.seconds``) or its iteration cap is reached, after at least one
operation; read workloads first run one untimed warm-up operation.  ``Result.check``
holds a figure derived from the answers (a count, a list of prices, ...) that must be
the same on every server: the runner flags differences, so a fast wrong answer does
not pass unnoticed.
"""
from __future__ import annotations

import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import bson
from pymongo.errors import OperationFailure, PyMongoError

from bench import dataset

DB = "mlbench"
DATA = "docs"  # the collection loaded by insert_many and read by the read workloads
BATCH = 1000


@dataclass
class Limits:
    seconds: float = 5.0  # per workload (load excepted)
    load_seconds: float = 900.0  # insert_many may stop early; reads then run on what was loaded
    point_ops: int = 50_000  # iteration cap of cheap operations (find_one, insert_one, ...)
    heavy_ops: int = 200  # iteration cap of scans, counts, aggregations
    bulk_ops: int = 3  # update_many / delete_many operations (each touches N/20 documents)
    stream_events: int = 50  # change-stream round trips


@dataclass
class Result:
    value: float | None  # in ``unit``; None = not measured
    unit: str
    ops: int = 0
    seconds: float = 0.0
    check: Any = None
    note: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class Ctx:
    client: Any
    n: int  # documents requested
    limits: Limits
    seed: int = 42
    loaded: int = 0  # documents actually loaded
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    @property
    def coll(self):
        return self.client[DB][DATA]


@dataclass
class Workload:
    name: str
    title: str
    unit: str
    fn: Callable[[Ctx], Result]
    needs_data: bool = True
    higher_is_better: bool = True


WORKLOADS: dict[str, Workload] = {}


def workload(name: str, title: str, unit: str, *, needs_data: bool = True, higher_is_better: bool = True):
    def deco(fn):
        WORKLOADS[name] = Workload(name, title, unit, fn, needs_data, higher_is_better)
        return fn
    return deco


def timed_loop(op: Callable[[int], Any], seconds: float, max_ops: int, warmup: bool = True) -> tuple[int, float, Any]:
    """Run ``op(i)`` until ``seconds`` elapsed or ``max_ops`` done (at least once).

    Returns (operations, elapsed seconds, the first timed operation's return value).
    With ``warmup`` one untimed ``op(0)`` runs first, unless it alone took ``seconds``
    or more: then that single (cold) operation is the measurement, which keeps the
    slowest servers' runs bounded at large N (and its result, for the same parameters
    as a first timed operation, is the one returned).
    """
    if warmup:
        t0 = time.perf_counter()
        r = op(0)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return 1, elapsed, r
    first, ops = None, 0
    t0 = time.perf_counter()
    while True:
        r = op(ops)
        if ops == 0:
            first = r
        ops += 1
        elapsed = time.perf_counter() - t0
        if ops >= max_ops or elapsed >= seconds:
            return ops, elapsed, first


def rate(ops: int, seconds: float) -> float:
    return ops / seconds if seconds > 0 else float("inf")


# -- writes ---------------------------------------------------------------------------
@workload("insert_many", "insert_many, batches of 1,000", "docs/s")
def insert_many(ctx: Ctx) -> Result:
    """Load the data set (only the insert_many calls are timed, not document generation)."""
    coll = ctx.coll
    coll.drop()
    spent, loaded, batches = 0.0, 0, 0
    for docs in dataset.batches(ctx.n, BATCH, ctx.seed):
        t0 = time.perf_counter()
        coll.insert_many(docs, ordered=True)
        spent += time.perf_counter() - t0
        loaded += len(docs)
        batches += 1
        if spent >= ctx.limits.load_seconds:
            break
    ctx.loaded = loaded
    note = "" if loaded == ctx.n else f"load capped at {loaded:,} of {ctx.n:,} docs"
    return Result(rate(loaded, spent), "docs/s", batches, spent, check=loaded, note=note)


def _count_all(coll) -> int:
    """Documents in ``coll``, counted client-side (every server, the floor too, can answer find {})."""
    return sum(1 for _ in coll.find({}, {"_id": 1}))


def _insert_docs(count: int, base: int) -> list[dict]:
    docs = dataset.make_docs(0, count, seed=base)
    for k, d in enumerate(docs):
        d["_id"] = base + k
    return docs


@workload("insert_one_1", "insert_one, 1 client", "ops/s", needs_data=False)
def insert_one_1(ctx: Ctx) -> Result:
    coll = ctx.client[DB]["ins1"]
    coll.drop()
    docs = _insert_docs(ctx.limits.point_ops + 1, 1)
    it = iter(docs)
    ops, secs, _ = timed_loop(lambda i: coll.insert_one(next(it)), ctx.limits.seconds, ctx.limits.point_ops)
    inserted = len(docs) - sum(1 for _ in it)
    return Result(rate(ops, secs), "ops/s", ops, secs, check=_count_all(coll) == inserted)


@workload("insert_one_16", "insert_one, 16 clients (threads)", "ops/s", needs_data=False)
def insert_one_16(ctx: Ctx) -> Result:
    """16 threads over one MongoClient (a pool of 16 connections), each inserting until the deadline."""
    threads_n = 16
    coll = ctx.client[DB]["ins16"]
    coll.drop()
    per_thread = max(1, ctx.limits.point_ops // threads_n)
    counts = [0] * threads_n
    errors: list[BaseException] = []
    clock = [0.0, 0.0]  # start, deadline: set by the barrier as every thread is released

    def go() -> None:
        clock[0] = time.perf_counter()
        clock[1] = clock[0] + ctx.limits.seconds

    start = threading.Barrier(threads_n + 1, action=go)

    def worker(t: int) -> None:
        docs = _insert_docs(per_thread, 1_000_000 * (t + 1))
        start.wait()
        try:
            for d in docs:
                coll.insert_one(d)
                counts[t] += 1
                if time.perf_counter() >= clock[1]:
                    break
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads_n)]
    for th in threads:
        th.start()
    start.wait()
    for th in threads:
        th.join()
    secs = time.perf_counter() - clock[0]
    if errors:
        raise errors[0]
    ops = sum(counts)
    return Result(rate(ops, secs), "ops/s", ops, secs, check=_count_all(coll) == ops)


# -- reads (on the flushed, loaded collection) ------------------------------------------
def _rand_id(ctx: Ctx) -> int:
    return ctx.rng.randrange(max(1, ctx.loaded))


@workload("find_id", "find_one by _id", "ops/s")
def find_id(ctx: Ctx) -> Result:
    coll = ctx.coll
    ids = [_rand_id(ctx) for _ in range(1000)]
    found = sum(coll.find_one({"_id": k}) is not None for k in ids[:20])
    ops, secs, _ = timed_loop(lambda i: coll.find_one({"_id": ids[i % 1000]}), ctx.limits.seconds,
                              ctx.limits.point_ops)
    return Result(rate(ops, secs), "ops/s", ops, secs, check=found)


@workload("find_eq", "find, selective equality (sku)", "ops/s")
def find_eq(ctx: Ctx) -> Result:
    coll = ctx.coll
    keys = [dataset.sku(_rand_id(ctx)) for _ in range(100)]
    ops, secs, first = timed_loop(lambda i: len(list(coll.find({"sku": keys[i % 100]}))), ctx.limits.seconds,
                                  ctx.limits.heavy_ops)
    return Result(rate(ops, secs), "ops/s", ops, secs, check=first)


@workload("find_range_sort", "find, range + sort + limit 10", "ops/s")
def find_range_sort(ctx: Ctx) -> Result:
    coll = ctx.coll
    lows = [ctx.rng.randrange(950) for _ in range(100)]

    def op(i):
        lo = lows[i % 100]
        cur = coll.find({"price": {"$gte": lo, "$lt": lo + 50}}, {"price": 1}).sort("price", -1).limit(10)
        return [d["price"] for d in cur]

    ops, secs, first = timed_loop(op, ctx.limits.seconds, ctx.limits.heavy_ops)
    return Result(rate(ops, secs), "ops/s", ops, secs, check=first)


@workload("find_nested", "find, nested field equality", "ops/s")
def find_nested(ctx: Ctx) -> Result:
    coll = ctx.coll
    zips = [dataset.zip_code(_rand_id(ctx)) for _ in range(100)]
    ops, secs, first = timed_loop(lambda i: len(list(coll.find({"address.zip": zips[i % 100]}))),
                                  ctx.limits.seconds, ctx.limits.heavy_ops)
    return Result(rate(ops, secs), "ops/s", ops, secs, check=first)


@workload("count_range", "count_documents, range (~20%)", "ops/s")
def count_range(ctx: Ctx) -> Result:
    coll = ctx.coll
    lows = [ctx.rng.randrange(400) for _ in range(100)]
    ops, secs, first = timed_loop(lambda i: coll.count_documents({"qty": {"$gte": lows[i % 100],
                                                                          "$lt": lows[i % 100] + 100}}),
                                  ctx.limits.seconds, ctx.limits.heavy_ops)
    return Result(rate(ops, secs), "ops/s", ops, secs, check=first)


GROUP_PIPELINE = [
    {"$match": {"status": "active"}},
    {"$group": {"_id": "$category", "n": {"$sum": 1}, "qty": {"$sum": "$qty"}}},
]


@workload("match_group", "aggregate $match + $group", "ops/s")
def match_group(ctx: Ctx) -> Result:
    coll = ctx.coll

    def op(i):
        return sorted((d["_id"], d["n"], d["qty"]) for d in coll.aggregate(GROUP_PIPELINE))

    ops, secs, first = timed_loop(op, ctx.limits.seconds, ctx.limits.heavy_ops)
    check = [len(first), sum(g[1] for g in first), sum(g[2] for g in first)]  # groups, docs, sum(qty)
    return Result(rate(ops, secs), "ops/s", ops, secs, check=check)


DECODE_BATCH = 101  # MongoDB's default first batch


def rebatch(raw_batches: list[bytes], size: int) -> list[bytes]:
    """The documents of concatenated-BSON ``raw_batches`` regrouped ``size`` per batch."""
    docs = []
    for b in raw_batches:
        pos = 0
        while pos < len(b):
            n = int.from_bytes(b[pos:pos + 4], "little")
            docs.append(b[pos:pos + n])
            pos += n
    return [b"".join(docs[i:i + size]) for i in range(0, len(docs), size)]


@workload("full_scan", "find {} returning every doc", "docs/s")
def full_scan(ctx: Ctx) -> Result:
    """Iterate ``find({})`` to the end, alternating with this client decoding the same docs.

    The same documents' raw bytes are fetched once, untimed, with ``find_raw_batches``.
    After each timed scan, ``bson.decode_all`` decodes them twice, timed separately, so
    all figures come from the same moments of a possibly busy machine:

    * ``extra['client_decode_docs_per_s']``: in the server's own batches, i.e. the bytes
      pymongo really receives: the decode work of this very scan, its ceiling, and the
      reference of the "full scan >= 0.7x client decode" target;
    * ``extra['client_decode_101_docs_per_s']``: regrouped 101 documents per batch
      (MongoDB's first-batch size): a server-independent figure.  ``decode_all`` on one
      large batch runs markedly slower than on small ones (allocation, cache, GC), so the
      difference between the two shows what the server's batch sizes cost the client.

    The first decode after a scan that just freed many documents runs up to 2x slower
    (the allocator regrows its heap), and how much depends on the server's batch sizes;
    a few untimed batches first make the decode figures a steady, warm-heap ceiling.
    """
    coll = ctx.coll
    raw = list(coll.find_raw_batches({}))
    small = rebatch(raw, DECODE_BATCH)
    scan_s = decode_s = small_s = 0.0
    ops = decoded = first = 0
    while True:
        t0 = time.perf_counter()
        n = 0
        for _ in coll.find({}):
            n += 1
        for b in raw[:3]:  # untimed: regrow the heap the scan just gave back (see the docstring)
            bson.decode_all(b)
        t1 = time.perf_counter()
        decoded += sum(len(bson.decode_all(b)) for b in raw)
        t2 = time.perf_counter()
        for b in small:
            bson.decode_all(b)
        small_s += time.perf_counter() - t2
        decode_s += t2 - t1
        scan_s += t1 - t0
        first = first or n
        ops += 1
        if ops >= ctx.limits.heavy_ops or scan_s >= ctx.limits.seconds:
            break
    extra = {"client_decode_docs_per_s": decoded / decode_s if decode_s > 0 and decoded else None,
             "client_decode_101_docs_per_s": decoded / small_s if small_s > 0 and decoded else None}
    return Result(rate(first * ops, scan_s), "docs/s", ops, scan_s, check=first, extra=extra)


# -- updates and deletes (after the reads; they change the data) -------------------------
@workload("update_one", "update_one by _id", "ops/s")
def update_one(ctx: Ctx) -> Result:
    coll = ctx.coll
    ids = [_rand_id(ctx) for _ in range(1000)]
    ops, secs, first = timed_loop(lambda i: coll.update_one({"_id": ids[i % 1000]},
                                                            {"$set": {"status": "touched"}, "$inc": {"qty": 1}}
                                                            ).matched_count, ctx.limits.seconds, ctx.limits.point_ops)
    return Result(rate(ops, secs), "ops/s", ops, secs, check=first)


@workload("update_many", "update_many, 1/20 of docs per op", "docs/s")
def update_many(ctx: Ctx) -> Result:
    coll = ctx.coll
    modified = []
    ops, secs, first = timed_loop(lambda i: modified.append(coll.update_many(
        {"category": dataset.CATEGORIES[i % 10]}, {"$inc": {"qty": 1}, "$set": {"flag": True}}).modified_count),
        ctx.limits.seconds, ctx.limits.bulk_ops, warmup=False)
    return Result(rate(sum(modified), secs), "docs/s", ops, secs, check=modified[0],
                  extra={"ops_per_s": rate(ops, secs)})


@workload("delete_many", "delete_many, 1/20 of docs per op", "docs/s")
def delete_many(ctx: Ctx) -> Result:
    coll = ctx.coll
    deleted = []
    ops, secs, _ = timed_loop(lambda i: deleted.append(coll.delete_many(
        {"category": dataset.CATEGORIES[10 + i % 10]}).deleted_count), ctx.limits.seconds, ctx.limits.bulk_ops,
        warmup=False)
    return Result(rate(sum(deleted), secs), "docs/s", ops, secs, check=deleted[0],
                  extra={"ops_per_s": rate(ops, secs)})


@workload("change_stream", "change stream, insert-to-event latency", "ms", needs_data=False,
          higher_is_better=False)
def change_stream(ctx: Ctx) -> Result:
    """Median time from an insert_one's start to its event arriving on a watch() cursor."""
    coll = ctx.client[DB]["cs"]
    coll.drop()
    coll.insert_one({"_id": -1})
    try:
        stream = coll.watch(max_await_time_ms=1000)
    except OperationFailure as e:
        name = (e.details or {}).get("codeName", "")
        return Result(None, "ms", note=f"n/a: watch() refused ({e.code} {name})")
    latencies = []
    try:
        t_end = time.perf_counter() + ctx.limits.seconds
        for i in range(ctx.limits.stream_events):
            t0 = time.perf_counter()
            coll.insert_one({"_id": i, "t": t0})
            event = None
            while event is None and time.perf_counter() - t0 < 10:
                event = stream.try_next()
            if event is None:
                return Result(None, "ms", note="n/a: no event within 10 s of an insert")
            latencies.append((time.perf_counter() - t0) * 1000)
            if time.perf_counter() >= t_end:
                break
    except PyMongoError as e:
        return Result(None, "ms", note=f"n/a: change stream failed: {e}"[:200])
    finally:
        stream.close()
    return Result(statistics.median(latencies), "ms", len(latencies), sum(latencies) / 1000,
                  check=len(latencies) > 0, extra={"p90_ms": sorted(latencies)[int(0.9 * (len(latencies) - 1))]})
