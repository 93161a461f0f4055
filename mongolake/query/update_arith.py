"""Numeric semantics of ``$inc``, ``$mul`` and ``$bit`` (MongoDB's ``SafeNum``).

Python representation of BSON numbers: ``int`` inside the int32 range is an
int32, :class:`bson.int64.Int64` (or a plain ``int`` outside the int32 range) is an
int64, ``float`` is a double and :class:`bson.decimal128.Decimal128` a decimal.

Type promotion follows mongod:

* int32 op int32 -> int32, widened to int64 when the result does not fit;
* int64 involved -> int64; an int64 overflow makes the result *invalid*
  (mongod fails the update with BadValue, it does not fall back to double);
* a double involved -> double;
* a decimal involved -> decimal (doubles converted with 15 significant digits,
  arithmetic in the IEEE decimal128 context).
"""
from __future__ import annotations

import decimal
import math
from typing import Any

from bson.decimal128 import Decimal128, create_decimal128_context
from bson.int64 import Int64

from mongolake.query.docpath import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN

INT32, INT64, DOUBLE, DECIMAL = 1, 2, 3, 4

_DEC_CTX = create_decimal128_context()


class _Invalid:
    """Result of an operation that overflowed (SafeNum's EOO)."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


def num_kind(v: Any) -> int | None:
    """INT32/INT64/DOUBLE/DECIMAL for a BSON number, None otherwise (bool is not a number)."""
    t = type(v)
    if t is int:
        if INT32_MIN <= v <= INT32_MAX:
            return INT32
        if INT64_MIN <= v <= INT64_MAX:
            return INT64
        return None
    if t is float:
        return DOUBLE
    if t is Int64:
        return INT64
    if t is Decimal128:
        return DECIMAL
    if t is bool:
        return None
    if isinstance(v, Int64):
        return INT64
    if isinstance(v, int) and not isinstance(v, bool):
        return num_kind(int(v))
    if isinstance(v, float):
        return DOUBLE
    return None


def is_integral_kind(v: Any) -> bool:
    return num_kind(v) in (INT32, INT64)


def _to_decimal(v: Any) -> decimal.Decimal:
    k = num_kind(v)
    if k == DECIMAL:
        return v.to_decimal()
    if k == DOUBLE:
        if math.isnan(v):
            return decimal.Decimal("NaN")
        if math.isinf(v):
            return decimal.Decimal("Infinity") if v > 0 else decimal.Decimal("-Infinity")
        # mongod converts doubles to decimal rounding to 15 significant digits
        return decimal.Decimal(format(v, ".14e"))
    return decimal.Decimal(int(v))


def _make_int(kind: int, value: int) -> Any:
    if kind == INT32:
        if INT32_MIN <= value <= INT32_MAX:
            return int(value)
        return Int64(value)
    if INT64_MIN <= value <= INT64_MAX:
        return Int64(value)
    return INVALID


def _binary(a: Any, b: Any, op: str) -> Any:
    ka, kb = num_kind(a), num_kind(b)
    kind = max(ka, kb)
    if kind == DECIMAL:
        da, db = _to_decimal(a), _to_decimal(b)
        r = _DEC_CTX.add(da, db) if op == "+" else _DEC_CTX.multiply(da, db)
        return Decimal128(r)
    if kind == DOUBLE:
        fa, fb = float(a), float(b)
        return fa + fb if op == "+" else fa * fb
    ia, ib = int(a), int(b)
    r = ia + ib if op == "+" else ia * ib
    return _make_int(kind, r)


def add(a: Any, b: Any) -> Any:
    """``a + b`` with mongod's promotion rules; INVALID on int64 overflow."""
    return _binary(a, b, "+")


def mul(a: Any, b: Any) -> Any:
    """``a * b`` with mongod's promotion rules; INVALID on int64 overflow."""
    return _binary(a, b, "*")


def bitop(a: Any, b: Any, op: str) -> Any:
    """``and``/``or``/``xor`` of two integers (int32 op int32 stays int32)."""
    kind = max(num_kind(a), num_kind(b))
    ia, ib = int(a), int(b)
    if op == "and":
        r = ia & ib
    elif op == "or":
        r = ia | ib
    else:
        r = ia ^ ib
    return _make_int(kind, r)


def zero_like(v: Any) -> Any:
    """``v * 0`` keeping ``v``'s type (what ``$mul`` creates for a missing field)."""
    return mul(v, 0)


def debug_string(v: Any) -> str:
    """SafeNum's ``debugString``: ``(NumberLong)9223372036854775807``."""
    k = num_kind(v)
    if k == INT32:
        return f"(NumberInt){int(v)}"
    if k == INT64:
        return f"(NumberLong){int(v)}"
    if k == DOUBLE:
        return f"(NumberDouble){v!r}"
    return f"(NumberDecimal){v}"
