"""GeoJSON and legacy coordinate parsing with MongoDB's validation and messages.

Two entry points mirror MongoDB's ``GeometryContainer``:

* :func:`parse_stored` — a value stored in a document (what a 2dsphere index
  extracts keys from, what ``$geoWithin``/``$geoIntersects``/``$near`` test):
  GeoJSON objects, legacy pairs ``[lng, lat]`` / ``{lng: x, lat: y}`` (extra
  elements allowed);
* :func:`parse_query_point` — a query point (legacy pair or GeoJSON Point, no
  extra elements).

Errors are :class:`GeoError` (BadValue, code 2) with MongoDB's wording, e.g.
``Longitude/latitude is out of bounds, lng: 200 lat: 0``.
"""
from __future__ import annotations

import math
from typing import Any

from bson.decimal128 import Decimal128

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import MISSING

from .render import fmt_double, show, type_name
from .sphere import Loop, Vec, angle, loop_problem, to_vec, winding

CRS_OK = ("urn:ogc:def:crs:OGC:1.3:CRS84", "EPSG:4326")
CRS_STRICT = "urn:x-mongodb:crs:strictwinding:EPSG:4326"
GEOJSON_TYPES = ("Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon",
                 "GeometryCollection")


class GeoError(MongoError):
    def __init__(self, msg: str):
        super().__init__(ErrorCode.BadValue, msg)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float, Decimal128)) and not isinstance(v, bool)


def num(v: Any) -> float:
    if isinstance(v, Decimal128):
        return float(v.to_decimal())
    return float(v)


class Polygon:
    """A shell loop and its holes."""

    __slots__ = ("loops",)

    def __init__(self, loops: list[Loop]):
        self.loops = loops

    def contains(self, p: Vec) -> bool:
        if not self.loops[0].contains(p):
            return False
        return not any(h.contains(p) for h in self.loops[1:])

    def edges(self):
        for lp in self.loops:
            yield from lp.edges()

    def vertices(self):
        for lp in self.loops:
            yield from lp.vertices


class Geometry:
    """A parsed geometry: points, polylines and polygons on the sphere.
    ``flat`` is the (x, y) of a legacy point (or of a GeoJSON point, which
    projects to the plane) for the planar legacy shapes."""

    __slots__ = ("kind", "points", "lines", "polygons", "flat")

    def __init__(self, kind: str, points=(), lines=(), polygons=(), flat=None):
        self.kind = kind
        self.points: list[Vec] = list(points)
        self.lines: list[list[Vec]] = list(lines)
        self.polygons: list[Polygon] = list(polygons)
        self.flat: tuple[float, float] | None = flat

    def extend(self, other: "Geometry") -> None:
        self.points += other.points
        self.lines += other.lines
        self.polygons += other.polygons


# -- points --------------------------------------------------------------------------

def _first_two(v: Any) -> tuple[list, bool]:
    """The elements of an array or object (values, in order) and whether it is one."""
    if isinstance(v, dict):
        return list(v.values()), True
    if isinstance(v, list):
        return v, True
    return [], False


def flat_point(v: Any, allow_extra: bool) -> tuple[float, float]:
    """GeoParser::parseFlatPointCoordinates + finiteness."""
    elems, ok = _first_two(v)
    if not ok:
        raise GeoError(f"Point must be an array or object, instead got type {type_name(v)}")
    x = elems[0] if elems else MISSING
    if not is_number(x):
        raise GeoError(f"Point must only contain numeric elements, instead got type {type_name(x)}")
    y = elems[1] if len(elems) > 1 else MISSING
    if not is_number(y):
        raise GeoError(f"Point must only contain numeric elements, instead got type {type_name(y)}")
    if not allow_extra and len(elems) > 2:
        raise GeoError("Point must only contain two numeric elements")
    fx, fy = num(x), num(y)
    if not (math.isfinite(fx) and math.isfinite(fy)):
        raise GeoError("Point coordinates must be finite numbers")
    return fx, fy


def valid_lnglat(lng: float, lat: float) -> bool:
    return -180.0 <= lng <= 180.0 and -90.0 <= lat <= 90.0


def sphere_vec(lng: float, lat: float) -> Vec:
    if not valid_lnglat(lng, lat):
        raise GeoError(f"Longitude/latitude is out of bounds, lng: {fmt_double(lng)} lat: {fmt_double(lat)}")
    return to_vec(lng, lat)


def _coordinate(v: Any) -> tuple[Vec, tuple[float, float]]:
    if not isinstance(v, list):
        raise GeoError(f"GeoJSON coordinates must be an array, instead got type {type_name(v)}")
    x, y = flat_point(v, True)
    return sphere_vec(x, y), (x, y)


def _coordinates(v: Any) -> list[Vec]:
    if not isinstance(v, list):
        raise GeoError(f"GeoJSON coordinates must be an array of coordinates, instead got type {type_name(v)}")
    return [_coordinate(c)[0] for c in v]


def _dedupe(vs: list[Vec]) -> list[Vec]:
    out: list[Vec] = []
    for v in vs:
        if not out or out[-1] != v:
            out.append(v)
    return out


# -- GeoJSON ---------------------------------------------------------------------------

def _crs(obj: dict, allow_strict: bool = False) -> str:
    if "crs" not in obj:
        return "sphere"
    c = obj["crs"]
    if not isinstance(c, dict):
        raise GeoError(f"GeoJSON CRS must be an object, instead got type {type_name(c)}")
    if c.get("type") != "name":
        raise GeoError('GeoJSON CRS must have field "type": "name"')
    props = c.get("properties", MISSING)
    if not isinstance(props, dict):
        raise GeoError(f'CRS must have field "properties" which is an object, instead got type {type_name(props)}')
    name = props.get("name", MISSING)
    if not isinstance(name, str):
        raise GeoError(f'In CRS, "properties.name" must be a string, instead got type {type_name(name)}')
    if name in CRS_OK:
        return "sphere"
    if name == CRS_STRICT:
        if not allow_strict:
            raise GeoError("Strict winding order CRS is only supported by polygon")
        return "strict"
    raise GeoError(f"Unknown CRS name: {name}")


def _line(coords: Any) -> list[Vec]:
    vs = _dedupe(_coordinates(coords))
    if len(vs) < 2:
        raise GeoError(f"GeoJSON LineString must have at least 2 vertices, instead got {len(vs)} vertices: "
                       f"{show(coords)}")
    for i in range(len(vs) - 1):
        a, b = vs[i], vs[i + 1]
        if a[0] == -b[0] and a[1] == -b[1] and a[2] == -b[2]:
            raise GeoError(f"GeoJSON LineString is not valid: Vertices {i} and {i + 1} are antipodal "
                           f"{show(coords)}")
    return vs


def _polygon(coords: Any) -> Polygon:
    if not isinstance(coords, list):
        raise GeoError(f"Polygon coordinates must be an array, instead got type {type_name(coords)}")
    loops: list[Loop] = []
    for ring in coords:
        vs = _coordinates(ring)
        if not vs:
            raise GeoError(f"Loop has no vertices: {show(ring)}")
        if vs[0] != vs[-1]:
            raise GeoError(f"Loop is not closed, first vertex does not equal last vertex: {show(ring)}")
        vs = _dedupe(vs)[:-1]
        if len(vs) < 3:
            raise GeoError(f"Loop must have at least 3 different vertices, {len(vs)} unique vertices were "
                           f"provided: {show(ring)}")
        problem = loop_problem(vs)
        if problem:
            raise GeoError(f"Loop is not valid: {show(ring)} {problem}")
        loop = Loop(vs)
        if loops and not _loop_inside(loop, loops[0]):
            raise GeoError("Secondary loops not contained by first exterior loop - secondary loops must be "
                           f"holes: {show(ring)} first loop: {show(coords[0])}")
        loops.append(loop)
    if not loops:
        raise GeoError("Polygon has no loops.")
    return Polygon(loops)


def _loop_inside(inner: Loop, outer: Loop) -> bool:
    from .sphere import arcs_cross
    if not all(outer.contains(v) or outer.boundary_distance(v) < 1e-12 for v in inner.vertices):
        return False
    for a, b in inner.edges():
        for c, d in outer.edges():
            if arcs_cross(a, b, c, d):
                return False
    return True


def parse_geojson(obj: dict) -> Geometry:
    """A GeoJSON object (``type`` checked by the caller or here)."""
    t = obj.get("type", MISSING)
    if not isinstance(t, str) or t not in GEOJSON_TYPES:
        raise GeoError(f"unknown GeoJSON type: {show(obj)}")
    if t == "Polygon":
        crs = _crs(obj, allow_strict=True)
        if crs == "strict":
            raise MongoError(ErrorCode.NotImplemented,
                             "big polygons (strict winding order CRS) are not supported by MongoLake")
        return Geometry(t, polygons=[_polygon(obj.get("coordinates", MISSING))])
    _crs(obj)
    coords = obj.get("coordinates", MISSING)
    if t == "Point":
        x, y = flat_point(coords, True)
        return Geometry(t, points=[sphere_vec(x, y)], flat=(x, y))
    if t == "LineString":
        return Geometry(t, lines=[_line(coords)])
    if t == "MultiPoint":
        pts = _coordinates(coords)
        if not pts:
            raise GeoError("MultiPoint coordinates must have at least 1 element")
        return Geometry(t, points=pts)
    if t == "MultiLineString":
        if not isinstance(coords, list):
            raise GeoError(f"MultiLineString coordinates must be an array, instead got type {type_name(coords)}")
        lines = [_line(c) for c in coords]
        if not lines:
            raise GeoError("MultiLineString coordinates must have at least 1 element")
        return Geometry(t, lines=lines)
    if t == "MultiPolygon":
        if not isinstance(coords, list):
            raise GeoError(f"MultiPolygon coordinates must be an array, instead got type {type_name(coords)}")
        polys = [_polygon(c) for c in coords]
        if not polys:
            raise GeoError("MultiPolygon coordinates must have at least 1 element")
        return Geometry(t, polygons=polys)
    geoms = obj.get("geometries", MISSING)
    if not isinstance(geoms, list):
        raise GeoError(f"GeometryCollection geometries must be an array, instead got type {type_name(geoms)}")
    if not geoms:
        raise GeoError("GeometryCollection geometries must have at least 1 element")
    out = Geometry(t)
    for i, g in enumerate(geoms):
        if not isinstance(g, dict):
            raise GeoError(f'Element {i} of "geometries" must be an object, instead got type {type_name(g)}: '
                           f"{show(g)}")
        gt = g.get("type")
        if not isinstance(gt, str) or gt not in GEOJSON_TYPES:
            raise GeoError(f"Unknown GeoJSON type: {show(g)}")
        if gt == "GeometryCollection":
            raise GeoError(f"GeometryCollections cannot be nested: {show(g)}")
        out.extend(parse_geojson(g))
    return out


# -- entry points --------------------------------------------------------------------------

def parse_stored(v: Any) -> Geometry:
    """GeometryContainer::parseFromStorage: a stored GeoJSON object or legacy point."""
    if not isinstance(v, (dict, list)):
        raise GeoError(f"geo element must be an array or object: {show(v)}")
    if isinstance(v, dict):
        try:
            return parse_geojson(v)
        except GeoError as first:
            try:
                x, y = flat_point(v, True)
            except GeoError:
                raise first from None
            return _legacy(x, y)
    x, y = flat_point(v, True)
    return _legacy(x, y)


def _legacy(x: float, y: float) -> Geometry:
    pts = [to_vec(x, y)] if valid_lnglat(x, y) else []
    return Geometry("legacy", points=pts, flat=(x, y))


def try_stored(v: Any) -> Geometry | None:
    """:func:`parse_stored`, or None for a value that is not a valid geometry
    (what queries do: such values never match)."""
    if not isinstance(v, (dict, list)) or not v:
        return None
    try:
        return parse_stored(v)
    except MongoError:
        return None


def is_legacy_form(v: Any) -> bool:
    """``[x, y]`` or ``{a: x, b: y}``: the first element is a number."""
    if isinstance(v, list):
        return True
    return isinstance(v, dict) and bool(v) and is_number(next(iter(v.values())))


def parse_query_point(v: Any) -> tuple[float, float, bool]:
    """GeoParser::parseQueryPoint: ``(lng, lat, is_geojson)``; a GeoJSON point is
    range-checked, a legacy one is not (callers decide)."""
    if not isinstance(v, (dict, list)):
        raise GeoError(f"Point must be an array or object, instead got type {type_name(v)}")
    if is_legacy_form(v):
        x, y = flat_point(v, False)
        return x, y, False
    if "type" in v:
        t = v["type"]
        if t != "Point":
            name = t if isinstance(t, str) and t in GEOJSON_TYPES else "unknown"
            raise GeoError(f"Expected geojson geometry with type Point, but got type {name}")
    _crs(v)
    x, y = flat_point(v.get("coordinates", MISSING), True)
    if not valid_lnglat(x, y):
        raise GeoError(f"Longitude/latitude is out of bounds, lng: {fmt_double(x)} lat: {fmt_double(y)}")
    return x, y, True


def polygon_contains_point(poly: Polygon, p: Vec) -> bool:
    return poly.contains(p)


__all__ = ["Geometry", "Polygon", "GeoError", "parse_stored", "try_stored", "parse_geojson", "parse_query_point",
           "flat_point", "valid_lnglat", "sphere_vec", "is_number", "num", "is_legacy_form", "winding", "angle"]
