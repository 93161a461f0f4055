"""Soft deletes through the Engine API: invisible to reads and counts, kept in the table
as flagged rows (tombstone files), listable, restorable, purged after a retention, and
read back by deltalake and pyiceberg with the flag column."""
import glob
import time
from datetime import datetime, timezone

import bson
import pytest

from mongolake.engine import Engine
from mongolake.engine import softdelete
from mongolake.errors import MongoError
from tests.engine.enginetools import eng, ids, reopen  # noqa: F401


def seed(e, n=20, coll="c", options=None):
    if options is not None:
        e.create_collection("db", coll, options)
    e.insert("db", coll, [{"_id": i, "g": i % 4, "name": f"n{i}"} for i in range(n)])


def deleted_ids(e, coll="c", flt=None):
    return [d["_id"] for d, _at in e.find_deleted("db", coll, flt)]


@pytest.mark.parametrize("flush_before", [False, True])
@pytest.mark.parametrize("flush_after", [False, True])
def test_soft_delete_hides_documents_and_keeps_them(eng, flush_before, flush_after):
    seed(eng)
    if flush_before:
        eng.flush()
    t0 = datetime.now(timezone.utc)
    r = eng.delete("db", "c", {"g": 1}, soft=True)
    assert r.n == 5
    if flush_after:
        eng.flush()
    live = [i for i in range(20) if i % 4 != 1]
    assert ids(eng.find("db", "c", as_raw=False)) == live
    assert eng.count("db", "c") == 15
    assert eng.count("db", "c", {"g": 1}) == 0
    assert eng.get("db", "c", 1) is None
    assert list(eng.find("db", "c", {"_id": 5})) == []
    assert eng.distinct("db", "c", "g") == [0, 2, 3]
    assert not eng.exists("db", "c", {"_id": {"$in": [1, 5, 9]}})
    got = eng.find_deleted("db", "c")
    assert [d["_id"] for d, _ in got] == [1, 5, 9, 13, 17]
    assert got[0][0] == {"_id": 1, "g": 1, "name": "n1"}
    assert all(abs((at - t0).total_seconds()) < 30 for _d, at in got)
    assert deleted_ids(eng, flt={"_id": {"$gt": 10}}) == [13, 17]
    assert eng.count_deleted("db", "c") == 5
    st = eng.collection_stats("db", "c")
    assert st["records"] == 15 and st["soft_deleted"] == 5


def test_hard_delete_stays_the_default(eng):
    seed(eng)
    eng.delete("db", "c", {"g": 1})
    eng.flush()
    assert eng.count("db", "c") == 15
    assert eng.find_deleted("db", "c") == []
    assert eng.collection_stats("db", "c")["tombstone_files"] == 0


def test_collection_option_makes_deletes_soft_and_per_call_overrides(eng):
    seed(eng, options={"softDelete": True})
    assert eng.get_collection("db", "c").meta.options["softDelete"] == {"enabled": True}
    eng.delete("db", "c", {"_id": 0})
    eng.delete("db", "c", {"_id": 1}, soft=False)
    doc, _leo = eng.find_and_modify("db", "c", {"_id": 2}, remove=True)
    assert doc["_id"] == 2
    eng.flush()
    assert deleted_ids(eng) == [0, 2]
    assert eng.count("db", "c") == 17


def test_restore_brings_documents_back(eng, tmp_path):
    seed(eng)
    eng.delete("db", "c", {"g": 2}, soft=True)
    eng.flush()
    eng.delete("db", "c", {"g": 3}, soft=True)           # these stay in the memtable
    assert eng.count("db", "c") == 10
    r = eng.restore("db", "c", {"_id": {"$in": [2, 3, 6]}})
    assert r.n == 3 and sorted(r.inserted_ids) == [2, 3, 6]
    assert eng.count("db", "c") == 13
    assert eng.get("db", "c", 6) == {"_id": 6, "g": 2, "name": "n6"}
    assert deleted_ids(eng) == [7, 10, 11, 14, 15, 18, 19]
    eng.flush()
    assert deleted_ids(eng) == [7, 10, 11, 14, 15, 18, 19]
    e2 = reopen(eng, tmp_path)
    try:
        assert e2.count("db", "c") == 13
        assert [d["_id"] for d, _ in e2.find_deleted("db", "c")] == [7, 10, 11, 14, 15, 18, 19]
        assert e2.restore("db", "c").n == 7
        assert e2.count("db", "c") == 20 and e2.find_deleted("db", "c") == []
    finally:
        e2.close()


def test_soft_deletes_survive_a_crash_via_the_wal(eng, tmp_path):
    seed(eng)
    eng.flush()
    eng.delete("db", "c", {"_id": {"$lt": 3}}, soft=True)
    eng.wal.close()                       # no flush: the tombstones exist only in the WAL
    eng.opened = False
    e2 = Engine(str(tmp_path / "lake"), flush_interval=3600, table_format=eng.table_format).open()
    try:
        assert e2.count("db", "c") == 17
        assert [d["_id"] for d, _ in e2.find_deleted("db", "c")] == [0, 1, 2]
        e2.flush()
        assert [d["_id"] for d, _ in e2.find_deleted("db", "c")] == [0, 1, 2]
    finally:
        e2.close()


def test_reusing_a_soft_deleted_id_supersedes_the_tombstone(eng):
    seed(eng, n=5)
    eng.delete("db", "c", {"_id": 1}, soft=True)
    eng.flush()
    eng.insert("db", "c", [{"_id": 1, "new": True}])
    assert deleted_ids(eng) == []
    eng.flush()
    assert deleted_ids(eng) == []
    assert eng.get("db", "c", 1) == {"_id": 1, "new": True}
    assert eng.count("db", "c") == 5


def test_restore_checks_unique_indexes(eng):
    seed(eng, n=3)
    c = eng.get_collection("db", "c")
    eng.set_indexes(c, c.meta.indexes + [{"v": 2, "key": {"name": 1}, "name": "name_1", "unique": True}])
    eng.delete("db", "c", {"_id": 1}, soft=True)
    eng.insert("db", "c", [{"_id": 10, "name": "n1"}])
    with pytest.raises(MongoError) as ei:
        eng.restore("db", "c")
    assert ei.value.code == 11000
    assert eng.count("db", "c") == 3 and deleted_ids(eng) == [1]


def test_purge_after_retention(eng):
    seed(eng, options={"softDelete": {"enabled": True, "retentionSeconds": 3600}})
    eng.delete("db", "c", {"g": 0})
    m = eng.purge_deleted("db", "c")              # nothing is an hour old yet
    assert m["purged"] == 0 and deleted_ids(eng) == [0, 4, 8, 12, 16]
    m = eng.compact("db", "c")
    assert m["purged"] == 0 and eng.count_deleted("db", "c") == 5
    m = eng.purge_deleted("db", "c", older_than_seconds=0, filter={"_id": {"$lt": 5}})
    assert m["purged"] == 2 and deleted_ids(eng) == [8, 12, 16]
    assert eng.purge_deleted("db", "c", older_than_seconds=0, dry_run=True)["purged"] == 3
    assert deleted_ids(eng) == [8, 12, 16]
    c = eng.get_collection("db", "c")
    eng.set_options(c, {"softDelete": {"enabled": True, "retentionSeconds": 0}})
    time.sleep(0.01)
    m = eng.vacuum("db", "c", retention_seconds=7 * 86400)
    assert m["purged"] == 3 and eng.find_deleted("db", "c") == []
    assert eng.count("db", "c") == 15
    assert eng.collection_stats("db", "c")["tombstone_files"] == 0


def test_compaction_keeps_tombstones_apart(eng):
    eng.create_collection("db", "c", {"softDelete": True})
    for k in range(4):
        eng.insert("db", "c", [{"_id": k * 10 + i, "v": i} for i in range(10)])
        eng.delete("db", "c", {"_id": k * 10})
        eng.flush()
    st = eng.collection_stats("db", "c")
    assert st["tombstone_files"] == 4
    m = eng.compact("db", "c")
    assert m["files_rewritten"] == 4 and m["tombstone_files_after"] == 1
    assert eng.count("db", "c") == 36
    assert deleted_ids(eng) == [0, 10, 20, 30]
    assert eng.restore("db", "c", {"_id": 20}).n == 1
    eng.flush()
    assert eng.count("db", "c") == 37 and deleted_ids(eng) == [0, 10, 30]


def test_transactions_see_soft_deletes_as_deletes(eng):
    from mongolake.engine.txn import using

    seed(eng, n=4)
    eng.flush()
    tx = eng.begin_transaction()
    with using(tx):
        eng.delete("db", "c", {"_id": 1}, soft=True)
        assert eng.count("db", "c") == 3
        with pytest.raises(MongoError) as ei:
            eng.restore("db", "c")
        assert ei.value.code == 263
    eng.commit_transaction(tx)
    assert eng.count("db", "c") == 3 and deleted_ids(eng) == [1]


def test_time_travel_hides_tombstones(eng):
    seed(eng, n=6)
    eng.flush()
    v1 = eng.get_collection("db", "c").snapshot.version
    eng.delete("db", "c", {"_id": 2}, soft=True)
    eng.flush()
    past = eng.snapshot_view("db", "c", version=v1)
    assert past.snapshot.num_records == 6
    now = eng.snapshot_view("db", "c")
    assert now.snapshot.num_records == 5 and len(now.snapshot.tomb_files) == 1


def test_soft_deletes_emit_delete_events(eng):
    seed(eng, n=3)
    after = eng.wal.last_seq
    eng.delete("db", "c", {"_id": 1}, soft=True)
    eng.restore("db", "c")
    recs = [r for r in eng.changelog.read(after) if r.coll == "c"]
    assert [(r.op, r.document_key) for r in recs] == [("d", {"_id": 1}), ("i", {"_id": 1})]


def test_option_validation(eng):
    for bad, code in [("yes", 14), ({"enabled": True, "retentionSeconds": -1}, 2), ({"enabled": True, "x": 1}, 40415),
                      ({}, 9)]:
        with pytest.raises(MongoError) as ei:
            eng.create_collection("db", "bad", {"softDelete": bad})
        assert ei.value.code == code, bad
    eng.create_collection("db", "ok", {"softDelete": {"enabled": 1, "retentionSeconds": 60}})
    assert eng.get_collection("db", "ok").meta.options["softDelete"] == {"enabled": True, "retentionSeconds": 60}


def test_a_user_field_named_like_the_flag_is_not_confused(eng):
    eng.insert("db", "c", [{"_id": 1, "_ml_deleted": True}, {"_id": 2, "_ml_deleted": False}])
    eng.delete("db", "c", {"_id": 2}, soft=True)
    eng.flush()
    assert eng.count("db", "c", {"_ml_deleted": True}) == 1
    assert eng.count("db", "c", {"_ml_deleted": False}) == 0
    assert "_ml_deleted" not in eng.get_schema("db", "c")
    eng.set_schema("db", "c", {"x": "int"})
    assert eng.count("db", "c") == 1 and deleted_ids(eng) == [2]


def test_deltalake_sees_the_flag_columns(tmp_path):
    from deltalake import DeltaTable

    e = Engine(str(tmp_path / "lake"), flush_interval=3600, table_format="delta").open()
    try:
        seed(e, n=10)
        e.flush()
        e.delete("db", "c", {"_id": {"$in": [3, 4]}}, soft=True)
        e.flush()
    finally:
        e.close()
    t = DeltaTable(str(tmp_path / "lake" / "db" / "c")).to_pyarrow_table()
    assert t.num_rows == 10
    rows = {bson.decode(r["_doc"])["_id"]: r for r in t.to_pylist()}
    assert {i for i, r in rows.items() if r["_ml_deleted"]} == {3, 4}
    assert all(rows[i]["_ml_deleted_at"] is not None for i in (3, 4))
    assert rows[0]["_ml_deleted"] is None and rows[0]["_ml_deleted_at"] is None
    assert rows[3]["name"] == "n3"                 # the shredded columns are there too


def test_pyiceberg_sees_the_flag_columns(tmp_path):
    from pyiceberg.table import StaticTable

    e = Engine(str(tmp_path / "lake"), flush_interval=3600, table_format="iceberg").open()
    try:
        seed(e, n=10)
        e.flush()
        e.delete("db", "c", {"_id": {"$in": [3, 4]}}, soft=True)
        e.flush()
    finally:
        e.close()
    meta = sorted(glob.glob(str(tmp_path / "lake" / "db" / "c" / "metadata" / "*.metadata.json")))[-1]
    t = StaticTable.from_metadata(meta).scan().to_arrow()
    assert t.num_rows == 10
    rows = {bson.decode(r["_doc"])["_id"]: r for r in t.to_pylist()}
    assert {i for i, r in rows.items() if r["_ml_deleted"]} == {3, 4}
    assert rows[4]["_ml_deleted_at"] is not None and rows[5]["_ml_deleted_at"] is None
    live = StaticTable.from_metadata(meta).scan(row_filter="_ml_deleted IS NULL").to_arrow()
    assert sorted(bson.decode(r)["_id"] for r in live.column("_doc").to_pylist()) == [0, 1, 2, 5, 6, 7, 8, 9]


def test_live_view_splits_files():
    from mongolake.formats.base import DataFile, Snapshot
    import pyarrow as pa

    live = DataFile("a.parquet", 10, 3)
    tomb = DataFile("b.parquet", 10, 2, tags={softdelete.TOMB_TAG: "1"})
    schema = pa.schema([pa.field("_id", pa.string()), *softdelete.SYSTEM_FIELDS])
    v = softdelete.live_view(Snapshot(1, 0, schema, (live, tomb)))
    assert v.files == (live,) and v.tomb_files == (tomb,) and v.num_records == 3
    assert v.schema.names == ["_id"] and v.has_system_columns
