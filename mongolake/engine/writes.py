"""Write operations of the engine: insert, update, delete, find-and-modify.

Each call builds one :class:`ChangeBatch` under the engine lock and commits it
(WAL append + memtable apply); results carry the batch's ``seq`` so the caller
can wait for durability (``Engine.wait_durable`` / ``durable_future``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import bson
from bson.objectid import ObjectId
from bson.regex import Regex

from mongolake.errors import ErrorCode, MongoError, duplicate_key
from mongolake.query import keystring
from mongolake.query.bsonorder import CODEC_OPTIONS, MISSING

from . import softdelete
from .collection import Collection
from .indexing.kinds import index_class, special_kind
from .records import DELETE, INSERT, REPLACE, UPDATE, Change, ChangeBatch
from .txn import CURRENT

MAX_DOC_SIZE = 16 * 1024 * 1024
MAX_DEPTH = 100


@dataclass
class WriteResult:
    n: int = 0                       # inserted / matched / deleted
    modified: int = 0
    upserted: list[tuple[int, Any]] = field(default_factory=list)   # (index, _id)
    errors: list[tuple[int, MongoError]] = field(default_factory=list)
    seq: int = 0
    inserted_ids: list[Any] = field(default_factory=list)


def _depth_ok(v: Any, depth: int = 0) -> bool:
    if depth > MAX_DEPTH:
        return False
    if isinstance(v, dict):
        return all(_depth_ok(x, depth + 1) for x in v.values())
    if isinstance(v, list):
        return all(_depth_ok(x, depth + 1) for x in v)
    return True


def check_id(v: Any) -> None:
    if isinstance(v, list):
        raise MongoError(ErrorCode.BadValue, "can't use an array for _id")
    if isinstance(v, (Regex, re.Pattern)):
        raise MongoError(ErrorCode.BadValue, "can't use a regex for _id")
    if v is MISSING:
        raise MongoError(ErrorCode.BadValue, "can't use undefined for _id")
    if isinstance(v, dict):
        for k in v:
            if isinstance(k, str) and k.startswith("$"):
                raise MongoError(ErrorCode.DollarPrefixedFieldName,
                                 f"_id fields may not contain '$'-prefixed fields: {k} is not valid for storage.")


def prepare_document(doc: Any) -> tuple[dict, bytes, bytes]:
    """Validate a document for storage; give it an ``_id`` (first) if it has none.
    Returns ``(doc, raw_bson, key)``."""
    if not isinstance(doc, dict):
        raise MongoError(ErrorCode.TypeMismatch, "document to insert must be an object")
    if "_id" not in doc:
        doc = {"_id": ObjectId(), **doc}
    elif next(iter(doc)) != "_id":
        doc = {"_id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}
    check_id(doc["_id"])
    for k in doc:
        if k.startswith("$"):
            raise MongoError(ErrorCode.BadValue, f"Document can't have $ prefixed field names: {k}")
    raw = bson.encode(doc, codec_options=CODEC_OPTIONS)
    if len(raw) > MAX_DOC_SIZE:
        raise MongoError(ErrorCode.BSONObjectTooLarge,
                         f"object to insert too large. size in bytes: {len(raw)}, max size: {MAX_DOC_SIZE}")
    if len(raw) > 7 * MAX_DEPTH and not _depth_ok(doc):     # 100 levels need at least ~700 bytes
        raise MongoError(ErrorCode.Overflow, f"Document exceeds maximum nesting depth of {MAX_DEPTH}")
    return doc, raw, keystring.encode_key(doc["_id"])


class WriteOps:
    def _apply(self, c: Collection, changes: list[Change], txn: dict | None) -> int:
        """Commit ``changes`` now (one batch), or buffer them in the current transaction."""
        tx = CURRENT.get()
        if tx is None:
            return self.commit_batch(ChangeBatch(changes, txn=txn))
        for ch in changes:
            self.txns.write(tx, c, ch)
        return 0

    # -- uniqueness ----------------------------------------------------------
    def _key_exists(self, c: Collection, key: bytes) -> bool:
        return self.lookup_key(c, key) is not None

    def _check_unique(self, c: Collection, doc: dict, key: bytes, pending: dict[bytes, dict]) -> None:
        """Enforce unique secondary indexes (``_id`` is checked by key): through the
        index structures, or by a scan inside transactions (their own snapshot)."""
        from .keys import index_key_values

        for spec, check in _document_checks(c):     # e.g. 2dsphere: 16755 Can't extract geo keys
            check(spec, doc)
        if CURRENT.get() is None and self.indexes.check_unique(c, doc, key, pending):
            return

        for ix in c.meta.indexes:
            if not ix.get("unique") or ix.get("name") == "_id_":
                continue
            fields = list(ix["key"])
            values = index_key_values(doc, fields, sparse=bool(ix.get("sparse")))
            if values is None:      # a sparse index leaves this document out
                continue
            pfe = ix.get("partialFilterExpression")
            if pfe:
                from mongolake.query.filter import parse_filter
                from mongolake.query.matcher import compile_matcher
                if not compile_matcher(parse_filter(pfe))(doc):
                    continue
            flt = dict(zip(fields, values))
            if pfe:
                flt = {"$and": [flt, pfe]}
            for other_key, other in pending.items():
                if other_key != key and index_key_values(other, fields) == values:
                    raise duplicate_key(c.ns, ix["name"], dict(ix["key"]), dict(zip(fields, values)))
            for raw, d in self.iter_matching(c, flt, decode=True):
                if keystring.encode_key(d["_id"]) != key and index_key_values(d, fields) == values:
                    raise duplicate_key(c.ns, ix["name"], dict(ix["key"]), dict(zip(fields, values)))

    def _has_unique_indexes(self, c: Collection) -> bool:
        """Unique indexes, or special indexes that validate documents (both are
        enforced by :meth:`_check_unique` before a write is applied)."""
        return any(ix.get("unique") and ix.get("name") != "_id_" for ix in c.meta.indexes) or \
            bool(_document_checks(c))

    # -- insert --------------------------------------------------------------
    def insert(self, db: str, coll: str, docs: list, *, ordered: bool = True, wait: bool = True,
               txn: dict | None = None) -> WriteResult:
        res = WriteResult()
        with self.lock:
            c = self.collection_for_write(db, coll)
            unique = self._has_unique_indexes(c)
            changes: list[Change] = []
            batch_docs: dict[bytes, dict] = {}
            for i, doc in enumerate(docs):
                try:
                    doc, raw, key = prepare_document(doc)
                    if key in batch_docs or self._key_exists(c, key):
                        raise duplicate_key(c.ns, "_id_", {"_id": 1}, {"_id": doc["_id"]})
                    if unique:
                        self._check_unique(c, doc, key, batch_docs)
                except MongoError as e:
                    res.errors.append((i, e))
                    if ordered:
                        break
                    continue
                batch_docs[key] = doc
                changes.append(Change(c.uuid, INSERT, key, raw))
                res.inserted_ids.append(doc["_id"])
            res.n = len(changes)
            res.seq = self._apply(c, changes, txn)
        if wait:
            self.wait_durable(res.seq)
        return res

    # -- update --------------------------------------------------------------
    def update(self, db: str, coll: str, q: dict, u: Any, *, multi: bool = False, upsert: bool = False,
               array_filters: list | None = None, collation: dict | None = None, sort: dict | None = None,
               wait: bool = True, txn: dict | None = None) -> WriteResult:
        from mongolake.query.update import parse_update

        upd = parse_update(u, array_filters=array_filters, upsert=upsert, collation=collation, multi=multi)
        if multi and upd.kind == "replacement":
            raise MongoError(ErrorCode.FailedToParse, "multi update is not supported for replacement-style update")
        res = WriteResult()
        with self.lock:
            c = self.get_collection(db, coll)
            if c is None and not upsert:
                self.plan_only(q)
                return res
            if c is None:
                c = self.collection_for_write(db, coll)
            plan = self.plan(c, q)
            matches = self.iter_matching(c, q, decode=True, plan=plan)
            if sort and not multi:
                from mongolake.query.sort import parse_sort
                matches = parse_sort(sort, collation=collation).top_k((d for _r, d in matches), 1)
                matches = [(None, d) for d in matches]
            targets = list(matches) if multi else _first(matches)
            changes: list[Change] = []
            pending: dict[bytes, dict] = {}
            for raw, d in targets:
                res.n += 1
                ch = self._updated_change(c, plan, upd, raw, d, pending)
                if ch is not None:
                    changes.append(ch)
                    res.modified += 1
            if not targets and upsert:
                from mongolake.query.update import upsert_document

                doc = upsert_document(q, upd, array_filters=array_filters, collation=collation)
                doc, raw, key = prepare_document(doc)
                if self._key_exists(c, key):
                    raise duplicate_key(c.ns, "_id_", {"_id": 1}, {"_id": doc["_id"]})
                if self._has_unique_indexes(c):
                    self._check_unique(c, doc, key, pending)
                changes.append(Change(c.uuid, INSERT, key, raw))
                res.upserted.append((0, doc["_id"]))
            res.seq = self._apply(c, changes, txn)
        if wait:
            self.wait_durable(res.seq)
        return res

    def plan_only(self, q: Any) -> None:
        from mongolake.query.filter import parse_filter
        parse_filter(q or {})

    def _updated_change(self, c: Collection, plan, upd, raw: bytes | None, d: dict,
                        pending: dict[bytes, dict]) -> Change | None:
        pos = None
        if upd.positional and plan.expr is not None:
            from mongolake.query.matcher import match_position
            pos = match_position(plan.expr, d)[1]
        r = upd.apply(d, position=pos)
        if not r.modified:
            return None
        new = r.document
        if "_id" not in new:
            new = {"_id": d["_id"], **new}
        from mongolake.query.bsonorder import values_equal
        if not values_equal(new["_id"], d["_id"]):
            raise MongoError(ErrorCode.ImmutableField,
                             "Performing an update on the path '_id' would modify the immutable field '_id'")
        if next(iter(new)) != "_id":
            new = {"_id": new["_id"], **{k: v for k, v in new.items() if k != "_id"}}
        new_raw = bson.encode(new, codec_options=CODEC_OPTIONS)
        if len(new_raw) > MAX_DOC_SIZE:
            raise MongoError(ErrorCode.BSONObjectTooLarge, "Resulting document after update is larger than 16777216")
        key = keystring.encode_key(new["_id"])
        if self._has_unique_indexes(c):
            self._check_unique(c, new, key, pending)
        pending[key] = new
        if raw is None:
            raw = bson.encode(d, codec_options=CODEC_OPTIONS)
        op = REPLACE if upd.kind == "replacement" else UPDATE
        return Change(c.uuid, op, key, new_raw, before=raw, desc=None if op == REPLACE else r.description)

    # -- delete --------------------------------------------------------------
    def _delete_change(self, c: Collection, raw: bytes | None, d: dict, soft: bool | None) -> Change:
        """A hard delete, or a soft one (``soft``, else the collection's ``softDelete``
        option): readers see a delete either way; a soft one keeps the document."""
        key = keystring.encode_key(d["_id"])
        if soft if soft is not None else softdelete.enabled(c.meta.options):
            if raw is None:
                raw = bson.encode(d, codec_options=CODEC_OPTIONS)
            return Change(c.uuid, DELETE, key, None, before=raw, desc={"_id": d["_id"], "soft": True})
        return Change(c.uuid, DELETE, key, None, before=raw, desc={"_id": d["_id"]})

    def delete(self, db: str, coll: str, q: dict, *, limit: int = 0, collation: dict | None = None,
               wait: bool = True, txn: dict | None = None, soft: bool | None = None) -> WriteResult:
        """Delete matching documents (``limit=1``: the first). ``soft``: keep them as
        soft-deleted (restorable until purged); None follows the collection's option."""
        res = WriteResult()
        with self.lock:
            c = self.get_collection(db, coll)
            if c is None:
                self.plan_only(q)
                return res
            it = self.iter_matching(c, q, decode=True)
            targets = _first(it) if limit == 1 else list(it)
            changes = []
            for raw, d in targets:
                changes.append(self._delete_change(c, raw, d, soft))
            res.n = len(changes)
            res.seq = self._apply(c, changes, txn)
        if wait:
            self.wait_durable(res.seq)
        return res

    # -- findAndModify -------------------------------------------------------
    def find_and_modify(self, db: str, coll: str, q: dict | None, *, sort: dict | None = None,
                        update: Any = None, remove: bool = False, new: bool = False, upsert: bool = False,
                        fields: dict | None = None, array_filters: list | None = None,
                        collation: dict | None = None, wait: bool = True, txn: dict | None = None,
                        soft: bool | None = None) -> tuple[dict | None, dict]:
        """Returns ``(document_or_None, lastErrorObject)``."""
        from mongolake.query.projection import parse_projection
        from mongolake.query.sort import parse_sort
        from mongolake.query.update import parse_update, upsert_document

        q = q or {}
        upd = parse_update(update, array_filters=array_filters, upsert=upsert) if not remove else None
        proj = parse_projection(fields, filter_spec=q or {}) if fields else None
        srt = parse_sort(sort, collation=collation) if sort else None
        leo: dict[str, Any] = {"n": 0}
        out = None
        with self.lock:
            c = self.get_collection(db, coll)
            if c is None and not upsert:
                self.plan_only(q)
                return None, leo
            if c is None:
                c = self.collection_for_write(db, coll)
            plan = self.plan(c, q)
            it = self.iter_matching(c, q, decode=True, plan=plan)
            if srt is not None:
                top = srt.top_k((d for _r, d in it), 1)
                target = (None, top[0]) if top else None
            else:
                first = _first(it)
                target = first[0] if first else None
            changes: list[Change] = []
            if target is not None:
                raw, d = target
                leo["n"] = 1
                if remove:
                    changes.append(self._delete_change(c, raw, d, soft))
                    out = d
                else:
                    ch = self._updated_change(c, plan, upd, raw, d, {})
                    leo["updatedExisting"] = True
                    if ch is not None:
                        changes.append(ch)
                        out = bson.decode(ch.doc, CODEC_OPTIONS) if new else d
                    else:
                        out = d
            elif upsert and not remove:
                doc = upsert_document(q, upd)
                doc, raw, key = prepare_document(doc)
                if self._key_exists(c, key):
                    raise duplicate_key(c.ns, "_id_", {"_id": 1}, {"_id": doc["_id"]})
                if self._has_unique_indexes(c):
                    self._check_unique(c, doc, key, {})
                changes.append(Change(c.uuid, INSERT, key, raw))
                leo.update({"n": 1, "updatedExisting": False, "upserted": doc["_id"]})
                out = doc if new else None
            elif not remove:
                leo["updatedExisting"] = False
            seq = self._apply(c, changes, txn)
        if wait:
            self.wait_durable(seq)
        leo["_seq"] = seq
        if out is not None and proj is not None:
            out = proj.apply(out)
        return out, leo


def _document_checks(c: Collection) -> list:
    """``(spec, check)`` for the collection's special indexes whose kind checks
    every written document (``check_document(spec, doc)`` raising MongoError),
    as MongoDB does while generating index keys (2dsphere: 16755)."""
    out = []
    for spec in c.meta.indexes:
        kind = special_kind(spec)
        if kind is not None:
            check = getattr(index_class(kind), "check_document", None)
            if check is not None:
                out.append((spec, check))
    return out


def _first(it) -> list:
    for x in it:
        return [x]
    return []
