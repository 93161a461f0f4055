"""Every CRUD option pymongo exposes, against the real server process."""
import pytest
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, DeleteMany, DeleteOne, InsertOne, ReplaceOne, ReturnDocument, UpdateMany, \
    UpdateOne
from pymongo.collation import Collation
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, WriteError


@pytest.fixture(params=["delta", "iceberg"])
def client(request, format_client):
    """Every test here runs against a Delta and an Iceberg server."""
    return format_client(request.param)


@pytest.fixture
def people(db):
    db.p.insert_many([{"_id": i, "name": n, "age": a, "tags": t} for i, (n, a, t) in enumerate([
        ("bob", 30, ["x", "y"]), ("Alice", 25, ["y"]), ("carol", 35, []), ("dave", 25, ["x"]), ("Eve", 40, ["z"])])])
    return db.p


def test_sort_projection_skip_limit(people):
    got = list(people.find({}, {"name": 1, "_id": 0}).sort([("age", DESCENDING), ("name", ASCENDING)]).skip(1)
               .limit(3))
    assert got == [{"name": "carol"}, {"name": "bob"}, {"name": "Alice"}]
    assert list(people.find({"age": 25}, {"tags": 0, "age": 0}).sort("_id", -1)) == [
        {"_id": 3, "name": "dave"}, {"_id": 1, "name": "Alice"}]
    # computed projection and positional/$slice/$elemMatch forms
    assert people.find_one({"_id": 0}, {"_id": 0, "n": {"$toUpper": "$name"}, "first": {"$slice": ["$tags", 1]}}) \
        == {"n": "BOB", "first": ["x"]}
    assert people.find_one({"tags": "y"}, {"tags.$": 1}, sort=[("_id", 1)]) == {"_id": 0, "tags": ["y"]}


def test_sort_with_collation(people):
    plain = [d["name"] for d in people.find({}, {"name": 1}).sort("name", 1)]
    assert plain == ["Alice", "Eve", "bob", "carol", "dave"]            # binary order
    ci = [d["name"] for d in people.find({}, {"name": 1}).sort("name", 1).collation(Collation("en", strength=2))]
    assert ci == ["Alice", "bob", "carol", "dave", "Eve"]


def test_hint_existing_index_is_honoured_unknown_refused(people):
    people.create_index([("age", 1)], name="age_1")
    assert [d["_id"] for d in people.find({"age": 25}).hint("age_1").sort("_id", 1)] == [1, 3]
    assert [d["_id"] for d in people.find({"age": 25}).hint([("age", 1)]).sort("_id", 1)] == [1, 3]
    assert people.count_documents({"age": 25}, hint="_id_") == 2
    assert len(list(people.find().hint([("$natural", 1)]))) == 5
    with pytest.raises(OperationFailure) as ei:
        list(people.find({}).hint("nope_1"))
    assert ei.value.code == 2 and "hint provided does not correspond to an existing index" in str(ei.value)
    with pytest.raises(WriteError) as ei:
        people.update_one({"_id": 1}, {"$set": {"x": 1}}, hint="nope_1")
    assert ei.value.code == 2
    assert people.update_one({"_id": 1}, {"$set": {"x": 1}}, hint="age_1").modified_count == 1
    assert people.delete_one({"_id": 4}, hint={"age": 1}).deleted_count == 1


def test_let_variables_in_find_update_delete_find_and_modify(people):
    assert [d["_id"] for d in people.find({"$expr": {"$gt": ["$age", "$$min"]}}, let={"min": 30}).sort("_id", 1)] \
        == [2, 4]
    # pipeline update uses let; an operator update keeps "$$x" as a literal string
    r = people.update_many({"$expr": {"$eq": ["$age", "$$a"]}}, [{"$set": {"grp": {"$concat": ["g", "$$g"]}}}],
                           let={"a": 25, "g": "25"})
    assert r.modified_count == 2
    assert sorted(d["_id"] for d in people.find({"grp": "g25"})) == [1, 3]
    people.update_one({"_id": 0}, {"$set": {"lit": "$$g"}}, let={"g": 1})
    assert people.find_one({"_id": 0})["lit"] == "$$g"
    doc = people.find_one_and_update({"$expr": {"$eq": ["$name", "$$n"]}}, [{"$set": {"age": {"$add": ["$age", "$$d"]}}}],
                                     let={"n": "carol", "d": 1}, return_document=ReturnDocument.AFTER)
    assert doc["age"] == 36
    assert people.delete_many({"$expr": {"$in": ["$name", "$$names"]}}, let={"names": ["bob", "Eve"]}).deleted_count == 2
    assert people.count_documents({}) == 3
    # shadowing: $map's 'as' hides the outer variable of the same name
    got = people.find_one({"_id": 1}, {"_id": 0, "v": {"$map": {"input": [1, 2], "as": "k", "in": {"$add": ["$$k", 1]}}}},
                          let={"k": 100})
    assert got == {"v": [2, 3]}
    with pytest.raises(OperationFailure) as ei:
        list(people.find({"$expr": {"$eq": ["$age", "$$undefinedVar"]}}))
    assert ei.value.code == 17276
    # aggregate: the leading $match runs in the engine, later stages in the pipeline
    got = list(people.aggregate([{"$match": {"$expr": {"$lt": ["$age", "$$lim"]}}},
                                 {"$project": {"_id": 1, "x": "$$lim"}}], let={"lim": 30}))
    assert sorted(d["_id"] for d in got) == [1, 3] and all(d["x"] == 30 for d in got)


def test_update_constants_c_for_pipeline_updates(db):
    db.c.insert_one({"_id": 1, "v": 1})
    r = db.command("update", "c", updates=[{"q": {"_id": 1}, "u": [{"$set": {"v": "$$newv"}}], "c": {"newv": 7}}])
    assert r["nModified"] == 1 and db.c.find_one({"_id": 1})["v"] == 7


def test_upsert_forms(db):
    r = db.c.update_one({"k": "a"}, {"$set": {"v": 1}, "$setOnInsert": {"created": True}}, upsert=True)
    assert r.upserted_id is not None and r.matched_count == 0 and r.did_upsert
    assert db.c.find_one({"k": "a"}, {"_id": 0}) == {"k": "a", "v": 1, "created": True}
    r = db.c.update_one({"k": "a"}, {"$set": {"v": 2}, "$setOnInsert": {"created": False}}, upsert=True)
    assert r.upserted_id is None and r.modified_count == 1
    assert db.c.find_one({"k": "a"})["created"] is True
    r = db.c.replace_one({"_id": "r"}, {"whole": 1}, upsert=True)
    assert r.upserted_id == "r" and db.c.find_one({"_id": "r"}) == {"_id": "r", "whole": 1}
    r = db.c.update_one({"_id": "p"}, [{"$set": {"n": {"$literal": 5}}}], upsert=True)
    assert r.upserted_id == "p" and db.c.find_one({"_id": "p"}) == {"_id": "p", "n": 5}
    doc = db.c.find_one_and_update({"_id": "f"}, {"$inc": {"n": 1}}, upsert=True, return_document=ReturnDocument.AFTER)
    assert doc == {"_id": "f", "n": 1}
    assert db.c.find_one_and_update({"_id": "g"}, {"$inc": {"n": 1}}, upsert=True) is None


def test_array_filters_and_positional(db):
    db.c.insert_one({"_id": 1, "grades": [{"g": 80, "m": 1}, {"g": 95, "m": 1}, {"g": 100, "m": 1}],
                     "nested": [[1, 5], [7, 2]]})
    db.c.update_one({"_id": 1}, {"$inc": {"grades.$[hi].m": 10}}, array_filters=[{"hi.g": {"$gte": 95}}])
    assert [g["m"] for g in db.c.find_one({"_id": 1})["grades"]] == [1, 11, 11]
    db.c.update_one({"_id": 1, "grades.g": 80}, {"$set": {"grades.$.g": 81}})
    assert db.c.find_one({"_id": 1})["grades"][0]["g"] == 81
    db.c.update_one({"_id": 1}, {"$set": {"nested.$[].$[x]": 0}}, array_filters=[{"x": {"$gt": 4}}])
    assert db.c.find_one({"_id": 1})["nested"] == [[1, 0], [0, 2]]
    doc = db.c.find_one_and_update({"_id": 1}, {"$set": {"grades.$[e].g": 0}}, array_filters=[{"e.g": 100}],
                                   return_document=ReturnDocument.AFTER)
    assert doc["grades"][2]["g"] == 0
    with pytest.raises(WriteError) as ei:
        db.c.update_one({"_id": 1}, {"$set": {"grades.$[nope].g": 0}})
    assert ei.value.code == 2


def test_update_one_with_sort(db):
    db.c.insert_many([{"_id": i, "v": i} for i in range(5)])
    db.c.update_one({}, {"$set": {"top": True}}, sort={"v": -1})
    assert db.c.find_one({"top": True})["_id"] == 4
    db.c.replace_one({"v": {"$lt": 3}}, {"v": -1}, sort={"v": 1})
    assert db.c.find_one({"_id": 0}) == {"_id": 0, "v": -1}


def test_duplicate_key_error_shape(db):
    db.c.create_index("email", unique=True)
    db.c.insert_one({"_id": 1, "email": "a@x"})
    with pytest.raises(DuplicateKeyError) as ei:
        db.c.insert_one({"_id": 1, "email": "other"})
    d = ei.value.details
    assert d["code"] == 11000 and d["keyPattern"] == {"_id": 1} and d["keyValue"] == {"_id": 1}
    assert d["errmsg"].startswith(f"E11000 duplicate key error collection: {db.name}.c index: _id_ dup key:")
    with pytest.raises(DuplicateKeyError) as ei:
        db.c.insert_one({"_id": 2, "email": "a@x"})
    assert ei.value.details["keyPattern"] == {"email": 1} and ei.value.details["keyValue"] == {"email": "a@x"}
    assert "index: email_1" in ei.value.details["errmsg"]
    db.c.insert_one({"_id": 3, "email": "b@x"})
    with pytest.raises(DuplicateKeyError):
        db.c.update_one({"_id": 3}, {"$set": {"email": "a@x"}})
    with pytest.raises(DuplicateKeyError):
        db.c.find_one_and_update({"_id": 3}, {"$set": {"email": "a@x"}})
    with pytest.raises(DuplicateKeyError):
        db.c.update_one({"_id": 9}, {"$set": {"email": "a@x"}}, upsert=True)
    assert db.c.count_documents({}) == 2


def test_bulk_write_ordered_stops_at_first_error(db):
    db.c.insert_one({"_id": 1})
    with pytest.raises(BulkWriteError) as ei:
        db.c.bulk_write([InsertOne({"_id": 0}), InsertOne({"_id": 1}), InsertOne({"_id": 2}),
                         UpdateOne({"_id": 0}, {"$set": {"x": 1}})])
    res = ei.value.details
    assert res["nInserted"] == 1 and res["nModified"] == 0
    assert [(e["index"], e["code"]) for e in res["writeErrors"]] == [(1, 11000)]
    assert res["writeErrors"][0]["op"] == {"_id": 1}
    assert sorted(d["_id"] for d in db.c.find()) == [0, 1]


def test_bulk_write_unordered_partial_failures(db):
    db.c.insert_many([{"_id": 1, "v": 1}, {"_id": 2, "v": 2}])
    ops = [InsertOne({"_id": 1}),                                     # 0: dup
           InsertOne({"_id": 3}),                                     # 1
           UpdateOne({"_id": 2}, {"$inc": {"v": 1}}),                 # 2
           UpdateOne({"_id": 2}, {"$inc": {"v": "x"}}),               # 3: TypeMismatch
           UpdateMany({}, {"$set": {"all": True}}),                   # 4
           ReplaceOne({"_id": 7}, {"r": 1}, upsert=True),             # 5: upsert
           InsertOne({"_id": 3}),                                     # 6: dup
           DeleteOne({"_id": 1}),                                     # 7
           DeleteMany({"v": {"$exists": False}, "r": {"$exists": False}})]  # 8: deletes _id 3
    with pytest.raises(BulkWriteError) as ei:
        db.c.bulk_write(ops, ordered=False)
    res = ei.value.details
    assert [(e["index"], e["code"]) for e in res["writeErrors"]] == [(0, 11000), (3, 14), (6, 11000)]
    assert (res["nInserted"], res["nMatched"], res["nModified"], res["nUpserted"], res["nRemoved"]) == (1, 4, 4, 1, 2)
    assert res["upserted"] == [{"index": 5, "_id": 7}]
    assert sorted(d["_id"] for d in db.c.find()) == [2, 7]


def test_bulk_write_success_result(db):
    r = db.c.bulk_write([InsertOne({"_id": 1, "v": 0}), UpdateOne({"_id": 1}, {"$inc": {"v": 5}}),
                         UpdateOne({"_id": 2}, {"$set": {"v": 1}}, upsert=True), DeleteMany({"v": 1})])
    assert (r.inserted_count, r.matched_count, r.modified_count, r.upserted_count, r.deleted_count) == (1, 1, 1, 1, 1)
    assert r.upserted_ids == {2: 2}


def test_insert_many_unordered_reports_every_failure(db):
    with pytest.raises(BulkWriteError) as ei:
        db.c.insert_many([{"_id": 1}, {"_id": 1}, {"_id": 2}, {"_id": 2}, {"_id": 3}], ordered=False)
    assert [e["index"] for e in ei.value.details["writeErrors"]] == [1, 3]
    assert db.c.count_documents({}) == 3


def test_cursor_across_many_getmores_and_kill(db):
    db.c.insert_many([{"_id": i} for i in range(2500)])
    cur = db.c.find({}, batch_size=50).sort("_id", 1)
    assert [d["_id"] for d in cur] == list(range(2500))
    cur = db.c.find({}, batch_size=10)
    next(cur)
    cid = cur.cursor_id
    assert cid
    cur.close()
    with pytest.raises(OperationFailure) as ei:
        db.command("getMore", cid, collection="c")
    assert ei.value.code == 43
    # aggregation cursors also page
    assert sum(1 for _ in db.c.aggregate([{"$match": {"_id": {"$gte": 100}}}], batchSize=7)) == 2400


def test_find_rejects_unknown_fields_and_bad_types(db):
    db.c.insert_one({"_id": 1})
    with pytest.raises(OperationFailure) as ei:
        db.command("find", "c", bogus=1)
    assert ei.value.code == 40415
    with pytest.raises(OperationFailure) as ei:
        db.command("find", "c", filter=5)
    assert ei.value.code == 14
    with pytest.raises(OperationFailure) as ei:
        db.command("find", "c", limit=-1)
    assert ei.value.code == 2
    with pytest.raises(OperationFailure) as ei:
        db.command("insert", "c", documents=[])
    assert ei.value.code == 16
    with pytest.raises(OperationFailure) as ei:
        db.command("update", "c", updates=[{"q": {}, "u": {"$set": {"a": 1}}, "bogus": 1}])
    assert "unknown field" in str(ei.value)


def test_count_distinct_estimated(db):
    db.c.insert_many([{"_id": i, "k": i % 3, "arr": [i % 2, 9]} for i in range(30)])
    assert db.c.count_documents({"k": 1}) == 10
    assert db.c.count_documents({}, skip=25) == 5
    assert db.c.estimated_document_count() == 30
    assert db.command("count", "c", query={"k": 2}, limit=-4)["n"] == 4
    assert db.c.distinct("k", {"k": {"$gt": 0}}) == [1, 2]
    assert db.c.distinct("arr") == [0, 1, 9]
    assert db.missing.count_documents({}) == 0 and db.missing.distinct("x") == []


def test_object_ids_generated_server_side_come_first(db):
    db.command("insert", "c", documents=[{"a": 1}])
    d = db.c.find_one()
    assert list(d) == ["_id", "a"] and isinstance(d["_id"], ObjectId)
