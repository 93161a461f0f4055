"""Operating the server: graceful shutdown, the store lock, metrics, background
compaction, structured logs."""
from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from pymongo import MongoClient

from mongolake.commands.context import ServerOptions
from mongolake.commands.registry import Command
from mongolake.engine import Engine
from mongolake.lock import LOCK_PATH, StoreInUseError, StoreLock, _Lease
from mongolake.server import MongoLakeServer
from mongolake.storage import FileStorage, MemoryStorage
from tests.commands.rawmsg import RawMsg
from tests.serverutil import ROOT, ServerProcess, free_port


def mongolake(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mongolake", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


# -- graceful shutdown --------------------------------------------------------------

class _LoopThread:
    """An in-process server on its own event loop thread."""

    def __init__(self, srv: MongoLakeServer):
        self.srv = srv
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_shutdown_finishes_requests_in_flight_refuses_new_ones_and_flushes(tmp_path):
    eng = Engine(str(tmp_path / "lake"), sync="none", flush_interval=3600)
    srv = MongoLakeServer(eng, ServerOptions(port=0))

    async def slow(ctx):                       # a command that takes a while
        await asyncio.sleep(float(ctx.arg))
        return {"slept": ctx.arg, "ok": 1.0}
    srv.handler.commands = {**srv.handler.commands, "mlTestSleep": Command("mlTestSleep", slow, "test")}
    lt = _LoopThread(srv)
    lt.call(srv.start())
    port = srv.options.port
    try:
        with MongoClient(port=port, directConnection=True) as c:
            c.db.c.insert_many([{"_id": i} for i in range(100)])
        slow_conn, idle_conn = RawMsg(port), RawMsg(port)
        assert idle_conn.cmd({"ping": 1, "$db": "admin"})["ok"] == 1.0
        result = {}
        t = threading.Thread(target=lambda: result.update(slow_conn.cmd({"mlTestSleep": 1.0, "$db": "admin"})))
        t.start()
        time.sleep(0.3)                        # the slow command is in flight
        shutdown = asyncio.run_coroutine_threadsafe(srv.shutdown(timeout=10), lt.loop)
        time.sleep(0.2)
        with pytest.raises(OSError):           # no longer accepting
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        refused = idle_conn.cmd({"ping": 1, "$db": "admin"})
        assert (refused["ok"], refused["code"], refused["codeName"]) == (0.0, 91, "ShutdownInProgress")
        t.join(10)
        assert (result["ok"], result["slept"]) == (1.0, 1.0)  # the request in flight finished
        shutdown.result(30)
        slow_conn.close()
        idle_conn.close()
    finally:
        lt.close()
    assert not eng.opened
    with Engine(str(tmp_path / "lake")) as again:          # everything was flushed: nothing to replay
        assert again.stats["recovered_batches"] == 0
        assert again.count("db", "c") == 100


def test_sigterm_flushes_and_the_lock_keeps_admin_commands_away(tmp_path):
    store = str(tmp_path / "lake")
    srv = ServerProcess(store, extra=["--flush-interval", "3600"]).start()
    try:
        with MongoClient(srv.url) as c:
            c.shop.orders.insert_many([{"_id": i, "total": i * 1.5} for i in range(250)])
        r = mongolake("compact", store)
        assert r.returncode == 3
        assert "refusing to run" in r.stderr and f"in use by a MongoLake server (pid {srv.proc.pid}" in r.stderr
    finally:
        assert srv.stop() == 0
    log = srv.log()
    assert "SIGTERM received: shutting down" in log and "flushed and closed the engine" in log
    r = mongolake("inspect", store, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    orders = next(c for c in info["collections"] if c["ns"] == "shop.orders")
    assert orders["documents"] == 250 and info["wal"]["bytes"] == 0


# -- the store lock ---------------------------------------------------------------

def test_file_lock_is_exclusive_and_names_its_holder(tmp_path):
    storage = FileStorage(str(tmp_path / "lake"))
    first = StoreLock(storage, str(tmp_path / "lake" / "_mongolake" / "wal")).acquire()
    with pytest.raises(StoreInUseError, match=r"in use by a MongoLake server \(pid \d+ on host"):
        StoreLock(storage, str(tmp_path / "other-wal"), role="vacuum").acquire()
    first.release()
    StoreLock(storage, str(tmp_path / "other-wal"), role="vacuum").acquire().release()


def test_wal_folder_belongs_to_one_store(tmp_path):
    wal = tmp_path / "wal"
    a, b = FileStorage(str(tmp_path / "a")), FileStorage(str(tmp_path / "b"))
    StoreLock(a, str(wal)).acquire().release()
    (wal / "wal-00000000000000000001.log").write_bytes(b"\x05\x00\x00\x00" + b"x" * 12)   # unflushed records
    with pytest.raises(StoreInUseError, match="holds unflushed writes of the store file://"):
        StoreLock(b, str(wal)).acquire()
    StoreLock(a, str(wal)).acquire().release()


def test_lease_on_object_stores_expires_and_is_renewed():
    store = MemoryStorage("memory://lease-test")        # behaves like S3 here: conditional writes, no flock
    info = {"pid": 1, "host": "elsewhere", "role": "server", "since": time.time(), "owner": "x"}
    held = _Lease(store, info, ttl=0.6)
    held.acquire()
    v1 = held.version
    time.sleep(0.35)
    assert held.version != v1                            # renewed every ttl/3
    with pytest.raises(StoreInUseError, match="in use by a MongoLake server .* renewed"):
        _Lease(store, {**info, "host": "third"}, ttl=0.6).acquire()
    held._stop.set()                                     # the holder stops renewing (a crash elsewhere)
    held._thread.join()
    time.sleep(0.7)
    taker = _Lease(store, {**info, "host": "third"}, ttl=0.6)
    taker.acquire()                                      # expired: taken over
    assert json.loads(store.read(LOCK_PATH))["host"] == "third"
    taker.release()
    assert not store.exists(LOCK_PATH)


# -- metrics, background compaction, JSON logs ---------------------------------------

def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def _value(text: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.M)
    assert m, f"{name}{labels} not in metrics"
    return float(m.group(1))


def test_metrics_background_compaction_and_json_logs(tmp_path):
    mport = free_port()
    srv = ServerProcess(str(tmp_path / "lake"), extra=[
        "--metrics-port", str(mport), "--compact-interval", "0.3", "--compact-min-files", "3",
        "--flush-interval", "3600", "--log-format", "json", "--slow-ms", "0"]).start()
    try:
        with MongoClient(srv.url) as c:
            for k in range(3):                              # three flushes: three small files
                c.db.c.insert_many([{"_id": k * 100 + i, "v": i} for i in range(100)])
                c.admin.command("fsync")
            for i in range(20):
                c.db.c.find_one({"_id": i})
            deadline = time.time() + 20
            while time.time() < deadline:
                text = _metrics(mport)
                if _value(text, "mongolake_compactions_total") >= 1:
                    break
                time.sleep(0.2)
            assert c.db.c.count_documents({}) == 300
        text = _metrics(mport)
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/health", timeout=5) as r:
            assert r.read() == b"ok\n"
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"http://127.0.0.1:{mport}/nothing", timeout=5)
    finally:
        assert srv.stop() == 0
    assert _value(text, "mongolake_compactions_total") >= 1
    assert _value(text, "mongolake_compaction_files_rewritten_total") >= 3
    assert _value(text, "mongolake_table_files", '{ns="db.c"}') == 1
    assert _value(text, "mongolake_opcounters_total", '{type="insert"}') == 300
    assert _value(text, "mongolake_command_duration_seconds_count", '{command="insert"}') == 3
    assert _value(text, "mongolake_command_duration_seconds_bucket", '{command="insert",le="+Inf"}') == 3
    assert _value(text, "mongolake_flushes_total") >= 3
    assert _value(text, "mongolake_wal_bytes_written_total") > 0
    assert 0 < _value(text, "mongolake_cache_hit_ratio") <= 1
    assert "mongolake_wal_size_bytes" in text and "mongolake_memtable_bytes" in text
    records = [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]
    assert records and all({"t", "s", "c", "msg"} <= set(r) for r in records)
    compacted = [r for r in records if r["msg"].startswith("compacted db.c")]
    assert compacted and compacted[0]["attr"]["ns"] == "db.c" and compacted[0]["attr"]["files_rewritten"] >= 3
    assert any(r["c"] == "COMMAND" and r["msg"].startswith("slow operation") for r in records)
