"""2dsphere index: $near through the index returns exactly what a brute-force
evaluation returns (randomised data, through writes, flush, compaction and
restart); the cell structure's distance bounds and nearest-first search."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

from mongolake.engine.engine import Engine
from mongolake.engine.indexing.geo import GeoIndex, check_document
from mongolake.engine.indexing.geo_cells import PointStore, rect_distance
from mongolake.engine.reader import ScanStats
from mongolake.errors import MongoError
from mongolake.query.meta import get_meta

R = 6378100.0
SPEC = {"v": 2, "key": {"loc": "2dsphere"}, "name": "loc_2dsphere", "2dsphereIndexVersion": 3}


def hav(lng1, lat1, lng2, lat2) -> float:
    """Independent oracle: haversine in radians."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    return 2 * math.asin(min(1.0, math.sqrt(a)))


def _pt(rnd: random.Random, spread: float) -> tuple[float, float]:
    return (round(rnd.uniform(-spread, spread), 6), round(rnd.uniform(-spread / 2, spread / 2), 6))


def _loc(rnd: random.Random, spread: float):
    """A random location in one of the stored forms, with its list of points."""
    k = rnd.random()
    x, y = _pt(rnd, spread)
    if k < 0.5:
        return {"type": "Point", "coordinates": [x, y]}, [(x, y)]
    if k < 0.65:
        return [x, y], [(x, y)]
    if k < 0.75:
        return {"lng": x, "lat": y}, [(x, y)]
    if k < 0.85:
        pts = [_pt(rnd, spread) for _ in range(rnd.randint(1, 3))]
        return {"type": "MultiPoint", "coordinates": [list(p) for p in pts]}, pts
    if k < 0.93:
        pts = [_pt(rnd, spread) for _ in range(2)]
        return [{"type": "Point", "coordinates": list(p)} for p in pts], pts
    return None, []


def _doc(rnd, i, spread=40.0):
    loc, pts = _loc(rnd, spread)
    d = {"_id": i, "k": rnd.randint(0, 3)}
    if loc is not None or rnd.random() < 0.5:
        d["loc"] = loc
    return d, pts


def _oracle(points: dict, q, lo=0.0, hi=math.inf, filt=None):
    """Expected (distance, _id) pairs, nearest first, from the independent haversine."""
    out = []
    for i, (pts, k) in points.items():
        if not pts:
            continue
        d = min(hav(q[0], q[1], x, y) for x, y in pts)     # a document's distance: its nearest point
        if lo <= d <= hi and (filt is None or filt(k)):
            out.append((d, i))
    return sorted(out)


def _load_indexed(e: Engine, rnd: random.Random, n: int) -> dict:
    """Insert ``n`` random documents into db.c, add the 2dsphere index; return
    ``{_id: (points, k)}`` for the brute-force checks."""
    points: dict = {}
    docs = []
    for i in range(n):
        d, pts = _doc(rnd, i)
        docs.append(d)
        points[i] = (pts, d["k"])
    e.insert("db", "c", docs)
    c = e.get_collection("db", "c")
    e.set_indexes(c, c.meta.indexes + [SPEC])
    return points


def _check(e: Engine, points: dict, rnd: random.Random, n_queries: int = 25) -> None:
    for _ in range(n_queries):
        q = _pt(rnd, 45.0)
        form = rnd.random()
        lo = rnd.choice([0.0, 0.0, rnd.uniform(0, 0.2)])
        hi = rnd.choice([math.inf, rnd.uniform(0.05, 0.6)])
        near: dict = {"$geometry": {"type": "Point", "coordinates": list(q)}}
        if lo:
            near["$minDistance"] = lo * R
        if math.isfinite(hi):
            near["$maxDistance"] = hi * R
        flt: dict = {"loc": {"$near": near}}
        filt = None
        if form < 0.3:
            flt["k"] = 2
            filt = lambda k: k == 2                # noqa: E731
        limit = rnd.choice([0, 1, 10, 50])
        st = ScanStats()
        got = list(e.find("db", "c", flt, as_raw=False, limit=limit, stats=st))
        exp = _oracle(points, q, lo, hi, filt)
        if limit:
            exp = exp[:limit]
        assert [d["_id"] for d in got] == [i for _, i in exp], (flt, limit)
        for d, (dist, _i) in zip(got, exp):
            assert get_meta(d, "geoNearDistance") == pytest.approx(dist * R, rel=1e-9, abs=1e-6)
        assert getattr(st, "index_name", None) == "loc_2dsphere"
        # legacy query point: radians
        if rnd.random() < 0.3:
            got = list(e.find("db", "c", {"loc": {"$nearSphere": list(q), "$maxDistance": 0.3}}, as_raw=False,
                              limit=5))
            exp = _oracle(points, q, 0.0, 0.3)[:5]
            assert [d["_id"] for d in got] == [i for _, i in exp]
            for d, (dist, _i) in zip(got, exp):
                assert get_meta(d, "geoNearDistance") == pytest.approx(dist, rel=1e-9, abs=1e-12)


def test_near_differential_through_writes_flush_compaction_restart(tmp_path):
    rnd = random.Random(11)
    path = str(tmp_path / "store")
    e = Engine(path, flush_interval=3600, row_group_rows=64).open()
    points = _load_indexed(e, rnd, 600)
    _check(e, points, rnd)
    e.flush()
    _check(e, points, rnd)
    for step in range(4):
        ids = rnd.sample(range(800), 80)
        for i in ids[:25]:                                 # replace (moves points) or upsert
            d, pts = _doc(rnd, i)
            e.update("db", "c", {"_id": i}, d, upsert=True)
            points[i] = (pts, d["k"])
        for i in ids[25:35]:                               # $set moves a point
            x, y = _pt(rnd, 40.0)
            e.update("db", "c", {"_id": i}, {"$set": {"loc": [x, y]}})
            if i in points:
                points[i] = ([(x, y)], points[i][1])
        e.delete("db", "c", {"_id": {"$in": ids[35:50]}})
        for i in ids[35:50]:
            points.pop(i, None)
        new = []
        for j in range(40):
            d, pts = _doc(rnd, 1000 + step * 100 + j)
            new.append(d)
            points[d["_id"]] = (pts, d["k"])
        e.insert("db", "c", new)
        _check(e, points, rnd, 10)
        if step == 1:
            e.flush()
        if step == 2:
            e.compact("db", "c")
            _check(e, points, rnd, 10)
    e.close(flush=False)                                  # recovery replays the WAL
    e = Engine(path, flush_interval=3600, row_group_rows=64).open()
    _check(e, points, rnd)
    e.close()


def test_near_without_index_fails_and_transactions_scan(tmp_path):
    e = Engine(str(tmp_path / "s"), flush_interval=3600).open()
    try:
        e.insert("db", "c", [{"_id": i, "loc": [i, 0]} for i in range(5)])
        with pytest.raises(MongoError) as ei:
            list(e.find("db", "c", {"loc": {"$near": [0, 0]}}))
        assert ei.value.code == 291 and "unable to find index for $geoNear query" in ei.value.message
        c = e.get_collection("db", "c")
        e.set_indexes(c, c.meta.indexes + [SPEC])
        got = [d["_id"] for d in e.find("db", "c", {"loc": {"$near": [2.2, 0]}}, as_raw=False)]
        assert got == [2, 3, 1, 4, 0]
    finally:
        e.close()


def test_index_tolerates_old_invalid_values_and_counts_entries():
    ix = GeoIndex(dict(SPEC))
    ix.add({"_id": 1, "loc": [1, 2]}, b"k1")
    ix.add({"_id": 2, "loc": "not a place"}, b"k2")
    ix.add({"_id": 3, "loc": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}, b"k3")
    ix.finish_build()
    assert ix.entry_count() == 2
    ix.add({"_id": 4, "loc": {"type": "MultiPoint", "coordinates": [[5, 5], [6, 6]]}}, b"k4")
    assert ix.entry_count() == 4
    ix.remove({}, b"k4")
    ix.remove({}, b"k3")
    assert ix.entry_count() == 1
    assert ix.describe()["points"] == 1 and ix.describe()["shapes"] == 0


def test_check_document_messages():
    with pytest.raises(MongoError) as ei:
        check_document(SPEC, {"_id": 1, "loc": {"type": "Point", "coordinates": [200, 0]}})
    assert ei.value.code == 16755
    assert ei.value.message == ("Can't extract geo keys: { _id: 1, loc: { type: \"Point\", coordinates: [ 200, 0 ] } }"
                                "  Longitude/latitude is out of bounds, lng: 200 lat: 0")
    with pytest.raises(MongoError) as ei:
        check_document(SPEC, {"_id": 1, "loc": "x"})
    assert "geo element must be an array or object: \"x\"" in ei.value.message
    with pytest.raises(MongoError) as ei:
        check_document(SPEC, {"_id": 1, "loc": [200, 0]})
    assert "can't project geometry into spherical CRS: loc: [ 200, 0 ]" in ei.value.message
    for ok in ({"_id": 1}, {"_id": 1, "loc": None}, {"_id": 1, "loc": []}, {"_id": 1, "loc": [1, 2, 3]},
               {"_id": 1, "loc": {"x": 1, "y": 2}}):
        check_document(SPEC, ok)
    partial = dict(SPEC, partialFilterExpression={"k": 1})
    check_document(partial, {"_id": 1, "k": 2, "loc": "x"})           # not in the index: not checked


def test_validate_spec():
    out = GeoIndex.validate_spec({"v": 2, "key": {"loc": "2dsphere", "k": 1}, "name": "n"})
    assert out["2dsphereIndexVersion"] == 3
    with pytest.raises(MongoError) as ei:
        GeoIndex.validate_spec({"v": 2, "key": {"loc": "2dsphere"}, "name": "n", "2dsphereIndexVersion": 9})
    assert ei.value.code == 67


def test_rect_distance_is_a_lower_bound_and_tight():
    rnd = random.Random(5)
    for _ in range(400):
        q = (rnd.uniform(-180, 180), rnd.uniform(-90, 90))
        l0, w = rnd.uniform(-180, 170), rnd.uniform(0.01, 40)
        a0 = rnd.uniform(-90, 80)
        h = rnd.uniform(0.01, min(30, 90 - a0))
        rd = rect_distance(q[0], q[1], l0, l0 + w, a0, a0 + h)
        grid = [hav(q[0], q[1], l0 + w * i / 40, a0 + h * j / 40) for i in range(41) for j in range(41)]
        assert rd <= min(grid) + 1e-9                      # never more than the true distance
        assert rd >= min(grid) - max(w, h) * math.pi / 180 / 40 * 1.5   # and close to it


def test_point_store_nearest_matches_sorting():
    rnd = np.random.default_rng(3)
    n = 20000
    lng = rnd.uniform(-180, 180, n)
    lat = np.degrees(np.arcsin(rnd.uniform(-1, 1, n)))
    ps = PointStore()
    ps.bulk(list(range(n)), lng.tolist(), lat.tolist())
    for i in range(0, 3000, 7):
        ps.remove(i)
    extra = {n + i: (float(rnd.uniform(-180, 180)), float(rnd.uniform(-90, 90))) for i in range(300)}
    for e, (x, y) in extra.items():
        ps.add(e, x, y)
    alive = {i: (lng[i], lat[i]) for i in range(n) if not (i < 3000 and i % 7 == 0)}
    alive.update(extra)
    for _ in range(30):
        q = (float(rnd.uniform(-180, 180)), float(rnd.uniform(-90, 90)))
        hi = float(rnd.choice([math.inf, 0.05]))
        got = []
        for d, e in ps.nearest(q[0], q[1], 0.0, hi):
            got.append(e)
            if len(got) == 20:
                break
        exp = sorted((hav(q[0], q[1], x, y), e) for e, (x, y) in alive.items())
        exp = [e for d, e in exp if d <= hi][:20]
        assert got == exp
    assert len(ps) == len(alive)


def test_near_must_be_top_level_and_alone(tmp_path):
    e = Engine(str(tmp_path / "s"), flush_interval=3600).open()
    try:
        e.insert("db", "c", [{"_id": i, "loc": [i, 0], "a": i % 2} for i in range(5)])
        c = e.get_collection("db", "c")
        e.set_indexes(c, c.meta.indexes + [SPEC])
        near = {"loc": {"$near": [0, 0]}}
        got = [d["_id"] for d in e.find("db", "c", {"$and": [{"$and": [near]}, {"a": 1}]}, as_raw=False)]
        assert got == [1, 3]
        for flt, msg in (({"$or": [near, {"a": 1}]}, "geoNear must be top-level expr"),
                         ({"$nor": [near]}, "geoNear must be top-level expr"),
                         ({"$and": [near, {"loc": {"$nearSphere": [1, 1]}}]}, "Too many geoNear expressions")):
            with pytest.raises(MongoError) as ei:
                list(e.find("db", "c", flt))
            assert ei.value.code == 2 and ei.value.message == msg
    finally:
        e.close()


def test_verify_build_reports_invalid_documents():
    ix = GeoIndex(dict(SPEC))
    ix.add({"_id": 1, "loc": [1, 2]}, b"k1")
    ix.add({"_id": 2, "loc": {"type": "Point", "coordinates": [0, 91]}}, b"k2")
    ix.finish_build()
    with pytest.raises(MongoError) as ei:
        ix.verify_build()
    assert ei.value.code == 16755 and ei.value.message.startswith("Can't extract geo keys: { _id: 2")
    ix.remove({}, b"k2")                       # fixed (deleted) during the build's catch-up
    ix.verify_build()


def test_near_during_concurrent_writes(tmp_path):
    import threading
    rnd = random.Random(21)
    e = Engine(str(tmp_path / "s"), flush_interval=3600, row_group_rows=64).open()
    try:
        points = _load_indexed(e, rnd, 400)
        errors: list = []

        def writer():
            wr = random.Random(22)
            try:
                for step in range(300):
                    i = wr.randrange(600)
                    if wr.random() < 0.2:
                        e.delete("db", "c", {"_id": i})
                        points.pop(i, None)
                    else:
                        d, pts = _doc(wr, i)
                        e.update("db", "c", {"_id": i}, d, upsert=True)
                        points[i] = (pts, d["k"])
                    if step == 150:
                        e.flush()
            except Exception as exc:           # pragma: no cover - reported below
                errors.append(exc)

        def reader():
            rr = random.Random(23)
            try:
                for _ in range(40):
                    q = _pt(rr, 45.0)
                    got = list(e.find("db", "c", {"loc": {"$near": {"$geometry": {"type": "Point",
                                                                                   "coordinates": list(q)}}}},
                                      as_raw=False, limit=20))
                    dists = [get_meta(d, "geoNearDistance") for d in got]
                    assert dists == sorted(dists)
                    assert len({d["_id"] for d in got}) == len(got)
            except Exception as exc:
                errors.append(exc)

        ts = [threading.Thread(target=writer), threading.Thread(target=reader)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors
        _check(e, points, rnd, 15)
    finally:
        e.close()
