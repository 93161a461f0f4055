"""Read commands: find, getMore, killCursors, count, distinct, explain."""
from __future__ import annotations

import socket
from typing import Any

from bson.int64 import Int64

import mongolake

from mongolake.engine.reader import ScanStats
from mongolake.engine.reads import id_point_keys
from mongolake.errors import ErrorCode, MongoError
from mongolake.query.collation import parse_collation

from . import bsonreply
from .args import bool_arg, check_fields, doc_arg, int_arg, str_arg, type_name
from .context import Ctx
from .cursors import DEFAULT_FIRST_BATCH
from .registry import REGISTRY, command
from .letvars import LetScope
from .sessions import lsid_key, touch_session


_FIND_FIELDS = {"filter", "projection", "sort", "hint", "skip", "limit", "batchSize", "singleBatch", "comment",
                "maxTimeMS", "readConcern", "max", "min", "returnKey", "showRecordId", "tailable", "oplogReplay",
                "noCursorTimeout", "awaitData", "allowPartialResults", "collation", "allowDiskUse", "let",
                "readOnce", "allowSpeculativeMajorityRead", "term", "ntoreturn", "includeQueryStatsMetrics"}


def check_hint(ctx: Ctx, coll: str, hint: Any, *, db: str | None = None) -> None:
    """A hint must name an existing index (by name or key pattern) or be ``{$natural: ±1}``.
    A hinted secondary index is used by the engine (a full index scan when no bounds apply)."""
    if hint is None or hint == {} or hint == "":
        return
    if not isinstance(hint, (str, dict)):
        raise MongoError(ErrorCode.FailedToParse, "hint must be a string or an object")
    if isinstance(hint, dict) and len(hint) == 1 and "$natural" in hint:
        if hint["$natural"] not in (1, -1):
            raise MongoError(ErrorCode.BadValue, "$natural hint must be 1 or -1")
        return
    c = ctx.engine.get_collection(db or ctx.db, coll)
    if c is None:
        return
    for ix in c.meta.indexes:
        if hint == ix["name"] or (isinstance(hint, dict) and list(hint.items()) == list(ix["key"].items())):
            return
    raise MongoError(ErrorCode.BadValue, "error processing query: planner returned error :: caused by :: hint "
                     "provided does not correspond to an existing index")


def _check_batch_size(batch_size: Any) -> None:
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, float))
                                   or batch_size < 0):
        raise MongoError(ErrorCode.BadValue if isinstance(batch_size, (int, float)) else ErrorCode.TypeMismatch,
                         f"batchSize must be a non-negative number, not {batch_size!r}")


def _register(ctx: Ctx, ns: str, it: Any, batch_size: int | None, no_timeout: bool, limit: int, kind: str):
    _check_batch_size(batch_size)
    cur = ctx.state.cursors.register(ns, it, ctx.conn.id, lsid=lsid_key(ctx.body.get("lsid")),
                                     no_timeout=no_timeout, limit=limit, kind=kind)
    n = DEFAULT_FIRST_BATCH if batch_size is None else int(batch_size)
    return cur, n, bool(n or batch_size is None)


def _first_reply(ctx: Ctx, cur: Any, batch: list[bytes], single_batch: bool) -> tuple[list[bytes], int]:
    if single_batch or cur.exhausted:
        ctx.state.cursors.kill(cur.id)
        return batch, 0
    return batch, cur.id


def first_batch(ctx: Ctx, ns: str, it: Any, *, batch_size: int | None, single_batch: bool = False,
                no_timeout: bool = False, limit: int = 0, kind: str = "find") -> tuple[list[bytes], int]:
    """Register a cursor over ``it`` (raw BSON docs); return its first batch and its id
    (0 when nothing is left, or for ``single_batch``)."""
    cur, n, want = _register(ctx, ns, it, batch_size, no_timeout, limit, kind)
    try:
        batch = cur.next_batch(n) if want else []
    except BaseException:
        ctx.state.cursors.kill(cur.id)
        raise
    return _first_reply(ctx, cur, batch, single_batch)


def open_cursor(ctx: Ctx, ns: str, it: Any, *, batch_size: int | None, single_batch: bool = False,
                no_timeout: bool = False, limit: int = 0, kind: str = "find") -> bytes:
    """Register a cursor over ``it`` (raw BSON docs), answer its first batch."""
    batch, cid = first_batch(ctx, ns, it, batch_size=batch_size, single_batch=single_batch, no_timeout=no_timeout,
                             limit=limit, kind=kind)
    return bsonreply.cursor_reply(batch, cid, ns, True)


async def open_cursor_offloaded(ctx: Ctx, ns: str, it: Any, *, batch_size: int | None, single_batch: bool = False,
                                no_timeout: bool = False, limit: int = 0, kind: str = "find") -> bytes:
    """:func:`open_cursor` with the first batch produced in a worker thread, so a long
    scan, sort or pipeline does not stall the event loop (other connections, driver
    heartbeats). Engine reads work on snapshots and take the engine lock where they
    touch shared state, as the background flusher's concurrent reads already require."""
    cur, n, want = _register(ctx, ns, it, batch_size, no_timeout, limit, kind)
    try:
        batch = await cur.next_batch_async(n) if want else []
    except BaseException:
        ctx.state.cursors.kill(cur.id)
        raise
    batch, cid = _first_reply(ctx, cur, batch, single_batch)
    return bsonreply.cursor_reply(batch, cid, ns, True)


def parse_find(ctx: Ctx, body: dict, name: str = "find") -> dict:
    check_fields(name, body, _FIND_FIELDS)
    coll = body[name]
    if not isinstance(coll, str) or not coll:
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid namespace specified '{ctx.db}.{coll}'")
    limit = body.get("limit")
    if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit < 0:
        raise MongoError(ErrorCode.BadValue, f"BSON field 'limit' value must be >= 0, actual value '{int(limit)}'")
    if bool_arg(name, body, "tailable"):
        raise MongoError(ErrorCode.BadValue, "error processing query: tailable cursor requested on non capped "
                         f"collection {ctx.db}.{coll}")
    if bool_arg(name, body, "awaitData"):
        raise MongoError(ErrorCode.FailedToParse, "Cannot set 'awaitData' without also setting 'tailable'")
    for opt in ("min", "max"):
        if doc_arg(name, body, opt):
            raise MongoError(ErrorCode.NotImplemented, f"find with '{opt}' is not supported by MongoLake (it needs "
                             "an index structure to bound)")
    for opt in ("returnKey", "showRecordId"):
        if bool_arg(name, body, opt):
            raise MongoError(ErrorCode.NotImplemented, f"find with '{opt}' is not supported by MongoLake")
    scope = LetScope.for_command(ctx, body.get("let"))
    out = {
        "coll": coll,
        "filter": scope.filter(doc_arg(name, body, "filter") or {}),
        "projection": scope.projection(doc_arg(name, body, "projection")),
        "sort": doc_arg(name, body, "sort"),
        "skip": int_arg(name, body, "skip"),
        "limit": int_arg(name, body, "limit"),
        "batch_size": int_arg(name, body, "batchSize", None),
        "collation": parse_collation(doc_arg(name, body, "collation")),
        "single_batch": bool_arg(name, body, "singleBatch"),
        "no_timeout": bool_arg(name, body, "noCursorTimeout"),
        "hint": body.get("hint") or None,
    }
    check_hint(ctx, coll, body.get("hint"))
    return out


@command("find", help="Query a collection; returns a cursor.")
async def find(ctx: Ctx) -> bytes:
    touch_session(ctx)
    a = parse_find(ctx, ctx.body)
    ctx.state.opcounters["query"] += 1
    it = ctx.engine.find(ctx.db, a["coll"], a["filter"], projection=a["projection"], sort=a["sort"],
                         skip=a["skip"], limit=a["limit"], collation=a["collation"], hint=a["hint"])
    single = a["single_batch"] or (a["limit"] and a["batch_size"] is not None and a["limit"] <= a["batch_size"])
    # point reads by _id are cheap: answered on the loop; anything that may scan runs in a thread
    opener = open_cursor if id_point_keys(a["filter"]) is not None else open_cursor_offloaded
    reply = opener(ctx, ctx.ns(a["coll"]), it, batch_size=a["batch_size"], single_batch=bool(single),
                   no_timeout=a["no_timeout"])
    return reply if isinstance(reply, bytes) else await reply


_GETMORE_FIELDS = {"collection", "batchSize", "maxTimeMS", "term", "lastKnownCommittedOpTime", "comment",
                   "includeQueryStatsMetrics"}


@command("getMore", help="Next batch of a cursor.")
async def get_more(ctx: Ctx) -> bytes:
    check_fields("getMore", ctx.body, _GETMORE_FIELDS)
    cid = ctx.arg
    if isinstance(cid, bool) or not isinstance(cid, int):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field 'getMore.getMore' is the wrong type '{type_name(cid)}', expected type 'long'")
    coll = str_arg("getMore", ctx.body, "collection")
    ns = ctx.ns(coll)
    batch_size = int_arg("getMore", ctx.body, "batchSize", 0)
    touch_session(ctx)
    cur = ctx.state.cursors.get(int(cid), ns)
    ctx.state.opcounters["getmore"] += 1
    getter = getattr(cur.it, "get_more", None)
    if getter is not None:      # e.g. change streams: may wait for data
        try:
            batch, extra = await getter(batch_size, ctx.body.get("maxTimeMS"))
        except BaseException:
            ctx.state.cursors.kill(cur.id)
            raise
        cid_out = cur.id
        if getattr(cur.it, "finished", False):      # e.g. after a change stream's invalidate event
            ctx.state.cursors.kill(cur.id)
            cid_out = 0
        return bsonreply.cursor_reply(batch, cid_out, ns, False, extra)
    try:
        batch = await cur.next_batch_async(batch_size)
    except BaseException:
        ctx.state.cursors.kill(cur.id)
        raise
    cid_out = cur.id
    if cur.exhausted:
        ctx.state.cursors.kill(cur.id)
        cid_out = 0
    return bsonreply.cursor_reply(batch, cid_out, ns, False)


@command("killCursors", help="Close cursors.")
async def kill_cursors(ctx: Ctx) -> dict:
    check_fields("killCursors", ctx.body, {"cursors"})
    coll = ctx.coll_name()
    ids = ctx.body.get("cursors")
    if not isinstance(ids, list):
        raise MongoError(ErrorCode.TypeMismatch, "BSON field 'killCursors.cursors' is missing or not an array")
    ns = ctx.ns(coll)
    killed, missing = [], []
    for cid in ids:
        if isinstance(cid, bool) or not isinstance(cid, int):
            raise MongoError(ErrorCode.TypeMismatch, "BSON field 'killCursors.cursors' must hold longs")
        cur = ctx.state.cursors.cursors.get(int(cid))
        if cur is not None and cur.ns == ns and ctx.state.cursors.kill(int(cid)):
            killed.append(Int64(int(cid)))
        else:
            missing.append(Int64(int(cid)))
    return {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [], "cursorsUnknown": [],
            "ok": 1.0}


def _count_args(ctx: Ctx, body: dict) -> tuple[str, dict, int, int]:
    check_fields("count", body, {"query", "limit", "skip", "hint", "collation", "fields", "readConcern",
                                 "maxTimeMS", "comment", "let"})
    coll = body["count"]
    if not isinstance(coll, str) or not coll:
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid namespace specified '{ctx.db}.{coll}'")
    scope = LetScope.for_command(ctx, body.get("let"))
    q = scope.filter(doc_arg("count", body, "query") or {})
    skip = int_arg("count", body, "skip")
    limit = body.get("limit", 0) or 0
    if isinstance(limit, bool) or not isinstance(limit, (int, float)):
        raise MongoError(ErrorCode.TypeMismatch, "BSON field 'count.limit' is the wrong type, expected a number")
    check_hint(ctx, coll, body.get("hint"))
    return coll, q, skip, abs(int(limit))


@command("count", help="Count matching documents.")
async def count(ctx: Ctx) -> dict:
    coll, q, skip, limit = _count_args(ctx, ctx.body)
    n = ctx.engine.count(ctx.db, coll, q, skip=skip, limit=limit)
    return {"n": n, "ok": 1.0}


def _distinct_args(ctx: Ctx, body: dict) -> tuple[str, str, dict]:
    check_fields("distinct", body, {"key", "query", "collation", "readConcern", "hint", "comment", "maxTimeMS"})
    coll = body["distinct"]
    if not isinstance(coll, str) or not coll:
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid namespace specified '{ctx.db}.{coll}'")
    key = str_arg("distinct", body, "key")
    if not key:
        raise MongoError(ErrorCode.BadValue, "FieldPath cannot be constructed with empty string")
    check_hint(ctx, coll, body.get("hint"))
    return coll, key, doc_arg("distinct", body, "query") or {}


@command("distinct", help="Distinct values of a field among matching documents.")
async def distinct(ctx: Ctx) -> dict:
    coll, key, q = _distinct_args(ctx, ctx.body)
    return {"values": ctx.engine.distinct(ctx.db, coll, key, q), "ok": 1.0}


def _sort_and_limit_stages(winning: dict, sort: Any, limit: int, skip: int, index_sorted: bool) -> dict:
    """A find's plan above the scan: SORT when the documents are sorted in memory
    (an index walk that provides the order has none), LIMIT/SKIP otherwise."""
    if sort and not index_sorted:
        st = {"stage": "SORT", "sortPattern": dict(sort), "memLimit": 104857600, "type": "simple",
              "inputStage": winning}
        if limit:
            st["limitAmount"] = limit + skip
        return st
    if skip:
        winning = {"stage": "SKIP", "skipAmount": skip, "inputStage": winning}
    if limit:
        winning = {"stage": "LIMIT", "limitAmount": limit, "inputStage": winning}
    return winning


_EXPLAINABLE = ("find", "count", "distinct", "aggregate", "update", "delete", "findAndModify", "findandmodify")
_VERBOSITIES = ("queryPlanner", "executionStats", "allPlansExecution")


@command("explain", help="How a find/count/distinct/aggregate/update/delete would run, with files and row groups "
                         "considered vs skipped.")
async def explain(ctx: Ctx) -> dict:
    check_fields("explain", ctx.body, {"verbosity"})
    inner = ctx.arg
    if not isinstance(inner, dict) or not inner:
        raise MongoError(ErrorCode.FailedToParse, "explain command requires a nested object")
    verbosity = ctx.body.get("verbosity", "allPlansExecution")
    if verbosity not in _VERBOSITIES:
        raise MongoError(ErrorCode.BadValue, f"Enumeration value '{verbosity}' for field 'explain.verbosity' is not "
                         "a valid value.")
    name = next(iter(inner))
    if name not in REGISTRY:
        raise MongoError(ErrorCode.CommandNotFound, f"Explain failed due to unknown command: {name}")
    if name not in _EXPLAINABLE:
        raise MongoError(ErrorCode.IllegalOperation, f"Explain is not supported for command '{name}'")
    if name == "aggregate":
        from .aggregate import explain_aggregate
        return await explain_aggregate(ctx, inner, verbosity)
    coll = inner[name]
    if not isinstance(coll, str) or not coll:
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid namespace specified '{ctx.db}.{coll}'")
    stats = ScanStats()
    eng = ctx.engine
    c = eng.get_collection(ctx.db, coll)
    n = 0
    a: dict = {}
    if name == "find":
        a = parse_find(ctx, inner, "find")
        flt = a["filter"]
        if c is not None:
            n = sum(1 for _ in eng.find(ctx.db, coll, flt, projection=a["projection"], sort=a["sort"],
                                        skip=a["skip"], limit=a["limit"], collation=a["collation"], stats=stats,
                                        hint=a["hint"]))
    elif name == "count":
        _, flt, skip, limit = _count_args(ctx, inner)
        n = eng.count(ctx.db, coll, flt, skip=skip, limit=limit, stats=stats) if c is not None else 0
    else:
        if name == "distinct":
            flt = _distinct_args(ctx, inner)[2]
        elif name in ("findAndModify", "findandmodify"):
            flt = inner.get("query") or {}
        else:
            stmts = inner.get("updates") or inner.get("deletes") or [{}]
            flt = (stmts[0].get("q") if isinstance(stmts[0], dict) else None) or {}
        if not isinstance(flt, dict):
            raise MongoError(ErrorCode.TypeMismatch, "the query of an explained command must be an object")
        if c is not None:
            n = sum(1 for _ in eng.iter_matching(c, flt, stats=stats))
    stage = "EOF" if c is None else ("IDHACK" if id_point_keys(flt) is not None else "COLLSCAN")
    examined = stats.rows_read + stats.memtable_docs
    keys_examined = 0
    winning = {"stage": stage, "filter": flt, "direction": "forward",
               "mongolake": {"pruning": "zone maps on files and row groups, Arrow pushdown, residual matcher",
                             **stats.as_dict()}}
    ix_name = getattr(stats, "index_name", None)
    if ix_name is not None and c is not None:
        ix = next((i for i in c.meta.indexes if i["name"] == ix_name), {"key": {}})
        stage = "FETCH"
        examined = stats.docs_examined
        keys_examined = stats.keys_examined
        winning = {"stage": "FETCH", "filter": flt,
                   "inputStage": {"stage": "IXSCAN", "indexName": ix_name, "keyPattern": dict(ix["key"]),
                                  "isUnique": bool(ix.get("unique")), "isSparse": bool(ix.get("sparse")),
                                  "isPartial": "partialFilterExpression" in ix,
                                  "direction": getattr(stats, "index_direction", "forward"),
                                  "indexBounds": dict(stats.index_bounds)},
                   "mongolake": {"index": "in-memory sorted secondary index, candidates re-checked by the matcher",
                                 "keysExamined": keys_examined, "docsExamined": examined,
                                 "sortedByIndex": bool(getattr(stats, "index_sorted", False))}}
    winning = _sort_and_limit_stages(winning, a.get("sort"), a.get("limit") or 0, a.get("skip") or 0,
                                     bool(getattr(stats, "index_sorted", False)))
    out: dict[str, Any] = {
        "explainVersion": "1",
        "queryPlanner": {"namespace": ctx.ns(coll), "parsedQuery": flt, "indexFilterSet": False,
                         "maxIndexedOrSolutionsReached": False, "maxIndexedAndSolutionsReached": False,
                         "maxScansToExplodeReached": False, "winningPlan": winning, "rejectedPlans": []},
    }
    if verbosity in ("executionStats", "allPlansExecution"):
        out["executionStats"] = {"executionSuccess": True, "nReturned": n, "executionTimeMillis": 0,
                                 "totalKeysExamined": keys_examined, "totalDocsExamined": examined,
                                 "executionStages": {"stage": stage, "nReturned": n, "docsExamined": examined,
                                                     "keysExamined": keys_examined}}
        if verbosity == "allPlansExecution":
            out["executionStats"]["allPlansExecution"] = []
    out.update({"command": inner,
                "serverInfo": {"host": socket.gethostname(), "port": ctx.state.options.port,
                               "version": mongolake.MONGODB_COMPAT_VERSION, "gitVersion": "mongolake"},
                "ok": 1.0})
    return out
