"""Type expression operators: ``$type``, ``$convert``, ``$toX``, ``$isNumber``, ``$bsonSize``."""
from __future__ import annotations

import decimal
import math
import re
from typing import Any, Callable

import bson
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from mongolake.errors import MongoError
from mongolake.query.bsonorder import MISSING, date_ms
from mongolake.query.expr.core import UNSUPPORTED_OPERATORS, Node, ParseState, compile_node, err, fixed, fold, register
from mongolake.query.expr.numeric import DECIMAL, DOUBLE, INT, LONG, as_int, dec, kind, to_decimal
from mongolake.query.expr.strings import format_date, format_double
from mongolake.query.expr.values import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN, is_date, ms_to_date, type_name

ConversionFailure = 241

_TYPE_CODES = {1: "double", 2: "string", 7: "objectId", 8: "bool", 9: "date", 16: "int", 18: "long",
               19: "decimal"}
_SUPPORTED_TARGETS = set(_TYPE_CODES.values())
_ALL_TYPE_NAMES = {"double", "string", "object", "array", "binData", "undefined", "objectId", "bool", "date",
                   "null", "regex", "dbPointer", "javascript", "symbol", "javascriptWithScope", "int",
                   "timestamp", "long", "decimal", "minKey", "maxKey"}


fixed("$type", 1)(type_name)
fixed("$isNumber", 1)(lambda v: kind(v) is not None)


@fixed("$bsonSize", 1)
def op_bson_size(v: Any) -> Any:
    if v is None or v is MISSING:
        return None
    if type(v) is not dict:
        raise err(31393, f"$bsonSize requires a document input, found: {type_name(v)}")
    return len(bson.encode(v))


@fixed("$binarySize", 1)
def op_binary_size(v: Any) -> Any:
    if v is None or v is MISSING:
        return None
    if isinstance(v, str):
        return len(v.encode("utf-8"))
    if isinstance(v, (bytes, bytearray)):
        return len(v)
    raise err(51276, f"$binarySize requires a string or BinData argument, found: {type_name(v)}")


class _Fail(Exception):
    """A conversion failure; the message is completed by the caller."""


def _unsupported(v: Any, to: str) -> _Fail:
    return _Fail(f"Unsupported conversion from {type_name(v)} to {to} in $convert with no onError value")


_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_FLOAT_RE = re.compile(r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")


def _parse_int_string(v: str, lo: int, hi: int) -> int:
    if not _INT_RE.match(v):
        bad = next((c for c in v.lstrip("+-") if not c.isdigit()), v[:1])
        raise _Fail(f"Failed to parse number '{v}' in $convert with no onError value: Bad digit \"{bad}\" "
                    f"while parsing {v}" if v else
                    f"Failed to parse number '' in $convert with no onError value: No digits")
    i = int(v)
    if not (lo <= i <= hi):
        raise _Fail(f"Failed to parse number '{v}' in $convert with no onError value: Overflow")
    return i


def _to_integral(v: Any, lo: int, hi: int, to: str) -> int:
    k = kind(v)
    if v is True or v is False:
        return int(v)
    if k in (INT, LONG):
        i = int(v)
    elif k == DOUBLE or k == DECIMAL:
        f = v.to_decimal() if k == DECIMAL else v
        if (k == DOUBLE and math.isnan(f)) or (k == DECIMAL and f.is_nan()):
            raise _Fail("Attempt to convert NaN value to integer type in $convert with no onError value")
        if (k == DOUBLE and math.isinf(f)) or (k == DECIMAL and f.is_infinite()):
            raise _Fail("Attempt to convert infinity value to integer type in $convert with no onError value")
        i = int(f)
        if not (lo <= i <= hi):
            raise _Fail(f"Conversion would overflow target type in $convert with no onError value: {v}")
    elif isinstance(v, str):
        return _parse_int_string(v, lo, hi)
    elif to == "long" and is_date(v):
        return date_ms(v)
    else:
        raise _unsupported(v, to)
    if not (lo <= i <= hi):
        raise _Fail(f"Conversion would overflow target type in $convert with no onError value: {v}")
    return i


def _to_double(v: Any) -> float:
    k = kind(v)
    if v is True or v is False:
        return float(v)
    if k in (INT, LONG, DOUBLE):
        return float(v)
    if k == DECIMAL:
        d = v.to_decimal()
        f = float(d)
        if d.is_finite() and math.isinf(f):
            raise _Fail(f"Conversion would overflow target type in $convert with no onError value: {v}")
        return f
    if isinstance(v, str):
        low = v.lower()
        specials = {"nan": math.nan, "-nan": math.nan, "inf": math.inf, "infinity": math.inf, "+inf": math.inf,
                    "-inf": -math.inf, "-infinity": -math.inf, "+infinity": math.inf}
        if low in specials:
            return specials[low]
        if not _FLOAT_RE.match(v):
            raise _Fail(f"Failed to parse number '{v}' in $convert with no onError value: Did not consume "
                        "whole string.")
        f = float(v)
        if math.isinf(f):
            raise _Fail(f"Failed to parse number '{v}' in $convert with no onError value: Out of range")
        return f
    if is_date(v):
        return float(date_ms(v))
    raise _unsupported(v, "double")


def _to_decimal(v: Any) -> Decimal128:
    k = kind(v)
    if v is True or v is False:
        return Decimal128(str(int(v)))
    if k in (INT, LONG):
        return Decimal128(str(int(v)))
    if k == DOUBLE:
        return dec(to_decimal(v))
    if k == DECIMAL:
        return v
    if isinstance(v, str):
        try:
            d = decimal.Decimal(v.strip() if v.strip() == v else "x")
        except decimal.InvalidOperation:
            raise _Fail(f"Failed to parse number '{v}' in $convert with no onError value: Failed to parse "
                        "string to decimal") from None
        return dec(d)
    if is_date(v):
        return Decimal128(str(date_ms(v)))
    raise _unsupported(v, "decimal")


def _to_bool(v: Any) -> bool:
    if v is True or v is False:
        return v
    k = kind(v)
    if k in (INT, LONG, DOUBLE):
        return v != 0
    if k == DECIMAL:
        return not v.to_decimal().is_zero()
    return True


def _to_string(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is True or v is False:
        return "true" if v else "false"
    k = kind(v)
    if k in (INT, LONG):
        return str(int(v))
    if k == DOUBLE:
        return format_double(v)
    if k == DECIMAL:
        return str(v)
    if isinstance(v, ObjectId):
        return str(v)
    if is_date(v):
        return format_date(v)
    raise _unsupported(v, "string")


def _to_object_id(v: Any) -> ObjectId:
    if isinstance(v, ObjectId):
        return v
    if isinstance(v, str):
        if len(v) != 24:
            raise _Fail(f"Failed to parse objectId '{v}' in $convert with no onError value: Invalid string "
                        f"length for parsing to OID, expected 24 but found {len(v)}")
        try:
            return ObjectId(v)
        except Exception:
            raise _Fail(f"Failed to parse objectId '{v}' in $convert with no onError value: Invalid character "
                        "found in hex string") from None
    raise _unsupported(v, "objectId")


def _to_date(v: Any) -> Any:
    if is_date(v):
        return v
    k = kind(v)
    if k == LONG:
        return ms_to_date(int(v))
    if k == DOUBLE:
        if not math.isfinite(v):
            raise _Fail(f"Conversion would overflow target type in $convert with no onError value: {v}")
        return ms_to_date(int(v))
    if k == DECIMAL:
        d = v.to_decimal()
        if not d.is_finite():
            raise _Fail(f"Conversion would overflow target type in $convert with no onError value: {v}")
        return ms_to_date(int(d))
    if isinstance(v, str):
        from mongolake.query.expr.datefmt import parse_date_string
        try:
            return parse_date_string(v, None, "UTC")
        except MongoError as e:
            raise _Fail(f"Error parsing date string '{v}'; {e.message}") from None
    if isinstance(v, ObjectId):
        return v.generation_time
    if isinstance(v, Timestamp):
        return ms_to_date(v.time * 1000)
    raise _unsupported(v, "date")


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "double": _to_double,
    "string": _to_string,
    "objectId": _to_object_id,
    "bool": _to_bool,
    "date": _to_date,
    "int": lambda v: _to_integral(v, INT32_MIN, INT32_MAX, "int"),
    "long": lambda v: Int64(_to_integral(v, INT64_MIN, INT64_MAX, "long")),
    "decimal": _to_decimal,
}


def _target_name(to: Any) -> str | None:
    if to is None or to is MISSING:
        return None
    if isinstance(to, str):
        if to in _SUPPORTED_TARGETS:
            return to
        if to in _ALL_TYPE_NAMES:
            raise err(ConversionFailure, f"Unsupported conversion to {to} in $convert")
        raise err(2, f"Unknown type name: {to}")
    if kind(to) is not None:
        code = as_int(to)
        if code in _TYPE_CODES:
            return _TYPE_CODES[code]
        raise err(2, f"In $convert, numeric value for 'to' does not correspond to a BSON type: {to}")
    raise err(2, f"$convert's 'to' argument must be a string or number, but is {type_name(to)}")


def convert_value(v: Any, to: str) -> Any:
    """Convert a non-null value to the named type; raises MongoError(241) on failure."""
    try:
        return _CONVERTERS[to](v)
    except _Fail as f:
        raise err(ConversionFailure, str(f)) from None


@register("$convert")
def _parse_convert(args: Any, ps: ParseState, name: str) -> Node:
    if not isinstance(args, dict):
        raise err(2, "$convert expects an object of named arguments but found: " + type_name(args))
    for k in args:
        if k not in ("input", "to", "onError", "onNull", "format", "base", "byteOrder"):
            raise err(2, f"$convert found an unknown argument: {k}")
    if "input" not in args:
        raise err(2, "Missing 'input' parameter to $convert")
    if "to" not in args:
        raise err(2, "Missing 'to' parameter to $convert")
    inp = compile_node(args["input"], ps)
    to = compile_node(args["to"], ps)
    on_error = compile_node(args["onError"], ps) if "onError" in args else None
    on_null = compile_node(args["onNull"], ps) if "onNull" in args else None

    def node(s: dict) -> Any:
        v = inp(s)
        target = _target_name(to(s))
        if v is None or v is MISSING:
            return on_null(s) if on_null is not None else None
        if target is None:
            return None
        try:
            return _CONVERTERS[target](v)
        except _Fail as f:
            if on_error is not None:
                return on_error(s)
            raise err(ConversionFailure, str(f)) from None

    nodes = [inp, to] + [n for n in (on_error, on_null) if n is not None]
    return fold(node, nodes)


def _to_op(name: str, target: str) -> None:
    def op(v: Any) -> Any:
        if v is None or v is MISSING:
            return None
        return convert_value(v, target)
    fixed(name, 1)(op)


for _n, _t in (("$toDouble", "double"), ("$toString", "string"), ("$toObjectId", "objectId"),
               ("$toBool", "bool"), ("$toDate", "date"), ("$toInt", "int"), ("$toLong", "long"),
               ("$toDecimal", "decimal")):
    _to_op(_n, _t)

__all__ = ["convert_value", "ConversionFailure"]


@fixed("$toUUID", 1)
def op_to_uuid(v: Any) -> Any:
    """A UUID string to BinData subtype 4."""
    import uuid as _uuid

    from bson.binary import Binary

    if v is None or v is MISSING:
        return None
    if isinstance(v, Binary) and v.subtype == 4:
        return v
    if not isinstance(v, str):
        raise err(ConversionFailure, f"Unsupported conversion from {type_name(v)} to UUID in $convert with no "
                                     "onError value")
    try:
        return Binary(_uuid.UUID(v).bytes, 4)
    except ValueError:
        raise err(ConversionFailure, f"Failed to parse UUID '{v}' in $convert with no onError value") from None


def _unsupported_operator(name: str) -> None:
    def parser(args: Any, ps: ParseState, opname: str) -> Node:
        raise err(238, f"{opname} is not supported by MongoLake")
    register(name)(parser)
    UNSUPPORTED_OPERATORS.add(name)


for _n in ("$function", "$toHashedIndexKey", "$accumulator"):
    _unsupported_operator(_n)
