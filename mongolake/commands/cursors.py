"""Server-side cursors: batches, the 16 MiB cap, idle timeout, ownership.

A :class:`Cursor` wraps an iterator of raw BSON documents. Batches stop at the
requested count or when the reply would pass 16 MiB (the first document of a
batch is always sent, so a single maximum-size document still goes out).
:class:`CursorManager` owns every open cursor; :meth:`CursorManager.reap`
closes cursors idle for longer than ``IDLE_TIMEOUT`` (10 minutes, MongoDB's
``cursorTimeoutMillis`` default) unless they were opened with
``noCursorTimeout``. The clock is injectable so the reaper is testable.
"""
from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from mongolake import deadline
from mongolake.errors import ErrorCode, MongoError

MAX_BATCH_BYTES = 16 * 1024 * 1024
DEFAULT_FIRST_BATCH = 101
IDLE_TIMEOUT = 600.0
_ELEMENT_OVERHEAD = 2          # type byte + NUL after the array index key


def _element_size(i: int, raw: bytes) -> int:
    """Bytes a document adds to a BSON array at position ``i``."""
    return _ELEMENT_OVERHEAD + len(str(i)) + len(raw)


@dataclass
class Cursor:
    id: int
    ns: str
    it: Iterator[bytes]
    conn_id: int
    lsid: Any = None
    no_timeout: bool = False
    last_used: float = 0.0
    batch_size: int = 0
    returned: int = 0
    limit: int = 0
    kind: str = "find"
    extra: dict = field(default_factory=dict)
    exhausted: bool = False
    clock: Callable[[], float] = time.time
    _peek: list = field(default_factory=list)
    busy: bool = False
    closed: bool = False

    def __post_init__(self) -> None:
        if not self.last_used:
            self.last_used = self.clock()

    def next_batch(self, n: int, max_bytes: int = MAX_BATCH_BYTES) -> list[bytes]:
        """Up to ``n`` documents (0 = no count limit) and at most ``max_bytes`` of
        array payload; the first document is always taken."""
        out: list[bytes] = []
        size = 0
        want = n if n > 0 else 1 << 62
        if self.limit:
            want = min(want, self.limit - self.returned)
        while len(out) < want:
            if not len(out) & 255:
                deadline.check()                    # maxTimeMS (pipelines between scan and reply)
            if self._peek:
                raw = self._peek.pop()
            else:
                try:
                    raw = next(self.it)
                except StopIteration:
                    self.exhausted = True
                    break
            grow = _element_size(len(out), raw)
            if out and size + grow > max_bytes:
                self._peek.append(raw)
                break
            out.append(raw)
            size += grow
        self.returned += len(out)
        if self.limit and self.returned >= self.limit:
            self.exhausted = True
        if not self.exhausted and not self._peek:
            # look ahead so a cursor that has just run out answers id 0 now
            try:
                self._peek.append(next(self.it))
            except StopIteration:
                self.exhausted = True
        self.last_used = self.clock()
        return out

    async def next_batch_async(self, n: int, max_bytes: int = MAX_BATCH_BYTES) -> list[bytes]:
        """:meth:`next_batch` in a worker thread (the context, e.g. maxTimeMS and a
        transaction, goes with it). While it runs the cursor is busy: a kill then
        only marks it, and the thread closes the iterator when it is done."""
        self.busy = True
        try:
            return await asyncio.to_thread(self.next_batch, n, max_bytes)
        finally:
            self.busy = False
            if self.closed:
                self.close()

    def close(self) -> None:
        self.closed = True
        if self.busy:
            return                              # the worker closes it when its batch is done
        close = getattr(self.it, "close", None)
        if close is not None:
            try:
                close()
            except ValueError:                  # "generator already executing": a worker has it
                pass


class CursorManager:
    """Every open cursor of the server, by id."""

    def __init__(self, clock: Callable[[], float] = time.time, idle_timeout: float = IDLE_TIMEOUT):
        self.cursors: dict[int, Cursor] = {}
        self._ids = itertools.count(random.randint(1 << 40, 1 << 50))
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.timed_out = 0
        self.opened_total = 0
        # cursors killed because their collection went away: id -> reason (answered once)
        self._invalidated: dict[int, str] = {}

    def register(self, ns: str, it: Iterator[bytes], conn_id: int, **kw: Any) -> Cursor:
        cur = Cursor(next(self._ids), ns, it, conn_id, clock=self.clock, **kw)
        self.cursors[cur.id] = cur
        self.opened_total += 1
        return cur

    def get(self, cursor_id: int, ns: str) -> Cursor:
        cur = self.cursors.get(cursor_id)
        if cur is None:
            reason = self._invalidated.pop(cursor_id, None)
            if reason is not None:
                raise MongoError(ErrorCode.QueryPlanKilled, f"cursor id {cursor_id} killed: {reason}")
            raise MongoError(ErrorCode.CursorNotFound, f"cursor id {cursor_id} not found")
        if cur.ns != ns:
            raise MongoError(ErrorCode.Unauthorized,
                             f"Requested getMore on namespace '{ns}', but cursor belongs to a different "
                             f"namespace {cur.ns}")
        cur.last_used = self.clock()
        return cur

    def kill(self, cursor_id: int) -> bool:
        cur = self.cursors.pop(cursor_id, None)
        if cur is not None:
            cur.close()
        return cur is not None

    def invalidate(self, ns: str | None = None, *, db: str | None = None, reason: str) -> int:
        """Kill the cursors over ``ns`` (or over any collection of ``db``) because the
        collection was dropped or renamed; their next getMore answers QueryPlanKilled (175)."""
        def hit(c: Cursor) -> bool:
            if c.kind == "changeStream":      # it must go on to deliver the drop/rename and invalidate
                return False
            if ns is not None:
                return c.ns == ns
            return c.ns.startswith(f"{db}.") and not c.ns.startswith(f"{db}.$cmd")
        ids = [c.id for c in self.cursors.values() if hit(c)]
        for i in ids:
            self.kill(i)
            self._invalidated[i] = reason
        while len(self._invalidated) > 10_000:
            self._invalidated.pop(next(iter(self._invalidated)))
        return len(ids)

    def kill_for_connection(self, conn_id: int) -> None:
        """MongoDB keeps cursors alive across connections (they belong to sessions):
        a driver may run getMore on another pooled connection. Nothing to do."""

    def kill_for_sessions(self, lsids: set) -> int:
        ids = [c.id for c in self.cursors.values() if c.lsid is not None and c.lsid in lsids]
        for i in ids:
            self.kill(i)
        return len(ids)

    def reap(self, now: float | None = None) -> int:
        """Close cursors idle for longer than the timeout; return how many."""
        now = self.clock() if now is None else now
        dead = [c.id for c in self.cursors.values()
                if not c.no_timeout and now - c.last_used > self.idle_timeout]
        for i in dead:
            self.kill(i)
        self.timed_out += len(dead)
        return len(dead)
