"""Text indexes: ``$text`` through the index returns exactly what a scan that
tokenises every document returns (same documents, same textScore), on randomised
data, through writes, flush, compaction, restart and concurrent writers."""
from __future__ import annotations

import math
import random
import threading

import pytest

from mongolake.engine.engine import Engine
from mongolake.engine.indexing.text import TextIndex
from mongolake.engine.reader import ScanStats
from mongolake.errors import MongoError
from mongolake.query.text import CompiledQuery, TextQuery, TextSpec

WORDS = ["coffee", "Coffee", "coffees", "café", "Café", "cafe", "tea", "teas", "green", "running", "runs", "ran",
         "the", "and", "of", "shop", "shops", "shopping", "naïve", "naive", "résumé", "resume", "Berlin", "über",
         "uber", "don't", "it's", "x-ray", "e-mail", "foo_bar", "données", "Straße", "strasse", "ÉCOLE", "école"]
SPECS = {
    "c": {"v": 2, "key": {"title": "text", "body": "text"}, "name": "title_text_body_text",
          "weights": {"title": 5, "tags": 2, "meta.note": 3}},
    "w": {"v": 2, "key": {"$**": "text"}, "name": "$**_text", "default_language": "english"},
}


def _text(rnd: random.Random) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(0, 8))) + rnd.choice(["", ".", "!", " - ok"])


def _doc(rnd: random.Random, i: int) -> dict:
    d: dict = {"_id": i, "n": rnd.randint(0, 9)}
    if rnd.random() < 0.9:
        d["title"] = _text(rnd)
    if rnd.random() < 0.8:
        d["body"] = rnd.choice([_text(rnd), [_text(rnd), _text(rnd)], 5, None, {"x": _text(rnd)}])
    if rnd.random() < 0.4:
        d["tags"] = [rnd.choice(WORDS) for _ in range(rnd.randint(0, 3))]
    if rnd.random() < 0.3:
        d["meta"] = rnd.choice([{"note": _text(rnd)}, [{"note": _text(rnd)}, {"note": 1}],
                                {"note": _text(rnd), "language": "french"}])
    if rnd.random() < 0.15:
        d["language"] = rnd.choice(["spanish", "none", "en", "german"])
    return d


def _queries(rnd: random.Random) -> list[dict]:
    out = []
    for _ in range(40):
        words = [rnd.choice(WORDS) for _ in range(rnd.randint(1, 3))]
        k = rnd.random()
        if k < 0.2:
            search = f'"{rnd.choice(WORDS)} {rnd.choice(WORDS)}" ' + " ".join(words)
        elif k < 0.4:
            search = " ".join(words) + " -" + rnd.choice(WORDS)
        elif k < 0.5:
            search = " ".join(words) + f' -"{rnd.choice(WORDS)}"'
        else:
            search = " ".join(words)
        t: dict = {"$search": search}
        if rnd.random() < 0.2:
            t["$caseSensitive"] = True
        if rnd.random() < 0.2:
            t["$diacriticSensitive"] = True
        if rnd.random() < 0.15:
            t["$language"] = rnd.choice(["none", "spanish", "en"])
        q: dict = {"$text": t}
        if rnd.random() < 0.3:
            q["n"] = {"$gte": rnd.randint(0, 9)}
        out.append(q)
    return out


def _scan(e: Engine, coll: str, q: dict) -> dict:
    """{_id: textScore} by tokenising every document (no index involved)."""
    c = e.get_collection("db", coll)
    spec = next(s for s in c.meta.indexes if s["name"] == SPECS[coll]["name"])
    ts = TextSpec(spec)
    t = q["$text"]
    lang = t.get("$language")
    from mongolake.query.text.languages import resolve
    cq = CompiledQuery(TextQuery(t["$search"], resolve(lang) if lang else None, t.get("$caseSensitive", False),
                                 t.get("$diacriticSensitive", False)), ts.default_language)
    out = {}
    for d in e.find("db", coll, {}, as_raw=False):
        if "n" in q and not d["n"] >= q["n"]["$gte"]:
            continue
        s = cq.evaluate(ts, d)
        if s is not None:
            out[d["_id"]] = s
    return out


def _found(e: Engine, coll: str, q: dict) -> dict:
    st = ScanStats()
    docs = list(e.find("db", coll, q, as_raw=False, stats=st))
    assert getattr(st, "index_name", None) == SPECS[coll]["name"]
    scores = [d.meta["textScore"] for d in docs]
    assert scores == sorted(scores, reverse=True)          # best first
    return {d["_id"]: d.meta["textScore"] for d in docs}


def _same(a: dict, b: dict, q: dict) -> None:
    assert set(a) == set(b), (q, sorted(set(a) ^ set(b)))
    for k in a:
        assert math.isclose(a[k], b[k], rel_tol=1e-12), (q, k, a[k], b[k])


def _check(e: Engine, queries: list[dict]) -> int:
    hits = 0
    for coll in SPECS:
        for q in queries:
            want = _scan(e, coll, q)
            _same(_found(e, coll, q), want, q)
            assert e.count("db", coll, q) == len(want)
            top = [d.meta["textScore"] for d in e.find("db", coll, q, sort={"s": {"$meta": "textScore"}}, limit=5,
                                                       as_raw=False)]
            assert top == pytest.approx(sorted(want.values(), reverse=True)[:5], rel=1e-12)
            hits += len(want)
    return hits


def _setup(e: Engine, rnd: random.Random, n: int = 300) -> None:
    for coll, spec in SPECS.items():
        e.insert("db", coll, [_doc(rnd, i) for i in range(n)])
        c = e.get_collection("db", coll)
        e.set_indexes(c, c.meta.indexes + [TextIndex.validate_spec(dict(spec))])


def _churn(e: Engine, rnd: random.Random, step: int) -> None:
    for coll in SPECS:
        for i in rnd.sample(range(400), 20):
            e.update("db", coll, {"_id": i}, _doc(rnd, i), upsert=True)
        e.update("db", coll, {"n": rnd.randint(0, 9)}, {"$set": {"title": _text(rnd)}}, multi=True)
        e.delete("db", coll, {"_id": {"$in": rnd.sample(range(400), 10)}})
        e.insert("db", coll, [_doc(rnd, 1000 + step * 100 + j) for j in range(20)])


def test_differential_through_writes_flush_compaction_restart(tmp_path):
    rnd = random.Random(11)
    path = str(tmp_path / "store")
    e = Engine(path, flush_interval=3600, row_group_rows=64).open()
    _setup(e, rnd)
    queries = _queries(rnd)
    assert _check(e, queries) > 200                    # the queries do find documents
    e.flush()
    for step in range(4):
        _churn(e, rnd, step)
        _check(e, queries)
        if step == 1:
            e.flush()
        if step == 2:
            e.compact("db", "c")
            e.compact("db", "w")
            _check(e, queries)
    e.close(flush=False)                               # recovery replays the WAL; the index is rebuilt
    e = Engine(path, flush_interval=3600, row_group_rows=64).open()
    _check(e, queries)
    e.close()


def test_concurrent_writers_and_transactions(tmp_path):
    rnd = random.Random(5)
    e = Engine(str(tmp_path / "store"), flush_interval=3600, row_group_rows=64).open()
    try:
        _setup(e, rnd, 200)
        queries = _queries(rnd)[:10]
        stop = threading.Event()

        def writer(seed: int) -> None:
            r = random.Random(seed)
            while not stop.is_set():
                coll = r.choice(list(SPECS))
                i = r.randint(0, 300)
                if r.random() < 0.2:
                    e.delete("db", coll, {"_id": i})
                else:
                    e.update("db", coll, {"_id": i}, _doc(r, i), upsert=True)

        ts = [threading.Thread(target=writer, args=(s,)) for s in range(2)]
        for t in ts:
            t.start()
        try:
            for _ in range(5):
                with e.lock:                           # a quiescent moment: index == scan
                    for coll in SPECS:
                        for q in queries:
                            _same(_found(e, coll, q), _scan(e, coll, q), q)
        finally:
            stop.set()
            for t in ts:
                t.join()
        _check(e, queries)
        from mongolake.engine.txn import using
        q = {"$text": {"$search": "zebra"}}
        tx = e.begin_transaction()
        e.insert("db", "c", [{"_id": 10_000, "title": "zebra crossing"}])      # outside the snapshot
        with using(tx):
            assert list(e.find("db", "c", q, as_raw=False)) == []              # the snapshot, by a scan
            e.insert("db", "c", [{"_id": 10_001, "title": "zebras"}])
            inside = list(e.find("db", "c", q, as_raw=False))
            assert [d["_id"] for d in inside] == [10_001] and inside[0].meta["textScore"] > 0
        e.abort_transaction(tx)
        assert [d["_id"] for d in e.find("db", "c", q, as_raw=False)] == [10_000]
    finally:
        e.close()


def test_index_compaction_keeps_results(tmp_path):
    """Many updates of the same documents: dead postings are compacted away."""
    e = Engine(str(tmp_path / "store"), flush_interval=3600).open()
    try:
        e.insert("db", "k", [{"_id": i, "t": "alpha beta"} for i in range(50)])
        c = e.get_collection("db", "k")
        e.set_indexes(c, c.meta.indexes + [TextIndex.validate_spec({"v": 2, "key": {"t": "text"}, "name": "t"})])
        assert e.count("db", "k", {"$text": {"$search": "alpha"}}) == 50
        with e.lock:
            ix = e.indexes.special(c, "text")[0]
        ix.compact_min_dead = 200
        for r in range(600):
            i = r % 50
            e.update("db", "k", {"_id": i}, {"$set": {"t": f"alpha w{r} w{r + 1} gamma"}})
        assert ix._dead <= 2 * 200 and ix.entry_count() == 50 * 4 and len(ix._keys) < 300
        assert e.count("db", "k", {"$text": {"$search": "gamma"}}) == 50
        assert e.count("db", "k", {"$text": {"$search": "beta"}}) == 0
        assert e.count("db", "k", {"$text": {"$search": "w599"}}) == 2      # "w598 w599", "w599 w600"
        assert e.count("db", "k", {"$text": {"$search": "w500"}}) == 0      # an older version's word
    finally:
        e.close()


def test_no_text_index_and_planner_errors(tmp_path):
    e = Engine(str(tmp_path / "store"), flush_interval=3600).open()
    try:
        e.insert("db", "p", [{"_id": 1, "a": 1, "t": "hello world"}, {"_id": 2, "a": 2, "t": "bye"}])
        with pytest.raises(MongoError) as ei:
            list(e.find("db", "p", {"$text": {"$search": "hello"}}))
        assert ei.value.code == 27 and "text index required for $text query" in str(ei.value)
        c = e.get_collection("db", "p")
        e.set_indexes(c, c.meta.indexes + [TextIndex.validate_spec({"v": 2, "key": {"a": 1, "t": "text"},
                                                                    "name": "a_1_t_text"})])
        with pytest.raises(MongoError) as ei:
            list(e.find("db", "p", {"$text": {"$search": "hello"}}))
        assert ei.value.code == 291 and "prefix fields" in str(ei.value)
        assert [d["_id"] for d in e.find("db", "p", {"a": 1, "$text": {"$search": "hello"}}, as_raw=False)] == [1]
        assert list(e.find("db", "p", {"a": 2, "$text": {"$search": "hello"}})) == []
        with pytest.raises(MongoError) as ei:
            list(e.find("db", "p", {"a": 1, "$nor": [{"$text": {"$search": "hello"}}]}))
        assert ei.value.code == 2 and "nor" in str(ei.value)
        with pytest.raises(MongoError) as ei:
            list(e.find("db", "p", {"a": 1, "$and": [{"$text": {"$search": "a"}}, {"$text": {"$search": "b"}}]}))
        assert ei.value.code == 2 and "Too many text expressions" in str(ei.value)
    finally:
        e.close()


def test_first_query_after_restart_builds_without_holding_the_lock(tmp_path):
    """After a restart the first $text builds the index from a snapshot (the engine
    lock is free while it scans): writes made meanwhile succeed and are found."""
    path = str(tmp_path / "store")
    e = Engine(path, flush_interval=3600).open()
    e.insert("db", "k", [{"_id": i, "t": f"alpha w{i}"} for i in range(3000)])
    c = e.get_collection("db", "k")
    e.set_indexes(c, c.meta.indexes + [TextIndex.validate_spec({"v": 2, "key": {"t": "text"}, "name": "t"})])
    e.close()
    e = Engine(path, flush_interval=3600).open()
    e.indexes.inline_build_docs = 100                   # 3,000 documents count as large
    try:
        c = e.get_collection("db", "k")
        from mongolake.engine.indexing import build as _b
        seen_free = []
        real = _b.run_job

        def spy(engine, jobs, job, coll, state, commit):
            # the job is registered; the scan runs now, with the lock free for writers
            t = threading.Thread(target=lambda: seen_free.append(e.lock.acquire(timeout=5) and (e.lock.release()
                                                                                              or True)))
            t.start()
            t.join()
            e.insert("db", "k", [{"_id": "during", "t": "alpha gamma"}])
            return real(engine, jobs, job, coll, state, commit)

        _b.run_job = spy
        try:
            assert e.count("db", "k", {"$text": {"$search": "gamma"}}) == 1
        finally:
            _b.run_job = real
        assert seen_free == [True]
        assert e.count("db", "k", {"$text": {"$search": "alpha"}}) == 3001
    finally:
        e.close()
