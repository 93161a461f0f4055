"""Spatial predicates between stored geometries and query regions.

* ``within`` (``$geoWithin``): every part of the stored geometry lies in the
  region — a spherical polygon / multipolygon (``$geometry``), a spherical cap
  (``$centerSphere``), or a planar legacy shape (``$box``, ``$center``,
  ``$polygon``), which only points can be within (as in MongoDB).
* ``intersects`` (``$geoIntersects``): the two geometries share a point.
* ``distance``: the smallest great-circle distance (radians) from a point to a
  geometry (0 inside a polygon) — what ``$near`` sorts by.

Loops are exact for polygons that fit in a hemisphere (see
:func:`~mongolake.query.geo.sphere.winding`); points on a boundary are found
with a tolerance of ~1e-12 rad.
"""
from __future__ import annotations

import math
from .geojson import Geometry, Polygon
from .sphere import EPS, Vec, angle, arcs_cross, arcs_touch, point_arc_distance


# -- regions --------------------------------------------------------------------------

class Cap:
    """``$centerSphere``: points within ``radius`` radians of ``center``."""

    def __init__(self, center: Vec, radius: float):
        self.center, self.radius = center, radius

    def contains_point(self, p: Vec) -> bool:
        return angle(self.center, p) <= self.radius + EPS

    def within(self, g: Geometry) -> bool:
        if g.kind == "legacy" and not g.points:
            return False
        vs = list(g.points)
        for ln in g.lines:
            vs += ln
        for poly in g.polygons:
            vs += list(poly.vertices())
        if not vs:
            return False
        if not all(self.contains_point(v) for v in vs):
            return False
        if self.radius <= math.pi / 2 or not (g.lines or g.polygons):
            return True                     # a cap no larger than a hemisphere is convex
        # larger caps: an edge may leave the cap between two inside vertices
        far = tuple(-c for c in self.center)
        limit = math.pi - self.radius
        for a, b in _edges_of(g):
            if point_arc_distance(far, a, b) < limit - EPS:
                return False
        return True


class PolygonRegion:
    """``$geometry`` Polygon / MultiPolygon: the union of the polygons."""

    def __init__(self, polygons: list[Polygon]):
        self.polygons = polygons

    def within(self, g: Geometry) -> bool:
        if g.kind == "legacy" and not g.points:
            return False
        if not (g.points or g.lines or g.polygons):
            return False
        for p in g.points:
            if not any(_poly_covers_point(q, p) for q in self.polygons):
                return False
        for ln in g.lines:
            if not any(_poly_contains_chain(q, ln, closed=False) for q in self.polygons):
                return False
        for poly in g.polygons:
            if not any(_poly_contains_polygon(q, poly) for q in self.polygons):
                return False
        return True


class FlatBox:
    def __init__(self, a: tuple[float, float], b: tuple[float, float]):
        self.x0, self.x1 = min(a[0], b[0]), max(a[0], b[0])
        self.y0, self.y1 = min(a[1], b[1]), max(a[1], b[1])

    def within(self, g: Geometry) -> bool:
        p = _flat_point(g)
        return p is not None and self.x0 <= p[0] <= self.x1 and self.y0 <= p[1] <= self.y1


class FlatCircle:
    def __init__(self, center: tuple[float, float], radius: float):
        self.center, self.radius = center, radius

    def within(self, g: Geometry) -> bool:
        p = _flat_point(g)
        return p is not None and math.hypot(p[0] - self.center[0], p[1] - self.center[1]) <= self.radius


class FlatPolygon:
    def __init__(self, pts: list[tuple[float, float]]):
        self.pts = pts

    def within(self, g: Geometry) -> bool:
        p = _flat_point(g)
        if p is None:
            return False
        x, y = p
        pts = self.pts
        inside = False
        n = len(pts)
        for i in range(n):
            (x1, y1), (x2, y2) = pts[i], pts[(i + 1) % n]
            # on an edge counts as inside
            if min(x1, x2) <= x <= max(x1, x2) and min(y1, y2) <= y <= max(y1, y2) and \
                    abs((x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)) < 1e-12:
                return True
            if (y1 > y) != (y2 > y):
                xc = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
                if x < xc:
                    inside = not inside
        return inside


def _flat_point(g: Geometry) -> tuple[float, float] | None:
    """Only single points can be within a planar legacy shape."""
    if g.flat is None or g.lines or g.polygons or len(g.points) > 1:
        return None
    return g.flat


# -- helpers -------------------------------------------------------------------------

def _edges_of(g: Geometry):
    for ln in g.lines:
        for i in range(len(ln) - 1):
            yield ln[i], ln[i + 1]
    for poly in g.polygons:
        yield from poly.edges()


def _poly_covers_point(q: Polygon, p: Vec) -> bool:
    if q.contains(p):
        return True
    return any(lp.boundary_distance(p) < EPS for lp in q.loops)


def _poly_contains_chain(q: Polygon, vs: list[Vec], closed: bool) -> bool:
    if not all(_poly_covers_point(q, v) for v in vs):
        return False
    n = len(vs)
    m = n if closed else n - 1
    for i in range(m):
        a, b = vs[i], vs[(i + 1) % n]
        for c, d in q.edges():
            if arcs_cross(a, b, c, d):
                return False
    return True


def _poly_contains_polygon(q: Polygon, poly: Polygon) -> bool:
    shell = poly.loops[0]
    if not _poly_contains_chain(q, shell.vertices, closed=True):
        return False
    # a hole of q inside the shell (and not inside one of poly's holes) is a part of poly outside q
    for hole in q.loops[1:]:
        v = hole.vertices[0]
        if shell.contains(v) and not any(h.contains(v) for h in poly.loops[1:]):
            return False
    return True


# -- intersects -------------------------------------------------------------------------

def intersects(g: Geometry, q: Geometry) -> bool:
    """True when ``g`` and ``q`` share at least one point."""
    if not (g.points or g.lines or g.polygons):
        return False
    for p in g.points:
        if _point_hits(p, q):
            return True
    for p in q.points:
        if _point_hits(p, g, points=False):
            return True
    g_edges = list(_edges_of(g))
    q_edges = list(_edges_of(q))
    for a, b in g_edges:
        for c, d in q_edges:
            if arcs_touch(a, b, c, d):
                return True
    # no edges meet: one polygon may hold the other's chains entirely
    for poly in q.polygons:
        for ln in g.lines:
            if poly.contains(ln[0]):
                return True
        for gp in g.polygons:
            if poly.contains(gp.loops[0].vertices[0]):
                return True
    for poly in g.polygons:
        for ln in q.lines:
            if poly.contains(ln[0]):
                return True
        for qp in q.polygons:
            if poly.contains(qp.loops[0].vertices[0]):
                return True
    return False


def _point_hits(p: Vec, g: Geometry, points: bool = True) -> bool:
    if points and any(angle(p, x) < EPS for x in g.points):
        return True
    for ln in g.lines:
        for i in range(len(ln) - 1):
            if point_arc_distance(p, ln[i], ln[i + 1]) < EPS:
                return True
    return any(_poly_covers_point(poly, p) for poly in g.polygons)


# -- distance ------------------------------------------------------------------------------

def distance(p: Vec, g: Geometry) -> float:
    """Smallest great-circle distance (radians) from ``p`` to ``g`` (inf when ``g``
    has no spherical part, e.g. an out-of-range legacy point)."""
    best = math.inf
    for x in g.points:
        d = angle(p, x)
        if d < best:
            best = d
    for ln in g.lines:
        for i in range(len(ln) - 1):
            d = point_arc_distance(p, ln[i], ln[i + 1])
            if d < best:
                best = d
    for poly in g.polygons:
        if poly.contains(p):
            return 0.0
        for lp in poly.loops:
            d = lp.boundary_distance(p)
            if d < best:
                best = d
    return best


