"""Document helpers shared by updates, projection and sort.

* BSON type names and MongoDB-style value rendering for error messages
  (``{_id: 1}``, ``a: [ 1, 2 ]``, ``ObjectId('…')``), so messages read like mongod's.
* :func:`identical`: MongoDB's "binary equal" (same BSON types, same field order),
  which decides whether an update was a no-op.
* :func:`copy_value`: a deep copy of the containers of a document (scalars are
  immutable and shared).
* Path parsing for update paths (``FieldRef``-like) and array-index parsing.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any

from bson.binary import Binary
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.datetime_ms import DatetimeMS
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

from mongolake.query.bsonorder import MISSING, date_ms

# one definition of MongoDB's type names and integer ranges, shared with the
# aggregation language
from mongolake.query.expr.values import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, type_name  # noqa: E402,F401


def _fmt_double(v: float) -> str:
    if math.isnan(v):
        return "nan.0"
    if math.isinf(v):
        return "inf.0" if v > 0 else "-inf.0"
    if v == int(v) and abs(v) < 1e16:
        return f"{int(v)}.0"
    return repr(v)


def fmt_value(v: Any) -> str:
    """Render a value the way mongod's ``BSONElement::toString`` does in messages."""
    if v is None:
        return "null"
    if v is MISSING:
        return "MISSING"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return _fmt_double(v)
    if isinstance(v, Decimal128):
        return f'NumberDecimal("{v}")'
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, DBRef):
        v = v.as_doc()
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{ " + ", ".join(fmt_elem(k, x) for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        if not v:
            return "[]"
        return "[ " + ", ".join(fmt_value(x) for x in v) + " ]"
    if isinstance(v, ObjectId):
        return f"ObjectId('{v}')"
    if isinstance(v, (_dt.datetime, DatetimeMS)):
        return f"new Date({date_ms(v)})"
    if isinstance(v, Timestamp):
        return f"Timestamp({v.time}, {v.inc})"
    if isinstance(v, (bytes, bytearray, Binary)):
        sub = v.subtype if isinstance(v, Binary) else 0
        return f"BinData({sub}, {bytes(v).hex().upper()})"
    if isinstance(v, Regex):
        return f"/{v.pattern}/{v.flags if isinstance(v.flags, str) else ''}"
    if isinstance(v, re.Pattern):
        return f"/{v.pattern}/"
    if isinstance(v, MinKey):
        return "MinKey"
    if isinstance(v, MaxKey):
        return "MaxKey"
    return str(v)


def fmt_elem(name: str, v: Any) -> str:
    """``name: value`` as in mongod's messages (``a: 1``)."""
    return f"{name}: {fmt_value(v)}"


def fmt_id(doc: dict) -> str:
    """``_id: 1`` for the document's ``_id`` or ``no id``."""
    if "_id" in doc:
        return fmt_elem("_id", doc["_id"])
    return "no id"


def fmt_doc(doc: dict) -> str:
    return fmt_value(doc)


def bson_type_key(v: Any) -> str:
    """A key equal for two values iff they have the same BSON type."""
    return type_name(v)


def identical(a: Any, b: Any) -> bool:
    """MongoDB's binary equality: same BSON types, same values, same field order."""
    ta, tb = type_name(a), type_name(b)
    if ta != tb:
        return False
    if isinstance(a, DBRef) or isinstance(b, DBRef):
        a = a.as_doc() if isinstance(a, DBRef) else a
        b = b.as_doc() if isinstance(b, DBRef) else b
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            if ka != kb or not identical(va, vb):
                return False
        return True
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    if ta == "double":
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if ta == "decimal":
        return str(a) == str(b)
    if ta == "date":
        return date_ms(a) == date_ms(b)
    if ta == "binData":
        if type(a).__name__ == "UUID" or type(b).__name__ == "UUID":
            return a == b
        sa = a.subtype if isinstance(a, Binary) else 0
        sb = b.subtype if isinstance(b, Binary) else 0
        return sa == sb and bytes(a) == bytes(b)
    if ta == "regex":
        return str(getattr(a, "pattern", a)) == str(getattr(b, "pattern", b)) and \
            getattr(a, "flags", 0) == getattr(b, "flags", 0)
    if ta in ("null", "minKey", "maxKey"):
        return True
    return a == b


def copy_value(v: Any) -> Any:
    """Deep copy of dicts and lists; other values are immutable and shared."""
    t = type(v)
    if t is dict:
        return {k: copy_value(x) for k, x in v.items()}
    if t is list:
        return [copy_value(x) for x in v]
    if isinstance(v, dict):
        return {k: copy_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [copy_value(x) for x in v]
    return v


def parse_index(part: str) -> int | None:
    """The array index named by a path component (all ASCII digits), else None."""
    if part and part.isdigit() and part.isascii():
        return int(part)
    return None


def child_value(container: Any, part: str) -> Any:
    """``container[part]`` for a document or (by index) an array, else MISSING."""
    if isinstance(container, dict):
        return container.get(part, MISSING)
    if isinstance(container, list):
        i = parse_index(part)
        if i is not None and i < len(container):
            return container[i]
    return MISSING


def dotted(parts: list[str] | tuple[str, ...]) -> str:
    return ".".join(parts)


def is_positional(part: str) -> bool:
    return part == "$"


def is_array_filter(part: str) -> bool:
    """``$[]`` or ``$[<identifier>]``."""
    return len(part) >= 3 and part.startswith("$[") and part.endswith("]")
