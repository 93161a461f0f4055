"""Value helpers shared by expressions and pipeline stages.

* :func:`type_name` — MongoDB's ``$type`` names;
* :func:`truthy` — aggregation truthiness;
* :func:`hash_key` — a hashable key such that ``hash_key(a) == hash_key(b)``
  exactly when MongoDB considers ``a`` and ``b`` equal (``1 == 1.0 ==
  NumberDecimal("1.00")``), used for ``$group`` keys, ``$addToSet``, set
  operators and hash joins.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import math
import re
import uuid
from typing import Any

from bson.binary import Binary
from bson.code import Code
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

from mongolake.query.bsonorder import MISSING, date_ms

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


def type_name(v: Any) -> str:
    """The ``$type`` name of a value (``"missing"`` for an absent one)."""
    t = type(v)
    if t is str:
        return "string"
    if t is bool:
        return "bool"
    if t is int:
        return "int" if INT32_MIN <= v <= INT32_MAX else "long"
    if t is Int64:
        return "long"
    if t is float:
        return "double"
    if t is dict:
        return "object"
    if t is list:
        return "array"
    if v is None:
        return "null"
    if v is MISSING:
        return "missing"
    if isinstance(v, Decimal128):
        return "decimal"
    if isinstance(v, (_dt.datetime, DatetimeMS)):
        return "date"
    if isinstance(v, ObjectId):
        return "objectId"
    if isinstance(v, (bytes, bytearray, Binary, uuid.UUID)):
        return "binData"
    if isinstance(v, Timestamp):
        return "timestamp"
    if isinstance(v, (Regex, re.Pattern)):
        return "regex"
    if isinstance(v, Code):
        return "javascriptWithScope" if v.scope is not None else "javascript"
    if isinstance(v, MinKey):
        return "minKey"
    if isinstance(v, MaxKey):
        return "maxKey"
    if isinstance(v, DBRef):
        return "object"
    if isinstance(v, int):
        return "long"
    if isinstance(v, dict):
        return "object"
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, decimal.Decimal):
        return "decimal"
    return "unknown"


def truthy(v: Any) -> bool:
    """Aggregation truthiness: false, null, missing and every numeric zero are false."""
    if v is None or v is MISSING or v is False:
        return False
    if v is True:
        return True
    t = type(v)
    if t is int or t is float or t is Int64:
        return v != 0
    if t is Decimal128:
        return not v.to_decimal().is_zero()
    return True


def is_nullish(v: Any) -> bool:
    return v is None or v is MISSING


# ---------------------------------------------------------------------------
# hashing by MongoDB equality


def _num_key(v: Any) -> Any:
    if isinstance(v, Decimal128):
        d = v.to_decimal()
        if d.is_nan():
            return ("nan",)
        if d.is_infinite():
            return float(d)
        if d == d.to_integral_value():
            return int(d)
        f = float(d)
        if decimal.Decimal(f) == d:
            return f
        return d.normalize()
    if isinstance(v, float):
        if v != v:
            return ("nan",)
        if v.is_integer():
            return int(v)
        return v
    return int(v)


def hash_key(v: Any) -> Any:
    """A hashable value; equal keys exactly for values MongoDB compares equal."""
    t = type(v)
    if t is str:
        return (1, v)
    if t is int or t is Int64 or t is float or t is Decimal128:
        return (0, _num_key(v))
    if t is dict:
        return (2,) + tuple((k, hash_key(x)) for k, x in v.items())
    if t is list:
        return (3,) + tuple(hash_key(x) for x in v)
    if v is None or v is MISSING:
        return (-1,)
    if t is bool:
        return (5, v)
    if isinstance(v, (_dt.datetime, DatetimeMS)):
        return (6, date_ms(v))
    if isinstance(v, ObjectId):
        return (7, v.binary)
    if isinstance(v, Binary):
        return (8, v.subtype, bytes(v))
    if isinstance(v, bytes):
        return (8, 0, v)
    if isinstance(v, uuid.UUID):
        return (8, 4, v.bytes)
    if isinstance(v, Timestamp):
        return (9, v.time, v.inc)
    if isinstance(v, Regex):
        return (10, str(v.pattern), str(v.flags))
    if isinstance(v, re.Pattern):
        return (10, v.pattern, v.flags)
    if isinstance(v, Code):
        return (11, str(v), hash_key(dict(v.scope)) if v.scope is not None else None)
    if isinstance(v, MinKey):
        return (12,)
    if isinstance(v, MaxKey):
        return (13,)
    if isinstance(v, DBRef):
        return hash_key(v.as_doc())
    if isinstance(v, (int, float, decimal.Decimal)):
        return (0, _num_key(Decimal128(v) if isinstance(v, decimal.Decimal) else v))
    if isinstance(v, tuple):
        return (3,) + tuple(hash_key(x) for x in v)
    return (99, repr(v))


def is_finite_number(v: Any) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)
    if isinstance(v, Decimal128):
        return v.to_decimal().is_finite()
    return True


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MIN_MS = -62135596800000  # 0001-01-01
_MAX_MS = 253402300799999  # 9999-12-31T23:59:59.999


def is_date(v: Any) -> bool:
    return isinstance(v, (_dt.datetime, DatetimeMS))


def ms_to_date(ms: int) -> Any:
    """A BSON date from milliseconds since the epoch (DatetimeMS outside datetime's range)."""
    ms = int(ms)
    if _MIN_MS <= ms <= _MAX_MS:
        return _EPOCH + _dt.timedelta(milliseconds=ms)
    return DatetimeMS(ms)
