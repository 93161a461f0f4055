"""Namespace, index, statistics, maintenance and diagnostic commands through pymongo."""
import pytest
from bson import Int64
from pymongo.errors import OperationFailure


def test_list_drop_rename_collections(client, db):
    db.a.insert_one({"x": 1})
    db.create_collection("b")
    assert sorted(db.list_collection_names()) == ["a", "b"]
    assert db.list_collection_names(filter={"name": "a"}) == ["a"]
    infos = {i["name"]: i for i in db.list_collections()}
    assert infos["a"]["type"] == "collection" and infos["a"]["idIndex"]["key"] == {"_id": 1}
    assert infos["a"]["info"]["uuid"] is not None
    r = db.command("listCollections", 1, nameOnly=True, authorizedCollections=True)
    assert sorted(d["name"] for d in r["cursor"]["firstBatch"]) == ["a", "b"]
    assert all(set(d) == {"name", "type"} for d in r["cursor"]["firstBatch"])
    r = db.command("listCollections", 1, filter={"type": "collection", "name": {"$regex": "^b"}}, nameOnly=True)
    assert [d["name"] for d in r["cursor"]["firstBatch"]] == ["b"]
    with pytest.raises(OperationFailure) as ei:
        db.command("create", "b")
    assert ei.value.code == 48
    db.a.rename("a2")
    assert db.a2.find_one({}, {"_id": 0}) == {"x": 1} and "a" not in db.list_collection_names()
    with pytest.raises(OperationFailure) as ei:
        db.a2.rename("b")
    assert ei.value.code == 48
    db.a2.rename("b", dropTarget=True)
    assert db.b.count_documents({}) == 1
    with pytest.raises(OperationFailure) as ei:
        db.nothere.rename("zzz")
    assert ei.value.code == 26
    with pytest.raises(OperationFailure) as ei:
        client.admin.command("renameCollection", f"{db.name}.b", to=f"{db.name}.b")
    assert ei.value.code == 20
    other = client[db.name + "_x"]
    client.admin.command("renameCollection", f"{db.name}.b", to=f"{other.name}.moved")
    assert other.moved.count_documents({}) == 1
    client.drop_database(other.name)
    assert db.drop_collection("b")["ok"] == 1.0        # already gone: still ok
    db.drop_collection("nothing")
    assert db.name not in client.list_database_names()
    db.c.insert_one({})
    assert db.name in client.list_database_names()
    dbs = client.admin.command("listDatabases")
    assert {"databases", "totalSize", "totalSizeMb"} <= set(dbs)
    assert client.admin.command("listDatabases", nameOnly=True, filter={"name": db.name})["databases"] == [
        {"name": db.name}]


def test_indexes_create_list_drop(db):
    assert db.c.create_index([("a", 1), ("b", -1)]) == "a_1_b_-1"
    assert db.c.create_index("u", unique=True, name="uniq") == "uniq"
    db.c.create_index("s", sparse=True, partialFilterExpression={"s": {"$gt": 0}})
    info = db.c.index_information()
    assert set(info) == {"_id_", "a_1_b_-1", "uniq", "s_1"} and info["uniq"]["unique"] is True
    r = db.command("createIndexes", "c", indexes=[{"key": {"a": 1, "b": -1}, "name": "a_1_b_-1"}])
    assert r["numIndexesBefore"] == r["numIndexesAfter"] == 4 and "note" in r
    with pytest.raises(OperationFailure) as ei:
        db.c.create_index([("a", 1)], name="uniq")
    assert ei.value.code == 86
    with pytest.raises(OperationFailure) as ei:
        db.c.create_index([("t", "2d")])                 # legacy planar index: not built here
    assert ei.value.code == 238
    with pytest.raises(OperationFailure) as ei:
        db.c.create_index([("x", 1)], bogus=True)
    assert ei.value.code == 197
    db.c.drop_index("uniq")
    db.c.drop_index([("a", 1), ("b", -1)])
    assert set(db.c.index_information()) == {"_id_", "s_1"}
    with pytest.raises(OperationFailure) as ei:
        db.c.drop_index("nope")
    assert ei.value.code == 27
    with pytest.raises(OperationFailure) as ei:
        db.c.drop_index("_id_")
    assert ei.value.code == 72
    db.c.drop_indexes()
    assert list(db.c.index_information()) == ["_id_"]
    # creating an index on a new collection creates it; existing duplicates refuse a unique index
    db.d.insert_many([{"k": 1}, {"k": 1}])
    with pytest.raises(OperationFailure) as ei:
        db.d.create_index("k", unique=True)
    assert ei.value.code == 11000
    with pytest.raises(OperationFailure) as ei:
        db.command("listIndexes", "nothere")
    assert ei.value.code == 26


def test_explain_reports_plan_and_pruning(client, db):
    db.c.insert_many([{"_id": i, "a": i % 10} for i in range(200)])
    client.admin.command("fsync")
    db.c.insert_many([{"_id": 1000 + i, "a": 99} for i in range(5)])
    ex = db.c.find({"a": 3}).explain()
    assert ex["queryPlanner"]["namespace"] == f"{db.name}.c"
    assert ex["queryPlanner"]["winningPlan"]["stage"] == "COLLSCAN"
    assert ex["executionStats"]["nReturned"] == 20
    assert "files_total" in str(ex["queryPlanner"]["winningPlan"]["mongolake"]) or \
        ex["queryPlanner"]["winningPlan"]["mongolake"]
    assert db.c.find({"_id": 5}).explain()["queryPlanner"]["winningPlan"]["stage"] == "IDHACK"
    ex = db.command("explain", {"count": "c", "query": {"a": 99}}, verbosity="executionStats")
    assert ex["executionStats"]["nReturned"] == 5
    ex = db.command("explain", {"find": "c", "filter": {"a": 1}, "limit": 3}, verbosity="queryPlanner")
    assert "executionStats" not in ex and ex["command"]["limit"] == 3
    ex = db.command("explain", {"update": "c", "updates": [{"q": {"a": 2}, "u": {"$set": {"z": 1}}}]})
    assert ex["executionStats"]["nReturned"] == 20 and db.c.count_documents({"z": 1}) == 0   # not executed
    ex = db.command("explain", {"delete": "c", "deletes": [{"q": {"a": 2}, "limit": 0}]})
    assert db.c.count_documents({"a": 2}) == 20
    ex = db.command("aggregate", "c", pipeline=[{"$match": {"a": 1}}, {"$count": "n"}], explain=True)
    assert ex["ok"] == 1.0
    with pytest.raises(OperationFailure) as ei:
        db.command("explain", {"insert": "c", "documents": [{}]})
    assert ei.value.code == 20
    with pytest.raises(OperationFailure) as ei:
        db.command("explain", {"find": "c"}, verbosity="loud")
    assert ei.value.code == 2
    assert db.nothere.find({}).explain()["queryPlanner"]["winningPlan"]["stage"] == "EOF"


def test_stats_commands(client, db):
    db.c.insert_many([{"_id": i, "pad": "x" * 50} for i in range(100)])
    s = db.command("collStats", "c")
    assert s["count"] == 100 and s["nindexes"] == 1 and s["size"] > 5000 and s["ns"] == f"{db.name}.c"
    assert db.command("collStats", "c", scale=1024)["size"] == s["size"] // 1024
    d = db.command("dbStats")
    assert d["collections"] == 1 and d["objects"] == 100 and d["db"] == db.name
    agg = list(db.c.aggregate([{"$collStats": {"storageStats": {}, "count": {}}}]))
    assert agg[0]["storageStats"]["count"] == 100 and agg[0]["count"] == 100
    ds = db.command("dataSize", f"{db.name}.c")
    assert ds["numObjects"] == 100 and ds["size"] > 0
    with pytest.raises(OperationFailure) as ei:
        db.command("collStats", "nothere")
    assert ei.value.code == 26
    with pytest.raises(OperationFailure) as ei:
        db.command("dbStats", scale=0)
    assert ei.value.code == 2


def test_validate_fsync_compact(client, db):
    for i in range(4):
        db.c.insert_many([{"_id": i * 100 + j} for j in range(100)])
        client.admin.command("fsync")
    v = db.validate_collection("c")
    assert v["valid"] is True and v["nrecords"] == 400 and v["errors"] == []
    r = db.command("compact", "c")
    assert r["ok"] == 1.0 and "bytesFreed" in r
    assert db.c.count_documents({}) == 400
    assert db.validate_collection("c")["valid"] is True
    with pytest.raises(OperationFailure) as ei:
        db.validate_collection("nothere")
    assert ei.value.code == 26
    with pytest.raises(OperationFailure) as ei:
        client.admin.command("fsync", lock=True)
    assert ei.value.code == 238
    with pytest.raises(OperationFailure) as ei:
        client.admin.command("fsyncUnlock")
    assert ei.value.code == 125
    with pytest.raises(OperationFailure) as ei:
        db.command("fsync")                   # admin only
    assert ei.value.code == 13


def test_server_status_and_counters(client, db):
    before = client.admin.command("serverStatus")
    db.c.insert_many([{} for _ in range(3)])
    db.c.find_one()
    after = client.admin.command("serverStatus")
    assert after["opcounters"]["insert"] - before["opcounters"]["insert"] == 3
    assert after["opcounters"]["query"] > before["opcounters"]["query"]
    for k in ("host", "version", "process", "pid", "uptime", "localTime", "connections", "mem", "metrics",
              "storageEngine", "mongolake"):
        assert k in after
    assert after["connections"]["current"] >= 1 and after["version"].startswith("8.0")


def test_current_op_and_kill_op(client):
    r = client.admin.command("currentOp")
    mine = [op for op in r["inprog"] if "currentOp" in op["command"]]
    assert len(mine) == 1 and mine[0]["active"] is True and isinstance(mine[0]["opid"], int)
    # the monitors' awaitable hellos show up only with $all
    assert not any("hello" in op["command"] for op in r["inprog"])
    r = client.admin.command({"currentOp": 1, "$all": True})
    assert any("hello" in op["command"] or "isMaster" in op["command"] for op in r["inprog"])
    r = client.admin.command({"currentOp": 1, "ns": "nothing.at.all"})
    assert r["inprog"] == []
    assert client.admin.command("killOp", op=123456789)["info"] == "attempting to kill op"
    ops = list(client.admin.aggregate([{"$currentOp": {"allUsers": True}}, {"$match": {"ns": "admin"}},
                                       {"$project": {"command": 1}}]))
    assert any("aggregate" in op["command"] for op in ops)
    with pytest.raises(OperationFailure) as ei:
        list(client.test.aggregate([{"$currentOp": {}}]))
    assert ei.value.code == 73
    with client.start_session() as s:
        client.test.command("ping", session=s)
        sessions = list(client.admin.aggregate([{"$listLocalSessions": {}}]))
        assert any(d["_id"]["id"] == s.session_id["id"] for d in sessions)
    with pytest.raises(OperationFailure) as ei:
        client.admin.command("killOp", op="x")
    assert ei.value.code == 14
    with pytest.raises(OperationFailure) as ei:
        client.test.command("currentOp")
    assert ei.value.code == 13


def test_parameters_and_identity(client):
    adm = client.admin
    p = adm.command("getParameter", "*")
    assert p["featureCompatibilityVersion"] == {"version": "8.0"} and "cursorTimeoutMillis" in p
    assert adm.command({"getParameter": 1, "featureCompatibilityVersion": 1}) == {
        "featureCompatibilityVersion": {"version": "8.0"}, "ok": 1.0, **{k: v for k, v in adm.command(
            {"getParameter": 1, "featureCompatibilityVersion": 1}).items() if k in ("$clusterTime", "operationTime")}}
    d = adm.command({"getParameter": {"showDetails": True}, "logLevel": 1})
    assert d["logLevel"]["settableAtRuntime"] is True
    with pytest.raises(OperationFailure) as ei:
        adm.command({"getParameter": 1, "noSuchParam": 1})
    assert ei.value.code == 72
    assert adm.command({"setParameter": 1, "cursorTimeoutMillis": 700000})["was"] == Int64(600000)
    assert adm.command({"getParameter": 1, "cursorTimeoutMillis": 1})["cursorTimeoutMillis"] == 700000
    adm.command({"setParameter": 1, "cursorTimeoutMillis": 600000})
    with pytest.raises(OperationFailure) as ei:
        adm.command({"setParameter": 1, "featureCompatibilityVersion": "7.0"})
    assert ei.value.code == 72
    opts = adm.command("getCmdLineOpts")
    assert opts["argv"][:2] == ["mongolake", "serve"] and opts["parsed"]["port"] == client.address[1]
    hi = adm.command("hostInfo")
    assert hi["system"]["numCores"] >= 1 and hi["os"]["type"]
    you = adm.command("whatsmyuri")["you"]
    assert you.startswith("127.0.0.1:")
    cs = adm.command("connectionStatus", showPrivileges=True)
    assert cs["authInfo"] == {"authenticatedUsers": [], "authenticatedUserRoles": [], "authenticatedUserPrivileges": []}
    cmds = adm.command("listCommands")["commands"]
    for name in ("find", "insert", "bulkWrite", "hello", "getMore", "killCursors", "listCommands"):
        assert name in cmds and cmds[name]["help"]
    assert "mapReduce" not in cmds
    b = adm.command("buildInfo")
    assert b["version"].startswith("8.0") and b["versionArray"][:2] == [8, 0] and "mongolake" in b
    rw = adm.command("getDefaultRWConcern")
    assert rw["defaultReadConcern"] == {"level": "local"}
    assert client.test.command("profile", -1)["was"] == 0


def test_get_log(client, db):
    names = client.admin.command("getLog", "*")["names"]
    assert names == ["global", "startupWarnings"]
    assert client.admin.command("getLog", "startupWarnings")["log"] == []
    g = client.admin.command("getLog", "global")
    assert g["totalLinesWritten"] >= 1 and any("listening" in line for line in g["log"])
    import json
    assert all(isinstance(json.loads(line), dict) for line in g["log"])
    with pytest.raises(OperationFailure) as ei:
        client.admin.command("getLog", "nope")
    assert ei.value.code == 72


def test_logout_ping_and_sessions(client, db):
    assert db.command("logout")["ok"] == 1.0
    assert db.command("ping")["ok"] == 1.0
    sid = client.admin.command("startSession")["id"]
    assert client.admin.command("refreshSessions", [sid])["ok"] == 1.0
    db.c.insert_many([{"_id": i} for i in range(20)])
    with client.start_session() as s:
        cur = db.c.find({}, batch_size=2, session=s)
        next(cur)
        cid = cur.cursor_id
        client.admin.command("killSessions", [s.session_id])
        with pytest.raises(OperationFailure) as ei:
            db.command("getMore", cid, collection="c")
        assert ei.value.code == 43
    assert client.admin.command("endSessions", [sid])["ok"] == 1.0
    assert client.admin.command("killAllSessions", [])["ok"] == 1.0


def test_kill_cursors_reply(db):
    db.c.insert_many([{"_id": i} for i in range(10)])
    r = db.command("find", "c", batchSize=2)
    cid = r["cursor"]["id"]
    out = db.command("killCursors", "c", cursors=[cid, Int64(12345)])
    assert out["cursorsKilled"] == [cid] and out["cursorsNotFound"] == [12345]
    with pytest.raises(OperationFailure) as ei:
        db.command("getMore", cid, collection="c")
    assert ei.value.code == 43
    r = db.command("find", "c", batchSize=2)
    out = db.command("killCursors", "other", cursors=[r["cursor"]["id"]])     # wrong namespace: not killed
    assert out["cursorsNotFound"] == [r["cursor"]["id"]]
    with pytest.raises(OperationFailure) as ei:
        db.command("getMore", r["cursor"]["id"], collection="other")
    assert ei.value.code == 13
