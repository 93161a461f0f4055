"""BSON values printed the way MongoDB prints them in geo error messages
(``BSONElement::toString``): ``{ type: "Point", coordinates: [ 200, 0 ] }``."""
from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId

from mongolake.query.bsonorder import MISSING


def type_name(v: Any) -> str:
    if v is MISSING:
        return "missing"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Int64):
        return "long"
    if isinstance(v, int):
        return "int" if -2 ** 31 <= v < 2 ** 31 else "long"
    if isinstance(v, float):
        return "double"
    if isinstance(v, Decimal128):
        return "decimal"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, ObjectId):
        return "objectId"
    if isinstance(v, _dt.datetime):
        return "date"
    if isinstance(v, (bytes, bytearray)):
        return "binData"
    return type(v).__name__


def fmt_double(x: float) -> str:
    """A double as C++ streams print it (6 significant digits)."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:g}"


def show(v: Any) -> str:
    """A value as ``BSONElement::toString(false)``."""
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{k}: {show(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        if not v:
            return "[]"
        return "[ " + ", ".join(show(x) for x in v) + " ]"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return f"{v:.1f}"
        return repr(v)
    if isinstance(v, Decimal128):
        return f"NumberDecimal(\"{v}\")"
    if isinstance(v, ObjectId):
        return f"ObjectId('{v}')"
    return str(v)


def show_elem(name: str, v: Any) -> str:
    """An element with its name: ``$maxDistance: 5000.0``."""
    return f"{name}: {show(v)}"
