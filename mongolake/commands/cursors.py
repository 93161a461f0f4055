"""Server-side cursors: batches, the 16 MiB cap, idle timeout, ownership."""
from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from mongolake.errors import ErrorCode, MongoError

MAX_BATCH_BYTES = 16 * 1024 * 1024
DEFAULT_FIRST_BATCH = 101
IDLE_TIMEOUT = 600.0


@dataclass
class Cursor:
    id: int
    ns: str
    it: Iterator[bytes]
    conn_id: int
    lsid: Any = None
    no_timeout: bool = False
    last_used: float = field(default_factory=time.time)
    batch_size: int = 0
    returned: int = 0
    limit: int = 0
    kind: str = "find"
    extra: dict = field(default_factory=dict)
    exhausted: bool = False
    _peek: list = field(default_factory=list)

    def next_batch(self, n: int) -> list[bytes]:
        """Up to ``n`` documents (0 = no count limit) and at most 16 MiB."""
        out: list[bytes] = []
        size = 0
        want = n if n > 0 else 1 << 62
        if self.limit:
            want = min(want, self.limit - self.returned)
        while len(out) < want:
            if self._peek:
                raw = self._peek.pop()
            else:
                try:
                    raw = next(self.it)
                except StopIteration:
                    self.exhausted = True
                    break
            if out and size + len(raw) > MAX_BATCH_BYTES:
                self._peek.append(raw)
                break
            out.append(raw)
            size += len(raw)
        self.returned += len(out)
        if self.limit and self.returned >= self.limit:
            self.exhausted = True
        if not self.exhausted and not self._peek:
            # look ahead so a cursor that has just run out answers id 0 now
            try:
                self._peek.append(next(self.it))
            except StopIteration:
                self.exhausted = True
        self.last_used = time.time()
        return out


class CursorManager:
    def __init__(self):
        self.cursors: dict[int, Cursor] = {}
        self._ids = itertools.count(random.randint(1 << 40, 1 << 50))
        self.timed_out = 0

    def register(self, ns: str, it: Iterator[bytes], conn_id: int, **kw: Any) -> Cursor:
        cur = Cursor(next(self._ids), ns, it, conn_id, **kw)
        self.cursors[cur.id] = cur
        return cur

    def get(self, cursor_id: int, ns: str) -> Cursor:
        cur = self.cursors.get(cursor_id)
        if cur is None:
            raise MongoError(ErrorCode.CursorNotFound, f"cursor id {cursor_id} not found")
        if cur.ns != ns:
            raise MongoError(ErrorCode.Unauthorized,
                             f"Requested getMore on namespace '{ns}', but cursor belongs to a different namespace {cur.ns}")
        return cur

    def kill(self, cursor_id: int) -> bool:
        cur = self.cursors.pop(cursor_id, None)
        if cur is not None:
            close = getattr(cur.it, "close", None)
            if close:
                close()
        return cur is not None

    def kill_for_connection(self, conn_id: int) -> None:
        # MongoDB keeps cursors alive across connections (they belong to sessions);
        # only cursors explicitly tied to a connection (exhaust/tailable) die with it.
        pass

    def kill_for_sessions(self, lsids: set) -> int:
        ids = [c.id for c in self.cursors.values() if c.lsid is not None and c.lsid in lsids]
        for i in ids:
            self.kill(i)
        return len(ids)

    def reap(self, now: float | None = None) -> int:
        now = now or time.time()
        dead = [c.id for c in self.cursors.values() if not c.no_timeout and now - c.last_used > IDLE_TIMEOUT]
        for i in dead:
            self.kill(i)
        self.timed_out += len(dead)
        return len(dead)
