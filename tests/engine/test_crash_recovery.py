"""kill -9 the server at random moments while a client writes: no acknowledged write
is lost, nothing unacknowledged appears partially, delta-rs still opens every table."""
import random
import threading
import time

import pytest
from deltalake import DeltaTable
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from tests.serverutil import ServerProcess

ROUNDS = 10


class Model:
    """What the client knows: acknowledged values, and the one operation in flight."""

    def __init__(self):
        self.acked: dict[int, int] = {}          # _id -> last acknowledged v
        self.batches: list[list[int]] = []       # acknowledged insert_many batches
        self.pending: tuple | None = None        # ("set", id, v) | ("batch", [ids], v)


def writer(url: str, model: Model, stop: threading.Event, rnd: random.Random, next_id: list[int]) -> None:
    client = MongoClient(url, retryWrites=False, serverSelectionTimeoutMS=2000, socketTimeoutMS=5000)
    coll = client.crash.docs
    try:
        while not stop.is_set():
            r = rnd.random()
            if r < 0.4 or not model.acked:
                i = next_id[0]
                next_id[0] += 1
                op = ("set", i, 0)
                model.pending = op
                coll.insert_one({"_id": i, "v": 0, "pad": "x" * rnd.randint(10, 300)})
            elif r < 0.8:
                i = rnd.choice(list(model.acked))
                v = model.acked[i] + 1
                op = ("set", i, v)
                model.pending = op
                coll.update_one({"_id": i}, {"$set": {"v": v}})
            else:
                ids = list(range(next_id[0], next_id[0] + 20))
                next_id[0] += 20
                op = ("batch", ids, 7)
                model.pending = op
                coll.insert_many([{"_id": j, "v": 7} for j in ids])
            # acknowledged
            if op[0] == "set":
                model.acked[op[1]] = op[2]
            else:
                for j in op[1]:
                    model.acked[j] = op[2]
                model.batches.append(op[1])
            model.pending = None
    except PyMongoError:
        pass            # the server died under us: the op in model.pending may or may not have landed
    finally:
        client.close()


def verify(url: str, model: Model) -> None:
    client = MongoClient(url, serverSelectionTimeoutMS=10000)
    try:
        docs = {d["_id"]: d["v"] for d in client.crash.docs.find({}, {"v": 1})}
    finally:
        client.close()
    pend = model.pending
    for i, v in model.acked.items():
        if i in docs and docs[i] == v:
            continue
        ok = pend is not None and pend[0] == "set" and pend[1] == i and docs.get(i) == pend[2]
        assert ok, f"acknowledged write lost: _id {i} expected v={v}, found {docs.get(i, 'missing')}"
    unexpected = set(docs) - set(model.acked)
    if pend is not None and pend[0] == "batch":
        present = [j for j in pend[1] if j in docs]
        assert len(present) in (0, len(pend[1])), f"insert_many applied partially: {len(present)}/{len(pend[1])}"
        unexpected -= set(pend[1])
        if present:                                   # it landed: count it as acknowledged from now on
            for j in pend[1]:
                model.acked[j] = pend[2]
    elif pend is not None and pend[0] == "set":
        unexpected -= {pend[1]}
        if pend[1] in docs:
            model.acked[pend[1]] = docs[pend[1]]
    assert not unexpected, f"documents nobody wrote: {sorted(unexpected)[:10]}"
    model.pending = None


@pytest.mark.parametrize("flush_interval", ["0.3"])
def test_kill9_never_loses_acknowledged_writes(tmp_path, flush_interval):
    storage = str(tmp_path / "lake")
    rnd = random.Random(1234)
    model = Model()
    next_id = [0]
    port = None
    for rnd_no in range(ROUNDS):
        srv = ServerProcess(storage, port=port, extra=["--flush-interval", flush_interval, "--memtable-size", "1"])
        srv.start()
        port = srv.port
        try:
            if rnd_no:
                verify(srv.url, model)
            stop = threading.Event()
            t = threading.Thread(target=writer, args=(srv.url, model, stop, rnd, next_id))
            t.start()
            time.sleep(rnd.uniform(0.3, 1.5))
            srv.kill()
            stop.set()
            t.join(30)
            assert not t.is_alive()
        finally:
            srv.kill()
        # the table on disk is a valid Delta table at every moment
        if (tmp_path / "lake" / "crash" / "docs" / "_delta_log").exists():
            dt = DeltaTable(str(tmp_path / "lake" / "crash" / "docs"))
            assert dt.to_pyarrow_table(columns=["_id"]).num_rows <= len(model.acked) + 20
    srv = ServerProcess(storage, port=port).start()
    try:
        verify(srv.url, model)
        assert len(model.acked) > 100
    finally:
        srv.stop()
    dt = DeltaTable(str(tmp_path / "lake" / "crash" / "docs"))
    assert dt.to_pyarrow_table(columns=["_id"]).num_rows == len(model.acked)
