"""Documents holding every BSON type the server stores, for the import/export tests."""
from __future__ import annotations

import datetime as dt
import uuid

from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.datetime_ms import DatetimeMS


def every_type(i: int) -> dict:
    """One document with a value of every BSON type (and edge values of several).

    Dates stay within years 1..9999: a flush of a collection holding a date outside
    that range fails today (statistics of shredded date columns go through Python
    datetimes; beyond +-292,000 years the cast to Delta's microseconds overflows), so
    the data stays in the WAL. Reported to the engine owner; the Extended JSON unit
    tests cover the whole int64 millisecond range without the engine."""
    return {
        "_id": i,
        "double": 1.5 + i, "negzero": -0.0, "inf": float("inf"), "ninf": float("-inf"), "nan": float("nan"),
        "tiny": 5e-324, "big": 1.7976931348623157e308,
        "string": f"héllo \u2603 \"quoted\" \\ {i}", "empty": "", "ctl": "tab\tnl\n\x01",
        "doc": {"a": i, "b": {"c": [1, {"d": None}]}}, "emptydoc": {}, "array": [i, "x", 2.5, [], {}],
        "bin0": Binary(b"\x00\x01\xff" * (i % 4), 0), "bin2": Binary(b"old", 2), "uuid": Binary(uuid.UUID(int=i).bytes, 4),
        "md5": Binary(b"\x11" * 16, 5), "user": Binary(b"u", 0x80),
        "oid": ObjectId(f"{i:024x}"), "true": True, "false": False,
        "date": dt.datetime(2024, 2, 29, 12, 30, 15, 123000, tzinfo=dt.timezone.utc),
        "epoch": DatetimeMS(0), "first": DatetimeMS(-62135596800000), "last": DatetimeMS(253402300799999 - i),
        "null": None, "regex": Regex(f"^a{i}.*$", "imsx"), "regex_plain": Regex("x", ""),
        "code": Code("function () { return 1; }"), "code_scope": Code("return x", {"x": i}),
        "int32": i, "int32_min": -2**31, "int32_max": 2**31 - 1,
        "ts": Timestamp(1_700_000_000 + i, i % 7), "int64": Int64(i), "int64_max": Int64(2**63 - 1),
        "dec": Decimal128("1.10E+5"), "dec_nan": Decimal128("NaN"), "dec_neg0": Decimal128("-0"),
        "dec_inf": Decimal128("-Infinity"), "dec_big": Decimal128("9.999999999999999999999999999999999E+6144"),
        "minkey": MinKey(), "maxkey": MaxKey(), "dbref": DBRef("coll", i, "db", extra=1),
    }


_TEMPLATE = every_type(1)
_KEYS = [k for k in _TEMPLATE if k != "_id"]


def mixed(i: int) -> dict:
    """A smaller document; every 25th is :func:`every_type`, the others carry two values
    of rotating types besides a string, an int32 and a double."""
    if i % 25 == 0:
        return every_type(i)
    k1, k2 = _KEYS[i % len(_KEYS)], _KEYS[(i * 7) % len(_KEYS)]
    return {"_id": i, "name": f"user{i}", "n": i * 3, "f": i / 7, k1: _TEMPLATE[k1], k2: _TEMPLATE[k2]}
