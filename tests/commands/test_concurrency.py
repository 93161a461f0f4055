"""64 concurrent pymongo clients doing mixed reads and writes for 30 s against one server.

Every client is its own MongoClient (own connection, own monitor). Nothing may
fail; a shared ``$inc`` counter must end exactly at the number of acknowledged
increments, and the set of documents left must be exactly what the clients
believe they left (inserts minus deletes). One client also runs ``fsync`` every
few seconds so flushes to the table happen while the others read and write.
"""
import os
import random
import threading
import time

import pytest
from pymongo import MongoClient, ReturnDocument
from tests.both_formats import client, server  # noqa: F401  (both table formats)


CLIENTS = 64
SECONDS = float(os.environ.get("MONGOLAKE_CONCURRENCY_SECONDS", "30"))


@pytest.fixture
def seconds(table_format):
    """The full 30 s on Delta; at most 10 s on Iceberg (same mix, same checks) to keep CI time."""
    return SECONDS if table_format == "delta" else min(SECONDS, 10.0)


def test_sixty_four_clients_mixed_load(server, client, seconds):
    db_name = "concurrency_load"
    client.drop_database(db_name)
    client[db_name].ctr.insert_one({"_id": "c", "n": 0})
    client[db_name].small.insert_many([{"_id": i, "g": i % 5, "v": 0} for i in range(200)])
    deadline = time.monotonic() + seconds
    start = threading.Barrier(CLIENTS + 1)
    errors: list[str] = []
    incs = [0] * CLIENTS
    live: list[set] = [set() for _ in range(CLIENTS)]
    ops = [0] * CLIENTS

    def worker(t: int) -> None:
        rnd = random.Random(t)
        try:
            with MongoClient(server.url, maxPoolSize=1, serverSelectionTimeoutMS=20000,
                             socketTimeoutMS=60000) as c:
                db = c[db_name]
                c.admin.command("ping")
                start.wait(60)
                i = 0
                last_fsync = time.monotonic()
                while time.monotonic() < deadline:
                    r = rnd.random()
                    if r < 0.25:
                        res = db.ctr.update_one({"_id": "c"}, {"$inc": {"n": 1}})
                        assert res.modified_count == 1
                        incs[t] += 1
                    elif r < 0.45:
                        _id = f"{t}-{i}"
                        i += 1
                        db.docs.insert_one({"_id": _id, "t": t, "v": 0, "pad": "x" * rnd.randint(0, 300)})
                        live[t].add(_id)
                    elif r < 0.60 and live[t]:
                        _id = rnd.choice(sorted(live[t]))
                        doc = db.docs.find_one({"_id": _id})
                        assert doc is not None and doc["t"] == t, (_id, doc)
                    elif r < 0.70 and live[t]:
                        _id = rnd.choice(sorted(live[t]))
                        res = db.docs.update_one({"_id": _id}, {"$inc": {"v": 1}, "$set": {"by": t}})
                        assert res.matched_count == 1
                    elif r < 0.75 and live[t]:
                        _id = rnd.choice(sorted(live[t]))
                        assert db.docs.delete_one({"_id": _id}).deleted_count == 1
                        live[t].discard(_id)
                    elif r < 0.85:
                        g = rnd.randrange(5)
                        got = list(db.small.find({"g": g}, {"_id": 1}).sort("_id", 1).limit(10))
                        assert [d["_id"] % 5 for d in got] == [g] * 10
                    elif r < 0.92:
                        doc = db.small.find_one_and_update({"_id": rnd.randrange(200)}, {"$inc": {"v": 1}},
                                                           return_document=ReturnDocument.AFTER)
                        assert doc is not None and doc["v"] >= 1
                    elif r < 0.97:
                        res = list(db.small.aggregate([{"$match": {"g": 1}}, {"$group": {"_id": None, "n": {"$sum": 1}}}]))
                        assert res[0]["n"] == 40
                    else:
                        assert db.ctr.find_one({"_id": "c"})["n"] >= incs[t]
                    ops[t] += 1
                    if t == 0 and time.monotonic() - last_fsync > 5:
                        c.admin.command("fsync")
                        last_fsync = time.monotonic()
        except BaseException as e:          # noqa: BLE001 - collected and asserted below
            errors.append(f"client {t}: {type(e).__name__}: {e}")
            try:
                start.abort()
            except threading.BrokenBarrierError:
                pass

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(CLIENTS)]
    for th in threads:
        th.start()
    start.wait(120)
    t0 = time.monotonic()
    for th in threads:
        th.join(seconds + 120)
    elapsed = time.monotonic() - t0
    assert not any(th.is_alive() for th in threads), "clients still running"
    assert not errors, "\n".join(errors[:10])
    total = sum(ops)
    assert total > CLIENTS * 10, f"only {total} operations in {elapsed:.1f}s"
    db = client[db_name]
    assert db.ctr.find_one({"_id": "c"})["n"] == sum(incs)
    expected = set().union(*live)
    assert {d["_id"] for d in db.docs.find({}, {"_id": 1})} == expected
    assert db.docs.count_documents({}) == len(expected)
    assert server.alive()
    print(f"\n{CLIENTS} clients: {total} ops in {elapsed:.1f}s = {total / elapsed:.0f} ops/s; "
          f"{sum(incs)} increments")
    client.drop_database(db_name)
