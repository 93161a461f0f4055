"""Operations in progress: currentOp, killOp."""
from __future__ import annotations

import time

from bson.int64 import Int64

from mongolake.errors import ErrorCode, MongoError

from .context import Ctx
from .registry import command


@command("currentOp", help="Operations in progress.", admin_only=True)
async def current_op(ctx: Ctx) -> dict:
    now = time.perf_counter()
    inprog = []
    for op in ctx.state.ops.values():
        inprog.append({"type": "op", "active": True, "opid": op["opid"], "ns": op["ns"],
                       "command": op["command"], "client": op["client"], "connectionId": op["connectionId"],
                       "microsecs_running": Int64(int((now - op["start"]) * 1e6)), "op": "command"})
    return {"inprog": inprog, "ok": 1.0}


@command("killOp", help="Ask an operation to stop (operations run to completion between yields).",
         admin_only=True)
async def kill_op(ctx: Ctx) -> dict:
    op = ctx.body.get("op")
    if not isinstance(op, (int, float)):
        raise MongoError(ErrorCode.BadValue, "Expected field 'op' to be numeric")
    return {"info": "attempting to kill op", "ok": 1.0}
