"""Geospatial query operators: ``$geoWithin``/``$within``, ``$geoIntersects``,
``$near``/``$nearSphere``/``$geoNear`` (filter form).

Parsing follows MongoDB's ``expression_geo_parser`` (messages and codes);
the nodes are :class:`~mongolake.query.filter.CustomPathNode` subclasses whose
``element_test`` evaluates a stored value exactly, so ``$geoWithin`` and
``$geoIntersects`` work with or without an index. :class:`GeoNear` declares
``needs_index = "2dsphere"``: the engine answers it with
:func:`mongolake.engine.indexing.geo.iter_near` (nearest first, with
``geoNearDistance`` metadata), and its ``element_test`` checks the
``$minDistance``/``$maxDistance`` band so re-checking a candidate is exact.

Units: a GeoJSON query point measures distances in metres; a legacy
coordinate pair in radians (MongoDB's rule for a 2dsphere index, the only
geo index MongoLake has).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import MISSING
from mongolake.query.filter import CustomPathNode
from mongolake.query.paths import iter_path

from .geojson import (
    GeoError, Geometry, flat_point, is_legacy_form, is_number, num, parse_geojson, parse_query_point,
    sphere_vec, try_stored, valid_lnglat,
)
from .predicates import Cap, FlatBox, FlatCircle, FlatPolygon, PolygonRegion, distance, intersects
from .render import show, show_elem
from .sphere import EARTH_RADIUS_M, to_vec

NEAR_OPS = ("$near", "$nearSphere", "$geoNear")


def _bad(msg: str) -> MongoError:
    return MongoError(ErrorCode.BadValue, msg)


# -- nodes ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GeoMatch(CustomPathNode):
    """``$geoWithin`` / ``$geoIntersects``: ``region`` is a predicate region
    (within) or a :class:`Geometry` (intersects)."""
    op: str = "$geoWithin"
    spec: Any = None
    region: Any = field(default=None, compare=False, repr=False)

    def element_test(self) -> Callable[[Any], bool]:
        region = self.region
        if self.op == "$geoIntersects":
            def test(v: Any) -> bool:
                g = try_stored(v)
                return g is not None and intersects(g, region)
        else:
            def test(v: Any) -> bool:
                g = try_stored(v)
                return g is not None and region.within(g)
        return test


@dataclass(frozen=True, slots=True)
class GeoNear(CustomPathNode):
    """``$near`` / ``$nearSphere``: ``lng``/``lat`` of the query point, the
    distance band in radians, ``radians`` when distances are reported in
    radians (legacy query point) rather than metres."""
    op: str = "$near"
    lng: float = 0.0
    lat: float = 0.0
    min_rad: float = 0.0
    max_rad: float = math.inf
    radians: bool = False

    needs_index = "2dsphere"

    @property
    def vec(self):
        return to_vec(self.lng, self.lat)

    def scale(self) -> float:
        """Multiply a distance in radians by this to get the reported unit."""
        return 1.0 if self.radians else EARTH_RADIUS_M

    def element_test(self) -> Callable[[Any], bool]:
        p, lo, hi = self.vec, self.min_rad, self.max_rad

        def test(v: Any) -> bool:
            g = try_stored(v)
            if g is None:
                return False
            d = distance(p, g)
            return lo <= d <= hi
        return test

    def nearest(self, doc: Any) -> tuple[float, Any]:
        """``(distance in radians, stored value)`` of the closest geometry at the
        path, or ``(inf, None)`` when that distance is outside the band — as in
        MongoDB, a document's distance is the smallest over all its geometries."""
        p = self.vec
        best, loc = math.inf, None
        for v in geo_values(doc, self.parts):
            g = try_stored(v)
            if g is None:
                continue
            d = distance(p, g)
            if d < best:
                best, loc = d, v
        if not self.min_rad <= best <= self.max_rad:
            return math.inf, None
        return best, loc


def geo_values(doc: Any, parts: tuple[str, ...]) -> Iterator[Any]:
    """The candidate geometries at a path, as a 2dsphere index sees them: a
    trailing array is one legacy point when its first element is a number,
    else an array of geometries; null, missing and empty arrays hold none."""
    for _name, v in geo_named_values(doc, parts):
        yield v


def geo_named_values(doc: Any, parts: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """:func:`geo_values` with the element name MongoDB's messages use for each
    (the field name, or the array index of a geometry in an array)."""
    for v, _ in iter_path(doc, parts, False):
        if v is MISSING or v is None:
            continue
        if isinstance(v, list):
            if not v:
                continue
            if is_number(v[0]):
                yield parts[-1], v
            else:
                for i, e in enumerate(v):
                    yield str(i), e
        else:
            yield parts[-1], v


# -- $near ----------------------------------------------------------------------------------

def parse_near(path: str, obj: Mapping, nested: bool) -> GeoNear:
    """``{path: {$near|$nearSphere|$geoNear: point, $minDistance, $maxDistance}}``."""
    if nested:
        raise _bad("$near, $nearSphere and $geoNear are not allowed inside $elemMatch")
    legacy = _parse_legacy_near(obj)
    if legacy is None:
        legacy = _parse_new_near(obj)
    op, lng, lat, is_geojson, lo, hi = legacy
    if not is_geojson and not valid_lnglat(lng, lat):
        raise _bad("Legacy point is out of bounds for spherical query")
    if is_geojson:
        lo_rad, hi_rad = lo / EARTH_RADIUS_M, hi / EARTH_RADIUS_M
    else:
        lo_rad, hi_rad = lo, hi
    return GeoNear(path, op=op, lng=lng, lat=lat, min_rad=lo_rad, max_rad=hi_rad, radians=not is_geojson)


def _parse_legacy_near(obj: Mapping):
    has, op, pt = False, "$near", None
    lo, hi = 0.0, math.inf
    for k, e in obj.items():
        if k in NEAR_OPS:
            if not isinstance(e, (dict, list)):
                return None
            try:
                pt = parse_query_point(e)
            except GeoError:
                try:
                    x, y, hi = _point_with_max(e)
                    pt = (x, y, False)
                except GeoError:
                    if isinstance(e, list) or "$geometry" not in e:
                        raise _bad(f"invalid point provided to geo near query: {show(e)}") from None
                    continue
            if hi < 0:
                raise MongoError(18522, "max distance must be non-negative")
            has, op = True, k
        elif k == "$minDistance":
            if not is_number(e):
                raise MongoError(16893, "$minDistance must be a number")
            lo = num(e)
            if not lo >= 0:
                raise MongoError(16894, "$minDistance must be non-negative")
        elif k == "$maxDistance":
            if not is_number(e):
                raise MongoError(16895, "$maxDistance must be a number")
            hi = num(e)
            if not hi >= 0:
                raise MongoError(16896, "$maxDistance must be non-negative")
        elif k == "$uniqueDocs":
            continue
        else:
            raise MongoError(34413, f"invalid argument in geo near query: {k}")
    if not has:
        return None
    return op, pt[0], pt[1], pt[2], lo, hi


def _point_with_max(e: Any) -> tuple[float, float, float]:
    vals = list(e.values()) if isinstance(e, dict) else list(e)
    if len(vals) != 3 or not all(is_number(v) for v in vals):
        raise GeoError("Point with max distance must contain exactly three numeric elements")
    return num(vals[0]), num(vals[1]), num(vals[2])


def _parse_new_near(obj: Mapping):
    items = list(obj.items())
    if not items:
        raise _bad("empty geo near query object")
    if len(items) > 1:
        raise _bad("geo near accepts just one argument when querying for a GeoJSON point. Extra field found: "
                   f"{show_elem(*items[1])}")
    op, e = items[0]
    if not isinstance(e, dict):
        raise _bad("geo near query argument is not an object")
    if op not in NEAR_OPS:
        raise _bad(f"invalid geo near query operator: {op}")
    pt = None
    lo, hi = 0.0, math.inf
    for k, v in e.items():
        if k == "$geometry":
            if isinstance(v, (dict, list)):
                try:
                    pt = parse_query_point(v)
                except GeoError as exc:
                    raise _bad(f"invalid point in geo near query $geometry argument: {show(v)}  "
                               f"{exc.message}") from None
                if not pt[2]:
                    raise _bad(f"$near requires geojson point, given {show(v)}")
        elif k == "$minDistance":
            if not is_number(v):
                raise _bad("$minDistance must be a number")
            lo = num(v)
            if not (lo >= 0 and math.isfinite(lo)):
                raise _bad("$minDistance must be non-negative")
        elif k == "$maxDistance":
            if not is_number(v):
                raise _bad("$maxDistance must be a number")
            hi = num(v)
            if not (hi >= 0 and math.isfinite(hi)):
                raise _bad("$maxDistance must be non-negative")
        else:
            raise _bad(f"invalid argument in geo near query: {k}")
    if pt is None:
        raise _bad("$geometry is required for geo near query")
    return op, pt[0], pt[1], True, lo, hi


# -- $geoWithin / $geoIntersects -------------------------------------------------------------

def parse_geo_predicate(path: str, op: str, val: Any) -> GeoMatch:
    """The node of ``{path: {$geoWithin|$geoIntersects|$within: val}}``."""
    whole = {op: val}
    if not isinstance(val, dict):
        raise _bad("geometry must be an object")
    pred = "$geoIntersects" if op == "$geoIntersects" else "$geoWithin"
    region = None
    for k, v in val.items():
        if region is not None and op == "$geoWithin":
            raise _bad(f"$geoWithin doesn't accept multiple shapes {show_elem(op, val)}")
        if k == "$uniqueDocs":
            continue
        region = _query_shape(k, v, pred, whole)
    if region is None:
        raise _bad("geo query doesn't have any geometry")
    return GeoMatch(path, op=pred, spec=val, region=region)


def _query_shape(k: str, v: Any, pred: str, whole: dict) -> Any:
    if k not in ("$box", "$center", "$polygon", "$centerSphere", "$geometry") or not isinstance(v, (dict, list)):
        raise _bad(f"unknown geo specifier: {show_elem(k, v)}")
    elems = list(v.values()) if isinstance(v, dict) else list(v)
    flat = k in ("$box", "$center", "$polygon")
    if flat and pred == "$geoIntersects":
        _flat_shape(k, elems)                  # parse errors first, as MongoDB does
        raise _bad(f"$geoIntersect not supported with provided geometry: {show(whole)}")
    if flat:
        return _flat_shape(k, elems)
    if k == "$centerSphere":
        x, y = flat_point(elems[0] if elems else MISSING, False)
        center = sphere_vec(x, y)
        r = elems[1] if len(elems) > 1 else MISSING
        if not is_number(r) or not num(r) >= 0:
            raise _bad(f"Radius must be a non-negative number: {show(r) if r is not MISSING else ''}")
        if len(elems) > 2:
            raise _bad("Only 2 fields allowed for circular region, but more were provided")
        if pred == "$geoIntersects":
            raise _bad(f"$geoIntersect not supported with provided geometry: {show(whole)}")
        return Cap(center, num(r))
    # $geometry
    if is_legacy_form(v):
        x, y, _ = parse_query_point(v)
        if pred == "$geoWithin":
            raise _bad(f"$within not supported with provided geometry: {show(whole)}")
        if not valid_lnglat(x, y):
            raise _bad(f"$geoIntersect not supported with provided geometry: {show(whole)}")
        return Geometry("legacy", points=[to_vec(x, y)], flat=(x, y))
    g = parse_geojson(v)
    if pred == "$geoIntersects":
        return g
    if g.points or g.lines or not g.polygons:
        raise _bad(f"$within not supported with provided geometry: {show(whole)}")
    return PolygonRegion(g.polygons)


def _flat_shape(k: str, elems: list) -> Any:
    if k == "$box":
        a = flat_point(elems[0] if elems else MISSING, False)
        b = flat_point(elems[1] if len(elems) > 1 else MISSING, False)
        return FlatBox(a, b)
    if k == "$center":
        c = flat_point(elems[0] if elems else MISSING, False)
        r = elems[1] if len(elems) > 1 else MISSING
        if not is_number(r) or not num(r) >= 0:
            raise _bad(f"Radius must be a non-negative number: {show(r) if r is not MISSING else ''}")
        if len(elems) > 2:
            raise _bad("Only 2 fields allowed for circular region, but more were provided")
        return FlatCircle(c, num(r))
    pts = [flat_point(e, False) for e in elems]
    if len(pts) < 3:
        raise _bad(f"Polygon must have at least 3 points, instead got {len(pts)} vertices")
    return FlatPolygon(pts)


__all__ = ["parse_near", "parse_geo_predicate", "GeoNear", "GeoMatch", "geo_values", "geo_named_values",
           "EARTH_RADIUS_M"]
