"""Read operations of the engine: find, count, distinct, point lookups."""
from __future__ import annotations

import re
from typing import Any, Iterator

import bson
from bson.regex import Regex

from mongolake import deadline
from mongolake.errors import ErrorCode, MongoError
from mongolake.query import keystring
from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.query.filter import index_requirement, parse_filter
from mongolake.query.matcher import compile_matcher

from .collection import Collection
from .txn import CURRENT
from .reader import ScanPlan, ScanStats

_SCALAR_ID_TYPES_EXCLUDED = (dict, list, Regex, re.Pattern)
_PLAN_CACHE: dict[bytes, tuple] = {}      # encoded filter -> (expr, matcher, top columns); FIFO-bounded
_PLAN_CACHE_SIZE = 512


def id_point_keys(spec: dict | None) -> list[Any] | None:
    """The ``_id`` values of a filter that is exactly ``{_id: v}`` or ``{_id: {$in: [...]}}``."""
    if not spec or len(spec) != 1 or "_id" not in spec:
        return None
    v = spec["_id"]
    if isinstance(v, dict):
        if len(v) == 1 and "$in" in v and isinstance(v["$in"], list) and \
                not any(isinstance(x, _SCALAR_ID_TYPES_EXCLUDED) for x in v["$in"]):
            return list(v["$in"])
        if len(v) == 1 and "$eq" in v and not isinstance(v["$eq"], _SCALAR_ID_TYPES_EXCLUDED):
            return [v["$eq"]]
        return None
    if isinstance(v, _SCALAR_ID_TYPES_EXCLUDED):
        return None
    return [v]


class ReadOps:
    # provided by Engine
    reader: Any

    # -- planning ------------------------------------------------------------
    def plan(self, c: Collection, filter_spec: dict | None) -> ScanPlan:
        """Parse (and compile) a filter once; identical filters reuse the compiled plan."""
        if filter_spec is not None and not isinstance(filter_spec, dict):
            raise MongoError(ErrorCode.TypeMismatch, "filter must be an object")
        if not filter_spec or id_point_keys(filter_spec) is not None:
            # point lookups by _id need no tree: key equality is BSON equality
            return ScanPlan(None, None, c.specs)
        try:
            key = bson.encode(filter_spec, codec_options=CODEC_OPTIONS)
        except Exception:       # not encodable: parse_filter will say why
            key = None
        hit = _PLAN_CACHE.get(key) if key is not None else None
        if hit is None:
            expr = parse_filter(filter_spec)
            matcher = compile_matcher(expr)
            hit = (expr, matcher, ScanPlan(expr, matcher, {}).top_columns)
            if key is not None:
                if len(_PLAN_CACHE) >= _PLAN_CACHE_SIZE:
                    _PLAN_CACHE.pop(next(iter(_PLAN_CACHE)))
                _PLAN_CACHE[key] = hit
        return ScanPlan(hit[0], hit[1], c.specs, hit[2])

    # -- point lookups -------------------------------------------------------
    def lookup_key(self, c: Collection, key: bytes) -> bytes | None:
        tx = CURRENT.get()
        if tx is not None:
            found, e = self.txns.entry(tx, c, key)
            if found:
                return e.doc
            return self.reader.lookup(c.table, tx.view(c)[0], key)
        e = c.mem_get(key)
        if e is not None:
            return e.doc
        return self.reader.lookup(c.table, c.snapshot, key)

    def get(self, db: str, coll: str, _id: Any) -> dict | None:
        c = self.get_collection(db, coll)
        if c is None:
            return None
        raw = self.lookup_key(c, keystring.encode_key(_id))
        return bson.decode(raw, CODEC_OPTIONS) if raw is not None else None

    # -- scans ---------------------------------------------------------------
    def iter_matching(self, c: Collection, filter_spec: dict | None, *, decode: bool = False,
                      stats: ScanStats | None = None, plan: ScanPlan | None = None, hint: Any = None,
                      sort: list[tuple[str, Any]] | None = None, limited: bool = False
                      ) -> Iterator[tuple[bytes, dict | None]]:
        """Every live document matching ``filter_spec``: ``(raw, decoded_or_None)``;
        with ``decode`` the second item is always the decoded document. A secondary
        index is used when one fits (or ``hint`` names it) outside transactions.
        ``sort`` (``[(field, 1|-1), ...]``): prefer an index whose order is this
        sort (``limited``: even one that bounds nothing); when the documents come in
        that order, ``stats.index_sorted`` is set and the caller need not sort."""
        plan = plan or self.plan(c, filter_spec)
        stats = stats if stats is not None else ScanStats()
        ids = id_point_keys(filter_spec)
        if ids is not None and not hint:
            return self._iter_ids(c, ids, plan, decode, stats)
        req = index_requirement(plan.expr)
        if req is not None:                         # $text, $near: their index answers
            from .indexing.kinds import special_reader
            return special_reader(req[0])(self, c, plan, req[1], stats)
        ip = self._index_plan(c, plan, filter_spec, hint, sort, limited)
        if ip is not None:
            return self._iter_index(c, ip, plan, stats)
        return self._iter_scan(c, plan, decode, stats, *self._state(c))

    def _index_plan(self, c: Collection, plan: ScanPlan, filter_spec: dict | None, hint: Any,
                    sort: list[tuple[str, Any]] | None = None, limited: bool = False):
        """The secondary-index plan for a read, or None (transactions read their
        snapshot: the indexes hold the latest state, so they scan)."""
        if CURRENT.get() is not None or (plan.expr is None and not hint and not (sort and limited)):
            return None
        with self.lock:
            return self.indexes.plan(c, plan.expr, filter_spec, hint, sort=sort, sort_only=limited)

    def _iter_index(self, c: Collection, ip, plan: ScanPlan, stats: ScanStats):
        """The plan's documents in index order, taken from the index in growing
        batches under the lock (a limit stops the walk early), fetched by ``_key``
        and re-checked by the matcher without it. A walk that provides the sort
        accepts a document only at an entry its current version holds (a stale
        entry must not place it out of order); other walks take each ``_key`` once."""
        ix = ip.index
        stats.index_name = ix.name
        stats.index_bounds = ip.bounds
        stats.index_direction = "backward" if ip.direction < 0 else "forward"
        stats.index_sorted = ip.sorted
        stats.keys_examined = 0
        stats.docs_examined = 0
        return self._walk_index(c, ix, ip, plan, stats)

    def _walk_index(self, c: Collection, ix, ip, plan: ScanPlan, stats: ScanStats):
        cur = ix.cursor(ip.ranges, reverse=ip.direction < 0)
        matcher = plan.matcher
        at_key = ip.sorted
        seen: set[bytes] = set()
        n = 64
        while True:
            with self.lock:
                batch = cur.next_batch(n)
            stats.keys_examined = cur.examined
            if not batch:
                return
            n = min(n * 4, 4096)
            deadline.check()                        # maxTimeMS
            for ik, key in batch:
                if key in seen:
                    continue
                if not at_key:
                    seen.add(key)
                raw = self.lookup_key(c, key)
                if raw is None:
                    continue
                stats.docs_examined += 1
                d = bson.decode(raw, CODEC_OPTIONS)
                if at_key:
                    if ik not in ix.doc_keys(d):
                        continue
                    seen.add(key)
                if matcher is None or matcher(d):
                    yield raw, d

    def _state(self, c: Collection) -> tuple[dict, Any]:
        """(memtable view, table snapshot) as the current transaction (or nobody) sees them."""
        tx = CURRENT.get()
        with self.lock:
            if tx is not None:
                return self.txns.mem_view(tx, c), tx.view(c)[0]
            return c.mem_view(), c.snapshot

    def _iter_ids(self, c: Collection, ids: list, plan: ScanPlan, decode: bool, stats: ScanStats):
        seen = set()
        for v in ids:
            key = keystring.encode_key(v)
            if key in seen:
                continue
            seen.add(key)
            raw = self.lookup_key(c, key)
            if raw is None:
                continue
            d = bson.decode(raw, CODEC_OPTIONS)
            if plan.matcher is None or plan.matcher(d):
                yield raw, d

    def _iter_scan(self, c: Collection, plan: ScanPlan, decode: bool, stats: ScanStats, view: dict, snapshot):
        matcher = plan.matcher
        mem_hits = []
        for i, e in enumerate(view.values()):
            if not i & 1023:
                deadline.check()                    # maxTimeMS
            if e.doc is None:
                continue
            if matcher is None:
                mem_hits.append((e.doc, bson.decode(e.doc, CODEC_OPTIONS) if decode else None))
            else:
                d = bson.decode(e.doc, CODEC_OPTIONS)
                if matcher(d):
                    mem_hits.append((e.doc, d))
        stats.memtable_docs = len(mem_hits)
        shadow = view.keys()
        yield from self.reader.scan(c.table, snapshot, plan, set(shadow) if shadow else set(), stats,
                                    decode=decode)
        yield from mem_hits

    # -- the query API -------------------------------------------------------
    def find(self, db: str, coll: str, filter: dict | None = None, *, projection: dict | None = None,
             sort: dict | None = None, skip: int = 0, limit: int = 0, collation: dict | None = None,
             stats: ScanStats | None = None, as_raw: bool = True, hint: Any = None) -> Iterator[Any]:
        """Matching documents as raw BSON bytes (``as_raw``) or dicts, after sort,
        skip, limit and projection. Lazy: a cursor can stream it."""
        from mongolake.query.projection import parse_projection
        from mongolake.query.sort import parse_sort

        c = self.get_collection(db, coll)
        plan_stats = stats if stats is not None else ScanStats()
        if c is None:
            # still validate the query, as MongoDB does on a missing collection
            parse_filter(filter or {})
            if projection:
                parse_projection(projection)
            if sort:
                parse_sort(sort)
            return iter(())
        proj = parse_projection(projection, filter_spec=filter or {}) if projection else None
        srt = parse_sort(sort, collation=collation) if sort else None
        plan = self.plan(c, filter)
        need_decode = srt is not None or proj is not None or not as_raw
        it = self.iter_matching(c, filter, decode=need_decode, stats=plan_stats, plan=plan, hint=hint or None,
                                sort=index_sort(sort, collation), limited=bool(limit))
        if srt is not None and getattr(plan_stats, "index_sorted", False):
            srt = None                              # the index walk yields the sort's order
        return self._finish(it, plan, srt, proj, skip, limit, as_raw)

    def index_top_k(self, db: str, coll: str, filter: dict | None, sort: dict, k: int,
                    stats: ScanStats | None = None) -> list[dict] | None:
        """``[$match, $sort, $limit]``'s documents when an index walk provides the
        sort (it stops after ``k`` matches); None when no index does (the caller
        sorts some other way)."""
        c = self.get_collection(db, coll)
        items = index_sort(sort, None)
        if c is None or items is None or k <= 0 or id_point_keys(filter) is not None:
            return None
        plan = self.plan(c, filter)
        if index_requirement(plan.expr) is not None:
            return None
        ip = self._index_plan(c, plan, filter, None, items, True)
        if ip is None or not ip.sorted:
            return None
        out = []
        for _raw, d in self._iter_index(c, ip, plan, stats if stats is not None else ScanStats()):
            out.append(d)
            if len(out) >= k:
                break
        return out

    def _finish(self, it, plan: ScanPlan, srt, proj, skip: int, limit: int, as_raw: bool) -> Iterator[Any]:
        if srt is not None:
            if limit:
                docs = srt.top_k((d for _raw, d in it), skip + limit)
            else:
                docs = sorted((d for _raw, d in it), key=srt.key)
            rows = ((None, d) for d in docs[skip:])
        else:
            rows = it
            if skip:
                rows = _skip(rows, skip)
        n = 0
        for raw, d in rows:
            if proj is not None:
                pos = None
                if proj.positional and plan.expr is not None:
                    from mongolake.query.matcher import match_position
                    pos = match_position(plan.expr, d)[1]
                d = proj.apply(d, position=pos)
                raw = None
            if as_raw:
                yield raw if raw is not None else bson.encode(d, codec_options=CODEC_OPTIONS)
            else:
                yield d
            n += 1
            if limit and n >= limit:
                return

    def count(self, db: str, coll: str, filter: dict | None = None, *, skip: int = 0, limit: int = 0,
              stats: ScanStats | None = None, hint: Any = None) -> int:
        c = self.get_collection(db, coll)
        if c is None:
            parse_filter(filter or {})
            return 0
        plan = self.plan(c, filter)
        ip = None if id_point_keys(filter) is not None else self._index_plan(c, plan, filter, hint or None)
        if id_point_keys(filter) is not None or ip is not None or index_requirement(plan.expr) is not None:
            n = sum(1 for _ in self.iter_matching(c, filter, plan=plan, stats=stats, hint=hint or None))
        else:
            view, snapshot = self._state(c)
            n = 0
            for i, e in enumerate(view.values()):
                if not i & 1023:
                    deadline.check()                # maxTimeMS
                if e.doc is not None and (plan.matcher is None or plan.matcher(bson.decode(e.doc, CODEC_OPTIONS))):
                    n += 1
            n += self.reader.count(c.table, snapshot, plan, set(view.keys()), stats)
        n = max(0, n - skip) if skip else n
        return min(n, limit) if limit else n

    def distinct(self, db: str, coll: str, key: str, filter: dict | None = None) -> list:
        from .keys import distinct_values

        c = self.get_collection(db, coll)
        if c is None:
            parse_filter(filter or {})
            return []
        out: dict[bytes, Any] = {}
        for _raw, d in self.iter_matching(c, filter, decode=True):
            for v in distinct_values(d, key):
                out.setdefault(keystring.encode_key(v), v)
        return [out[k] for k in sorted(out)]


def index_sort(sort: dict | None, collation: dict | None) -> list[tuple[str, int]] | None:
    """A sort an index walk could provide: plain fields, directions 1/-1, binary
    (simple) string order; else None."""
    if not sort or not isinstance(sort, dict):
        return None
    if collation is not None and not (isinstance(collation, dict) and collation.get("locale") == "simple"):
        return None                                 # a collation orders strings differently
    out = []
    for f, d in sort.items():
        if isinstance(d, bool) or not isinstance(d, (int, float)) or d not in (1, -1) or f.startswith("$"):
            return None
        out.append((f, int(d)))
    return out


def _skip(rows, n: int):
    for i, r in enumerate(rows):
        if i >= n:
            yield r
