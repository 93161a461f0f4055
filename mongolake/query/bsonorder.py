"""MongoDB's BSON comparison order, shared by matching, sorting, zone maps and keys.

Values are the Python objects ``bson`` decodes to (with :data:`CODEC_OPTIONS`):
None, bool, int/Int64, float, Decimal128, str, dict, list, bytes/Binary,
ObjectId, datetime/DatetimeMS, Timestamp, Regex/re.Pattern, Code, MinKey,
MaxKey, DBRef. :data:`MISSING` stands for an absent field.

Order (MongoDB "Comparison/Sort Order"): MinKey < (missing/undefined) < Null <
Numbers < Symbol/String < Object < Array < BinData < ObjectId < Boolean < Date <
Timestamp < Regex < DBPointer < Code < CodeWithScope < MaxKey. Numbers of
different types compare by value; NaN is below every other number and equals NaN.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import re
from functools import cmp_to_key
from typing import Any

from bson import CodecOptions, DatetimeConversion
from bson.binary import Binary
from bson.code import Code
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.datetime_ms import DatetimeMS
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp
from bson.binary import UuidRepresentation


class _Missing:
    """Marker for an absent field (distinct from an explicit null)."""

    _inst = None

    def __new__(cls):
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

CODEC_OPTIONS = CodecOptions(
    document_class=dict,
    tz_aware=True,
    tzinfo=_dt.timezone.utc,
    uuid_representation=UuidRepresentation.UNSPECIFIED,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)

# canonical type ranks (MongoDB's canonicalizeBSONType)
MINKEY, MISSING_RANK, NULL, NUMBER, STRING, OBJECT, ARRAY, BINARY, OBJECTID, BOOL, DATE, TIMESTAMP, REGEX, \
    DBPOINTER, CODE, CODEWSCOPE, MAXKEY = (-1, 0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 47, 50, 55, 60, 65, 100)

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def canonical_rank(v: Any) -> int:
    """MongoDB's canonical type rank of a value (missing ranks with null for ordering via NULL)."""
    t = type(v)
    r = _RANK_BY_TYPE.get(t)
    if r is not None:
        return r
    if v is None:
        return NULL
    if v is MISSING:
        return NULL
    if isinstance(v, bool):
        return BOOL
    if isinstance(v, Code):                     # a str subclass: test before str
        return CODEWSCOPE if v.scope is not None else CODE
    if isinstance(v, (int, float, Decimal128, decimal.Decimal)):
        return NUMBER
    if isinstance(v, str):
        return STRING
    if isinstance(v, DBRef):
        return OBJECT
    if isinstance(v, dict):
        return OBJECT
    if isinstance(v, (list, tuple)):
        return ARRAY
    if isinstance(v, (bytes, bytearray, Binary)):
        return BINARY
    if isinstance(v, ObjectId):
        return OBJECTID
    if isinstance(v, (_dt.datetime, DatetimeMS)):
        return DATE
    if isinstance(v, Timestamp):
        return TIMESTAMP
    if isinstance(v, (Regex, re.Pattern)):
        return REGEX
    if isinstance(v, Code):
        return CODEWSCOPE if v.scope is not None else CODE
    if isinstance(v, MinKey):
        return MINKEY
    if isinstance(v, MaxKey):
        return MAXKEY
    if hasattr(v, "bytes") and hasattr(v, "hex") and type(v).__name__ == "UUID":
        return BINARY
    raise TypeError(f"not a BSON value: {type(v).__name__}")


_RANK_BY_TYPE: dict[type, int] = {
    type(None): NULL, bool: BOOL, int: NUMBER, float: NUMBER, str: STRING, dict: OBJECT, list: ARRAY,
    bytes: BINARY, ObjectId: OBJECTID, _dt.datetime: DATE, Timestamp: TIMESTAMP, Decimal128: NUMBER,
    Binary: BINARY, Regex: REGEX, MinKey: MINKEY, MaxKey: MAXKEY, DatetimeMS: DATE,
}
try:  # Int64 is an int subclass
    from bson.int64 import Int64

    _RANK_BY_TYPE[Int64] = NUMBER
except ImportError:  # pragma: no cover
    pass


def is_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float, Decimal128, decimal.Decimal))


def to_number(v: Any) -> int | float | decimal.Decimal:
    """A number as int, float or Decimal (Decimal128 -> Decimal)."""
    if isinstance(v, Decimal128):
        return v.to_decimal()
    return v


def is_nan(v: Any) -> bool:
    if isinstance(v, float):
        return v != v
    if isinstance(v, Decimal128):
        return v.to_decimal().is_nan()
    if isinstance(v, decimal.Decimal):
        return v.is_nan()
    return False


def date_ms(v: Any) -> int:
    """Milliseconds since the epoch of a BSON date value."""
    if isinstance(v, DatetimeMS):
        return int(v)
    if v.tzinfo is None:
        v = v.replace(tzinfo=_dt.timezone.utc)
    d = v - _EPOCH
    return (d.days * 86400 + d.seconds) * 1000 + d.microseconds // 1000


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _num_cmp(a: Any, b: Any) -> int:
    na, nb = is_nan(a), is_nan(b)
    if na or nb:
        return 0 if (na and nb) else (-1 if na else 1)
    a, b = to_number(a), to_number(b)
    if isinstance(a, decimal.Decimal) or isinstance(b, decimal.Decimal):
        # exact comparison between Decimal and int/float
        # exact: Decimal(float) is exact and Decimal orders infinities itself
        a = a if isinstance(a, decimal.Decimal) else decimal.Decimal(a)
        b = b if isinstance(b, decimal.Decimal) else decimal.Decimal(b)
    return _cmp(a, b)


def _binary_parts(v: Any) -> tuple[int, int, bytes]:
    if isinstance(v, Binary):
        return len(v), v.subtype, bytes(v)
    if type(v).__name__ == "UUID":
        return 16, 4, v.bytes
    return len(v), 0, bytes(v)


def _regex_parts(v: Any) -> tuple[str, str]:
    if isinstance(v, Regex):
        return str(v.pattern), "".join(sorted(_flags_str(v.flags)))
    return str(v.pattern), "".join(sorted(_flags_str(v.flags)))


def _flags_str(flags: Any) -> str:
    if isinstance(flags, str):
        return flags
    out = ""
    for bit, ch in ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"), (re.VERBOSE, "x"),
                    (re.UNICODE, "u")):
        if flags & bit:
            out += ch
    return out


def _obj_items(v: Any) -> list[tuple[str, Any]]:
    if isinstance(v, DBRef):
        return list(v.as_doc().items())
    return list(v.items())


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 by MongoDB's BSON order."""
    ra, rb = canonical_rank(a), canonical_rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra == NUMBER:
        return _num_cmp(a, b)
    if ra == STRING:
        return _cmp(a, b)
    if ra in (NULL, MINKEY, MAXKEY):
        return 0
    if ra == OBJECT:
        ia, ib = _obj_items(a), _obj_items(b)
        for (ka, va), (kb, vb) in zip(ia, ib):
            c = _cmp(canonical_rank(va), canonical_rank(vb))
            if c:
                return c
            c = _cmp(ka, kb)
            if c:
                return c
            c = compare(va, vb)
            if c:
                return c
        return _cmp(len(ia), len(ib))
    if ra == ARRAY:
        for va, vb in zip(a, b):
            c = compare(va, vb)
            if c:
                return c
        return _cmp(len(a), len(b))
    if ra == BINARY:
        return _cmp(_binary_parts(a), _binary_parts(b))
    if ra == OBJECTID:
        return _cmp(a.binary, b.binary)
    if ra == BOOL:
        return _cmp(bool(a), bool(b))
    if ra == DATE:
        return _cmp(date_ms(a), date_ms(b))
    if ra == TIMESTAMP:
        return _cmp((a.time, a.inc), (b.time, b.inc))
    if ra == REGEX:
        return _cmp(_regex_parts(a), _regex_parts(b))
    if ra in (CODE, CODEWSCOPE):
        c = _cmp(str(a), str(b))
        if c or ra == CODE:
            return c
        return compare(dict(a.scope or {}), dict(b.scope or {}))
    return 0


sort_key = cmp_to_key(compare)
"""A ``key=`` function for ``sorted`` by BSON order."""


def values_equal(a: Any, b: Any) -> bool:
    """Equality as MongoDB's $eq sees it (1 == 1.0, objects by field order)."""
    return canonical_rank(a) == canonical_rank(b) and compare(a, b) == 0


# -- BSON type codes (``$type``, ``$jsonSchema`` bsonType) ---------------------

TYPE_ALIASES: dict[str, int] = {
    "double": 1, "string": 2, "object": 3, "array": 4, "binData": 5, "undefined": 6,
    "objectId": 7, "bool": 8, "date": 9, "null": 10, "regex": 11, "dbPointer": 12,
    "javascript": 13, "symbol": 14, "javascriptWithScope": 15, "int": 16,
    "timestamp": 17, "long": 18, "decimal": 19, "minKey": -1, "maxKey": 127,
}
"""MongoDB's type-name aliases -> BSON type numbers (``"number"`` is handled apart)."""

NUMBER_TYPE_CODES = frozenset({1, 16, 18, 19})
VALID_TYPE_CODES = frozenset(TYPE_ALIASES.values())

_INT32_MIN, _INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def type_code(v: Any) -> int | None:
    """The BSON type number of a decoded value (None for :data:`MISSING`).

    A plain Python ``int`` is an int32 when it fits, else an int64 (that is how
    the bson encoder writes it); ``Int64`` is always an int64.
    """
    t = type(v)
    if t is float:
        return 1
    if t is str:
        return 2
    if t is int:
        return 16 if _INT32_MIN <= v <= _INT32_MAX else 18
    if t is dict or t is list:
        return 3 if t is dict else 4
    if v is None:
        return 10
    if v is MISSING:
        return None
    if isinstance(v, bool):
        return 8
    r = canonical_rank(v)
    if r == NUMBER:
        if isinstance(v, (Decimal128, decimal.Decimal)):
            return 19
        if isinstance(v, float):
            return 1
        if type(v).__name__ == "Int64":
            return 18
        return 16 if _INT32_MIN <= v <= _INT32_MAX else 18
    return {STRING: 2, OBJECT: 3, ARRAY: 4, BINARY: 5, OBJECTID: 7, DATE: 9, TIMESTAMP: 17,
            REGEX: 11, CODE: 13, CODEWSCOPE: 15, MINKEY: -1, MAXKEY: 127}.get(r)
