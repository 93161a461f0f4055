"""Change-stream event documents and resume tokens.

A resume token is ``{_data: "<hex>"}``: a version byte, then the event's sequence
number, its index within its batch, its cluster time and flags, each fixed-width
big-endian, so tokens compare as strings in event order (sequence numbers are
monotonic across restarts; the cluster time is kept for startAtOperationTime and
retention checks). A *high-water mark* token (``postBatchResumeToken`` when no event
was returned) carries index ``0xFFFFFFFF``: resuming from it starts after every event
of that sequence number. The ``fromInvalidate`` flag marks the token of an
``invalidate`` event (accepted by ``startAfter`` only).

:func:`event_document` turns one :class:`~mongolake.engine.changes.ChangeRecord`
into the event MongoDB drivers expect (operationType, clusterTime, wallTime, ns,
documentKey, updateDescription, fullDocument, fullDocumentBeforeChange, lsid and
txnNumber for transactional writes, and with ``showExpandedEvents`` the extra
catalog events, ``collectionUUID`` and ``disambiguatedPaths``).
"""
from __future__ import annotations

import re
import uuid as _uuid
from dataclasses import dataclass
from typing import Any, Callable

import bson
from bson.binary import Binary, UuidRepresentation
from bson.datetime_ms import DatetimeMS
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument
from bson.timestamp import Timestamp

from mongolake.engine.changes import ChangeRecord, ts_int
from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import CODEC_OPTIONS

InvalidResumeToken = 260
NoMatchingDocument = 47
TOKEN_VERSION = "82"
HWM_INDEX = 0xFFFFFFFF
_FLAG_INVALIDATE = 1
_TOKEN_RE = re.compile(r"^82[0-9A-Fa-f]{42}$")

DATA_OPS = {"i": "insert", "u": "update", "r": "replace", "d": "delete"}
# catalog events every stream shows; the others need showExpandedEvents
BASIC_DDL = frozenset({"drop", "rename", "dropDatabase"})
EXPANDED_DDL = frozenset({"create", "createIndexes", "dropIndexes", "modify"})


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """A position in the change log: after event ``(seq, index)``."""
    seq: int
    index: int
    ts: int = 0                        # cluster time as (time << 32 | inc)
    from_invalidate: bool = False

    @property
    def key(self) -> tuple[int, int]:
        return (self.seq, self.index)

    @property
    def is_high_water_mark(self) -> bool:
        return self.index == HWM_INDEX

    @property
    def cluster_time(self) -> Timestamp:
        return Timestamp(self.ts >> 32, self.ts & 0xFFFFFFFF)

    def token(self) -> dict:
        flags = _FLAG_INVALIDATE if self.from_invalidate else 0
        return {"_data": f"{TOKEN_VERSION}{self.seq:016X}{self.index:08X}{self.ts:016X}{flags:02X}"}

    @classmethod
    def of(cls, rec: ChangeRecord, *, from_invalidate: bool = False) -> "ResumePoint":
        return cls(rec.seq, rec.index, ts_int(rec.cluster_time), from_invalidate)

    @classmethod
    def high_water_mark(cls, seq: int, ts: int) -> "ResumePoint":
        return cls(seq, HWM_INDEX, ts)


def decode_token(token: Any, field: str) -> ResumePoint:
    """Parse a resume token given as ``resumeAfter``/``startAfter``."""
    if not isinstance(token, dict):
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field '$changeStream.{field}' is the wrong type, "
                         "expected type 'object'")
    data = token.get("_data")
    if not isinstance(data, str):
        raise MongoError(40647, "Bad resume token: _data of missing or of wrong type. Expected string, got "
                         f"{type(data).__name__}")
    if not _TOKEN_RE.match(data):
        raise MongoError(InvalidResumeToken, f"invalid resume token {data!r}: not a MongoLake change stream token")
    seq, index, ts, flags = int(data[2:18], 16), int(data[18:26], 16), int(data[26:42], 16), int(data[42:44], 16)
    return ResumePoint(seq, index, ts, bool(flags & _FLAG_INVALIDATE))


# -- what a stream watches ---------------------------------------------------------------

_INTERNAL_DBS = ("admin", "config", "local")


class Scope:
    """The namespace a stream watches: ``collection`` (db, coll), ``database`` (db) or ``cluster``."""

    def __init__(self, kind: str, db: str | None = None, coll: str | None = None):
        self.kind, self.db, self.coll = kind, db, coll

    def _target(self, rec: ChangeRecord) -> tuple[str | None, str | None]:
        to = (rec.desc or {}).get("to") if rec.op == "rename" else None
        return (to.get("db"), to.get("coll")) if isinstance(to, dict) else (None, None)

    def sees(self, rec: ChangeRecord) -> bool:
        if self.kind == "collection":
            return (rec.db, rec.coll) == (self.db, self.coll) or self._target(rec) == (self.db, self.coll)
        if rec.coll.startswith("system."):
            return False
        if self.kind == "database":
            return rec.db == self.db or self._target(rec)[0] == self.db
        return rec.db not in _INTERNAL_DBS

    def invalidated_by(self, rec: ChangeRecord) -> bool:
        if self.kind == "collection":
            if rec.op == "dropDatabase":
                return rec.db == self.db
            return rec.op in ("drop", "rename") and self.sees(rec)
        if self.kind == "database":
            return rec.op == "dropDatabase" and rec.db == self.db
        return False

    def ns(self) -> str:
        if self.kind == "collection":
            return f"{self.db}.{self.coll}"
        return f"{self.db if self.kind == 'database' else 'admin'}.$cmd.aggregate"


# -- event documents ---------------------------------------------------------------------

@dataclass(slots=True)
class EventOptions:
    full_document: str = "default"             # default | updateLookup | whenAvailable | required
    before_change: str = "off"                 # off | whenAvailable | required
    expanded: bool = False                     # showExpandedEvents
    decode: bool = False                       # dict documents (a user pipeline follows) vs raw


def _uuid_binary(s: str) -> Binary | None:
    try:
        return Binary.from_uuid(_uuid.UUID(hex=s), UuidRepresentation.STANDARD)
    except (ValueError, TypeError):
        return None


def _doc_value(raw: bytes | None, decode: bool) -> Any:
    if raw is None:
        return None
    return bson.decode(raw, CODEC_OPTIONS) if decode else RawBSONDocument(raw)


def ns_of(rec: ChangeRecord) -> dict:
    return {"db": rec.db} if rec.op == "dropDatabase" else {"db": rec.db, "coll": rec.coll}


def _head(rec: ChangeRecord, token: dict, op_name: str, opts: EventOptions) -> dict:
    ev: dict[str, Any] = {"_id": token, "operationType": op_name, "clusterTime": rec.cluster_time,
                          "wallTime": DatetimeMS(rec.wall_ms)}
    if opts.expanded and rec.uuid:
        u = _uuid_binary(rec.uuid)
        if u is not None:
            ev["collectionUUID"] = u
    if rec.txn:
        if "lsid" in rec.txn:
            ev["lsid"] = rec.txn["lsid"]
        if "txnNumber" in rec.txn:
            ev["txnNumber"] = Int64(int(rec.txn["txnNumber"]))
    return ev


def invalidate_event(rec: ChangeRecord) -> dict:
    return {"_id": ResumePoint.of(rec, from_invalidate=True).token(), "operationType": "invalidate",
            "clusterTime": rec.cluster_time, "wallTime": DatetimeMS(rec.wall_ms)}


def ddl_event(rec: ChangeRecord, opts: EventOptions) -> dict | None:
    """The event of a catalog change, or None when this stream does not show it."""
    if rec.op not in BASIC_DDL and not (opts.expanded and rec.op in EXPANDED_DDL):
        return None
    ev = _head(rec, ResumePoint.of(rec).token(), rec.op, opts)
    ev["ns"] = ns_of(rec)
    desc = rec.desc or {}
    if rec.op == "rename":
        to = desc.get("to") or {}
        ev["to"] = {"db": to.get("db"), "coll": to.get("coll")}
        if opts.expanded:
            ev["operationDescription"] = {"to": dict(ev["to"])}
    elif rec.op == "create":
        ev["nsType"] = "collection"
        ev["operationDescription"] = {"idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"},
                                      **(desc.get("options") or {})}
    elif rec.op in ("createIndexes", "dropIndexes"):
        ev["operationDescription"] = {"indexes": list(desc.get("indexes") or [])}
    elif rec.op == "modify":
        ev["operationDescription"] = dict(desc.get("options") or {})
    return ev


def data_event(rec: ChangeRecord, opts: EventOptions, images_enabled: bool,
               lookup: Callable[[ChangeRecord, Any], bytes | None]) -> dict:
    """The event of a document change. ``images_enabled``: the collection keeps pre- and
    post-images (``changeStreamPreAndPostImages``); ``lookup(rec, _id)`` reads the current
    document for ``fullDocument: updateLookup``."""
    op = rec.op
    token = ResumePoint.of(rec).token()
    ev = _head(rec, token, DATA_OPS[op], opts)
    key = rec.document_key
    if op in ("i", "r"):
        ev["fullDocument"] = _doc_value(rec.doc, opts.decode)
    elif op == "u" and opts.full_document != "default":
        if opts.full_document == "updateLookup":
            ev["fullDocument"] = _doc_value(lookup(rec, key["_id"]) if key else None, opts.decode)
        elif images_enabled and rec.doc is not None:
            ev["fullDocument"] = _doc_value(rec.doc, opts.decode)
        elif opts.full_document == "required":
            raise MongoError(NoMatchingDocument, "Change stream was configured to require a post-image for all "
                             "update, delete and replace events, but the post-image was not found for event: "
                             f"{_brief(ev, rec)}")
        else:
            ev["fullDocument"] = None
    ev["ns"] = ns_of(rec)
    ev["documentKey"] = key
    if op == "u":
        ev["updateDescription"] = _update_description(rec, opts)
    if opts.before_change != "off" and op in ("u", "r", "d"):
        if images_enabled and rec.before is not None:
            ev["fullDocumentBeforeChange"] = _doc_value(rec.before, opts.decode)
        elif opts.before_change == "required":
            raise MongoError(NoMatchingDocument, "Change stream was configured to require a pre-image for all "
                             "update, delete and replace events, but the pre-image was not found for event: "
                             f"{_brief(ev, rec)}")
        else:
            ev["fullDocumentBeforeChange"] = None
    return ev


def _brief(ev: dict, rec: ChangeRecord) -> str:
    return (f"{{_id: {ev['_id']}, operationType: \"{ev['operationType']}\", clusterTime: {rec.cluster_time}, "
            f"ns: {{db: \"{rec.db}\", coll: \"{rec.coll}\"}}, documentKey: {rec.document_key}}}")


def _update_description(rec: ChangeRecord, opts: EventOptions) -> dict:
    d = rec.desc or {}
    out = {"updatedFields": d.get("updatedFields", {}), "removedFields": list(d.get("removedFields", [])),
           "truncatedArrays": list(d.get("truncatedArrays", []))}
    if opts.expanded:
        amb = disambiguated_paths(out, rec)
        if amb:
            out["disambiguatedPaths"] = amb
    return out


# -- disambiguatedPaths -----------------------------------------------------------------------

def disambiguated_paths(desc: dict, rec: ChangeRecord) -> dict:
    """``{path: [components]}`` for the paths of an update description that are ambiguous:
    a component holding a dot, or a numeric field name below the top level. Components
    are resolved against the after-image (updated fields, truncated arrays) or the
    before-image (removed fields); array indexes are given as integers."""
    after = bson.decode(rec.doc, CODEC_OPTIONS) if rec.doc else None
    before = bson.decode(rec.before, CODEC_OPTIONS) if rec.before else None
    out: dict[str, list] = {}
    paths = [(p, after) for p in desc.get("updatedFields", {})]
    paths += [(p, before) for p in desc.get("removedFields", [])]
    paths += [(t.get("field"), after) for t in desc.get("truncatedArrays", []) if isinstance(t, dict)]
    for path, doc in paths:
        if not isinstance(path, str) or doc is None:
            continue
        parts = _resolve(doc, path)
        if parts is None:
            continue
        ambiguous = any(isinstance(p, str) and ("." in p or (i > 0 and p.isdigit())) for i, p in enumerate(parts))
        if ambiguous:
            out[path] = parts
    return out


def _resolve(doc: Any, path: str) -> list | None:
    """Split ``path`` into the components it names in ``doc`` (longest field name first)."""
    parts: list = []
    cur = doc
    rest = path
    while rest:
        if isinstance(cur, dict):
            best = None
            for k in cur:
                if isinstance(k, str) and (rest == k or rest.startswith(k + ".")) and (best is None or len(k) > len(best)):
                    best = k
            if best is None:
                # removed below an existing document: the remaining components are plain fields
                return parts + rest.split(".") if parts else None
            parts.append(best)
            cur = cur[best]
            rest = rest[len(best) + 1:]
        elif isinstance(cur, list):
            head, _, tail = rest.partition(".")
            if not head.isdigit():
                return None
            parts.append(int(head))
            i = int(head)
            cur = cur[i] if i < len(cur) else None
            rest = tail
        else:
            return parts + rest.split(".")
    return parts
