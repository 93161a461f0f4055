"""Query-engine micro-benchmarks: matcher throughput and Arrow pushdown time.

    python bench/bench_query.py [--docs 200000] [--rows 1000000]

1. Matcher: documents per second of ``compile_matcher`` closures on decoded
   documents for an equality, a range and an ``$in`` filter on a top-level int.
2. Pushdown: the same filters translated by ``pushdown`` and evaluated over a
   data file of ``--rows`` rows (shredded columns + ``_id``/``_key``/``_doc``),
   both on the table in memory and as a Parquet read of the file in /tmp with the
   filter (row-group statistics pruning included).
Prints one line per figure.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bson  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from mongolake.query.bsonorder import CODEC_OPTIONS  # noqa: E402
from mongolake.query.columns import ColumnSpec, arrow_schema  # noqa: E402
from mongolake.query.filter import parse_filter  # noqa: E402
from mongolake.query.keystring import encode_key  # noqa: E402
from mongolake.query.matcher import compile_matcher  # noqa: E402
from mongolake.query.pushdown import pushdown  # noqa: E402

FILTERS = {
    "equality": {"a": 5000},
    "range": {"a": {"$gt": 1000, "$lt": 1100}},
    "$in": {"a": {"$in": [17, 999, 4242, 7000, 9999, 123, 5555, 31, 64, 8080]}},
}
SPECS = {"a": ColumnSpec("a", "int"), "s": ColumnSpec("s", "string"), "p.level": ColumnSpec("p.level", "int")}


def timed(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_matcher(n: int) -> None:
    docs = [bson.decode(bson.encode({"_id": i, "a": (i * 7919) % 10_000, "s": f"user{i % 977}",
                                     "p": {"level": i % 10}, "tags": ["x", "y"]}), CODEC_OPTIONS)
            for i in range(n)]
    for name, f in FILTERS.items():
        fn = compile_matcher(parse_filter(f))
        hits = sum(1 for d in docs if fn(d))
        secs = timed(lambda: [fn(d) for d in docs])
        print(f"matcher {name:9s}: {n / secs / 1e6:6.2f} M docs/s  ({secs * 1e9 / n:5.0f} ns/doc, {hits} hits)",
              flush=True)


def build_file(rows: int) -> pa.Table:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 10_000, rows)
    ids = np.arange(rows)
    keys = [encode_key(int(i)) for i in ids]
    docs = [bson.encode({"_id": int(i), "a": int(v)}) for i, v in zip(ids, a)]
    p = pa.StructArray.from_arrays([pa.array(ids % 10)], fields=[arrow_schema(SPECS).field("p").type.field(0)])
    return pa.Table.from_arrays(
        [pa.array(ids.astype(str)), pa.array(keys, pa.binary()), pa.array(docs, pa.binary()),
         pa.array(a, pa.int64()), pa.array([f"user{i % 977}" for i in ids]), p],
        schema=arrow_schema(SPECS))


def bench_pushdown(rows: int) -> None:
    t = time.perf_counter()
    table = build_file(rows)
    print(f"built a {rows:,}-row table in {time.perf_counter() - t:.1f} s", flush=True)
    exact = {"_key", "a", "s", "p.level"}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "data.parquet")
        pq.write_table(table, path, compression="zstd", row_group_size=64 * 1024)
        print(f"parquet file: {os.path.getsize(path) / 1e6:.1f} MB, "
              f"{pq.ParquetFile(path).metadata.num_row_groups} row groups", flush=True)
        for name, f in FILTERS.items():
            expr, is_exact = pushdown(parse_filter(f), SPECS, exact)
            n = table.filter(expr).num_rows
            mem = timed(lambda: table.filter(expr))
            keys_only = table.select(["_key", "a"])
            narrow = timed(lambda: keys_only.filter(expr))
            disk_cols = timed(lambda: pq.read_table(path, columns=["_key", "a"], filters=expr))
            disk = timed(lambda: pq.read_table(path, columns=["_key", "_doc"], filters=expr))
            print(f"pushdown {name:9s}: exact={is_exact} rows={n:6d}  in-memory {mem * 1e3:6.1f} ms "
                  f"(_key+a only {narrow * 1e3:5.1f} ms)  parquet read+filter: _key+a {disk_cols * 1e3:6.1f} ms, "
                  f"_key+_doc {disk * 1e3:6.1f} ms", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    a = ap.parse_args()
    bench_matcher(a.docs)
    bench_pushdown(a.rows)


if __name__ == "__main__":
    main()
