"""MongoDB Extended JSON v2, fast enough for bulk import and export.

:func:`dumps` turns raw BSON bytes straight into canonical (lossless, the default)
or relaxed Extended JSON, walking the bytes without building Python objects, so
the output preserves field order and every type distinction (int32 / int64 /
double / decimal, -0.0, dates outside Python's datetime range, binary subtypes,
code with scope, timestamps, min/max keys).

:func:`loads` parses one Extended JSON document (canonical or relaxed) into a
``dict`` of the values ``bson`` encodes back to the same BSON: ``$numberLong`` ->
``Int64``, ``$numberInt``/``$numberDouble`` -> ``int``/``float``, ``$date`` ->
``DatetimeMS`` (any int64 millisecond value), ``$binary`` -> ``Binary`` with its
subtype, and so on.

Deprecated BSON types (undefined, DBPointer, symbol) are written in their
canonical form but cannot be stored back by the ``bson`` library: ``loads``
turns them into null, a DBRef document and a string.
"""
from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import struct
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

try:                                    # the C accelerated string quoting of the json module
    from json.encoder import c_encode_basestring as _quote   # type: ignore[attr-defined]
except ImportError:                     # pragma: no cover
    from json.encoder import py_encode_basestring as _quote

if _quote is None:                      # pragma: no cover
    from json.encoder import py_encode_basestring as _quote


class ExtJSONError(ValueError):
    """Input that is not valid Extended JSON (or BSON that cannot be rendered)."""


_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MAX_ISO_MS = 253402300799999        # 9999-12-31T23:59:59.999Z


def _cstring(b: bytes, i: int) -> tuple[str, int]:
    end = b.index(b"\x00", i)
    return b[i:end].decode("utf-8"), end + 1


def _double(v: float, relaxed: bool) -> str:
    if math.isfinite(v):
        r = repr(v)
        return r if relaxed else '{"$numberDouble": "' + r + '"}'
    s = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    return '{"$numberDouble": "' + s + '"}'


def _date(ms: int, relaxed: bool) -> str:
    if relaxed and 0 <= ms <= _MAX_ISO_MS:
        d = _EPOCH + dt.timedelta(milliseconds=ms)
        return '{"$date": "' + d.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z" + '"}'
    return '{"$date": {"$numberLong": "' + str(ms) + '"}}'


def _document(b: bytes, i: int, end: int, out: list[str], relaxed: bool, array: bool) -> None:
    """Render the elements between ``i`` and ``end`` (the document's final NUL)."""
    append, quote, i32, find = out.append, _quote, _I32.unpack_from, b.index
    append("[" if array else "{")
    first = True
    while i < end:
        t = b[i]
        name_end = find(b"\x00", i + 1)
        if first:
            first = False
        else:
            append(", ")
        if not array:
            append(quote(b[i + 1:name_end].decode("utf-8")))
            append(": ")
        i = name_end + 1
        if t == 0x02:                                       # string
            n = i32(b, i)[0]
            append(quote(b[i + 4:i + 3 + n].decode("utf-8")))
            i += 4 + n
        elif t == 0x10:                                     # int32
            v = i32(b, i)[0]
            append(str(v) if relaxed else '{"$numberInt": "' + str(v) + '"}')
            i += 4
        elif t == 0x01:                                     # double
            append(_double(_F64.unpack_from(b, i)[0], relaxed))
            i += 8
        elif t == 0x03 or t == 0x04:                        # document, array
            n = i32(b, i)[0]
            _document(b, i + 4, i + n - 1, out, relaxed, t == 0x04)
            i += n
        elif t == 0x12:                                     # int64
            v = _I64.unpack_from(b, i)[0]
            append(str(v) if relaxed else '{"$numberLong": "' + str(v) + '"}')
            i += 8
        elif t == 0x08:                                     # bool
            append("true" if b[i] else "false")
            i += 1
        elif t == 0x0A:                                     # null
            append("null")
        elif t == 0x07:                                     # ObjectId
            append('{"$oid": "' + b[i:i + 12].hex() + '"}')
            i += 12
        elif t == 0x09:                                     # UTC datetime
            append(_date(_I64.unpack_from(b, i)[0], relaxed))
            i += 8
        elif t == 0x05:                                     # binary
            n = i32(b, i)[0]
            sub = b[i + 4]
            data = b[i + 5:i + 5 + n]
            if sub == 2 and len(data) >= 4:                 # old binary: drop the inner length
                data = data[4:]
            append('{"$binary": {"base64": "' + base64.b64encode(data).decode("ascii") +
                       '", "subType": "' + format(sub, "02x") + '"}}')
            i += 5 + n
        elif t == 0x13:                                     # decimal128
            append('{"$numberDecimal": "' + str(Decimal128.from_bid(b[i:i + 16])) + '"}')
            i += 16
        elif t == 0x11:                                     # timestamp
            v = _U64.unpack_from(b, i)[0]
            append('{"$timestamp": {"t": ' + str(v >> 32) + ', "i": ' + str(v & 0xFFFFFFFF) + "}}")
            i += 8
        elif t == 0x0B:                                     # regex
            pattern, i = _cstring(b, i)
            options, i = _cstring(b, i)
            append('{"$regularExpression": {"pattern": ' + quote(pattern) + ', "options": ' +
                       quote("".join(sorted(options))) + "}}")
        elif t == 0x0D or t == 0x0E:                        # code, symbol
            n = i32(b, i)[0]
            s = quote(b[i + 4:i + 3 + n].decode("utf-8"))
            append(('{"$code": ' if t == 0x0D else '{"$symbol": ') + s + "}")
            i += 4 + n
        elif t == 0x0F:                                     # code with scope
            total = i32(b, i)[0]
            n = i32(b, i + 4)[0]
            append('{"$code": ' + quote(b[i + 8:i + 7 + n].decode("utf-8")) + ', "$scope": ')
            j = i + 8 + n
            m = i32(b, j)[0]
            _document(b, j + 4, j + m - 1, out, relaxed, False)
            append("}")
            i += total
        elif t == 0xFF:
            append('{"$minKey": 1}')
        elif t == 0x7F:
            append('{"$maxKey": 1}')
        elif t == 0x06:
            append('{"$undefined": true}')
        elif t == 0x0C:                                     # DBPointer
            n = i32(b, i)[0]
            ns = b[i + 4:i + 3 + n].decode("utf-8")
            oid = b[i + 4 + n:i + 16 + n].hex()
            append('{"$dbPointer": {"$ref": ' + quote(ns) + ', "$id": {"$oid": "' + oid + '"}}}')
            i += 16 + n
        else:
            raise ExtJSONError(f"unknown BSON element type 0x{t:02x}")
    append("]" if array else "}")


def dumps(raw: bytes, *, relaxed: bool = False) -> str:
    """One BSON document (bytes) as Extended JSON text (canonical unless ``relaxed``)."""
    b = bytes(raw)
    n = _I32.unpack_from(b, 0)[0]
    if n != len(b) or b[-1] != 0:
        raise ExtJSONError("not a complete BSON document")
    out: list[str] = []
    try:
        _document(b, 4, n - 1, out, relaxed, False)
    except (IndexError, ValueError, struct.error) as e:
        if isinstance(e, ExtJSONError):
            raise
        raise ExtJSONError(f"malformed BSON: {e}") from None
    return "".join(out)


# -- parsing --------------------------------------------------------------------

def _date_value(v: Any) -> DatetimeMS:
    if isinstance(v, (int, Int64)) and not isinstance(v, bool):
        return DatetimeMS(int(v))
    if isinstance(v, str):
        s = v[:-1] + "+00:00" if v.endswith("Z") else v
        try:
            d = dt.datetime.fromisoformat(s)
        except ValueError:
            raise ExtJSONError(f"bad $date {v!r}") from None
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.timezone.utc)
        return DatetimeMS((d - _EPOCH) // dt.timedelta(milliseconds=1))
    raise ExtJSONError(f"bad $date {v!r}")


def _binary(v: Any) -> Binary:
    if not isinstance(v, dict) or set(v) != {"base64", "subType"}:
        raise ExtJSONError(f"bad $binary {v!r}")
    try:
        return Binary(base64.b64decode(v["base64"], validate=True), int(v["subType"], 16))
    except (ValueError, TypeError):
        raise ExtJSONError(f"bad $binary {v!r}") from None


def _regex(v: Any) -> Regex:
    if not isinstance(v, dict) or set(v) != {"pattern", "options"}:
        raise ExtJSONError(f"bad $regularExpression {v!r}")
    return Regex(v["pattern"], v["options"])


def _timestamp(v: Any) -> Timestamp:
    if not isinstance(v, dict) or set(v) != {"t", "i"}:
        raise ExtJSONError(f"bad $timestamp {v!r}")
    return Timestamp(int(v["t"]), int(v["i"]))


def _uuid(v: str) -> Binary:
    import uuid as _uuid_mod
    return Binary(_uuid_mod.UUID(v).bytes, 4)


def _dbpointer(v: Any) -> DBRef:
    if not isinstance(v, dict) or set(v) != {"$ref", "$id"}:
        raise ExtJSONError(f"bad $dbPointer {v!r}")
    return DBRef(v["$ref"], v["$id"])


def _string_of(what: str, convert):
    """A converter for wrappers whose value is a string (``{"$numberLong": "5"}``)."""
    def conv(v: Any) -> Any:
        if not isinstance(v, str):
            raise ExtJSONError(f"bad {what} {v!r}: expected a string")
        try:
            return convert(v)
        except ExtJSONError:
            raise
        except Exception:   # noqa: BLE001 - any conversion failure is bad input
            raise ExtJSONError(f"bad {what} {v!r}") from None
    return conv


def _int32(v: str) -> int:
    n = int(v)
    if not -2**31 <= n < 2**31:
        raise ExtJSONError(f"$numberInt {v!r} is outside the int32 range")
    return n


# single-key wrappers: key -> converter of its value
_WRAPPERS = {
    "$numberInt": _string_of("$numberInt", _int32),
    "$numberLong": _string_of("$numberLong", lambda v: Int64(int(v))),
    "$numberDouble": _string_of("$numberDouble", float),
    "$numberDecimal": _string_of("$numberDecimal", Decimal128),
    "$oid": _string_of("$oid", ObjectId),
    "$date": _date_value,
    "$binary": _binary,
    "$uuid": _string_of("$uuid", _uuid),
    "$regularExpression": _regex,
    "$timestamp": _timestamp,
    "$code": _string_of("$code", Code),
    "$symbol": _string_of("$symbol", str),
    "$minKey": lambda v: MinKey(),
    "$maxKey": lambda v: MaxKey(),
    "$undefined": lambda v: None,
    "$dbPointer": _dbpointer,
}


def _hook(pairs: list[tuple[str, Any]]) -> Any:
    if pairs and pairs[0][0][:1] == "$":
        key = pairs[0][0]
        if len(pairs) == 1:
            conv = _WRAPPERS.get(key)
            if conv is not None:
                return conv(pairs[0][1])
        elif key == "$code" and len(pairs) == 2 and pairs[1][0] == "$scope":
            return Code(pairs[0][1], pairs[1][1])
    return dict(pairs)


_decoder = json.JSONDecoder(object_pairs_hook=_hook)
# {"$numberInt": "5"} -> 5 and finite {"$numberDouble": "1.5"} -> 1.5 before parsing (in C): plain JSON
# numbers decode to the same int / float. A JSON string can never contain this text unescaped.
_FAST_INT = re.compile(r'\{\s*"\$numberInt"\s*:\s*"(-?[0-9]{1,10})"\s*\}')
_FAST_DOUBLE = re.compile(r'\{\s*"\$numberDouble"\s*:\s*"(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)"\s*\}')


def _group1(m: "re.Match") -> str:
    return m.group(1)


def _double_literal(m: "re.Match") -> str:
    v = m.group(1)
    return v if ("." in v or "e" in v or "E" in v) else v + ".0"


def loads(text: str) -> dict:
    """One Extended JSON document -> a dict ready for ``bson.encode``."""
    if "$number" in text:
        text = _FAST_INT.sub(_group1, text)
        text = _FAST_DOUBLE.sub(_double_literal, text)
    try:
        doc = _decoder.decode(text)
    except json.JSONDecodeError as e:
        raise ExtJSONError(f"invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ExtJSONError(f"expected a JSON object, got {type(doc).__name__}")
    return doc
