"""Resource limits of a running server.

* ``maxTimeMS``: before a command runs, :data:`mongolake.deadline.DEADLINE` is set
  from its ``maxTimeMS`` (scans, cursors and pipelines check it and stop with
  MaxTimeMSExpired, 50). As in MongoDB the limit of a ``find``/``aggregate`` is
  a budget for the whole cursor: what the first batch did not use is left for
  its ``getMore``\\ s (a getMore's own ``maxTimeMS`` is the await time of tailable
  cursors, e.g. change streams, and is left to them).
* A bound on concurrent expensive operations (reads, aggregations, compaction,
  flush, index builds, drops): at most ``max_concurrent_ops`` run at once, the
  others wait (within their ``maxTimeMS``, if any) for a slot. A connection runs
  one request at a time, so it holds at most one slot.
* An idle timeout: a connection with no complete request for ``idle_timeout``
  seconds and nothing running is closed (also one that sent half a message and
  stopped: slow-loris clients cannot pin connection slots).
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bson.raw_bson import RawBSONDocument

from mongolake import deadline

log = logging.getLogger("mongolake.security")

EXPENSIVE = frozenset({"find", "getMore", "aggregate", "count", "distinct", "explain", "compact", "fsync",
                       "validate", "createIndexes", "drop", "dropDatabase", "renameCollection", "collStats",
                       "dbStats", "dataSize", "findAndModify", "findandmodify", "update", "delete"})
_CURSOR_OPENERS = frozenset({"find", "aggregate"})
_SLOT = "_mongolake_op_slot"
LAST_ACTIVE = "_mongolake_last_active"


def _max_time(body: dict) -> float | None:
    v = body.get("maxTimeMS")
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        return None
    return float(v) / 1000.0


class Limits:
    def __init__(self, *, max_concurrent_ops: int = 16, idle_timeout: float = 0.0):
        self.max_concurrent_ops = max(1, int(max_concurrent_ops))
        self.idle_timeout = float(idle_timeout or 0.0)
        self._sem = asyncio.Semaphore(self.max_concurrent_ops)
        self.budgets: dict[int, float] = {}       # cursor id -> seconds of maxTimeMS left
        self.stats = {"idle_closed": 0, "op_waits": 0, "op_wait_timeouts": 0}

    # -- per command -------------------------------------------------------------
    async def before(self, ctx: Any, name: str) -> None:
        """Set the deadline, take an operation slot for expensive commands."""
        now = time.monotonic()
        conn = ctx.conn
        conn.state[LAST_ACTIVE] = now
        limit = None
        if name == "getMore":
            cid = ctx.body.get("getMore")
            if isinstance(cid, int) and cid in self.budgets:
                limit = self.budgets[cid]
        else:
            limit = _max_time(ctx.body)
        dl = None if limit is None else now + limit
        deadline.DEADLINE.set(dl)
        ctx.conn.state["_mongolake_cmd_start"] = (now, limit)
        if name in EXPENSIVE and not conn.state.get(_SLOT) and not _waits_for_data(ctx, name):
            if self._sem.locked():
                self.stats["op_waits"] += 1
            try:
                if dl is None:
                    await self._sem.acquire()
                else:
                    await asyncio.wait_for(self._sem.acquire(), timeout=max(0.0, dl - time.monotonic()))
            except asyncio.TimeoutError:
                self.stats["op_wait_timeouts"] += 1
                raise deadline.expired_error() from None
            conn.state[_SLOT] = True

    def after(self, ctx: Any, name: str, result: Any) -> None:
        """Keep a cursor's unused maxTimeMS for its getMores; free the slot."""
        start, limit = ctx.conn.state.pop("_mongolake_cmd_start", (None, None))
        if limit is not None and start is not None:
            left = max(limit - (time.monotonic() - start), 0.0)
            if name in _CURSOR_OPENERS and not _is_change_stream(ctx.body):
                cid = _cursor_id(result)
                if cid:
                    self.budgets[cid] = left
            elif name == "getMore" and isinstance(ctx.body.get("getMore"), int):
                cid = ctx.body.get("getMore")
                if _cursor_id(result):
                    self.budgets[cid] = left
                else:
                    self.budgets.pop(cid, None)
        ctx.conn.state[LAST_ACTIVE] = time.monotonic()
        self.release(ctx.conn)

    def release(self, conn: Any) -> None:
        """Give back ``conn``'s operation slot (also after a failed command)."""
        if conn.state.pop(_SLOT, None):
            self._sem.release()

    def prune(self, live_cursor_ids: Any) -> None:
        for cid in [c for c in self.budgets if c not in live_cursor_ids]:
            del self.budgets[cid]

    # -- idle connections --------------------------------------------------------
    def idle_connections(self, connections: list[Any], busy_conn_ids: set[int], now: float | None = None
                         ) -> list[Any]:
        if not self.idle_timeout:
            return []
        now = time.monotonic() if now is None else now
        out = []
        for c in connections:
            if c.closed or c.id in busy_conn_ids:
                continue
            last = c.state.get(LAST_ACTIVE)
            if last is None:        # nothing complete received since accept
                last = c.state.setdefault(LAST_ACTIVE, now - (time.time() - c.created_at))
            if now - last > self.idle_timeout:
                out.append(c)
        return out

    async def reap_loop(self, server: Any, interval: float | None = None) -> None:
        """Close idle connections of ``server`` (a MongoLakeServer) until cancelled."""
        interval = interval or (min(max(self.idle_timeout / 4, 0.05), 5.0) if self.idle_timeout else 5.0)
        while True:
            await asyncio.sleep(interval)
            wire, st = server.wire, server.state
            if wire is None:
                continue
            busy = {op.get("connectionId") for op in list(st.ops.values())}
            for c in self.idle_connections(wire.connections, busy):
                self.stats["idle_closed"] += 1
                log.info("closing connection %d from %s: idle for more than %g s", c.id, c.peer, self.idle_timeout)
                c.abort()
            self.prune(st.cursors.cursors)


def _waits_for_data(ctx: Any, name: str) -> bool:
    """A getMore on a change stream (or any cursor that waits for new data): it may
    wait up to its maxTimeMS and must not hold a slot meanwhile."""
    if name != "getMore":
        return False
    cid = ctx.body.get("getMore")
    mgr = getattr(getattr(ctx, "state", None), "cursors", None)
    if mgr is None or not isinstance(cid, int):
        return False
    cur = mgr.cursors.get(cid)
    return cur is not None and getattr(cur.it, "get_more", None) is not None


def _is_change_stream(body: dict) -> bool:
    p = body.get("pipeline")
    return isinstance(p, list) and bool(p) and isinstance(p[0], dict) and "$changeStream" in p[0]


def _cursor_id(result: Any) -> int:
    """The cursor id of a cursor reply (raw BSON or dict); 0 if none."""
    try:
        doc = RawBSONDocument(bytes(result)) if isinstance(result, (bytes, bytearray)) else result
        cur = doc.get("cursor") if hasattr(doc, "get") else None
        return int(cur.get("id", 0)) if cur is not None else 0
    except Exception:   # noqa: BLE001 - a reply we cannot read has no cursor to budget
        return 0
