"""The engine's secondary indexes: built at ``createIndexes`` (or, after a
restart, at first use), kept in sync with every committed batch, used by reads
and unique checks. Builds of large collections run outside the lock (see
:mod:`.build`); until an index is built, reads scan and unique checks scan.

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
import threading
import time
from typing import TYPE_CHECKING, Any, Iterator

import bson

from mongolake.errors import MongoError, duplicate_key
from mongolake.query.bsonorder import CODEC_OPTIONS

from ..records import DDL_OPS, INSERT, Change
from . import build as _b
from .index import SecondaryIndex
from .kinds import special_kind
from .planner import IndexPlan, choose

if TYPE_CHECKING:
    from ..collection import Collection
    from ..engine import Engine

log = logging.getLogger("mongolake.indexes")
INDEXABLE = {1, -1, "hashed"}
INDEX_BUILD_ABORTED = 276           # MongoDB's IndexBuildAborted


def indexable(spec: dict) -> bool:
    """A B-tree style spec this module maintains (not ``_id_``: the table's own key)."""
    if spec.get("name") == "_id_":
        return False
    key = spec.get("key")
    if not key or special_kind(spec):           # search-index definitions, text, 2dsphere
        return False
    return all((v in INDEXABLE) or (isinstance(v, (int, float)) and not isinstance(v, bool) and v != 0)
               for v in key.values())


class CollectionIndexes:
    def __init__(self) -> None:
        self.indexes: dict[str, Any] = {}
        self.built = False
        self.build_seconds = 0.0
        self.jobs: list[_b.BuildJob] = []           # builds running outside the lock
        self.failed: dict[str, float] = {}          # spec name -> time of a failed background build


class IndexManager:
    def __init__(self, engine: "Engine"):
        self.engine = engine
        self._colls: dict[str, CollectionIndexes] = {}
        self.stats = {"builds": 0, "build_seconds": 0.0, "background_builds": 0}
        self.accesses: dict[tuple[str, str], int] = {}    # (collection uuid, index name) -> plans chosen
        self.since = time.time()
        # collections with more documents than this build B-tree indexes in the
        # background at first use (reads scan meanwhile); smaller ones inline
        self.inline_build_docs = 20_000
        self._special_build_lock = threading.Lock()
        self.retry_seconds = 30.0

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

    def ensure_special(self, c: "Collection", kind: str) -> None:
        """Build the collection's not-yet-built indexes of ``kind`` in the calling
        thread *without* holding the engine lock for long (from a snapshot, writes
        buffered and caught up, like ``createIndexes``), so that the first query after
        a restart does not block every writer for the whole build. Call it without
        the lock before :meth:`special`; builds of one collection take turns."""
        from ..txn import CURRENT
        if CURRENT.get() is not None:
            return
        with self._special_build_lock:
            with self.engine.lock:
                if self.engine.collections.get(c.uuid) is not c:
                    return
                ci = self._colls.get(c.uuid)
                todo = [s for s in _specs(c) if special_kind(s) == kind
                        and (ci is None or s["name"] not in ci.indexes or ci.indexes[s["name"]].spec != s)]
            if todo:
                self.build_now(c, todo)

    def _all(self, c: "Collection") -> list[Any]:
        if self.engine.collections.get(c.uuid) is not c:
            return []
        specs = [s for s in _specs(c) if indexable(s) or special_kind(s)]
        ci = self._colls.get(c.uuid)
        if not specs:
            if ci is not None and not ci.jobs:
                self._colls.pop(c.uuid, None)
            return []
        if ci is None:
            ci = self._colls[c.uuid] = CollectionIndexes()
        names = {s["name"] for s in specs}
        for n in list(ci.indexes):
            if n not in names:
                del ci.indexes[n]
        missing = [s for s in specs if s["name"] not in ci.indexes or ci.indexes[s["name"]].spec != s]
        if missing:
            from ..txn import CURRENT
            if CURRENT.get() is None:
                self._build_missing(c, ci, missing)
        return [ci.indexes[s["name"]] for s in specs if s["name"] in ci.indexes and ci.indexes[s["name"]].spec == s]

    def _build_missing(self, c: "Collection", ci: CollectionIndexes, missing: list[dict]) -> None:
        """Build specs the catalog has and memory lacks: small collections now
        (under the lock), B-tree indexes of large ones in a background job (reads
        scan until it is done); special kinds of large ones are left to
        :meth:`ensure_special`."""
        running = {n for j in ci.jobs for n in j.names}
        now = time.time()
        todo = [s for s in missing if s["name"] not in running
                and now - ci.failed.get(s["name"], -1e18) >= self.retry_seconds]
        if not todo:
            return
        small = self._doc_estimate(c) <= self.inline_build_docs
        # special kinds of a large collection are built by ensure_special (called by
        # their readers without the lock, before they need the index), not here
        inline = [s for s in todo if special_kind(s) and small]
        rest = [s for s in todo if not special_kind(s)]
        if rest and small:
            inline += rest
            rest = []
        if inline:
            self._build(c, ci, inline)
        if rest:
            self._start_background(c, ci, rest)

    def _doc_estimate(self, c: "Collection") -> int:
        return c.snapshot.num_records + len(c.active) + sum(len(m) for m in c.frozen)

    def _build(self, c: "Collection", ci: CollectionIndexes, specs: list[dict]) -> None:
        t0 = time.time()
        for ix in _b.build_inline(self.engine, c, specs):
            ci.indexes[ix.name] = ix
        ci.built = True
        self._count_build(c, ci, t0, len(specs))

    def _count_build(self, c: "Collection", ci: CollectionIndexes, t0: float, n: int) -> None:
        dt = time.time() - t0
        self.stats["builds"] += 1
        self.stats["build_seconds"] += dt
        ci.build_seconds += dt
        log.info("built %d index(es) of %s in %.2fs", n, c.ns, dt)

    def _install(self, c: "Collection", ci: CollectionIndexes, objs: list[Any]) -> list[Any]:
        """Put built objects in service (lock held) if their specs are still the catalog's."""
        if self.engine.collections.get(c.uuid) is not c or self._colls.get(c.uuid) is not ci:
            raise _b.BuildCancelled(f"{c.ns} changed during an index build")
        current = {s["name"]: s for s in _specs(c)}
        out = []
        for ix in objs:
            if current.get(ix.name) == ix.spec:
                ci.indexes[ix.name] = ix
                out.append(ix)
        ci.built = True
        return out

    def _start_background(self, c: "Collection", ci: CollectionIndexes, specs: list[dict]) -> None:
        job, state = _b.start_job(self.engine, ci.jobs, c, specs)
        self.stats["background_builds"] += 1

        def run() -> None:
            t0 = time.time()
            try:
                _b.run_job(self.engine, ci.jobs, job, c, state, lambda objs, _job: self._install(c, ci, objs))
            except _b.BuildCancelled:
                log.info("index build of %s abandoned", c.ns)
                return
            except Exception:
                log.exception("background index build of %s failed; retrying later", c.ns)
                for n in job.names:
                    ci.failed[n] = time.time()
                return
            self._count_build(c, ci, t0, len(specs))

        threading.Thread(target=run, name=f"index-build-{c.ns}", daemon=True).start()

    def build_now(self, c: "Collection", specs: list[dict] | None = None) -> list[Any]:
        """Build ``specs`` (default: every catalog spec not built yet) in the
        calling thread, from a snapshot, without holding the lock for long; install
        and return them. Waits for background builds of the collection first."""
        self.wait_idle(c)
        with self.engine.lock:
            all_specs = [s for s in _specs(c) if indexable(s) or special_kind(s)]
            ci = self._colls.get(c.uuid)
            if ci is None:
                ci = self._colls[c.uuid] = CollectionIndexes()
            if specs is None:
                specs = [s for s in all_specs if s["name"] not in ci.indexes or ci.indexes[s["name"]].spec != s]
            if not specs:
                return []
        t0 = time.time()
        job, state = _b.start_job(self.engine, ci.jobs, c, specs)
        out = _b.run_job(self.engine, ci.jobs, job, c, state, lambda objs, _job: self._install(c, ci, objs))
        self._count_build(c, ci, t0, len(specs))
        return out

    def create(self, c: "Collection", specs: list[dict]) -> list[dict]:
        """``createIndexes``: build ``specs`` (not yet in the catalog) from a
        snapshot while writes go on, then — under the lock, after the last buffered
        changes — check unique ones (E11000 fails the whole request, nothing is
        created), add them to the catalog and put them in service in one step, so
        the constraint holds from the moment the catalog has it. Returns the specs
        added (a concurrent request may have added some first)."""
        with self.engine.lock:
            ci = self._colls.get(c.uuid)
            if ci is None:
                ci = self._colls[c.uuid] = CollectionIndexes()
        t0 = time.time()
        job, state = _b.start_job(self.engine, ci.jobs, c, specs)

        def commit(objs: list[Any], job: _b.BuildJob) -> list[dict]:
            if self.engine.collections.get(c.uuid) is not c:
                raise MongoError(INDEX_BUILD_ABORTED, f"Index build failed: collection {c.ns} was dropped")
            for ix in objs:
                if isinstance(ix, SecondaryIndex) and ix.unique:
                    self._check_built_unique(c, ix, job.suspects.get(ix.name, ()))
                verify = getattr(ix, "verify_build", None)
                if verify is not None:          # e.g. 2dsphere over a value that is not geometry: 16755
                    verify(c)
            have = {s["name"] for s in c.meta.indexes}
            add = [s for s in specs if s["name"] not in have]
            if add:
                self.engine.set_indexes(c, list(c.meta.indexes) + add)
            ci2 = self._colls.get(c.uuid)
            if ci2 is None:
                ci2 = self._colls[c.uuid] = CollectionIndexes()
            names = {s["name"] for s in add}
            for ix in objs:
                if ix.name in names:
                    ci2.indexes[ix.name] = ix
            ci2.built = True
            return add

        try:
            added = _b.run_job(self.engine, ci.jobs, job, c, state, commit)
        except _b.BuildCancelled as e:
            raise MongoError(INDEX_BUILD_ABORTED, f"Index build failed: {e}") from None
        self._count_build(c, ci, t0, len(specs))
        return added

    def _check_built_unique(self, c: "Collection", ix: SecondaryIndex, suspects: Any) -> None:
        """E11000 when two documents share a key of a freshly built unique index:
        each suspect key's entries are confirmed against the current documents
        (lock held)."""
        for k in sorted(suspects):
            live = []
            for o in list(ix.entries_equal(k)):
                raw = self._current(c, o)
                if raw is not None:
                    d = bson.decode(raw, CODEC_OPTIONS)
                    if k in ix.doc_keys(d):
                        live.append(d)
            if len(live) > 1:
                _dup(c, ix, live[1])

    def wait_idle(self, c: "Collection", timeout: float | None = None) -> bool:
        """Wait until no background build of ``c`` runs; False on timeout."""
        end = None if timeout is None else time.time() + timeout
        while True:
            ci = self._colls.get(c.uuid)
            jobs = list(ci.jobs) if ci is not None else []
            if not jobs:
                return True
            for j in jobs:
                left = None if end is None else max(0.0, end - time.time())
                if not j.done.wait(left):
                    return False

    def forget(self, uuid: str) -> None:
        ci = self._colls.pop(uuid, None)
        for j in (ci.jobs if ci is not None else ()):
            j.cancelled = True

    # -- maintenance -----------------------------------------------------------------
    def before_apply(self, ch: Change) -> None:
        """Update the indexes for one committed change; call before the memtable
        takes it (the previous version is looked up when the change lacks it)."""
        if ch.op in DDL_OPS:
            return
        ci = self._colls.get(ch.uuid)
        if ci is None or not (ci.indexes or ci.jobs):
            return
        c = self.engine.collections.get(ch.uuid)
        if c is None:
            return
        try:
            self._apply(c, ci, ch)
        except Exception:           # never fail a commit: rebuild from the state on next use
            log.exception("index maintenance of %s failed; the indexes will be rebuilt", c.ns)
            self.forget(ch.uuid)

    def _apply(self, c: "Collection", ci: CollectionIndexes, ch: Change) -> None:
        old_raw = ch.before
        if old_raw is None and ch.op != INSERT:
            e = c.mem_get(ch.key)
            old_raw = e.doc if e is not None else self.engine.reader.lookup(c.table, c.snapshot, ch.key)
        for job in ci.jobs:                 # builds running outside the lock replay these
            job.buffer.append((ch.key, old_raw, ch.doc))
        if not ci.indexes:
            return
        if old_raw is not None:
            old = bson.decode(old_raw, CODEC_OPTIONS)
            for ix in ci.indexes.values():
                ix.remove(old, ch.key)
        if ch.doc is not None:
            new = bson.decode(ch.doc, CODEC_OPTIONS)
            for ix in ci.indexes.values():
                ix.add(new, ch.key)

    # -- reads ---------------------------------------------------------------------------
    def plan(self, c: "Collection", expr: Any, spec: dict | None, hint: Any = None,
             sort: list[tuple[str, Any]] | None = None, sort_only: bool = False) -> IndexPlan | None:
        if hint is not None and (hint == {"$natural": 1} or hint == {"$natural": -1}):
            return None
        ixs = self.for_collection(c)
        chosen = choose(ixs, expr, spec, hint, sort=sort, sort_only=sort_only) if ixs else None
        if chosen is not None:
            k = (c.uuid, chosen.index.name)
            self.accesses[k] = self.accesses.get(k, 0) + 1
        return chosen

    def access_stats(self, c: "Collection", name: str) -> tuple[int, float]:
        """($indexStats) how many reads planned with index ``name`` since ``since``."""
        return self.accesses.get((c.uuid, name), 0), self.since

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
        for job in (list(ci.jobs) if ci else ()):
            yield from job.describe()


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
