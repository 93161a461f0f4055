"""The one entry point from the wire: request -> command -> reply.

This is the single place where exceptions become MongoDB error documents. It
also does what every command shares: ``$db`` validation, the legacy OP_QUERY
restriction, unknown vs. not-implemented commands, read/write concern parsing,
``writeConcernError`` for concerns one node cannot satisfy, ``$clusterTime``
gossip, the slow-operation log and the in-memory log ``getLog`` serves.
Transaction fields (``autocommit``, ``startTransaction``) are checked here and the
handler runs inside the session's transaction (see :mod:`.transactions`); a
snapshot read at a past ``atClusterTime`` runs under a history view.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from typing import Any

from bson.binary import Binary
from bson.int64 import Int64

from mongolake.engine.catalog import validate_db_name
from mongolake.errors import ErrorCode, MongoError
from wire.errors import InvalidRequestError
from wire.handler import BaseHandler, Reply

from . import bsonreply, transactions
from .args import int_arg
from .concerns import check_read_concern, parse_write_concern
from .context import Ctx, ServerState
from .registry import AFTER_HOOKS, BEFORE_HOOKS, CLOSE_CONNECTION, load_all
from .sessions import touch_session
from .unsupported import NOT_IMPLEMENTED

log = logging.getLogger("mongolake.commands")

MAX_COMMAND_DEPTH = 180      # documents nested over 100 levels fail in the engine with Overflow
_ZERO_SIG = {"hash": Binary(b"\x00" * 20), "keyId": Int64(0)}
# what MongoDB 6.0+ still accepts over the legacy OP_QUERY
_OP_QUERY_COMMANDS = frozenset({"hello", "isMaster", "ismaster", "saslStart", "saslContinue", "authenticate",
                                "getnonce", "ping", "buildInfo", "buildinfo"})
UnsupportedOpQueryCommand = 352
_DROP = object()             # test hook: close the connection instead of replying
TEST_HOOK = "_mongolakeTestHook"


class _RamLog(logging.Handler):
    """Keeps the server's recent log records as MongoDB-style JSON lines (for getLog)."""

    _COMPONENT = {"mongolake.commands": "COMMAND", "mongolake.engine": "STORAGE", "wire": "NETWORK",
                  "mongolake": "CONTROL"}

    def __init__(self, state: ServerState):
        super().__init__(logging.INFO)
        self.state = state

    def emit(self, record: logging.LogRecord) -> None:
        try:
            comp = next((c for p, c in self._COMPONENT.items() if record.name.startswith(p)), "-")
            ts = dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")
            line = json.dumps({"t": {"$date": ts}, "s": record.levelname[0], "c": comp, "id": 0,
                               "ctx": record.threadName, "msg": record.getMessage()})
            self.state.log_lines.append(line)
            self.state.log_total += 1
        except Exception:   # noqa: BLE001 - logging must never fail a command
            pass


_ram_log: _RamLog | None = None


def _install_ram_log(state: ServerState) -> None:
    global _ram_log
    for name in ("mongolake", "wire"):
        lg = logging.getLogger(name)
        if _ram_log is not None:
            lg.removeHandler(_ram_log)
    _ram_log = _RamLog(state)
    for name in ("mongolake", "wire"):
        logging.getLogger(name).addHandler(_ram_log)


class CommandHandler(BaseHandler):
    def __init__(self, state: ServerState):
        self.state = state
        self.commands = load_all()
        self.close_after: dict[str, int] = {}      # test hook: command name -> replies to drop
        _install_ram_log(state)

    @property
    def slow_ms(self) -> int:
        return self.state.slow_ms

    async def on_connect(self, conn: Any) -> None:
        self.state.connections_total += 1
        self.state.connections_current += 1

    async def on_disconnect(self, conn: Any) -> None:
        self.state.connections_current -= 1
        self.state.cursors.kill_for_connection(conn.id)

    async def handle(self, conn: Any, request: Any) -> Any:
        try:
            doc = await self._run(conn, request)
            if doc is _DROP:
                conn.abort()
                return None
        except MongoError as e:
            doc = e.to_doc()
            if log.isEnabledFor(logging.DEBUG):
                log.debug("command %s failed on conn%d: %s", request.command_name, conn.id, e)
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

    def _test_hook(self, body: dict) -> dict:
        """``{_mongolakeTestHook: 1, closeConnectionAfter: {<command>: <times>}}``, only when
        the server runs with ``MONGOLAKE_TEST_HOOKS=1`` (not a registered command): the
        next ``times`` runs of ``<command>`` are applied, then the connection is closed
        instead of replying — a network failure after a write, as a driver sees it."""
        spec = body.get("closeConnectionAfter") or {}
        if not isinstance(spec, dict):
            raise MongoError(ErrorCode.TypeMismatch, "closeConnectionAfter must be an object")
        for k, v in spec.items():
            self.close_after[k] = int(v)
        return {"ok": 1.0}

    def _parse(self, request: Any) -> tuple[str, dict]:
        if request.body_depth_exceeds(MAX_COMMAND_DEPTH):
            raise MongoError(ErrorCode.Overflow, "BSONObj exceeds maximum nested object depth")
        body = request.body
        if request.op.name == "QUERY":
            db = request.database
            name = next(iter(body), None)
            if not request.is_command or name not in _OP_QUERY_COMMANDS:
                raise MongoError(UnsupportedOpQueryCommand,
                                 f"Unsupported OP_QUERY command: {name}. The client driver may require an upgrade. "
                                 "For more details see https://dochub.mongodb.org/core/legacy-opcode-removal")
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
        if db != "$external":
            validate_db_name(db)
        if not body:
            raise MongoError(ErrorCode.FailedToParse, "empty command document")
        return db, body

    async def _run(self, conn: Any, request: Any) -> Any:
        db, body = self._parse(request)
        name = next(iter(body))
        cmd = self.commands.get(name)
        if cmd is None:
            if name == TEST_HOOK and os.environ.get("MONGOLAKE_TEST_HOOKS") == "1":
                return self._test_hook(body)
            if name in NOT_IMPLEMENTED:
                raise MongoError(ErrorCode.NotImplemented, f"{name}: {NOT_IMPLEMENTED[name]}")
            raise MongoError(ErrorCode.CommandNotFound, f"no such command: '{name}'")
        if cmd.admin_only and db != "admin":
            raise MongoError(ErrorCode.Unauthorized, f"{name} may only be run against the admin database.")
        st = self.state
        ctx = Ctx(st, conn, db, body, name, request)
        for hook in BEFORE_HOOKS:
            early = await hook(ctx, cmd)
            if early is CLOSE_CONNECTION:
                return _DROP
            if early is not None:
                return early
        check_read_concern(body.get("readConcern"))
        ctx.wc = parse_write_concern(body.get("writeConcern"))
        if "maxTimeMS" in body:
            int_arg(name, body, "maxTimeMS", 0)
        st.opcounters["command"] += 1
        if "lsid" in body:
            touch_session(ctx)
            transactions.ensure_started(st)
        history = await transactions.read_concern(ctx)
        stx = transactions.prepare(ctx, cmd)
        ctx.opid = st.next_opid()
        t0 = time.perf_counter()
        st.ops[ctx.opid] = {"opid": ctx.opid, "ns": db, "command": {name: body.get(name), "$db": db},
                            "start": t0, "started_at": time.time(), "client": conn.peer,
                            "connectionId": conn.id, "name": name,
                            "appName": (conn.state.get("client") or {}).get("application", {}).get("name")}
        try:
            if stx is not None:
                result = await transactions.run_in_transaction(ctx, cmd, stx)
            elif history is not None:
                result = await transactions.run_with_history(ctx, cmd, history)
            else:
                result = await cmd.handler(ctx)
        finally:
            st.ops.pop(ctx.opid, None)
            st.killed_ops.discard(ctx.opid)
        for after in AFTER_HOOKS:
            result = await after(ctx, cmd, result)
            if result is CLOSE_CONNECTION:
                return _DROP
        if cmd.write and isinstance(result, dict) and result.get("ok"):
            wce = ctx.wc.error()
            if wce is not None:
                result["writeConcernError"] = wce
        if self.close_after.get(name):
            self.close_after[name] -= 1
            return _DROP
        ms = (time.perf_counter() - t0) * 1000
        if ms >= st.slow_ms and name not in ("hello", "isMaster", "ismaster"):
            log.info("slow operation: %s on %s took %.1f ms", name, db, ms)
        return result
