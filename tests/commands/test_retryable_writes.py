"""Retryable writes: the same (lsid, txnNumber) sent twice is applied once and answered the same."""
import threading

import pytest
from pymongo import InsertOne, MongoClient, UpdateOne
from pymongo.errors import AutoReconnect

from tests.commands.rawmsg import RawMsg, new_lsid, txn
from tests.serverutil import ServerProcess
from tests.both_formats import client, server  # noqa: F401  (both table formats)


def _twice(raw: RawMsg, body: dict) -> tuple[dict, dict]:
    first = raw.cmd(dict(body))
    second = raw.cmd(dict(body))
    for r in (first, second):
        r.pop("$clusterTime", None)
        r.pop("operationTime", None)
    return first, second


def test_insert_retried(server, db):
    lsid = new_lsid()
    with RawMsg(server.port) as raw:
        a, b = _twice(raw, {"insert": "c", "documents": [{"_id": 1}, {"_id": 2}], "lsid": lsid,
                            "txnNumber": txn(1), "$db": db.name})
    assert a == b == {"n": 2, "ok": 1.0}
    assert db.c.count_documents({}) == 2


def test_update_applied_once(server, db):
    db.c.insert_one({"_id": 1, "n": 0})
    lsid = new_lsid()
    with RawMsg(server.port) as raw:
        a, b = _twice(raw, {"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}},
                                                       {"q": {"_id": 2}, "u": {"$inc": {"n": 1}}, "upsert": True}],
                            "lsid": lsid, "txnNumber": txn(5), "$db": db.name})
        assert a == b and a["nModified"] == 1 and a["upserted"] == [{"index": 1, "_id": 2}]
        # a new txnNumber on the same session runs again
        raw.cmd({"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}], "lsid": lsid,
                 "txnNumber": txn(6), "$db": db.name})
    assert db.c.find_one({"_id": 1})["n"] == 2 and db.c.find_one({"_id": 2})["n"] == 1


def test_delete_one_retried_does_not_delete_another(server, db):
    db.c.insert_many([{"_id": i, "k": 1} for i in range(3)])
    lsid = new_lsid()
    with RawMsg(server.port) as raw:
        a, b = _twice(raw, {"delete": "c", "deletes": [{"q": {"k": 1}, "limit": 1}], "lsid": lsid,
                            "txnNumber": txn(1), "$db": db.name})
    assert a == b == {"n": 1, "ok": 1.0}
    assert db.c.count_documents({}) == 2


def test_find_and_modify_retried(server, db):
    db.c.insert_one({"_id": 1, "n": 10})
    lsid = new_lsid()
    with RawMsg(server.port) as raw:
        a, b = _twice(raw, {"findAndModify": "c", "query": {"_id": 1}, "update": {"$inc": {"n": 1}}, "new": True,
                            "lsid": lsid, "txnNumber": txn(3), "$db": db.name})
    assert a == b and a["value"] == {"_id": 1, "n": 11}
    assert db.c.find_one({"_id": 1})["n"] == 11


def test_bulk_write_command_retried(server, db):
    lsid = new_lsid()
    body = {"bulkWrite": 1, "ops": [{"insert": 0, "document": {"_id": "a"}},
                                    {"update": 0, "filter": {"_id": "a"}, "updateMods": {"$inc": {"n": 1}}}],
            "nsInfo": [{"ns": f"{db.name}.c"}], "lsid": lsid, "txnNumber": txn(1), "$db": "admin"}
    with RawMsg(server.port) as raw:
        a, b = _twice(raw, body)
    assert a["nInserted"] == b["nInserted"] == 1 and a["nModified"] == b["nModified"] == 1 and b["nErrors"] == 0
    assert db.c.find_one() == {"_id": "a", "n": 1}


def test_writes_with_errors_are_replayed_too(server, db):
    db.c.insert_one({"_id": 1})
    lsid = new_lsid()
    with RawMsg(server.port) as raw:
        a, b = _twice(raw, {"insert": "c", "documents": [{"_id": 1}, {"_id": 2}], "ordered": False,
                            "lsid": lsid, "txnNumber": txn(1), "$db": db.name})
    assert a == b and a["n"] == 1 and [e["index"] for e in a["writeErrors"]] == [0]
    assert db.c.count_documents({}) == 2


def test_older_txn_number_refused_and_other_sessions_independent(server, db):
    lsid = new_lsid()
    with RawMsg(server.port) as raw:
        raw.cmd({"insert": "c", "documents": [{"_id": 1}], "lsid": lsid, "txnNumber": txn(10), "$db": db.name})
        r = raw.cmd({"insert": "c", "documents": [{"_id": 2}], "lsid": lsid, "txnNumber": txn(9), "$db": db.name})
        assert r["ok"] == 0.0 and r["code"] == 225 and r["codeName"] == "TransactionTooOld"
        r = raw.cmd({"insert": "c", "documents": [{"_id": 3}], "lsid": new_lsid(), "txnNumber": txn(10),
                     "$db": db.name})
        assert r["n"] == 1
        r = raw.cmd({"insert": "c", "documents": [{"_id": 4}], "lsid": lsid, "txnNumber": "x", "$db": db.name})
        assert r["ok"] == 0.0 and r["code"] == 14
    assert sorted(d["_id"] for d in db.c.find()) == [1, 3]


def test_concurrent_retry_on_two_connections_applies_once(server, db):
    db.c.insert_one({"_id": 1, "n": 0})
    lsid = new_lsid()
    body = {"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}], "lsid": lsid,
            "txnNumber": txn(1), "$db": db.name}
    replies = []
    barrier = threading.Barrier(4)

    def go():
        with RawMsg(server.port) as raw:
            barrier.wait()
            replies.append(raw.cmd(dict(body)))
    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(replies) == 4 and all(r["nModified"] == 1 for r in replies)
    assert db.c.find_one({"_id": 1})["n"] == 1


def test_end_sessions_forgets_records(server, db):
    lsid = new_lsid()
    with RawMsg(server.port) as raw:
        raw.cmd({"insert": "c", "documents": [{"_id": 1}], "lsid": lsid, "txnNumber": txn(1), "$db": db.name})
        raw.cmd({"endSessions": [lsid], "$db": "admin"})
        r = raw.cmd({"insert": "c", "documents": [{"_id": 1}], "lsid": lsid, "txnNumber": txn(1), "$db": db.name})
    assert r["writeErrors"][0]["code"] == 11000


def test_driver_retryable_writes_work(client, db):
    # pymongo sends lsid + txnNumber on every retryable write by default
    with client.start_session() as s:
        db.c.insert_one({"_id": 1}, session=s)
        db.c.update_one({"_id": 1}, {"$set": {"a": 1}}, session=s)
        db.c.find_one_and_update({"_id": 1}, {"$inc": {"b": 1}}, session=s)
        db.c.bulk_write([InsertOne({"_id": 2})], session=s)
        db.c.delete_one({"_id": 2}, session=s)
    assert list(db.c.find()) == [{"_id": 1, "a": 1, "b": 1}]


# -- the connection drops after the server applied the write, before the reply ------------------
@pytest.fixture(scope="module", params=["delta", "iceberg"])
def hook_server(tmp_path_factory, request):
    """A server with the test-only hook that closes a connection instead of replying."""
    srv = ServerProcess(str(tmp_path_factory.mktemp("hooklake")), env={"MONGOLAKE_TEST_HOOKS": "1"},
                        extra=["--format", request.param]).start()
    yield srv
    srv.stop()


def _drop_next_reply(client, command):
    client.admin.command({"_mongolakeTestHook": 1, "closeConnectionAfter": {command: 1}})


def test_driver_retry_after_lost_reply_applies_once(hook_server):
    with MongoClient(hook_server.url, retryWrites=True) as client:
        coll = client.rw.lost
        coll.drop()
        coll.insert_many([{"_id": 1, "n": 0}, {"_id": "k1", "k": 1}, {"_id": "k2", "k": 1}, {"_id": "k3", "k": 1}])

        _drop_next_reply(client, "update")
        assert coll.update_one({"_id": 1}, {"$inc": {"n": 1}}).modified_count == 1
        _drop_next_reply(client, "insert")
        coll.insert_one({"_id": 2})                                   # no DuplicateKeyError from the retry
        _drop_next_reply(client, "insert")
        assert coll.insert_many([{"_id": 3}, {"_id": 4}]).inserted_ids == [3, 4]
        _drop_next_reply(client, "findAndModify")
        assert coll.find_one_and_update({"_id": 1}, {"$inc": {"n": 10}}, return_document=True)["n"] == 11
        _drop_next_reply(client, "delete")
        assert coll.delete_one({"k": 1}).deleted_count == 1             # not a second one
        _drop_next_reply(client, "bulkWrite")
        r = client.bulk_write([InsertOne({"_id": 5}, namespace="rw.lost"),
                               UpdateOne({"_id": 1}, {"$inc": {"n": 100}}, namespace="rw.lost")])
        assert r.inserted_count == 1 and r.modified_count == 1
        assert coll.find_one({"_id": 1})["n"] == 111
        assert coll.count_documents({"k": 1}) == 2
        assert sorted(d["_id"] for d in coll.find({"k": {"$exists": False}})) == [1, 2, 3, 4, 5]


def test_without_retry_the_lost_reply_is_an_error_but_the_write_happened(hook_server):
    """What the hook does, seen without the driver's retry."""
    with MongoClient(hook_server.url, retryWrites=False) as client:
        coll = client.rw.noretry
        coll.drop()
        coll.insert_one({"_id": 1, "n": 0})
        _drop_next_reply(client, "update")
        with pytest.raises(AutoReconnect):
            coll.update_one({"_id": 1}, {"$inc": {"n": 1}})
        assert coll.find_one({"_id": 1})["n"] == 1


def test_lost_commit_reply_is_retried_by_the_driver(hook_server):
    """A commit whose reply never arrives is an unknown commit result: the driver retries
    commitTransaction with the same txnNumber and gets ok, the transaction applied once."""
    with MongoClient(hook_server.url) as client:
        coll = client.rw.commit
        coll.drop()
        coll.insert_one({"_id": 1, "n": 0})
        _drop_next_reply(client, "commitTransaction")
        with client.start_session() as s:
            s.with_transaction(lambda s: coll.update_one({"_id": 1}, {"$inc": {"n": 1}}, session=s))
        assert coll.find_one({"_id": 1})["n"] == 1
