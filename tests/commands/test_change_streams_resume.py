"""Change streams across server restarts: a token taken before a clean stop (SIGTERM,
flush: events come back from the tables' change-data files) or a crash (kill -9 after
acknowledged writes: events come back from the WAL) resumes with no gap and no
duplicate; and a driver that is iterating resumes by itself."""
import threading
import time

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from mongolake.commands.changestream_events import ResumePoint
from mongolake.engine.engine import Engine
from tests.serverutil import ServerProcess

AWAIT = 300


def _drain(cs, n, timeout=20.0):
    out = []
    deadline = time.time() + timeout
    while len(out) < n:
        assert time.time() < deadline, f"{len(out)} of {n} events"
        ev = cs.try_next()
        if ev is not None:
            out.append(ev)
    return out


def _ids(evs):
    return [e["documentKey"]["_id"] for e in evs]


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_resume_with_last_token_after_restart(tmp_path, how, fmt):
    srv = ServerProcess(str(tmp_path / "lake"), extra=["--format", fmt]).start()
    try:
        client = MongoClient(srv.url, serverSelectionTimeoutMS=10000)
        c = client.rs.c
        c.insert_one({"_id": 0})
        with c.watch(max_await_time_ms=AWAIT) as cs:
            for i in range(1, 41):
                c.insert_one({"_id": i})
            c.update_one({"_id": 3}, {"$set": {"x": 1}})
            c.delete_one({"_id": 4})
            seen = _drain(cs, 22)             # stop part-way: the token is in the middle
            token = seen[-1]["_id"]
        c.insert_many([{"_id": 100 + i} for i in range(5)])      # acknowledged, never watched
        client.close()
        if how == "sigterm":
            srv.stop()
        else:
            srv.kill()
        srv = ServerProcess(srv.storage, port=srv.port, extra=["--format", fmt]).start()
        client = MongoClient(srv.url, serverSelectionTimeoutMS=10000)
        c = client.rs.c
        c.insert_one({"_id": 200})                                 # after the restart
        with c.watch(resume_after=token, max_await_time_ms=AWAIT) as cs:
            rest = _drain(cs, 18 + 2 + 5 + 1)
            assert cs.try_next() is None
        all_events = seen + rest
        assert _ids(seen) == list(range(1, 23))
        assert _ids(rest) == list(range(23, 41)) + [3, 4] + [100 + i for i in range(5)] + [200]
        assert [e["operationType"] for e in rest[18:20]] == ["update", "delete"]
        toks = [e["_id"]["_data"] for e in all_events]
        assert toks == sorted(toks) and len(set(toks)) == len(toks)
        client.close()
    finally:
        if srv.alive():
            srv.stop()


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_iterating_driver_resumes_across_a_restart(tmp_path, fmt):
    """pymongo sees the connection drop, reconnects to the restarted server and resumes with
    its cached resume token (the ResumableChangeStreamError path): every event exactly once."""
    srv = ServerProcess(str(tmp_path / "lake"), extra=["--format", fmt]).start()
    try:
        client = MongoClient(srv.url, serverSelectionTimeoutMS=30000)
        writer = MongoClient(srv.url, serverSelectionTimeoutMS=30000)
        writer.rs.c.insert_one({"_id": 0})
        got = []
        with client.rs.c.watch(max_await_time_ms=AWAIT) as cs:
            for i in range(1, 6):
                writer.rs.c.insert_one({"_id": i})
            got += _drain(cs, 5)
            srv.kill()
            restarted = threading.Event()

            def restart():
                nonlocal srv
                srv = ServerProcess(srv.storage, port=srv.port, extra=["--format", fmt]).start()
                for i in range(6, 11):
                    writer.rs.c.insert_one({"_id": i})
                restarted.set()
            t = threading.Thread(target=restart)
            t.start()
            got += _drain(cs, 5, timeout=60)
            t.join()
        assert restarted.is_set()
        assert _ids(got) == list(range(1, 11))
        client.close()
        writer.close()
    finally:
        if srv.alive():
            srv.stop()


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_history_lost_when_change_files_are_gone(tmp_path, fmt):
    """Events flushed to change-data files, then vacuumed away: a token from before them
    gets ChangeStreamHistoryLost (286) (as mongod when the token's event has left the
    oplog); a high-water-mark token past them (a caught-up stream's
    postBatchResumeToken) still resumes."""
    lake = str(tmp_path / "lake")
    eng = Engine(lake, table_format=fmt).open()
    first = eng.insert("h", "c", [{"_id": 1}]).seq
    eng.insert("h", "c", [{"_id": 2}])
    eng.flush()
    last = eng.insert("h", "c", [{"_id": 3}]).seq
    eng.flush()
    eng.vacuum("h", "c", retention_seconds=0)
    eng.close()
    with_srv = ServerProcess(lake, extra=["--format", fmt]).start()
    try:
        client = MongoClient(with_srv.url, serverSelectionTimeoutMS=10000)
        with pytest.raises(OperationFailure) as ei:
            client.h.c.watch(resume_after=ResumePoint(first, 0, 0).token())
        assert ei.value.code == 286
        with client.h.c.watch(resume_after=ResumePoint.high_water_mark(last, 0).token(),
                              max_await_time_ms=AWAIT) as cs:
            client.h.c.insert_one({"_id": 4})
            assert _ids(_drain(cs, 1)) == [4]
        client.close()
    finally:
        with_srv.stop()


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_history_lost_past_the_configured_retention(tmp_path, fmt):
    srv = ServerProcess(str(tmp_path / "lake"), env={"MONGOLAKE_CHANGE_RETENTION_SECONDS": "1"},
                        extra=["--format", fmt]).start()
    try:
        client = MongoClient(srv.url, serverSelectionTimeoutMS=10000)
        c = client.h.c
        c.insert_one({"_id": 0})
        with c.watch(max_await_time_ms=AWAIT) as cs:
            c.insert_one({"_id": 1})
            c.insert_one({"_id": 2})
            one, two = _drain(cs, 2)
        time.sleep(1.5)
        with pytest.raises(OperationFailure) as ei:      # the event after it is past retention
            c.watch(resume_after=one["_id"])
        assert ei.value.code == 286 and "ChangeStreamHistoryLost" in str(ei.value.details)
        with c.watch(resume_after=two["_id"], max_await_time_ms=AWAIT) as cs:   # nothing after it is missing
            c.insert_one({"_id": 3})
            assert _ids(_drain(cs, 1)) == [3]
        client.close()
    finally:
        srv.stop()
