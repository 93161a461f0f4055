"""mongosh and the Node.js driver against the real server.

Both come from ``npm install --no-save --prefix tests/node mongosh mongodb`` (README's
test command; CI runs it). A missing install fails these tests with that command in
the message — they are never skipped. The shell runs with telemetry and update
checks disabled (no traffic leaves the machine).
"""
import json
import os
import re
import shutil
import subprocess

import pytest
from tests.both_formats import client, server  # noqa: F401  (both table formats)


NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "node")
MONGOSH = os.path.join(NODE_DIR, "node_modules", ".bin", "mongosh")
INSTALL = "npm install --no-save --prefix tests/node mongosh mongodb"


def _require(path: str) -> str:
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: run `{INSTALL}` from the repository root first", pytrace=False)
    return path


@pytest.fixture(scope="module")
def shell_env(tmp_path_factory):
    home = str(tmp_path_factory.mktemp("mongosh-home"))
    env = dict(os.environ)
    env.update(HOME=home, CI="1", MONGOSH_FORCE_DISABLE_TELEMETRY_FOR_TESTING="1",
               MONGOSH_SKIP_NODE_VERSION_CHECK="1", DO_NOT_TRACK="1", NO_COLOR="1")
    return env


def _mongosh(server, env, *args, stdin=None, db="shelltest"):
    exe = _require(MONGOSH)
    p = subprocess.run([exe, f"mongodb://127.0.0.1:{server.port}/{db}", *args], input=stdin, env=env,
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no RESULT line in:\n{stdout}"
    return json.loads(lines[-1][len("RESULT "):])


def test_mongosh_script(server, shell_env):
    rc, out, err = _mongosh(server, shell_env, "--quiet", "--file", os.path.join(NODE_DIR, "shell_crud.js"))
    assert rc == 0, out + err
    assert "MongoServerError" not in out + err
    r = _result(out)
    assert r["insertOne"] is True and r["insertMany"] == {"0": 2, "1": 3}
    assert r["find"] == [{"name": "bob"}, {"name": "cy"}]
    assert r["updateMany"] == {"matched": 2, "modified": 2}
    assert r["deleteOne"] == 1
    assert r["aggregate"] == [{"_id": None, "total": 25}]
    assert r["createIndex"] == "name_1" and r["indexes"] == ["_id_", "name_1"]
    assert r["count"] == 2 and r["dupCode"] == 11000
    assert r["findOne"] == {"_id": 3, "name": "cy", "n": 13}
    assert r["bigCursor"] == 500 and r["stats"] == 2
    assert r["serverStatusOk"] == 1 and r["currentOp"] == 1


def test_mongosh_interactive_banner_and_show_commands(server, shell_env, client):
    """Interactive start-up (no --quiet) runs buildInfo, getCmdLineOpts, getLog startupWarnings,
    hello, atlasVersion, ...: none may surface an error; then `show dbs` / `show collections`."""
    client.shelltest2.things.insert_one({"x": 1})
    client.shelltest2.others.insert_one({"x": 1})
    commands = "show dbs\nprint('--')\nshow collections\nprint('--')\ndb.version()\nexit\n"
    rc, out, err = _mongosh(server, shell_env, stdin=commands, db="shelltest2")
    assert rc == 0, out + err
    assert "Using MongoDB:" in out and "8.0" in out
    for bad in ("MongoServerError", "MongoNetworkError", "Warning: ", "Error:"):
        assert bad not in out + err, out + err
    text = re.sub(r"\S*\s*\[direct: \w+\] \w+> ", "\n", out.split("Using Mongosh:", 1)[1])
    blocks = [b for b in text.split("--") if b.strip()]
    dbs = [line.split()[0] for line in blocks[-3].splitlines() if line.strip() and "size" not in line]
    assert "shelltest2" in dbs, out
    colls = sorted(line.strip() for line in blocks[-2].splitlines() if line.strip())
    assert colls == ["others", "things"], out
    assert "8.0" in blocks[-1]


def test_node_driver_crud(server):
    node = shutil.which("node")
    assert node, "node is not installed (apt-get install nodejs)"
    _require(os.path.join(NODE_DIR, "node_modules", "mongodb", "package.json"))
    p = subprocess.run([node, os.path.join(NODE_DIR, "driver_crud.js"), f"mongodb://127.0.0.1:{server.port}/"],
                       capture_output=True, text=True, timeout=120, cwd=NODE_DIR)
    assert p.returncode == 0, p.stdout + p.stderr
    r = _result(p.stdout)
    assert r["insertMany"] == 3 and r["find"] == [{"_id": 3}, {"_id": 1}]
    assert r["updateOne"] == [1, 1] and r["upsert"] == 4
    assert r["fam"] == {"_id": 1, "k": "a", "v": 101}
    assert r["deleteMany"] == 1 and r["count"] == 3
    assert r["agg"] == [{"_id": None, "s": 4}, {"_id": "a", "s": 104}]
    assert r["dupCode"] == 11000 and r["bulk"] == [1, 1] and r["clientBulk"] == 2
    assert r["collections"] == ["items", "other"] and r["ping"] == 1
