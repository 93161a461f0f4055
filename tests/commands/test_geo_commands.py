"""Geospatial queries through pymongo against the server: 2dsphere indexes,
write-time validation (16755), $near/$nearSphere, $geoWithin/$geoIntersects,
the $geoNear stage, and results equal to a brute-force evaluation, also after
flush and restart."""
from __future__ import annotations

import math
import random

import pytest
from pymongo import GEOSPHERE, MongoClient
from pymongo.errors import BulkWriteError, OperationFailure, WriteError

from tests.serverutil import ServerProcess

R = 6378100.0


def hav(a, b) -> float:
    p1, p2 = math.radians(a[1]), math.radians(b[1])
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b[0] - a[0]) / 2) ** 2
    return 2 * math.asin(min(1.0, math.sqrt(h)))


def _docs(rnd: random.Random, n: int, start: int = 0):
    out, pts = [], {}
    for i in range(start, start + n):
        p = [round(rnd.uniform(-20, 20), 5), round(rnd.uniform(-15, 15), 5)]
        form = rnd.random()
        loc = {"type": "Point", "coordinates": p} if form < 0.6 else (p if form < 0.8 else {"lng": p[0], "lat": p[1]})
        out.append({"_id": i, "loc": loc, "k": i % 4, "name": f"p{i}"})
        pts[i] = (p, i % 4)
    return out, pts


def _expected(pts, q, hi=math.inf, lo=0.0, k=None):
    rows = sorted((hav(q, p), i) for i, (p, kk) in pts.items() if k is None or kk == k)
    return [(d, i) for d, i in rows if lo <= d <= hi]


def _check_near(coll, pts, rnd, n=8):
    for _ in range(n):
        q = [rnd.uniform(-20, 20), rnd.uniform(-15, 15)]
        hi = rnd.choice([math.inf, rnd.uniform(0.01, 0.2)])
        geo = {"$geometry": {"type": "Point", "coordinates": q}}
        if math.isfinite(hi):
            geo["$maxDistance"] = hi * R
        got = [d["_id"] for d in coll.find({"loc": {"$near": geo}}).limit(10)]
        assert got == [i for _, i in _expected(pts, q, hi)[:10]]
        got = [d["_id"] for d in coll.find({"loc": {"$nearSphere": q, "$maxDistance": 0.1}, "k": 1})]
        assert got == [i for _, i in _expected(pts, q, 0.1, k=1)]
        res = list(coll.aggregate([{"$geoNear": {"near": {"type": "Point", "coordinates": q}, "distanceField": "d",
                                                 "query": {"k": {"$ne": 0}}}}, {"$limit": 5}]))
        exp = _expected(pts, q)
        exp = [(d, i) for d, i in exp if pts[i][1] != 0][:5]
        assert [d["_id"] for d in res] == [i for _, i in exp]
        for doc, (dist, _i) in zip(res, exp):
            assert doc["d"] == pytest.approx(dist * R, rel=1e-9)
        r = 0.05
        within = sorted(d["_id"] for d in coll.find({"loc": {"$geoWithin": {"$centerSphere": [q, r]}}}))
        assert within == sorted(i for d, i in exp_all(pts, q) if d <= r)


def exp_all(pts, q):
    return [(hav(q, p), i) for i, (p, _k) in pts.items()]


@pytest.fixture
def coll(db):
    c = db.places
    c.create_index([("loc", GEOSPHERE)])
    return c


def test_index_listed_with_version(db):
    assert db.p.create_index([("loc", GEOSPHERE), ("k", 1)]) == "loc_2dsphere_k_1"
    ix = [i for i in db.p.list_indexes() if i["name"] == "loc_2dsphere_k_1"][0]
    assert ix["2dsphereIndexVersion"] == 3 and dict(ix["key"]) == {"loc": "2dsphere", "k": 1}
    with pytest.raises(OperationFailure) as ei:
        db.p.create_index([("g", GEOSPHERE)], **{"2dsphereIndexVersion": 7})
    assert ei.value.code == 67


def test_invalid_geometry_refused_and_nothing_changes(coll):
    coll.insert_one({"_id": 1, "loc": {"type": "Point", "coordinates": [1, 1]}})
    with pytest.raises(WriteError) as ei:
        coll.insert_one({"_id": 2, "loc": {"type": "Point", "coordinates": [200, 0]}})
    assert ei.value.code == 16755
    assert ei.value.details["errmsg"].startswith("Can't extract geo keys: { _id: 2, loc: { type: \"Point\"")
    assert ei.value.details["errmsg"].endswith("Longitude/latitude is out of bounds, lng: 200 lat: 0")
    with pytest.raises(BulkWriteError) as ei:
        coll.insert_many([{"_id": 3, "loc": [2, 2]}, {"_id": 4, "loc": "here"}, {"_id": 5, "loc": [3, 3]}])
    assert ei.value.details["writeErrors"][0]["code"] == 16755
    assert sorted(d["_id"] for d in coll.find()) == [1, 3]          # ordered: stops at the bad one
    with pytest.raises(WriteError) as ei:
        coll.update_one({"_id": 1}, {"$set": {"loc.coordinates": [0, 100]}})
    assert ei.value.code == 16755
    assert coll.find_one({"_id": 1})["loc"]["coordinates"] == [1, 1]
    with pytest.raises(OperationFailure) as ei:
        coll.find_one_and_replace({"_id": 3}, {"loc": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 1]]]}})
    assert ei.value.code == 16755 and "Loop is not closed" in str(ei.value)
    coll.update_one({"_id": 3}, {"$unset": {"loc": 1}})              # no location at all is fine
    coll.insert_one({"_id": 6, "loc": None})
    assert coll.count_documents({}) == 3
    coll.database.free.insert_one({"loc": "anything"})              # no index: no check
    ids = [d["_id"] for d in coll.find({"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}})]
    assert ids == [1]


def test_index_over_invalid_geometry_is_refused(db):
    db.bad.insert_many([{"_id": 1, "loc": [1, 1]}, {"_id": 2, "loc": {"type": "Point", "coordinates": [500, 0]}}])
    with pytest.raises(OperationFailure) as ei:
        db.bad.create_index([("loc", "2dsphere")])
    assert ei.value.code == 16755
    assert list(db.bad.index_information()) == ["_id_"]
    db.bad.delete_one({"_id": 2})
    db.bad.create_index([("loc", "2dsphere")])
    assert "loc_2dsphere" in db.bad.index_information()


def test_near_in_match_is_refused(db):
    db.c.insert_one({"loc": [1, 1]})
    db.c.create_index([("loc", "2dsphere")])
    for op in ("$near", "$nearSphere"):
        with pytest.raises(OperationFailure) as ei:
            list(db.c.aggregate([{"$match": {"loc": {op: [0, 0]}}}]))
        assert ei.value.code == 2 and "not allowed in this context" in str(ei.value)
        with pytest.raises(OperationFailure) as ei:
            db.c.count_documents({"loc": {op: [0, 0]}})
        assert ei.value.code == 2


def test_near_requires_an_index(db):
    db.c.insert_one({"loc": [1, 1]})
    with pytest.raises(OperationFailure) as ei:
        list(db.c.find({"loc": {"$near": [0, 0]}}))
    assert ei.value.code == 291 and "unable to find index for $geoNear query" in str(ei.value)
    with pytest.raises(OperationFailure) as ei:
        list(db.c.aggregate([{"$geoNear": {"near": [0, 0], "distanceField": "d"}}]))
    assert ei.value.code == 27 and "requires a 2d or 2dsphere index" in str(ei.value)
    # $geoWithin / $geoIntersects need none
    assert db.c.count_documents({"loc": {"$geoWithin": {"$centerSphere": [[0, 0], 0.1]}}}) == 1
    assert db.c.count_documents({"loc": {"$geoIntersects": {"$geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}}}}) == 1


def test_near_and_geonear_equal_brute_force(coll):
    rnd = random.Random(4)
    docs, pts = _docs(rnd, 1500)
    coll.insert_many(docs)
    _check_near(coll, pts, rnd)
    coll.database.client.admin.command("fsync")                                  # flushed to table files
    more, pts2 = _docs(rnd, 300, 5000)
    coll.insert_many(more)
    pts.update(pts2)
    coll.delete_many({"_id": {"$in": list(range(0, 300, 3))}})
    for i in range(0, 300, 3):
        pts.pop(i)
    for i in range(1, 300, 3):
        p = [rnd.uniform(-20, 20), rnd.uniform(-15, 15)]
        coll.update_one({"_id": i}, {"$set": {"loc": {"type": "Point", "coordinates": p}}})
        pts[i] = (p, pts[i][1])
    _check_near(coll, pts, rnd)
    explain = coll.find({"loc": {"$near": {"$geometry": {"type": "Point", "coordinates": [0, 0]}}}}).limit(3).explain()
    assert "'indexName': 'loc_2dsphere'" in str(explain["queryPlanner"]["winningPlan"])


def test_min_max_distance_and_legacy_units(coll):
    coll.insert_many([{"_id": i, "loc": [i * 0.1, 0]} for i in range(50)])
    q = {"type": "Point", "coordinates": [0, 0]}
    ids = [d["_id"] for d in coll.find({"loc": {"$near": {"$geometry": q, "$minDistance": 0.25 / 180 * math.pi * R,
                                                           "$maxDistance": 0.55 / 180 * math.pi * R}}})]
    assert ids == [3, 4, 5]
    ids = [d["_id"] for d in coll.find({"loc": {"$nearSphere": [0, 0], "$minDistance": 0.0087,
                                                "$maxDistance": 0.0175}})]
    assert ids == [5, 6, 7, 8, 9, 10]
    res = list(coll.aggregate([{"$geoNear": {"near": [0, 0], "distanceField": "r", "spherical": True,
                                             "maxDistance": 0.0035}}]))
    assert [d["_id"] for d in res] == [0, 1, 2]
    assert res[2]["r"] == pytest.approx(math.radians(0.2), rel=1e-9)


def test_geonear_stage_options(coll):
    coll.insert_many([{"_id": 1, "loc": {"type": "Point", "coordinates": [0, 0.01]}, "k": "a"},
                      {"_id": 2, "loc": [[5, 5], [0, 0.02]], "k": "b"},
                      {"_id": 3, "loc": {"type": "Point", "coordinates": [0, 0.03]}, "k": "a"}])
    near = {"type": "Point", "coordinates": [0, 0]}
    res = list(coll.aggregate([{"$geoNear": {"near": near, "distanceField": "out.dist", "includeLocs": "out.loc",
                                             "distanceMultiplier": 0.001, "key": "loc"}},
                               {"$project": {"out": 1, "m": {"$meta": "geoNearDistance"}}}]))
    assert [d["_id"] for d in res] == [1, 2, 3]
    assert res[1]["out"]["loc"] == [0, 0.02]
    assert res[1]["out"]["dist"] == pytest.approx(res[1]["m"] / 1000)
    assert res[0]["m"] == pytest.approx(math.radians(0.01) * R, rel=1e-9)
    res = list(coll.aggregate([{"$geoNear": {"near": near, "distanceField": "d", "query": {"k": "a"},
                                             "minDistance": 1500}}]))
    assert [d["_id"] for d in res] == [3]
    coll.create_index([("other", GEOSPHERE)])
    with pytest.raises(OperationFailure) as ei:
        list(coll.aggregate([{"$geoNear": {"near": near, "distanceField": "d"}}]))
    assert ei.value.code == 27 and "more than one 2dsphere index" in str(ei.value)
    assert len(list(coll.aggregate([{"$geoNear": {"near": near, "distanceField": "d", "key": "loc"}}]))) == 3
    with pytest.raises(OperationFailure) as ei:
        list(coll.aggregate([{"$geoNear": {"near": near, "distanceField": "d", "key": "nope"}}]))
    assert ei.value.code == 291


@pytest.mark.parametrize("stage,code", [
    ({"near": [0, 0]}, 16606),
    ({"distanceField": "d"}, 16605),
    ({"near": [0, 0], "distanceField": "d", "limit": 5}, 50858),
    ({"near": [0, 0], "distanceField": "d", "num": 5}, 50857),
    ({"near": [0, 0], "distanceField": "d", "maxDistance": -1}, 2),
    ({"near": [0, 0], "distanceField": "d", "maxDistance": "x"}, 14),
    ({"near": [0, 0], "distanceField": "d", "key": 5}, 14),
    ({"near": [0, 0], "distanceField": "d", "key": ""}, 2),
    ({"near": [0, 0], "distanceField": "d", "includeLocs": 1}, 16607),
    ({"near": [0, 0], "distanceField": "d", "query": 1}, 14),
    ({"near": {"type": "Point", "coordinates": [500, 0]}, "distanceField": "d"}, 2),
])
def test_geonear_stage_errors(coll, stage, code):
    with pytest.raises(OperationFailure) as ei:
        list(coll.aggregate([{"$geoNear": stage}]))
    assert ei.value.code == code


def test_geonear_must_be_first(coll):
    with pytest.raises(OperationFailure) as ei:
        list(coll.aggregate([{"$match": {}}, {"$geoNear": {"near": [0, 0], "distanceField": "d"}}]))
    assert ei.value.code == 40603
    with pytest.raises(OperationFailure) as ei:
        list(coll.aggregate([{"$facet": {"a": [{"$geoNear": {"near": [0, 0], "distanceField": "d"}}]}}]))
    assert ei.value.code == 40600


def test_geo_queries_survive_restart(tmp_path):
    rnd = random.Random(9)
    srv = ServerProcess(str(tmp_path / "lake")).start()
    try:
        cl = MongoClient(srv.url, serverSelectionTimeoutMS=10000)
        c = cl.g.places
        c.create_index([("loc", GEOSPHERE)])
        docs, pts = _docs(rnd, 800)
        c.insert_many(docs[:500])
        cl.admin.command("fsync")
        c.insert_many(docs[500:])                                    # these stay in the WAL
        cl.close()
    finally:
        srv.stop()
    srv = ServerProcess(str(tmp_path / "lake")).start()
    try:
        cl = MongoClient(srv.url, serverSelectionTimeoutMS=10000)
        c = cl.g.places
        _check_near(c, pts, rnd, 5)
        with pytest.raises(WriteError):
            c.insert_one({"loc": {"type": "Point", "coordinates": [0, -91]}})
        cl.close()
    finally:
        srv.stop()
