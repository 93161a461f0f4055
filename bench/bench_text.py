"""Text-search benchmark (embedded engine): builds a text index over N documents
(a title and a body drawn from a Zipf-distributed vocabulary of pseudo-words) and
times ``$text`` searches of rare, medium and common terms, several terms, a
phrase, a negation, and the top 10 by textScore.

    python bench/bench_text.py [--docs 1000000] [--reps 20]

Prints one line per figure. Not a test: figures depend on the machine (and on
whatever else runs on it).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mongolake.engine.engine import Engine  # noqa: E402
from mongolake.engine.indexing.text import TextIndex  # noqa: E402
from mongolake.engine.reader import ScanStats  # noqa: E402

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "zu", "pe", "qua", "dri", "fen", "gol", "hap", "jix"]


def vocabulary(n: int) -> list[str]:
    words, i = [], 0
    while len(words) < n:
        j, w = i, ""
        while True:
            w += SYLLABLES[j % len(SYLLABLES)]
            j //= len(SYLLABLES)
            if not j:
                break
        words.append(w + "x")            # a final "x": Snowball leaves these pseudo-words unstemmed
        i += 1
    return words


def timed(e: Engine, q: dict, reps: int, **kw) -> tuple[float, int, ScanStats]:
    st = ScanStats()
    n = sum(1 for _ in e.find("db", "c", q, stats=st, **kw))            # warm-up, and the result size
    t0 = time.perf_counter()
    for _ in range(reps):
        for _ in e.find("db", "c", q, **kw):
            pass
    return (time.perf_counter() - t0) / reps, n, st


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--vocab", type=int, default=50_000)
    args = ap.parse_args()
    n = args.docs
    vocab = vocabulary(args.vocab)
    ranks = np.arange(1, len(vocab) + 1)
    p = 1.0 / ranks
    p /= p.sum()
    rng = np.random.default_rng(1)
    root = tempfile.mkdtemp(prefix="ml-bench-text-")
    try:
        e = Engine(os.path.join(root, "store"), sync="always", flush_interval=3600, memtable_bytes=1 << 40).open()
        print(f"load average at start: {os.getloadavg()[0]:.1f}")
        t0 = time.perf_counter()
        df = np.zeros(len(vocab), dtype=np.int64)
        for i in range(0, n, 10_000):
            m = min(n, i + 10_000) - i
            w = rng.choice(len(vocab), size=(m, 15), p=p)
            for row in w:
                df[np.unique(row)] += 1
            docs = [{"_id": i + j, "title": " ".join(vocab[k] for k in w[j, :3]),
                     "body": " ".join(vocab[k] for k in w[j, 3:]), "n": (i + j) % 100} for j in range(m)]
            e.insert("db", "c", docs, wait=False)
        e.flush()
        print(f"load: {n} docs inserted and flushed in {time.perf_counter() - t0:.1f}s")
        c = e.get_collection("db", "c")
        spec = TextIndex.validate_spec({"v": 2, "key": {"title": "text", "body": "text"}, "name": "text",
                                        "weights": {"title": 5}})
        t0 = time.perf_counter()
        e.indexes.create(c, [spec])
        with e.lock:
            ix = e.indexes.special(c, "text")[0]
        post_bytes = sum(a.buffer_info()[1] * a.itemsize + b.buffer_info()[1] * b.itemsize
                         for a, b in ix._post.values())
        print(f"text index build: {time.perf_counter() - t0:.1f}s, {len(ix._post)} terms, "
              f"{ix.entry_count()} postings ({post_bytes / 2**20:.0f} MiB of posting arrays)")

        def word(target_df: float) -> str:
            k = int(np.argmin(np.abs(df / n - target_df)))
            return vocab[k]

        rare, medium, common = word(0.0005), word(0.005), word(0.05)
        cases = [
            (f"rare term ({rare})", {"$text": {"$search": rare}}, {}),
            (f"medium term ({medium})", {"$text": {"$search": medium}}, {}),
            (f"common term ({common}), first batch of 101", {"$text": {"$search": common}}, {"limit": 101}),
            (f"common term ({common}), all", {"$text": {"$search": common}}, {}),
            (f"two terms ({rare} {medium})", {"$text": {"$search": f"{rare} {medium}"}}, {}),
            (f"phrase (\"{medium} {common}\")", {"$text": {"$search": f'"{medium} {common}"'}}, {}),
            (f"negation ({medium} -{common})", {"$text": {"$search": f"{medium} -{common}"}}, {}),
            ("medium term, top 10 by textScore", {"$text": {"$search": medium}},
             {"projection": {"s": {"$meta": "textScore"}}, "sort": {"s": {"$meta": "textScore"}}, "limit": 10}),
            ("medium term and n == 7", {"$text": {"$search": medium}, "n": 7}, {}),
        ]
        for label, q, kw in cases:
            reps = args.reps if "all" not in label else max(1, args.reps // 5)
            t, found, st = timed(e, q, reps, **kw)
            print(f"$text {label}: {t * 1000:.1f} ms/query ({found} docs returned, "
                  f"{st.keys_examined} postings, {st.docs_examined} docs fetched)")
        e.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
