"""The client-level ``bulkWrite`` command of MongoDB 8.0 (``MongoClient.bulk_write``).

``{bulkWrite: 1, ops: [...], nsInfo: [{ns: "db.coll"}, ...], ordered, errorsOnly,
let, cursor: {batchSize}}`` on the admin database. Each op names its namespace by
index into ``nsInfo``:

* ``{insert: i, document}``
* ``{update: i, filter, updateMods, multi, upsert, arrayFilters, collation, hint, sort, constants}``
* ``{delete: i, filter, multi, collation, hint}``

The reply holds a cursor over one result per op (only the errors with
``errorsOnly``) — ``{ok: 1, idx, n[, nModified, upserted: {_id}]}`` or
``{ok: 0, idx, code, codeName, errmsg, ...}`` — and the totals nErrors, nInserted,
nMatched, nModified, nUpserted, nDeleted. Ordered stops at the first error.
"""
from __future__ import annotations

from typing import Any

from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument

from mongolake.engine.catalog import validate_coll_name, validate_db_name
from mongolake.errors import ErrorCode, MongoError

from . import bsonreply
from .args import bool_arg, check_fields, check_sub_fields, doc_arg, type_name
from .context import Ctx
from .crud_read import first_batch
from .crud_write import MAX_WRITE_BATCH, retryable, run_delete, run_update, statement_options
from .letvars import LetScope
from .registry import command

RESULT_NS = "admin.$cmd.bulkWrite"
_FIELDS = {"ops", "nsInfo", "ordered", "errorsOnly", "bypassDocumentValidation", "let", "cursor"}
_INSERT = {"insert", "document"}
_UPDATE = {"update", "filter", "updateMods", "multi", "upsert", "arrayFilters", "collation", "hint", "sort",
           "constants"}
_DELETE = {"delete", "filter", "multi", "collation", "hint"}


def _array(body: dict, name: str) -> list:
    v = body.get(name)
    if v is None:
        raise MongoError(ErrorCode.FailedToParse, f"BSON field 'bulkWrite.{name}' is missing but a required field")
    if not isinstance(v, list):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field 'bulkWrite.{name}' is the wrong type '{type_name(v)}', expected type 'array'")
    return v


def _namespaces(ns_info: list) -> list[tuple[str, str]]:
    out = []
    for i, entry in enumerate(ns_info):
        if not isinstance(entry, dict) or not isinstance(entry.get("ns"), str):
            raise MongoError(ErrorCode.TypeMismatch, f"BSON field 'bulkWrite.nsInfo.{i}.ns' must be a string")
        check_sub_fields("bulkWrite.nsInfo", entry, {"ns", "collectionUUID", "encryptionInformation"})
        db, dot, coll = entry["ns"].partition(".")
        if not dot or not db or not coll:
            raise MongoError(ErrorCode.InvalidNamespace, f"Invalid namespace specified '{entry['ns']}'")
        validate_db_name(db)
        validate_coll_name(db, coll, allow_system=coll.startswith("system.") and db in ("admin", "config"))
        out.append((db, coll))
    return out


def _op(op: Any, i: int, namespaces: list[tuple[str, str]]) -> dict:
    """Parse one op up front: like mongod, a malformed op fails the whole command."""
    if not isinstance(op, dict) or not op:
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field 'bulkWrite.ops.{i}' must be an object")
    kind = next(iter(op))
    allowed = {"insert": _INSERT, "update": _UPDATE, "delete": _DELETE}.get(kind)
    if allowed is None:
        raise MongoError(ErrorCode.FailedToParse, f"Unrecognized bulkWrite operation: {kind}")
    where = f"bulkWrite.ops.{kind}"
    check_sub_fields(where, op, allowed)
    idx = op[kind]
    if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < len(namespaces):
        raise MongoError(ErrorCode.BadValue, f"BulkWrite ops entry {i} has an invalid nsInfo index.")
    db, coll = namespaces[idx]
    out: dict[str, Any] = {"kind": kind, "db": db, "coll": coll}
    if kind == "insert":
        if not isinstance(op.get("document"), dict):
            raise MongoError(ErrorCode.TypeMismatch, f"BSON field '{where}.document' is missing or not an object")
        out["document"] = op["document"]
        return out
    if not isinstance(op.get("filter"), dict):
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field '{where}.filter' is missing or not an object")
    out.update(q=op["filter"], multi=bool_arg(where, op, "multi"))
    opts = statement_options(where, op)
    if kind == "update":
        if not isinstance(op.get("updateMods"), (dict, list)):
            raise MongoError(ErrorCode.FailedToParse, f"BSON field '{where}.updateMods' must be an object or an "
                             "array")
        out.update(u=op["updateMods"], upsert=bool_arg(where, op, "upsert"), constants=doc_arg(where, op, "constants"),
                   **opts)
    else:
        out.update(collation=opts["collation"], hint=opts["hint"])
    return out


def _error_entry(i: int, e: MongoError, kind: str) -> dict:
    entry: dict[str, Any] = {"ok": 0.0, "idx": i, "code": e.code, "codeName": e.code_name, "errmsg": e.message}
    entry.update(e.extra)
    entry["n"] = 0
    if kind == "update":
        entry["nModified"] = 0
    return entry


@command("bulkWrite", help="Client-level bulk write across namespaces (MongoDB 8.0).", admin_only=True,
         write=True)
async def bulk_write(ctx: Ctx) -> dict:
    body = ctx.body
    check_fields("bulkWrite", body, _FIELDS)
    ops = _array(body, "ops")
    if not ops or len(ops) > MAX_WRITE_BATCH:
        raise MongoError(ErrorCode.InvalidLength, f"Write batch sizes must be between 1 and {MAX_WRITE_BATCH}. "
                         f"Got {len(ops)} operations.")
    namespaces = _namespaces(_array(body, "nsInfo"))
    parsed = [_op(op, i, namespaces) for i, op in enumerate(ops)]
    ordered = bool_arg("bulkWrite", body, "ordered", True)
    errors_only = bool_arg("bulkWrite", body, "errorsOnly", False)
    cursor_opts = doc_arg("bulkWrite", body, "cursor") or {}
    batch_size = cursor_opts.get("batchSize")
    scope = LetScope.for_command(ctx, body.get("let"))

    async def run() -> dict:
        totals = dict.fromkeys(("nErrors", "nInserted", "nMatched", "nModified", "nUpserted", "nDeleted"), 0)
        results: list[dict] = []
        last_seq = 0
        for i, op in enumerate(parsed):
            kind = op.pop("kind")
            db, coll = op.pop("db"), op.pop("coll")
            try:
                entry: dict[str, Any] = {"ok": 1.0, "idx": i}
                if kind == "insert":
                    res = ctx.engine.insert(db, coll, [op["document"]], ordered=True, wait=False)
                    if res.errors:
                        raise res.errors[0][1]
                    ctx.state.opcounters["insert"] += 1
                    entry["n"] = 1
                    totals["nInserted"] += 1
                elif kind == "update":
                    res = run_update(ctx, db, coll, scope=scope, **op)
                    if res.upserted:
                        entry.update(n=1, nModified=0, upserted={"_id": res.upserted[0][1]})
                        totals["nUpserted"] += 1
                    else:
                        entry.update(n=res.n, nModified=res.modified)
                        totals["nMatched"] += res.n
                        totals["nModified"] += res.modified
                else:
                    res = run_delete(ctx, db, coll, scope=scope, **op)
                    entry["n"] = res.n
                    totals["nDeleted"] += res.n
                last_seq = max(last_seq, res.seq)
            except MongoError as e:
                totals["nErrors"] += 1
                results.append(_error_entry(i, e, kind))
                if ordered:
                    break
                continue
            if not errors_only:
                results.append(entry)
        await ctx.durable(last_seq)
        raw = (bsonreply.encode(r) for r in results)
        batch, cid = first_batch(ctx, RESULT_NS, raw, batch_size=batch_size, kind="bulkWrite")
        cursor = {"id": Int64(cid), "firstBatch": [RawBSONDocument(b) for b in batch], "ns": RESULT_NS}
        return {"cursor": cursor, **totals, "ok": 1.0}
    return await retryable(ctx, run)
