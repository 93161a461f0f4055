"""Limits on a live server: maxTimeMS, pathological regexes, idle connections, 10,000
dropped connections, operation slots."""
import asyncio
import os
import socket
import struct
import threading
import time

import bson
import pytest
from pymongo import MongoClient
from pymongo.errors import ExecutionTimeout, OperationFailure

from mongolake.security.limits import Limits
from tests.serverutil import ServerProcess

# not constant-folded: every document builds a list of a few thousand numbers
SLOW = {"$expr": {"$gt": [{"$size": {"$range": [0, {"$add": [4000, {"$strLenCP": "$s"}]}]}}, 10 ** 6]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(str(tmp_path_factory.mktemp("limitlake")), extra=[
        "--sync", "none", "--idle-timeout", "2", "--regex-time-limit-ms", "200"]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    c = MongoClient(server.url, directConnection=True, serverSelectionTimeoutMS=10000)
    c.lim.big.insert_many([{"_id": i, "s": f"value {i}"} for i in range(20000)])
    yield c
    c.close()


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_max_time_ms_stops_a_slow_query(client):
    t0 = time.perf_counter()
    assert list(client.lim.big.find(SLOW)) == []
    unlimited = time.perf_counter() - t0
    for run in (lambda: list(client.lim.big.find(SLOW).max_time_ms(50)),
                lambda: list(client.lim.big.aggregate([{"$match": SLOW}], maxTimeMS=50)),
                lambda: client.lim.big.count_documents(SLOW, maxTimeMS=50),
                lambda: client.lim.big.distinct("s", SLOW, maxTimeMS=50)):
        t0 = time.perf_counter()
        with pytest.raises(ExecutionTimeout) as e:
            run()
        took = time.perf_counter() - t0
        assert e.value.code == 50 and e.value.details["codeName"] == "MaxTimeMSExpired"
        assert took < max(unlimited / 2, 0.5), (took, unlimited)
    assert client.lim.big.find_one({"_id": 7})["s"] == "value 7"       # the connection is fine


def test_max_time_ms_is_a_budget_for_the_whole_cursor(client):
    cur = client.lim.big.find({}, batch_size=10).max_time_ms(60_000)
    assert len(list(cur)) == 20000                      # a generous budget lets getMores run
    cur = client.lim.big.find(SLOW, batch_size=1).max_time_ms(20)
    with pytest.raises(ExecutionTimeout):
        list(cur)


def test_pathological_regex_does_not_stall_other_clients(server, client):
    client.lim.text.insert_many([{"s": "a" * 40 + "b"}, {"s": "aaaa"}, {"s": "plain"}])
    other = MongoClient(server.url, directConnection=True, serverSelectionTimeoutMS=10000)
    other.admin.command("ping")
    lat, stop = [], threading.Event()

    def pinger():
        while not stop.is_set():
            t0 = time.perf_counter()
            other.admin.command("ping")
            lat.append(time.perf_counter() - t0)
            time.sleep(0.01)
    th = threading.Thread(target=pinger)
    th.start()
    try:
        time.sleep(0.2)
        t0 = time.perf_counter()
        with pytest.raises(OperationFailure) as e:
            list(client.lim.text.find({"s": {"$regex": "^(a|aa)+$"}}))
        took = time.perf_counter() - t0
        with pytest.raises(OperationFailure) as e2:
            list(client.lim.text.aggregate([{"$match": {"$expr": {"$regexMatch": {"input": "$s",
                                                                                   "regex": "^(a|aa)+$"}}}}]))
        time.sleep(0.2)
    finally:
        stop.set()
        th.join()
        other.close()
    assert e.value.code == 51156 and e2.value.code == 51156, (e.value, e2.value)
    assert took < 5.0                      # plain `re` would backtrack for minutes
    assert len(lat) > 10 and max(lat) < 2.0, (max(lat), len(lat))
    print(f"regex refused after {took:.2f} s; other client's ping: max {max(lat) * 1000:.0f} ms, "
          f"median {sorted(lat)[len(lat) // 2] * 1000:.1f} ms over {len(lat)} pings")
    # ordinary regexes still work
    assert [d["s"] for d in client.lim.text.find({"s": {"$regex": "^a+$"}})] == ["aaaa"]


def test_idle_connection_is_closed(server, client):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"\x40\x00\x00\x00\x01")            # half a header, then silence
        t0 = time.perf_counter()
        assert s.recv(100) == b""                       # closed by the server
        waited = time.perf_counter() - t0
    assert 1.5 < waited < 8.0, waited
    assert client.admin.command("serverStatus")["security"]["limits"]["idle_closed"] >= 1


def _partial_frames():
    body = b"\x00\x00\x00\x00\x00" + bson.encode({"ping": 1, "$db": "admin"})
    full = struct.pack("<iiii", 16 + len(body), 7, 0, 2013) + body
    return [full[:3], full[:16], full[:-5], full + full[:20], struct.pack("<iiii", 5000, 1, 0, 2013) + b"x" * 30]


def test_ten_thousand_connections_dropped_mid_message_leak_nothing(server, client):
    status = client.admin.command("serverStatus")
    base_conns, base_tasks = status["connections"]["current"], status["security"]["asyncioTasks"]
    base_fds = _fds(server.proc.pid)
    frames = _partial_frames()
    t0 = time.perf_counter()
    opened = 0
    for batch in range(20):
        socks = []
        for i in range(500):
            s = socket.socket()
            s.connect(("127.0.0.1", server.port))
            s.sendall(frames[(batch + i) % len(frames)])
            socks.append(s)
        for i, s in enumerate(socks):
            if i % 2:                                   # half of them reset instead of closing
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        opened += len(socks)
    elapsed = time.perf_counter() - t0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = client.admin.command("serverStatus")
        if (status["connections"]["current"] <= base_conns and _fds(server.proc.pid) <= base_fds + 2
                and status["security"]["asyncioTasks"] <= base_tasks + 2):
            break
        time.sleep(0.2)
    assert opened == 10000
    assert status["connections"]["current"] <= base_conns, status["connections"]
    assert _fds(server.proc.pid) <= base_fds + 2, (base_fds, _fds(server.proc.pid))
    assert status["security"]["asyncioTasks"] <= base_tasks + 2, (base_tasks, status["security"])
    assert status["connections"]["totalCreated"] >= 10000
    print(f"10,000 connections opened and dropped in {elapsed:.1f} s; fds {base_fds} -> "
          f"{_fds(server.proc.pid)}, tasks {base_tasks} -> {status['security']['asyncioTasks']}")


class _Conn:
    def __init__(self, i):
        self.id, self.state, self.closed, self.created_at = i, {}, False, time.time()


class _Ctx:
    def __init__(self, conn, body):
        self.conn, self.body = conn, body


def test_operation_slots_bound_concurrent_expensive_operations():
    async def main():
        lim = Limits(max_concurrent_ops=1)
        a, b = _Ctx(_Conn(1), {"find": "c"}), _Ctx(_Conn(2), {"find": "c", "maxTimeMS": 50})
        await lim.before(a, "find")
        with pytest.raises(Exception) as e:             # no slot within its maxTimeMS
            await lim.before(b, "find")
        assert getattr(e.value, "code", None) == 50
        waiter = asyncio.ensure_future(lim.before(_Ctx(_Conn(3), {"find": "c"}), "find"))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await lim.before(_Ctx(a.conn, {"ping": 1}), "ping")     # cheap commands need no slot
        lim.release(a.conn)                             # e.g. the command failed
        await asyncio.wait_for(waiter, 1)
        assert lim.stats["op_waits"] >= 2 and lim.stats["op_wait_timeouts"] == 1
    asyncio.run(main())


def test_idle_selection_skips_busy_connections():
    lim = Limits(idle_timeout=1.0)
    old, busy, fresh = _Conn(1), _Conn(2), _Conn(3)
    now = time.monotonic()
    old.state["_mongolake_last_active"] = busy.state["_mongolake_last_active"] = now - 5
    fresh.state["_mongolake_last_active"] = now
    assert lim.idle_connections([old, busy, fresh], {2}, now) == [old]
    assert Limits(idle_timeout=0).idle_connections([old], set(), now) == []


def test_change_stream_get_more_takes_no_slot():
    class _It:
        async def get_more(self, n, wait):
            return [], {}

    class _Cur:
        it = _It()

    class _State:
        class cursors:
            cursors = {42: _Cur()}

    async def main():
        lim = Limits(max_concurrent_ops=1)
        await lim.before(_Ctx(_Conn(1), {"find": "c"}), "find")       # the only slot is taken
        ctx = _Ctx(_Conn(2), {"getMore": 42, "collection": "c"})
        ctx.state = _State()
        await asyncio.wait_for(lim.before(ctx, "getMore"), 0.5)     # waits for events, not for a slot
    asyncio.run(main())
