"""Write concern (w:0 via moreToCome, j, unsatisfiable w) and read concern handling."""
import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure, WriteConcernError
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from tests.commands.rawmsg import MORE_TO_COME, RawMsg
from tests.both_formats import client, server  # noqa: F401  (both table formats)


def test_w0_writes_are_applied_and_visible(server, db):
    with MongoClient(server.url, w=0) as c0:
        coll = c0[db.name].c
        r = coll.insert_one({"_id": 1, "n": 0})
        assert not r.acknowledged
        coll.insert_many([{"_id": i} for i in range(2, 12)])
        coll.update_one({"_id": 1}, {"$inc": {"n": 5}})
        coll.delete_one({"_id": 2})
        coll.insert_one({"_id": 1})               # a duplicate: nobody hears about it
        assert coll.find_one({"_id": 1}) == {"_id": 1, "n": 5}     # same pooled connection, in order
    assert db.c.count_documents({}) == 10


def test_more_to_come_gets_no_reply_and_connection_stays_usable(server, db):
    with RawMsg(server.port) as raw:
        raw.send({"insert": "c", "documents": [{"_id": 1}], "writeConcern": {"w": 0}, "$db": db.name},
                 flags=MORE_TO_COME)
        raw.send({"insert": "c", "documents": [{"_id": 1}], "writeConcern": {"w": 0}, "$db": db.name},
                 flags=MORE_TO_COME)           # error: silently dropped
        raw.send({"nosuchcommand": 1, "$db": db.name}, flags=MORE_TO_COME)
        r = raw.cmd({"count": "c", "$db": db.name})
        assert r["n"] == 1


def test_j_true_waits_for_the_wal_fsync(client, db):
    before = client.admin.command("serverStatus")["mongolake"]["walFsyncs"]
    coll = db.get_collection("c", write_concern=WriteConcern(w="majority", j=True, wtimeout=1000))
    assert coll.insert_one({"_id": 1}).acknowledged
    after = client.admin.command("serverStatus")["mongolake"]["walFsyncs"]
    assert after > before
    coll = db.get_collection("c", write_concern=WriteConcern(w=1, j=False))
    assert coll.insert_one({"_id": 2}).acknowledged


def test_unsatisfiable_write_concerns_report_after_writing(db):
    with pytest.raises(WriteConcernError) as ei:
        db.get_collection("c", write_concern=WriteConcern(w=2)).insert_one({"_id": 1})
    assert ei.value.code == 100
    assert db.c.find_one({"_id": 1}) == {"_id": 1}            # the write itself happened
    r = db.command("insert", "c", documents=[{"_id": 2}], writeConcern={"w": "dc-east"})
    assert r["n"] == 1 and r["writeConcernError"]["code"] == 79
    with pytest.raises(OperationFailure) as ei:
        db.command("insert", "c", documents=[{"_id": 3}], writeConcern={"w": -1})
    assert ei.value.code == 9
    with pytest.raises(OperationFailure) as ei:
        db.command("insert", "c", documents=[{"_id": 3}], writeConcern="majority")
    assert ei.value.code == 14
    assert db.c.count_documents({}) == 2


def test_read_concern_levels(client, db):
    db.c.insert_one({"_id": 1})
    for level in ("local", "majority", "available", "linearizable", "snapshot"):
        coll = db.get_collection("c", read_concern=ReadConcern(level))
        assert coll.find_one({"_id": 1}) == {"_id": 1}
        assert coll.count_documents({}) == 1
    with client.start_session(causal_consistency=True) as s:
        db.c.insert_one({"_id": 2}, session=s)
        assert db.c.find_one({"_id": 2}, session=s) == {"_id": 2}     # sends afterClusterTime
    with pytest.raises(OperationFailure) as ei:
        db.command("find", "c", readConcern={"level": "eventual"})
    assert ei.value.code == 2
    with pytest.raises(OperationFailure) as ei:
        db.command("find", "c", readConcern={"level": "local", "bogus": 1})
    assert ei.value.code == 40415
    with pytest.raises(OperationFailure) as ei:
        db.command("find", "c", maxTimeMS=-5)
    assert ei.value.code == 2
    assert db.command("find", "c", maxTimeMS=5000, comment={"why": "test"})["ok"] == 1.0
