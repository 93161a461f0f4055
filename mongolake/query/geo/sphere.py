"""Spherical geometry on the unit sphere (points as 3-vectors).

MongoDB's 2dsphere model: coordinates are ``[longitude, latitude]`` in degrees
on a sphere; distances in metres use the radius MongoDB uses,
``6378.1 km`` (``kRadiusOfEarthInMeters``); edges are great-circle arcs
(shortest path between their vertices).

Everything here is plain ``math`` on tuples: the predicates run per document
in the matcher, where numpy's per-call overhead would dominate. The batch
distance used by the index is in :func:`haversine_np`.
"""
from __future__ import annotations

import math
from typing import Sequence

EARTH_RADIUS_M = 6378100.0
Vec = tuple[float, float, float]
EPS = 1e-12                         # radians: "on the edge / same point" tolerance (~6 µm)


def to_vec(lng: float, lat: float) -> Vec:
    la, lo = math.radians(lat), math.radians(lng)
    c = math.cos(la)
    return (c * math.cos(lo), c * math.sin(lo), math.sin(la))


def to_lnglat(v: Vec) -> tuple[float, float]:
    x, y, z = v
    return math.degrees(math.atan2(y, x)), math.degrees(math.atan2(z, math.hypot(x, y)))


def dot(a: Vec, b: Vec) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def norm(a: Vec) -> float:
    return math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])


def normalize(a: Vec) -> Vec:
    n = norm(a)
    return (a[0] / n, a[1] / n, a[2] / n) if n else a


def angle(a: Vec, b: Vec) -> float:
    """The angle between two unit vectors (radians), accurate for tiny and near-π angles."""
    return math.atan2(norm(cross(a, b)), dot(a, b))


def haversine(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """Great-circle distance in radians between two lng/lat points (degrees)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * math.asin(min(1.0, math.sqrt(h)))


def haversine_np(lng, lat, qlng: float, qlat: float):
    """Vectorised :func:`haversine` (numpy arrays of degrees) to one query point."""
    import numpy as np
    p1 = np.radians(lat)
    p2 = math.radians(qlat)
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * math.cos(p2) * np.sin(np.radians(qlng - lng) / 2) ** 2
    return 2 * np.arcsin(np.minimum(1.0, np.sqrt(h)))


# -- arcs ----------------------------------------------------------------------------

def point_arc_distance(p: Vec, a: Vec, b: Vec) -> float:
    """Distance (radians) from ``p`` to the minor great-circle arc ``a``–``b``."""
    n = cross(a, b)
    nn = norm(n)
    if nn < 1e-300:
        return angle(p, a)
    n = (n[0] / nn, n[1] / nn, n[2] / nn)
    # the projection of p on the arc's plane lies between a and b when it is on the
    # inner side of both planes (n × a) and (b × n)
    if dot(cross(n, a), p) >= 0 and dot(cross(b, n), p) >= 0:
        return abs(math.asin(max(-1.0, min(1.0, dot(p, n)))))
    return min(angle(p, a), angle(p, b))


def arcs_cross(a: Vec, b: Vec, c: Vec, d: Vec) -> bool:
    """True when the arcs ``ab`` and ``cd`` cross at a point interior to both."""
    ab = cross(a, b)
    acb = -dot(ab, c)
    bda = dot(ab, d)
    if acb * bda <= 0:
        return False
    cd = cross(c, d)
    cbd = -dot(cd, b)
    dac = dot(cd, a)
    return acb * cbd > 0 and acb * dac > 0


def arcs_touch(a: Vec, b: Vec, c: Vec, d: Vec) -> bool:
    """Arcs that cross or meet (an endpoint on the other arc)."""
    if arcs_cross(a, b, c, d):
        return True
    return (point_arc_distance(a, c, d) < EPS or point_arc_distance(b, c, d) < EPS
            or point_arc_distance(c, a, b) < EPS or point_arc_distance(d, a, b) < EPS)


# -- loops ---------------------------------------------------------------------------

def _tangent_basis(p: Vec) -> tuple[Vec, Vec]:
    ref = (0.0, 0.0, 1.0) if abs(p[2]) < 0.9 else (1.0, 0.0, 0.0)
    e1 = normalize(cross(ref, p))
    e2 = cross(p, e1)
    return e1, e2


def winding(p: Vec, loop: Sequence[Vec]) -> int:
    """How many times ``loop`` (closed implicitly) winds counter-clockwise around
    ``p`` seen from outside the sphere: +1 when ``p`` is on the loop's left side
    and ``-p`` is not, -1 the other way round, 0 when both are on one side."""
    e1, e2 = _tangent_basis(p)
    total = 0.0
    prev = None
    first = None
    for v in loop:
        az = math.atan2(dot(v, e2), dot(v, e1))
        if prev is None:
            first = az
        else:
            d = az - prev
            if d > math.pi:
                d -= 2 * math.pi
            elif d < -math.pi:
                d += 2 * math.pi
            total += d
        prev = az
    d = first - prev
    if d > math.pi:
        d -= 2 * math.pi
    elif d < -math.pi:
        d += 2 * math.pi
    total += d
    return int(round(total / (2 * math.pi)))


def turning_sum(loop: Sequence[Vec]) -> float:
    """Sum of the signed turning angles (left turns positive) of a closed loop;
    the area on the loop's left is ``2π - turning_sum``."""
    n = len(loop)
    total = 0.0
    for i in range(n):
        a, b, c = loop[i - 1], loop[i], loop[(i + 1) % n]
        t_in = cross(cross(a, b), b)
        t_out = cross(cross(b, c), b)
        total += math.atan2(dot(b, cross(t_in, t_out)), dot(t_in, t_out))
    return total


class Loop:
    """A closed ring of distinct vertices whose interior is the region on its left,
    normalised (as MongoDB does) to the smaller of the two regions it bounds."""

    __slots__ = ("vertices", "bound")

    def __init__(self, vertices: list[Vec]):
        if turning_sum(vertices) < 0:       # left side larger than a hemisphere: use the other side
            vertices = vertices[::-1]
        self.vertices = vertices
        self.bound = _bounding_cap(vertices)

    def contains(self, p: Vec) -> bool:
        c, r = self.bound
        if angle(c, p) > r + 1e-9:
            return False
        return winding(p, self.vertices) == 1

    def edges(self):
        vs = self.vertices
        n = len(vs)
        for i in range(n):
            yield vs[i], vs[(i + 1) % n]

    def boundary_distance(self, p: Vec) -> float:
        return min(point_arc_distance(p, a, b) for a, b in self.edges())


def _bounding_cap(vs: Sequence[Vec]) -> tuple[Vec, float]:
    """A cap (centre, radius in radians) holding every vertex and edge."""
    s = (sum(v[0] for v in vs), sum(v[1] for v in vs), sum(v[2] for v in vs))
    c = normalize(s) if norm(s) > 1e-12 else vs[0]
    r = max(angle(c, v) for v in vs)
    # an edge bulges beyond its endpoints' distance from c by at most half its length
    bulge = max((angle(a, b) / 2 for a, b in zip(vs, list(vs[1:]) + [vs[0]])), default=0.0)
    return c, min(math.pi, r + bulge)


def loop_problem(vs: Sequence[Vec]) -> str | None:
    """Why a ring of distinct vertices is not a valid loop (S2's wording), or None."""
    n = len(vs)
    seen: dict[Vec, int] = {}
    for i, v in enumerate(vs):
        if v in seen:
            return f"Duplicate vertices: {seen[v]} and {i}"
        seen[v] = i
    if n > 3:
        for i in range(n):
            a, b = vs[i], vs[(i + 1) % n]
            for j in range(i + 2, n):
                if i == 0 and j == n - 1:
                    continue
                c, d = vs[j], vs[(j + 1) % n]
                if arcs_cross(a, b, c, d):
                    return (f"Edges {i} and {j} cross. Edge locations in degrees: "
                            f"{_deg(a)}-{_deg(b)} and {_deg(c)}-{_deg(d)}")
    return None


def _deg(v: Vec) -> str:
    lng, lat = to_lnglat(v)
    return f"[{lat:.7f}, {lng:.7f}]"
