"""Index-provided sort: a find whose sort matches an index walks it in order and
stops after the limit; results equal a collection scan's (sorted in memory) on
randomised data, through writes, flush, compaction and restart."""
from __future__ import annotations

import random

from bson.int64 import Int64

from mongolake.engine.engine import Engine
from mongolake.engine.reader import ScanStats
from mongolake.query import keystring
from mongolake.query.sort import parse_sort

INDEXES = [
    {"v": 2, "key": {"a": 1}, "name": "a_1"},
    {"v": 2, "key": {"b": -1}, "name": "b_-1"},
    {"v": 2, "key": {"g": 1, "a": -1}, "name": "g_1_a_-1"},
    {"v": 2, "key": {"s": 1, "n.x": 1}, "name": "s_1_n.x_1"},
    {"v": 2, "key": {"m": 1}, "name": "m_1"},                 # multikey: never provides a sort
    {"v": 2, "key": {"t": 1}, "name": "t_1", "sparse": True},
]

SORTS = [
    {"a": 1}, {"a": -1}, {"a": 1, "_id": 1}, {"a": -1, "_id": -1}, {"b": 1}, {"b": -1}, {"b": -1, "_id": 1},
    {"g": 1, "a": -1}, {"g": -1, "a": 1}, {"g": 1, "a": 1}, {"a": -1, "_id": 1}, {"s": 1}, {"s": -1, "n.x": -1},
    {"n.x": 1}, {"m": 1}, {"t": 1}, {"_id": -1}, {"g": 1}, {"a": 1, "b": 1},
]


def _scalar(rnd: random.Random):
    k = rnd.random()
    if k < 0.45:
        return rnd.randint(-20, 20)
    if k < 0.55:
        return rnd.choice([0.5, -0.0, 2.0, Int64(3), float("nan"), float("inf")])
    if k < 0.7:
        return rnd.choice(["x", "y", "xy", "", "x\x00", "Y"])
    if k < 0.78:
        return None
    if k < 0.84:
        return {"z": rnd.randint(0, 2)}
    return rnd.choice([True, False, b"\x01"])


def _doc(rnd: random.Random, i: int) -> dict:
    d: dict = {"_id": i}
    for f in ("a", "b", "s", "t"):
        if rnd.random() < 0.85:
            d[f] = _scalar(rnd)
    d["g"] = rnd.randint(0, 3)
    if rnd.random() < 0.8:
        d["n"] = rnd.choice([{"x": _scalar(rnd)}, {"y": 1}, 5])
    d["m"] = [rnd.randint(0, 5) for _ in range(rnd.randint(0, 3))] if rnd.random() < 0.5 else rnd.randint(0, 5)
    return d


def _filters(rnd: random.Random) -> list[dict]:
    out: list[dict] = [{}, {}, {}]
    for _ in range(12):
        f = rnd.choice(["a", "b", "g", "s", "t"])
        r = rnd.random()
        if r < 0.3:
            q = {f: _scalar(rnd)}
        elif r < 0.6:
            lo = rnd.randint(-20, 10)
            q = {f: {"$gte": lo, "$lt": lo + rnd.randint(1, 15)}}
        elif r < 0.8:
            q = {f: {"$in": [_scalar(rnd), _scalar(rnd)]}}
        else:
            q = {f: {"$gt": _scalar(rnd)}}
        if rnd.random() < 0.3:
            q["g"] = rnd.randint(0, 3)
        out.append(q)
    out.append({"g": 2})
    out.append({"g": {"$in": [1, 2]}})
    return out


def _reference(e: Engine, q: dict, sort: dict, skip: int, limit: int) -> list[dict]:
    docs = list(e.find("db", "c", q, as_raw=False, hint={"$natural": 1}))
    docs.sort(key=parse_sort(sort).key)
    docs = docs[skip:]
    return docs[:limit] if limit else docs


def _check(e: Engine, rnd: random.Random, filters: list[dict], rounds: int = 120) -> int:
    """Compare indexed finds with scans; returns how many walks provided the sort."""
    provided = 0
    for _ in range(rounds):
        q = rnd.choice(filters)
        sort = rnd.choice(SORTS)
        limit = rnd.choice([0, 1, 3, 10, 50])
        skip = rnd.choice([0, 0, 2])
        st = ScanStats()
        got = list(e.find("db", "c", q, sort=sort, skip=skip, limit=limit, as_raw=False, stats=st))
        want = _reference(e, q, sort, skip, limit)
        srt = parse_sort(sort)
        ctx = (q, sort, skip, limit, getattr(st, "index_name", None))
        assert len(got) == len(want), ctx
        # the same sort values in the same order (ties may come in another order) ...
        assert all(srt.compare(x, y) == 0 for x, y in zip(got, want)), ctx
        matching = {d["_id"] for d in e.find("db", "c", q, as_raw=False, hint={"$natural": 1})}
        assert {d["_id"] for d in got} <= matching and len({d["_id"] for d in got}) == len(got), ctx
        if not limit and not skip:              # ... and exactly the same documents when no tie is cut
            assert sorted(d["_id"] for d in got) == sorted(d["_id"] for d in want), ctx
        if "_id" in sort:
            assert [d["_id"] for d in got] == [d["_id"] for d in want], ctx
        provided += bool(getattr(st, "index_sorted", False))
    return provided


def _open(path: str) -> Engine:
    return Engine(path, flush_interval=3600, row_group_rows=64).open()


def test_sort_by_index_differential_through_writes_flush_compaction_restart(tmp_path):
    rnd = random.Random(11)
    path = str(tmp_path / "store")
    e = _open(path)
    e.insert("db", "c", [_doc(rnd, i) for i in range(500)])
    c = e.get_collection("db", "c")
    e.set_indexes(c, c.meta.indexes + INDEXES)
    filters = _filters(rnd)
    assert _check(e, rnd, filters) > 30            # many of these walks provide the sort
    e.flush()
    for step in range(4):
        for i in rnd.sample(range(700), 25):
            e.update("db", "c", {"_id": i}, _doc(rnd, i), upsert=True)
        e.update("db", "c", {"g": rnd.randint(0, 3)}, {"$set": {"a": _scalar(rnd)}}, multi=True)
        e.delete("db", "c", {"_id": {"$in": rnd.sample(range(700), 15)}})
        e.insert("db", "c", [_doc(rnd, 1000 + step * 50 + j) for j in range(20)])
        _check(e, rnd, filters, 60)
        if step == 1:
            e.flush()
        if step == 2:
            e.compact("db", "c")
    e.close(flush=False)
    e = _open(path)
    assert _check(e, rnd, filters, 80) > 10
    e.close()


def test_limit_stops_the_walk_and_plans_are_reported(tmp_path):
    e = _open(str(tmp_path / "store"))
    try:
        e.insert("db", "c", [{"_id": i, "a": (i * 37) % 5000, "g": i % 4, "pad": "x" * 20} for i in range(5000)])
        c = e.get_collection("db", "c")
        e.set_indexes(c, c.meta.indexes + [INDEXES[0], INDEXES[2]])
        e.flush()
        st = ScanStats()
        got = [d["a"] for d in e.find("db", "c", {}, sort={"a": -1}, limit=5, as_raw=False, stats=st)]
        assert got == [4999, 4998, 4997, 4996, 4995]
        assert st.index_name == "a_1" and st.index_sorted and st.index_direction == "backward"
        assert st.keys_examined <= 64 and st.docs_examined <= 64        # one small batch, not 5000
        st = ScanStats()
        got = [(d["g"], d["a"]) for d in e.find("db", "c", {"g": 2}, sort={"a": -1}, limit=3, as_raw=False, stats=st)]
        want = sorted(((d["g"], d["a"]) for d in e.find("db", "c", {"g": 2}, as_raw=False)), key=lambda t: -t[1])[:3]
        assert got == want and st.index_name == "g_1_a_-1" and st.index_direction == "forward"
        assert st.docs_examined <= 64
        # without a limit and without bounds, a scan and an in-memory sort are cheaper
        st = ScanStats()
        assert len(list(e.find("db", "c", {}, sort={"a": 1}, stats=st))) == 5000
        assert not hasattr(st, "index_name")
        # a bounded query still uses its index, and the walk provides the order
        st = ScanStats()
        got = [d["a"] for d in e.find("db", "c", {"a": {"$gte": 100, "$lt": 110}}, sort={"a": 1}, as_raw=False,
                                      stats=st)]
        assert got == list(range(100, 110)) and st.index_sorted
        # a collation other than simple orders strings differently: sort in memory
        from mongolake.query.collation import parse_collation
        st = ScanStats()
        list(e.find("db", "c", {"a": {"$gte": 100, "$lt": 110}}, sort={"a": 1}, stats=st,
                    collation=parse_collation({"locale": "en", "strength": 2})))
        assert st.index_name == "a_1" and not st.index_sorted
    finally:
        e.close()


def test_stale_entry_does_not_place_a_document_out_of_order(tmp_path):
    e = _open(str(tmp_path / "store"))
    try:
        e.insert("db", "c", [{"_id": i, "a": i} for i in range(100)])
        c = e.get_collection("db", "c")
        e.set_indexes(c, c.meta.indexes + [INDEXES[0]])
        (ix,) = e.indexes.for_collection(c)
        # an entry no current version holds (the index may keep stale entries)
        ix.keys.add((keystring.encode_key(-5), keystring.encode_key(50)))
        got = [d["_id"] for d in e.find("db", "c", {}, sort={"a": 1}, limit=3, as_raw=False)]
        assert got == [0, 1, 2]
        got = [d["_id"] for d in e.find("db", "c", {"a": {"$lt": 100}}, sort={"a": 1}, as_raw=False)]
        assert got == list(range(100))
    finally:
        e.close()


def test_index_top_k_for_sort_limit_pipelines(tmp_path):
    e = _open(str(tmp_path / "store"))
    try:
        rnd = random.Random(5)
        e.insert("db", "c", [{"_id": i, "a": rnd.randint(0, 50), "g": i % 3} for i in range(600)])
        c = e.get_collection("db", "c")
        assert e.index_top_k("db", "c", {}, {"a": 1}, 5) is None         # no index yet
        e.set_indexes(c, c.meta.indexes + [INDEXES[0]])
        for flt, sort in [({}, {"a": -1, "_id": -1}), ({"g": 1}, {"a": 1, "_id": 1}),
                          ({"a": {"$gt": 10}}, {"a": 1, "_id": 1})]:
            st = ScanStats()
            got = e.index_top_k("db", "c", flt, sort, 7, stats=st)
            assert got == _reference(e, flt, sort, 0, 7) and st.index_sorted
        assert e.index_top_k("db", "c", {}, {"g": 1}, 5) is None         # no index has that order
    finally:
        e.close()


def test_sorted_walks_with_concurrent_writers(tmp_path):
    import threading

    e = _open(str(tmp_path / "store"))
    try:
        rnd = random.Random(8)
        e.insert("db", "c", [{"_id": i, "a": rnd.randint(0, 300), "g": i % 4} for i in range(2000)])
        c = e.get_collection("db", "c")
        e.set_indexes(c, c.meta.indexes + [INDEXES[0], INDEXES[2]])
        stop = threading.Event()
        errors: list = []

        def writer(seed: int) -> None:
            r = random.Random(seed)
            try:
                while not stop.is_set():
                    i = r.randrange(2500)
                    if r.random() < 0.2:
                        e.delete("db", "c", {"_id": i})
                    else:
                        e.update("db", "c", {"_id": i}, {"$set": {"a": r.randint(0, 300), "g": i % 4}}, upsert=True)
            except Exception as ex:              # reported by the assertion below
                errors.append(ex)

        ts = [threading.Thread(target=writer, args=(s,)) for s in range(2)]
        for t in ts:
            t.start()
        try:
            for k in range(40):
                q = rnd.choice([{}, {"g": rnd.randrange(4)}, {"a": {"$gte": rnd.randint(0, 300)}}])
                sort = rnd.choice([{"a": 1, "_id": 1}, {"a": -1, "_id": -1}, {"g": 1, "a": -1}])
                limit = rnd.choice([1, 5, 40])
                # while writers run: results come back sorted and matching (at the time each was read)
                got = list(e.find("db", "c", q, sort=sort, limit=limit, as_raw=False))
                assert len(got) <= limit
                if k % 4 == 0:
                    with e.lock:                  # a quiescent moment: exactly the scan's answer
                        st = ScanStats()
                        got = list(e.find("db", "c", q, sort=sort, limit=limit, as_raw=False, stats=st))
                        want = _reference(e, q, sort, 0, limit)
                        srt = parse_sort(sort)
                        assert len(got) == len(want) and all(srt.compare(x, y) == 0 for x, y in zip(got, want))
                        if "_id" in sort:
                            assert got == want
                        if not q or (next(iter(sort)) == "a" and "a" in q):   # else an index bounding q wins
                            assert st.index_sorted, (q, sort, limit, getattr(st, "index_name", None))
        finally:
            stop.set()
            for t in ts:
                t.join()
        assert not errors
    finally:
        e.close()
