"""The MongoDB 8.0 ``bulkWrite`` command, through pymongo's MongoClient.bulk_write and raw."""
import pytest
from pymongo import DeleteMany, DeleteOne, InsertOne, ReplaceOne, UpdateMany, UpdateOne
from pymongo.errors import ClientBulkWriteException, OperationFailure

from tests.commands.rawmsg import RawMsg
from tests.both_formats import client, server  # noqa: F401  (both table formats)


def test_driver_sees_wire_version_25(client):
    assert client.admin.command("hello")["maxWireVersion"] >= 25


def test_mixed_namespaces_verbose(client, db):
    ns_a, ns_b = f"{db.name}.a", f"{db.name}.b"
    db.b.insert_many([{"_id": 1, "v": 1}, {"_id": 2, "v": 2}, {"_id": 3, "v": 3}])
    r = client.bulk_write([
        InsertOne({"_id": "x", "n": 0}, namespace=ns_a),
        UpdateOne({"_id": "x"}, {"$inc": {"n": 5}}, namespace=ns_a),
        UpdateMany({"v": {"$gte": 2}}, {"$set": {"big": True}}, namespace=ns_b),
        ReplaceOne({"_id": 9}, {"r": 1}, upsert=True, namespace=ns_b),
        DeleteOne({"_id": 1}, namespace=ns_b),
        DeleteMany({"big": True}, namespace=ns_b),
    ], verbose_results=True)
    assert (r.inserted_count, r.matched_count, r.modified_count, r.upserted_count, r.deleted_count) == (1, 3, 3, 1, 3)
    assert r.insert_results[0].inserted_id == "x"
    assert r.update_results[1].modified_count == 1 and r.update_results[2].matched_count == 2
    assert r.update_results[3].upserted_id == 9
    assert r.delete_results[5].deleted_count == 2
    assert db.a.find_one() == {"_id": "x", "n": 5}
    assert sorted(d["_id"] for d in db.b.find()) == [9]


def test_summary_results_errors_only(client, db):
    ns = f"{db.name}.c"
    r = client.bulk_write([InsertOne({"_id": i}, namespace=ns) for i in range(10)]
                          + [DeleteMany({"_id": {"$lt": 5}}, namespace=ns)])
    assert (r.inserted_count, r.deleted_count) == (10, 5)
    assert not r.has_verbose_results
    assert db.c.count_documents({}) == 5


def test_ordered_failure_stops(client, db):
    ns = f"{db.name}.c"
    db.c.insert_one({"_id": 1})
    with pytest.raises(ClientBulkWriteException) as ei:
        client.bulk_write([InsertOne({"_id": 0}, namespace=ns), InsertOne({"_id": 1}, namespace=ns),
                           InsertOne({"_id": 2}, namespace=ns)], verbose_results=True)
    e = ei.value
    assert [(we["idx"], we["code"]) for we in e.write_errors] == [(1, 11000)]
    assert e.write_errors[0]["keyValue"] == {"_id": 1}
    assert e.partial_result.inserted_count == 1
    assert sorted(d["_id"] for d in db.c.find()) == [0, 1]


def test_unordered_failures_continue(client, db):
    ns = f"{db.name}.c"
    db.c.insert_one({"_id": 1, "s": "str"})
    with pytest.raises(ClientBulkWriteException) as ei:
        client.bulk_write([InsertOne({"_id": 1}, namespace=ns),
                           UpdateOne({"_id": 1}, {"$inc": {"s": 1}}, namespace=ns),
                           InsertOne({"_id": 2}, namespace=ns),
                           UpdateOne({"_id": 3}, {"$set": {"u": 1}}, upsert=True, namespace=ns)],
                          ordered=False, verbose_results=True)
    e = ei.value
    assert sorted((we["idx"], we["code"]) for we in e.write_errors) == [(0, 11000), (1, 14)]
    assert e.partial_result.inserted_count == 1 and e.partial_result.upserted_count == 1
    assert sorted(d["_id"] for d in db.c.find()) == [1, 2, 3]


def test_many_results_page_through_a_cursor(client, db):
    ns = f"{db.name}.c"
    r = client.bulk_write([InsertOne({"_id": i}, namespace=ns) for i in range(350)], verbose_results=True)
    assert r.inserted_count == 350 and len(r.insert_results) == 350
    assert db.c.count_documents({}) == 350


def test_raw_command_shape_and_errors(server, db):
    with RawMsg(server.port) as raw:
        ns = f"{db.name}.c"
        r = raw.cmd({"bulkWrite": 1, "ops": [{"insert": 0, "document": {"_id": 1}},
                                             {"update": 0, "filter": {"_id": 1}, "updateMods": {"$set": {"a": "$$v"}}},
                                             {"update": 0, "filter": {"_id": 1},
                                              "updateMods": [{"$set": {"b": "$$v"}}]},
                                             {"insert": 0, "document": {"_id": 1}},
                                             {"delete": 0, "filter": {"_id": 5}}],
                     "nsInfo": [{"ns": ns}], "ordered": False, "let": {"v": 7},
                     "cursor": {"batchSize": 2}, "$db": "admin"})
        assert r["ok"] == 1.0
        assert (r["nErrors"], r["nInserted"], r["nMatched"], r["nModified"], r["nUpserted"], r["nDeleted"]) == \
            (1, 1, 2, 2, 0, 0)
        first = r["cursor"]["firstBatch"]
        assert r["cursor"]["ns"] == "admin.$cmd.bulkWrite" and len(first) == 2 and r["cursor"]["id"] != 0
        assert first[0] == {"ok": 1.0, "idx": 0, "n": 1}
        more = raw.cmd({"getMore": r["cursor"]["id"], "collection": "$cmd.bulkWrite", "$db": "admin"})
        rest = more["cursor"]["nextBatch"]
        assert more["cursor"]["id"] == 0 and [d["idx"] for d in rest] == [2, 3, 4]
        assert rest[1]["ok"] == 0.0 and rest[1]["code"] == 11000 and rest[1]["keyPattern"] == {"_id": 1}
        assert db.c.find_one({"_id": 1}) == {"_id": 1, "a": "$$v", "b": 7}
        r = raw.cmd({"bulkWrite": 1, "ops": [{"insert": 3, "document": {}}], "nsInfo": [{"ns": ns}],
                     "$db": "admin"})
        assert r["ok"] == 0.0 and r["code"] == 2
        r = raw.cmd({"bulkWrite": 1, "ops": [{"insert": 0, "document": {}}], "nsInfo": [{"ns": ns}],
                     "$db": db.name})
        assert r["ok"] == 0.0 and r["code"] == 13
        r = raw.cmd({"bulkWrite": 1, "ops": [{"replace": 0}], "nsInfo": [{"ns": ns}], "$db": "admin"})
        assert r["ok"] == 0.0 and r["code"] == 9
        r = raw.cmd({"bulkWrite": 1, "ops": [{"insert": 0, "document": {}}], "nsInfo": [{"ns": "bad/db.c"}],
                     "$db": "admin"})
        assert r["ok"] == 0.0 and r["code"] == 73
        r = raw.cmd({"bulkWrite": 1, "ops": [], "nsInfo": [{"ns": ns}], "$db": "admin"})
        assert r["ok"] == 0.0 and r["code"] == 16
        r = raw.cmd({"bulkWrite": 1, "ops": [{"insert": 0, "document": {"_id": 1}}], "nsInfo": [{"ns": ns}],
                     "errorsOnly": True, "$db": "admin"})
        assert r["nErrors"] == 1 and [d["idx"] for d in r["cursor"]["firstBatch"]] == [0]


def test_write_concern_zero_client_bulk_write(client, server, db):
    from pymongo import MongoClient
    from pymongo.write_concern import WriteConcern
    ns = f"{db.name}.w0"
    with MongoClient(server.url, w=0) as c0:
        r = c0.bulk_write([InsertOne({"_id": i}, namespace=ns) for i in range(5)], ordered=False,
                          write_concern=WriteConcern(w=0))
        assert not r.acknowledged
        c0.admin.command("ping")          # same connection: the unacknowledged batch was handled before
    assert db.w0.count_documents({}) == 5


def test_bulk_write_requires_admin_via_driver_errors(client):
    with pytest.raises(OperationFailure) as ei:
        client.test.command("bulkWrite", 1, ops=[], nsInfo=[])
    assert ei.value.code == 13
