"""Spilling blocking stages to temporary files (``allowDiskUse``).

A blocking stage holds at most :meth:`RunEnv.limit_for` bytes (100 MB by
default, MongoDB's limit) of documents or group state. Past it:

* without ``allowDiskUse`` the stage fails with
  QueryExceededMemoryLimitNoDiskUseAllowed (292), MongoDB's error;
* with it (the default since MongoDB 6.0) the stage spills:

  - ``$sort`` is an external merge sort: each full buffer is sorted (stably)
    and written as a *run* of BSON records; the runs and the last buffer are
    merged with :func:`heapq.merge` (ties go to the earlier run, so the result
    is the stable sort of the input);
  - ``$group`` (also ``$bucket`` and ``$sortByCount``, which share its
    grouping) keeps the groups it already holds in memory and sends every
    document of a *new* group to one of :data:`PARTITIONS` partition files by
    the hash of its group key. Each group's documents thus go to one place in
    arrival order (``$first``/``$last``/``$push`` see the same order as in
    memory); the in-memory groups are complete at the end of the input, then
    each partition is grouped on its own (recursively spilling again, with
    another hash, if it is still too big).

Sizes are estimates: a document counts as its BSON size (the first
:data:`_EXACT` documents of a stage and every 16th after are encoded; the
others count at the running average). Spill files live in the server's
spill folder (``spill_dir``) or the system's temporary folder, named
``mongolake-spill-*``; they are deleted as soon as the stage no longer needs
them, when the cursor is exhausted or killed (closing the generators runs
their ``finally``), and at the latest when the file object is collected.
"""
from __future__ import annotations

import heapq
import os
import tempfile
import weakref
from typing import Any, Callable, Iterable, Iterator

import bson

from mongolake.query.aggregate.base import MemoryBudget, RunEnv, approx_size
from mongolake.query.bsonorder import CODEC_OPTIONS, MISSING
from mongolake.query.expr.values import hash_key
from mongolake.query.meta import MetaDoc

PREFIX = "mongolake-spill-"
PARTITIONS = 16
MAX_DEPTH = 3                 # partitioning levels before a group stays in memory whatever its size
_EXACT = 256
# accumulators whose state grows with every input (counted value by value)
_GROWING = frozenset({"$push", "$addToSet", "$mergeObjects", "$firstN", "$lastN", "$maxN", "$minN", "$topN",
                      "$bottomN", "$median", "$percentile"})
_GROUP_OVERHEAD = 64          # bytes per accumulator state


def spill_folder(env: RunEnv) -> str:
    d = env.spill_dir or os.path.join(tempfile.gettempdir(), "mongolake-spill")
    os.makedirs(d, exist_ok=True)
    return d


def _remove(f: Any, path: str) -> None:
    try:
        f.close()
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _encode(doc: dict) -> bytes:
    if type(doc) is MetaDoc and doc.meta:
        return bson.encode({"d": doc, "m": doc.meta}, codec_options=CODEC_OPTIONS)
    return bson.encode({"d": doc}, codec_options=CODEC_OPTIONS)


def _decode(rec: dict) -> dict:
    d = rec["d"]
    m = rec.get("m")
    if m is not None:
        d = MetaDoc(d)
        d.meta.update(m)
    return d


class SpillFile:
    """One temporary file of BSON records, written once, then read back (any number of times)."""

    def __init__(self, env: RunEnv, stats: dict):
        fd, self.path = tempfile.mkstemp(prefix=PREFIX, suffix=".bson", dir=spill_folder(env))
        self.f = os.fdopen(fd, "w+b")
        self.count = 0
        self.stats = stats
        self._finalizer = weakref.finalize(self, _remove, self.f, self.path)

    def write(self, doc: dict) -> None:
        raw = _encode(doc)
        self.f.write(raw)
        self.count += 1
        self.stats["spilledRecords"] = self.stats.get("spilledRecords", 0) + 1
        self.stats["spilledDataStorageSize"] = self.stats.get("spilledDataStorageSize", 0) + len(raw)

    def read(self) -> Iterator[dict]:
        f = self.f
        f.flush()
        f.seek(0)
        for rec in bson.decode_file_iter(f, CODEC_OPTIONS):
            yield _decode(rec)

    def close(self) -> None:
        self._finalizer()


class SizeMeter:
    """Approximate BSON size of the documents a stage takes in."""

    __slots__ = ("n", "sampled", "total")

    def __init__(self) -> None:
        self.n = self.sampled = self.total = 0

    def size(self, doc: Any) -> int:
        n = self.n
        self.n = n + 1
        if n < _EXACT or not n & 15:
            s = approx_size(doc)
            self.sampled += 1
            self.total += s
            return s
        return self.total // self.sampled


def _mark_spill(stats: dict) -> None:
    stats["usedDisk"] = True
    stats["spills"] = stats.get("spills", 0) + 1


def _too_big(what: str, limit: int) -> None:
    MemoryBudget(what, limit, True).fail()


# --- $sort -----------------------------------------------------------------------------------------


def _sort_pairs(pairs: list, dirs: tuple) -> None:
    """Stable in-place sort of ``(encoded key tuple, doc)`` pairs."""
    if all(x == dirs[0] for x in dirs):
        pairs.sort(key=_first, reverse=dirs[0] < 0)
    else:
        # stable multi-pass sort, last field first, with native comparisons
        for j in range(len(dirs) - 1, -1, -1):
            pairs.sort(key=lambda p, j=j: p[0][j], reverse=dirs[j] < 0)


def _first(p: tuple) -> Any:
    return p[0]


def sort_docs(docs: Iterable[dict], key: Callable[[Any], Any], env: RunEnv, stage: Any = None,
              what: str = "$sort") -> Iterator[dict]:
    """``docs`` in the order of ``key`` (a :func:`~mongolake.query.expr.sortspec.make_key`
    function), stable, holding at most the stage's memory limit; external merge sort past it."""
    limit = env.limit_for(what)
    stats = env.stage_stats(stage if stage is not None else what)
    stats.setdefault("usedDisk", False)
    stats.setdefault("spills", 0)
    enc = key.encode  # type: ignore[attr-defined]
    dirs = key.directions  # type: ignore[attr-defined]
    meter = SizeMeter()
    pairs: list = []
    runs: list[SpillFile] = []
    used = total = 0
    try:
        for d in docs:
            s = meter.size(d)
            used += s
            total += s
            pairs.append((enc(d), d))
            if used > limit:
                if not env.allow_disk_use:
                    _too_big(what, limit)
                _sort_pairs(pairs, dirs)
                run = SpillFile(env, stats)
                runs.append(run)
                for p in pairs:
                    run.write(p[1])
                _mark_spill(stats)
                pairs = []
                used = 0
        stats["totalDataSizeSortedBytesEstimate"] = total
        _sort_pairs(pairs, dirs)
        if not runs:
            for p in pairs:
                yield p[1]
            return
        tail = [p[1] for p in pairs]
        del pairs
        yield from heapq.merge(*(r.read() for r in runs), iter(tail), key=key)
    finally:
        for r in runs:
            r.close()


# --- $group ----------------------------------------------------------------------------------------


class Groups:
    """The groups of a ``$group``-like stage: :meth:`values` yields ``(group id, [states])``
    once (the in-memory groups first, then those of each spilled partition)."""

    def __init__(self, docs: Iterable[dict], env: RunEnv, key_fn: Any, accs: list, what: str, stage: Any = None):
        self.docs, self.env, self.key_fn, self.accs, self.what = docs, env, key_fn, accs, what
        self.stats = env.stage_stats(stage if stage is not None else what)
        self.stats.setdefault("usedDisk", False)
        self.stats.setdefault("spills", 0)

    def values(self) -> Iterator[tuple[Any, list]]:
        return self._run(self.docs, 0)

    def _run(self, docs: Iterable[dict], depth: int) -> Iterator[tuple[Any, list]]:
        env, key_fn, accs, stats = self.env, self.key_fn, self.accs, self.stats
        limit = env.limit_for(self.what)
        groups: dict = {}
        parts: list[SpillFile] | None = None
        used = 0
        s = dict(env.variables)
        track_values = any(a.name in _GROWING for a in accs)
        per_group = _GROUP_OVERHEAD * len(accs)
        try:
            for d in docs:
                s["ROOT"] = s["CURRENT"] = d
                gid = key_fn(s)
                if gid is MISSING:
                    gid = None
                hk = hash_key(gid)
                entry = groups.get(hk)
                if entry is None:
                    if parts is not None:
                        parts[hash((depth, hk)) % PARTITIONS].write(d)
                        continue
                    # per-group parameters (the n of $firstN...) see the group key's fields, as in MongoDB
                    gscope = dict(env.variables)
                    gscope["ROOT"] = gscope["CURRENT"] = gid if type(gid) is dict else {}
                    entry = groups[hk] = (gid, [a.create(gscope) for a in accs])
                    used += approx_size({"_id": gid}) + per_group
                for a, st in zip(accs, entry[1]):
                    v = a.input(s)
                    st.add(v)
                    if track_values:
                        used += approx_size(v)
                if used > limit and parts is None:
                    if not env.allow_disk_use:
                        _too_big(self.what, limit)
                    if depth < MAX_DEPTH:
                        parts = [SpillFile(env, stats) for _ in range(PARTITIONS)]
                        _mark_spill(stats)
            yield from groups.values()
            groups.clear()
            for p in parts or ():
                if p.count:
                    yield from self._run(p.read(), depth + 1)
                p.close()
        finally:
            for p in parts or ():
                p.close()


def group(docs: Iterable[dict], env: RunEnv, key_fn: Any, accs: list, what: str, stage: Any = None) -> Groups:
    return Groups(docs, env, key_fn, accs, what, stage)


__all__ = ["sort_docs", "group", "Groups", "SpillFile", "SizeMeter", "PREFIX", "PARTITIONS", "spill_folder"]
