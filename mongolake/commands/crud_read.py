"""Read commands: find, getMore, killCursors, count, distinct, explain."""
from __future__ import annotations

from typing import Any

from bson.int64 import Int64

from mongolake.engine.reader import ScanStats
from mongolake.engine.reads import id_point_keys
from mongolake.errors import ErrorCode, MongoError

from . import bsonreply
from .context import Ctx
from .cursors import DEFAULT_FIRST_BATCH
from .registry import REGISTRY, command
from .sessions import lsid_key, touch_session


def _int_arg(ctx: Ctx, body: dict, name: str, default: int = 0, *, minimum: int = 0) -> int:
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field '{ctx.name}.{name}' is the wrong type '{type(v).__name__}', expected types "
                         "'[long, int, decimal, double]'")
    if v != int(v):
        raise MongoError(ErrorCode.BadValue, f"{name} must be an integer")
    v = int(v)
    if v < minimum:
        raise MongoError(ErrorCode.BadValue, f"{name} value must be non-negative, but received: {v}"
                         if minimum == 0 else f"{name} must be >= {minimum}")
    return v


def _doc_arg(ctx: Ctx, body: dict, name: str) -> dict | None:
    v = body.get(name)
    if v is None:
        return None
    if not isinstance(v, dict):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field '{ctx.name}.{name}' is the wrong type '{type(v).__name__}', expected type 'object'")
    return v


def open_cursor(ctx: Ctx, ns: str, it: Any, *, batch_size: int | None, single_batch: bool = False,
                no_timeout: bool = False, limit: int = 0, kind: str = "find") -> bytes:
    """Register a cursor over ``it`` (raw BSON docs), answer its first batch."""
    cur = ctx.state.cursors.register(ns, it, ctx.conn.id, lsid=lsid_key(ctx.body.get("lsid")),
                                     no_timeout=no_timeout, limit=limit, kind=kind)
    n = DEFAULT_FIRST_BATCH if batch_size is None else batch_size
    batch = cur.next_batch(n) if n or batch_size is None else []
    if single_batch or cur.exhausted:
        ctx.state.cursors.kill(cur.id)
        cid = 0
    else:
        cid = cur.id
    return bsonreply.cursor_reply(batch, cid, ns, True)


def parse_find(ctx: Ctx, body: dict) -> dict:
    coll = body[ctx.name] if ctx.name in ("find",) else body.get("find")
    if not isinstance(coll, str) or not coll:
        raise MongoError(ErrorCode.InvalidNamespace, "Invalid namespace specified for find")
    limit = body.get("limit", 0)
    if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit < 0:
        raise MongoError(ErrorCode.BadValue, f"LIMIT must be non-negative, but received: {int(limit)}"
                         if False else f"limit value must be non-negative, but received: {int(limit)}")
    if body.get("tailable"):
        raise MongoError(ErrorCode.BadValue, "error processing query: tailable cursor requested on non capped "
                         f"collection {ctx.db}.{coll}")
    out = {
        "coll": coll,
        "filter": _doc_arg(ctx, body, "filter") or {},
        "projection": _doc_arg(ctx, body, "projection"),
        "sort": _doc_arg(ctx, body, "sort"),
        "skip": _int_arg(ctx, body, "skip"),
        "limit": _int_arg(ctx, body, "limit"),
        "batch_size": _int_arg(ctx, body, "batchSize", None) if "batchSize" in body else None,
        "collation": _doc_arg(ctx, body, "collation"),
        "single_batch": bool(body.get("singleBatch", False)),
        "no_timeout": bool(body.get("noCursorTimeout", False)),
    }
    return out


@command("find", help="Query a collection; returns a cursor.")
async def find(ctx: Ctx) -> bytes:
    touch_session(ctx)
    a = parse_find(ctx, ctx.body)
    ctx.state.opcounters["query"] += 1
    it = ctx.engine.find(ctx.db, a["coll"], a["filter"], projection=a["projection"], sort=a["sort"],
                         skip=a["skip"], limit=a["limit"], collation=a["collation"])
    single = a["single_batch"] or (a["limit"] and a["batch_size"] is not None and a["limit"] <= a["batch_size"])
    return open_cursor(ctx, ctx.ns(a["coll"]), it, batch_size=a["batch_size"], single_batch=bool(single),
                       no_timeout=a["no_timeout"])


@command("getMore", help="Next batch of a cursor.")
async def get_more(ctx: Ctx) -> bytes:
    cid = ctx.arg
    if isinstance(cid, bool) or not isinstance(cid, int):
        raise MongoError(ErrorCode.TypeMismatch, "Field 'getMore' must be of type long in: getMore")
    coll = ctx.body.get("collection")
    if not isinstance(coll, str):
        raise MongoError(ErrorCode.TypeMismatch, "Field 'collection' must be of type string in: getMore")
    ns = ctx.ns(coll)
    cur = ctx.state.cursors.get(int(cid), ns)
    batch_size = _int_arg(ctx, ctx.body, "batchSize", 0)
    ctx.state.opcounters["getmore"] += 1
    getter = getattr(cur.it, "get_more", None)
    if getter is not None:      # e.g. change streams: may wait for data
        batch, extra = await getter(batch_size, ctx.body.get("maxTimeMS"))
        return bsonreply.cursor_reply(batch, cur.id, ns, False, extra)
    batch = cur.next_batch(batch_size)
    cid_out = cur.id
    if cur.exhausted:
        ctx.state.cursors.kill(cur.id)
        cid_out = 0
    return bsonreply.cursor_reply(batch, cid_out, ns, False)


@command("killCursors", help="Close cursors.")
async def kill_cursors(ctx: Ctx) -> dict:
    ids = ctx.body.get("cursors")
    if not isinstance(ids, list):
        raise MongoError(ErrorCode.TypeMismatch, "killCursors requires a 'cursors' array")
    killed, missing = [], []
    for cid in ids:
        (killed if ctx.state.cursors.kill(int(cid)) else missing).append(Int64(int(cid)))
    return {"cursorsKilled": killed, "cursorsNotFound": missing, "cursorsAlive": [], "cursorsUnknown": [],
            "ok": 1.0}


@command("count", help="Count matching documents.")
async def count(ctx: Ctx) -> dict:
    coll = ctx.coll_name()
    q = _doc_arg(ctx, ctx.body, "query") or {}
    skip = _int_arg(ctx, ctx.body, "skip")
    limit = ctx.body.get("limit", 0) or 0
    limit = abs(int(limit)) if isinstance(limit, (int, float)) else 0
    ctx.state.opcounters["command"] += 0
    n = ctx.engine.count(ctx.db, coll, q, skip=skip, limit=limit)
    return {"n": n, "ok": 1.0}


@command("distinct", help="Distinct values of a field among matching documents.")
async def distinct(ctx: Ctx) -> dict:
    coll = ctx.coll_name()
    key = ctx.body.get("key")
    if not isinstance(key, str):
        raise MongoError(ErrorCode.TypeMismatch, "BSON field 'distinct.key' is missing or not a string")
    if not key:
        raise MongoError(ErrorCode.BadValue, "FieldPath cannot be constructed with empty string")
    q = _doc_arg(ctx, ctx.body, "query") or {}
    return {"values": ctx.engine.distinct(ctx.db, coll, key, q), "ok": 1.0}


@command("explain", help="How a find/count/distinct/aggregate/update/delete would run, with files and row groups "
                         "considered vs skipped.")
async def explain(ctx: Ctx) -> dict:
    inner = ctx.arg
    if not isinstance(inner, dict) or not inner:
        raise MongoError(ErrorCode.FailedToParse, "explain command requires a nested object")
    verbosity = ctx.body.get("verbosity", "allPlansExecution")
    name = next(iter(inner))
    if name not in REGISTRY:
        raise MongoError(ErrorCode.CommandNotFound, f"no such command: '{name}'")
    if name not in ("find", "count", "distinct", "aggregate", "update", "delete", "findAndModify"):
        raise MongoError(ErrorCode.IllegalOperation, f"Explain is not supported for command '{name}'")
    coll = inner[name]
    if name == "aggregate":
        from .aggregate import explain_aggregate
        return await explain_aggregate(ctx, inner, verbosity)
    if name == "find":
        flt = inner.get("filter") or {}
    elif name in ("count", "distinct"):
        flt = inner.get("query") or {}
    elif name == "findAndModify":
        flt = inner.get("query") or {}
    else:
        stmts = inner.get("updates") or inner.get("deletes") or [{}]
        flt = stmts[0].get("q") or {}
    stats = ScanStats()
    c = ctx.engine.get_collection(ctx.db, coll) if isinstance(coll, str) else None
    n = 0
    if c is not None:
        for _ in ctx.engine.iter_matching(c, flt, stats=stats):
            n += 1
    stage = "IDHACK" if id_point_keys(flt) is not None else ("EOF" if c is None else "COLLSCAN")
    winning = {"stage": stage, "filter": flt, "direction": "forward",
               "mongolake": {"pruning": "zone maps on files and row groups, Arrow pushdown, residual matcher",
                             **stats.as_dict()}}
    out: dict[str, Any] = {
        "explainVersion": "1",
        "queryPlanner": {"namespace": ctx.ns(coll) if isinstance(coll, str) else ctx.db, "parsedQuery": flt,
                         "indexFilterSet": False, "winningPlan": winning, "rejectedPlans": []},
        "command": inner,
        "serverInfo": {"host": ctx.state.options.host, "port": ctx.state.options.port, "version": "8.0.4",
                       "gitVersion": "mongolake"},
        "ok": 1.0,
    }
    if verbosity in ("executionStats", "allPlansExecution"):
        out["executionStats"] = {"executionSuccess": True, "nReturned": n, "executionTimeMillis": 0,
                                 "totalKeysExamined": 0, "totalDocsExamined": stats.rows_read + stats.memtable_docs,
                                 "executionStages": {"stage": stage, "nReturned": n,
                                                     "docsExamined": stats.rows_read + stats.memtable_docs}}
    return out
