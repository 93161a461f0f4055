"""2dsphere indexes and the ``$near`` / ``$nearSphere`` reads that need them.

A :class:`GeoIndex` is built and maintained by the
:class:`~mongolake.engine.indexing.manager.IndexManager` like every index
(in memory, from the table, on first use). For each ``2dsphere`` field of its
key pattern it keeps

* every *point* (GeoJSON Point / MultiPoint, legacy pairs) in a
  :class:`~.geo_cells.PointStore` — a Z-order quad-tree over longitude and
  latitude searched nearest-first;
* every other geometry (lines, polygons, collections) in a plain list, whose
  exact distances are computed per query (fine for the usual few hundred
  shapes; large shape collections make ``$near`` linear in their number).

Other fields of a compound key pattern are not indexed here: the engine's
matcher re-checks every candidate against the whole filter.

:func:`check_document` is the write-time validation (16755 "Can't extract geo
keys") that MongoDB performs when it generates index keys; the write path
calls it for collections that have a 2dsphere index.
"""
from __future__ import annotations

import heapq
import math
from itertools import islice
from typing import Any, Iterator

import bson

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.query.geo import EARTH_RADIUS_M, GeoNear, geo_named_values, geo_values
from mongolake.query.geo.geojson import GeoError, is_number, parse_stored
from mongolake.query.geo.predicates import distance
from mongolake.query.geo.render import show, show_elem
from mongolake.query.geo.sphere import to_lnglat
from mongolake.query.meta import attach

from .geo_cells import TAIL_MAX, PointStore

NoQueryExecutionPlans = 291
CannotCreateIndex = 67
GEO_VERSIONS = (1, 2, 3)


def geo_fields(spec: dict) -> list[str]:
    return [f for f, v in spec.get("key", {}).items() if v == "2dsphere"]


class _Field:
    def __init__(self, path: str):
        self.path = path
        self.parts = tuple(path.split("."))
        self.points = PointStore()
        self.shapes: dict[int, Any] = {}          # eid -> Geometry (non-point geometries)


def _values(doc: dict, parts: tuple[str, ...]):
    """:func:`geo_values`, with a shortcut for a top-level field."""
    if len(parts) != 1 or type(doc) is not dict:
        return geo_values(doc, parts)
    v = doc.get(parts[0])
    if v is None:
        return ()
    if type(v) is list:
        if not v:
            return ()
        return (v,) if is_number(v[0]) else v
    return (v,)


def _simple_point(v: Any) -> list[tuple[float, float]] | None:
    """The common case without the general parser: ``{type: "Point", coordinates:
    [lng, lat]}`` or ``[lng, lat]`` with plain in-range numbers; else None."""
    if type(v) is dict:
        if len(v) != 2 or v.get("type") != "Point":
            return None
        v = v.get("coordinates")
    if type(v) is not list or len(v) != 2:
        return None
    x, y = v
    tx, ty = type(x), type(y)
    if (tx is float or tx is int) and (ty is float or ty is int) and -180 <= x <= 180 and -90 <= y <= 90:
        return [(float(x), float(y))]
    return None


class GeoIndex:
    kind = "2dsphere"

    # -- catalog ---------------------------------------------------------------------------
    @classmethod
    def validate_spec(cls, spec: dict) -> dict:
        out = dict(spec)
        for f, v in out["key"].items():
            if v == "hashed":
                raise MongoError(ErrorCode.CannotCreateIndex,
                                 f"Can't use more than one index plugin for a single index: {show(out['key'])}")
        ver = out.get("2dsphereIndexVersion", 3)
        if isinstance(ver, bool) or not isinstance(ver, (int, float)) or ver not in GEO_VERSIONS:
            raise MongoError(CannotCreateIndex,
                             f"unsupported geo index version {{ 2dsphereIndexVersion : {show(ver)} }}, only "
                             f"support versions: [1,2,3]")
        out["2dsphereIndexVersion"] = int(ver)
        if out.get("unique"):
            raise MongoError(ErrorCode.CannotCreateIndex, "Index type '2dsphere' does not support the unique option")
        return out

    def __init__(self, spec: dict):
        self.spec = spec
        self.name = spec["name"]
        self.fields = [_Field(p) for p in geo_fields(spec)]
        self.by_key: dict[bytes, list[tuple[int, int]]] = {}     # _key -> [(field no, eid)]
        self.keys: dict[int, bytes] = {}                          # eid -> _key
        self.invalid: dict[bytes, str] = {}      # _key -> 16755 message, documents holding invalid geometry
        self._next = 0
        self._building = True
        self._bulk: list[tuple[list[int], list[float], list[float]]] = [([], [], []) for _ in self.fields]
        pfe = spec.get("partialFilterExpression")
        self._partial = None
        if pfe:
            from mongolake.query.filter import parse_filter
            from mongolake.query.matcher import compile_matcher
            self._partial = compile_matcher(parse_filter(pfe))

    # -- maintenance -------------------------------------------------------------------------
    def add(self, doc: dict, key: bytes) -> None:
        if self._partial is not None and not self._partial(doc):
            return
        entries = self.by_key.get(key)
        for fi, fld in enumerate(self.fields):
            for v in _values(doc, fld.parts):
                pts = _simple_point(v)
                if pts is None:
                    try:
                        g = parse_stored(v)
                    except MongoError as e:     # refused at write time; tolerated in old data
                        self.invalid.setdefault(key, f"Can't extract geo keys: {show(doc)}  {e.message}")
                        continue
                    if g.lines or g.polygons:
                        eid = self._eid(key)
                        fld.shapes[eid] = g
                        entries = self._entry(key, entries, fi, eid)
                        continue
                    pts = [to_lnglat(p) for p in g.points]
                for lng, lat in pts:
                    eid = self._eid(key)
                    if self._building:
                        b = self._bulk[fi]
                        b[0].append(eid)
                        b[1].append(lng)
                        b[2].append(lat)
                    else:
                        fld.points.add(eid, lng, lat)
                        if len(fld.points.tail) > max(TAIL_MAX, len(fld.points.codes) // 32):
                            fld.points.merge()
                    entries = self._entry(key, entries, fi, eid)

    def _eid(self, key: bytes) -> int:
        self._next += 1
        self.keys[self._next] = key
        return self._next

    def _entry(self, key: bytes, entries, fi: int, eid: int):
        if entries is None:
            entries = self.by_key[key] = []
        entries.append((fi, eid))
        return entries

    def remove(self, doc: dict, key: bytes) -> None:
        self.invalid.pop(key, None)
        for fi, eid in self.by_key.pop(key, ()):
            fld = self.fields[fi]
            self.keys.pop(eid, None)
            if fld.shapes.pop(eid, None) is None:
                fld.points.remove(eid)

    def finish_build(self) -> None:
        for fld, (eids, lngs, lats) in zip(self.fields, self._bulk):
            fld.points.bulk(eids, lngs, lats)
        self._bulk = []
        self._building = False

    def verify_build(self, c: Any = None) -> None:
        """Raise 16755 when the indexed documents hold a value that is not valid
        geometry — what ``createIndexes`` answers in MongoDB (meant to be called
        by the index manager before a new index is put in the catalog)."""
        if self.invalid:
            raise MongoError(16755, next(iter(self.invalid.values())))

    def describe(self) -> dict:
        return {"indexName": self.name, "keyPattern": dict(self.spec["key"]), "kind": "2dsphere",
                "isPartial": self._partial is not None,
                "points": sum(len(f.points) for f in self.fields),
                "shapes": sum(len(f.shapes) for f in self.fields)}

    def entry_count(self) -> int:
        return len(self.keys)

    # -- search ------------------------------------------------------------------------------
    def field(self, path: str) -> _Field | None:
        return next((f for f in self.fields if f.path == path), None)

    def candidates(self, fld: _Field, node: GeoNear, counters: dict) -> Iterator[tuple[float, bytes | None]]:
        """``(distance in radians, _key)`` nearest first (call under ``engine.lock``
        between resumptions; the caller re-checks every candidate)."""
        p = node.vec
        shapes = []
        for eid, g in fld.shapes.items():
            d = distance(p, g)
            if node.min_rad <= d <= node.max_rad:
                shapes.append((d, eid))
        shapes.sort()
        counters["examined"] = counters.get("examined", 0) + len(fld.shapes)
        pts = fld.points.nearest(node.lng, node.lat, node.min_rad, node.max_rad, counters)
        for d, eid in heapq.merge(pts, shapes):
            yield d, self.keys.get(eid)


# -- write-time validation ---------------------------------------------------------------------

def check_document(spec: dict, doc: dict) -> None:
    """Raise 16755 when ``doc`` holds a value a 2dsphere index cannot index."""
    pfe = spec.get("partialFilterExpression")
    if pfe:
        from mongolake.query.filter import parse_filter
        from mongolake.query.matcher import compile_matcher
        if not compile_matcher(parse_filter(pfe))(doc):
            return
    for path in geo_fields(spec):
        parts = tuple(path.split("."))
        for name, v in geo_named_values(doc, parts):
            try:
                g = parse_stored(v)
            except GeoError as e:
                raise MongoError(16755, f"Can't extract geo keys: {show(doc)}  {e.message}") from None
            if g.kind == "legacy" and not g.points:
                raise MongoError(16755, f"Can't extract geo keys: {show(doc)}  can't project geometry into "
                                        f"spherical CRS: {show_elem(name, v)}")


# -- $near reads --------------------------------------------------------------------------------

def index_spec_for(c: Any, path: str) -> dict | None:
    for s in c.meta.indexes:
        if s.get("key", {}).get(path) == "2dsphere":
            return s
    return None


def no_index_error(c: Any, node: GeoNear) -> MongoError:
    maxd = node.max_rad * node.scale() if math.isfinite(node.max_rad) else 1.79769e+308
    return MongoError(NoQueryExecutionPlans,
                      f"error processing query: ns={c.ns}Tree: GEONEAR  field={node.path} maxdist={maxd:g} "
                      f"isNearSphere={int(node.op == '$nearSphere')}\nSort: {{}}\nProj: {{}}\n planner returned "
                      "error :: caused by :: unable to find index for $geoNear query")


def iter_near(engine: Any, c: Any, plan: Any, node: GeoNear, stats: Any) -> Iterator[tuple[bytes | None, dict]]:
    """The documents matching ``plan`` nearest first, with ``geoNearDistance``
    (metres for a GeoJSON query point, radians for a legacy one) and
    ``geoNearPoint`` (the stored location) metadata."""
    _check_top_level(plan.expr, node)
    spec = index_spec_for(c, node.path)
    if spec is None:
        raise no_index_error(c, node)
    from ..txn import CURRENT
    ix = None
    if CURRENT.get() is None:
        engine.indexes.ensure_special(c, "2dsphere")
        with engine.lock:
            ix = next((x for x in engine.indexes.special(c, "2dsphere") if x.name == spec["name"]), None)
    stats.index_name = spec["name"]
    stats.index_bounds = {node.path: [f"{node.op} ({node.lng}, {node.lat}) nearest first"]}
    stats.keys_examined = 0
    stats.docs_examined = 0
    if ix is None:                      # a transaction's snapshot or a view of the past: exact scan
        return _scan_near(engine, c, plan, node, stats)
    return _index_near(engine, c, plan, node, stats, ix, ix.field(node.path))


def _check_top_level(expr: Any, node: GeoNear) -> None:
    """MongoDB's CanonicalQuery rules: one near predicate, at the top level (or in
    the top-level ``$and``), never with ``$text``."""
    from mongolake.query.filter import And, walk
    nears = [n for n in walk(expr) if isinstance(n, GeoNear)]
    if len(nears) > 1:
        raise MongoError(ErrorCode.BadValue, "Too many geoNear expressions")
    if any(getattr(n, "needs_index", None) == "text" for n in walk(expr)):
        raise MongoError(ErrorCode.BadValue, "text and geoNear not allowed in same query")
    def top(e: Any) -> bool:                     # reachable through $and only
        return e is node or (isinstance(e, And) and any(top(ch) for ch in e.children))
    if not top(expr):
        raise MongoError(ErrorCode.BadValue, "geoNear must be top-level expr")


def _index_near(engine, c, plan, node: GeoNear, stats, ix: GeoIndex, fld: _Field):
    from mongolake import deadline
    counters: dict = {}
    gen = ix.candidates(fld, node, counters)
    seen: set[bytes] = set()
    scale = node.scale()
    matcher = None if plan.expr is node else plan.matcher   # nearest() below is the near test itself
    batch_size = 16
    while True:
        deadline.check()
        with engine.lock:
            batch = list(islice(gen, batch_size))
            stats.keys_examined = counters.get("examined", 0)
        if not batch:
            return
        batch_size = min(batch_size * 2, 1024)
        for dist, key in batch:
            if key is None or key in seen:
                continue
            raw = engine.lookup_key(c, key)
            if raw is None:
                continue
            stats.docs_examined += 1
            d = bson.decode(raw, CODEC_OPTIONS)
            true_dist, loc = node.nearest(d)
            if abs(true_dist - dist) > 1e-9:     # stale entry: the document's own entry comes elsewhere
                continue
            seen.add(key)
            if matcher is not None and not matcher(d):
                continue
            yield raw, attach(d, geoNearDistance=true_dist * scale, geoNearPoint=loc)


def _scan_near(engine, c, plan, node: GeoNear, stats):
    scale = node.scale()
    found = []
    for i, (raw, d) in enumerate(engine._iter_scan(c, plan, True, stats, *engine._state(c))):
        dist, loc = node.nearest(d)
        if math.isfinite(dist):
            found.append((dist, i, raw, d, loc))
    found.sort(key=lambda t: (t[0], t[1]))
    stats.docs_examined = len(found)
    for dist, _i, raw, d, loc in found:
        yield raw, attach(d, geoNearDistance=dist * scale, geoNearPoint=loc)


__all__ = ["GeoIndex", "iter_near", "check_document", "index_spec_for", "geo_fields", "EARTH_RADIUS_M"]

GeoIndex.check_document = staticmethod(check_document)     # write-time validation hook (see writes.py)
