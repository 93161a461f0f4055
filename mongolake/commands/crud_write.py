"""Write commands: insert, update, delete, findAndModify (with retryable-write replay)."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from mongolake.errors import ErrorCode, MongoError

from .context import Ctx
from .registry import command
from .sessions import lsid_key, touch_session

MAX_WRITE_BATCH = 100_000


async def retryable(ctx: Ctx, run: Callable[[], Awaitable[dict]]) -> dict:
    """Run a write once per (lsid, txnNumber): a retry gets the first reply back."""
    key = touch_session(ctx)
    txn = ctx.body.get("txnNumber")
    if key is None or txn is None:
        return await run()
    prev = ctx.state.retry_results.get(key)
    if prev is not None:
        if prev[0] == txn:
            return dict(prev[1])
        if prev[0] > txn:
            raise MongoError(ErrorCode.TransactionTooOld,
                             f"Retryable write with txnNumber {txn} is prohibited on session because a newer "
                             f"retryable write with txnNumber {prev[0]} has already started on this session.")
    reply = await run()
    if reply.get("ok") and not reply.get("writeErrors"):
        ctx.state.retry_results[key] = (txn, dict(reply))
    return reply


def _list_arg(ctx: Ctx, field: str) -> list:
    v = ctx.body.get(field)
    if v is None:
        raise MongoError(ErrorCode.FailedToParse, f"BSON field '{ctx.name}.{field}' is missing but a required field")
    if not isinstance(v, list):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field '{ctx.name}.{field}' is the wrong type '{type(v).__name__}', expected type 'array'")
    if len(v) > MAX_WRITE_BATCH:
        raise MongoError(ErrorCode.InvalidLength, f"Write batch sizes must be between 1 and {MAX_WRITE_BATCH}. "
                         f"Got {len(v)} operations.")
    return v


def _ordered(ctx: Ctx) -> bool:
    v = ctx.body.get("ordered", True)
    return bool(v)


def _write_reply(n: int, errors: list[tuple[int, MongoError]], **extra: Any) -> dict:
    reply: dict[str, Any] = {"n": n}
    reply.update(extra)
    if errors:
        reply["writeErrors"] = [e.to_write_error(i) for i, e in errors]
    reply["ok"] = 1.0
    return reply


@command("insert", help="Insert documents.", write=True)
async def insert(ctx: Ctx) -> dict:
    coll = ctx.coll_name()
    docs = _list_arg(ctx, "documents")
    ordered = _ordered(ctx)

    async def run() -> dict:
        res = ctx.engine.insert(ctx.db, coll, docs, ordered=ordered, wait=False)
        ctx.state.opcounters["insert"] += res.n
        await ctx.durable(res.seq)
        return _write_reply(res.n, res.errors)
    return await retryable(ctx, run)


def _statement(ctx: Ctx, st: Any, i: int) -> dict:
    if not isinstance(st, dict):
        raise MongoError(ErrorCode.TypeMismatch, f"{ctx.name} statement {i} must be an object")
    return st


@command("update", help="Update documents (operators, replacement or pipeline; upsert; arrayFilters).", write=True)
async def update(ctx: Ctx) -> dict:
    coll = ctx.coll_name()
    stmts = _list_arg(ctx, "updates")
    ordered = _ordered(ctx)

    async def run() -> dict:
        n = modified = 0
        upserted = []
        errors: list[tuple[int, MongoError]] = []
        last_seq = 0
        for i, st in enumerate(stmts):
            try:
                st = _statement(ctx, st, i)
                if "q" not in st or "u" not in st:
                    raise MongoError(ErrorCode.FailedToParse, "update statement requires 'q' and 'u'")
                res = ctx.engine.update(ctx.db, coll, st["q"], st["u"], multi=bool(st.get("multi", False)),
                                        upsert=bool(st.get("upsert", False)), array_filters=st.get("arrayFilters"),
                                        collation=st.get("collation"), sort=st.get("sort"), wait=False)
            except MongoError as e:
                errors.append((i, e))
                if ordered:
                    break
                continue
            ctx.state.opcounters["update"] += 1
            last_seq = max(last_seq, res.seq)
            if res.upserted:
                upserted.append({"index": i, "_id": res.upserted[0][1]})
                n += 1
            else:
                n += res.n
                modified += res.modified
        await ctx.durable(last_seq)
        extra: dict[str, Any] = {"nModified": modified}
        if upserted:
            extra["upserted"] = upserted
        return _write_reply(n, errors, **extra)
    return await retryable(ctx, run)


@command("delete", help="Delete documents (limit 0 = all matching, 1 = one).", write=True)
async def delete(ctx: Ctx) -> dict:
    coll = ctx.coll_name()
    stmts = _list_arg(ctx, "deletes")
    ordered = _ordered(ctx)

    async def run() -> dict:
        n = 0
        errors: list[tuple[int, MongoError]] = []
        last_seq = 0
        for i, st in enumerate(stmts):
            try:
                st = _statement(ctx, st, i)
                if "q" not in st or "limit" not in st:
                    raise MongoError(ErrorCode.FailedToParse, "delete statement requires 'q' and 'limit'")
                limit = st["limit"]
                if limit not in (0, 1):
                    raise MongoError(ErrorCode.FailedToParse,
                                     f"The limit field in delete objects must be 0 or 1. Got {limit}")
                res = ctx.engine.delete(ctx.db, coll, st["q"], limit=int(limit), collation=st.get("collation"),
                                        wait=False)
            except MongoError as e:
                errors.append((i, e))
                if ordered:
                    break
                continue
            ctx.state.opcounters["delete"] += 1
            n += res.n
            last_seq = max(last_seq, res.seq)
        await ctx.durable(last_seq)
        return _write_reply(n, errors)
    return await retryable(ctx, run)


@command("findAndModify", "findandmodify", help="Atomically find one document and update or remove it.",
         write=True)
async def find_and_modify(ctx: Ctx) -> dict:
    coll = ctx.coll_name()
    b = ctx.body
    remove = bool(b.get("remove", False))
    upd = b.get("update")
    if remove and upd is not None:
        raise MongoError(ErrorCode.FailedToParse, "Cannot specify both an update and remove=true")
    if not remove and upd is None:
        raise MongoError(ErrorCode.FailedToParse, "Either an update or remove=true must be specified")
    if remove and b.get("upsert"):
        raise MongoError(ErrorCode.FailedToParse, "Cannot specify both upsert=true and remove=true")
    if remove and b.get("new"):
        raise MongoError(ErrorCode.FailedToParse,
                         "Cannot specify both new=true and remove=true; 'remove' always returns the deleted document")
    q = b.get("query") or {}
    if not isinstance(q, dict):
        raise MongoError(ErrorCode.TypeMismatch, "query must be an object")

    async def run() -> dict:
        doc, leo = ctx.engine.find_and_modify(
            ctx.db, coll, q, sort=b.get("sort") or None, update=upd, remove=remove, new=bool(b.get("new", False)),
            upsert=bool(b.get("upsert", False)), fields=b.get("fields") or None,
            array_filters=b.get("arrayFilters"), collation=b.get("collation"), wait=False)
        seq = leo.pop("_seq", 0)
        ctx.state.opcounters["delete" if remove else "update"] += 1
        await ctx.durable(seq)
        return {"lastErrorObject": leo, "value": doc, "ok": 1.0}
    return await retryable(ctx, run)
