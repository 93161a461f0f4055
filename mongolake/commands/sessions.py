"""Logical sessions: startSession, endSessions, refreshSessions, killSessions."""
from __future__ import annotations

import time
import uuid

from bson.binary import Binary, UuidRepresentation

from mongolake.errors import ErrorCode, MongoError

from .context import Ctx
from .registry import command


def lsid_key(lsid: object) -> object:
    if isinstance(lsid, dict):
        v = lsid.get("id")
        return bytes(v) if isinstance(v, (bytes, Binary)) else repr(v)
    return None


def touch_session(ctx: Ctx) -> object:
    key = lsid_key(ctx.body.get("lsid"))
    if key is not None:
        ctx.state.sessions[key] = time.time()
    return key


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
    for s in _session_list(ctx):
        ctx.state.sessions.pop(lsid_key(s), None)
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
    keys = {lsid_key(s) for s in _session_list(ctx)}
    for k in keys:
        ctx.state.sessions.pop(k, None)
    ctx.state.cursors.kill_for_sessions(keys)
    return {"ok": 1.0}


@command("killAllSessions", help="Kill every logical session.")
async def kill_all_sessions(ctx: Ctx) -> dict:
    keys = set(ctx.state.sessions)
    ctx.state.sessions.clear()
    ctx.state.cursors.kill_for_sessions(keys)
    return {"ok": 1.0}


@command("commitTransaction", help="Not supported yet: transactions are a planned feature.", admin_only=True)
async def commit_transaction(ctx: Ctx) -> dict:
    raise MongoError(ErrorCode.NoSuchTransaction, "Given transaction number does not match any in-progress "
                     "transactions (multi-document transactions are not supported yet)",
                     labels=["TransientTransactionError"])


@command("abortTransaction", help="Not supported yet: transactions are a planned feature.", admin_only=True)
async def abort_transaction(ctx: Ctx) -> dict:
    raise MongoError(ErrorCode.NoSuchTransaction, "Given transaction number does not match any in-progress "
                     "transactions (multi-document transactions are not supported yet)",
                     labels=["TransientTransactionError"])
