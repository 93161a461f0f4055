"""Geospatial query operators (placeholder until 2dsphere support lands)."""
from __future__ import annotations

from typing import Any, Mapping

from mongolake.errors import ErrorCode, MongoError


def parse_near(path: str, obj: Mapping, nested: bool):
    """The node of ``{path: {$near|$nearSphere|$geoNear: ..., $maxDistance: ...}}``."""
    first = next(iter(obj))
    raise MongoError(ErrorCode.NotImplemented, f"{first} is not supported yet (needs a geospatial index)")


def parse_geo_predicate(path: str, op: str, val: Any):
    """The node of ``{path: {$geoWithin|$geoIntersects|$within: val}}``."""
    raise MongoError(ErrorCode.NotImplemented, f"{op} is not supported yet (geospatial queries)")
