"""Secondary indexes: index plans return exactly what a collection scan returns."""
from __future__ import annotations

import random
import threading

import pytest
from bson.int64 import Int64

from mongolake.engine.engine import Engine
from mongolake.engine.indexing.sortedkeys import SortedKeys
from mongolake.engine.reader import ScanStats
from mongolake.errors import MongoError

INDEXES = [
    {"v": 2, "key": {"a": 1}, "name": "a_1"},
    {"v": 2, "key": {"b": -1}, "name": "b_-1"},
    {"v": 2, "key": {"a": 1, "c.d": 1}, "name": "a_1_c.d_1"},
    {"v": 2, "key": {"t": 1}, "name": "t_1", "sparse": True},
    {"v": 2, "key": {"h": "hashed"}, "name": "h_hashed"},
    {"v": 2, "key": {"p": 1}, "name": "p_1", "partialFilterExpression": {"q": True}},
]


def _value(rnd: random.Random):
    k = rnd.random()
    if k < 0.35:
        return rnd.randint(-5, 5)
    if k < 0.45:
        return rnd.choice([1.5, -0.0, 2.0, Int64(3), float("nan")])
    if k < 0.6:
        return rnd.choice(["x", "y", "xy", "", "x\x00"])
    if k < 0.7:
        return None
    if k < 0.85:
        return [rnd.randint(-3, 3) for _ in range(rnd.randint(0, 3))]
    if k < 0.9:
        return {"z": rnd.randint(0, 2)}
    return rnd.choice([True, False])


def _doc(rnd: random.Random, i: int) -> dict:
    d = {"_id": i}
    for f in ("a", "b", "t", "h", "p"):
        if rnd.random() < 0.85:
            d[f] = _value(rnd)
    if rnd.random() < 0.7:
        d["c"] = rnd.choice([{"d": _value(rnd)}, [{"d": _value(rnd)}, {"d": _value(rnd)}], {"e": 1}])
    d["q"] = rnd.random() < 0.5
    return d


def _queries(rnd: random.Random) -> list[dict]:
    qs = []
    for _ in range(60):
        f = rnd.choice(["a", "b", "t", "h", "p", "c.d"])
        v = _value(rnd)
        op = rnd.choice(["eq", "$eq", "$gt", "$gte", "$lt", "$lte", "$in", "range"])
        if op == "eq":
            q = {f: v}
        elif op == "$in":
            q = {f: {"$in": [v, _value(rnd)]}}
        elif op == "range":
            lo, hi = sorted([rnd.randint(-5, 5), rnd.randint(-5, 5)])
            q = {f: {"$gte": lo, "$lt": hi}}
        else:
            q = {f: {op: v}}
        if f == "p" and rnd.random() < 0.7:
            q["q"] = True
        if rnd.random() < 0.3:
            q["a"] = rnd.randint(-5, 5)
        qs.append(q)
    return qs


def _scan_ids(e: Engine, q: dict) -> list:
    return sorted(d["_id"] for d in e.find("db", "c", q, as_raw=False, hint={"$natural": 1}))


def _check(e: Engine, queries: list[dict]) -> int:
    used = 0
    for q in queries:
        st = ScanStats()
        got = sorted(d["_id"] for d in e.find("db", "c", q, as_raw=False, stats=st))
        assert got == _scan_ids(e, q), (q, getattr(st, "index_name", None))
        assert e.count("db", "c", q) == len(got), q
        used += hasattr(st, "index_name")
    return used


@pytest.fixture
def eng(tmp_path):
    e = Engine(str(tmp_path / "store"), flush_interval=3600, row_group_rows=64).open()
    yield e
    e.close()


def _setup(e: Engine, rnd: random.Random, n: int = 400) -> None:
    e.insert("db", "c", [_doc(rnd, i) for i in range(n)])
    c = e.get_collection("db", "c")
    e.set_indexes(c, c.meta.indexes + INDEXES)


def test_differential_through_writes_flush_compaction_restart(tmp_path):
    rnd = random.Random(7)
    path = str(tmp_path / "store")
    e = Engine(path, flush_interval=3600, row_group_rows=64).open()
    _setup(e, rnd)
    queries = _queries(rnd)
    assert _check(e, queries) > 20                 # most queries do use an index
    e.flush()
    for step in range(4):
        ids = rnd.sample(range(600), 60)
        for i in ids[:20]:
            e.update("db", "c", {"_id": i}, _doc(rnd, i), upsert=True)
        e.update("db", "c", {"a": rnd.randint(-5, 5)}, {"$set": {"b": _value(rnd), "c": {"d": _value(rnd)}}}, multi=True)
        e.delete("db", "c", {"_id": {"$in": ids[20:30]}})
        e.insert("db", "c", [_doc(rnd, 1000 + step * 100 + j) for j in range(30)])
        _check(e, queries)
        if step == 1:
            e.flush()
        if step == 2:
            e.compact("db", "c")
            _check(e, queries)
    e.close(flush=False)                          # recovery replays the WAL
    e = Engine(path, flush_interval=3600, row_group_rows=64).open()
    _check(e, queries)
    e.close()


def test_concurrent_writers_and_transactions(eng):
    rnd = random.Random(3)
    _setup(eng, rnd, 200)
    stop = threading.Event()

    def writer(seed):
        r = random.Random(seed)
        while not stop.is_set():
            i = r.randint(0, 400)
            eng.update("db", "c", {"_id": i}, {"$set": {"a": r.randint(-5, 5)}}, upsert=True)

    ts = [threading.Thread(target=writer, args=(s,)) for s in range(2)]
    for t in ts:
        t.start()
    try:
        for _ in range(30):
            with eng.lock:                       # a quiescent moment: index == scan
                for v in range(-2, 3):
                    assert _scan_ids(eng, {"a": v}) == sorted(
                        d["_id"] for d in eng.find("db", "c", {"a": v}, as_raw=False))
    finally:
        stop.set()
        for t in ts:
            t.join()
    from mongolake.engine.txn import using
    tx = eng.begin_transaction()
    eng.update("db", "c", {"_id": 1}, {"$set": {"a": 99}})          # committed outside the snapshot
    with using(tx):
        inside = sorted(d["_id"] for d in eng.find("db", "c", {"a": 99}, as_raw=False))
        assert 1 not in inside                   # the transaction reads its snapshot, not the index
    eng.abort_transaction(tx)
    assert 1 in sorted(d["_id"] for d in eng.find("db", "c", {"a": 99}, as_raw=False))


def _insert_error(eng, docs):
    errs = eng.insert("db", "u", docs).errors
    return errs[0][1] if errs else None


def test_unique_through_the_index(eng):
    eng.insert("db", "u", [{"_id": i, "k": i, "m": [i, i + 100]} for i in range(50)])
    c = eng.get_collection("db", "u")
    eng.set_indexes(c, c.meta.indexes + [{"v": 2, "key": {"k": 1}, "name": "k_1", "unique": True},
                                         {"v": 2, "key": {"m": 1}, "name": "m_1", "unique": True}])
    err = _insert_error(eng, [{"_id": 100, "k": 7}])
    assert err is not None and err.code == 11000 and "k_1" in str(err)
    err = _insert_error(eng, [{"_id": 101, "k": 1000, "m": [3]}])        # multikey collision
    assert err is not None and "m_1" in str(err)
    eng.flush()
    eng.update("db", "u", {"_id": 7}, {"$set": {"k": 1007}})
    assert _insert_error(eng, [{"_id": 102, "k": 7, "m": 500}]) is None  # 7 is free again
    with pytest.raises(MongoError):
        eng.update("db", "u", {"_id": 8}, {"$set": {"k": 1007}})
    eng.delete("db", "u", {"_id": 102})
    assert _insert_error(eng, [{"_id": 103, "k": 7, "m": 501}]) is None
    err = _insert_error(eng, [{"_id": 104, "m": 600}, {"_id": 105, "m": 601}])   # two missing k: null twice
    assert err is not None and err.code == 11000
    assert eng.count("db", "u", {}) == 52


def test_sorted_keys_ranges():
    rnd = random.Random(1)
    sk = SortedKeys()
    ref = set()
    for _ in range(5000):
        item = (bytes([rnd.randint(0, 40)]), bytes([rnd.randint(0, 255)]))
        if rnd.random() < 0.7:
            sk.add(item)
            ref.add(item)
        else:
            sk.discard(item)
            ref.discard(item)
    assert list(sk) == sorted(ref) and len(sk) == len(ref)
    for lo, hi in [(None, None), (b"\x05", b"\x10"), (b"\x10", b"\x05"), (None, b"\x03"), (b"\x30", None)]:
        want = [x for x in sorted(ref) if (lo is None or x[0] >= lo) and (hi is None or x[0] < hi)]
        assert list(sk.irange(lo, hi)) == want
        assert list(sk.irange(lo, hi, reverse=True)) == want[::-1]


def test_ttl_monitor_deletes_expired_documents_with_delete_events(tmp_path):
    import datetime as dt
    import time

    e = Engine(str(tmp_path / "store"), flush_interval=3600)
    e.ttl_interval = 0.1
    e.open()
    try:
        now = dt.datetime.now(dt.timezone.utc)
        old, new = now - dt.timedelta(hours=2), now + dt.timedelta(hours=2)
        e.insert("db", "s", [{"_id": 1, "at": old}, {"_id": 2, "at": new}, {"_id": 3, "at": "not a date"},
                             {"_id": 4, "at": [new, old]}, {"_id": 5}, {"_id": 6, "at": old, "keep": True}])
        events = []
        e.listeners.append(lambda b: events.extend((ch.op, ch.key) for ch in b.changes))
        c = e.get_collection("db", "s")
        e.set_indexes(c, c.meta.indexes + [{"v": 2, "key": {"at": 1}, "name": "at_1", "expireAfterSeconds": 3600,
                                            "partialFilterExpression": {"keep": {"$exists": False}}}])
        deadline = time.time() + 10
        while time.time() < deadline and e.count("db", "s", {}) != 4:
            time.sleep(0.05)
        assert sorted(d["_id"] for d in e.find("db", "s", {}, as_raw=False)) == [2, 3, 5, 6]
        from mongolake.engine.records import DELETE
        assert sum(1 for op, _ in events if op == DELETE) == 2
    finally:
        e.close()
