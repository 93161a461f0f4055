"""Geospatial filters: parsing (MongoDB's messages and codes) and exact predicates,
checked against independent formulas on randomised data."""
from __future__ import annotations

import math
import random

import pytest

from mongolake.errors import MongoError
from mongolake.query.filter import parse_filter
from mongolake.query.geo import GeoNear
from mongolake.query.geo.geojson import parse_stored
from mongolake.query.matcher import compile_matcher

R = 6378100.0


def m(flt):
    return compile_matcher(parse_filter(flt))


def err(flt) -> MongoError:
    with pytest.raises(MongoError) as ei:
        parse_filter(flt)
    return ei.value


def vec(lng, lat):
    la, lo = math.radians(lat), math.radians(lng)
    return (math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la))


def hav(lng1, lat1, lng2, lat2):
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    return 2 * math.asin(min(1.0, math.sqrt(a)))


def det(a, b, c):
    return (a[0] * (b[1] * c[2] - b[2] * c[1]) - a[1] * (b[0] * c[2] - b[2] * c[0])
            + a[2] * (b[0] * c[1] - b[1] * c[0]))


def in_convex(ring, p):
    """Independent oracle: inside a convex counter-clockwise spherical polygon."""
    vs = [vec(*c) for c in ring[:-1]]
    pv = vec(*p)
    return all(det(vs[i], vs[(i + 1) % len(vs)], pv) > 0 for i in range(len(vs)))


def convex_ring(rnd, cx, cy, r):
    n = rnd.randint(3, 8)
    angs = sorted(rnd.uniform(0, 2 * math.pi) for _ in range(n))
    pts = [[round(cx + r * math.cos(a), 6), round(cy + r * math.sin(a) * 0.8, 6)] for a in angs]
    return pts + [pts[0]]


# -- randomised differential checks ----------------------------------------------------------

def test_centersphere_matches_haversine():
    rnd = random.Random(1)
    for _ in range(20):
        c = [rnd.uniform(-170, 170), rnd.uniform(-80, 80)]
        r = rnd.uniform(0.001, 0.5)
        f = m({"loc": {"$geoWithin": {"$centerSphere": [c, r]}}})
        for _ in range(100):
            p = [c[0] + rnd.uniform(-30, 30), max(-90, min(90, c[1] + rnd.uniform(-30, 30)))]
            if not -180 <= p[0] <= 180:
                continue
            d = hav(c[0], c[1], p[0], p[1])
            if abs(d - r) < 1e-9:
                continue
            assert f({"loc": {"type": "Point", "coordinates": p}}) == (d <= r), (c, r, p)
            assert f({"loc": p}) == (d <= r)


def test_polygon_within_matches_convex_oracle():
    rnd = random.Random(2)
    for _ in range(40):
        cx, cy, rad = rnd.uniform(-150, 150), rnd.uniform(-60, 60), rnd.uniform(0.5, 20)
        ring = convex_ring(rnd, cx, cy, rad)
        f = m({"loc": {"$geoWithin": {"$geometry": {"type": "Polygon", "coordinates": [ring]}}}})
        g = m({"loc": {"$geoIntersects": {"$geometry": {"type": "Polygon", "coordinates": [ring]}}}})
        for _ in range(60):
            p = [cx + rnd.uniform(-1.5, 1.5) * rad, cy + rnd.uniform(-1.5, 1.5) * rad]
            if not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90):
                continue
            exp = in_convex(ring, p)
            assert f({"loc": p}) == exp, (ring, p)
            assert g({"loc": {"type": "Point", "coordinates": p}}) == exp


def test_polygon_with_hole_and_lines():
    shell = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    hole = [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]
    poly = {"type": "Polygon", "coordinates": [shell, hole]}
    within = m({"loc": {"$geoWithin": {"$geometry": poly}}})
    assert within({"loc": [2, 2]}) and not within({"loc": [5, 5]}) and not within({"loc": [12, 5]})
    assert within({"loc": {"type": "LineString", "coordinates": [[1, 1], [3, 8]]}})
    assert not within({"loc": {"type": "LineString", "coordinates": [[1, 1], [9, 9]]}})     # crosses the hole
    assert not within({"loc": {"type": "Polygon", "coordinates": [[[1, 1], [9, 1], [9, 9], [1, 9], [1, 1]]]}})
    assert within({"loc": {"type": "Polygon", "coordinates": [[[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]]]}})
    assert within({"loc": [[1, 1], [2, 2]]})                 # an array of points: any of them
    inter = m({"loc": {"$geoIntersects": {"$geometry": poly}}})
    assert inter({"loc": {"type": "LineString", "coordinates": [[-5, 5], [15, 5]]}})
    assert not inter({"loc": {"type": "LineString", "coordinates": [[4.5, 5], [5.5, 5.2]]}})   # inside the hole
    assert inter({"loc": {"type": "Polygon", "coordinates": [[[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]]]}})
    assert inter({"loc": {"type": "Polygon", "coordinates": [[[-5, -5], [20, -5], [20, 20], [-5, 20], [-5, -5]]]}})
    assert not inter({"loc": {"type": "GeometryCollection", "geometries": [
        {"type": "Point", "coordinates": [20, 20]}, {"type": "LineString", "coordinates": [[30, 0], [31, 1]]}]}})
    multi = m({"loc": {"$geoWithin": {"$geometry": {"type": "MultiPolygon", "coordinates": [
        [shell], [[[20, 0], [30, 0], [30, 10], [20, 10], [20, 0]]]]}}}})
    assert multi({"loc": [25, 5]}) and multi({"loc": [5, 5]}) and not multi({"loc": [15, 5]})


def test_legacy_planar_shapes_match_points_only():
    box = m({"loc": {"$geoWithin": {"$box": [[0, 0], [5, 5]]}}})
    assert box({"loc": [1, 5]}) and not box({"loc": [6, 1]}) and box({"loc": {"type": "Point", "coordinates": [1, 1]}})
    assert not box({"loc": {"type": "LineString", "coordinates": [[1, 1], [2, 2]]}})
    center = m({"loc": {"$geoWithin": {"$center": [[0, 0], 2]}}})
    assert center({"loc": [1.9, 0]}) and not center({"loc": [1.5, 1.5]})
    poly = m({"loc": {"$within": {"$polygon": [[0, 0], [4, 0], [0, 4]]}}})
    assert poly({"loc": [1, 1]}) and not poly({"loc": [3, 3]})


def test_values_that_are_not_geometry_never_match():
    f = m({"loc": {"$geoWithin": {"$centerSphere": [[0, 0], 1]}}})
    for v in ("x", 5, None, {}, [], {"type": "Point"}, [200, 300], {"type": "Point", "coordinates": [0, 95]}):
        assert not f({"loc": v}), v
    assert not f({})


# -- parsing ------------------------------------------------------------------------------

@pytest.mark.parametrize("flt,code,msg", [
    ({"loc": {"$geoWithin": 5}}, 2, "geometry must be an object"),
    ({"loc": {"$geoWithin": {}}}, 2, "geo query doesn't have any geometry"),
    ({"loc": {"$geoWithin": {"$foo": [1, 2]}}}, 2, "unknown geo specifier: $foo: [ 1, 2 ]"),
    ({"loc": {"$geoWithin": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}}, 2,
     '$within not supported with provided geometry: { $geoWithin: { $geometry: { type: "Point", '
     'coordinates: [ 0, 0 ] } } }'),
    ({"loc": {"$geoWithin": {"$geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 2], [2, 3]]]}}}}, 2,
     "Loop is not closed, first vertex does not equal last vertex: [ [ 0, 0 ], [ 1, 2 ], [ 2, 3 ] ]"),
    ({"loc": {"$geoWithin": {"$geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 2], [0, 0]]]}}}}, 2,
     "Loop must have at least 3 different vertices, 2 unique vertices were provided: "
     "[ [ 0, 0 ], [ 1, 2 ], [ 0, 0 ] ]"),
    ({"loc": {"$geoWithin": {"$geometry": {"type": "Polygon", "coordinates": "hi"}}}}, 2,
     "Polygon coordinates must be an array, instead got type string"),
    ({"loc": {"$geoIntersects": {"$geometry": {"type": "LineString", "coordinates": 5}}}}, 2,
     "GeoJSON coordinates must be an array of coordinates, instead got type int"),
    ({"loc": {"$geoIntersects": {"$geometry": {"type": "LineString", "coordinates": [5, 5]}}}}, 2,
     "GeoJSON coordinates must be an array, instead got type int"),
    ({"loc": {"$geoIntersects": {"$geometry": {}}}}, 2, "unknown GeoJSON type: {}"),
    ({"loc": {"$geoIntersects": {"$geometry": {"type": "Point", "coordinates": [181, 0]}}}}, 2,
     "Longitude/latitude is out of bounds, lng: 181 lat: 0"),
    ({"loc": {"$geoIntersects": {"$box": [[0, 0], [1, 1]]}}}, 2,
     "$geoIntersect not supported with provided geometry: { $geoIntersects: { $box: [ [ 0, 0 ], [ 1, 1 ] ] } }"),
    ({"loc": {"$geoWithin": {"$centerSphere": [[0, 0], -1]}}}, 2, "Radius must be a non-negative number: -1"),
    ({"loc": {"$geoWithin": {"$polygon": [[0, 0], [1, 1]]}}}, 2, "Polygon must have at least 3 points"),
    ({"loc": {"$geoWithin": {"$box": [[0, 0], [1, 1]], "$center": [[0, 0], 1]}}}, 2,
     "$geoWithin doesn't accept multiple shapes"),
    ({"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}, "$maxDistance": 5000.0}}, 2,
     "geo near accepts just one argument when querying for a GeoJSON point. Extra field found: $maxDistance: 5000.0"),
    ({"loc": {"$near": {"$geometry": [0, 0]}}}, 2, "$near requires geojson point, given [ 0, 0 ]"),
    ({"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": [0, 0]}, "$maxDistance": -1}}}, 2,
     "$maxDistance must be non-negative"),
    ({"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": [0, 0]}, "$foo": 1}}}, 2,
     "invalid argument in geo near query: $foo"),
    ({"loc": {"$near": {"$geometry": 5}}}, 2, "$geometry is required for geo near query"),
    ({"loc": {"$near": {"$maxDistance": 1}}}, 2, "invalid point provided to geo near query: { $maxDistance: 1 }"),
    ({"loc": {"$near": [0, 0], "$maxDistance": "x"}}, 16895, "$maxDistance must be a number"),
    ({"loc": {"$near": [0, 0], "$minDistance": -2}}, 16894, "$minDistance must be non-negative"),
    ({"loc": {"$near": [0, 0], "$foo": 1}}, 34413, "invalid argument in geo near query: $foo"),
    ({"loc": {"$nearSphere": [200, 0]}}, 2, "Legacy point is out of bounds for spherical query"),
    ({"loc": {"$near": ["a", 0]}}, 2, "invalid point provided to geo near query: [ \"a\", 0 ]"),
])
def test_parse_errors(flt, code, msg):
    e = err(flt)
    assert e.code == code
    assert e.message.startswith(msg), e.message


def test_self_intersecting_loop_message():
    e = err({"loc": {"$geoWithin": {"$geometry": {"type": "Polygon", "coordinates": [
        [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}}}})
    assert e.message == ("Loop is not valid: [ [ 0, 0 ], [ 1, 1 ], [ 1, 0 ], [ 0, 1 ], [ 0, 0 ] ] Edges 0 and 2 "
                         "cross. Edge locations in degrees: [0.0000000, 0.0000000]-[1.0000000, 1.0000000] and "
                         "[0.0000000, 1.0000000]-[1.0000000, 0.0000000]")
    e = err({"loc": {"$geoWithin": {"$geometry": {"type": "Polygon", "coordinates": [
        [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]], [[20, 20], [21, 20], [21, 21], [20, 20]]]}}}})
    assert e.message.startswith("Secondary loops not contained by first exterior loop - secondary loops must be holes")


def test_near_forms_and_units():
    n = parse_filter({"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": [1, 2]},
                                        "$minDistance": 10, "$maxDistance": 6378100}}})
    assert isinstance(n, GeoNear) and not n.radians
    assert n.max_rad == pytest.approx(1.0) and n.min_rad == pytest.approx(10 / R)
    n = parse_filter({"loc": {"$nearSphere": [1, 2], "$maxDistance": 0.5}})
    assert n.radians and n.max_rad == 0.5 and (n.lng, n.lat) == (1.0, 2.0) and n.op == "$nearSphere"
    n = parse_filter({"loc": {"$near": [1, 2, 0.25]}})                  # legacy point with max distance
    assert n.max_rad == 0.25
    n = parse_filter({"loc": {"$near": {"type": "Point", "coordinates": [1, 2]}, "$maxDistance": 100}})
    assert not n.radians and n.max_rad == pytest.approx(100 / R)
    n = parse_filter({"loc": {"$near": {"lng": 3, "lat": 4}}})
    assert (n.lng, n.lat) == (3.0, 4.0)


def test_stored_forms():
    assert parse_stored({"x": 1, "y": 2, "type": "Point"}).flat == (1.0, 2.0)    # legacy with a stray type
    with pytest.raises(MongoError) as ei:
        parse_stored({"type": "Point", "coordinates": "hello"})
    assert ei.value.message == "Point must be an array or object, instead got type string"
    g = parse_stored({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [0, 0]},
                                                                  {"type": "LineString",
                                                                   "coordinates": [[0, 0], [1, 1]]}]})
    assert len(g.points) == 1 and len(g.lines) == 1
    with pytest.raises(MongoError) as ei:
        parse_stored({"type": "GeometryCollection", "geometries": [{"type": "GeometryCollection",
                                                                   "geometries": []}]})
    assert ei.value.message.startswith("GeometryCollections cannot be nested")
    with pytest.raises(MongoError) as ei:
        parse_stored({"type": "Point", "coordinates": [0, 0], "crs": {"type": "name", "properties": {"name": "x"}}})
    assert ei.value.message == "Unknown CRS name: x"
