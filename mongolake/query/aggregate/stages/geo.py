"""``$geoNear``: documents nearest first, with their distance in a field.

As in MongoDB the stage becomes a near query on the collection —
``{...query, key: {$near|$nearSphere: near, $minDistance, $maxDistance}}`` —
answered by the 2dsphere index (:func:`mongolake.engine.indexing.geo.iter_near`),
so it must be the first stage (40603) and the collection needs a 2dsphere index
(the one on ``key``, or its only one). Distances are in metres for a GeoJSON
``near`` and in radians for a legacy pair, times ``distanceMultiplier``;
``{$meta: "geoNearDistance"}`` reads the (unmultiplied) distance and
``includeLocs`` names a field receiving the stored location that was nearest.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
from mongolake.query.bsonorder import MISSING
from mongolake.query.meta import MetaDoc, attach, get_meta

IndexNotFound = 27


def _num(v: Any) -> bool:
    from mongolake.query.geo.geojson import is_number
    return is_number(v)


class GeoNearStage(Stage):
    name = "$geoNear"
    position = "first"
    allowed_in_facet = False
    allowed_in_lookup = False

    def __init__(self, spec: dict):
        super().__init__(spec)
        self.near = spec["near"]
        self.distance_field: str = spec["distanceField"]
        self.min = spec.get("minDistance")
        self.max = spec.get("maxDistance")
        self.query = spec.get("query") or {}
        self.spherical = _truthy(spec.get("spherical", False))
        self.multiplier = float(spec.get("distanceMultiplier", 1.0))
        self.include_locs = spec.get("includeLocs")
        self.key = spec.get("key")
        self.near_filter("__validate__")         # point and distances checked at parse time

    def near_filter(self, key: str) -> dict:
        op = "$nearSphere" if self.spherical else "$near"
        near: dict[str, Any] = {op: self.near}
        if self.min is not None:
            near["$minDistance"] = self.min
        if self.max is not None:
            near["$maxDistance"] = self.max
        from mongolake.query.geo import parse_near
        parse_near(key, near, False)
        return near

    def filter(self, key: str) -> dict:
        near = {key: self.near_filter(key)}
        return {"$and": [self.query, near]} if self.query else near

    # -- running ---------------------------------------------------------------------------
    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        ctx = env.ctx
        engine = getattr(ctx, "engine", None)
        coll = getattr(ctx, "collection", None)
        if engine is None or not isinstance(coll, str):
            return self._brute_force(docs, env)
        c = engine.get_collection(ctx.db, coll)
        if c is None:
            return iter(())
        key = self.key if self.key is not None else _only_geo_field(c, f"{ctx.db}.{coll}")
        found = engine.find(ctx.db, coll, self.filter(key), as_raw=False)
        return (self._decorate(d) for d in found)

    def _decorate(self, d: dict) -> dict:
        dist = get_meta(d, "geoNearDistance")
        loc = get_meta(d, "geoNearPoint")
        out = MetaDoc(d)
        out.meta.update(d.meta if isinstance(d, MetaDoc) else {})
        _set_path(out, self.distance_field, dist * self.multiplier if dist is not None else None)
        if self.include_locs is not None:
            _set_path(out, self.include_locs, loc)
        return out

    def _brute_force(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        """Outside the engine (embedded pipelines over in-memory documents): an
        exact evaluation, nearest first."""
        if self.key is None:
            raise MongoError(IndexNotFound, "$geoNear requires a 2d or 2dsphere index, but none were found")
        from mongolake.query.filter import parse_filter
        from mongolake.query.geo import GeoNear, parse_near
        from mongolake.query.matcher import compile_matcher
        node: GeoNear = parse_near(self.key, self.near_filter(self.key), False)
        m = compile_matcher(parse_filter(self.filter(self.key)), variables=env.variables)
        rows = []
        for i, d in enumerate(docs):
            if m(d):
                dist, loc = node.nearest(d)
                if math.isfinite(dist):
                    rows.append((dist, i, d, loc))
        rows.sort(key=lambda r: (r[0], r[1]))
        scale = node.scale()
        for dist, _i, d, loc in rows:
            yield self._decorate(attach(dict(d), geoNearDistance=dist * scale, geoNearPoint=loc))


def _truthy(v: Any) -> bool:
    from mongolake.query.filter_args import truthy
    return truthy(v)


def _only_geo_field(c: Any, ns: str) -> str:
    geo = [s for s in c.meta.indexes if "2dsphere" in s.get("key", {}).values()]
    if not geo:
        raise MongoError(IndexNotFound, "$geoNear requires a 2d or 2dsphere index, but none were found")
    if len(geo) > 1:
        raise MongoError(IndexNotFound,
                         f"There is more than one 2dsphere index on {ns}; unsure which to use for $geoNear")
    return next(f for f, v in geo[0]["key"].items() if v == "2dsphere")


def _set_path(doc: dict, path: str, value: Any) -> None:
    parts = path.split(".")
    cur = doc
    for p in parts[:-1]:
        nxt = cur.get(p, MISSING)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[p] = nxt
        cur = nxt
    cur[parts[-1]] = value


@stage("$geoNear")
def _parse_geo_near(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(10065, "$geoNear must take an object")
    if "collation" in spec:
        raise MongoError(40227, "$geoNear does not accept the 'collation' parameter. Instead, specify a collation "
                                "for the entire aggregation command.")
    if "limit" in spec:
        raise MongoError(50858, "$geoNear no longer supports the 'limit' parameter. Use a $limit stage instead.")
    if "num" in spec:
        raise MongoError(50857, "$geoNear no longer supports the 'num' parameter. Use a $limit stage instead.")
    if "start" in spec:
        raise MongoError(50856, "$geoNear no longer supports the 'start' argument.")
    if not isinstance(spec.get("near"), (dict, list)):
        raise MongoError(16605, "$geoNear requires a 'near' option as an Array")
    df = spec.get("distanceField")
    if not isinstance(df, str):
        raise MongoError(16606, "$geoNear requires a 'distanceField' option as a String")
    _field_path(df)
    for name in ("maxDistance", "minDistance", "distanceMultiplier"):
        if name in spec:
            v = spec[name]
            if not _num(v):
                raise MongoError(ErrorCode.TypeMismatch, f"{name} must be a number")
            if not float(v.to_decimal() if hasattr(v, "to_decimal") else v) >= 0:
                raise MongoError(ErrorCode.BadValue, f"{name} must be nonnegative")
    if "query" in spec and not isinstance(spec["query"], dict):
        raise MongoError(ErrorCode.TypeMismatch, "query must be an object")
    if "includeLocs" in spec:
        if not isinstance(spec["includeLocs"], str):
            raise MongoError(16607, "$geoNear requires that 'includeLocs' option is a String")
        _field_path(spec["includeLocs"])
    if "key" in spec:
        k = spec["key"]
        if not isinstance(k, str):
            from mongolake.query.geo.render import type_name
            raise MongoError(ErrorCode.TypeMismatch,
                             f"$geoNear parameter 'key' must be of type string but found type: {type_name(k)}")
        if not k:
            raise MongoError(ErrorCode.BadValue, "$geoNear parameter 'key' cannot be the empty string")
    st = GeoNearStage(spec)
    if st.query:
        from mongolake.query.filter import parse_filter
        parse_filter(st.query, in_aggregation=True)
    return st


def _field_path(p: str) -> None:
    """FieldPath validation (the messages of MongoDB's FieldPath)."""
    if not p:
        raise MongoError(40352, "FieldPath cannot be constructed with empty string")
    if p.startswith("$"):
        raise MongoError(16410, "FieldPath field names may not start with '$'. Consider using $getField or "
                                "$setField.")
    if p.endswith("."):
        raise MongoError(40353, "FieldPath must not end with a '.'.")
    if any(not part for part in p.split(".")):
        raise MongoError(15998, "FieldPath field names may not be empty strings.")
