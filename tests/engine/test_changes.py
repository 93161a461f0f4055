"""The engine's change log: ordered events, durable visibility, persistence in change files."""
import asyncio

import bson
import pyarrow as pa
from deltalake import DeltaTable

from mongolake.engine import Engine


def ops(recs):
    return [(r.op, r.db, r.coll) for r in recs]


def test_events_in_order_with_images(tmp_path):
    e = Engine(str(tmp_path / "lake"), flush_interval=3600).open()
    try:
        e.insert("db", "c", [{"_id": 1, "v": 1}, {"_id": 2, "v": 2}])
        e.update("db", "c", {"_id": 1}, {"$set": {"v": 10}})
        e.delete("db", "c", {"_id": 2})
        recs = e.changelog.read(0)
        assert ops(recs) == [("create", "db", "c"), ("i", "db", "c"), ("i", "db", "c"), ("u", "db", "c"),
                             ("d", "db", "c")]
        seqs = [(r.seq, r.index) for r in recs]
        assert seqs == sorted(seqs)
        upd = recs[3]
        assert bson.decode(upd.doc)["v"] == 10 and bson.decode(upd.before)["v"] == 1
        assert upd.desc["updatedFields"] == {"v": 10}
        assert recs[4].document_key == {"_id": 2}
        assert e.changelog.read(recs[2].seq) == recs[3:]
    finally:
        e.close()


def test_events_survive_flush_and_restart(tmp_path):
    e = Engine(str(tmp_path / "lake"), flush_interval=3600).open()
    e.insert("db", "c", [{"_id": i, "v": i} for i in range(5)])
    e.update("db", "c", {"_id": 3}, {"$inc": {"v": 100}})
    e.flush()
    e.delete("db", "c", {"_id": 4})
    e.flush()
    e.rename_collection("db", "c", "db", "d")
    e.wait_durable(e.wal.last_seq)
    before = e.changelog.read(0)
    assert ops(before)[-1] == ("rename", "db", "c")
    e.close()
    e2 = Engine(str(tmp_path / "lake"), flush_interval=3600).open()
    try:
        assert e2.changelog.oldest_seq == 0 or e2.changelog.oldest_seq > before[0].seq
        after = e2.changelog._read_persisted(0, 1 << 62, 10_000) + e2.changelog.read(e2.changelog.persisted_seq)
        assert ops(after) == ops(before)
        assert [(r.seq, r.index) for r in after] == [(r.seq, r.index) for r in before]
        assert [r.document_key for r in after] == [r.document_key for r in before]
        # resuming from the middle
        mid = before[3].seq
        again = e2.changelog.read(mid, limit=100)
        assert ops(again)[:1] == ops([r for r in before if r.seq > mid])[:1]
    finally:
        e2.close()
    # delta-rs reads the same changes as Delta's change data feed
    cdf = pa.table(DeltaTable(str(tmp_path / "lake" / "db" / "c")).load_cdf(starting_version=0).read_all())
    kinds = sorted(cdf.column("_change_type").to_pylist())
    assert kinds.count("insert") == 5 and kinds.count("delete") == 1 and kinds.count("update_postimage") == 1


def test_waiters_wake_on_durable_writes(tmp_path):
    e = Engine(str(tmp_path / "lake"), flush_interval=3600).open()
    try:
        async def main():
            last = e.changelog.durable_seq
            waiter = asyncio.create_task(e.changelog.wait(last, 5.0))
            await asyncio.sleep(0.05)
            assert not waiter.done()
            await asyncio.to_thread(e.insert, "db", "c", [{"_id": 1}])
            assert await asyncio.wait_for(waiter, 2.0) is True
            assert await e.changelog.wait(e.changelog.durable_seq, 0.05) is False
        asyncio.run(main())
    finally:
        e.close()
