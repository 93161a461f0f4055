"""Cursors: batch sizes, the 16 MiB cap, the idle reaper (fake clock), killCursors, lsid/txnNumber."""
import bson
import pytest
from bson import Int64
from pymongo.errors import CursorNotFound, OperationFailure

from mongolake.commands.cursors import IDLE_TIMEOUT, MAX_BATCH_BYTES, CursorManager
from mongolake.errors import MongoError
from tests.commands.rawmsg import RawMsg, new_lsid
from tests.both_formats import client, server  # noqa: F401  (both table formats)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _docs(n: int, size: int = 0):
    return (bson.encode({"_id": i, "pad": "x" * size}) for i in range(n))


def test_reaper_closes_idle_cursors_but_not_no_timeout_ones():
    clock = FakeClock()
    mgr = CursorManager(clock=clock)
    closed = []

    def gen(tag):
        try:
            yield from _docs(10)
        finally:
            closed.append(tag)
    a = mgr.register("db.c", gen("a"), conn_id=1)
    b = mgr.register("db.c", gen("b"), conn_id=1, no_timeout=True)
    c = mgr.register("db.c", gen("c"), conn_id=2)
    for cur in (a, b, c):
        cur.next_batch(2)
    clock.now += IDLE_TIMEOUT - 1
    mgr.get(c.id, "db.c")                       # use refreshes the idle timer
    assert mgr.reap() == 0
    clock.now += 2
    assert mgr.reap() == 1 and a.id not in mgr.cursors and closed == ["a"]
    assert mgr.timed_out == 1
    clock.now += IDLE_TIMEOUT * 10
    assert mgr.reap() == 1 and c.id not in mgr.cursors
    assert b.id in mgr.cursors                  # noCursorTimeout
    with pytest.raises(MongoError) as ei:
        mgr.get(a.id, "db.c")
    assert ei.value.code == 43


def test_cursor_manager_checks_namespace_and_timeout_setting():
    clock = FakeClock()
    mgr = CursorManager(clock=clock, idle_timeout=5)
    cur = mgr.register("db.c", _docs(3), conn_id=1)
    with pytest.raises(MongoError) as ei:
        mgr.get(cur.id, "db.other")
    assert ei.value.code == 13
    clock.now += 6
    assert mgr.reap() == 1


def test_batches_respect_count_limit_and_byte_cap():
    mgr = CursorManager()
    cur = mgr.register("db.c", _docs(10, 100), conn_id=1, limit=7)
    assert len(cur.next_batch(3)) == 3 and not cur.exhausted
    assert len(cur.next_batch(0)) == 4 and cur.exhausted          # limit reached
    cur = mgr.register("db.c", _docs(10, 1000), conn_id=1)
    first = cur.next_batch(0, max_bytes=3500)
    assert len(first) == 3                                        # ~1030 bytes each + array overhead
    assert sum(len(d) + 3 for d in first) <= 3500
    big = mgr.register("db.c", _docs(2, 5000), conn_id=1)
    assert len(big.next_batch(0, max_bytes=100)) == 1             # the first document always goes out
    # a cursor that runs out exactly at the end of a batch is already exhausted (id 0 at once)
    cur = mgr.register("db.c", _docs(4), conn_id=1)
    cur.next_batch(4)
    assert cur.exhausted


def test_batch_size_and_getmore_over_the_wire(db):
    db.c.insert_many([{"_id": i} for i in range(25)])
    r = db.command("find", "c", batchSize=0)
    assert r["cursor"]["firstBatch"] == [] and r["cursor"]["id"] != 0
    cid = r["cursor"]["id"]
    got = []
    while cid:
        r = db.command("getMore", cid, collection="c", batchSize=10)
        got += r["cursor"]["nextBatch"]
        cid = r["cursor"]["id"]
    assert [d["_id"] for d in got] == list(range(25))
    r = db.command("find", "c", batchSize=5, limit=5)
    assert len(r["cursor"]["firstBatch"]) == 5 and r["cursor"]["id"] == 0
    r = db.command("find", "c", singleBatch=True, batchSize=3)
    assert len(r["cursor"]["firstBatch"]) == 3 and r["cursor"]["id"] == 0
    r = db.command("find", "c")
    assert len(r["cursor"]["firstBatch"]) == 25 and r["cursor"]["id"] == 0
    with pytest.raises(OperationFailure) as ei:
        db.command("find", "c", batchSize=-1)
    assert ei.value.code == 2
    with pytest.raises(OperationFailure) as ei:
        db.command("getMore", "notalong", collection="c")
    assert ei.value.code == 14
    with pytest.raises(OperationFailure) as ei:
        db.command("getMore", Int64(1234567), collection="c")
    assert ei.value.code == 43


def test_sixteen_mib_batch_cap(db):
    pad = "p" * (6 * 1024 * 1024)
    for i in range(3):
        db.big.insert_one({"_id": i, "pad": pad})
    r = db.command("find", "big", batchSize=100)
    first = r["cursor"]["firstBatch"]
    assert len(first) == 2 and r["cursor"]["id"] != 0          # 3 x 6 MiB would pass 16 MiB
    r = db.command("getMore", r["cursor"]["id"], collection="big")
    assert len(r["cursor"]["nextBatch"]) == 1 and r["cursor"]["id"] == 0
    assert sum(1 for _ in db.big.find()) == 3
    assert MAX_BATCH_BYTES == 16 * 1024 * 1024


def test_no_cursor_timeout_and_driver_cursor_kill(db):
    db.c.insert_many([{"_id": i} for i in range(30)])
    cur = db.c.find({}, no_cursor_timeout=True, batch_size=5)
    assert next(cur)["_id"] == 0
    cid = cur.cursor_id
    cur.close()                                                # pymongo sends killCursors
    with pytest.raises(CursorNotFound):
        db.command("getMore", cid, collection="c")


def test_lsid_and_txn_number_accepted_on_reads(server, db):
    db.c.insert_many([{"_id": i} for i in range(5)])
    lsid = new_lsid()
    with RawMsg(server.port) as raw:
        r = raw.cmd({"find": "c", "batchSize": 2, "lsid": lsid, "txnNumber": Int64(3), "$db": db.name})
        assert r["ok"] == 1.0 and len(r["cursor"]["firstBatch"]) == 2
        r = raw.cmd({"getMore": r["cursor"]["id"], "collection": "c", "lsid": lsid, "$db": db.name})
        assert [d["_id"] for d in r["cursor"]["nextBatch"]] == [2, 3, 4]
        # killSessions kills the session's cursors
        r = raw.cmd({"find": "c", "batchSize": 1, "lsid": lsid, "$db": db.name})
        raw.cmd({"killSessions": [lsid], "$db": "admin"})
        r = raw.cmd({"getMore": r["cursor"]["id"], "collection": "c", "$db": db.name})
        assert r["code"] == 43


def test_exhaust_cursor_type_works(db):
    from pymongo import CursorType
    db.c.insert_many([{"_id": i} for i in range(300)])
    got = [d["_id"] for d in db.c.find({}, cursor_type=CursorType.EXHAUST, batch_size=7).sort("_id", 1)]
    assert got == list(range(300))


def test_drop_and_rename_kill_open_cursors(client, db):
    db.c.insert_many([{"_id": i} for i in range(50)])
    client.admin.command("fsync")
    for action in (lambda: db.c.drop(), lambda: db.c.rename("c2"), lambda: client.drop_database(db.name)):
        db.c.insert_many([{"_id": i} for i in range(50)]) if db.c.estimated_document_count() == 0 else None
        r = db.command("find", "c", batchSize=2)
        cid = r["cursor"]["id"]
        action()
        with pytest.raises(OperationFailure) as ei:
            db.command("getMore", cid, collection="c")
        assert ei.value.code == 175
        with pytest.raises(OperationFailure) as ei:               # answered once, then unknown
            db.command("getMore", cid, collection="c")
        assert ei.value.code == 43
        db.c2.drop()


def test_invalidate_unit():
    mgr = CursorManager()
    a = mgr.register("db.c", _docs(5), conn_id=1)
    b = mgr.register("db.d", _docs(5), conn_id=1)
    c = mgr.register("other.c", _docs(5), conn_id=1)
    lc = mgr.register("db.$cmd.listCollections", _docs(5), conn_id=1)
    assert mgr.invalidate("db.c", reason="collection dropped") == 1
    assert mgr.invalidate(db="db", reason="database dropped") == 1
    assert set(mgr.cursors) == {c.id, lc.id}
    for cid in (a.id, b.id):
        with pytest.raises(MongoError) as ei:
            mgr.get(cid, "db.c")
        assert ei.value.code == 175
