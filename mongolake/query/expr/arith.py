"""Arithmetic, math, trigonometric and bitwise expression operators."""
from __future__ import annotations

import decimal
import math
from typing import Any

from mongolake.errors import ErrorCode
from mongolake.query.bsonorder import MISSING, date_ms
from mongolake.query.expr.core import err, fixed, ranged, variadic
from mongolake.query.expr.numeric import (
    DEC_CTX, DECIMAL, DOUBLE, INT, LONG, as_int, dec, int_result, kind, number_result, to_decimal, to_float,
)
from mongolake.query.expr.values import is_date, ms_to_date, type_name


def _nullish(v: Any) -> bool:
    return v is None or v is MISSING


def _round_ms(x: Any) -> int:
    """Round a millisecond amount (any numeric) half away from zero, like llround."""
    k = kind(x)
    if k in (INT, LONG):
        return int(x)
    if k == DOUBLE:
        if not math.isfinite(x):
            raise err(ErrorCode.Overflow, "date overflow in $add")
        return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)
    d = x.to_decimal()
    return int(d.to_integral_value(rounding=decimal.ROUND_HALF_UP))


def _widest(values: list) -> int:
    return max(kind(v) for v in values)


def _sum_numbers(nums: list) -> Any:
    k = _widest(nums) if nums else INT
    if k <= LONG:
        return int_result(sum(int(v) for v in nums), k)
    if k == DOUBLE:
        total = 0.0
        for v in nums:
            total += float(v)
        return total
    total = decimal.Decimal(0)
    for v in nums:
        total = DEC_CTX.add(total, to_decimal(v))
    return dec(total)


@variadic("$add")
def op_add(values: list) -> Any:
    nums = []
    date = None
    for v in values:
        if _nullish(v):
            return None
        if is_date(v):
            if date is not None:
                raise err(16612, "only one date allowed in an $add expression")
            date = v
        elif kind(v) is None:
            raise err(ErrorCode.TypeMismatch, f"$add only supports numeric or date types, not {type_name(v)}")
        else:
            nums.append(v)
    if date is not None:
        total = date_ms(date)
        for v in nums:
            total += _round_ms(v)
        return ms_to_date(total)
    return _sum_numbers(nums)


@fixed("$subtract", 2)
def op_subtract(a: Any, b: Any) -> Any:
    if _nullish(a) or _nullish(b):
        return None
    ka, kb = kind(a), kind(b)
    if ka is not None and kb is not None:
        k = max(ka, kb)
        if k <= LONG:
            return int_result(int(a) - int(b), k)
        if k == DOUBLE:
            return float(a) - float(b)
        return dec(DEC_CTX.subtract(to_decimal(a), to_decimal(b)))
    if is_date(a):
        if is_date(b):
            from bson.int64 import Int64
            return Int64(date_ms(a) - date_ms(b))
        if kb is not None:
            return ms_to_date(date_ms(a) - _round_ms(b))
    raise err(16556, f"can't $subtract {type_name(b)} from {type_name(a)}")


@variadic("$multiply")
def op_multiply(values: list) -> Any:
    for v in values:
        if _nullish(v):
            return None
        if kind(v) is None:
            raise err(16555, f"$multiply only supports numeric types, not {type_name(v)}")
    if not values:
        return 1
    k = _widest(values)
    if k <= LONG:
        p = 1
        for v in values:
            p *= int(v)
        return int_result(p, k)
    if k == DOUBLE:
        p = 1.0
        for v in values:
            p *= float(v)
        return p
    pd = decimal.Decimal(1)
    for v in values:
        pd = DEC_CTX.multiply(pd, to_decimal(v))
    return dec(pd)


@fixed("$divide", 2)
def op_divide(a: Any, b: Any) -> Any:
    if _nullish(a) or _nullish(b):
        return None
    ka, kb = kind(a), kind(b)
    if ka is None or kb is None:
        raise err(16609, f"$divide only supports numeric types, not {type_name(a)} and {type_name(b)}")
    if max(ka, kb) == DECIMAL:
        db = to_decimal(b)
        if db.is_zero():
            raise err(ErrorCode.BadValue, "can't $divide by zero")
        return dec(DEC_CTX.divide(to_decimal(a), db))
    fb = float(b)
    if fb == 0:
        raise err(ErrorCode.BadValue, "can't $divide by zero")
    if ka <= LONG and kb <= LONG:
        return int(a) / int(b)
    return float(a) / fb


@fixed("$mod", 2)
def op_mod(a: Any, b: Any) -> Any:
    if _nullish(a) or _nullish(b):
        return None
    ka, kb = kind(a), kind(b)
    if ka is None or kb is None:
        raise err(16611, f"$mod only supports numeric types, not {type_name(a)} and {type_name(b)}")
    k = max(ka, kb)
    if k == DECIMAL:
        db = to_decimal(b)
        if db.is_zero():
            raise err(16610, "can't $mod by zero")
        return dec(DEC_CTX.remainder(to_decimal(a), db))
    if k == DOUBLE:
        if float(b) == 0:
            raise err(16610, "can't $mod by zero")
        return math.fmod(float(a), float(b))
    ia, ib = int(a), int(b)
    if ib == 0:
        raise err(16610, "can't $mod by zero")
    r = abs(ia) % abs(ib)
    return int_result(-r if ia < 0 else r, k)


def _unary_numeric(name: str, v: Any) -> int | None:
    if _nullish(v):
        return None
    k = kind(v)
    if k is None:
        raise err(28765, f"{name} only supports numeric types, not {type_name(v)}")
    return k


@fixed("$abs", 1)
def op_abs(v: Any) -> Any:
    k = _unary_numeric("$abs", v)
    if k is None:
        return None
    if k <= LONG:
        if int(v) == -(2 ** 63):
            raise err(28680, "can't take $abs of long long min")
        return int_result(abs(int(v)), k)
    if k == DOUBLE:
        return abs(v)
    return dec(abs(v.to_decimal()))


def _rounder(name: str, fn_float: Any, mode: str) -> Any:
    def op(v: Any) -> Any:
        k = _unary_numeric(name, v)
        if k is None:
            return None
        if k <= LONG:
            return v
        if k == DOUBLE:
            return float(fn_float(v)) if math.isfinite(v) else v
        d = v.to_decimal()
        return dec(d.to_integral_value(rounding=mode)) if d.is_finite() else v
    return op


fixed("$ceil", 1)(_rounder("$ceil", math.ceil, decimal.ROUND_CEILING))
fixed("$floor", 1)(_rounder("$floor", math.floor, decimal.ROUND_FLOOR))


def _round_or_trunc(name: str, code: int, mode: str, v: Any, place: Any = 0) -> Any:
    if _nullish(v) or _nullish(place):
        return None
    k = kind(v)
    if k is None:
        raise err(51081 if name == "$round" else 51081, f"{name} only supports numeric types, not {type_name(v)}")
    p = as_int(place) if kind(place) is not None else None
    if p is None or not (-20 <= p < 100):
        raise err(code, f"{name} requires \"place\" argument to be an integer between -20 and 100, but got "
                        f"{place}")
    if k <= LONG:
        if p >= 0:
            return v
        q = decimal.Decimal(int(v)).quantize(decimal.Decimal(f"1E{-p}"), rounding=mode, context=DEC_CTX)
        return int_result(int(q), k)
    if k == DOUBLE:
        if not math.isfinite(v):
            return v
        d = to_decimal(v)
        q = d.quantize(decimal.Decimal(f"1E{-p}"), rounding=mode, context=DEC_CTX)
        return v if q.is_nan() else float(q)
    d = v.to_decimal()
    if not d.is_finite():
        return v
    q = d.quantize(decimal.Decimal(f"1E{-p}"), rounding=mode, context=DEC_CTX)
    return v if q.is_nan() else dec(q)


@ranged("$round", 1, 2)
def op_round(v: Any, place: Any = 0) -> Any:
    return _round_or_trunc("$round", 51083, decimal.ROUND_HALF_EVEN, v, place)


@ranged("$trunc", 1, 2)
def op_trunc(v: Any, place: Any = 0) -> Any:
    return _round_or_trunc("$trunc", 51085, decimal.ROUND_DOWN, v, place)


def _float_fn(name: str, fn: Any, dec_fn: Any = None, check: Any = None) -> Any:
    def op(v: Any) -> Any:
        k = _unary_numeric(name, v)
        if k is None:
            return None
        if check is not None:
            check(v)
        if k == DECIMAL:
            if dec_fn is not None:
                return dec(dec_fn(v.to_decimal()))
            return dec(to_decimal(fn(to_float(v))))
        try:
            return fn(float(v))
        except OverflowError:
            return math.inf
    return op


def _check_sqrt(v: Any) -> None:
    if to_float(v) < 0:
        raise err(28714, "$sqrt's argument must be greater than or equal to 0")


def _check_positive(name: str, code: int) -> Any:
    def check(v: Any) -> None:
        f = to_float(v)
        if not (f > 0) and f == f:
            raise err(code, f"{name}'s argument must be a positive number, but is {_show(v)}")
    return check


def _show(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


fixed("$sqrt", 1)(_float_fn("$sqrt", math.sqrt, lambda d: DEC_CTX.sqrt(d), _check_sqrt))
fixed("$exp", 1)(_float_fn("$exp", math.exp, lambda d: DEC_CTX.exp(d)))
fixed("$ln", 1)(_float_fn("$ln", math.log, lambda d: DEC_CTX.ln(d), _check_positive("$ln", 28766)))
fixed("$log10", 1)(_float_fn("$log10", math.log10, lambda d: DEC_CTX.log10(d), _check_positive("$log10", 28761)))


@fixed("$log", 2)
def op_log(v: Any, base: Any) -> Any:
    if _nullish(v) or _nullish(base):
        return None
    if kind(v) is None:
        raise err(28756, f"$log's argument must be numeric, not {type_name(v)}")
    if kind(base) is None:
        raise err(28757, f"$log's base must be numeric, not {type_name(base)}")
    if max(kind(v), kind(base)) == DECIMAL:
        dv, db = to_decimal(v), to_decimal(base)
        if not dv > 0:
            raise err(28758, f"$log's argument must be a positive number, but is {v}")
        if not db > 0 or db == 1:
            raise err(28759, f"$log's base must be a positive number not equal to 1, but is {base}")
        return dec(DEC_CTX.divide(DEC_CTX.ln(dv), DEC_CTX.ln(db)))
    fv, fb = float(v), float(base)
    if not fv > 0:
        raise err(28758, f"$log's argument must be a positive number, but is {_show(v)}")
    if not fb > 0 or fb == 1:
        raise err(28759, f"$log's base must be a positive number not equal to 1, but is {_show(base)}")
    return math.log(fv) / math.log(fb)


@fixed("$pow", 2)
def op_pow(base: Any, exp: Any) -> Any:
    if _nullish(base) or _nullish(exp):
        return None
    kb, ke = kind(base), kind(exp)
    if kb is None:
        raise err(28762, f"$pow's base must be numeric, not {type_name(base)}")
    if ke is None:
        raise err(28763, f"$pow's exponent must be numeric, not {type_name(exp)}")
    if to_float(base) == 0 and to_float(exp) < 0:
        raise err(28764, "$pow cannot take a base of 0 and a negative exponent")
    k = max(kb, ke)
    if k == DECIMAL:
        return dec(DEC_CTX.power(to_decimal(base), to_decimal(exp)))
    if k == DOUBLE:
        try:
            return math.pow(float(base), float(exp))
        except OverflowError:
            return math.inf
        except ValueError:
            return math.nan
    b, e = int(base), int(exp)
    if e < 0:
        if b == 1:
            return int_result(1, k)
        if b == -1:
            return int_result(1 if e % 2 == 0 else -1, k)
        return math.pow(b, e)
    if abs(b) > 1 and e > 64:
        return math.pow(b, e)
    return int_result(b ** e, k)


# --- trigonometry ----------------------------------------------------------------


def _trig(name: str, fn: Any, lo: float | None = None, hi: float | None = None, open_lo: bool = False) -> None:
    def op(v: Any) -> Any:
        k = _unary_numeric(name, v)
        if k is None:
            return None
        f = to_float(v)
        if f == f and lo is not None and (f < lo or (open_lo and f == lo) or (hi is not None and f > hi)):
            lb = "(" if open_lo else "["
            hb = f"{hi:g}]" if hi is not None else "inf)"
            raise err(50989, f"cannot apply {name} to {_show(v)}, value must be in {lb}{lo:g},{hb}")
        if name in ("$sin", "$cos", "$tan") and math.isinf(f):
            raise err(50989, f"cannot apply {name} to {f}, value must be in (-inf,inf)")
        r = fn(f)
        return dec(to_decimal(r)) if k == DECIMAL else r
    fixed(name, 1)(op)


for _n, _f in (("$sin", math.sin), ("$cos", math.cos), ("$tan", math.tan), ("$atan", math.atan),
               ("$sinh", math.sinh), ("$cosh", math.cosh), ("$tanh", math.tanh), ("$asinh", math.asinh),
               ("$degreesToRadians", math.radians), ("$radiansToDegrees", math.degrees)):
    _trig(_n, _f)
_trig("$asin", math.asin, -1.0, 1.0)
_trig("$acos", math.acos, -1.0, 1.0)
_trig("$acosh", math.acosh, 1.0, None)
_trig("$atanh", math.atanh, -1.0, 1.0)


@fixed("$atan2", 2)
def op_atan2(y: Any, x: Any) -> Any:
    if _nullish(y) or _nullish(x):
        return None
    if kind(y) is None or kind(x) is None:
        raise err(51044, f"$atan2 only supports numeric types, not {type_name(y)} and {type_name(x)}")
    r = math.atan2(to_float(y), to_float(x))
    return dec(to_decimal(r)) if DECIMAL in (kind(y), kind(x)) else r


# --- bitwise ---------------------------------------------------------------------


def _bitwise(name: str, fn: Any) -> None:
    def op(values: list) -> Any:
        k = INT
        acc = None
        for v in values:
            if _nullish(v):
                return None
            kv = kind(v)
            if kv not in (INT, LONG):
                raise err(ErrorCode.TypeMismatch, f"{name} only supports int and long operands.")
            k = max(k, kv)
            acc = int(v) if acc is None else fn(acc, int(v))
        if acc is None:
            acc = fn.identity
        return int_result(_wrap64(acc) if k == LONG else _wrap32(acc), k)
    variadic(name)(op)


def _wrap32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _wrap64(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


class _BitFn:
    def __init__(self, fn: Any, identity: int):
        self.fn, self.identity = fn, identity

    def __call__(self, a: int, b: int) -> int:
        return self.fn(a, b)


_bitwise("$bitAnd", _BitFn(lambda a, b: a & b, -1))
_bitwise("$bitOr", _BitFn(lambda a, b: a | b, 0))
_bitwise("$bitXor", _BitFn(lambda a, b: a ^ b, 0))


@fixed("$bitNot", 1)
def op_bitnot(v: Any) -> Any:
    if _nullish(v):
        return None
    k = kind(v)
    if k not in (INT, LONG):
        raise err(ErrorCode.TypeMismatch, f"$bitNot only supports int and long, not: {type_name(v)}.")
    return int_result(~int(v), k)


__all__ = ["op_add", "op_subtract", "op_multiply", "op_divide", "op_mod", "number_result"]
