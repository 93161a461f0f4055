"""Test commands: ``configureFailPoint``, ``waitForFailPoint`` and MongoDB's fail points.

Only with ``--enable-test-commands`` (off by default; the configuration refuses it
together with ``--auth`` unless ``--allow-test-commands-with-auth``): otherwise both
commands answer ``CommandNotFound`` (59) as on a mongod started without
``enableTestCommands``. Like mongod's, they need no authentication.

Fail points (per server, as in mongod):

``failCommand``
    Evaluated by a dispatcher before-hook, before the command runs (so a failed write
    changes nothing). Data: ``failCommands`` (command names; aliases match),
    ``closeConnection`` (drop the connection without a reply), ``blockConnection`` +
    ``blockTimeMS`` (delay the command), ``errorCode`` (fail it), ``errorLabels``
    (replace the labels the server would add; ``[]`` means none), ``appName`` (only
    clients whose handshake metadata names this application), ``namespace``
    (``db.coll``), ``failInternalCommands`` (also fail clients that announced
    ``internalClient`` in their handshake). ``writeConcernError`` (a document) is
    applied by an after-hook instead: the write is done and the reply carries it.
    The ``configureFailPoint`` command itself is never failed.
``failGetMoreAfterCursorCheckout``
    A ``getMore`` on an existing cursor fails with ``errorCode`` (default 1) and the
    cursor is closed, as mongod does after checking the cursor out. Because the server
    then knows the cursor's originating command, a change stream's ``getMore`` gets
    ``ResumableChangeStreamError`` for a resumable code — which ``failCommand`` on
    ``getMore`` does not give (mongod fails it before the cursor is looked up; the
    drivers' change-stream tests rely on exactly that difference).

Modes: ``"alwaysOn"``, ``"off"``, ``{times: n}`` (the next n matching commands; as in
mongod, ``{times: 0}`` still fires once), ``{skip: n}`` (let n matching commands pass,
then fire on every one), ``{activationProbability: p}``. Only commands the data
matches consume ``times``/``skip``. ``configureFailPoint`` answers ``count``: how
often the fail point fired before (``waitForFailPoint`` waits for that number).

Error labels follow mongod's ``ErrorLabelBuilder`` for the code the fail point
produces: ``TransientTransactionError`` inside a transaction, else
``RetryableWriteError`` for retryable writes (``txnNumber`` without ``autocommit``)
and ``commitTransaction``/``abortTransaction`` with a retryable code or
writeConcernError code (plus ``NoWritesPerformed`` when the connection wrote before
and this command wrote nothing), ``ResumableChangeStreamError`` /
``NonResumableChangeStreamError`` for change streams.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from typing import Any, Callable

from mongolake.errors import RESUMABLE_CHANGE_STREAM_CODES, RETRYABLE_WRITE_CODES, ErrorCode, MongoError

from . import bsonreply
from .context import Ctx, ServerState
from .registry import AFTER_HOOKS, BEFORE_HOOKS, CLOSE_CONNECTION, REGISTRY, Command, command

log = logging.getLogger("mongolake.commands")

FailPointSetFailed = 266
OPTION = "enable_test_commands"
FAIL_COMMAND = "failCommand"
FAIL_GETMORE = "failGetMoreAfterCursorCheckout"
FAIL_POINTS = (FAIL_COMMAND, FAIL_GETMORE)

# -- error label rules (mongod's ErrorLabelBuilder) --------------------------------------------
_COMMIT_OR_ABORT = frozenset({"commitTransaction", "abortTransaction"})
_HELLO = frozenset({"hello", "isMaster", "ismaster"})
_RETRIABLE = RETRYABLE_WRITE_CODES                    # mongod's RetriableError category (and then some)
_SNAPSHOT = frozenset({239, 246, 250, 272})           # SnapshotTooOld/-Unavailable, StaleChunkHistory, MigrationConflict
_RETARGET = frozenset({63, 150, 13388})               # StaleShardVersion, StaleEpoch, StaleConfig
_ALWAYS_TRANSIENT = frozenset({112, 24, 267, 249, 304}) | _SNAPSHOT | _RETARGET
# mongod labels aggregate/getMore errors of change streams with these; CursorNotFound (43)
# is resumed by drivers without a label
_RESUMABLE = RESUMABLE_CHANGE_STREAM_CODES - {ErrorCode.CursorNotFound}
_NON_RESUMABLE = frozenset({ErrorCode.ChangeStreamFatalError, ErrorCode.ChangeStreamHistoryLost})
# commands without a write concern of their own still get a fail point's writeConcernError
_WC_COMMANDS = frozenset({"create", "collMod"})
_WROTE = "failpoints.wrote"                           # conn.state: this connection has written
_INTERNAL = "failpoints.internalClient"               # conn.state: hello carried internalClient


def test_commands_enabled(state: ServerState) -> bool:
    """Whether the server runs with ``--enable-test-commands``."""
    return bool(state.options.parsed.get(OPTION))


def is_transient_transaction_error(code: int, has_wce: bool, commit_or_abort: bool) -> bool:
    if code in _ALWAYS_TRANSIENT:
        return True
    if commit_or_abort:
        return code == ErrorCode.NoSuchTransaction and not has_wce
    return code in _RETRIABLE or code == ErrorCode.NoSuchTransaction


def _original_body(ctx: Ctx) -> dict:
    """The command as the client sent it (a transaction statement's ``ctx.body`` loses
    ``autocommit`` while it runs)."""
    body = getattr(ctx.request, "body", None)
    return body if isinstance(body, dict) and ctx.name in body else ctx.body


def error_labels(ctx: Ctx, code: int | None, wc_code: int | None = None, *,
                 change_stream: bool = False) -> list[str]:
    """The labels mongod adds to an error ``code`` (or a writeConcernError ``wc_code``)
    of this command; ``change_stream``: the command (or a getMore's originating
    command) is a ``$changeStream`` aggregation."""
    body = _original_body(ctx)
    has_txn = "txnNumber" in body
    in_txn = has_txn and "autocommit" in body
    commit_or_abort = ctx.name in _COMMIT_OR_ABORT
    labels: list[str] = []
    if code is not None and in_txn and is_transient_transaction_error(code, wc_code is not None, commit_or_abort):
        labels.append("TransientTransactionError")
    elif ((has_txn and not in_txn) or (in_txn and commit_or_abort)) and not ctx.conn.state.get(_INTERNAL) \
            and ((code is not None and code in _RETRIABLE) or (wc_code is not None and wc_code in _RETRIABLE)):
        labels.append("RetryableWriteError")
        if code is not None and ctx.conn.state.get(_WROTE):
            labels.append("NoWritesPerformed")      # the connection's last write is not this one's
    if not labels and change_stream and code is not None and wc_code is None and code in _RESUMABLE:
        labels.append("ResumableChangeStreamError")
    elif code is not None and code in _NON_RESUMABLE:
        labels.append("NonResumableChangeStreamError")
    return labels


# -- fail points ------------------------------------------------------------------------------
class FailPoint:
    """One fail point: mode, remaining count or probability, data, times entered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = "off"
        self.value: float = 0
        self.data: dict = {}
        self.times_entered = 0

    def configure(self, mode: str, value: float, data: dict) -> int:
        """Set the mode; returns how often the fail point fired so far."""
        self.mode, self.value, self.data = mode, value, data
        return self.times_entered

    @property
    def active(self) -> bool:
        return self.mode != "off"

    def evaluate(self, matches: Callable[[dict], bool]) -> dict | None:
        """The data if the fail point fires for a command ``matches`` accepts, else None.
        Only matching commands count against ``times``/``skip``."""
        if self.mode == "off" or not matches(self.data):
            return None
        if self.mode == "times":
            self.value -= 1
            if self.value <= 0:
                self.mode = "off"
        elif self.mode == "skip":
            if self.value > 0:
                self.value -= 1
                return None
        elif self.mode == "random" and random.random() >= self.value:
            return None
        self.times_entered += 1
        return self.data

    def describe(self) -> dict:
        return {"mode": self.mode, "data": self.data, "timesEntered": self.times_entered}


_points: "weakref.WeakKeyDictionary[ServerState, dict[str, FailPoint]]" = weakref.WeakKeyDictionary()


def fail_points(state: ServerState) -> dict[str, FailPoint]:
    pts = _points.get(state)
    if pts is None:
        pts = _points[state] = {n: FailPoint(n) for n in FAIL_POINTS}
    return pts


# -- parsing ----------------------------------------------------------------------------------
def _int(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and v == int(v)


def parse_mode(body: dict) -> tuple[str, float]:
    """mongod's ``FailPoint::parseBSON`` for ``mode``."""
    if "mode" not in body:
        raise MongoError(ErrorCode.IllegalOperation, "When setting a failpoint, you must supply a 'mode'")
    mode = body["mode"]
    if isinstance(mode, str):
        if mode in ("off", "alwaysOn"):
            return mode, 0
        raise MongoError(ErrorCode.BadValue, f"unknown mode: {mode}")
    if not isinstance(mode, dict):
        raise MongoError(ErrorCode.TypeMismatch, "'mode' must be a string or JSON object")
    for key in ("times", "skip"):
        if key in mode:
            n = mode[key]
            if not _int(n):
                raise MongoError(ErrorCode.TypeMismatch, f"'{key}' option to 'mode' must be an integer")
            if n < 0:
                raise MongoError(ErrorCode.BadValue, f"'{key}' option to 'mode' must be positive")
            if n > 2**31 - 1:
                raise MongoError(ErrorCode.BadValue, f"'{key}' option to 'mode' is too large")
            return key, int(n)
    if "activationProbability" in mode:
        p = mode["activationProbability"]
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            raise MongoError(ErrorCode.TypeMismatch, "the 'activationProbability' option to 'mode' must be a "
                             "double between 0 and 1")
        if not 0 <= p <= 1:
            raise MongoError(ErrorCode.BadValue, f"activationProbability must be between 0.0 and 1.0; found {p}")
        return ("off", 0) if p == 0 else ("alwaysOn", 0) if p == 1 else ("random", float(p))
    raise MongoError(ErrorCode.BadValue, "'mode' must be one of 'off', 'alwaysOn', '{times:n}', '{skip:n}' or "
                     "'{activationProbability:p}'")


_DATA_TYPES: dict[str, tuple[type, ...]] = {
    "failCommands": (list,), "errorLabels": (list,), "closeConnection": (bool,), "blockConnection": (bool,),
    "failInternalCommands": (bool,), "writeConcernError": (dict,), "appName": (str,), "namespace": (str,),
}


def check_data(name: str, data: dict) -> None:
    """Refuse data that would make the fail point misbehave silently (mongod notices some
    of these only when the fail point fires)."""
    for key, types in _DATA_TYPES.items():
        if key in data and not isinstance(data[key], types):
            raise MongoError(ErrorCode.TypeMismatch, f"{name}: '{key}' must be of type {types[0].__name__}")
    for key in ("failCommands", "errorLabels"):
        if any(not isinstance(x, str) for x in data.get(key, ())):
            raise MongoError(ErrorCode.TypeMismatch, f"{name}: '{key}' must be an array of strings")
    if "errorCode" in data and (not _int(data["errorCode"]) or data["errorCode"] == 0):
        raise MongoError(ErrorCode.TypeMismatch, f"{name}: 'errorCode' must be a non-zero integer")
    if data.get("blockConnection"):
        if "blockTimeMS" not in data:
            raise MongoError(ErrorCode.InvalidOptions, "must specify 'blockTimeMS' when 'blockConnection' is true")
        if not _int(data["blockTimeMS"]) or data["blockTimeMS"] < 0:
            raise MongoError(ErrorCode.InvalidOptions, "'blockTimeMS' must be non-negative")
    wce = data.get("writeConcernError")
    if wce is not None and not _int(wce.get("code")):
        raise MongoError(ErrorCode.TypeMismatch, f"{name}: 'writeConcernError.code' must be an integer")
    if name == FAIL_COMMAND and "failCommands" not in data:
        raise MongoError(ErrorCode.InvalidOptions, "failCommand: 'failCommands' (the names of the commands to "
                         "fail) is required")


def _require_test_commands(ctx: Ctx) -> None:
    if not test_commands_enabled(ctx.state):
        raise MongoError(ErrorCode.CommandNotFound, f"no such command: '{ctx.name}'")
    if ctx.db != "admin":
        raise MongoError(ErrorCode.Unauthorized, f"{ctx.name} may only be run against the admin database.")


def _fail_point_named(ctx: Ctx) -> FailPoint:
    name = ctx.arg
    fp = fail_points(ctx.state).get(name) if isinstance(name, str) else None
    if fp is None:
        raise MongoError(FailPointSetFailed, f"{name} not found")
    return fp


# -- commands ---------------------------------------------------------------------------------
@command("configureFailPoint", help="Test command (--enable-test-commands): set a fail point's mode and data "
         "(failCommand, failGetMoreAfterCursorCheckout).", needs_auth=False, in_txn=False)
async def configure_fail_point(ctx: Ctx) -> dict:
    _require_test_commands(ctx)
    fp = _fail_point_named(ctx)
    mode, value = parse_mode(ctx.body)
    data = ctx.body.get("data", {})
    if not isinstance(data, dict):
        raise MongoError(ErrorCode.TypeMismatch, "the 'data' option must be a JSON object")
    if mode != "off":
        check_data(fp.name, data)
    count = fp.configure(mode, value, dict(data))
    log.warning("set fail point %s to %s", fp.name, fp.describe(),
                extra={"attr": {"failPointName": fp.name, "failPoint": str(fp.describe())}})
    return {"count": count, "ok": 1.0}


@command("waitForFailPoint", help="Test command (--enable-test-commands): wait until a fail point fired "
         "timesEntered times (maxTimeMS required).", needs_auth=False, in_txn=False)
async def wait_for_fail_point(ctx: Ctx) -> dict:
    _require_test_commands(ctx)
    max_ms = ctx.body.get("maxTimeMS")
    if max_ms is None:
        raise MongoError(ErrorCode.FailedToParse, "Missing maxTimeMS")
    fp = _fail_point_named(ctx)
    target = ctx.body.get("timesEntered")
    if not _int(target):
        raise MongoError(ErrorCode.TypeMismatch, "BSON field 'waitForFailPoint.timesEntered' is missing or not a "
                         "number")
    deadline = time.monotonic() + float(max_ms) / 1000 if max_ms else None
    while fp.times_entered < target:
        if deadline is not None and time.monotonic() >= deadline:
            raise MongoError(ErrorCode.MaxTimeMSExpired, "operation exceeded time limit")
        await asyncio.sleep(0.01)
    return {"ok": 1.0}


# -- hooks ------------------------------------------------------------------------------------
def _app_name(ctx: Ctx) -> str | None:
    meta = ctx.conn.state.get("client")
    if meta is None and ctx.name in _HELLO:
        meta = ctx.body.get("client")         # the handshake that announces it
    app = meta.get("application") if isinstance(meta, dict) else None
    return app.get("name") if isinstance(app, dict) else None


def _matches(ctx: Ctx, cmd: Command, data: dict, names: list | None = None) -> bool:
    """mongod's ``shouldActivateFailCommandFailPoint``."""
    if cmd.name == "configureFailPoint":
        return False
    if ctx.conn.state.get(_INTERNAL) and not data.get("failInternalCommands"):
        return False
    if "appName" in data and _app_name(ctx) != data["appName"]:
        return False
    if "namespace" in data:
        coll = ctx.body.get(ctx.name)
        ns = f"{ctx.db}.{ctx.body.get('collection') if ctx.name == 'getMore' else coll}"
        if ns != data["namespace"]:
            return False
    names = data.get("failCommands", ()) if names is None else names
    return any(isinstance(n, str) and REGISTRY.get(n) is cmd for n in names)


def _is_change_stream_aggregate(ctx: Ctx) -> bool:
    pipeline = ctx.body.get("pipeline")
    return (ctx.name == "aggregate" and isinstance(pipeline, list) and bool(pipeline)
            and isinstance(pipeline[0], dict) and "$changeStream" in pipeline[0])


def _labels(ctx: Ctx, data: dict, code: int | None, wc_code: int | None = None, *,
            change_stream: bool = False) -> list[str]:
    if isinstance(data.get("errorLabels"), list):
        return list(data["errorLabels"])      # the fail point's labels replace the server's
    return error_labels(ctx, code, wc_code, change_stream=change_stream)


async def _before(ctx: Ctx, cmd: Command) -> Any:
    if not test_commands_enabled(ctx.state):
        return None
    if ctx.name in _HELLO and "internalClient" in ctx.body:
        ctx.conn.state[_INTERNAL] = True
    pts = fail_points(ctx.state)
    fc = pts[FAIL_COMMAND]
    if fc.active:
        data = fc.evaluate(lambda d: ("closeConnection" in d or "blockConnection" in d or "errorCode" in d)
                           and _matches(ctx, cmd, d))
        if data is not None:
            if data.get("closeConnection"):
                log.info("failCommand fail point: closing connection %d on %s", ctx.conn.id, ctx.name)
                return CLOSE_CONNECTION
            if data.get("blockConnection"):
                await asyncio.sleep(float(data["blockTimeMS"]) / 1000)
            if "errorCode" in data:
                code = int(data["errorCode"])
                raise MongoError(code, "Failing command via 'failCommand' failpoint",
                                 labels=_labels(ctx, data, code, change_stream=_is_change_stream_aggregate(ctx)))
    gm = pts[FAIL_GETMORE]
    if gm.active and cmd.name == "getMore":
        _fail_get_more(ctx, cmd, gm)
    return None


def _fail_get_more(ctx: Ctx, cmd: Command, fp: FailPoint) -> None:
    """``failGetMoreAfterCursorCheckout``: only for a cursor that exists and belongs to
    the namespace (other getMores fail as they would anyway)."""
    cid, coll = ctx.body.get("getMore"), ctx.body.get("collection")
    cursor = ctx.state.cursors.cursors.get(cid) if isinstance(cid, int) else None
    if cursor is None or cursor.ns != f"{ctx.db}.{coll}":
        return
    data = fp.evaluate(lambda d: _matches(ctx, cmd, d, ["getMore"]))
    if data is None:
        return
    code = int(data.get("errorCode", ErrorCode.InternalError))
    ctx.state.cursors.kill(cid)               # a getMore that fails closes its cursor
    raise MongoError(code, f"Hit the '{FAIL_GETMORE}' failpoint",
                     labels=_labels(ctx, data, code, change_stream=cursor.kind == "changeStream"))


def _supports_write_concern(ctx: Ctx, cmd: Command) -> bool:
    if "autocommit" in _original_body(ctx) and ctx.name not in _COMMIT_OR_ABORT:
        return False                          # statements of a transaction take no write concern
    return cmd.write or cmd.name in _WC_COMMANDS


async def _after(ctx: Ctx, cmd: Command, result: Any) -> Any:
    if not test_commands_enabled(ctx.state):
        return result
    if cmd.write:
        ctx.conn.state[_WROTE] = True
    fc = fail_points(ctx.state)[FAIL_COMMAND]
    if not fc.active or not isinstance(result, (dict, bytes, bytearray)) or not _supports_write_concern(ctx, cmd):
        return result
    data = fc.evaluate(lambda d: "writeConcernError" in d and _matches(ctx, cmd, d))
    if data is None:
        return result
    wce = dict(data["writeConcernError"])
    extra: dict[str, Any] = {"writeConcernError": wce}
    labels = _labels(ctx, data, None, int(wce["code"]))
    if labels:
        extra["errorLabels"] = labels
    if isinstance(result, dict):
        return {**result, **extra}            # a copy: a retried write's first reply is shared
    return bsonreply.append_fields(bytes(result), extra)


BEFORE_HOOKS.append(_before)
AFTER_HOOKS.append(_after)
