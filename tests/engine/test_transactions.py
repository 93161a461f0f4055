"""Engine transactions: snapshot isolation, own writes, first committer wins, atomic commit."""
import pytest

from mongolake.engine import Engine
from mongolake.engine.txn import using
from mongolake.errors import MongoError


@pytest.fixture
def eng(tmp_path):
    e = Engine(str(tmp_path / "lake"), flush_interval=3600).open()
    e.insert("db", "acct", [{"_id": i, "bal": 100} for i in range(4)])
    yield e
    e.close()


def bal(e, i):
    return e.get("db", "acct", i)["bal"]


def test_commit_is_atomic_and_isolated(eng):
    tx = eng.begin_transaction({"txnNumber": 1})
    with using(tx):
        eng.update("db", "acct", {"_id": 0}, {"$inc": {"bal": -30}})
        eng.update("db", "acct", {"_id": 1}, {"$inc": {"bal": 30}})
        assert bal(eng, 0) == 70                       # own writes visible inside
        assert eng.count("db", "acct", {"bal": 130}) == 1
    assert bal(eng, 0) == 100 and bal(eng, 1) == 100    # invisible outside until commit
    seq = eng.commit_transaction(tx)
    assert bal(eng, 0) == 70 and bal(eng, 1) == 130
    batch = [r for r in eng.changelog.read(seq - 1) if r.seq == seq]
    assert len(batch) == 2 and all(r.txn == {"txnNumber": 1} for r in batch)


def test_snapshot_reads_ignore_later_commits_and_flushes(eng):
    tx = eng.begin_transaction()
    eng.update("db", "acct", {"_id": 2}, {"$set": {"bal": 5}})     # committed after tx started
    eng.flush()
    eng.insert("db", "acct", [{"_id": 9, "bal": 1}])
    with using(tx):
        assert bal(eng, 2) == 100
        assert eng.get("db", "acct", 9) is None
        assert sorted(d["_id"] for d in eng.find("db", "acct", {"bal": {"$gte": 100}}, as_raw=False)) == [0, 1, 2, 3]
    eng.abort_transaction(tx)


def test_write_conflicts_first_committer_wins(eng):
    t1 = eng.begin_transaction()
    t2 = eng.begin_transaction()
    with using(t1):
        eng.update("db", "acct", {"_id": 3}, {"$inc": {"bal": 1}})
    with using(t2), pytest.raises(MongoError) as ei:
        eng.update("db", "acct", {"_id": 3}, {"$inc": {"bal": 2}})
    assert ei.value.code == 112 and "TransientTransactionError" in ei.value.labels
    eng.commit_transaction(t1)
    assert bal(eng, 3) == 101
    # a write committed outside after the snapshot also conflicts
    t3 = eng.begin_transaction()
    eng.update("db", "acct", {"_id": 0}, {"$inc": {"bal": 1}})
    with using(t3), pytest.raises(MongoError) as ei:
        eng.delete("db", "acct", {"_id": 0})
    assert ei.value.code == 112


def test_abort_leaves_nothing(eng):
    tx = eng.begin_transaction()
    with using(tx):
        eng.insert("db", "acct", [{"_id": 50, "bal": 1}])
        eng.delete("db", "acct", {"_id": 1})
    eng.abort_transaction(tx)
    assert eng.get("db", "acct", 50) is None and bal(eng, 1) == 100
    with pytest.raises(MongoError) as ei:
        eng.commit_transaction(tx)
    assert ei.value.code == 251
