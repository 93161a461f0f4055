"""The whole server on S3 storage: moto's S3 server on 127.0.0.1 (started here), the
WAL on local disk (``--wal-dir``), the server as a real process.

* the CRUD suite of ``tests/commands/test_crud.py`` runs again, unchanged, against
  an S3-backed server (its ``server``/``client``/``db`` fixtures are overridden here);
* restart round trips: SIGTERM (flushed to S3) and SIGKILL (replayed from the local
  WAL, the dead server's S3 lease taken over at once);
* a second server on the same S3 store is refused (lease), with a clear message;
* a point read on a ~100 MB table fetches a few hundred kilobytes through ranged
  GETs, counted by an HTTP proxy between the server and S3.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from pymongo import MongoClient

from tests.commands.test_crud import *  # noqa: F401,F403 - the CRUD suite, rerun on S3 storage
from tests.s3util import FaultProxy, make_client, moto_s3_server, s3_options
from tests.serverutil import ROOT, ServerProcess, free_port

AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3():
    with moto_s3_server() as (endpoint, bucket):
        yield endpoint, bucket


def s3_server(s3, prefix: str, wal_dir: str, *, port: int | None = None, endpoint: str | None = None,
              extra: list[str] | None = None) -> ServerProcess:
    ep, bucket = s3
    return ServerProcess(f"s3://{bucket}/{prefix}", port=port, env=AWS_ENV,
                         log_path=os.path.join(wal_dir + "-logs", "server.log"),
                         extra=["--s3-endpoint", endpoint or ep, "--wal-dir", wal_dir, *(extra or [])])


# -- the CRUD suite on S3 (fixtures of tests/conftest.py overridden for this module) ----

@pytest.fixture(scope="module")
def server(s3, tmp_path_factory):
    wal = str(tmp_path_factory.mktemp("s3crud") / "wal")
    srv = s3_server(s3, "crud", wal, extra=["--flush-interval", "0.5"]).start()
    yield srv
    assert srv.stop() == 0


@pytest.fixture(scope="module")
def client(server):
    c = MongoClient(server.url, serverSelectionTimeoutMS=10000)
    yield c
    c.close()


@pytest.fixture
def db(client, request):
    name = "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:50]
    client.drop_database(name)
    yield client[name]


def test_crud_suite_wrote_tables_to_s3(server, client, s3):
    """After the suite: data files and Delta logs are objects in the bucket, the WAL is local."""
    client.t_s3check.c.insert_many([{"_id": i} for i in range(10)])
    client.admin.command("fsync")
    keys = [o["Key"] for o in make_client(s3[0]).list_objects_v2(Bucket=s3[1], Prefix="crud/")["Contents"]]
    assert "crud/_mongolake/catalog.json" in keys
    assert any(k.startswith("crud/t_s3check/c/_delta_log/") for k in keys)
    assert any(k.startswith("crud/t_s3check/c/part-") and k.endswith(".parquet") for k in keys)
    assert "crud/_mongolake/server.lock" in keys           # the server's lease
    assert not any("/wal" in k for k in keys)


# -- restarts ------------------------------------------------------------------------

def test_restart_after_sigterm_and_after_crash(s3, tmp_path):
    wal = str(tmp_path / "wal")
    srv = s3_server(s3, "restart", wal).start()
    with MongoClient(srv.url) as c:
        c.app.people.insert_many([{"_id": i, "name": f"p{i}", "age": i % 90} for i in range(500)])
        c.app.people.update_many({"age": {"$lt": 10}}, {"$set": {"young": True}})
        c.app.people.delete_many({"age": {"$gte": 80}})
    assert srv.stop() == 0                                     # SIGTERM: flush to S3, release the lease
    assert "flushed and closed the engine" in srv.log()

    srv = s3_server(s3, "restart", wal, port=srv.port).start()
    with MongoClient(srv.url) as c:
        assert c.app.people.count_documents({}) == 500 - 50
        assert c.app.people.count_documents({"young": True}) == 60
        c.app.people.insert_one({"_id": "after-restart", "durable": 1})       # only in the WAL
    srv.kill()                                                 # crash: no flush, the lease stays behind

    srv = s3_server(s3, "restart", wal, port=srv.port).start()  # same host, dead pid: lease taken over
    try:
        with MongoClient(srv.url) as c:
            assert c.app.people.find_one({"_id": "after-restart"}) == {"_id": "after-restart", "durable": 1}
            assert c.app.people.count_documents({}) == 451
        assert "taking over the store lease" in srv.log()
    finally:
        assert srv.stop() == 0


def test_second_server_on_the_same_s3_store_is_refused(s3, tmp_path):
    srv = s3_server(s3, "shared", str(tmp_path / "wal1")).start()
    try:
        other = s3_server(s3, "shared", str(tmp_path / "wal2"))
        env = {**os.environ, **AWS_ENV, "PYTHONPATH": ROOT}
        r = subprocess.run([sys.executable, "-m", "mongolake", "serve", "--port", str(free_port()),
                            "--storage", other.storage, *other.extra], env=env, capture_output=True, text=True,
                           timeout=60, cwd=ROOT)
        assert r.returncode == 3
        assert "is in use by a MongoLake server" in r.stderr and f"pid {srv.proc.pid}" in r.stderr
    finally:
        srv.stop()


# -- point reads fetch row groups, not files ------------------------------------------

class CountingProxy(FaultProxy):
    """Forwards to S3 and records ``(method, path, response bytes)`` of every request."""

    def __init__(self, upstream: str):
        super().__init__(upstream)
        self.sizes: list[tuple[str, str, int]] = []

    def _forward(self, method, path, headers, body):
        status, hdrs, payload = super()._forward(method, path, headers, body)
        with self._lock:
            self.sizes.append((method, path, len(payload) if method == "GET" else 0))
        return status, hdrs, payload


def test_point_read_on_a_100mb_table_fetches_kilobytes(s3, tmp_path):
    from mongolake.engine import Engine

    ep, bucket = s3
    wal = str(tmp_path / "wal")
    n, payload = 12_500, 8000            # ~100 MB of incompressible documents, 64 per row group
    eng = Engine(f"s3://{bucket}/big", wal_dir=wal, storage_options=s3_options(ep), sync="none",
                 memtable_bytes=1 << 40, flush_interval=3600, row_group_rows=64)
    eng.open()
    payloads = {}
    for start in range(0, n, 2500):
        docs = [{"_id": i, "payload": os.urandom(payload)} for i in range(start, start + 2500)]
        payloads.update((d["_id"], d["payload"]) for d in docs if d["_id"] in (123, 7777))
        eng.insert("db", "big", docs, wait=False)
    eng.close()                          # flushes: one ~100 MB Parquet file on S3
    objs = make_client(ep).list_objects_v2(Bucket=bucket, Prefix="big/db/big/")["Contents"]
    size = max(o["Size"] for o in objs if o["Key"].endswith(".parquet"))
    assert size > 95_000_000

    with CountingProxy(ep) as proxy:
        srv = s3_server(s3, "big", wal, endpoint=proxy.endpoint_url).start()
        try:
            with MongoClient(srv.url) as c:
                c.admin.command("ping")
                before = len(proxy.sizes)
                doc = c.db.big.find_one({"_id": 7777})
                cold = proxy.sizes[before:]
                before = len(proxy.sizes)
                doc2 = c.db.big.find_one({"_id": 123})         # another row group; the footer is cached
                warm = proxy.sizes[before:]
        finally:
            srv.stop()
    assert doc["payload"] == payloads[7777] and doc2["payload"] == payloads[123]
    cold_bytes = sum(s for _m, _p, s in cold)
    warm_bytes = sum(s for _m, _p, s in warm)
    print(f"\n100 MB table ({size:,} bytes): cold point read {cold_bytes:,} bytes in {len(cold)} requests, "
          f"warm {warm_bytes:,} bytes in {len(warm)} requests")
    assert all(m in ("GET", "HEAD") for m, _p, _s in cold + warm)
    assert cold_bytes < 1_000_000 and len(cold) <= 6          # footer + one row group of _key and _doc
    assert warm_bytes < 700_000 and len(warm) <= 3
    assert max(s for _m, _p, s in cold) < size // 100          # never the file
