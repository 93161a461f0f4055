"""Argument parsing for filter operators (``$size``, ``$type``, ``$mod``, bit
masks, ...) with MongoDB's error codes and messages; used by :mod:`filter`."""
from __future__ import annotations

import math
from typing import Any

from bson.binary import Binary
from bson.decimal128 import Decimal128

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import NUMBER_TYPE_CODES, TYPE_ALIASES, VALID_TYPE_CODES, is_number

GEO = {"$near", "$nearSphere", "$geoWithin", "$geoIntersects", "$within", "$geoNear"}
CMP = {"$eq", "$gt", "$gte", "$lt", "$lte"}
BITS = {"$bitsAllSet", "$bitsAllClear", "$bitsAnySet", "$bitsAnyClear"}
PATHLESS = {"$and", "$or", "$nor", "$expr", "$where", "$text", "$comment", "$jsonSchema",
            "$alwaysTrue", "$alwaysFalse", "$sampleRate", "$atomic", "$isolated"}


def bad(msg: str) -> MongoError:
    return MongoError(ErrorCode.BadValue, msg)


def show(name: str, v: Any) -> str:
    """How MongoDB prints an element in messages: ``$size: "a"``."""
    if isinstance(v, str):
        return f'{name}: "{v}"'
    if isinstance(v, bool):
        return f"{name}: {'true' if v else 'false'}"
    if isinstance(v, float):
        return f"{name}: {v!r}"
    if v is None:
        return f"{name}: null"
    try:
        from bson import json_util
        return f"{name}: {json_util.dumps(v)}"
    except Exception:  # pragma: no cover - exotic values
        return f"{name}: {v!r}"


PATH_OPERATORS = CMP | BITS | GEO | {
    "$ne", "$in", "$nin", "$exists", "$size", "$type", "$mod", "$regex", "$options", "$elemMatch",
    "$all", "$not"}


def is_operator(name: Any) -> bool:
    return name in PATH_OPERATORS


def truthy(v: Any) -> bool:
    """BSONElement::trueValue (used by $exists)."""
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if is_number(v):
        if isinstance(v, Decimal128):
            d = v.to_decimal()
            return not d.is_zero() or d.is_nan()
        return v != 0 or (isinstance(v, float) and math.isnan(v))
    return True


def non_negative_int(op: str, v: Any, *, int32: bool = False) -> int:
    """MongoDB's parseIntegerElementToNonNegative{Int,Long} (FailedToParse errors)."""
    shown = show(op, v)
    if not is_number(v):
        raise MongoError(ErrorCode.FailedToParse, f"Expected a number in: {shown}")
    if isinstance(v, Decimal128):
        d = v.to_decimal()
        if d.is_nan():
            raise MongoError(ErrorCode.FailedToParse, f"Expected an integer, but found NaN in: {shown}")
        if d.is_infinite() or d != d.to_integral_value():
            raise MongoError(ErrorCode.FailedToParse, f"Expected an integer: {shown}")
        n = int(d)
    elif isinstance(v, float):
        if math.isnan(v):
            raise MongoError(ErrorCode.FailedToParse, f"Expected an integer, but found NaN in: {shown}")
        if v >= 2.0 ** 63 or v < -(2.0 ** 63):
            raise MongoError(ErrorCode.FailedToParse, f"Cannot represent as a 64-bit integer: {shown}")
        if v != math.floor(v):
            raise MongoError(ErrorCode.FailedToParse, f"Expected an integer: {shown}")
        n = int(v)
    else:
        n = int(v)
    if n < 0:
        raise MongoError(ErrorCode.FailedToParse, f"Expected a positive number in: {shown}")
    if int32 and n > 2 ** 31 - 1:
        raise MongoError(ErrorCode.FailedToParse, f"Cannot represent as a 32-bit integer: {shown}")
    return n


def parse_types(path: str, val: Any) -> frozenset:
    items = val if isinstance(val, list) else [val]
    codes: set[int] = set()
    for t in items:
        if isinstance(t, str):
            if t == "number":
                codes |= NUMBER_TYPE_CODES
            elif t in TYPE_ALIASES:
                codes.add(TYPE_ALIASES[t])
            else:
                raise bad(f"Unknown type name alias: {t}")
        elif is_number(t):
            num = float(t.to_decimal()) if isinstance(t, Decimal128) else float(t)
            if math.isnan(num) or num != math.floor(num) or int(num) not in VALID_TYPE_CODES:
                shown = int(num) if not math.isnan(num) and num == math.floor(num) else num
                raise bad(f"Invalid numerical type code: {shown}")
            codes.add(int(num))
        else:
            raise MongoError(ErrorCode.TypeMismatch, "type must be represented as a number or a string")
    if not codes:
        raise MongoError(ErrorCode.FailedToParse, f"{path} must match at least one type")
    return frozenset(codes)


def _coerce_long(v: Any, what: str) -> int:
    d = v.to_decimal() if isinstance(v, Decimal128) else v
    if isinstance(d, float) and (math.isnan(d) or math.isinf(d)) or (
            not isinstance(d, (int, float)) and (d.is_nan() or d.is_infinite())):
        raise bad(f"malformed mod, {what} value is invalid :: caused by :: "
                   "Unable to coerce NaN/Inf to integral type")
    n = int(d)
    if not -(2 ** 63) <= n < 2 ** 63:
        raise bad(f"malformed mod, {what} value is invalid :: caused by :: "
                   "Out of bounds coercing to integral value")
    return n


def parse_mod(val: Any) -> tuple[int, int]:
    if not isinstance(val, list):
        raise bad("malformed mod, needs to be an array")
    if len(val) < 1:
        raise bad("malformed mod, not enough elements")
    if not is_number(val[0]):
        raise bad("malformed mod, divisor not a number")
    if len(val) < 2:
        raise bad("malformed mod, not enough elements")
    if not is_number(val[1]):
        raise bad("malformed mod, remainder not a number")
    if len(val) > 2:
        raise bad("malformed mod, too many elements")
    divisor = _coerce_long(val[0], "divisor")
    remainder = _coerce_long(val[1], "remainder")
    if divisor == 0:
        raise bad("divisor cannot be 0")
    return divisor, remainder


def parse_bitmask(op: str, val: Any) -> tuple[int, tuple]:
    if isinstance(val, list):
        mask, high = 0, set()
        for e in val:
            try:
                pos = non_negative_int(op, e, int32=True)
            except MongoError as exc:
                raise bad(f"Failed to parse bit position. {exc.message}") from None
            if pos > 65535:
                high.add(pos)
            else:
                mask |= 1 << pos
        return mask, tuple(sorted(high))
    if is_number(val):
        return non_negative_int(op, val), ()
    if isinstance(val, (bytes, Binary)):
        return int.from_bytes(bytes(val), "little"), ()
    if type(val).__name__ == "UUID":
        return int.from_bytes(val.bytes, "little"), ()
    raise bad(f"{op} takes an Array, a number, or a BinData but received: {show(op, val)}")
