"""Transactions and retryable writes across kill -9: a commit is all or nothing, an
uncommitted transaction leaves nothing, and session records (retryable-write
replies, committed transactions) survive the restart — from the WAL, and from the
table once flushed."""
import time

from bson import Int64
from pymongo import MongoClient

from tests.commands.rawmsg import RawMsg, new_lsid, txn
from tests.serverutil import ServerProcess

N = 3000


def _strip(r: dict) -> dict:
    return {k: v for k, v in r.items() if k not in ("$clusterTime", "operationTime")}


def _counts(port: int) -> tuple[int, int, int]:
    c = MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=10000)
    try:
        db = c.bank
        ctr = db.ctr.find_one({"_id": 1}) or {"n": 0}
        return db.a.count_documents({}), db.b.count_documents({}), ctr["n"]
    finally:
        c.close()


def test_kill_during_commit_is_all_or_nothing(tmp_path):
    """A big transaction (2 x 3000 inserts + an update) is committed and the server is
    killed a few milliseconds into the commit, at several points. After each restart
    either everything of the transaction is there or nothing."""
    srv = ServerProcess(str(tmp_path / "lake")).start()
    outcomes = []
    try:
        with MongoClient(srv.url) as c:
            c.bank.ctr.insert_one({"_id": 1, "n": 0})
        expected = (0, 0, 0)
        for round_, delay in enumerate((0.0, 0.03, 0.08, 0.5)):
            lsid = new_lsid()
            base = {"lsid": lsid, "txnNumber": txn(1), "autocommit": False}
            with RawMsg(srv.port, timeout=60) as raw:
                off = round_ * N
                for coll in ("a", "b"):
                    r = raw.cmd({"insert": coll, "documents": [{"_id": off + i, "pad": "x" * 100} for i in range(N)],
                                 **base, **({"startTransaction": True} if coll == "a" else {}), "$db": "bank"})
                    assert r["n"] == N, r
                r = raw.cmd({"update": "ctr", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}}], **base,
                             "$db": "bank"})
                assert r["nModified"] == 1, r
                raw.send({"commitTransaction": 1, **base, "$db": "admin"})
                time.sleep(delay)
                srv.kill()
            srv.start()
            got = _counts(srv.port)
            done = (expected[0] + N, expected[1] + N, expected[2] + 1)
            assert got in (expected, done), (delay, got, expected)
            outcomes.append(got == done)
            # a retried commit answers from the session record, or the transaction is gone
            with RawMsg(srv.port) as raw:
                r = raw.cmd({"commitTransaction": 1, **base, "$db": "admin"})
            assert (r["ok"] == 1.0) if got == done else (r["code"] == 251), (got, r)
            expected = got
    finally:
        srv.kill()
    assert outcomes[-1] is True          # half a second is plenty for the commit to land
    print("\ncommitted before the kill:", outcomes)


def test_uncommitted_transaction_leaves_nothing_after_kill(tmp_path):
    srv = ServerProcess(str(tmp_path / "lake")).start()
    try:
        # (a short server selection: closing the client after the kill tries endSessions)
        with MongoClient(srv.url, serverSelectionTimeoutMS=500) as c:
            c.bank.a.insert_one({"_id": "keep"})
            s = c.start_session()
            s.start_transaction()
            c.bank.a.insert_many([{"_id": i} for i in range(100)], session=s)
            c.bank.a.delete_one({"_id": "keep"}, session=s)
            c.admin.command("fsync")          # a flush while the transaction is open writes none of it
            srv.kill()
        srv.start()
        with MongoClient(srv.url) as c:
            assert list(c.bank.a.find()) == [{"_id": "keep"}]
    finally:
        srv.kill()


def test_retryable_write_records_survive_restarts(tmp_path):
    srv = ServerProcess(str(tmp_path / "lake")).start()
    lsid = new_lsid()
    ins = {"insert": "c", "documents": [{"_id": 1, "n": 0}, {"_id": 2, "n": 0}], "lsid": lsid,
           "txnNumber": txn(1), "$db": "db"}
    upd = {"update": "c", "updates": [{"q": {"_id": 1}, "u": {"$inc": {"n": 1}}},
                                      {"q": {"_id": 3}, "u": {"$inc": {"n": 1}}, "upsert": True}],
           "lsid": lsid, "txnNumber": txn(2), "$db": "db"}
    lsid2 = new_lsid()
    fam = {"findAndModify": "c", "query": {"_id": 2}, "update": {"$inc": {"n": 5}}, "new": True,
           "lsid": lsid2, "txnNumber": txn(7), "$db": "db"}
    try:
        with RawMsg(srv.port) as raw:
            first_ins = _strip(raw.cmd(dict(ins)))
            first_upd = _strip(raw.cmd(dict(upd)))
            first_fam = _strip(raw.cmd(dict(fam)))
        assert first_ins == {"n": 2, "ok": 1.0}
        assert first_upd["nModified"] == 1 and first_upd["upserted"] == [{"index": 1, "_id": 3}]
        assert first_fam["value"] == {"_id": 2, "n": 5}
        for flush in (False, True):
            if flush:                       # records then live in the config.transactions table
                with MongoClient(srv.url) as c:
                    c.admin.command("fsync")
            srv.kill()
            srv.start()
            with RawMsg(srv.port) as raw:
                assert _strip(raw.cmd(dict(fam))) == first_fam
                assert _strip(raw.cmd(dict(upd))) == first_upd
                r = raw.cmd(dict(ins))        # older than the session's newest: too old, not re-applied
                assert r["code"] == 225
                r = raw.cmd({**ins, "lsid": lsid2, "txnNumber": txn(6)})
                assert r["code"] == 225
            with MongoClient(srv.url) as c:
                assert sorted((d["_id"], d["n"]) for d in c.db.c.find()) == [(1, 1), (2, 5), (3, 1)]
                rec = c.config.transactions.find_one({"_id": {"id": lsid["id"]}})
                assert rec["txnNum"] == Int64(2) and rec["reply"]["nModified"] == 1
        # endSessions forgets the records for good (also after a restart)
        with RawMsg(srv.port) as raw:
            raw.cmd({"endSessions": [lsid], "$db": "admin"})
        srv.kill()
        srv.start()
        with RawMsg(srv.port) as raw:
            r = raw.cmd(dict(upd))
            assert r["nModified"] == 2
    finally:
        srv.kill()
