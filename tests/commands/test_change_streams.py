"""Change streams through pymongo against the real server: the three watch levels, event
shapes, fullDocument / fullDocumentBeforeChange, expanded events, invalidate, resume
options, user stages, getMore waiting and the errors MongoDB gives."""
import time

import pytest
from bson import Timestamp
from pymongo.errors import OperationFailure

from mongolake.commands.changestream_events import ResumePoint, decode_token

AWAIT = 300     # maxAwaitTimeMS: a missing event costs this, not the 1 s default


@pytest.fixture(params=["delta", "iceberg"])
def client(request, format_client):
    """Every test here runs against a Delta and an Iceberg server."""
    return format_client(request.param)


def _take(cs, n, timeout=10.0):
    """The next ``n`` events (fails after ``timeout`` seconds)."""
    out = []
    deadline = time.time() + timeout
    while len(out) < n:
        assert time.time() < deadline, f"only {len(out)} of {n} events: {out}"
        ev = cs.try_next()
        if ev is not None:
            out.append(ev)
    return out


def _next(cs):
    return _take(cs, 1)[0]


def _types(evs):
    return [e["operationType"] for e in evs]


def test_collection_watch_crud_events(db):
    c = db.items
    c.insert_one({"_id": 0})
    with c.watch(max_await_time_ms=AWAIT) as cs:
        c.insert_one({"_id": 1, "a": 1, "arr": [1, 2, 3]})
        c.update_one({"_id": 1}, {"$set": {"b.c": 2}, "$unset": {"a": ""}})
        c.update_one({"_id": 1}, [{"$set": {"arr": [1]}}])
        c.replace_one({"_id": 1}, {"x": 1})
        c.delete_one({"_id": 1})
        db.other.insert_one({"_id": 9})           # another collection: not seen
        ins, upd, pop, rep, dele = _take(cs, 5)
    assert ins["operationType"] == "insert" and ins["fullDocument"] == {"_id": 1, "a": 1, "arr": [1, 2, 3]}
    assert ins["ns"] == {"db": db.name, "coll": "items"} and ins["documentKey"] == {"_id": 1}
    assert isinstance(ins["clusterTime"], Timestamp) and ins["wallTime"].year >= 2024
    assert set(ins["_id"]) == {"_data"}
    assert upd["operationType"] == "update" and "fullDocument" not in upd
    assert upd["updateDescription"] == {"updatedFields": {"b": {"c": 2}}, "removedFields": ["a"],
                                        "truncatedArrays": []}
    assert pop["updateDescription"] == {"updatedFields": {}, "removedFields": [],
                                        "truncatedArrays": [{"field": "arr", "newSize": 1}]}
    assert rep["operationType"] == "replace" and rep["fullDocument"] == {"_id": 1, "x": 1}
    assert dele["operationType"] == "delete" and dele["documentKey"] == {"_id": 1} and "fullDocument" not in dele
    toks = [e["_id"]["_data"] for e in (ins, upd, pop, rep, dele)]
    assert toks == sorted(toks) and len(set(toks)) == 5
    assert [e["clusterTime"] for e in (ins, upd, pop, rep, dele)] == sorted(
        e["clusterTime"] for e in (ins, upd, pop, rep, dele))


def test_database_and_cluster_watch(client, db):
    other = client[db.name + "_b"]
    client.drop_database(other.name)
    with db.watch(max_await_time_ms=AWAIT) as dbs, client.watch(max_await_time_ms=AWAIT) as cls:
        db.a.insert_one({"_id": 1})
        other.b.insert_one({"_id": 2})
        db.c.insert_one({"_id": 3})
        client.admin.command("ping")
        got_db = _take(dbs, 2)
        got_cl = _take(cls, 3)
    assert [(e["ns"]["coll"], e["documentKey"]["_id"]) for e in got_db] == [("a", 1), ("c", 3)]
    assert [(e["ns"]["db"], e["documentKey"]["_id"]) for e in got_cl] == [(db.name, 1), (other.name, 2),
                                                                          (db.name, 3)]
    client.drop_database(other.name)


def test_getmore_waits_then_answers_empty_batch_with_post_batch_resume_token(db):
    db.c.insert_one({"_id": 0})
    res = db.command("aggregate", "c", pipeline=[{"$changeStream": {}}], cursor={})
    cur = res["cursor"]
    assert cur["firstBatch"] == [] and cur["id"] != 0 and "postBatchResumeToken" in cur
    assert "operationTime" in res
    t0 = time.time()
    more = db.command("getMore", cur["id"], collection="c", maxTimeMS=400)
    waited = time.time() - t0
    assert more["cursor"]["nextBatch"] == [] and 0.35 < waited < 3
    pbrt = more["cursor"]["postBatchResumeToken"]
    assert pbrt["_data"] >= cur["postBatchResumeToken"]["_data"]
    t0 = time.time()
    more = db.command("getMore", cur["id"], collection="c")      # default wait: 1 s
    assert 0.9 < time.time() - t0 < 4 and more["cursor"]["nextBatch"] == []
    db.c.insert_one({"_id": 1})
    more = db.command("getMore", cur["id"], collection="c", maxTimeMS=5000)
    batch = more["cursor"]["nextBatch"]
    assert [e["documentKey"] for e in batch] == [{"_id": 1}]
    assert more["cursor"]["postBatchResumeToken"]["_data"] >= batch[-1]["_id"]["_data"]
    db.command("killCursors", "c", cursors=[cur["id"]])


def test_getmore_wakes_as_soon_as_an_event_is_durable(db, client):
    import threading
    db.c.insert_one({"_id": 0})
    res = db.command("aggregate", "c", pipeline=[{"$changeStream": {}}], cursor={})
    cid = res["cursor"]["id"]
    timer = threading.Timer(0.3, lambda: client[db.name].c.insert_one({"_id": 1}))
    timer.start()
    t0 = time.time()
    more = db.command("getMore", cid, collection="c", maxTimeMS=10000)
    assert len(more["cursor"]["nextBatch"]) == 1 and time.time() - t0 < 3
    timer.join()


def test_batch_size_and_resume_from_any_event(db):
    c = db.c
    c.insert_one({"_id": -1})
    with c.watch(max_await_time_ms=AWAIT, batch_size=2) as cs:
        c.insert_many([{"_id": i} for i in range(6)])     # one batch: six events, one sequence number
        evs = _take(cs, 6)
    assert [e["documentKey"]["_id"] for e in evs] == list(range(6))
    for k in (0, 2, 4):
        with c.watch(max_await_time_ms=AWAIT, resume_after=evs[k]["_id"]) as cs:
            rest = _take(cs, 5 - k)
            assert [e["documentKey"]["_id"] for e in rest] == list(range(k + 1, 6))
            assert cs.try_next() is None


def test_full_document_modes_and_pre_images(db):
    db.create_collection("plain")
    db.create_collection("imaged", changeStreamPreAndPostImages={"enabled": True})
    for name in ("plain", "imaged"):
        db[name].insert_one({"_id": 1, "v": 0})
    opts = dict(max_await_time_ms=AWAIT)
    with db.plain.watch(full_document="updateLookup", **opts) as look, \
            db.plain.watch(full_document="whenAvailable", full_document_before_change="whenAvailable", **opts) as wa, \
            db.imaged.watch(full_document="required", full_document_before_change="required", **opts) as req:
        db.plain.update_one({"_id": 1}, {"$inc": {"v": 1}})
        db.plain.update_one({"_id": 1}, {"$inc": {"v": 1}})
        db.imaged.update_one({"_id": 1}, {"$inc": {"v": 5}})
        db.imaged.delete_one({"_id": 1})
        a, b = _take(look, 2)
        assert a["fullDocument"] == {"_id": 1, "v": 2} and b["fullDocument"] == {"_id": 1, "v": 2}  # current doc
        w = _take(wa, 2)
        assert w[0]["fullDocument"] is None and w[0]["fullDocumentBeforeChange"] is None
        u, d = _take(req, 2)
        assert u["fullDocument"] == {"_id": 1, "v": 5} and u["fullDocumentBeforeChange"] == {"_id": 1, "v": 0}
        assert d["fullDocumentBeforeChange"] == {"_id": 1, "v": 5} and "fullDocument" not in d
    with db.plain.watch(full_document_before_change="required", **opts) as bad:
        db.plain.update_one({"_id": 1}, {"$inc": {"v": 1}})
        with pytest.raises(OperationFailure) as ei:
            _next(bad)
        assert ei.value.code == 47 and "pre-image" in str(ei.value)


def test_pre_images_follow_the_collection_option(db):
    db.create_collection("c")
    db.c.insert_one({"_id": 1, "v": 1})
    with db.c.watch(full_document_before_change="whenAvailable", max_await_time_ms=AWAIT) as cs:
        db.c.update_one({"_id": 1}, {"$set": {"v": 2}})
        assert _next(cs)["fullDocumentBeforeChange"] is None
        db.command("collMod", "c", changeStreamPreAndPostImages={"enabled": True})
        db.c.update_one({"_id": 1}, {"$set": {"v": 3}})
        assert _next(cs)["fullDocumentBeforeChange"] == {"_id": 1, "v": 2}


def test_expanded_events(db):
    with db.watch(show_expanded_events=True, max_await_time_ms=AWAIT) as cs, \
            db.watch(max_await_time_ms=AWAIT) as plain:
        db.create_collection("x", validator={"a": {"$exists": True}})
        db.x.create_index("a", name="a_1")
        db.x.drop_index("a_1")
        db.command("collMod", "x", validator={})
        db.x.insert_one({"_id": 1, "a": {"0": 1, "b.c": 2}})
        db.x.update_one({"_id": 1}, [{"$set": {"a": {"$setField": {"field": "b.c", "input": "$a", "value": 3}}}},
                                     {"$set": {"a.0": 5}}])
        db.x.drop()
        evs = _take(cs, 7)
        assert _types(_take(plain, 3)) == ["insert", "update", "drop"]
    assert _types(evs) == ["create", "createIndexes", "dropIndexes", "modify", "insert", "update", "drop"]
    create = evs[0]
    assert create["ns"] == {"db": db.name, "coll": "x"} and "collectionUUID" in create
    assert create["operationDescription"]["validator"] == {"a": {"$exists": True}}
    assert evs[1]["operationDescription"]["indexes"][0]["name"] == "a_1"
    assert evs[2]["operationDescription"]["indexes"][0]["name"] == "a_1"
    assert "collectionUUID" in evs[4]
    desc = evs[5]["updateDescription"]
    assert desc["disambiguatedPaths"] == {"a.0": ["a", "0"], "a.b.c": ["a", "b.c"]}


def test_drop_and_rename_invalidate_collection_streams_and_start_after(db):
    db.a.insert_one({"_id": 1})
    with db.a.watch(max_await_time_ms=AWAIT) as cs:
        db.a.insert_one({"_id": 2})
        db.a.drop()
        ins, drop, inv = _take(cs, 3)
        assert _types([ins, drop, inv]) == ["insert", "drop", "invalidate"]
        assert not cs.alive
    tok = inv["_id"]
    assert decode_token(tok, "startAfter").from_invalidate
    with pytest.raises(OperationFailure) as ei:
        db.a.watch(resume_after=tok)
    assert ei.value.code == 260
    with db.a.watch(start_after=tok, max_await_time_ms=AWAIT) as cs:   # a new incarnation of "a"
        db.a.insert_one({"_id": 3})
        assert _next(cs)["documentKey"] == {"_id": 3}
    with db.a.watch(resume_after=drop["_id"], max_await_time_ms=AWAIT) as cs:   # right after the drop
        assert _types([_next(cs)]) == ["invalidate"]
    db.r.insert_one({"_id": 1})
    with db.r.watch(max_await_time_ms=AWAIT) as cs, db.watch(max_await_time_ms=AWAIT) as dbs:
        db.r.rename("r2")
        ren, inv = _take(cs, 2)
        assert ren["operationType"] == "rename" and ren["to"] == {"db": db.name, "coll": "r2"}
        assert inv["operationType"] == "invalidate"
        db.r2.insert_one({"_id": 2})
        assert _types(_take(dbs, 2)) == ["rename", "insert"]         # a database stream goes on


def test_drop_database_invalidates_database_stream(client):
    name = "t_cs_dropdb"
    client.drop_database(name)
    client[name].c.insert_one({"_id": 1})
    with client[name].watch(max_await_time_ms=AWAIT) as dbs, client.watch(max_await_time_ms=AWAIT) as cls:
        client.drop_database(name)
        assert _types(_take(dbs, 3)) == ["drop", "dropDatabase", "invalidate"]
        evs = _take(cls, 2)
        assert _types(evs) == ["drop", "dropDatabase"] and evs[1]["ns"] == {"db": name}
        client.other_cs_db.c.insert_one({"_id": 1})               # the cluster stream is not invalidated
        assert _next(cls)["ns"]["db"] == "other_cs_db"
    client.drop_database("other_cs_db")


def test_start_at_operation_time(db):
    db.c.insert_one({"_id": 0})
    t = db.command("ping")["operationTime"]
    db.c.insert_one({"_id": 1})
    db.c.insert_one({"_id": 2})
    with db.c.watch(start_at_operation_time=Timestamp(t.time, t.inc + 1), max_await_time_ms=AWAIT) as cs:
        assert [e["documentKey"]["_id"] for e in _take(cs, 2)] == [1, 2]
    with pytest.raises(OperationFailure) as ei:
        db.c.watch(start_at_operation_time=Timestamp(1000, 1))
    assert ei.value.code == 286


def test_user_stages_after_change_stream(db):
    c = db.c
    c.insert_one({"_id": 0})
    pipeline = [{"$match": {"operationType": {"$in": ["insert", "update"]}, "fullDocument.keep": {"$ne": False}}},
                {"$addFields": {"tag": "x"}}, {"$set": {"n": {"$add": ["$documentKey._id", 100]}}},
                {"$project": {"operationType": 1, "documentKey": 1, "tag": 1, "n": 1}},
                {"$unset": "tag"}]
    with c.watch(pipeline, max_await_time_ms=AWAIT) as cs, \
            c.watch([{"$replaceWith": {"$mergeObjects": ["$$ROOT", {"k": "$documentKey._id"}]}},
                     {"$redact": {"$cond": [{"$eq": ["$k", 2]}, "$$PRUNE", "$$KEEP"]}}],
                    max_await_time_ms=AWAIT) as cs2:
        c.insert_one({"_id": 1})
        c.insert_one({"_id": 2, "keep": False})
        c.delete_one({"_id": 1})
        c.insert_one({"_id": 3})
        a, b = _take(cs, 2)
        assert set(a) == {"_id", "operationType", "documentKey", "n"} and a["n"] == 101 and b["n"] == 103
        assert [e["k"] for e in _take(cs2, 3)] == [1, 1, 3]


def test_user_stage_errors(db):
    db.c.insert_one({"_id": 0})
    with pytest.raises(OperationFailure) as ei:
        db.c.watch([{"$group": {"_id": None}}])
    assert ei.value.code == 20
    with pytest.raises(OperationFailure) as ei:
        db.c.aggregate([{"$match": {}}, {"$changeStream": {}}])
    assert ei.value.code == 40602
    with db.c.watch([{"$project": {"_id": 0}}], max_await_time_ms=AWAIT) as cs:
        db.c.insert_one({"_id": 1})
        with pytest.raises(OperationFailure) as ei:
            _next(cs)
        assert ei.value.code == 280


def test_option_errors(client, db):
    db.c.insert_one({"_id": 0})
    cases = [
        (db, "c", {"bogus": 1}, 40415),
        (db, "c", {"fullDocument": "nope"}, 2),
        (db, "c", {"fullDocumentBeforeChange": 1}, 14),
        (db, "c", {"resumeAfter": {"_data": "zz"}, "startAfter": {"_data": "zz"}}, 50865),
        (db, "c", {"resumeAfter": {"_data": "zz"}}, 260),
        (db, "c", {"resumeAfter": ResumePoint(5, 0, 0).token(), "startAtOperationTime": Timestamp(1, 1)}, 40674),
        (db, "c", {"allChangesForCluster": True}, 72),
        (client.admin, 1, {}, 73),
        (client.local, 1, {}, 73),
        (db, "system.views", {}, 73),
    ]
    for target_db, target, spec, code in cases:
        with pytest.raises(OperationFailure) as ei:
            target_db.command("aggregate", target, pipeline=[{"$changeStream": spec}], cursor={})
        assert ei.value.code == code, (spec, ei.value)
    with pytest.raises(OperationFailure) as ei:
        db.command("aggregate", "c", pipeline=[{"$changeStream": 1}], cursor={})
    assert ei.value.code == 50808


def test_resumable_error_label_on_cursor_not_found(db):
    db.c.insert_one({"_id": 0})
    cur = db.command("aggregate", "c", pipeline=[{"$changeStream": {}}], cursor={})["cursor"]
    db.command("killCursors", "c", cursors=[cur["id"]])
    with pytest.raises(OperationFailure) as ei:
        db.command("getMore", cur["id"], collection="c", maxTimeMS=100)
    assert ei.value.code == 43


def test_driver_resumes_by_itself_after_the_cursor_is_lost(db):
    """pymongo resumes (CursorNotFound is resumable) with its cached token: no event lost."""
    c = db.c
    c.insert_one({"_id": 0})
    with c.watch(max_await_time_ms=AWAIT) as cs:
        c.insert_one({"_id": 1})
        assert _next(cs)["documentKey"] == {"_id": 1}
        db.command("killCursors", "c", cursors=[cs._cursor.cursor_id])
        c.insert_one({"_id": 2})
        c.insert_one({"_id": 3})
        assert [e["documentKey"]["_id"] for e in _take(cs, 2)] == [2, 3]


def test_transaction_events_carry_lsid_and_txn_number(client, db):
    db.c.insert_one({"_id": 0})
    db.d.insert_one({"_id": 0})
    with db.watch(max_await_time_ms=AWAIT) as cs:
        with client.start_session() as s:
            with s.start_transaction():
                db.c.insert_one({"_id": 1}, session=s)
                db.d.update_one({"_id": 0}, {"$set": {"x": 1}}, session=s)
            lsid = s.session_id
        db.c.insert_one({"_id": 2})
        a, b, c = _take(cs, 3)
    assert a["lsid"]["id"] == lsid["id"] and b["lsid"]["id"] == lsid["id"]
    assert a["txnNumber"] == b["txnNumber"] and a["clusterTime"] == b["clusterTime"]
    assert (a["ns"]["coll"], b["ns"]["coll"], b["operationType"]) == ("c", "d", "update")
    assert "lsid" not in c and "txnNumber" not in c
