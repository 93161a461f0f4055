"""CRUD through pymongo against the real server process."""
import pytest
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, DeleteOne, InsertOne, ReplaceOne, ReturnDocument, UpdateMany, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure


@pytest.fixture(params=["delta", "iceberg"])
def client(request, format_client):
    """Every test here runs against a Delta and an Iceberg server."""
    return format_client(request.param)


def test_insert_find_roundtrip(db):
    r = db.c.insert_one({"a": 1, "nested": {"b": [1, 2, {"c": "x"}]}})
    assert isinstance(r.inserted_id, ObjectId)
    doc = db.c.find_one({"_id": r.inserted_id})
    assert doc == {"_id": r.inserted_id, "a": 1, "nested": {"b": [1, 2, {"c": "x"}]}}
    db.c.insert_many([{"_id": i, "v": i} for i in range(10)])
    assert db.c.count_documents({}) == 11
    assert [d["_id"] for d in db.c.find({"v": {"$gte": 7}}).sort("v", DESCENDING)] == [9, 8, 7]


def test_find_options(db):
    db.c.insert_many([{"_id": i, "a": i % 5, "b": {"c": i}} for i in range(50)])
    cur = db.c.find({"a": {"$in": [1, 2]}}, {"b.c": 1, "_id": 0}).sort([("a", ASCENDING), ("b.c", DESCENDING)])
    got = list(cur.skip(2).limit(5))
    assert got == [{"b": {"c": c}} for c in (36, 31, 26, 21, 16)]
    assert db.c.find_one({"a": 4}, sort=[("_id", -1)])["_id"] == 49
    assert db.c.count_documents({"a": 0}, skip=3, limit=5) == 5
    assert sorted(db.c.distinct("a")) == [0, 1, 2, 3, 4]


def test_cursor_many_getmores(db):
    db.c.insert_many([{"_id": i, "pad": "x" * 100} for i in range(1000)])
    cur = db.c.find({}, batch_size=7)
    assert sum(1 for _ in cur) == 1000
    assert [d["_id"] for d in db.c.find().sort("_id", 1).batch_size(3).limit(10)] == list(range(10))


def test_update_operators_and_upsert(db):
    db.c.insert_one({"_id": 1, "n": 1, "arr": [1, 2, 3], "s": {"x": 1}})
    r = db.c.update_one({"_id": 1}, {"$inc": {"n": 2}, "$push": {"arr": 4}, "$set": {"s.y": 2}})
    assert (r.matched_count, r.modified_count) == (1, 1)
    assert db.c.find_one({"_id": 1}) == {"_id": 1, "n": 3, "arr": [1, 2, 3, 4], "s": {"x": 1, "y": 2}}
    r = db.c.update_one({"_id": 1}, {"$set": {"n": 3}})
    assert (r.matched_count, r.modified_count) == (1, 0)
    r = db.c.update_one({"_id": 2}, {"$set": {"n": 5}}, upsert=True)
    assert r.upserted_id == 2 and db.c.find_one({"_id": 2}) == {"_id": 2, "n": 5}
    r = db.c.update_many({}, {"$set": {"flag": True}})
    assert (r.matched_count, r.modified_count) == (2, 2)
    db.c.update_one({"_id": 1}, {"$set": {"arr.$[e]": 0}}, array_filters=[{"e": {"$gt": 2}}])
    assert db.c.find_one({"_id": 1})["arr"] == [1, 2, 0, 0]
    db.c.replace_one({"_id": 2}, {"replaced": True})
    assert db.c.find_one({"_id": 2}) == {"_id": 2, "replaced": True}


def test_update_errors(db):
    db.c.insert_one({"_id": 1, "s": "str"})
    with pytest.raises(OperationFailure) as ei:
        db.c.update_one({"_id": 1}, {"$inc": {"s": 1}})
    assert ei.value.code == 14
    with pytest.raises(OperationFailure) as ei:
        db.c.update_one({"_id": 1}, {"$set": {"_id": 2}})
    assert ei.value.code == 66
    with pytest.raises(OperationFailure) as ei:
        db.c.update_one({"_id": 1}, {"$foo": {"a": 1}})
    assert ei.value.code == 9
    assert db.c.find_one({"_id": 1}) == {"_id": 1, "s": "str"}


def test_delete(db):
    db.c.insert_many([{"_id": i, "k": i % 2} for i in range(10)])
    assert db.c.delete_one({"k": 1}).deleted_count == 1
    assert db.c.delete_many({"k": 1}).deleted_count == 4
    assert db.c.count_documents({}) == 5


def test_find_one_and_modify(db):
    db.c.insert_many([{"_id": i, "v": i} for i in range(5)])
    before = db.c.find_one_and_update({"v": {"$gte": 2}}, {"$inc": {"v": 10}}, sort=[("v", -1)])
    assert before == {"_id": 4, "v": 4}
    after = db.c.find_one_and_update({"_id": 3}, {"$inc": {"v": 10}}, return_document=ReturnDocument.AFTER,
                                     projection={"_id": 0})
    assert after == {"v": 13}
    assert db.c.find_one_and_delete({"_id": 0}) == {"_id": 0, "v": 0}
    assert db.c.find_one_and_replace({"_id": 1}, {"r": 1}, return_document=ReturnDocument.AFTER) == {"_id": 1, "r": 1}
    up = db.c.find_one_and_update({"_id": 99}, {"$set": {"x": 1}}, upsert=True, return_document=ReturnDocument.AFTER)
    assert up == {"_id": 99, "x": 1}
    assert db.c.find_one_and_update({"_id": 1000}, {"$set": {"x": 1}}) is None


def test_duplicate_key_error_shape(db):
    db.c.insert_one({"_id": "k"})
    with pytest.raises(DuplicateKeyError) as ei:
        db.c.insert_one({"_id": "k"})
    d = ei.value.details
    assert d["code"] == 11000 and d["keyPattern"] == {"_id": 1} and d["keyValue"] == {"_id": "k"}
    assert "E11000 duplicate key error collection: " in d["errmsg"]


def test_bulk_write_ordered_and_unordered(db):
    db.c.insert_one({"_id": 1})
    with pytest.raises(BulkWriteError) as ei:
        db.c.bulk_write([InsertOne({"_id": 0}), InsertOne({"_id": 1}), InsertOne({"_id": 2})], ordered=True)
    res = ei.value.details
    assert res["nInserted"] == 1 and res["writeErrors"][0]["index"] == 1
    assert db.c.count_documents({}) == 2
    with pytest.raises(BulkWriteError) as ei:
        db.c.bulk_write([InsertOne({"_id": 1}), InsertOne({"_id": 3}), UpdateOne({"_id": 3}, {"$set": {"a": 1}}),
                         DeleteOne({"_id": 0}), ReplaceOne({"_id": 2}, {"b": 1}, upsert=True),
                         UpdateMany({}, {"$set": {"m": 1}})], ordered=False)
    res = ei.value.details
    assert [e["index"] for e in res["writeErrors"]] == [0]
    assert res["nInserted"] == 1 and res["nRemoved"] == 1 and res["nUpserted"] == 1
    assert db.c.count_documents({"m": 1}) == 3


def test_list_drop_rename(db, client):
    db.a.insert_one({"x": 1})
    db.create_collection("b")
    assert sorted(db.list_collection_names()) == ["a", "b"]
    assert [c["name"] for c in db.list_collections(filter={"name": "a"})] == ["a"]
    assert db.name in client.list_database_names()
    db.a.rename("c")
    assert sorted(db.list_collection_names()) == ["b", "c"]
    assert db.c.find_one()["x"] == 1
    db.b.drop()
    assert db.list_collection_names() == ["c"]
    with pytest.raises(OperationFailure) as ei:
        db.command("create", "c")
    assert ei.value.code == 48
    client.drop_database(db.name)
    assert db.name not in client.list_database_names()


def test_indexes_unique_enforced(db):
    db.c.insert_many([{"_id": 1, "email": "a"}, {"_id": 2, "email": "b"}])
    name = db.c.create_index([("email", 1)], unique=True)
    assert name == "email_1"
    info = db.c.index_information()
    assert info["email_1"]["unique"] is True and "_id_" in info
    with pytest.raises(DuplicateKeyError) as ei:
        db.c.insert_one({"_id": 3, "email": "a"})
    assert ei.value.details["keyPattern"] == {"email": 1}
    with pytest.raises(DuplicateKeyError):
        db.c.update_one({"_id": 2}, {"$set": {"email": "a"}})
    db.c.drop_index("email_1")
    db.c.insert_one({"_id": 3, "email": "a"})
    with pytest.raises(DuplicateKeyError):
        db.c.create_index("email", unique=True)
    with pytest.raises(OperationFailure) as ei:
        db.c.drop_index("nope")
    assert ei.value.code == 27


def test_explain_reports_pruning(db, client):
    db.c.insert_many([{"_id": i, "v": i} for i in range(1000)])
    client.admin.command("fsync")
    db.c.insert_many([{"_id": 1000 + i, "v": 1000 + i} for i in range(1000)])
    client.admin.command("fsync")
    plan = db.c.find({"v": {"$gte": 1500}}).explain()
    ml = plan["queryPlanner"]["winningPlan"]["mongolake"]
    assert ml["files_total"] == 2 and ml["files_scanned"] == 1
    assert plan["executionStats"]["nReturned"] == 500


def test_aggregate_basic(db):
    db.c.insert_many([{"_id": i, "g": i % 3, "v": i} for i in range(30)])
    out = list(db.c.aggregate([{"$match": {"v": {"$gte": 3}}}, {"$group": {"_id": "$g", "s": {"$sum": "$v"}}},
                               {"$sort": {"_id": 1}}]))
    assert out == [{"_id": 0, "s": sum(i for i in range(3, 30) if i % 3 == 0)},
                   {"_id": 1, "s": sum(i for i in range(3, 30) if i % 3 == 1)},
                   {"_id": 2, "s": sum(i for i in range(3, 30) if i % 3 == 2)}]
    assert list(db.c.aggregate([{"$count": "n"}])) == [{"n": 30}]
    assert [d["_id"] for d in db.c.aggregate([{"$sort": {"v": -1}}, {"$skip": 1}, {"$limit": 2},
                                               {"$project": {"_id": 1}}])] == [28, 27]


def test_unknown_command(db):
    with pytest.raises(OperationFailure) as ei:
        db.command("noSuchCommand")
    assert ei.value.code == 59 and ei.value.details["codeName"] == "CommandNotFound"


def test_query_errors_on_empty_collection(db):
    with pytest.raises(OperationFailure) as ei:
        db.empty.find_one({"a": {"$foo": 1}})
    assert ei.value.code == 2
