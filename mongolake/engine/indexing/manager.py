"""The engine's secondary indexes: built lazily from the current state, kept in
sync with every committed batch, used by reads and unique checks.

All methods are called with ``engine.lock`` held (reads take it themselves to
collect candidates), so an index never differs from the committed state seen
under that lock. An index may hold *stale* entries (a key a document no longer
has — e.g. after a transaction replaced a document it re-inserted); readers and
unique checks re-check every candidate against the current document, so stale
entries cost time, never correctness. Missing entries would be wrong and cannot
happen: every committed document version adds its keys.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Iterator

import bson

from mongolake.errors import duplicate_key
from mongolake.query.bsonorder import CODEC_OPTIONS

from ..records import DDL_OPS, INSERT, Change
from .index import SecondaryIndex
from .kinds import index_class, special_kind
from .planner import IndexPlan, choose

if TYPE_CHECKING:
    from ..collection import Collection
    from ..engine import Engine

log = logging.getLogger("mongolake.indexes")
INDEXABLE = {1, -1, "hashed"}


def indexable(spec: dict) -> bool:
    """A B-tree style spec this module maintains (not ``_id_``: the table's own key)."""
    if spec.get("name") == "_id_":
        return False
    return all((v in INDEXABLE) or (isinstance(v, (int, float)) and not isinstance(v, bool) and v != 0)
               for v in spec["key"].values())


class CollectionIndexes:
    def __init__(self) -> None:
        self.indexes: dict[str, SecondaryIndex] = {}
        self.built = False
        self.build_seconds = 0.0


class IndexManager:
    def __init__(self, engine: "Engine"):
        self.engine = engine
        self._colls: dict[str, CollectionIndexes] = {}
        self.stats = {"builds": 0, "build_seconds": 0.0}

    # -- structure ---------------------------------------------------------------
    def for_collection(self, c: "Collection") -> list[SecondaryIndex]:
        """The collection's B-tree style indexes, built now if needed (special
        kinds too). Empty for views of the past (time travel) and inside
        transactions before the first build."""
        return [ix for ix in self._all(c) if isinstance(ix, SecondaryIndex)]

    def special(self, c: "Collection", kind: str) -> list[Any]:
        """The collection's indexes of a special kind (``text``, ``2dsphere``,
        ``vectorSearch``), built now if needed; see :mod:`.kinds`."""
        return [ix for ix in self._all(c) if getattr(ix, "kind", None) == kind]

    def _all(self, c: "Collection") -> list[Any]:
        if self.engine.collections.get(c.uuid) is not c:
            return []
        specs = [s for s in _specs(c) if indexable(s) or special_kind(s)]
        if not specs:
            self._colls.pop(c.uuid, None)
            return []
        ci = self._colls.get(c.uuid)
        if ci is None:
            ci = self._colls[c.uuid] = CollectionIndexes()
        names = {s["name"] for s in specs}
        for n in list(ci.indexes):
            if n not in names:
                del ci.indexes[n]
        missing = [s for s in specs if s["name"] not in ci.indexes or ci.indexes[s["name"]].spec != s]
        if missing:
            from ..txn import CURRENT
            if CURRENT.get() is not None:
                return [] if not ci.built else [ci.indexes[s["name"]] for s in specs if s["name"] in ci.indexes
                                                and ci.indexes[s["name"]].spec == s]
            self._build(c, ci, missing)
        return [ci.indexes[s["name"]] for s in specs]

    def _build(self, c: "Collection", ci: CollectionIndexes, specs: list[dict]) -> None:
        t0 = time.time()
        new = [SecondaryIndex(s) for s in specs if indexable(s)]
        extra = [index_class(k)(s) for s in specs if (k := special_kind(s))]
        items: list[list[tuple[bytes, bytes]]] = [[] for _ in new]
        with self.engine.lock:
            for raw, d in self.engine.iter_matching(c, None, decode=True):
                key = _key_of(d)
                for ix, out in zip(new, items):
                    for k in ix.doc_keys(d):
                        out.append((k, key))
                for sx in extra:
                    sx.add(d, key)
            for ix, out in zip(new, items):
                ix.bulk_load(out)
                ci.indexes[ix.name] = ix
            for sx in extra:
                sx.finish_build()
                ci.indexes[sx.name] = sx
            ci.built = True
        dt = time.time() - t0
        self.stats["builds"] += 1
        self.stats["build_seconds"] += dt
        ci.build_seconds += dt
        log.info("built %d index(es) of %s in %.2fs", len(new), c.ns, dt)

    def forget(self, uuid: str) -> None:
        self._colls.pop(uuid, None)

    # -- maintenance -----------------------------------------------------------------
    def before_apply(self, ch: Change) -> None:
        """Update the indexes for one committed change; call before the memtable
        takes it (the previous version is looked up when the change lacks it)."""
        if ch.op in DDL_OPS:
            return
        ci = self._colls.get(ch.uuid)
        if ci is None or not ci.built or not ci.indexes:
            return
        c = self.engine.collections.get(ch.uuid)
        if c is None:
            return
        try:
            self._apply(c, ci, ch)
        except Exception:           # never fail a commit: rebuild from the state on next use
            log.exception("index maintenance of %s failed; the indexes will be rebuilt", c.ns)
            self._colls.pop(ch.uuid, None)

    def _apply(self, c: "Collection", ci: CollectionIndexes, ch: Change) -> None:
        old_raw = ch.before
        if old_raw is None and ch.op != INSERT:
            e = c.mem_get(ch.key)
            old_raw = e.doc if e is not None else self.engine.reader.lookup(c.table, c.snapshot, ch.key)
        if old_raw is not None:
            old = bson.decode(old_raw, CODEC_OPTIONS)
            for ix in ci.indexes.values():
                ix.remove(old, ch.key)
        if ch.doc is not None:
            new = bson.decode(ch.doc, CODEC_OPTIONS)
            for ix in ci.indexes.values():
                ix.add(new, ch.key)

    # -- reads ---------------------------------------------------------------------------
    def plan(self, c: "Collection", expr: Any, spec: dict | None, hint: Any = None) -> IndexPlan | None:
        if hint is not None and (hint == {"$natural": 1} or hint == {"$natural": -1}):
            return None
        ixs = self.for_collection(c)
        return choose(ixs, expr, spec, hint) if ixs else None

    def candidates(self, plan: IndexPlan) -> tuple[list[bytes], int]:
        """(distinct ``_key`` of the entries in the plan's ranges in index order, keys examined)."""
        seen: set[bytes] = set()
        out: list[bytes] = []
        n = 0
        for _k, key in plan.index.scan(plan.ranges):
            n += 1
            if key not in seen:
                seen.add(key)
                out.append(key)
        return out, n

    # -- uniqueness ------------------------------------------------------------------------
    def check_unique(self, c: "Collection", doc: dict, key: bytes, pending: dict[bytes, dict]) -> bool:
        """Raise E11000 when ``doc`` (about to be stored under ``key``) collides in a
        unique index. Returns False when the indexes are not available (the caller
        falls back to a scan)."""
        ixs = self.for_collection(c)
        uniq = [ix for ix in ixs if ix.unique]
        if len(uniq) != sum(1 for s in c.meta.indexes if s.get("unique") and s.get("name") != "_id_"):
            return False
        for ix in uniq:
            keys = ix.doc_keys(doc)
            if not keys:
                continue
            kset = set(keys)
            for other_key, other in pending.items():
                if other_key != key and kset.intersection(ix.doc_keys(other)):
                    _dup(c, ix, doc)
            for k in keys:
                for other_key in ix.entries_equal(k):
                    if other_key == key or other_key in pending:
                        continue
                    raw = self._current(c, other_key)
                    if raw is not None and k in ix.doc_keys(bson.decode(raw, CODEC_OPTIONS)):
                        _dup(c, ix, doc)
        return True

    def _current(self, c: "Collection", key: bytes) -> bytes | None:
        e = c.mem_get(key)
        if e is not None:
            return e.doc
        return self.engine.reader.lookup(c.table, c.snapshot, key)

    def describe(self, c: "Collection") -> Iterator[dict]:
        ci = self._colls.get(c.uuid)
        for ix in (ci.indexes.values() if ci else ()):
            n = len(ix.keys) if isinstance(ix, SecondaryIndex) else ix.entry_count()
            yield {**ix.describe(), "entries": n}


def _specs(c: "Collection") -> list[dict]:
    """Catalog index specs plus search-index definitions (``vectorSearch``)."""
    return list(c.meta.indexes) + list(getattr(c.meta, "search_indexes", None) or ())


def _key_of(d: dict) -> bytes:
    from mongolake.query import keystring
    return keystring.encode_key(d["_id"])


def _dup(c: "Collection", ix: SecondaryIndex, doc: dict) -> None:
    from ..keys import index_key_values
    vals = index_key_values(doc, ix.fields) or ()
    raise duplicate_key(c.ns, ix.name, dict(ix.spec["key"]), dict(zip(ix.fields, vals)))
