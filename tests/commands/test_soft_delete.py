"""Soft deletes through the server: the ``softDelete`` collection option (create,
collMod, listCollections), deletes that answer like MongoDB's while keeping the
documents, and the findDeleted / restoreDeleted / purgeDeleted commands."""
import pytest
from pymongo.errors import OperationFailure


@pytest.fixture(params=["delta", "iceberg"])
def sdb(format_client, request):
    client = format_client(request.param)
    name = "sd_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:50]
    client.drop_database(name)
    yield client[name]
    client.drop_database(name)


def found(db, coll, flt=None, **kw):
    cmd = {"findDeleted": coll, **({"filter": flt} if flt is not None else {}), **kw}
    return [d["_id"] for d in db.command(cmd)["cursor"]["firstBatch"]]


def test_soft_delete_collection_answers_like_mongodb(sdb):
    c = sdb.create_collection("c", softDelete=True)
    c.insert_many([{"_id": i, "g": i % 3} for i in range(9)])
    assert c.delete_one({"_id": 0}).deleted_count == 1
    assert c.delete_many({"g": 1}).deleted_count == 3
    assert c.find_one_and_delete({"_id": 2}) == {"_id": 2, "g": 2}
    assert c.count_documents({}) == 4
    assert sorted(d["_id"] for d in c.find()) == [3, 5, 6, 8]
    assert c.find_one({"_id": 1}) is None
    assert c.delete_many({"g": 1}).deleted_count == 0          # already gone for readers
    assert found(sdb, "c") == [0, 1, 2, 4, 7]
    sdb.client.admin.command("fsync")
    assert c.count_documents({}) == 4 and c.estimated_document_count() == 4
    assert found(sdb, "c", {"g": 1}) == [1, 4, 7]
    assert found(sdb, "c", limit=2) == [0, 1]
    opts = next(sdb.list_collections(filter={"name": "c"}))["options"]
    assert opts["softDelete"] == {"enabled": True}


def test_restore_and_purge_commands(sdb):
    c = sdb.create_collection("c", softDelete={"enabled": True, "retentionSeconds": 3600})
    c.insert_many([{"_id": i, "v": i} for i in range(6)])
    c.delete_many({"v": {"$gte": 2}})
    assert sdb.command({"restoreDeleted": "c", "filter": {"v": {"$lt": 4}}})["n"] == 2
    assert sorted(d["_id"] for d in c.find()) == [0, 1, 2, 3]
    assert sdb.command({"purgeDeleted": "c"})["purged"] == 0            # within the retention
    assert sdb.command({"purgeDeleted": "c", "olderThanSeconds": 0, "dryRun": True})["purged"] == 2
    assert sdb.command({"purgeDeleted": "c", "olderThanSeconds": 0, "filter": {"_id": 4}})["purged"] == 1
    assert found(sdb, "c") == [5]
    assert sdb.command({"restoreDeleted": "c"})["n"] == 1
    assert sorted(d["_id"] for d in c.find()) == [0, 1, 2, 3, 5]
    assert found(sdb, "c") == []


def test_collmod_turns_soft_delete_on_and_off(sdb):
    c = sdb["c"]
    c.insert_many([{"_id": i} for i in range(4)])
    c.delete_one({"_id": 0})                                  # hard: the default
    sdb.command({"collMod": "c", "softDelete": {"enabled": True}})
    c.delete_one({"_id": 1})
    sdb.command({"collMod": "c", "softDelete": False})
    c.delete_one({"_id": 2})
    assert found(sdb, "c") == [1]
    assert [d["_id"] for d in c.find()] == [3]


def test_change_streams_see_a_delete_then_an_insert(sdb):
    c = sdb.create_collection("c", softDelete=True)
    c.insert_one({"_id": 1, "x": 1})
    with c.watch() as stream:
        c.delete_one({"_id": 1})
        sdb.command({"restoreDeleted": "c"})
        ev1, ev2 = stream.next(), stream.next()
    assert ev1["operationType"] == "delete" and ev1["documentKey"] == {"_id": 1}
    assert "fullDocumentBeforeChange" not in ev1
    assert ev2["operationType"] == "insert" and ev2["fullDocument"] == {"_id": 1, "x": 1}


def test_bad_options_and_arguments(sdb):
    with pytest.raises(OperationFailure) as ei:
        sdb.create_collection("a", softDelete="yes")
    assert ei.value.code == 14
    with pytest.raises(OperationFailure) as ei:
        sdb.create_collection("a", softDelete={"enabled": True, "ttl": 1})
    assert ei.value.code == 40415
    with pytest.raises(OperationFailure) as ei:
        sdb.create_collection("a", softDelete={"enabled": True, "retentionSeconds": -5})
    assert ei.value.code == 2
    sdb.create_collection("a")
    with pytest.raises(OperationFailure) as ei:
        sdb.command({"collMod": "a", "softDelete": {"retentionSeconds": 5}})
    assert ei.value.code == 9
    with pytest.raises(OperationFailure) as ei:
        sdb.command({"findDeleted": "a", "filter": 3})
    assert ei.value.code == 14
    with pytest.raises(OperationFailure) as ei:
        sdb.command({"restoreDeleted": "a", "bogus": 1})
    assert ei.value.code == 40415
    with pytest.raises(OperationFailure) as ei:
        sdb.command({"purgeDeleted": "nope"})
    assert ei.value.code == 26
    assert found(sdb, "nope") == []


def test_soft_deleted_documents_survive_a_restart(tmp_path):
    from pymongo import MongoClient

    from tests.serverutil import ServerProcess

    srv = ServerProcess(str(tmp_path / "lake")).start()
    try:
        with MongoClient(srv.url, serverSelectionTimeoutMS=10000) as cl:
            c = cl.db.create_collection("c", softDelete=True)
            c.insert_many([{"_id": i} for i in range(5)])
            c.delete_many({"_id": {"$lt": 2}})
        srv.stop()
        srv.start()
        with MongoClient(srv.url, serverSelectionTimeoutMS=10000) as cl:
            assert cl.db.c.count_documents({}) == 3
            assert found(cl.db, "c") == [0, 1]
            assert cl.db.command({"restoreDeleted": "c", "filter": {"_id": 0}})["n"] == 1
            assert cl.db.c.count_documents({}) == 4
    finally:
        srv.stop()
