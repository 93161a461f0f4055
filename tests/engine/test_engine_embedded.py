"""The Engine as an embedded Python API: writes, flush, restart, time travel, delta-rs read-back."""
import bson
import pytest
from bson import ObjectId
from deltalake import DeltaTable

from mongolake.engine import Engine
from mongolake.errors import MongoError
from tests.engine.enginetools import eng, ids, reopen  # noqa: F401


def test_insert_find_memtable_and_after_flush(eng):
    eng.insert("db", "c", [{"_id": i, "a": i % 3, "s": f"x{i}"} for i in range(100)])
    assert eng.count("db", "c") == 100
    assert ids(eng.find("db", "c", {"a": 1}, as_raw=False)) == [i for i in range(100) if i % 3 == 1]
    eng.flush()
    assert eng.count("db", "c") == 100
    assert ids(eng.find("db", "c", {"a": 1}, as_raw=False)) == [i for i in range(100) if i % 3 == 1]
    assert eng.get("db", "c", 42) == {"_id": 42, "a": 0, "s": "x42"}


def test_updates_and_deletes_of_flushed_documents(eng, tmp_path):
    eng.insert("db", "c", [{"_id": i, "v": 0} for i in range(50)])
    eng.flush()
    r = eng.update("db", "c", {"_id": {"$lt": 10}}, {"$inc": {"v": 5}}, multi=True)
    assert (r.n, r.modified) == (10, 10)
    assert eng.delete("db", "c", {"_id": {"$gte": 45}}).n == 5
    assert eng.count("db", "c") == 45
    assert eng.count("db", "c", {"v": 5}) == 10
    eng.flush()
    assert eng.count("db", "c") == 45
    assert eng.count("db", "c", {"v": 5}) == 10
    e2 = reopen(eng, tmp_path)
    try:
        assert e2.count("db", "c") == 45
        assert e2.get("db", "c", 3)["v"] == 5
        assert e2.get("db", "c", 46) is None
    finally:
        e2.close()


def test_unflushed_writes_survive_reopen_via_wal(eng, tmp_path):
    eng.insert("db", "c", [{"_id": 1, "x": 1}])
    eng.flush()
    eng.insert("db", "c", [{"_id": 2, "x": 2}])
    eng.update("db", "c", {"_id": 1}, {"$set": {"x": 10}})
    eng.wal.close()          # simulate a crash: no flush
    eng.opened = False
    e2 = Engine(str(tmp_path / "lake"), flush_interval=3600, table_format=eng.table_format).open()
    try:
        assert e2.get("db", "c", 1) == {"_id": 1, "x": 10}
        assert e2.get("db", "c", 2) == {"_id": 2, "x": 2}
    finally:
        e2.close()


def test_duplicate_id_and_invalid_ids(eng):
    eng.insert("db", "c", [{"_id": 1}])
    res = eng.insert("db", "c", [{"_id": 2}, {"_id": 1}, {"_id": 3}], ordered=True)
    assert res.n == 1 and res.errors[0][0] == 1 and res.errors[0][1].code == 11000
    res = eng.insert("db", "c", [{"_id": 1}, {"_id": 4}], ordered=False)
    assert res.n == 1 and len(res.errors) == 1
    res = eng.insert("db", "c", [{"_id": [1, 2]}])
    assert res.errors and res.errors[0][1].code == 2
    assert eng.count("db", "c") == 3
    eng.flush()
    res = eng.insert("db", "c", [{"_id": 1.0}])      # equal to 1 numerically
    assert res.errors and res.errors[0][1].code == 11000


def test_generated_object_ids_first(eng):
    res = eng.insert("db", "c", [{"a": 1}])
    (oid,) = res.inserted_ids
    assert isinstance(oid, ObjectId)
    doc = next(eng.find("db", "c", {}, as_raw=False))
    assert list(doc) == ["_id", "a"]


@pytest.fixture
def delta_eng(tmp_path):
    e = Engine(str(tmp_path / "lake"), flush_interval=3600, table_format="delta").open()
    yield e
    e.close()


def test_delta_rs_reads_the_table(delta_eng, tmp_path):
    eng = delta_eng
    eng.insert("db", "people", [{"_id": i, "name": f"n{i}", "age": 20 + i, "profile": {"level": i % 4}}
                                for i in range(30)])
    eng.flush()
    eng.update("db", "people", {"age": {"$gte": 45}}, {"$set": {"name": "old"}}, multi=True)
    eng.flush()
    path = str(tmp_path / "lake" / "db" / "people")
    dt = DeltaTable(path)
    t = dt.to_pyarrow_table()
    assert t.num_rows == 30
    docs = {bson.decode(r)["_id"]: bson.decode(r) for r in t.column("_doc").to_pylist()}
    assert docs[29]["name"] == "old" and docs[1]["name"] == "n1"
    rows = {r["_id"]: r for r in t.select(["_id", "age", "name"]).to_pylist()}
    assert rows["5"]["age"] == 25
    # time travel: version 1 is the first flush
    old = DeltaTable(path, version=1).to_pyarrow_table()
    assert sorted(bson.decode(r)["name"] for r in old.column("_doc").to_pylist()).count("old") == 0


def test_time_travel_snapshot_view(eng):
    eng.insert("db", "c", [{"_id": 1, "v": 1}])
    eng.flush()
    v1 = eng.get_collection("db", "c").snapshot.version
    eng.update("db", "c", {"_id": 1}, {"$set": {"v": 2}})
    eng.flush()
    view = eng.snapshot_view("db", "c", version=v1)
    (raw, _), = list(eng.reader.scan(view.table, view.snapshot, eng.plan(view, {}), set()))
    assert bson.decode(raw)["v"] == 1
    assert [h["version"] for h in eng.list_snapshots("db", "c")][0] >= v1 + 1


def test_compact_keeps_documents(eng):
    for k in range(5):
        eng.insert("db", "c", [{"_id": k * 100 + i, "k": k} for i in range(20)])
        eng.flush()
    before = len(eng.get_collection("db", "c").snapshot.files)
    m = eng.compact("db", "c")
    assert m["files_rewritten"] == before
    assert len(eng.get_collection("db", "c").snapshot.files) < before
    assert eng.count("db", "c") == 100
    assert eng.count("db", "c", {"k": 3}) == 20


def test_drop_and_rename(eng):
    eng.insert("db", "a", [{"_id": 1}])
    eng.flush()
    eng.rename_collection("db", "a", "db", "b")
    assert eng.get_collection("db", "a") is None
    assert eng.count("db", "b") == 1
    assert eng.drop_collection("db", "b")
    assert eng.list_databases() == []
    with pytest.raises(MongoError) as ei:
        eng.create_collection("db", "bad$name")
    assert ei.value.code == 73


def test_pyiceberg_reads_the_table(tmp_path):
    import glob

    from pyiceberg.table import StaticTable

    e = Engine(str(tmp_path / "lake"), flush_interval=3600, table_format="iceberg").open()
    try:
        e.insert("db", "people", [{"_id": i, "name": f"n{i}", "age": 20 + i} for i in range(30)])
        e.flush()
        e.update("db", "people", {"age": {"$gte": 45}}, {"$set": {"name": "old"}}, multi=True)
        e.delete("db", "people", {"_id": 0})
        e.flush()
    finally:
        e.close()
    meta = sorted(glob.glob(str(tmp_path / "lake" / "db" / "people" / "metadata" / "*.metadata.json")))[-1]
    t = StaticTable.from_metadata(meta)
    rows = t.scan().to_arrow()
    assert rows.num_rows == 29
    docs = {bson.decode(r)["_id"]: bson.decode(r) for r in rows.column("_doc").to_pylist()}
    assert docs[29]["name"] == "old" and docs[1]["name"] == "n1" and 0 not in docs
    snaps = t.metadata.snapshots
    first_data = [s for s in snaps if t.scan(snapshot_id=s.snapshot_id).to_arrow().num_rows == 30]
    assert first_data, "an older snapshot still shows the 30 original rows"


def test_dates_outside_years_1_to_9999_flush(eng):
    from bson.datetime_ms import DatetimeMS
    import datetime as dt

    eng.insert("db", "c", [{"_id": 1, "d": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)},
                           {"_id": 2, "d": DatetimeMS(2 ** 62)}, {"_id": 3, "d": DatetimeMS(-2 ** 62)}])
    assert eng.flush()["files_added"] == 1
    assert eng.get_collection("db", "c").active.nbytes == 0
    got = sorted(d["_id"] for d in eng.find("db", "c", {"d": {"$gt": dt.datetime(2000, 1, 1)}}, as_raw=False))
    assert got == [1, 2]


def test_entity_api_exists_stats_schema(eng):
    assert not eng.exists("db", "c")
    eng.insert("db", "c", [{"_id": 1, "a": 1, "p": {"q": "x"}}])
    assert eng.exists("db", "c") and eng.exists("db", "c", {"a": 1}) and not eng.exists("db", "c", {"a": 2})
    eng.flush()
    assert eng.get_schema("db", "c") == {"a": "int", "p.q": "string"}
    assert eng.set_schema("db", "c", {"score": "double"})["score"] == "double"
    with pytest.raises(MongoError):
        eng.set_schema("db", "c", {"a": "string"})
    eng.insert("db", "c", [{"_id": 2, "score": 2.5}])
    eng.flush()
    f = eng.get_collection("db", "c").snapshot.files[-1]
    assert f.min_values.get("score") == 2.5                  # the declared column was shredded
    st = eng.collection_stats("db", "c")
    assert st["records"] == 2 and st["files"] == 2 and st["snapshots"] >= 3
