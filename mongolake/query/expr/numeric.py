"""Numeric type model of the aggregation language.

MongoDB has four numeric types, widening in this order: int (int32) < long
(int64) < double < decimal (Decimal128).  Here they are Python ``int`` (an int
in int32 range is an "int"; :class:`bson.int64.Int64` or a larger int is a
"long"), ``float`` and :class:`bson.decimal128.Decimal128`.  Integer results
that leave int32 become long, results that leave int64 become double — as in
MongoDB.  Decimal arithmetic uses :class:`decimal.Decimal` with the 34-digit
Decimal128 context.
"""
from __future__ import annotations

import decimal
import math
from typing import Any

from bson.decimal128 import Decimal128, create_decimal128_context
from bson.int64 import Int64

from mongolake.query.expr.values import INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN

INT, LONG, DOUBLE, DECIMAL = 0, 1, 2, 3
KIND_NAMES = {INT: "int", LONG: "long", DOUBLE: "double", DECIMAL: "decimal"}

DEC_CTX = create_decimal128_context()
DEC_CTX.traps[decimal.InvalidOperation] = False
DEC_CTX.traps[decimal.DivisionByZero] = False
DEC_CTX.traps[decimal.Overflow] = False


def kind(v: Any) -> int | None:
    """The numeric kind of ``v`` or ``None`` when it is not a number (bools are not)."""
    t = type(v)
    if t is int:
        return INT if INT32_MIN <= v <= INT32_MAX else LONG
    if t is float:
        return DOUBLE
    if t is Int64:
        return LONG
    if t is Decimal128:
        return DECIMAL
    if t is bool:
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        return LONG
    if isinstance(v, float):
        return DOUBLE
    if isinstance(v, Decimal128):
        return DECIMAL
    return None


def is_num(v: Any) -> bool:
    return kind(v) is not None


def to_decimal(v: Any) -> decimal.Decimal:
    """A number as :class:`decimal.Decimal` (doubles rounded to 15 digits, as MongoDB does)."""
    if isinstance(v, Decimal128):
        return v.to_decimal()
    if isinstance(v, float):
        if not math.isfinite(v):
            return decimal.Decimal(v) if v != v else decimal.Decimal("Infinity" if v > 0 else "-Infinity")
        if v == 0:
            return decimal.Decimal("0") if math.copysign(1, v) > 0 else decimal.Decimal("-0")
        return DEC_CTX.create_decimal(format(v, ".14e"))
    return decimal.Decimal(int(v))


def dec(d: decimal.Decimal) -> Decimal128:
    """Round a Decimal to the Decimal128 context and wrap it."""
    return Decimal128(DEC_CTX.create_decimal(d))


def to_float(v: Any) -> float:
    if isinstance(v, Decimal128):
        return float(v.to_decimal())
    return float(v)


def int_result(v: int, k: int) -> Any:
    """An integer result of kind ``k`` (INT or LONG): widen on overflow like MongoDB."""
    if k == INT and INT32_MIN <= v <= INT32_MAX:
        return int(v)
    if INT64_MIN <= v <= INT64_MAX:
        return Int64(v)
    return float(v)


def plain_number(v: Any) -> int | float | decimal.Decimal:
    """A number as int, float or Decimal."""
    if isinstance(v, Decimal128):
        return v.to_decimal()
    if type(v) is Int64:
        return int(v)
    return v


def is_integral(v: Any) -> bool:
    """Whether a numeric value has no fractional part (and is finite)."""
    k = kind(v)
    if k in (INT, LONG):
        return True
    if k == DOUBLE:
        return math.isfinite(v) and v.is_integer()
    if k == DECIMAL:
        d = v.to_decimal()
        return d.is_finite() and d == d.to_integral_value()
    return False


def as_int(v: Any) -> int | None:
    """The integer value of a number when it is integral (any numeric type), else None."""
    if not is_integral(v):
        return None
    if isinstance(v, Decimal128):
        return int(v.to_decimal())
    return int(v)


def as_int32(v: Any) -> int | None:
    i = as_int(v)
    if i is None or not (INT32_MIN <= i <= INT32_MAX):
        return None
    return i


def as_int64(v: Any) -> int | None:
    i = as_int(v)
    if i is None or not (INT64_MIN <= i <= INT64_MAX):
        return None
    return i


def number_result(value: Any, k: int) -> Any:
    """Wrap a computed Python number (int, float or Decimal) as kind ``k``."""
    if k == DECIMAL:
        return dec(value if isinstance(value, decimal.Decimal) else to_decimal(value))
    if k == DOUBLE:
        return float(value)
    return int_result(int(value), k)


class Summer:
    """Exact-ish summation following MongoDB's $sum widening rules.

    Integers are summed exactly, doubles with Neumaier compensation and decimals
    in the Decimal128 context; the result type is the widest input kind, with
    int -> long -> double widening on overflow.
    """

    __slots__ = ("k", "ints", "fsum", "comp", "dsum", "count", "nan", "inf")

    def __init__(self) -> None:
        self.k = INT
        self.ints = 0
        self.fsum = 0.0
        self.comp = 0.0
        self.dsum: decimal.Decimal | None = None
        self.count = 0

    def add(self, v: Any) -> bool:
        """Add a value; non-numbers are ignored (returns False)."""
        k = kind(v)
        if k is None:
            return False
        self.count += 1
        if k > self.k:
            self.k = k
        if k <= LONG:
            self.ints += int(v)
        elif k == DOUBLE:
            self._addf(v)
        else:
            d = v.to_decimal()
            self.dsum = d if self.dsum is None else DEC_CTX.add(self.dsum, d)
        return True

    def _addf(self, x: float) -> None:
        s = self.fsum
        t = s + x
        if math.isfinite(t) and math.isfinite(s) and math.isfinite(x):
            if abs(s) >= abs(x):
                self.comp += (s - t) + x
            else:
                self.comp += (x - t) + s
        self.fsum = t

    def float_total(self) -> float:
        total = self.fsum + self.comp
        if not math.isfinite(self.fsum):
            total = self.fsum
        return total + self.ints if self.ints else total

    def result(self) -> Any:
        if self.k == DECIMAL:
            total = decimal.Decimal(self.ints)
            if self.fsum or self.comp or not math.isfinite(self.fsum):
                total = DEC_CTX.add(total, to_decimal(self.fsum + self.comp if math.isfinite(self.fsum)
                                                      else self.fsum))
            if self.dsum is not None:
                total = DEC_CTX.add(total, self.dsum)
            return dec(total)
        if self.k == DOUBLE:
            return self.float_total()
        return int_result(self.ints, self.k)

    def mean(self) -> Any:
        """The average of the numbers added (double, or decimal if any was decimal); None if none."""
        if not self.count:
            return None
        if self.k == DECIMAL:
            total = self.result().to_decimal()
            return dec(DEC_CTX.divide(total, decimal.Decimal(self.count)))
        if self.k == DOUBLE:
            return self.float_total() / self.count
        return self.ints / self.count


def std_dev(values: list, sample: bool) -> Any:
    """Population or sample standard deviation of numeric values (None when undefined)."""
    n = len(values)
    if n == 0 or (sample and n < 2):
        return None
    floats = [to_float(v) for v in values]
    mean = math.fsum(floats) / n
    var = math.fsum((x - mean) ** 2 for x in floats) / (n - 1 if sample else n)
    return math.sqrt(var)
