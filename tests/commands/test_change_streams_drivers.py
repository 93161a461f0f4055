"""Change streams from other clients: motor's async iteration, a mongosh script
(``db.coll.watch()``) and the Node driver (``changeStream.on('change')``).

mongosh and the Node driver come from ``npm install --no-save --prefix tests/node
mongosh mongodb`` (see tests/commands/test_shell.py); a missing install fails, never skips.
"""
import pytest
import asyncio
import os
import shutil
import subprocess

from motor.motor_asyncio import AsyncIOMotorClient

from tests.commands.test_shell import MONGOSH, NODE_DIR, _mongosh, _require, _result, shell_env  # noqa: F401
from tests.both_formats import client, server  # noqa: F401  (both table formats)


def test_motor_async_iteration(server):
    async def main():
        client = AsyncIOMotorClient(server.url, serverSelectionTimeoutMS=10000)
        try:
            db = client.cs_motor
            await client.drop_database("cs_motor")
            await db.c.insert_one({"_id": 0})
            got = []
            async with db.c.watch(max_await_time_ms=300) as stream, db.watch(max_await_time_ms=300) as dbs:
                await db.c.insert_one({"_id": 1})
                await db.c.update_one({"_id": 1}, {"$set": {"x": 1}})
                await db.c.delete_one({"_id": 1})
                async for ev in stream:
                    got.append(ev)
                    if len(got) == 3:
                        break
                first = await asyncio.wait_for(dbs.next(), 10)
            token = got[0]["_id"]
            async with db.c.watch(resume_after=token, max_await_time_ms=300) as again:
                resumed = [await asyncio.wait_for(again.next(), 10) for _ in range(2)]
            return got, first, resumed
        finally:
            client.close()
    got, first, resumed = asyncio.run(main())
    assert [e["operationType"] for e in got] == ["insert", "update", "delete"]
    assert got[1]["updateDescription"]["updatedFields"] == {"x": 1}
    assert first["operationType"] == "insert" and first["ns"] == {"db": "cs_motor", "coll": "c"}
    assert [e["operationType"] for e in resumed] == ["update", "delete"]


def test_mongosh_watch_script(server, shell_env):  # noqa: F811
    rc, out, err = _mongosh(server, shell_env, "--quiet", "--file", os.path.join(NODE_DIR, "shell_watch.js"),
                            db="cs_shell")
    assert rc == 0, out + err
    r = _result(out)
    assert r["ops"] == ["insert", "update", "delete"] and r["keys"] == [1, 1, 1]
    assert r["fullDocument"] == {"_id": 1, "v": "a"} and r["updated"] == {"v": "b"}
    assert r["tokenType"] == "string"
    assert r["resumed"] == [["delete", 1]]
    assert r["dbWatch"] == [["other", 7]]


def test_node_driver_change_stream_events(server):
    node = shutil.which("node")
    assert node, "node is not installed (apt-get install nodejs)"
    _require(os.path.join(NODE_DIR, "node_modules", "mongodb", "package.json"))
    p = subprocess.run([node, os.path.join(NODE_DIR, "driver_watch.js"), server.url], capture_output=True,
                       text=True, timeout=120, cwd=NODE_DIR)
    assert p.returncode == 0, p.stdout + p.stderr
    r = _result(p.stdout)
    assert r["ops"] == ["insert", "update", "replace", "delete"]
    assert r["lookup"] == {"_id": 1, "v": 2} or r["lookup"] in ({"_id": 1, "v": 10}, None)
    assert r["ns"] == {"db": "node_watch", "coll": "items"}
    assert r["cluster"] == ["insert", "update", "replace", "delete"]
    assert r["resumed"] == [["replace", 1], ["delete", 1]]
