"""Multi-document transactions: snapshot isolation, document-level write conflicts.

A transaction captures, at its start sequence ``S``, every collection's table
snapshot and memtables (references only). Its reads see the newest versions at or
below ``S`` plus its own writes (an overlay); memtables keep older versions while
a transaction may need them. Writes are buffered in the overlay and take a
document lock: a document another open transaction wrote, or that anyone
committed after ``S``, is a WriteConflict (112, TransientTransactionError) — first
committer wins. Commit applies the overlay as one batch (one WAL record, one
visibility point, one change-stream transaction).

Two lighter kinds share the machinery (``Transaction.kind``):

* ``capture`` (:meth:`TxnManager.capture`): one write command's statements read the
  live state plus their own writes, without locks or snapshot, and commit as one
  batch together with extra documents (the retryable-write record in
  ``config.transactions``): the record is durable exactly when the write is.
* ``history`` (:meth:`TxnManager.at_cluster_time`): a read-only view of every
  collection as it was at a past cluster time (table version + change log).
"""
from __future__ import annotations

import contextvars
import itertools
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import bson
from bson.timestamp import Timestamp

from mongolake.errors import ErrorCode, MongoError
from mongolake.query import keystring
from mongolake.query.bsonorder import CODEC_OPTIONS

from .collection import WAL_APP_ID, Collection, get_at, view_at
from .memtable import Entry, Memtable
from .records import DDL_OPS, DELETE, REPLACE, Change, ChangeBatch

if TYPE_CHECKING:
    from .engine import Engine

CURRENT: contextvars.ContextVar["Transaction | None"] = contextvars.ContextVar("mongolake_txn", default=None)
TRANSIENT = ["TransientTransactionError"]


def write_conflict(msg: str = "Write conflict during plan execution and yielding is disabled.") -> MongoError:
    return MongoError(ErrorCode.WriteConflict, msg, labels=TRANSIENT)


@dataclass
class Transaction:
    id: int
    start_seq: int
    started: float
    info: dict                                     # {lsid, txnNumber} for the WAL and events
    captured: dict[str, tuple] = field(default_factory=dict)     # uuid -> (snapshot, memtables)
    overlay: dict[str, dict[bytes, Entry]] = field(default_factory=dict)   # uuid -> key -> own version
    changes: list[Change] = field(default_factory=list)
    state: str = "active"                          # active / committed / aborted
    commit_seq: int = 0
    kind: str = "txn"                              # txn / capture / history (see the module doc)
    at: Timestamp | None = None                    # history: the cluster time read
    manager: "TxnManager | None" = None

    def view(self, c: Collection) -> tuple[Any, list]:
        if self.kind == "capture":
            return c.snapshot, c.memtables()
        got = self.captured.get(c.uuid)
        if got is None:
            if self.kind == "history":
                got = self.captured[c.uuid] = self.manager._history_view(c, self.at)
            else:                       # a collection created after the transaction started
                got = self.captured[c.uuid] = (c.snapshot, [])
        return got


class TxnManager:
    def __init__(self, engine: "Engine", lifetime: float = 60.0):
        self.engine = engine
        self.lifetime = lifetime
        self.active: dict[int, Transaction] = {}
        self.locks: dict[tuple[str, bytes], int] = {}          # (uuid, key) -> txn id
        self.recent: dict[tuple[str, bytes], int] = {}         # (uuid, key) -> last committed seq
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def horizon(self) -> int:
        """The oldest open transaction's start sequence (0 when none is open)."""
        if not self.active:
            return 0
        return min(t.start_seq for t in self.active.values())

    def begin(self, info: dict | None = None) -> Transaction:
        eng = self.engine
        with eng.lock:
            s = eng.wal.last_seq
            tx = Transaction(next(self._ids), s, time.time(), dict(info or {}))
            for uuid, c in eng.collections.items():
                tx.captured[uuid] = (c.snapshot, c.memtables())
            self.active[tx.id] = tx
        return tx

    def note_committed(self, changes: list[Change], seq: int) -> None:
        """Called by commit_batch (engine lock held) while transactions are open."""
        for ch in changes:
            self.recent[(ch.uuid, ch.key)] = seq

    # -- reads ---------------------------------------------------------------
    def entry(self, tx: Transaction, c: Collection, key: bytes) -> tuple[bool, Entry | None]:
        """(found_in_memory, entry) for ``key`` as ``tx`` sees it (own writes first)."""
        own = tx.overlay.get(c.uuid, {}).get(key)
        if own is not None:
            return True, own
        if tx.kind == "capture":
            e = c.mem_get(key)
            return (e is not None), e
        _snap, mts = tx.view(c)
        e = get_at(mts, key, tx.start_seq)
        return (e is not None), e

    def mem_view(self, tx: Transaction, c: Collection) -> dict[bytes, Entry]:
        if tx.kind == "capture":
            out = c.mem_view()
            out.update(tx.overlay.get(c.uuid, {}))
            return out
        _snap, mts = tx.view(c)
        out = view_at(mts, tx.start_seq)
        out.update(tx.overlay.get(c.uuid, {}))
        return out

    # -- writes --------------------------------------------------------------
    def write(self, tx: Transaction, c: Collection, change: Change) -> None:
        """Buffer ``change`` in ``tx`` after the conflict checks."""
        if tx.kind == "history":
            raise MongoError(ErrorCode.IllegalOperation, "a read at a past cluster time cannot write")
        if tx.kind == "capture":
            tx.overlay.setdefault(c.uuid, {})[change.key] = Entry(change.doc, 1 << 62)
            tx.changes.append(change)
            return
        self.check_alive(tx)
        k = (c.uuid, change.key)
        owner = self.locks.get(k)
        if (owner is not None and owner != tx.id) or self.recent.get(k, 0) > tx.start_seq:
            self._release(tx, "aborted")        # as in MongoDB: the transaction is over, retry it whole
            raise write_conflict()
        self.locks[k] = tx.id
        tx.overlay.setdefault(c.uuid, {})[change.key] = Entry(change.doc, 1 << 62)
        tx.changes.append(change)

    def check_alive(self, tx: Transaction) -> None:
        if tx.state == "aborted":
            raise MongoError(ErrorCode.NoSuchTransaction, "Transaction has been aborted.", labels=TRANSIENT)
        if time.time() - tx.started > self.lifetime:
            self.abort(tx)
            raise MongoError(ErrorCode.NoSuchTransaction,
                             "Transaction has been aborted because it exceeded transactionLifetimeLimitSeconds",
                             labels=TRANSIENT)

    def commit(self, tx: Transaction) -> int:
        eng = self.engine
        if tx.state == "committed":
            return tx.commit_seq
        self.check_alive(tx)
        with eng.lock:
            for ch in tx.changes:
                if self.recent.get((ch.uuid, ch.key), 0) > tx.start_seq:
                    self._release(tx, "aborted")
                    raise write_conflict("Write conflict while committing the transaction")
            # collapse to the last change per document, keeping first-seen order
            last: dict[tuple[str, bytes], Change] = {}
            for ch in tx.changes:
                last.pop((ch.uuid, ch.key), None)
                last[(ch.uuid, ch.key)] = ch
            live = [ch for ch in last.values() if ch.uuid in eng.collections]
            seq = eng.commit_batch(ChangeBatch(live, txn=tx.info)) if live else eng.wal.last_seq
            tx.commit_seq = seq
            self._release(tx, "committed")
        return seq

    def abort(self, tx: Transaction) -> None:
        with self.engine.lock:
            if tx.state == "active":
                self._release(tx, "aborted")

    def _release(self, tx: Transaction, state: str) -> None:
        tx.state = state
        self.active.pop(tx.id, None)
        for k in [k for k, owner in self.locks.items() if owner == tx.id]:
            del self.locks[k]
        tx.captured.clear()
        if not self.active:
            self.recent.clear()
        else:
            h = self.horizon
            self.recent = {k: s for k, s in self.recent.items() if s > h}

    def expire(self) -> int:
        now = time.time()
        old = [t for t in self.active.values() if now - t.started > self.lifetime]
        for t in old:
            self.abort(t)
        return len(old)


    # -- captures (one retryable write command) -----------------------------
    def capture(self) -> Transaction:
        """A write capture: run a command's writes under ``using(tx)`` while holding
        ``engine.lock``, add documents with :meth:`put_document`, then
        :meth:`commit_capture`. Reads see the live state plus the captured writes."""
        return Transaction(0, 1 << 62, time.time(), {}, kind="capture")

    def commit_capture(self, tx: Transaction) -> int:
        """Commit everything captured as one batch, every change in order (0: nothing)."""
        eng = self.engine
        with eng.lock:
            live = [ch for ch in tx.changes if ch.uuid in eng.collections]
            seq = eng.commit_batch(ChangeBatch(live)) if live else 0
            tx.state, tx.commit_seq = "committed", seq
            tx.overlay.clear()
        return seq

    def put_document(self, tx: Transaction, db: str, coll: str, doc: dict) -> None:
        """Insert or replace ``doc`` (by ``_id``) in ``db.coll`` as part of ``tx``
        (the collection is created now if needed). Used for session records."""
        eng = self.engine
        with eng.lock:
            c = eng.collection_for_write(db, coll)
            raw = bson.encode(doc, codec_options=CODEC_OPTIONS)
            self.write(tx, c, Change(c.uuid, REPLACE, keystring.encode_key(doc["_id"]), raw))

    # -- reads at a past cluster time ------------------------------------------
    def at_cluster_time(self, ts: Timestamp) -> Transaction:
        """A read-only view of the data as of cluster time ``ts`` (time travel): per
        collection, the newest table version committed before ``ts``'s second plus the
        change log's later changes up to ``ts``. Use it with ``using(tx)`` for reads."""
        return Transaction(0, 1 << 62, time.time(), {}, kind="history", at=ts, manager=self)

    def _history_view(self, c: Collection, ts: Timestamp) -> tuple[Any, list]:
        eng = self.engine
        cutoff_ms = ts.time * 1000        # batches of an earlier commit all have cluster time < ts
        version = None
        for h in sorted(c.table.history(), key=lambda h: h.version, reverse=True):
            if h.timestamp_ms < cutoff_ms:
                version = h.version
                break
        if version is None:
            snap = c.table.snapshot(0)
            base = 0
        else:
            try:
                snap = c.table.snapshot(version)
            except Exception as e:      # vacuumed away
                raise MongoError(ErrorCode.SnapshotTooOld, f"the table history of {c.ns} no longer holds "
                                 f"version {version} (needed for atClusterTime {ts})") from e
            base = snap.app_versions.get(WAL_APP_ID, 0)
        mt = Memtable()
        after = base
        while True:
            recs = eng.changelog.read(after, 10_000)
            if not recs:
                break
            done = False
            for r in recs:
                after = max(after, r.seq)
                if r.cluster_time is not None and r.cluster_time > ts:
                    done = True
                    break
                if r.uuid != c.uuid or r.op in DDL_OPS:
                    continue
                key_doc = r.document_key
                if key_doc is None:
                    continue
                mt.put(keystring.encode_key(key_doc["_id"]), None if r.op == DELETE else r.doc, r.seq)
            if done:
                break
        return snap, [mt]


@contextmanager
def using(tx: Transaction | None) -> Iterator[None]:
    token = CURRENT.set(tx)
    try:
        yield
    finally:
        CURRENT.reset(token)
