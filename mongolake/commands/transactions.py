"""Multi-document transactions over the wire; reads at a past cluster time.

A transaction belongs to a logical session (``lsid``) and a ``txnNumber``. Its
first command carries ``startTransaction: true, autocommit: false`` (and the only
allowed ``readConcern``); every later one ``autocommit: false`` and the same
number; ``commitTransaction``/``abortTransaction`` (admin) end it. :func:`prepare`
checks a command's transaction fields at dispatch and finds or begins the
session's :class:`SessionTxn`; :func:`run_in_transaction` runs the handler with the
engine transaction as the current one (``mongolake.engine.txn.using``), so reads
see the snapshot plus the transaction's own writes and writes are buffered.

A commit writes the session's record (``config.transactions``, see
:mod:`.sessions`) in the transaction's own WAL batch, so a retried commit answers
ok even after a restart; the records are loaded once at startup
(:func:`ensure_started`), which also starts the reaper (transaction lifetime,
session expiry). :func:`read_concern` handles ``afterClusterTime`` and snapshot
reads at ``atClusterTime`` outside transactions (time travel).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from bson.int64 import Int64
from bson.timestamp import Timestamp

from mongolake.engine.txn import TRANSIENT, Transaction, using, write_conflict
from mongolake.errors import ErrorCode, MongoError

from .args import type_name
from .context import Ctx, ServerState
from .registry import Command, command
from .sessions import RECORDS_COLL, RECORDS_DB, expire_sessions, lsid_key, record_doc, sweep_records

log = logging.getLogger("mongolake.commands")

# what mongod runs inside a transaction (anything else: OperationNotSupportedInTransaction)
TXN_COMMANDS = frozenset({"find", "getMore", "killCursors", "insert", "update", "delete", "findAndModify",
                          "findandmodify", "aggregate", "distinct", "create", "createIndexes", "bulkWrite",
                          "commitTransaction", "abortTransaction"})
END_COMMANDS = frozenset({"commitTransaction", "abortTransaction"})
_TXN_READ_LEVELS = ("local", "majority", "snapshot")
_CURSOR_COMMANDS = frozenset({"find", "aggregate"})
# commands that may create their collection (a collection created in the transaction may get indexes)
_CREATING_COMMANDS = frozenset({"create", "createIndexes", "insert", "update", "findAndModify", "findandmodify"})


@dataclass
class SessionTxn:
    """The newest transaction of one session."""
    number: int
    tx: Transaction | None
    state: str = "in_progress"          # in_progress / committed / aborted
    commit_seq: int = 0
    cursors: set[int] = field(default_factory=set)
    created: set[tuple[str, str]] = field(default_factory=set)

    @property
    def current_state(self) -> str:
        if self.state == "in_progress" and self.tx is not None and self.tx.state == "aborted":
            self.state = "aborted"      # a write conflict or the lifetime limit ended it in the engine
        return self.state


class _Registry:
    """Per-server transaction state (attached to the ServerState on first use)."""

    def __init__(self) -> None:
        self.txns: dict[Any, SessionTxn] = {}
        self.loaded = False
        self.reaper: asyncio.Task | None = None
        self.history_cursors: dict[int, Transaction] = {}   # cursor id -> the past it reads


def registry(state: ServerState) -> _Registry:
    reg = getattr(state, "_ml_txn_registry", None)
    if reg is None:
        reg = _Registry()
        state._ml_txn_registry = reg            # type: ignore[attr-defined]
    return reg


def ensure_started(state: ServerState) -> None:
    """Load the persisted session records (once) and start the reaper task."""
    reg = registry(state)
    if not reg.loaded:
        reg.loaded = True
        _load_records(state)
    if reg.reaper is None or reg.reaper.done():
        try:
            reg.reaper = asyncio.get_running_loop().create_task(_reap_loop(state))
        except RuntimeError:        # no running loop (unit tests calling handlers directly)
            pass


def _load_records(state: ServerState) -> None:
    eng = state.engine
    if eng.get_collection(RECORDS_DB, RECORDS_COLL) is None:
        return
    reg = registry(state)
    loop = asyncio.get_event_loop()
    n = 0
    for d in eng.find(RECORDS_DB, RECORDS_COLL, {}, as_raw=False):
        key = lsid_key(d.get("_id"))
        num = d.get("txnNum")
        if key is None or not isinstance(num, int):
            continue
        when = d.get("lastWriteDate")
        state.sessions.setdefault(key, when.timestamp() if isinstance(when, dt.datetime) else time.time())
        if d.get("state") == "committed":
            reg.txns[key] = SessionTxn(int(num), None, "committed")
        elif isinstance(d.get("reply"), dict):
            fut = loop.create_future()
            fut.set_result((dict(d["reply"]), 0))
            state.retry_results[key] = (int(num), fut)
        n += 1
    if n:
        log.info("loaded %d session records", n)


async def _reap_loop(state: ServerState) -> None:
    ticks = 0
    while True:
        await asyncio.sleep(1.0)
        ticks += 1
        try:
            sync_lifetime(state)
            state.engine.txns.expire()
            if ticks % 60 == 0:
                expire_sessions(state)
                sweep_records(state)
                reg = registry(state)
                for cid in [c for c in reg.history_cursors if c not in state.cursors.cursors]:
                    del reg.history_cursors[cid]
        except Exception:      # noqa: BLE001 - the reaper must survive
            log.exception("transaction reaper failed")


def sync_lifetime(state: ServerState) -> None:
    v = state.parameters.get("transactionLifetimeLimitSeconds", 60)
    if isinstance(v, (int, float)) and v > 0:
        state.engine.txns.lifetime = float(v)


# -- transaction fields at dispatch -------------------------------------------------------
def _bad(msg: str) -> MongoError:
    return MongoError(ErrorCode.InvalidOptions, msg)


def _no_such(n: int, msg: str | None = None) -> MongoError:
    return MongoError(ErrorCode.NoSuchTransaction,
                      msg or f"Given transaction number {n} does not match any in-progress transactions.",
                      labels=TRANSIENT)


def prepare(ctx: Ctx, cmd: Command) -> SessionTxn | None:
    """Check the transaction fields of a command; begin or find its transaction.
    None: the command does not run in a transaction."""
    b = ctx.body
    has_ac = "autocommit" in b
    start = b.get("startTransaction")
    if not has_ac:
        if "startTransaction" in b:
            raise _bad("Specifying startTransaction requires autocommit:false")
        if ctx.name in END_COMMANDS:
            raise _bad(f"{ctx.name} must be run within a transaction (lsid, txnNumber, autocommit: false)")
        return None
    if b["autocommit"] is not False:
        raise _bad("Specifying autocommit=true is not allowed.")
    if "lsid" not in b:
        raise _bad("Transaction number requires a session ID to also be specified")
    n = b.get("txnNumber")
    if n is None:
        raise _bad("'autocommit' field requires a transaction number to also be specified")
    if isinstance(n, bool) or not isinstance(n, int):
        raise MongoError(ErrorCode.TypeMismatch,
                         f"BSON field 'txnNumber' is the wrong type '{type_name(n)}', expected type 'long'")
    if start is not None and start is not True:
        raise _bad("Specifying startTransaction=false is not allowed.")
    if not ctx.state.is_replset:
        raise MongoError(ErrorCode.IllegalOperation,
                         "Transaction numbers are only allowed on a replica set member or mongos")
    name = ctx.name
    # refusals up to the transaction lookup leave an open transaction alone (as mongod)
    if name not in TXN_COMMANDS:
        raise MongoError(ErrorCode.OperationNotSupportedInTransaction,
                         f"Cannot run '{name}' in a multi-document transaction.")
    if name not in END_COMMANDS:
        if ctx.db in ("admin", "config", "local") and name != "bulkWrite":
            raise MongoError(ErrorCode.OperationNotSupportedInTransaction,
                             f"Cannot run command against the '{ctx.db}' database in a transaction.")
        if "writeConcern" in b:
            raise _bad("Cannot set write concern after starting a transaction.")
    key = lsid_key(b["lsid"])
    reg = registry(ctx.state)
    ensure_started(ctx.state)
    cur = reg.txns.get(key)
    n = int(n)
    if start:
        if name in END_COMMANDS:
            raise _bad(f"{name} may not start a transaction")
        _check_newer(ctx, key, cur, n)
        rc = b.get("readConcern")
        _txn_read_concern(ctx, rc)
        if cur is not None and cur.current_state == "in_progress":
            end_transaction(ctx.state, cur, abort=True)
        sync_lifetime(ctx.state)
        tx = ctx.engine.begin_transaction(info={"lsid": b["lsid"], "txnNumber": Int64(n)})
        cur = reg.txns[key] = SessionTxn(n, tx)
        _check_create_indexes(ctx, cur)
        return cur
    if cur is None or n > cur.number:
        raise _no_such(n)
    if n < cur.number:
        raise MongoError(ErrorCode.TransactionTooOld, f"Cannot run a command with txnNumber {n} on session "
                         f"because a newer transaction with txnNumber {cur.number} has already started.")
    if "readConcern" in b:
        raise _bad("Only the first command in a transaction may specify a readConcern")
    _check_create_indexes(ctx, cur)
    if name not in END_COMMANDS:
        st = cur.current_state
        if st == "aborted":
            raise _no_such(n, f"Transaction with txnNumber {n} has been aborted.")
        if st == "committed":
            raise MongoError(ErrorCode.TransactionCommitted, f"Transaction with txnNumber {n} has been committed.")
    return cur


def _check_create_indexes(ctx: Ctx, cur: SessionTxn) -> None:
    """As in mongod 4.4+: indexes may be created in a transaction only on a collection
    that does not exist yet or that this transaction created."""
    if ctx.name != "createIndexes" or not isinstance(ctx.arg, str):
        return
    ns = (ctx.db, ctx.arg)
    if ns not in cur.created and ctx.engine.get_collection(*ns) is not None:
        raise MongoError(ErrorCode.OperationNotSupportedInTransaction,
                         f"Cannot create new indexes on existing collection {ctx.db}.{ctx.arg} in a "
                         "multi-document transaction.")


def _check_newer(ctx: Ctx, key: Any, cur: SessionTxn | None, n: int) -> None:
    used = []
    if cur is not None:
        used.append(cur.number)
    rec = ctx.state.retry_results.get(key)
    if rec is not None:
        used.append(rec[0])
    if not used:
        return
    top = max(used)
    if n < top:
        raise MongoError(ErrorCode.TransactionTooOld, f"Cannot start transaction {n} on session because a newer "
                         f"transaction with txnNumber {top} has already started.")
    if n == top:
        raise MongoError(ErrorCode.ConflictingOperationInProgress,
                         f"Cannot start a transaction with txnNumber {n}: it has already been used on this session.")


def _txn_read_concern(ctx: Ctx, rc: Any) -> None:
    if not isinstance(rc, dict):
        return
    level = rc.get("level", "local")
    if level not in _TXN_READ_LEVELS:
        raise _bad("The readConcern level must be either 'local' (default), 'majority' or 'snapshot' in order "
                   "to run in a transaction.")
    at = rc.get("atClusterTime")
    if at is not None:
        if level != "snapshot":
            raise _bad("atClusterTime is only allowed with readConcern level snapshot")
        if not isinstance(at, Timestamp):
            raise MongoError(ErrorCode.TypeMismatch, "atClusterTime must be a Timestamp")
        now = ctx.engine.cluster_time
        if at > now:
            raise _bad(f"readConcern atClusterTime value {at} must not be greater than the current clusterTime {now}")
        if at < now:
            raise MongoError(ErrorCode.NotImplemented, "a transaction reading at a past atClusterTime is not "
                             "supported by MongoLake (a transaction reads the latest snapshot; use snapshot reads "
                             "with atClusterTime outside a transaction for time travel)")


def end_transaction(state: ServerState, cur: SessionTxn, *, abort: bool) -> None:
    """Abort an in-progress transaction (``abort``) and close its cursors."""
    if abort and cur.current_state == "in_progress":
        if cur.tx is not None:
            state.engine.abort_transaction(cur.tx)
        cur.state = "aborted"
    for cid in cur.cursors:
        state.cursors.kill(cid)
    cur.cursors.clear()


def end_sessions(state: ServerState, keys: set) -> None:
    """Abort the in-progress transactions of ending / killed / expired sessions."""
    reg = registry(state)
    for k in keys:
        cur = reg.txns.pop(k, None)
        if cur is not None:
            end_transaction(state, cur, abort=True)


async def run_in_transaction(ctx: Ctx, cmd: Command, cur: SessionTxn) -> Any:
    """Run ``cmd`` inside ``cur``'s engine transaction. Any failure aborts the
    transaction, as in mongod; so do write errors (reported in writeErrors, the batch
    stopped at the first one). A write conflict swallowed into a write error is
    answered as the WriteConflict (112, TransientTransactionError) it is."""
    if ctx.name in END_COMMANDS:
        return await cmd.handler(ctx)
    # the transaction fields are dispatch's business (some handlers parse strictly)
    ctx.body = {k: v for k, v in ctx.body.items() if k not in ("autocommit", "startTransaction")}
    tx = cur.tx
    before = set(ctx.state.cursors.cursors) if ctx.name in _CURSOR_COMMANDS else None
    ns = (ctx.db, ctx.arg) if ctx.name in _CREATING_COMMANDS and isinstance(ctx.arg, str) else None
    if ns is not None and ctx.engine.get_collection(*ns) is not None:
        ns = None
    try:
        with using(tx):
            result = await cmd.handler(ctx)
    except BaseException as e:
        end_transaction(ctx.state, cur, abort=True)
        if isinstance(e, MongoError) and e.code in (ErrorCode.WriteConflict, ErrorCode.NoSuchTransaction) \
                and "TransientTransactionError" not in e.labels:
            e.labels.append("TransientTransactionError")
        raise
    if tx is not None and tx.state == "aborted":
        end_transaction(ctx.state, cur, abort=True)
        raise write_conflict()
    if isinstance(result, dict) and (result.get("writeErrors") or result.get("nErrors")):
        end_transaction(ctx.state, cur, abort=True)
    if before is not None:
        cur.cursors.update(set(ctx.state.cursors.cursors) - before)
    if ns is not None and ctx.engine.get_collection(*ns) is not None:
        cur.created.add(ns)
    return result


# -- commit / abort ---------------------------------------------------------------------------
def _session_txn(ctx: Ctx) -> SessionTxn:
    key = lsid_key(ctx.body.get("lsid"))
    n = int(ctx.body["txnNumber"])
    cur = registry(ctx.state).txns.get(key)
    if cur is None or cur.number != n:
        raise _no_such(n)
    return cur


@command("commitTransaction", help="Commit the session's transaction (atomically, one WAL batch).",
         admin_only=True, write=True)
async def commit_transaction(ctx: Ctx) -> dict:
    cur = _session_txn(ctx)
    st = cur.current_state
    if st == "committed":               # a retried commit: same answer, once durable
        await ctx.durable(cur.commit_seq)
        return {"ok": 1.0}
    if st == "aborted":
        raise _no_such(cur.number, f"Transaction with txnNumber {cur.number} has been aborted.")
    tx = cur.tx
    eng = ctx.engine
    try:
        if tx is not None and tx.changes:
            with using(tx):
                eng.txns.put_document(tx, RECORDS_DB, RECORDS_COLL,
                                      record_doc(ctx.body["lsid"], cur.number, state="committed"))
        seq = eng.commit_transaction(tx, wait=False) if tx is not None else 0
    except BaseException:
        end_transaction(ctx.state, cur, abort=True)
        raise
    cur.state, cur.commit_seq = "committed", seq
    cur.tx = None
    end_transaction(ctx.state, cur, abort=False)
    await ctx.durable(seq)
    return {"ok": 1.0}


@command("abortTransaction", help="Abort the session's transaction (nothing of it remains).", admin_only=True,
         write=True)
async def abort_transaction(ctx: Ctx) -> dict:
    cur = _session_txn(ctx)
    st = cur.current_state
    if st == "committed":
        raise MongoError(ErrorCode.TransactionCommitted,
                         f"Transaction with txnNumber {cur.number} has been committed.")
    if st == "aborted":
        raise _no_such(cur.number, f"Transaction with txnNumber {cur.number} has been aborted.")
    end_transaction(ctx.state, cur, abort=True)
    cur.tx = None
    return {"ok": 1.0}


# -- read concern outside transactions ------------------------------------------------------
async def read_concern(ctx: Ctx) -> Transaction | None:
    """``afterClusterTime`` (causal consistency: one node's writes are visible at
    once, so this only makes sure the server's clock has reached that time) and
    snapshot reads at ``atClusterTime`` (time travel: returns the history view to
    read under). A time beyond the server's clock and the wall clock is refused."""
    rc = ctx.body.get("readConcern")
    if ctx.name == "getMore":                  # a cursor opened at a past cluster time stays there
        return _history_cursor(ctx)
    if not isinstance(rc, dict):
        return None
    after = rc.get("afterClusterTime")
    if after is not None:
        if not isinstance(after, Timestamp):
            raise MongoError(ErrorCode.TypeMismatch, "afterClusterTime must be a Timestamp")
        if rc.get("level") == "available":
            raise _bad("afterClusterTime is not allowed for readConcern level available")
        await _reach(ctx, after, "afterClusterTime")
    at = rc.get("atClusterTime")
    if at is None:
        return None
    if rc.get("level") != "snapshot":
        raise _bad("atClusterTime is only allowed with readConcern level snapshot")
    if after is not None:
        raise _bad("Specifying a timestamp for readConcern snapshot in a causally consistent session is not "
                   "allowed")
    if not isinstance(at, Timestamp):
        raise MongoError(ErrorCode.TypeMismatch, "atClusterTime must be a Timestamp")
    await _reach(ctx, at, "atClusterTime")
    if at >= ctx.engine.cluster_time or ctx.name not in _HISTORY_COMMANDS or "autocommit" in ctx.body:
        return None
    return ctx.engine.txns.at_cluster_time(at)


def _history_cursor(ctx: Ctx) -> Transaction | None:
    reg = getattr(ctx.state, "_ml_txn_registry", None)
    if reg is None or not reg.history_cursors or not isinstance(ctx.arg, int):
        return None
    cid = int(ctx.arg)
    if cid not in ctx.state.cursors.cursors:
        reg.history_cursors.pop(cid, None)
        return None
    return reg.history_cursors.get(cid)


async def run_with_history(ctx: Ctx, cmd: Command, view: Transaction) -> Any:
    """Run a read under a history view; cursors it opens keep reading there."""
    before = set(ctx.state.cursors.cursors)
    with using(view):
        result = await cmd.handler(ctx)
    if ctx.name != "getMore":
        reg = registry(ctx.state)
        for cid in set(ctx.state.cursors.cursors) - before:
            reg.history_cursors[cid] = view
    return result


async def _reach(ctx: Ctx, ts: Timestamp, what: str) -> None:
    """Make sure the cluster time is at least ``ts``. Times we handed out always are;
    after a restart the clock restarts from the newest write still in the WAL, so a
    client's older-than-now time moves the clock forward (no write needed: every
    write is already visible)."""
    eng = ctx.engine
    if ts <= eng.cluster_time:
        return
    now = time.time()
    if ts.time > int(now):
        raise _bad(f"readConcern {what} value {ts} must not be greater than the current clusterTime "
                   f"{eng.cluster_time}")
    if ts.time == int(now):
        await asyncio.sleep(int(now) + 1 - now)     # the next second is past any inc of this one
    with eng.lock:
        eng.next_cluster_time()


_HISTORY_COMMANDS = frozenset({"find", "aggregate", "count", "distinct"})
