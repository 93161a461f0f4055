"""Write commands: insert, update, delete, findAndModify (with retryable-write replay).

Each statement is one engine call (one atomic batch in the WAL); the reply waits
until the last statement's batch is durable (see ``Ctx.durable``). The
statement runners (:func:`run_update`, :func:`run_delete`) are shared with the
client-level ``bulkWrite`` command.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from mongolake.engine.txn import CURRENT
from mongolake.engine.writes import WriteResult
from mongolake.errors import ErrorCode, MongoError
from mongolake.query.collation import parse_collation

from . import softdelete, transactions  # noqa: F401  (softdelete registers its commands)
from .args import bool_arg, check_fields, check_sub_fields, doc_arg, type_name
from .context import Ctx
from .crud_read import check_hint
from .letvars import LetScope
from .registry import command
from .sessions import run_recorded, touch_session

MAX_WRITE_BATCH = 100_000


# -- retryable writes ----------------------------------------------------------
async def retryable(ctx: Ctx, run: Callable[[], Awaitable[dict]]) -> dict:
    """Run a write once per (lsid, txnNumber): a retry gets the first reply back.

    With ``lsid`` + ``txnNumber`` (outside a transaction) the command's statements
    and the session's record (``config.transactions``: txnNumber and the reply) are
    committed as one WAL batch (:func:`.sessions.run_recorded`), so the record
    is durable exactly when the write is and survives restarts. In memory, each
    session's newest record is a future: a retry that arrives while the first
    attempt still waits for its fsync waits for that same reply instead of writing
    twice. A first attempt that failed as a whole (an exception, not writeErrors)
    wrote nothing and is forgotten, so its retry runs. An older txnNumber than the
    session's newest is refused with TransactionTooOld (225). Inside a
    multi-document transaction nothing is recorded: the commit is what counts."""
    if CURRENT.get() is not None:
        return await run()
    key = touch_session(ctx)
    txn = ctx.body.get("txnNumber")
    if key is None or txn is None:
        return await run()
    if isinstance(txn, bool) or not isinstance(txn, int):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field 'txnNumber' is the wrong type '{type_name(txn)}', expected type 'long'")
    if txn < 0:
        raise MongoError(ErrorCode.BadValue, f"TxnNumber cannot be negative, got {txn}")
    transactions.ensure_started(ctx.state)
    records = ctx.state.retry_results
    prev = records.get(key)
    if prev is not None:
        prev_txn, fut = prev
        if prev_txn == txn:
            reply, seq = await asyncio.shield(fut)
            await ctx.durable(seq)
            return dict(reply)
        if prev_txn > txn:
            raise MongoError(ErrorCode.TransactionTooOld,
                             f"Retryable write with txnNumber {txn} is prohibited on session because a newer "
                             f"retryable write with txnNumber {prev_txn} has already started on this session.")
    cur = transactions.registry(ctx.state).txns.get(key)
    if cur is not None and cur.number >= txn:
        if cur.number > txn:
            raise MongoError(ErrorCode.TransactionTooOld,
                             f"Retryable write with txnNumber {txn} is prohibited on session because a newer "
                             f"transaction with txnNumber {cur.number} has already started on this session.")
        raise MongoError(ErrorCode.ConflictingOperationInProgress,
                         f"txnNumber {txn} is a multi-document transaction on this session: its commands need "
                         "autocommit: false")
    if cur is not None:                       # a newer number ends the session's open transaction
        transactions.end_transaction(ctx.state, cur, abort=True)
    fut: asyncio.Future = asyncio.get_running_loop().create_future()
    records[key] = (txn, fut)
    try:
        reply, seq = run_recorded(ctx, run)
    except BaseException as e:
        if records.get(key) == (txn, fut):
            del records[key]
        if isinstance(e, Exception):
            fut.set_exception(e)
            fut.exception()          # retrieved: no "never retrieved" warning when nobody waits
        else:
            fut.cancel()
        raise
    fut.set_result((dict(reply), seq))        # committed: a retry from now on gets this reply
    await ctx.durable(seq)
    return reply


# -- argument helpers ----------------------------------------------------------
def _list_arg(ctx: Ctx, field: str) -> list:
    v = ctx.body.get(field)
    if v is None:
        raise MongoError(ErrorCode.FailedToParse, f"BSON field '{ctx.name}.{field}' is missing but a required field")
    if not isinstance(v, list):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field '{ctx.name}.{field}' is the wrong type '{type_name(v)}', expected type 'array'")
    if not v or len(v) > MAX_WRITE_BATCH:
        raise MongoError(ErrorCode.InvalidLength, f"Write batch sizes must be between 1 and {MAX_WRITE_BATCH}. "
                         f"Got {len(v)} operations.")
    return v


def _ordered(ctx: Ctx) -> bool:
    """The batch's ``ordered``; inside a transaction a batch always stops at its first
    error (the error aborts the transaction), as in mongod."""
    ordered = bool_arg(ctx.name, ctx.body, "ordered", True)
    return ordered or CURRENT.get() is not None


def _write_reply(n: int, errors: list[tuple[int, MongoError]], **extra: Any) -> dict:
    reply: dict[str, Any] = {"n": n}
    reply.update(extra)
    if errors:
        reply["writeErrors"] = [e.to_write_error(i) for i, e in errors]
    reply["ok"] = 1.0
    return reply


def _typed(where: str, v: Any, types: tuple, expected: str) -> Any:
    if v is not None and (not isinstance(v, types) or isinstance(v, bool) and bool not in types):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field '{where}' is the wrong type '{type_name(v)}', expected type '{expected}'")
    return v


def statement_options(where: str, st: dict) -> dict:
    """Type-check the options update/delete statements (and bulkWrite ops) share. The
    collation is handed to the engine parsed (the query layer's sort and update take
    :class:`~mongolake.query.collation.Collation` objects)."""
    return {
        "array_filters": _typed(f"{where}.arrayFilters", st.get("arrayFilters"), (list,), "array"),
        "collation": parse_collation(_typed(f"{where}.collation", st.get("collation"), (dict,), "object")),
        "sort": _typed(f"{where}.sort", st.get("sort"), (dict,), "object"),
        "hint": _typed(f"{where}.hint", st.get("hint"), (str, dict), "object"),
    }


# -- statement runners (shared with bulkWrite) ---------------------------------
def run_update(ctx: Ctx, db: str, coll: str, q: Any, u: Any, *, multi: bool, upsert: bool, scope: LetScope,
               constants: Any = None, array_filters: list | None = None, collation: dict | None = None,
               sort: dict | None = None, hint: Any = None) -> WriteResult:
    if not isinstance(q, dict):
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field 'q' is the wrong type '{type_name(q)}', "
                         "expected type 'object'")
    if not isinstance(u, (dict, list)):
        raise MongoError(ErrorCode.FailedToParse, "Update argument must be either an object or an array")
    if constants is not None:
        if not isinstance(u, list):
            raise MongoError(ErrorCode.FailedToParse,
                             "Constant values may only be specified for pipeline updates")
        scope = scope.with_constants(constants)
    if sort is not None and multi:
        raise MongoError(ErrorCode.FailedToParse, "Cannot specify sort with multi=true")
    check_hint(ctx, coll, hint, db=db)
    res = ctx.engine.update(db, coll, scope.filter(q), scope.update(u), multi=multi, upsert=upsert,
                            array_filters=array_filters, collation=collation, sort=sort, wait=False)
    ctx.state.opcounters["update"] += 1
    return res


def run_delete(ctx: Ctx, db: str, coll: str, q: Any, *, multi: bool, scope: LetScope,
               collation: dict | None = None, hint: Any = None) -> WriteResult:
    if not isinstance(q, dict):
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field 'q' is the wrong type '{type_name(q)}', "
                         "expected type 'object'")
    check_hint(ctx, coll, hint, db=db)
    res = ctx.engine.delete(db, coll, scope.filter(q), limit=0 if multi else 1, collation=collation, wait=False)
    ctx.state.opcounters["delete"] += 1
    return res


# -- the commands --------------------------------------------------------------
_INSERT_FIELDS = {"documents", "ordered", "bypassDocumentValidation", "let"}
_UPDATE_FIELDS = {"updates", "ordered", "bypassDocumentValidation", "let"}
_UPDATE_STMT = {"q", "u", "c", "upsert", "multi", "arrayFilters", "collation", "hint", "sort", "upsertSupplied"}
_DELETE_FIELDS = {"deletes", "ordered", "let"}
_DELETE_STMT = {"q", "limit", "collation", "hint"}
_FAM_FIELDS = {"query", "sort", "remove", "update", "new", "fields", "upsert", "bypassDocumentValidation",
               "collation", "arrayFilters", "hint", "let"}


@command("insert", help="Insert documents.", write=True)
async def insert(ctx: Ctx) -> dict:
    check_fields("insert", ctx.body, _INSERT_FIELDS)
    coll = ctx.coll_name()
    docs = _list_arg(ctx, "documents")
    for i, d in enumerate(docs):
        if not isinstance(d, dict):
            raise MongoError(ErrorCode.TypeMismatch, f"BSON field 'insert.documents.{i}' is the wrong type "
                             f"'{type_name(d)}', expected type 'object'")
    ordered = _ordered(ctx)

    async def run() -> dict:
        res = ctx.engine.insert(ctx.db, coll, docs, ordered=ordered, wait=False)
        ctx.state.opcounters["insert"] += res.n
        await ctx.durable(res.seq)
        return _write_reply(res.n, res.errors)
    return await retryable(ctx, run)


def _statement(ctx: Ctx, st: Any, i: int, allowed: set, required: tuple[str, ...]) -> dict:
    """Structural checks of one statement: like mongod's IDL parsing they fail the whole
    command (what fails while applying a statement is a writeError instead)."""
    where = f"{ctx.name}.{ctx.name}s"
    if not isinstance(st, dict):
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field '{where}.{i}' is the wrong type "
                         f"'{type_name(st)}', expected type 'object'")
    check_sub_fields(where, st, allowed)
    for k in required:
        if k not in st:
            raise MongoError(ErrorCode.FailedToParse, f"BSON field '{where}.{k}' is missing but a required field")
    if not isinstance(st["q"], dict):
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field '{where}.q' is the wrong type "
                         f"'{type_name(st['q'])}', expected type 'object'")
    return st


def _update_statements(ctx: Ctx, stmts: list) -> list[dict]:
    out = []
    for i, st in enumerate(stmts):
        st = _statement(ctx, st, i, _UPDATE_STMT, ("q", "u"))
        if not isinstance(st["u"], (dict, list)):
            raise MongoError(ErrorCode.FailedToParse, "Update argument must be either an object or an array")
        out.append({"q": st["q"], "u": st["u"], "multi": bool_arg("update.updates", st, "multi"),
                    "upsert": bool_arg("update.updates", st, "upsert"),
                    "constants": doc_arg("update.updates", st, "c"), **statement_options("update.updates", st)})
    return out


def _delete_statements(ctx: Ctx, stmts: list) -> list[dict]:
    out = []
    for i, st in enumerate(stmts):
        st = _statement(ctx, st, i, _DELETE_STMT, ("q", "limit"))
        limit = st["limit"]
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit not in (0, 1):
            raise MongoError(ErrorCode.FailedToParse, f"The limit field in delete objects must be 0 or 1. Got {limit}")
        opts = statement_options("delete.deletes", st)
        out.append({"q": st["q"], "multi": limit == 0, "collation": opts["collation"], "hint": opts["hint"]})
    return out


@command("update", help="Update documents (operators, replacement or pipeline; upsert; arrayFilters; let).",
         write=True)
async def update(ctx: Ctx) -> dict:
    check_fields("update", ctx.body, _UPDATE_FIELDS)
    coll = ctx.coll_name()
    stmts = _update_statements(ctx, _list_arg(ctx, "updates"))
    ordered = _ordered(ctx)
    scope = LetScope.for_command(ctx, ctx.body.get("let"))

    async def run() -> dict:
        n = modified = 0
        upserted = []
        errors: list[tuple[int, MongoError]] = []
        last_seq = 0
        for i, st in enumerate(stmts):
            try:
                res = run_update(ctx, ctx.db, coll, scope=scope, **st)
            except MongoError as e:
                errors.append((i, e))
                if ordered:
                    break
                continue
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
    check_fields("delete", ctx.body, _DELETE_FIELDS)
    coll = ctx.coll_name()
    stmts = _delete_statements(ctx, _list_arg(ctx, "deletes"))
    ordered = _ordered(ctx)
    scope = LetScope.for_command(ctx, ctx.body.get("let"))

    async def run() -> dict:
        n = 0
        errors: list[tuple[int, MongoError]] = []
        last_seq = 0
        for i, st in enumerate(stmts):
            try:
                res = run_delete(ctx, ctx.db, coll, st["q"], multi=st["multi"], scope=scope,
                                 collation=st["collation"], hint=st["hint"])
            except MongoError as e:
                errors.append((i, e))
                if ordered:
                    break
                continue
            n += res.n
            last_seq = max(last_seq, res.seq)
        await ctx.durable(last_seq)
        return _write_reply(n, errors)
    return await retryable(ctx, run)


@command("findAndModify", "findandmodify", help="Atomically find one document and update or remove it.",
         write=True)
async def find_and_modify(ctx: Ctx) -> dict:
    name = ctx.name
    check_fields(name, ctx.body, _FAM_FIELDS)
    coll = ctx.coll_name()
    b = ctx.body
    remove = bool_arg(name, b, "remove")
    upsert = bool_arg(name, b, "upsert")
    new = bool_arg(name, b, "new")
    upd = b.get("update")
    if remove and upd is not None:
        raise MongoError(ErrorCode.FailedToParse, "Cannot specify both an update and remove=true")
    if not remove and upd is None:
        raise MongoError(ErrorCode.FailedToParse, "Either an update or remove=true must be specified")
    if upd is not None and not isinstance(upd, (dict, list)):
        raise MongoError(ErrorCode.FailedToParse, "Update argument must be either an object or an array")
    if remove and upsert:
        raise MongoError(ErrorCode.FailedToParse, "Cannot specify both upsert=true and remove=true")
    if remove and new:
        raise MongoError(ErrorCode.FailedToParse,
                         "Cannot specify both new=true and remove=true; 'remove' always returns the deleted document")
    scope = LetScope.for_command(ctx, b.get("let"))
    q = scope.filter(doc_arg(name, b, "query") or {})
    sort = doc_arg(name, b, "sort")
    fields = doc_arg(name, b, "fields")
    opts = statement_options(name, b)
    check_hint(ctx, coll, opts["hint"])

    async def run() -> dict:
        doc, leo = ctx.engine.find_and_modify(
            ctx.db, coll, q, sort=sort or None, update=scope.update(upd), remove=remove, new=new,
            upsert=upsert, fields=scope.projection(fields) or None, array_filters=opts["array_filters"],
            collation=opts["collation"], wait=False)
        seq = leo.pop("_seq", 0)
        ctx.state.opcounters["delete" if remove else "update"] += 1
        await ctx.durable(seq)
        return {"lastErrorObject": leo, "value": doc, "ok": 1.0}
    return await retryable(ctx, run)
