"""Multi-document transactions through pymongo, motor and the raw protocol."""
import asyncio
import threading
import time

import pytest
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import ReadPreference
from pymongo.errors import DuplicateKeyError, OperationFailure
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from tests.commands.rawmsg import RawMsg, new_lsid, txn
from tests.both_formats import client, server  # noqa: F401  (both table formats)


def _setup(db, n=4, bal=100):
    db.acct.insert_many([{"_id": i, "bal": bal} for i in range(n)])


def _balances(db):
    return [d["bal"] for d in db.acct.find().sort("_id", 1)]


def test_with_transaction_commits_atomically(client, db):
    _setup(db)
    seen = {}

    def transfer(s):
        db.acct.update_one({"_id": 0}, {"$inc": {"bal": -30}}, session=s)
        db.acct.update_one({"_id": 1}, {"$inc": {"bal": 30}}, session=s)
        db.log.insert_one({"from": 0, "to": 1, "amount": 30}, session=s)   # creates the collection
        seen["inside"] = [d["bal"] for d in db.acct.find({}, session=s).sort("_id", 1)]
        seen["outside"] = _balances(db)
        seen["log_outside"] = db.log.count_documents({})
        return "done"

    with client.start_session() as s:
        assert s.with_transaction(transfer) == "done"
    assert seen["inside"] == [70, 130, 100, 100]
    assert seen["outside"] == [100, 100, 100, 100] and seen["log_outside"] == 0
    assert _balances(db) == [70, 130, 100, 100]
    assert db.log.count_documents({"amount": 30}) == 1


def test_abort_and_callback_error_leave_nothing(client, db):
    _setup(db)
    with client.start_session() as s:
        s.start_transaction()
        db.acct.insert_one({"_id": 50, "bal": 1}, session=s)
        db.acct.delete_one({"_id": 1}, session=s)
        s.abort_transaction()

        def boom(s):
            db.acct.update_many({}, {"$set": {"bal": 0}}, session=s)
            raise RuntimeError("no")
        with pytest.raises(RuntimeError):
            s.with_transaction(boom)
    assert _balances(db) == [100] * 4


def test_conflict_is_transient_and_with_transaction_retries(client, db):
    _setup(db)
    s1, s2 = client.start_session(), client.start_session()
    s1.start_transaction()
    s2.start_transaction()
    db.acct.update_one({"_id": 2}, {"$inc": {"bal": 1}}, session=s1)
    with pytest.raises(OperationFailure) as ei:
        db.acct.update_one({"_id": 2}, {"$inc": {"bal": 5}}, session=s2)
    assert ei.value.code == 112 and ei.value.has_error_label("TransientTransactionError")
    # the loser is aborted: its commit answers NoSuchTransaction, still transient
    with pytest.raises(OperationFailure) as ei:
        s2.commit_transaction()
    assert ei.value.code == 251 and ei.value.has_error_label("TransientTransactionError")
    s1.commit_transaction()

    # with_transaction retries a conflicting callback by itself: hold a lock in another
    # transaction during the first attempt, release it by committing
    s1.start_transaction()
    db.acct.update_one({"_id": 3}, {"$inc": {"bal": 10}}, session=s1)
    attempts = []

    def cb(s):
        attempts.append(1)
        if len(attempts) == 2:
            s1.commit_transaction()
        db.acct.update_one({"_id": 3}, {"$inc": {"bal": 1}}, session=s)
    s2.with_transaction(cb)
    assert len(attempts) >= 2
    assert db.acct.find_one({"_id": 2})["bal"] == 101 and db.acct.find_one({"_id": 3})["bal"] == 111
    s1.end_session()
    s2.end_session()


def test_write_outside_a_transaction_wins_over_it(client, db):
    _setup(db)
    with client.start_session() as s:
        s.start_transaction()
        db.acct.update_one({"_id": 0}, {"$inc": {"bal": -1}}, session=s)
        db.acct.update_one({"_id": 0}, {"$set": {"bal": 7}})        # plain write commits first
        with pytest.raises(OperationFailure) as ei:
            s.commit_transaction()
        assert ei.value.code == 112 and ei.value.has_error_label("TransientTransactionError")
    assert db.acct.find_one({"_id": 0})["bal"] == 7


def test_snapshot_reads_inside_a_transaction(client, db):
    _setup(db)
    with client.start_session() as s:
        s.start_transaction(read_concern=ReadConcern("snapshot"))
        assert db.acct.find_one({"_id": 0}, session=s)["bal"] == 100
        db.acct.update_one({"_id": 0}, {"$set": {"bal": 1}})           # committed meanwhile
        db.acct.insert_one({"_id": 9, "bal": 9})
        assert db.acct.find_one({"_id": 0}, session=s)["bal"] == 100
        assert db.acct.count_documents({}, session=s) == 4              # aggregate: allowed
        assert sorted(db.acct.distinct("_id", session=s)) == [0, 1, 2, 3]
        s.commit_transaction()


def test_cursor_opened_in_a_transaction_continues_in_it(client, db):
    db.big.insert_many([{"_id": i} for i in range(250)])
    with client.start_session() as s:
        with s.start_transaction():
            db.big.insert_one({"_id": 1000}, session=s)
            ids = [d["_id"] for d in db.big.find({}, session=s, batch_size=50)]   # getMores in the txn
        assert len(ids) == 251 and 1000 in ids


def test_create_and_create_indexes_inside_a_transaction(client, db):
    db.old.insert_one({"_id": 1})
    with client.start_session() as s:
        with s.start_transaction():
            db.create_collection("fresh", session=s)
            db.fresh.insert_one({"_id": 1, "k": 1}, session=s)
            db.fresh.create_index("k", session=s)              # created in this transaction: allowed
            db.implicit.insert_one({"_id": 1}, session=s)
            db.implicit.create_index("k", session=s)
            with pytest.raises(OperationFailure) as ei:
                db.old.create_index("k", session=s)
            assert ei.value.code == 263
    assert db.fresh.find_one() == {"_id": 1, "k": 1}
    assert "k_1" in db.fresh.index_information() and "k_1" in db.implicit.index_information()
    assert "k_1" not in db.old.index_information()


def test_write_errors_abort_the_transaction(client, db):
    _setup(db)
    with client.start_session() as s:
        s.start_transaction()
        db.acct.insert_one({"_id": 77, "bal": 0}, session=s)
        with pytest.raises(DuplicateKeyError):
            db.acct.insert_one({"_id": 0}, session=s)
        with pytest.raises(OperationFailure) as ei:
            s.commit_transaction()
        assert ei.value.code == 251
    assert db.acct.find_one({"_id": 77}) is None


def test_raw_protocol_rules(server, db):
    db.acct.insert_one({"_id": 1, "bal": 5})
    lsid = new_lsid()
    base = {"lsid": lsid, "autocommit": False}
    with RawMsg(server.port) as raw:
        def cmd(body, dbname=db.name):
            r = raw.cmd({**body, "$db": dbname})
            return r
        # a command with autocommit:false but no started transaction
        r = cmd({"find": "acct", **base, "txnNumber": txn(1)})
        assert r["code"] == 251 and r["errorLabels"] == ["TransientTransactionError"]
        r = cmd({"find": "acct", **base, "txnNumber": txn(1), "startTransaction": True,
                 "readConcern": {"level": "snapshot"}})
        assert r["ok"] == 1.0 and r["cursor"]["firstBatch"] == [{"_id": 1, "bal": 5}]
        r = cmd({"insert": "acct", "documents": [{"_id": 2}], **base, "txnNumber": txn(1),
                 "readConcern": {"level": "snapshot"}})
        assert r["code"] == 72                                   # readConcern only on the first
        r = cmd({"insert": "acct", "documents": [{"_id": 2}], **base, "txnNumber": txn(1),
                 "writeConcern": {"w": 1}})
        assert r["code"] == 72
        for refused in ({"count": "acct"}, {"ping": 1}, {"drop": "acct"}, {"explain": {"find": "acct"}}):
            r = cmd({**refused, **base, "txnNumber": txn(1)})
            assert r["code"] == 263 and r["codeName"] == "OperationNotSupportedInTransaction", r
        # refusals leave the transaction open; a failing operation aborts it
        r = cmd({"insert": "acct", "documents": [{"_id": 6}], **base, "txnNumber": txn(1)})
        assert r["n"] == 1
        r = cmd({"find": "acct", "filter": {"$bad": 1}, **base, "txnNumber": txn(1)})
        assert r["code"] == 2
        r = cmd({"commitTransaction": 1, **base, "txnNumber": txn(1)}, "admin")
        assert r["code"] == 251
        r = cmd({"abortTransaction": 1, **base, "txnNumber": txn(1)}, "admin")
        assert r["code"] == 251

        # commit is idempotent; a committed transaction cannot be aborted
        r = cmd({"insert": "acct", "documents": [{"_id": 3}], **base, "txnNumber": txn(2),
                 "startTransaction": True})
        assert r["n"] == 1
        for _ in range(2):
            r = cmd({"commitTransaction": 1, **base, "txnNumber": txn(2), "writeConcern": {"w": "majority"}},
                    "admin")
            assert r["ok"] == 1.0, r
        r = cmd({"abortTransaction": 1, **base, "txnNumber": txn(2)}, "admin")
        assert r["code"] == 256
        r = cmd({"insert": "acct", "documents": [{"_id": 4}], **base, "txnNumber": txn(2)})
        assert r["code"] == 256
        # older numbers are too old; the same number cannot start twice
        r = cmd({"find": "acct", **base, "txnNumber": txn(1), "startTransaction": True})
        assert r["code"] == 225
        r = cmd({"find": "acct", **base, "txnNumber": txn(2), "startTransaction": True})
        assert r["code"] == 117
        # a higher number aborts the open transaction
        cmd({"insert": "acct", "documents": [{"_id": 5}], **base, "txnNumber": txn(3), "startTransaction": True})
        r = cmd({"find": "acct", **base, "txnNumber": txn(4), "startTransaction": True})
        assert r["ok"] == 1.0
        r = cmd({"commitTransaction": 1, **base, "txnNumber": txn(3)}, "admin")
        assert r["code"] == 225
        r = cmd({"commitTransaction": 1, **base, "txnNumber": txn(4)}, "admin")
        assert r["ok"] == 1.0
        # malformed transaction fields
        assert cmd({"find": "acct", "lsid": lsid, "txnNumber": txn(9), "autocommit": True})["code"] == 72
        assert cmd({"find": "acct", "lsid": lsid, "autocommit": False})["code"] == 72
        assert cmd({"find": "acct", "lsid": lsid, "txnNumber": txn(9), "startTransaction": True})["code"] == 72
        assert cmd({"find": "acct", **base, "txnNumber": txn(9), "startTransaction": False})["code"] == 72
        assert cmd({"commitTransaction": 1, "lsid": lsid}, "admin")["code"] == 72
        assert cmd({"listCollections": 1, **base, "txnNumber": txn(9), "startTransaction": True})["code"] == 263
        r = cmd({"find": "system.version", **base, "txnNumber": txn(9), "startTransaction": True}, "admin")
        assert r["code"] == 263
    assert sorted(d["_id"] for d in db.acct.find()) == [1, 3]


def test_lifetime_limit_aborts_abandoned_transactions(client, db, server):
    db.acct.insert_one({"_id": 1, "bal": 0})
    client.admin.command("setParameter", 1, transactionLifetimeLimitSeconds=1)
    try:
        s = client.start_session()
        s.start_transaction()
        db.acct.update_one({"_id": 1}, {"$set": {"bal": 1}}, session=s)
        time.sleep(2.5)                     # the reaper runs every second
        with pytest.raises(OperationFailure) as ei:
            s.commit_transaction()
        assert ei.value.code == 251 and ei.value.has_error_label("TransientTransactionError")
        # its document lock is gone: a new transaction can write the document
        with client.start_session() as s2:
            s2.with_transaction(lambda s: db.acct.update_one({"_id": 1}, {"$set": {"bal": 2}}, session=s))
        s.end_session()
    finally:
        client.admin.command("setParameter", 1, transactionLifetimeLimitSeconds=60)
    assert db.acct.find_one({"_id": 1})["bal"] == 2


def test_end_sessions_aborts_open_transactions(server, client, db):
    db.acct.insert_one({"_id": 1, "bal": 0})
    lsid = new_lsid()
    with RawMsg(server.port) as raw:
        raw.cmd({"update": "acct", "updates": [{"q": {"_id": 1}, "u": {"$set": {"bal": 5}}}], "lsid": lsid,
                 "txnNumber": txn(1), "autocommit": False, "startTransaction": True, "$db": db.name})
        assert raw.cmd({"endSessions": [lsid], "$db": "admin"})["ok"] == 1.0
        r = raw.cmd({"commitTransaction": 1, "lsid": lsid, "txnNumber": txn(1), "autocommit": False,
                     "$db": "admin"})
        assert r["code"] == 251
    # the lock went with it
    db.acct.update_one({"_id": 1}, {"$set": {"bal": 9}})
    assert db.acct.find_one({"_id": 1})["bal"] == 9


def test_transaction_with_majority_write_concern_and_primary_reads(client, db):
    _setup(db, 2)
    with client.start_session() as s:
        s.with_transaction(lambda s: db.acct.update_one({"_id": 0}, {"$inc": {"bal": 1}}, session=s),
                           read_concern=ReadConcern("majority"), write_concern=WriteConcern("majority"),
                           read_preference=ReadPreference.PRIMARY)
    assert _balances(db) == [101, 100]


def test_motor_with_transaction(server, db):
    _setup(db, 2)

    async def go():
        client = AsyncIOMotorClient(server.url)
        mdb = client[db.name]
        try:
            async with await client.start_session() as s:
                async def cb(s):
                    await mdb.acct.update_one({"_id": 0}, {"$inc": {"bal": -5}}, session=s)
                    await mdb.acct.update_one({"_id": 1}, {"$inc": {"bal": 5}}, session=s)
                    inside = await mdb.acct.find_one({"_id": 0}, session=s)
                    outside = await mdb.acct.find_one({"_id": 0})
                    return inside["bal"], outside["bal"]
                return await s.with_transaction(cb)
        finally:
            client.close()
    assert asyncio.run(go()) == (95, 100)
    assert _balances(db) == [95, 105]


def test_concurrent_transactions_on_one_document_serialize(client, db):
    db.ctr.insert_one({"_id": 1, "n": 0})
    errors = []

    def worker():
        try:
            with client.start_session() as s:
                for _ in range(10):
                    s.with_transaction(lambda s: db.ctr.update_one({"_id": 1}, {"$inc": {"n": 1}}, session=s))
        except Exception as e:     # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert db.ctr.find_one({"_id": 1})["n"] == 40


def test_commit_leaves_a_session_record(client, db):
    """The commit's WAL batch holds the session record (config.transactions) too: a
    retried commit after a restart is answered from it (test_transactions_crash)."""
    _setup(db, 2)
    with client.start_session() as s:
        s.with_transaction(lambda s: [db.acct.update_one({"_id": i}, {"$inc": {"bal": 1}}, session=s)
                                      for i in range(2)])
        rec = client.config.transactions.find_one({"_id": {"id": s.session_id["id"]}})
    assert rec["state"] == "committed" and rec["txnNum"] >= 1
    assert _balances(db) == [101, 101]
