"""TTL indexes: a background thread deletes expired documents.

Every ``interval`` seconds (MongoDB's ``ttlMonitorSleepSecs`` is 60), for each
index with ``expireAfterSeconds`` on a single field, documents whose field is a
date (or an array holding a date) older than ``now - expireAfterSeconds`` are
deleted through the engine's ordinary delete path, so they reach the WAL,
change streams (``delete`` events) and the memtables like any other delete. The
delete's filter ``{field: {$lt: cutoff}}`` matches dates only (type bracketing)
and uses the index itself; a ``partialFilterExpression`` is added to it.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger("mongolake.ttl")


def ttl_pass(engine: "Engine", now: dt.datetime | None = None) -> int:
    """Delete every expired document once; returns how many were deleted."""
    now = now or dt.datetime.now(dt.timezone.utc)
    deleted = 0
    for c in list(engine.collections.values()):
        for ix in list(c.meta.indexes):
            exp = ix.get("expireAfterSeconds")
            if exp is None or isinstance(exp, bool) or not isinstance(exp, (int, float)) or len(ix["key"]) != 1:
                continue
            field = next(iter(ix["key"]))
            cutoff = now - dt.timedelta(seconds=float(exp))
            flt: dict = {field: {"$lt": cutoff}}
            pfe = ix.get("partialFilterExpression")
            if pfe:
                flt = {"$and": [flt, pfe]}
            try:
                deleted += engine.delete(c.meta.db, c.meta.name, flt, wait=False).n
            except Exception:
                log.exception("TTL deletion in %s failed", c.ns)
    return deleted


class TTLMonitor(threading.Thread):
    def __init__(self, engine: "Engine", interval: float = 60.0):
        super().__init__(name="ttl-monitor", daemon=True)
        self.engine = engine
        self.interval = interval
        self.stop_event = threading.Event()
        self.passes = 0
        self.deleted = 0

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            if not self.engine.opened:
                continue
            try:
                self.deleted += ttl_pass(self.engine)
            except Exception:
                log.exception("TTL pass failed")
            self.passes += 1

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=10)
