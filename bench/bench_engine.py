"""Engine benchmarks through a real server (pymongo client): write throughput, group
commit, point reads on a flushed collection, flush time, start-up time, memory.

    python bench/bench_engine.py [--n 1000000] [--memory-docs 2000000] [--skip-memory]
    python bench/bench_engine.py --only writes --repeat 3 [--sync always|interval|none]

Prints one line per figure. Not a test: figures depend on the machine.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from tests.serverutil import ServerProcess  # noqa: E402


def doc(i: int) -> dict:
    return {"_id": i, "name": f"user{i}", "age": i % 90, "city": ("Paris", "Oslo", "Lima", "Pune")[i % 4],
            "score": (i * 7919) % 1000 / 10.0, "tags": ["a", "b", str(i % 10)],
            "profile": {"level": i % 5, "active": i % 2 == 0, "since": i * 1000}, "pad": "x" * 80}


class RSSWatcher(threading.Thread):
    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.peak = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)


def report(name: str, value: float, unit: str) -> None:
    print(f"{name:<48} {value:>14,.1f} {unit}", flush=True)


def bench_writes(url: str, n: int, run: int = 0) -> None:
    c = MongoClient(url)
    c.bench.drop_collection(f"writes{run}")
    coll = c.bench[f"writes{run}"]
    t = time.perf_counter()
    for i in range(0, n, 1000):
        coll.insert_many([doc(j) for j in range(i, min(n, i + 1000))], ordered=False)
    report("insert_many (batches of 1000, durable)", n / (time.perf_counter() - t), "docs/s")
    m = 3000
    t = time.perf_counter()
    for i in range(m):
        coll.insert_one({"_id": f"s{i}", "v": i})
    single = m / (time.perf_counter() - t)
    report("insert_one, 1 client", single, "ops/s")
    per = 600
    def worker(k):
        cc = MongoClient(url)
        col = cc.bench[f"writes{run}"]
        col.find_one({"_id": -1})                 # connect before the clock starts
        ready.wait()
        for i in range(per):
            col.insert_one({"_id": f"c{k}-{i}", "v": i})
        cc.close()
    ready = threading.Barrier(17)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    [th.start() for th in threads]
    ready.wait()
    t = time.perf_counter()
    [th.join() for th in threads]
    multi = 16 * per / (time.perf_counter() - t)
    report("insert_one, 16 clients", multi, "ops/s")
    report("  16-client / 1-client ratio", multi / single, "x")
    c.close()


def bench_reads(srv: ServerProcess, n: int) -> None:
    c = MongoClient(srv.url)
    coll = c.bench.reads
    for i in range(0, n, 5000):
        coll.insert_many([doc(j) for j in range(i, min(n, i + 5000))], ordered=False)
    t = time.perf_counter()
    c.admin.command("fsync")
    report(f"flush of {n:,} new documents", time.perf_counter() - t, "s")
    rnd = random.Random(1)
    k = 10000
    ids = [rnd.randrange(n) for _ in range(k)]
    for i in ids[:2000]:          # warm the cache a little
        coll.find_one({"_id": i})
    t = time.perf_counter()
    for i in ids:
        assert coll.find_one({"_id": i}) is not None
    report(f"find_one by _id, flushed {n:,} docs", k / (time.perf_counter() - t), "ops/s")
    changed = min(100_000, n)
    coll.update_many({"_id": {"$lt": changed}}, {"$inc": {"age": 1}})
    t = time.perf_counter()
    c.admin.command("fsync")
    report(f"flush of {changed:,} changed documents", time.perf_counter() - t, "s")
    t = time.perf_counter()
    assert coll.count_documents({"age": {"$gte": 50}}) > 0
    report("count_documents with a range", (time.perf_counter() - t) * 1000, "ms")
    c.close()
    srv.stop()
    t = time.perf_counter()
    srv.start(timeout=300)
    c = MongoClient(srv.url)
    c.admin.command("ping")
    coll = c.bench.reads
    coll.find_one({"_id": 1})
    report(f"start-up with a {n:,}-doc collection", time.perf_counter() - t, "s")
    c.close()


def bench_memory(storage: str, n: int) -> None:
    # load with the embedded engine (no client round trips), then serve it
    from mongolake.engine import Engine

    e = Engine(storage, sync="none", flush_interval=3600, memtable_bytes=1 << 40).open()
    for i in range(0, n, 50_000):
        e.insert("bench", "mem", [doc(j) | {"pad": "y" * 120} for j in range(i, min(n, i + 50_000))], wait=False)
        if (i // 50_000) % 4 == 3:
            e.flush()
    e.close()
    srv = ServerProcess(storage, extra=["--cache-size", "256"]).start(timeout=300)
    try:
        watch = RSSWatcher(srv.proc.pid)
        watch.start()
        c = MongoClient(srv.url)
        coll = c.bench.mem
        t = time.perf_counter()
        m = sum(1 for _ in coll.find({}, batch_size=10000))
        report(f"full scan of {m:,} docs", m / (time.perf_counter() - t), "docs/s")
        rnd = random.Random(2)
        t = time.perf_counter()
        for _ in range(10000):
            coll.find_one({"_id": rnd.randrange(n)})
        report("10,000 random point reads", 10000 / (time.perf_counter() - t), "ops/s")
        watch.stop.set()
        watch.join()
        report(f"peak server RSS, {n:,} docs, 256 MB cache", watch.peak / 2**20, "MB")
        c.close()
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--writes", type=int, default=100_000)
    ap.add_argument("--memory-docs", type=int, default=2_000_000)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--only", choices=("writes", "reads", "memory"), help="run one group of figures")
    ap.add_argument("--repeat", type=int, default=1, help="run the write figures this many times")
    ap.add_argument("--sync", default="always", help="the server's --sync mode")
    a = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as d:
        if a.only in (None, "writes", "reads"):
            srv = ServerProcess(os.path.join(d, "lake"), extra=["--sync", a.sync]).start()
            try:
                if a.only in (None, "writes"):
                    for r in range(a.repeat):
                        bench_writes(srv.url, a.writes, r)
                if a.only in (None, "reads"):
                    bench_reads(srv, a.n)
            finally:
                srv.stop()
        if not a.skip_memory and a.only in (None, "memory"):
            bench_memory(os.path.join(d, "mem"), a.memory_docs)


if __name__ == "__main__":
    main()
