"""Operations in progress and profiling: currentOp, killOp, profile, getDefaultRWConcern."""
from __future__ import annotations

import datetime as dt
import socket
import time

from bson.int64 import Int64

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.filter import parse_filter
from mongolake.query.matcher import compile_matcher

from .args import GENERIC_ARGS
from .context import Ctx
from .registry import command

_CURRENT_OP_OPTIONS = {"currentOp", "$all", "$ownOps", "$truncateOps", "backtrace", "idleConnections",
                       "idleSessions", "localOps"}


_WAITING = {"hello", "isMaster", "ismaster"}


def _op_entry(op: dict, now: float, host: str) -> dict:
    running = now - op["start"]
    entry = {"type": "op", "host": host, "desc": f"conn{op['connectionId']}", "connectionId": op["connectionId"],
             "client": op["client"], "active": True, "currentOpTime":
                 dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
             "opid": op["opid"], "secs_running": Int64(int(running)),
             "microsecs_running": Int64(int(running * 1e6)), "op": "command", "ns": op["ns"],
             "command": op["command"], "killPending": False}
    if op.get("appName"):
        entry["appName"] = op["appName"]
    return entry


def current_ops(ctx: Ctx, *, show_all: bool) -> list[dict]:
    """currentOp entries of the operations in progress (also the ``$currentOp`` stage's source)."""
    now = time.perf_counter()
    host = f"{socket.gethostname()}:{ctx.state.options.port}"
    out = []
    for op in list(ctx.state.ops.values()):
        if not show_all and op.get("name") in _WAITING:
            continue      # monitors' awaitable hellos are idle waits, shown only with $all
        entry = _op_entry(op, now, host)
        if op["opid"] in ctx.state.killed_ops:
            entry["killPending"] = True
        out.append(entry)
    return out


@command("currentOp", help="Operations in progress (other fields of the command filter them).", admin_only=True)
async def current_op(ctx: Ctx) -> dict:
    flt = {k: v for k, v in ctx.body.items() if k not in _CURRENT_OP_OPTIONS and k not in GENERIC_ARGS
           and k != "$db"}
    match = compile_matcher(parse_filter(flt)) if flt else None
    inprog = [e for e in current_ops(ctx, show_all=bool(ctx.body.get("$all"))) if match is None or match(e)]
    return {"inprog": inprog, "ok": 1.0}


@command("killOp", help="Mark an operation killed (MongoLake operations run to completion between yields).",
         admin_only=True)
async def kill_op(ctx: Ctx) -> dict:
    op = ctx.body.get("op")
    if isinstance(op, bool) or not isinstance(op, (int, float)):
        raise MongoError(ErrorCode.TypeMismatch, "Expected field 'op' to be numeric")
    if int(op) in ctx.state.ops:
        ctx.state.killed_ops.add(int(op))
    return {"info": "attempting to kill op", "ok": 1.0}


@command("profile", help="Profiler level and slowms; levels 1 and 2 are not supported (level -1 reads).")
async def profile(ctx: Ctx) -> dict:
    level = ctx.arg
    if isinstance(level, bool) or not isinstance(level, (int, float)) or level not in (-1, 0, 1, 2):
        raise MongoError(ErrorCode.BadValue, "Invalid profiling level: must be -1, 0, 1 or 2")
    st = ctx.state
    out = {"was": st.profile_level, "slowms": st.slow_ms, "sampleRate": 1.0, "ok": 1.0}
    if level in (1, 2):
        raise MongoError(ErrorCode.NotImplemented, "the database profiler is not supported by MongoLake (slow "
                         "operations are logged; see getLog)")
    slow = ctx.body.get("slowms")
    if slow is not None:
        if isinstance(slow, bool) or not isinstance(slow, (int, float)):
            raise MongoError(ErrorCode.TypeMismatch, "slowms must be a number")
        st.slow_ms = int(slow)
    return out


@command("getDefaultRWConcern", help="The default read and write concerns (fixed: local / majority).",
         admin_only=True)
async def get_default_rw_concern(ctx: Ctx) -> dict:
    return {"defaultReadConcern": {"level": "local"}, "defaultWriteConcern": {"w": "majority", "wtimeout": 0},
            "defaultReadConcernSource": "implicit", "defaultWriteConcernSource": "implicit",
            "localUpdateWallClockTime": dt.datetime.fromtimestamp(ctx.state.started, dt.timezone.utc), "ok": 1.0}
