"""Resume tokens, event documents and cursor errors, without a server."""
import asyncio

import bson
import pytest
from bson import Int64, Timestamp
from bson.binary import Binary

from mongolake.commands.changestream_events import Scope
from mongolake.commands.changestream import ChangeStreamCursor
from mongolake.commands.changestream_events import (EventOptions, ResumePoint, data_event, ddl_event,
                                                    decode_token, disambiguated_paths, invalidate_event)
from mongolake.engine.changes import ChangeRecord
from mongolake.errors import MongoError
from mongolake.formats.base import SnapshotNotFoundError
from mongolake.storage.base import TransientStorageError

UUID = "0123456789abcdef0123456789abcdef"


def rec(op, doc=None, before=None, desc=None, seq=7, index=0, txn=None, db="d", coll="c"):
    enc = (lambda d: bson.encode(d) if d is not None else None)
    return ChangeRecord(seq, index, Timestamp(1_700_000_000, 3), 1_700_000_000_123, op, db, coll, UUID,
                        enc(doc), enc(before), desc, txn)


def test_tokens_round_trip_and_sort_in_event_order():
    pts = [ResumePoint(5, 0, 99), ResumePoint(5, 1, 99), ResumePoint.high_water_mark(5, 99), ResumePoint(6, 0, 1),
           ResumePoint(300, 2, 0, True)]
    toks = [p.token()["_data"] for p in pts]
    assert toks == sorted(toks)
    for p in pts:
        assert decode_token(p.token(), "resumeAfter") == p
    assert decode_token(pts[-1].token(), "startAfter").from_invalidate


@pytest.mark.parametrize("bad, code", [({"_data": "82zz"}, 260), ({"_data": 5}, 40647), ({}, 40647),
                                       ("x", 14), ({"_data": "8263A1B2C3"}, 260)])
def test_bad_tokens(bad, code):
    with pytest.raises(MongoError) as ei:
        decode_token(bad, "resumeAfter")
    assert ei.value.code == code


def test_transaction_fields_and_expanded_uuid():
    lsid = {"id": Binary(b"\x01" * 16, 4)}
    ev = data_event(rec("i", {"_id": 1}, txn={"lsid": lsid, "txnNumber": 3}),
                    EventOptions(expanded=True, decode=True), False, lambda r, i: None)
    assert ev["lsid"] == lsid and ev["txnNumber"] == Int64(3) and isinstance(ev["txnNumber"], Int64)
    assert ev["collectionUUID"] == Binary(bytes.fromhex(UUID), 4)
    plain = data_event(rec("i", {"_id": 1}), EventOptions(decode=True), False, lambda r, i: None)
    assert "lsid" not in plain and "collectionUUID" not in plain
    assert decode_token(plain["_id"], "resumeAfter") == ResumePoint(7, 0, (1_700_000_000 << 32) | 3)


def test_update_lookup_and_images():
    r = rec("u", {"_id": 1, "v": 2}, {"_id": 1, "v": 1}, {"updatedFields": {"v": 2}, "removedFields": [],
                                                          "truncatedArrays": []})
    ev = data_event(r, EventOptions("updateLookup", "whenAvailable", decode=True), False,
                    lambda rr, _id: bson.encode({"_id": _id, "v": 9}))
    assert ev["fullDocument"] == {"_id": 1, "v": 9} and ev["fullDocumentBeforeChange"] is None
    ev = data_event(r, EventOptions("required", "required", decode=True), True, lambda rr, _id: None)
    assert ev["fullDocument"] == {"_id": 1, "v": 2} and ev["fullDocumentBeforeChange"] == {"_id": 1, "v": 1}
    with pytest.raises(MongoError) as ei:
        data_event(r, EventOptions("required", decode=True), False, lambda rr, _id: None)
    assert ei.value.code == 47 and "post-image" in ei.value.message
    d = data_event(rec("d", before={"_id": 1}, desc={"_id": 1}), EventOptions(decode=True), False, None)
    assert d["documentKey"] == {"_id": 1} and "fullDocument" not in d and "fullDocumentBeforeChange" not in d


def test_disambiguated_paths():
    after = {"_id": 1, "a": {"0": 5, "b.c": 3}, "arr": [{"x": 1}, {"x": 2}], "5": 1}
    r = rec("u", after, {"_id": 1, "a": {"0": 1, "b.c": 2, "gone": 1}, "arr": [{"x": 1}, {"x": 1}], "5": 0})
    desc = {"updatedFields": {"a.0": 5, "a.b.c": 3, "arr.1.x": 2, "5": 1}, "removedFields": ["a.gone"],
            "truncatedArrays": []}
    assert disambiguated_paths(desc, r) == {"a.0": ["a", "0"], "a.b.c": ["a", "b.c"]}


def test_ddl_events_and_scope():
    ren = rec("rename", desc={"to": {"db": "d", "coll": "c2"}, "dropTarget": False})
    ev = ddl_event(ren, EventOptions())
    assert ev["operationType"] == "rename" and ev["to"] == {"db": "d", "coll": "c2"}
    assert "operationDescription" not in ev
    assert ddl_event(rec("create", desc={"options": {}}), EventOptions()) is None
    assert ddl_event(rec("create", desc={"options": {}}), EventOptions(expanded=True))["operationType"] == "create"
    inv = invalidate_event(ren)
    assert decode_token(inv["_id"], "startAfter").from_invalidate and inv["operationType"] == "invalidate"
    coll, other_target = Scope("collection", "d", "c"), Scope("collection", "d", "c2")
    assert coll.invalidated_by(ren) and other_target.invalidated_by(ren)        # source and target
    assert not Scope("database", "d").invalidated_by(ren) and Scope("database", "d").sees(ren)
    assert Scope("database", "d").invalidated_by(rec("dropDatabase", db="d", coll=""))
    assert not Scope("cluster").sees(rec("i", {"_id": 1}, db="config", coll="transactions"))
    assert not Scope("database", "d").sees(rec("i", {"_id": 1}, coll="system.views"))


class _FailingLog:
    durable_seq = 10

    def __init__(self, exc):
        self.exc = exc

    def read(self, after, limit):
        raise self.exc


class _Ctx:
    def __init__(self, exc):
        self.engine = type("E", (), {"changelog": _FailingLog(exc)})()
        self.body = {}


@pytest.mark.parametrize("exc, code, labelled", [
    (TransientStorageError("throttled"), 6, True),
    (SnapshotNotFoundError("commit 3 cleaned up"), 286, False),
    (FileNotFoundError("part-1.parquet"), 286, False),
])
def test_get_more_errors_and_resumable_label(exc, code, labelled):
    cur = ChangeStreamCursor(_Ctx(exc), Scope("cluster"), EventOptions(), None, ResumePoint.high_water_mark(3, 0))
    with pytest.raises(MongoError) as ei:
        asyncio.run(cur.get_more(0, 50))
    assert ei.value.code == code
    assert ("ResumableChangeStreamError" in ei.value.labels) is labelled
