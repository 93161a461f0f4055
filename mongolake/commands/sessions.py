"""Logical sessions: startSession, endSessions, refreshSessions, killSessions.

A session is known by its ``lsid`` and lives 30 minutes after its last use
(``logicalSessionTimeoutMinutes``). Ending, killing or expiring a session aborts
its open transaction and forgets its retryable-write records (in memory and in
``config.transactions``). Transactions themselves: :mod:`.transactions`.

Session records (``config.transactions``, one document per session: ``txnNum``,
``lastWriteDate`` and the retryable write's ``reply`` or ``state: "committed"``)
are written in the same WAL batch as the write or commit they describe
(:func:`run_recorded`), so after a restart a retried write is answered from its
record instead of being applied again. They are swept after the session timeout.
"""
from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any, Awaitable, Callable

from bson.binary import Binary, UuidRepresentation
from bson.int64 import Int64

from mongolake.engine.txn import using
from mongolake.errors import ErrorCode, MongoError

from .context import Ctx, ServerState
from .registry import command


def lsid_key(lsid: object) -> object:
    if isinstance(lsid, dict):
        v = lsid.get("id")
        return bytes(v) if isinstance(v, (bytes, Binary)) else repr(v)
    return None


SESSION_TIMEOUT = 30 * 60.0          # logicalSessionTimeoutMinutes
RECORDS_DB, RECORDS_COLL = "config", "transactions"
_SWEEP_EVERY = 1024
_touches = 0


def forget_sessions(state: object, keys: set, lsids: list | None = None) -> None:
    """Drop sessions, abort their transactions, forget their retryable-write records
    (``lsids``: the session ids as sent, to delete the persisted records too)."""
    from .transactions import end_sessions as end_transactions
    end_transactions(state, keys)             # type: ignore[arg-type]
    for k in keys:
        state.sessions.pop(k, None)           # type: ignore[attr-defined]
        state.retry_results.pop(k, None)      # type: ignore[attr-defined]
    if lsids is None:
        lsids = [{"id": Binary(k, 4)} for k in keys if isinstance(k, bytes)]
    delete_records(state, lsids)


def expire_sessions(state: object, now: float | None = None) -> int:
    """Forget sessions unused for longer than the logical session timeout."""
    now = time.time() if now is None else now
    old = {k for k, t in state.sessions.items() if now - t > SESSION_TIMEOUT}   # type: ignore[attr-defined]
    forget_sessions(state, old)
    return len(old)


def touch_session(ctx: Ctx) -> object:
    global _touches
    key = lsid_key(ctx.body.get("lsid"))
    if key is not None:
        ctx.state.sessions[key] = time.time()
        _touches += 1
        if _touches % _SWEEP_EVERY == 0:
            expire_sessions(ctx.state)
    return key


# -- session records (config.transactions) --------------------------------------------------
def record_id(lsid: dict) -> dict:
    return {"id": lsid.get("id")}


def record_doc(lsid: dict, number: int, **fields: Any) -> dict:
    return {"_id": record_id(lsid), "txnNum": Int64(number),
            "lastWriteDate": dt.datetime.now(dt.timezone.utc).replace(microsecond=0), **fields}


def delete_records(state: ServerState, lsids: list[dict]) -> None:
    eng = state.engine
    ids = [record_id(s) for s in lsids if isinstance(s, dict)]
    if ids and eng.get_collection(RECORDS_DB, RECORDS_COLL) is not None:
        eng.delete(RECORDS_DB, RECORDS_COLL, {"_id": {"$in": ids}}, wait=False)


def sweep_records(state: ServerState, now: float | None = None) -> int:
    """Delete session records older than the session timeout."""
    eng = state.engine
    if eng.get_collection(RECORDS_DB, RECORDS_COLL) is None:
        return 0
    now = time.time() if now is None else now
    cutoff = dt.datetime.fromtimestamp(now - SESSION_TIMEOUT, dt.timezone.utc)
    return eng.delete(RECORDS_DB, RECORDS_COLL, {"lastWriteDate": {"$lt": cutoff}}, wait=False).n


def run_recorded(ctx: Ctx, run: Callable[[], Awaitable[dict]]) -> tuple[dict, int]:
    """Run a retryable write command's statements as one capture and commit them in
    one batch together with the session's record (the reply). ``run`` must not
    suspend before its reply (writes inside a capture return seq 0, so waiting for
    durability is a no-op there). Returns ``(reply, seq)``."""
    eng = ctx.engine
    cap = eng.txns.capture()
    coro = run()
    with eng.lock, using(cap):
        try:
            coro.send(None)
        except StopIteration as stop:
            reply = stop.value
        else:
            coro.close()
            raise MongoError(ErrorCode.InternalError, f"{ctx.name}: a retryable write suspended while applying")
        eng.txns.put_document(cap, RECORDS_DB, RECORDS_COLL,
                              record_doc(ctx.body["lsid"], int(ctx.body["txnNumber"]), reply=reply))
    return reply, eng.txns.commit_capture(cap)


# -- commands ---------------------------------------------------------------------------------
@command("startSession", help="Start a logical session and return its id.")
async def start_session(ctx: Ctx) -> dict:
    sid = Binary.from_uuid(uuid.uuid4(), UuidRepresentation.STANDARD)
    ctx.state.sessions[bytes(sid)] = time.time()
    return {"id": {"id": sid}, "timeoutMinutes": 30, "ok": 1.0}


def _session_list(ctx: Ctx) -> list:
    v = ctx.arg
    if not isinstance(v, list):
        raise MongoError(ErrorCode.TypeMismatch, f"{ctx.name} must be an array of session ids")
    return v


@command("endSessions", help="End logical sessions (their cursors stay until exhausted or timed out).")
async def end_sessions(ctx: Ctx) -> dict:
    sessions = _session_list(ctx)
    forget_sessions(ctx.state, {lsid_key(s) for s in sessions}, sessions)
    return {"ok": 1.0}


@command("refreshSessions", help="Keep logical sessions alive.")
async def refresh_sessions(ctx: Ctx) -> dict:
    now = time.time()
    for s in _session_list(ctx):
        k = lsid_key(s)
        if k is not None:
            ctx.state.sessions[k] = now
    return {"ok": 1.0}


@command("killSessions", help="Kill logical sessions and their cursors.")
async def kill_sessions(ctx: Ctx) -> dict:
    sessions = _session_list(ctx)
    keys = {lsid_key(s) for s in sessions}
    forget_sessions(ctx.state, keys, sessions)
    ctx.state.cursors.kill_for_sessions(keys)
    return {"ok": 1.0}


@command("killAllSessions", help="Kill every logical session.")
async def kill_all_sessions(ctx: Ctx) -> dict:
    from .transactions import registry
    keys = set(ctx.state.sessions) | set(ctx.state.retry_results) | set(registry(ctx.state).txns)
    forget_sessions(ctx.state, keys)
    ctx.state.cursors.kill_for_sessions(keys)
    return {"ok": 1.0}


# commitTransaction / abortTransaction live there (imported last: it imports this module)
from . import transactions  # noqa: E402,F401
