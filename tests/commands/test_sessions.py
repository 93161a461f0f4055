"""Logical sessions, causal consistency and snapshot reads at a past cluster time."""
import time

from bson import Timestamp
from pymongo import MongoClient

from mongolake.commands import transactions
from mongolake.commands.context import ServerOptions, ServerState
from mongolake.commands.sessions import SESSION_TIMEOUT, expire_sessions
from mongolake.engine import Engine
from tests.commands.rawmsg import RawMsg, new_lsid, txn
from tests.serverutil import ServerProcess


def test_session_commands(server, db):
    db.c.insert_many([{"_id": i} for i in range(10)])
    with RawMsg(server.port) as raw:
        r = raw.cmd({"startSession": 1, "$db": "admin"})
        assert r["ok"] == 1.0 and r["timeoutMinutes"] == 30
        lsid = r["id"]
        assert raw.cmd({"refreshSessions": [lsid], "$db": "admin"})["ok"] == 1.0
        # killSessions closes the session's cursors and aborts its transaction
        r = raw.cmd({"find": "c", "batchSize": 2, "lsid": lsid, "$db": db.name})
        cid = r["cursor"]["id"]
        r = raw.cmd({"insert": "c", "documents": [{"_id": 99}], "lsid": lsid, "txnNumber": txn(1),
                     "autocommit": False, "startTransaction": True, "$db": db.name})
        assert r["n"] == 1
        assert raw.cmd({"killSessions": [lsid], "$db": "admin"})["ok"] == 1.0
        r = raw.cmd({"getMore": cid, "collection": "c", "lsid": lsid, "$db": db.name})
        assert r["code"] == 43
        r = raw.cmd({"commitTransaction": 1, "lsid": lsid, "txnNumber": txn(1), "autocommit": False,
                     "$db": "admin"})
        assert r["code"] == 251
        # killAllSessions aborts every open transaction
        other = new_lsid()
        raw.cmd({"insert": "c", "documents": [{"_id": 98}], "lsid": other, "txnNumber": txn(1),
                 "autocommit": False, "startTransaction": True, "$db": db.name})
        assert raw.cmd({"killAllSessions": [], "$db": "admin"})["ok"] == 1.0
        r = raw.cmd({"commitTransaction": 1, "lsid": other, "txnNumber": txn(1), "autocommit": False,
                     "$db": "admin"})
        assert r["code"] == 251
    assert db.c.count_documents({}) == 10


def test_expired_sessions_lose_transactions_and_records(tmp_path):
    eng = Engine(str(tmp_path / "lake"), flush_interval=3600).open()
    try:
        state = ServerState(eng, ServerOptions())
        key = b"k" * 16
        tx = eng.begin_transaction()
        transactions.registry(state).txns[key] = transactions.SessionTxn(1, tx)
        state.sessions[key] = time.time()
        assert expire_sessions(state) == 0 and tx.state == "active"
        assert expire_sessions(state, now=time.time() + SESSION_TIMEOUT + 1) == 1
        assert tx.state == "aborted" and key not in transactions.registry(state).txns
    finally:
        eng.close()


def test_causal_consistency_and_operation_time(server, client, db):
    with client.start_session(causal_consistency=True) as s:
        db.c.insert_one({"_id": 1}, session=s)
        assert s.operation_time is not None
        assert db.c.find_one({"_id": 1}, session=s) == {"_id": 1}      # sent with afterClusterTime
    with RawMsg(server.port) as raw:
        r = raw.cmd({"find": "c", "readConcern": {"afterClusterTime": Timestamp(1, 1)}, "$db": db.name})
        assert r["ok"] == 1.0 and isinstance(r["operationTime"], Timestamp)
        future = Timestamp(r["operationTime"].time + 3600, 1)
        r = raw.cmd({"find": "c", "readConcern": {"afterClusterTime": future}, "$db": db.name})
        assert r["code"] == 72
        r = raw.cmd({"find": "c", "readConcern": {"level": "snapshot", "atClusterTime": future}, "$db": db.name})
        assert r["code"] == 72
        r = raw.cmd({"find": "c", "readConcern": {"level": "local", "atClusterTime": Timestamp(1, 1)},
                     "$db": db.name})
        assert r["code"] == 72


def _find_at(raw, ts, name="c", **extra):
    r = raw.cmd({"find": name, "sort": {"_id": 1}, "readConcern": {"level": "snapshot", "atClusterTime": ts},
                 "$db": "tt", **extra})
    assert r["ok"] == 1.0, r
    return r["cursor"]["firstBatch"]


def test_snapshot_reads_at_a_past_cluster_time(tmp_path):
    """Time travel: reads at earlier cluster times see the collection as it was, whether
    the state is in the table history (flushed), in memory, or, after a restart, in the
    change-data files."""
    srv = ServerProcess(str(tmp_path / "lake")).start()
    try:
        times = []
        with RawMsg(srv.port) as raw:
            def write(body):
                r = raw.cmd({**body, "$db": "tt"})
                assert r["ok"] == 1.0, r
                times.append(r["operationTime"])
            write({"insert": "c", "documents": [{"_id": "a", "v": 1}]})
            raw.cmd({"fsync": 1, "$db": "admin"})
            time.sleep(1.1)                    # the next writes fall in a later second than the flush
            write({"update": "c", "updates": [{"q": {"_id": "a"}, "u": {"$set": {"v": 2}}}]})
            write({"insert": "c", "documents": [{"_id": "b", "v": 1}, {"_id": "c", "v": 3}]})
            raw.cmd({"fsync": 1, "$db": "admin"})
            write({"delete": "c", "deletes": [{"q": {"_id": "a"}, "limit": 1}]})
            expect = [[{"_id": "a", "v": 1}], [{"_id": "a", "v": 2}],
                      [{"_id": "a", "v": 2}, {"_id": "b", "v": 1}, {"_id": "c", "v": 3}],
                      [{"_id": "b", "v": 1}, {"_id": "c", "v": 3}]]
            for ts, docs in zip(times, expect):
                assert _find_at(raw, ts) == docs, ts
            # a cursor opened in the past stays there (point lookups run at each getMore)
            r = raw.cmd({"find": "c", "filter": {"_id": {"$in": ["b", "c", "a"]}}, "batchSize": 1,
                         "readConcern": {"level": "snapshot", "atClusterTime": times[2]}, "$db": "tt"})
            assert r["cursor"]["firstBatch"] == [{"_id": "b", "v": 1}]
            r = raw.cmd({"getMore": r["cursor"]["id"], "collection": "c", "$db": "tt"})
            assert r["cursor"]["nextBatch"] == [{"_id": "c", "v": 3}, {"_id": "a", "v": 2}]
            r = raw.cmd({"aggregate": "c", "pipeline": [{"$count": "n"}], "cursor": {},
                         "readConcern": {"level": "snapshot", "atClusterTime": times[0]}, "$db": "tt"})
            assert r["cursor"]["firstBatch"] == [{"n": 1}]
            r = raw.cmd({"count": "c", "query": {"v": {"$lt": 3}},
                         "readConcern": {"level": "snapshot", "atClusterTime": times[2]}, "$db": "tt"})
            assert r["n"] == 2
            r = raw.cmd({"distinct": "c", "key": "v",
                         "readConcern": {"level": "snapshot", "atClusterTime": times[1]}, "$db": "tt"})
            assert r["values"] == [2]
            r = raw.cmd({"distinct": "c", "key": "v",
                         "readConcern": {"level": "snapshot", "atClusterTime": times[3]}, "$db": "tt"})
            assert r["values"] == [1, 3]
            # writes never run under a past cluster time
            r = raw.cmd({"insert": "c", "documents": [{"_id": "z"}], "$db": "tt",
                         "readConcern": {"level": "snapshot", "atClusterTime": times[0]}})
            assert r["ok"] == 1.0
        srv.stop()
        srv.start()
        with RawMsg(srv.port) as raw:
            for ts, docs in zip(times, expect):
                assert _find_at(raw, ts) == docs, ts
        with MongoClient(srv.url) as c:
            assert sorted(d["_id"] for d in c.tt.c.find()) == ["b", "c", "z"]
    finally:
        srv.kill()
