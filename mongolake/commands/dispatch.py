"""The one entry point from the wire: request -> command -> reply.

This is the single place where exceptions become MongoDB error documents.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from bson.binary import Binary
from bson.int64 import Int64

from mongolake.errors import ErrorCode, MongoError
from wire.errors import InvalidRequestError
from wire.handler import BaseHandler, Reply

from . import bsonreply
from .context import Ctx, ServerState
from .registry import load_all

log = logging.getLogger("mongolake.commands")

MAX_COMMAND_DEPTH = 180      # documents nested over 100 levels fail in the engine with Overflow
_GENERIC_ARGS = frozenset({"$db", "lsid", "txnNumber", "$clusterTime", "$readPreference", "apiVersion",
                           "apiStrict", "apiDeprecationErrors", "comment", "maxTimeMS", "readConcern",
                           "writeConcern", "autocommit", "startTransaction", "$audit", "$client"})
_ZERO_SIG = {"hash": Binary(b"\x00" * 20), "keyId": Int64(0)}


class CommandHandler(BaseHandler):
    def __init__(self, state: ServerState):
        self.state = state
        self.commands = load_all()
        self.slow_ms = 100

    async def on_connect(self, conn: Any) -> None:
        self.state.connections_total += 1
        self.state.connections_current += 1

    async def on_disconnect(self, conn: Any) -> None:
        self.state.connections_current -= 1
        self.state.cursors.kill_for_connection(conn.id)

    async def handle(self, conn: Any, request: Any) -> Any:
        try:
            doc = await self._run(conn, request)
        except MongoError as e:
            doc = e.to_doc()
        except InvalidRequestError as e:
            doc = e.to_document()
        except Exception as e:   # noqa: BLE001 - the one conversion point
            log.exception("command failed")
            doc = MongoError(ErrorCode.InternalError, f"internal error: {type(e).__name__}: {e}").to_doc()
        if request.more_to_come:
            return None
        if self.state.is_replset:
            ts = self.state.engine.cluster_time
            extra = {"$clusterTime": {"clusterTime": ts, "signature": _ZERO_SIG}, "operationTime": ts}
            if isinstance(doc, (bytes, bytearray)):
                doc = bsonreply.append_fields(bytes(doc), extra)
            else:
                doc.update(extra)
        return Reply(doc)

    async def _run(self, conn: Any, request: Any) -> Any:
        if request.body_depth_exceeds(MAX_COMMAND_DEPTH):
            raise MongoError(ErrorCode.Overflow, "BSONObj exceeds maximum nested object depth")
        body = request.body
        if request.op.name == "QUERY":
            db = request.database
            if "$query" in body or "query" in body and isinstance(body.get("query"), dict) and len(body) <= 3:
                inner = body.get("$query", body.get("query"))
                if isinstance(inner, dict) and inner:
                    body = inner
        else:
            db = body.get("$db")
            if not isinstance(db, str):
                raise MongoError(40571, "OP_MSG requests require a $db argument")
            seqs = request.sequences
            if seqs:
                body = dict(body)
                for ident, docs in seqs.items():
                    if ident in body:
                        raise MongoError(ErrorCode.BadValue, f"Duplicate field {ident} in OP_MSG")
                    body[ident] = docs
        if not body:
            raise MongoError(ErrorCode.FailedToParse, "empty command document")
        name = next(iter(body))
        cmd = self.commands.get(name)
        if cmd is None:
            raise MongoError(ErrorCode.CommandNotFound, f"no such command: '{name}'")
        if cmd.admin_only and db != "admin":
            raise MongoError(ErrorCode.Unauthorized, f"{name} may only be run against the admin database.")
        if body.get("autocommit") is False or body.get("startTransaction"):
            raise MongoError(ErrorCode.NotImplemented,
                             "multi-document transactions are not supported yet by MongoLake")
        st = self.state
        st.opcounters["command"] += 1
        ctx = Ctx(st, conn, db, body, name, request)
        ctx.opid = st.next_opid()
        t0 = time.perf_counter()
        st.ops[ctx.opid] = {"opid": ctx.opid, "ns": db, "command": {name: body.get(name)}, "start": t0,
                            "client": conn.peer, "connectionId": conn.id}
        try:
            result = await cmd.handler(ctx)
        finally:
            st.ops.pop(ctx.opid, None)
        ms = (time.perf_counter() - t0) * 1000
        if ms >= self.slow_ms:
            log.info("slow operation: %s on %s took %.1f ms", name, db, ms)
        return result
