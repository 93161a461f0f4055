"""Authentication and authorization against a live server with --auth (pymongo)."""
import json
import os
import statistics
import subprocess
import sys
import time

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from tests.serverutil import ROOT, ServerProcess

ROOT_USER, ROOT_PWD = "root", "r00t-Passw0rd!"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return str(tmp_path_factory.mktemp("authlake"))


@pytest.fixture(scope="module")
def server(store):
    srv = ServerProcess(store, extra=["--auth", "--sync", "none"],
                        env={"MONGOLAKE_ROOT_USERNAME": ROOT_USER, "MONGOLAKE_ROOT_PASSWORD": ROOT_PWD}).start()
    yield srv
    srv.stop()


def connect(srv, user=None, pwd=None, source="admin", mech=None, **kw):
    opts = dict(serverSelectionTimeoutMS=5000, directConnection=True, **kw)
    if user is not None:
        opts.update(username=user, password=pwd, authSource=source)
        if mech:
            opts["authMechanism"] = mech
    return MongoClient(srv.url, **opts)


@pytest.fixture(scope="module")
def admin(server):
    c = connect(server, ROOT_USER, ROOT_PWD)
    c.app.command("createUser", "reader", pwd="reader-pw", roles=["read"])
    c.app.command("createUser", "writer", pwd="writer-pw", roles=["readWrite"])
    c.other.command("createUser", "otheruser", pwd="other-pw", roles=["readWrite"])
    c.app.items.insert_many([{"_id": i, "v": i} for i in range(5)])
    c.other.secrets.insert_one({"_id": 1, "s": "top secret"})
    yield c
    c.close()


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_right_password_works(server, admin, mech):
    with connect(server, "reader", "reader-pw", "app", mech) as c:
        assert c.app.items.count_documents({}) == 5
        st = c.app.command("connectionStatus")["authInfo"]
        assert st["authenticatedUsers"] == [{"user": "reader", "db": "app"}]
        assert st["authenticatedUserRoles"] == [{"role": "read", "db": "app"}]


def _login_error(server, user, pwd, source="admin", mech="SCRAM-SHA-256"):
    t0 = time.perf_counter()
    with connect(server, user, pwd, source, mech) as c:
        with pytest.raises(OperationFailure) as e:
            c.admin.command("ping")
    return e.value, time.perf_counter() - t0


@pytest.mark.parametrize("mech", ["SCRAM-SHA-256", "SCRAM-SHA-1"])
def test_wrong_password_and_unknown_user_fail_identically(server, admin, mech):
    wrong, _ = _login_error(server, ROOT_USER, "not-the-password", mech=mech)
    unknown, _ = _login_error(server, "nobody", "whatever", mech=mech)
    assert wrong.code == unknown.code == 18
    strip = {"$clusterTime", "operationTime"}
    assert {k: v for k, v in wrong.details.items() if k not in strip} == \
        {k: v for k, v in unknown.details.items() if k not in strip}
    assert wrong.details["errmsg"] == "Authentication failed."
    # similar timing: medians of a few attempts within a generous factor (a machine under load)
    tw = statistics.median(_login_error(server, ROOT_USER, "bad", mech=mech)[1] for _ in range(5))
    tu = statistics.median(_login_error(server, "ghost", "bad", mech=mech)[1] for _ in range(5))
    assert max(tw, tu) < 3 * min(tw, tu) + 0.05, (tw, tu)


def test_sasl_supported_mechs_does_not_reveal_users(server, admin):
    with connect(server) as c:
        known = c.admin.command("hello", saslSupportedMechs="admin." + ROOT_USER)["saslSupportedMechs"]
        unknown = c.admin.command("hello", saslSupportedMechs="admin.nobody")["saslSupportedMechs"]
    assert sorted(known) == sorted(unknown) == ["SCRAM-SHA-1", "SCRAM-SHA-256"]
    admin.app.command("createUser", "only256", pwd="p", roles=["read"], mechanisms=["SCRAM-SHA-256"])
    with connect(server) as c:
        assert c.admin.command("hello", saslSupportedMechs="app.only256")["saslSupportedMechs"] == ["SCRAM-SHA-256"]
    with connect(server, "only256", "p", "app") as c:          # negotiates SHA-256
        assert c.app.items.find_one({"_id": 1})["v"] == 1
    _login_error(server, "only256", "p", "app", "SCRAM-SHA-1")


def test_unauthenticated_commands_are_refused(server, admin):
    with connect(server) as c:
        for cmd in ({"find": "items"}, {"insert": "items", "documents": [{}]}, {"listDatabases": 1},
                    {"serverStatus": 1}, {"usersInfo": 1}, {"dbStats": 1}):
            db = "admin" if next(iter(cmd)) in ("listDatabases", "serverStatus") else "app"
            with pytest.raises(OperationFailure) as e:
                c[db].command(cmd)
            assert e.value.code == 13 and e.value.details["errmsg"] == f"Command {next(iter(cmd))} requires " \
                "authentication"
        assert c.admin.command("ping")["ok"] == 1.0
        assert c.admin.command("hello")["isWritablePrimary"] is True
        assert c.admin.command("buildInfo")["ok"] == 1.0
        assert c.admin.command("connectionStatus")["authInfo"]["authenticatedUsers"] == []


def test_read_only_user_cannot_write(server, admin):
    with connect(server, "reader", "reader-pw", "app") as c:
        assert [d["_id"] for d in c.app.items.find().sort("_id", 1)] == [0, 1, 2, 3, 4]
        for op in (lambda: c.app.items.insert_one({"x": 1}), lambda: c.app.items.update_one({}, {"$set": {"v": 9}}),
                   lambda: c.app.items.delete_many({}), lambda: c.app.items.create_index("v"),
                   lambda: c.app.items.drop(), lambda: c.app.command("createUser", "x", pwd="y", roles=[]),
                   lambda: list(c.app.items.aggregate([{"$out": "copy"}]))):
            with pytest.raises(OperationFailure) as e:
                op()
            assert e.value.code == 13
    assert admin.app.items.count_documents({}) == 5 and "copy" not in admin.app.list_collection_names()


def test_user_of_one_database_cannot_read_another(server, admin):
    with connect(server, "otheruser", "other-pw", "other") as c:
        assert c.other.secrets.find_one()["s"] == "top secret"
        with pytest.raises(OperationFailure) as e:
            c.app.items.find_one()
        assert e.value.code == 13
        with pytest.raises(OperationFailure):
            list(c.other.secrets.aggregate([{"$lookup": {"from": {"db": "app", "coll": "items"}, "as": "x",
                                                          "pipeline": []}}]))
        names = c.admin.command("listDatabases", nameOnly=True)["databases"]
        assert [d["name"] for d in names] == ["other"]
    with connect(server, "writer", "writer-pw", "app") as c:
        c.app.items.insert_one({"_id": 100})
        c.app.items.delete_one({"_id": 100})
        with pytest.raises(OperationFailure):
            c.other.secrets.find_one()


def test_user_management(server, admin):
    admin.app.command("createUser", "temp", pwd="t1", roles=["read"], customData={"team": "x"})
    info = admin.app.command("usersInfo", "temp", showCredentials=True)["users"][0]
    assert info["roles"] == [{"role": "read", "db": "app"}] and info["customData"] == {"team": "x"}
    assert set(info["credentials"]) == {"SCRAM-SHA-1", "SCRAM-SHA-256"}
    assert info["credentials"]["SCRAM-SHA-256"]["iterationCount"] >= 15000
    admin.app.command("grantRolesToUser", "temp", roles=["readWrite"])
    with connect(server, "temp", "t1", "app") as c:
        c.app.items.insert_one({"_id": 200})
        admin.app.command("revokeRolesFromUser", "temp", roles=["readWrite"])
        with pytest.raises(OperationFailure):               # takes effect on open connections
            c.app.items.insert_one({"_id": 201})
        assert c.app.command("usersInfo", "temp")["users"][0]["user"] == "temp"    # may view itself
        with pytest.raises(OperationFailure):
            c.app.command("usersInfo", "reader")
    admin.app.command("updateUser", "temp", pwd="t2")
    _login_error(server, "temp", "t1", "app")
    with connect(server, "temp", "t2", "app") as c:
        assert c.app.items.find_one({"_id": 200}) is not None
    with pytest.raises(OperationFailure) as e:
        admin.app.command("createUser", "temp", pwd="x", roles=[])
    assert e.value.code == 51003
    with pytest.raises(OperationFailure) as e:
        admin.app.command("createUser", "bad", pwd="x", roles=["readAnyDatabase"])
    assert e.value.code == 31
    admin.app.command("dropUser", "temp")
    _login_error(server, "temp", "t2", "app")
    roles = admin.admin.command("rolesInfo", 1, showBuiltinRoles=True)["roles"]
    assert {"read", "readWrite", "dbAdmin", "userAdmin", "readAnyDatabase", "readWriteAnyDatabase",
            "root"} <= {r["role"] for r in roles}
    admin.app.items.delete_one({"_id": 200})


def test_users_survive_restart_and_file_holds_no_password(server, admin, store):
    server.stop()
    server.start()
    with connect(server, "reader", "reader-pw", "app") as c:
        assert c.app.items.count_documents({}) == 5
    with connect(server, ROOT_USER, ROOT_PWD) as c:
        assert c.admin.command("connectionStatus")["authInfo"]["authenticatedUserRoles"] == \
            [{"role": "root", "db": "admin"}]
    raw = open(os.path.join(store, "_mongolake", "users.json"), "rb").read()
    for pwd in (ROOT_PWD, "reader-pw", "writer-pw", "other-pw"):
        assert pwd.encode() not in raw
    users = json.loads(raw)["users"]
    assert set(users) >= {"admin.root", "app.reader", "app.writer", "other.otheruser"}
    assert all("pwd" not in u and "password" not in u for u in users.values())
    with pytest.raises(FileNotFoundError):
        open(os.path.join(store, "users.json"))


def test_cli_user_add_then_login(tmp_path):
    store = str(tmp_path / "clilake")
    env = dict(os.environ, PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-m", "mongolake", "user", "add", store, "ops", "--password-stdin",
                        "--role", "readWriteAnyDatabase"], input="ops-pass\n", capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=60)
    assert r.returncode == 0, r.stderr
    srv = ServerProcess(store, extra=["--auth", "--sync", "none"]).start()
    try:
        with connect(srv, "ops", "ops-pass") as c:
            c.anydb.things.insert_one({"_id": 1})
            assert c.anydb.things.find_one() == {"_id": 1}
            with pytest.raises(OperationFailure):
                c.admin.command("serverStatus")                   # not a cluster role
        with connect(srv) as c, pytest.raises(OperationFailure):
            c.anydb.things.find_one()
    finally:
        srv.stop()


def test_localhost_exception_creates_only_the_first_user(tmp_path):
    srv = ServerProcess(str(tmp_path / "emptylake"), extra=["--auth", "--sync", "none"]).start()
    try:
        with connect(srv) as c:
            with pytest.raises(OperationFailure):
                c.app.things.find_one()
            c.admin.command("createUser", "first", pwd="first-pw", roles=["root"])
            with pytest.raises(OperationFailure) as e:       # the exception ends with the first user
                c.admin.command("createUser", "second", pwd="x", roles=["root"])
            assert e.value.code == 13
            warnings = None
        with connect(srv, "first", "first-pw") as c:
            warnings = c.admin.command("getLog", "startupWarnings")["log"]
        assert any("no user exists" in w for w in warnings)
    finally:
        srv.stop()


def _client_first(user: str) -> tuple[bytes, str]:
    import base64
    import os as _os
    nonce = base64.b64encode(_os.urandom(18)).decode()
    return f"n,,n={user},r={nonce}".encode(), nonce


def _client_final(user, pwd, first_bare, server_first, mech="SCRAM-SHA-256"):
    import base64
    import hashlib
    import hmac
    attrs = dict(p.split("=", 1) for p in server_first.decode().split(","))
    d = "sha256" if mech == "SCRAM-SHA-256" else "sha1"
    salted = hashlib.pbkdf2_hmac(d, pwd.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    ck = hmac.new(salted, b"Client Key", d).digest()
    head = f"c=biws,r={attrs['r']}".encode()
    auth_msg = b",".join((first_bare, server_first, head))
    sig = hmac.new(hashlib.new(d, ck).digest(), auth_msg, d).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(ck, sig)))
    return head + b",p=" + proof


def test_speculative_authentication_and_the_empty_exchange(server, admin):
    from bson import Binary

    from tests.commands.rawmsg import RawMsg

    with RawMsg(server.port) as raw:
        payload, _ = _client_first(ROOT_USER)
        hello = raw.cmd({"hello": 1, "$db": "admin", "speculativeAuthenticate": {
            "saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": Binary(payload), "db": "admin",
            "options": {"skipEmptyExchange": True}}})
        spec = hello["speculativeAuthenticate"]
        assert spec["done"] is False and spec["payload"].startswith(b"r=")
        final = _client_final(ROOT_USER, ROOT_PWD, payload[3:], spec["payload"])
        r = raw.cmd({"saslContinue": 1, "conversationId": spec["conversationId"], "payload": Binary(final),
                     "$db": "admin"})
        assert r["ok"] == 1.0 and r["done"] is True and r["payload"].startswith(b"v=")
        assert raw.cmd({"connectionStatus": 1, "$db": "admin"})["authInfo"]["authenticatedUsers"] == \
            [{"user": ROOT_USER, "db": "admin"}]
        assert raw.cmd({"listDatabases": 1, "nameOnly": True, "$db": "admin"})["ok"] == 1.0
        raw.cmd({"logout": 1, "$db": "admin"})
        assert raw.cmd({"listDatabases": 1, "$db": "admin"})["code"] == 13
    with RawMsg(server.port) as raw:             # without skipEmptyExchange: one more, empty step
        payload, _ = _client_first("reader")
        r = raw.cmd({"saslStart": 1, "mechanism": "SCRAM-SHA-256", "payload": Binary(payload), "$db": "app"})
        final = _client_final("reader", "reader-pw", payload[3:], r["payload"])
        r2 = raw.cmd({"saslContinue": 1, "conversationId": r["conversationId"], "payload": Binary(final),
                      "$db": "app"})
        assert r2["done"] is False and r2["payload"].startswith(b"v=")
        r3 = raw.cmd({"saslContinue": 1, "conversationId": r["conversationId"], "payload": Binary(b""),
                      "$db": "app"})
        assert r3["done"] is True
        bad = raw.cmd({"saslStart": 1, "mechanism": "PLAIN", "payload": Binary(b"\x00a\x00b"), "$db": "app"})
        assert bad["code"] == 334


def test_warning_when_listening_beyond_loopback_without_auth(tmp_path):
    srv = ServerProcess(str(tmp_path / "openlake"), extra=["--host", "0.0.0.0", "--sync", "none"]).start()
    try:
        with connect(srv) as c:
            warnings = c.admin.command("getLog", "startupWarnings")["log"]
        assert any("Access control is not enabled" in w and "0.0.0.0" in w for w in warnings)
        assert "WARNING: Access control is not enabled" in srv.log()
    finally:
        srv.stop()


def test_soft_delete_and_search_index_commands_follow_the_roles(server, admin):
    admin.app.create_collection("soft", softDelete=True)
    admin.app.soft.insert_many([{"_id": 1}, {"_id": 2}])
    admin.app.soft.delete_one({"_id": 1})
    search = {"name": "vec", "type": "vectorSearch",
              "definition": {"fields": [{"type": "vector", "path": "v", "numDimensions": 2, "similarity": "cosine"}]}}
    with connect(server, "reader", "reader-pw", "app") as c:
        assert c.app.command("findDeleted", "soft")["cursor"]["firstBatch"] == [{"_id": 1}]
        for cmd in ({"restoreDeleted": "soft"}, {"purgeDeleted": "soft"},
                    {"createSearchIndexes": "soft", "indexes": [search]}):
            with pytest.raises(OperationFailure) as e:
                c.app.command(cmd)
            assert e.value.code == 13
    with connect(server, "writer", "writer-pw", "app") as c:
        c.app.command("restoreDeleted", "soft")
        assert c.app.soft.count_documents({}) == 2
        with pytest.raises(OperationFailure) as e:     # permanent removal is a dbAdmin action
            c.app.command("purgeDeleted", "soft")
        assert e.value.code == 13
        c.app.command("createSearchIndexes", "soft", indexes=[search])
        c.app.command("dropSearchIndex", "soft", name="vec")
