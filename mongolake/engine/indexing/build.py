"""Building indexes without stopping writers for long.

A build reads the collection as it was at one instant and catches up with what
was committed meanwhile:

1. under ``engine.lock``: capture the state (a copy of the memtable view and the
   table snapshot) and register a :class:`BuildJob`; from then on
   :meth:`IndexManager.before_apply` appends every change of the collection to
   the job's buffer as ``(_key, previous version, new version)`` (raw BSON,
   None for absent);
2. without the lock: scan the captured state, collect every document's keys,
   sort them once (``bulk_load``), let special kinds ``finish_build``;
3. without the lock: replay the buffered changes (``remove(previous)``, then
   ``add(new)``, in commit order), a few rounds while the buffer keeps filling;
4. under the lock: replay what is left, then hand the objects to ``commit``
   (which installs them, or for ``createIndexes`` also confirms the keys a
   unique index holds more than once — found without the lock — and writes the
   catalog) — the lock is held for the last few changes only.

Replaying in order from the captured state gives exactly the current state: the
previous version of each change is the one the state held just before it, which
``before_apply`` looked up under the lock. Small collections are built *inline*
(scan under the lock: cheaper than a thread, and the caller gets the index now).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable

import bson

from mongolake.query.bsonorder import CODEC_OPTIONS

from .index import SecondaryIndex
from .kinds import index_class, special_kind

if TYPE_CHECKING:
    from ..collection import Collection
    from ..engine import Engine

log = logging.getLogger("mongolake.indexes")
CATCH_UP_ROUNDS = 8
LOCKED_TAIL = 256           # changes left for the final (locked) replay before we stop chasing


class BuildCancelled(Exception):
    """The collection was dropped, the engine closed or the job abandoned."""


class BuildJob:
    """One build of some specs of one collection, running outside the lock."""

    def __init__(self, specs: list[dict]):
        self.specs = specs
        self.names = {s["name"] for s in specs}
        self.buffer: list[tuple[bytes, bytes | None, bytes | None]] = []
        self.phase = "scan"
        self.scanned = 0
        self.replayed = 0
        self.started = time.time()
        self.cancelled = False
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.suspects: dict[str, set[bytes]] = {}   # unique index -> keys held by 2+ entries

    def describe(self) -> list[dict]:
        return [{"indexName": s["name"], "keyPattern": dict(s.get("key") or {}), "building": True,
                 "phase": self.phase, "docsScanned": self.scanned, "changesBuffered": len(self.buffer),
                 "seconds": round(time.time() - self.started, 3)} for s in self.specs]


def new_objects(specs: list[dict]) -> list[Any]:
    """Empty index objects for ``specs`` (B-tree style or a special kind)."""
    out: list[Any] = []
    for s in specs:
        k = special_kind(s)
        out.append(index_class(k)(s) if k else SecondaryIndex(s))
    return out


def _feed(objs: list[Any], items: list[list], d: dict, key: bytes) -> None:
    for ix, out in zip(objs, items):
        if isinstance(ix, SecondaryIndex):
            for k in ix.doc_keys(d):
                out.append((k, key))
        else:
            ix.add(d, key)


def _finish(objs: list[Any], items: list[list]) -> None:
    for ix, out in zip(objs, items):
        if isinstance(ix, SecondaryIndex):
            ix.bulk_load(out)
            out.clear()
        else:
            ix.finish_build()


def build_inline(engine: "Engine", c: "Collection", specs: list[dict]) -> list[Any]:
    """Build ``specs`` from the current state with ``engine.lock`` held throughout."""
    from mongolake.query import keystring
    objs = new_objects(specs)
    items: list[list] = [[] for _ in objs]
    with engine.lock:
        for _raw, d in engine.iter_matching(c, None, decode=True):
            _feed(objs, items, d, keystring.encode_key(d["_id"]))
        _finish(objs, items)
    return objs


def replay(objs: list[Any], buf: list[tuple[bytes, bytes | None, bytes | None]],
           suspects: dict[str, set[bytes]] | None = None) -> None:
    """Apply buffered changes in order; note unique-index keys that now have
    more than one entry in ``suspects``."""
    for key, old_raw, new_raw in buf:
        if old_raw is not None:
            old = bson.decode(old_raw, CODEC_OPTIONS)
            for ix in objs:
                ix.remove(old, key)
        if new_raw is not None:
            new = bson.decode(new_raw, CODEC_OPTIONS)
            for ix in objs:
                ix.add(new, key)
                if suspects is not None and isinstance(ix, SecondaryIndex) and ix.unique:
                    for k in ix.doc_keys(new):
                        if sum(1 for _ in zip(range(2), ix.entries_equal(k))) > 1:
                            suspects.setdefault(ix.name, set()).add(k)


def _duplicates(ix: SecondaryIndex) -> set[bytes]:
    """Index keys held by more than one entry (one pass over the sorted entries)."""
    out: set[bytes] = set()
    prev = None
    for k, _key in ix.keys:
        if k == prev:
            out.add(k)
        prev = k
    return out


def start_job(engine: "Engine", jobs: list[BuildJob], c: "Collection", specs: list[dict]) -> tuple[BuildJob, Any]:
    """Register a job in ``jobs`` and capture the state it builds from (takes the lock)."""
    job = BuildJob(specs)
    with engine.lock:
        state = (c.mem_view(), c.snapshot)
        jobs.append(job)
    return job, state


def run_job(engine: "Engine", jobs: list[BuildJob], job: BuildJob, c: "Collection", state: Any,
            commit: Callable[[list[Any], BuildJob], Any]) -> Any:
    """Steps 2–4 of the module docstring; returns what ``commit`` returns (called
    with ``engine.lock`` held). The job leaves ``jobs`` whatever happens."""
    from mongolake.query import keystring
    from ..reader import ScanPlan, ScanStats
    try:
        objs = new_objects(job.specs)
        items: list[list] = [[] for _ in objs]
        view, snapshot = state
        plan = ScanPlan(None, None, c.specs)
        for _raw, d in engine._iter_scan(c, plan, True, ScanStats(), view, snapshot):
            _feed(objs, items, d, keystring.encode_key(d["_id"]))
            job.scanned += 1
            if not job.scanned & 1023:
                _check_alive(engine, job, c)
        del view
        job.phase = "sort"
        _finish(objs, items)
        for ix in objs:
            if isinstance(ix, SecondaryIndex) and ix.unique:
                job.suspects[ix.name] = _duplicates(ix)
        job.phase = "catch-up"
        for _ in range(CATCH_UP_ROUNDS):
            _check_alive(engine, job, c)
            with engine.lock:
                buf, job.buffer = job.buffer, []
            replay(objs, buf, job.suspects)
            job.replayed += len(buf)
            if len(job.buffer) <= LOCKED_TAIL:
                break
        with engine.lock:
            _check_alive(engine, job, c)
            job.phase = "commit"
            buf, job.buffer = job.buffer, []
            replay(objs, buf, job.suspects)
            job.replayed += len(buf)
            if job in jobs:
                jobs.remove(job)
            return commit(objs, job)
    except BaseException as e:
        job.error = e
        raise
    finally:
        job.cancelled = True
        with engine.lock:
            if job in jobs:
                jobs.remove(job)
            job.buffer = []
        job.done.set()


def _check_alive(engine: "Engine", job: BuildJob, c: "Collection") -> None:
    if job.cancelled or not engine.opened or engine.collections.get(c.uuid) is not c:
        raise BuildCancelled(f"index build of {c.ns} abandoned")
