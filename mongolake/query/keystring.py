"""Order-preserving binary keys for BSON values (like MongoDB's KeyString).

``encode_key(a) < encode_key(b)`` (bytewise) iff ``compare(a, b) < 0`` and the
keys are equal iff ``compare(a, b) == 0``: numbers of every type that are equal
(``1``, ``1.0``, ``Int64(1)``, ``Decimal128("1")``) encode to the same bytes.
Data files store ``encode_key(_id)`` in the binary ``_key`` column, so Parquet's
bytewise min/max statistics are exact zone maps on ``_id``.

Layout: one type-bracket byte (increasing with MongoDB's canonical type order),
then a payload:

* numbers: ``0x00`` NaN, ``0x01`` -inf, ``0x02`` negative, ``0x03`` zero,
  ``0x04`` positive, ``0x05`` +inf; finite non-zero values are written exactly as
  a decimal: 2-byte biased exponent then base-100 digit pairs (1..100) and a
  ``0x00`` terminator (all bytes complemented for negatives);
* strings (also field names, regex, code): UTF-8 with ``0x00`` escaped as
  ``0x00 0xFF``, terminated by ``0x00``;
* documents/arrays: for each element its bracket byte, (field name,) payload;
  then ``0x00``;
* binary: 4-byte length, subtype, bytes; ObjectId: 12 bytes; bool: 1 byte;
  date: int64 ms + 2^63 (8 bytes); timestamp: time and increment (4 + 4 bytes).

Every bracket byte and terminator is below ``0xFF``, which keeps the order of
concatenations right when one string is a prefix of another.
"""
from __future__ import annotations

import decimal
from typing import Any

from bson import json_util
from bson.dbref import DBRef
from bson.json_util import RELAXED_JSON_OPTIONS
from bson.objectid import ObjectId

from mongolake.query import bsonorder as bo

__all__ = ["encode_key", "type_bracket_bounds", "key_range", "render_id", "bracket_of", "NAN_KEY"]

_TAG = {
    bo.MINKEY: 0x01, bo.NULL: 0x0A, bo.NUMBER: 0x14, bo.STRING: 0x1E, bo.OBJECT: 0x28,
    bo.ARRAY: 0x32, bo.BINARY: 0x3C, bo.OBJECTID: 0x46, bo.BOOL: 0x50, bo.DATE: 0x5A,
    bo.TIMESTAMP: 0x5F, bo.REGEX: 0x64, bo.DBPOINTER: 0x6E, bo.CODE: 0x78, bo.CODEWSCOPE: 0x82,
    bo.MAXKEY: 0xF0,
}
_END = b"\x00"
_EXP_BIAS = 0x8000
_NUM_TAG = bytes([_TAG[bo.NUMBER]])
_STR_TAG = bytes([_TAG[bo.STRING]])
_OID_TAG = bytes([_TAG[bo.OBJECTID]])
_TENS = bytes(((i - 48) * 10 if 48 <= i <= 57 else 0) for i in range(256))   # b"0".."9" -> 0..90
_UNITS = bytes(((i - 48) + 1 if 48 <= i <= 57 else 0) for i in range(256))   # b"0".."9" -> 1..10
_COMPLEMENT = bytes(255 - i for i in range(256))


def bracket_of(value: Any) -> int:
    """The leading byte of ``encode_key(value)``."""
    return _TAG[bo.canonical_rank(value)]


def encode_key(value: Any) -> bytes:
    """The order-preserving key of any BSON value (see the module docstring)."""
    t = type(value)
    if t is int:                                   # the common _id types: fast paths, same bytes
        return _int_key(value)
    if t is float and value - value == 0:          # finite
        return _float_key(value)
    if t is ObjectId:
        return _OID_TAG + value.binary
    if t is str and "\x00" not in value:
        return _STR_TAG + value.encode("utf-8", "surrogatepass") + _END
    out = bytearray()
    _encode(value, out, with_tag=True)
    return bytes(out)


def _int_key(x: int) -> bytes:
    if x == 0:
        return _NUM_TAG + b"\x03"
    neg = x < 0
    digits = str(-x if neg else x)
    return _digits_key(neg, digits, len(digits))   # x = 0.d1d2... * 10**len


def _float_key(x: float) -> bytes:
    """A finite float's key without going through ``decimal``: ``x = n / 2**k``
    is exactly ``n * 5**k / 10**k``, so its decimal digits are those of the
    integer ``n * 5**k`` (same bytes as the general path)."""
    if x == 0:
        return _NUM_TAG + b"\x03"
    n, d = x.as_integer_ratio()
    neg = n < 0
    if neg:
        n = -n
    k = d.bit_length() - 1                         # d is a power of two
    digits = str(n * 5 ** k) if k else str(n)
    return _digits_key(neg, digits, len(digits) - k)


def _digits_key(neg: bool, digits: str, sci: int) -> bytes:
    """The key of ``±0.digits * 10**sci`` (``digits`` without leading zeros)."""
    d = digits.rstrip("0")
    if len(d) % 2:
        d += "0"
    b = d.encode("ascii")
    n = len(b) >> 1
    # base-100 digit pairs plus one, without a Python loop: the tens and the units
    # bytes added as big integers (every byte sum is at most 100, so no carries)
    pairs = (int.from_bytes(b[0::2].translate(_TENS), "big") + int.from_bytes(b[1::2].translate(_UNITS), "big")
             ).to_bytes(n, "big")
    mag = (sci + _EXP_BIAS).to_bytes(2, "big") + pairs + b"\x00"
    if neg:
        return _NUM_TAG + b"\x02" + mag.translate(_COMPLEMENT)
    return _NUM_TAG + b"\x04" + mag


def _escape(s: str | bytes, out: bytearray) -> None:
    b = s.encode("utf-8", "surrogatepass") if isinstance(s, str) else s
    if b"\x00" in b:
        b = b.replace(b"\x00", b"\x00\xff")
    out += b
    out += _END


def _encode(v: Any, out: bytearray, with_tag: bool) -> None:
    rank = bo.canonical_rank(v)
    if with_tag:
        out.append(_TAG[rank])
    if rank == bo.NUMBER:
        _encode_number(v, out)
    elif rank == bo.STRING:
        _escape(v, out)
    elif rank == bo.OBJECT:
        items = v.as_doc().items() if isinstance(v, DBRef) else v.items()
        for k, x in items:
            out.append(_TAG[bo.canonical_rank(x)])
            _escape(k, out)
            _encode(x, out, with_tag=False)
        out += _END
    elif rank == bo.ARRAY:
        for x in v:
            _encode(x, out, with_tag=True)
        out += _END
    elif rank == bo.BINARY:
        n, subtype, data = bo._binary_parts(v)
        out += n.to_bytes(4, "big")
        out.append(subtype)
        out += data
    elif rank == bo.OBJECTID:
        out += v.binary
    elif rank == bo.BOOL:
        out.append(1 if v else 0)
    elif rank == bo.DATE:
        out += (bo.date_ms(v) + 2 ** 63).to_bytes(8, "big")
    elif rank == bo.TIMESTAMP:
        out += v.time.to_bytes(4, "big") + v.inc.to_bytes(4, "big")
    elif rank == bo.REGEX:
        pattern, flags = bo._regex_parts(v)
        _escape(pattern, out)
        _escape(flags, out)
    elif rank == bo.CODE:
        _escape(str(v), out)
    elif rank == bo.CODEWSCOPE:
        _escape(str(v), out)
        _encode(dict(v.scope or {}), out, with_tag=True)
    # MinKey, MaxKey, null: the bracket byte alone


def _encode_number(v: Any, out: bytearray) -> None:
    if bo.is_nan(v):
        out.append(0x00)
        return
    x = bo.to_number(v)
    if isinstance(x, float):
        if x == float("inf"):
            out.append(0x05)
            return
        if x == float("-inf"):
            out.append(0x01)
            return
        out += _float_key(x)[1:]
        return
    elif isinstance(x, decimal.Decimal):
        if x.is_infinite():
            out.append(0x05 if x > 0 else 0x01)
            return
        if x.is_zero():
            out.append(0x03)
            return
        d = x
    else:
        if x == 0:
            out.append(0x03)
            return
        d = decimal.Decimal(int(x))
    sign, digits, exp = d.as_tuple()
    digits = list(digits)
    while digits and digits[-1] == 0:
        digits.pop()
        exp += 1
    while digits and digits[0] == 0:                      # never for normalised Decimals
        digits.pop(0)
    sci = len(digits) + exp                               # value = 0.d1d2.. * 10**sci
    mag = bytearray((sci + _EXP_BIAS).to_bytes(2, "big"))
    if len(digits) % 2:
        digits.append(0)
    for i in range(0, len(digits), 2):
        mag.append(digits[i] * 10 + digits[i + 1] + 1)
    mag.append(0)
    if sign:
        out.append(0x02)
        out += bytes(255 - b for b in mag)
    else:
        out.append(0x04)
        out += mag


NAN_KEY = encode_key(float("nan"))


def type_bracket_bounds(rank: int) -> tuple[bytes, bytes]:
    """``(lo, hi)`` such that every key of a value of canonical rank ``rank``
    satisfies ``lo <= key < hi``."""
    tag = _TAG[rank]
    return bytes([tag]), bytes([tag + 1])


Range = tuple[bytes | None, bool, bytes | None, bool]


def key_range(op: str, value: Any) -> Range | None:
    """The keys ``k`` of the ``_id`` values matching ``{_id: {op: value}}``, as
    ``(lo, lo_inclusive, hi, hi_inclusive)`` (None bounds are open-ended), or None
    when nothing can match. Follows MongoDB's comparison rules: type bracketing,
    NaN only equal to NaN, null, MinKey/MaxKey. ``op`` is ``$eq $gt $gte $lt $lte``."""
    if op == "$eq":
        k = encode_key(value)
        return k, True, k, True
    rank = bo.canonical_rank(value)
    if rank == bo.MINKEY:
        k = encode_key(value)
        return {"$gt": (k, False, None, True), "$gte": (None, True, None, True),
                "$lt": None, "$lte": (k, True, k, True)}[op]
    if rank == bo.MAXKEY:
        k = encode_key(value)
        return {"$lt": (None, True, k, False), "$lte": (None, True, None, True),
                "$gt": None, "$gte": (k, True, k, True)}[op]
    if rank == bo.NULL:
        k = encode_key(None)
        return (k, True, k, True) if op in ("$gte", "$lte") else None
    if rank == bo.NUMBER and bo.is_nan(value):
        return (NAN_KEY, True, NAN_KEY, True) if op in ("$gte", "$lte") else None
    k = encode_key(value)
    lo_b, hi_b = type_bracket_bounds(rank)
    if rank == bo.NUMBER:
        lo_b, lo_incl = NAN_KEY, False                    # NaN matches no range
    else:
        lo_incl = True
    if op in ("$gt", "$gte"):
        return k, op == "$gte", hi_b, False
    return lo_b, lo_incl, k, op == "$lte"


def render_id(value: Any) -> str:
    """A readable rendering of an ``_id`` for the ``_id`` string column: ObjectId
    as 24 lowercase hex digits, strings as they are, anything else as relaxed
    Extended JSON (``5``, ``{"a": 1}``, ``{"$date": "..."}``)."""
    t = type(value)
    if t is int:                      # relaxed Extended JSON of an int is its decimal digits
        return str(value)
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, str):
        return value
    return json_util.dumps(value, json_options=RELAXED_JSON_OPTIONS)

