"""The engine on Iceberg with position deletes (merge-on-read): a flush that changes a
few rows of a large file deletes them by position instead of rewriting the file, and
every read (scans, counts, point reads, index fetches, columnar group/top-k/pruned
scans, time travel, restart, compaction) gives what the same operations give on a
Delta engine (always copy-on-write); pyiceberg reads the same rows."""
from __future__ import annotations

import random

import bson
import pyarrow.compute as pc
import pytest
from pyiceberg.table import StaticTable

from mongolake.engine import Engine, columnar, flush
from mongolake.engine.reader import ScanStats

N = 600


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch):
    monkeypatch.setattr(flush, "POSITION_DELETE_MIN_ROWS", 100)
    monkeypatch.setattr(flush, "POSITION_DELETE_MAX_FRACTION", 0.10)


def _open(path, fmt):
    return Engine(str(path), table_format=fmt, flush_interval=3600, row_group_rows=64).open()


def _ice(e, coll="c"):
    c = e.get_collection("db", coll)
    return c, getattr(c.table, "inner", c.table)


def _deleted_rows(e, coll="c") -> int:
    c, _ = _ice(e, coll)
    return sum(len(f.deletes) for f in c.table.snapshot().files)


def _all(e, coll="c", flt=None):
    return sorted((bson.decode(r) for r in e.find("db", coll, flt or {})), key=lambda d: d["_id"])


def _pyiceberg(e, coll="c", snapshot_id=None):
    _, t = _ice(e, coll)
    static = StaticTable.from_metadata(t.metadata_uri(t.refresh_state().version))
    arrow = static.scan(snapshot_id=snapshot_id).to_arrow()
    if "_ml_deleted" in arrow.schema.names:
        arrow = arrow.filter(pc.invert(pc.fill_null(arrow.column("_ml_deleted"), False)))
    return sorted((bson.decode(r) for r in arrow.column("_doc").to_pylist()), key=lambda d: d["_id"])


def _check_same(ice, delta, coll="c"):
    got, want = _all(ice, coll), _all(delta, coll)
    assert got == want
    for flt in ({"g": 3}, {"n": {"$gte": 250}}, {"s": "v7"}, {"s": {"$in": ["changed", "v5", "r"]}},
                {"g": {"$in": [1, 2]}, "n": {"$lt": 400}}):
        assert ice.count("db", coll, flt) == delta.count("db", coll, flt), flt
        assert _all(ice, coll, flt) == _all(delta, coll, flt), flt
    assert ice.count("db", coll) == delta.count("db", coll) == len(want)
    st = ScanStats()
    assert len(list(ice.find("db", coll, {"s": "v5"}, stats=st))) == delta.count("db", coll, {"s": "v5"})
    assert st.index_name == "s_1"          # answered through the index (batched fetches by key)
    for i in (0, 1, 5, 17, 63, 64, 65, 128, 299, 300, 599, 600, 650, 10_000):
        assert ice.get("db", coll, i) == delta.get("db", coll, i), i
    spec = {"_id": "$g", "s": {"$sum": "$n"}, "c": {"$count": {}}, "m": {"$max": "$n"}}
    a = columnar.group(ice, "db", coll, {"n": {"$gte": 10}}, spec)
    b = columnar.group(delta, "db", coll, {"n": {"$gte": 10}}, spec)
    assert a is not None and b is not None
    assert sorted(a, key=lambda d: d["_id"]) == sorted(b, key=lambda d: d["_id"])
    ta = columnar.top_k(ice, "db", coll, {}, {"n": -1}, 5)
    tb = columnar.top_k(delta, "db", coll, {}, {"n": -1}, 5)
    assert ta is not None and [bson.decode(r) for r in ta] == [bson.decode(r) for r in tb]
    pa_ = columnar.scan_pruned(ice, "db", coll, {"g": {"$lt": 3}}, ["n"])
    pb = columnar.scan_pruned(delta, "db", coll, {"g": {"$lt": 3}}, ["n"])
    assert sorted(d["n"] for d in pa_) == sorted(d["n"] for d in pb)
    return got


def _both(tmp_path):
    return _open(tmp_path / "ice", "iceberg"), _open(tmp_path / "delta", "delta")


def _seed(engines, coll="c", options=None):
    for e in engines:
        if options:
            e.create_collection("db", coll, options)
        e.insert("db", coll, [{"_id": i, "g": i % 5, "n": i, "s": f"v{i % 10}"} for i in range(N)])
        c = e.get_collection("db", coll)
        e.set_indexes(c, c.meta.indexes + [{"v": 2, "key": {"s": 1}, "name": "s_1"}])
        e.flush()


def test_updates_and_deletes_become_position_deletes(tmp_path):
    ice, delta = _both(tmp_path)
    try:
        _seed((ice, delta))
        v_before = ice.get_collection("db", "c").table.snapshot().version
        files_before = {f.path for f in ice.get_collection("db", "c").table.snapshot().files}
        for e in (ice, delta):
            e.update("db", "c", {"_id": {"$in": [5, 64, 300]}}, {"$set": {"n": 10_000, "s": "changed"}}, multi=True)
            e.delete("db", "c", {"_id": {"$in": [17, 599]}})
            out = e.flush()
        snap = ice.get_collection("db", "c").table.snapshot()
        assert {f.path for f in snap.files} >= files_before           # nothing rewritten
        assert _deleted_rows(ice) == 5
        docs = _check_same(ice, delta)
        assert len(docs) == N - 2 and {d["_id"] for d in docs if d["s"] == "changed"} == {5, 64, 300}
        assert _pyiceberg(ice) == docs
        # time travel to before the deletes: the old rows, for us and for pyiceberg
        view = ice.snapshot_view("db", "c", version=v_before)
        assert all(not f.deletes for f in view.snapshot.files)
        old_snap_id = view.snapshot.snapshot_id
        assert len(_pyiceberg(ice, snapshot_id=old_snap_id)) == N
        # more changes on the same file accumulate; then restart
        for e in (ice, delta):
            e.update("db", "c", {"_id": {"$in": [5, 6, 7]}}, {"$inc": {"n": 1}}, multi=True)
            e.delete("db", "c", {"_id": 8})
            e.flush()
        assert _deleted_rows(ice) >= 8
        assert out is not None
        _check_same(ice, delta)
        ice.close()
        ice = _open(tmp_path / "ice", "iceberg")
        docs = _check_same(ice, delta)
        assert _pyiceberg(ice) == docs
        # compaction rewrites files with deletes and drops their delete files
        m = ice.compact("db", "c")
        assert m["files_rewritten"] >= 1
        assert _deleted_rows(ice) == 0
        _, t = _ice(ice)
        assert not t.refresh_state().head.deletes
        assert _check_same(ice, delta) == docs
        assert _pyiceberg(ice) == docs
        out = ice.vacuum("db", "c", retention_seconds=0)
        assert any("delete-" in p for p in out["files"])
        assert _check_same(ice, delta) == docs
    finally:
        ice.close()
        delta.close()


def test_many_changes_fall_back_to_rewrite(tmp_path):
    ice, delta = _both(tmp_path)
    try:
        _seed((ice, delta))
        for e in (ice, delta):
            e.update("db", "c", {"g": 0}, {"$set": {"s": "x"}}, multi=True)       # 20% of the rows
            e.flush()
        assert _deleted_rows(ice) == 0
        _check_same(ice, delta)
        # a few changes after a few earlier ones pass the threshold: the file is rewritten
        for e in (ice, delta):
            e.delete("db", "c", {"_id": {"$in": list(range(1, 600, 10))[:30]}})
            e.flush()
        for e in (ice, delta):
            e.delete("db", "c", {"_id": {"$in": list(range(2, 600, 10))[:40]}})
            e.flush()
        assert _deleted_rows(ice) <= 0.1 * N
        docs = _check_same(ice, delta)
        assert _pyiceberg(ice) == docs
    finally:
        ice.close()
        delta.close()


def test_random_workload_matches_delta(tmp_path):
    rnd = random.Random(8)
    ice, delta = _both(tmp_path)
    try:
        _seed((ice, delta))
        next_id = N
        for step in range(12):
            ops = []
            for _ in range(rnd.randint(1, 8)):
                kind = rnd.random()
                if kind < 0.45:
                    ops.append(("update", {"_id": rnd.randrange(next_id)}, {"$inc": {"n": rnd.randint(1, 9)}}))
                elif kind < 0.7:
                    ops.append(("delete", {"_id": rnd.randrange(next_id)}))
                elif kind < 0.85:
                    ops.append(("insert", {"_id": next_id, "g": next_id % 5, "n": next_id, "s": "new"}))
                    next_id += 1
                else:
                    ops.append(("replace", {"_id": rnd.randrange(next_id)}, {"g": 4, "n": -step, "s": "r"}))
            for e in (ice, delta):
                for op in ops:
                    if op[0] == "update":
                        e.update("db", "c", op[1], op[2])
                    elif op[0] == "delete":
                        e.delete("db", "c", op[1])
                    elif op[0] == "insert":
                        e.insert("db", "c", [op[1]])
                    else:
                        e.update("db", "c", op[1], op[2])
                if step % 3 != 2:
                    e.flush()
            _check_same(ice, delta)
        assert _deleted_rows(ice) > 0
        ice.flush()
        delta.flush()
        assert _pyiceberg(ice) == _check_same(ice, delta)
    finally:
        ice.close()
        delta.close()


def test_soft_delete_collection_with_position_deletes(tmp_path):
    ice, delta = _both(tmp_path)
    try:
        _seed((ice, delta), coll="s", options={"softDelete": True})
        for e in (ice, delta):
            e.delete("db", "s", {"_id": {"$in": [3, 4, 500]}})
            e.update("db", "s", {"_id": 10}, {"$set": {"s": "u"}})
            e.flush()
        assert _deleted_rows(ice, "s") == 4
        docs = _check_same(ice, delta, "s")
        assert _pyiceberg(ice, "s") == docs
        assert sorted(d["_id"] for d, _ in ice.find_deleted("db", "s")) == [3, 4, 500]
        for e in (ice, delta):
            e.restore("db", "s", {"_id": 4})
            e.flush()
        docs = _check_same(ice, delta, "s")
        assert 4 in {d["_id"] for d in docs}
        assert _pyiceberg(ice, "s") == docs
    finally:
        ice.close()
        delta.close()


def test_reinserted_ids_transactions_and_time_travel(tmp_path):
    from mongolake.engine.txn import using

    ice, delta = _both(tmp_path)
    try:
        _seed((ice, delta))
        txs = {}
        for e in (ice, delta):
            txs[e] = e.begin_transaction()             # a snapshot from before the deletes
            e.delete("db", "c", {"_id": {"$in": [10, 20, 30]}})
            e.flush()
            e.insert("db", "c", [{"_id": 10, "g": 9, "n": -10, "s": "again"}])   # same _id, new document
            e.update("db", "c", {"_id": 40}, {"$set": {"g": 9}})
            e.flush()
            e.update("db", "c", {"_id": 40}, {"$set": {"g": 8}})               # its newest version changes again
            e.update("db", "c", {"_id": 41}, {"$set": {"g": 8}})
            e.flush()
        assert _deleted_rows(ice) == 5                   # 10, 20, 30, 40, 41 of the big file
        docs = _check_same(ice, delta)
        assert [d for d in docs if d["_id"] in (10, 20, 40)] == [
            {"_id": 10, "g": 9, "n": -10, "s": "again"}, {"_id": 40, "g": 8, "n": 40, "s": "v0"}]
        assert _pyiceberg(ice) == docs
        for e in (ice, delta):
            with using(txs[e]):
                assert e.get("db", "c", 20) == {"_id": 20, "g": 0, "n": 20, "s": "v0"}
                assert e.count("db", "c", {"g": 0}) == N // 5
                assert len(list(e.find("db", "c", {}))) == N
            e.abort_transaction(txs[e])
        # every version of the Iceberg table reads like pyiceberg's view of the same snapshot
        c, t = _ice(ice)
        for v in range(1, c.table.snapshot().version + 1):
            view = ice.snapshot_view("db", "c", version=v)
            ours = sorted((bson.decode(r) for r, _ in ice.reader.scan(view.table, view.snapshot,
                                                                       ice.plan(view, {}), set())),
                          key=lambda d: d["_id"])
            assert ours == _pyiceberg(ice, snapshot_id=view.snapshot.snapshot_id), v
    finally:
        ice.close()
        delta.close()
