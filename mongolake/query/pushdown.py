"""Arrow pushdown: the expression tree as a ``pyarrow.compute`` filter.

:func:`pushdown` returns ``(expression, exact)`` for one data file:

* ``expression`` is a boolean ``pc.Expression`` over the shredded columns and
  ``_key`` (or None: no restriction). Rows where it is true are kept; it never
  drops a row the matcher would accept.
* ``exact`` is True when the kept rows are exactly the matching ones, so the
  residual matcher on ``_doc`` can be skipped.

Translation relies on the column contract of :mod:`columns`: in a column that
is exact in the file, null means "missing or null" and any other value is the
document's own scalar. A leaf on an inexact column becomes ``pred OR is_null``
(unfit values and arrays were written as null). Negations are only pushed when
their operand is exact. Care points: Arrow comparisons return null on null
(such rows are dropped, which is right for positive predicates), type
bracketing (a string bound never matches an int column), NaN (never stored in
shredded columns), int columns against fractional/huge bounds and double
columns against integers or decimals that no double represents (bounds are
moved to the nearest representable value, never compared after a lossy cast),
dates (``timestamp[ms, UTC]``) and ObjectIds (24-hex strings).
Collation is not considered: push down only under the simple collation.
"""
from __future__ import annotations

import decimal
import math
from typing import Any, Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc
from bson.max_key import MaxKey
from bson.min_key import MinKey

from mongolake.query import bsonorder as bo
from mongolake.query.columns import KEY_COLUMN, ColumnSpec
from mongolake.query.filter import (
    AlwaysFalse, AlwaysTrue, And, Bits, Compare, ElemMatchObject, ElemMatchValue, Exists, In, Mod,
    Node, Nor, Not, Or, RegexMatch, Size, TypeIs,
)
from mongolake.query.keystring import encode_key, key_range, type_bracket_bounds
from mongolake.query.regex import literal_prefix

__all__ = ["pushdown"]

_KIND_RANK = {"int": bo.NUMBER, "double": bo.NUMBER, "string": bo.STRING, "bool": bo.BOOL,
              "date": bo.DATE, "objectId": bo.OBJECTID}
_KIND_TYPES = {"int": frozenset({16, 18}), "double": frozenset({1, 16, 18}), "string": frozenset({2}),
               "bool": frozenset({8}), "date": frozenset({9}), "objectId": frozenset({7})}
_I64_MIN, _I64_MAX = -(2 ** 63), 2 ** 63 - 1
_ISIN_MIN = 16          # $in lists longer than this use is_in, shorter ones OR-ed equalities


class _False:
    """Marker for the constant-false filter (folded through And/Or/Not)."""


FALSE: Any = _False()
Result = tuple[Any, bool]          # (expression | None (all rows) | FALSE, exact)


def pushdown(node: Node, specs: Mapping[str, ColumnSpec], exact_columns: Iterable[str]
             ) -> tuple[pc.Expression | None, bool]:
    """Translate a filter for a file whose shredded columns are ``specs`` (only
    columns present in that file!) and whose exact columns are ``exact_columns``
    (``DataFile.null_count`` keys; ``"_key"`` is always usable)."""
    expr, exact = _Builder(specs, set(exact_columns)).build(node)
    if expr is FALSE:
        return pc.scalar(False), exact
    return expr, exact


def _and(a: Any, b: Any) -> Any:
    if a is FALSE or b is FALSE:
        return FALSE
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _or(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if a is FALSE:
        return b
    if b is FALSE:
        return a
    return a | b


def _not(a: Any) -> Any:
    if a is None:
        return FALSE
    if a is FALSE:
        return None
    return ~pc.coalesce(a, pc.scalar(False))


class _Builder:
    def __init__(self, specs: Mapping[str, ColumnSpec], exact: set[str]):
        self.specs, self.exact = specs, exact

    def build(self, node: Node) -> Result:
        if isinstance(node, And):
            expr, exact = None, True
            for c in node.children:
                e, x = self.build(c)
                expr, exact = _and(expr, e), exact and x
            return expr, exact
        if isinstance(node, Or):
            expr, exact = FALSE, True
            for c in node.children:
                e, x = self.build(c)
                expr, exact = _or(expr, e), exact and x
            return expr, exact
        if isinstance(node, Nor):
            return self.build(Not(Or(node.children)))
        if isinstance(node, Not):
            return self.negate(node.child)
        if isinstance(node, AlwaysTrue):
            return None, True
        if isinstance(node, AlwaysFalse):
            return FALSE, True
        path = getattr(node, "path", None)
        if path is None:
            return None, False                             # $expr, $jsonSchema: residual
        if path == "_id":
            return self.id_leaf(node)
        spec = self.specs.get(path)
        if spec is None:
            return None, False
        col = pc.field(*spec.parts)
        expr, exact = self.leaf(node, spec.kind, col)
        if spec.path in self.exact:
            return expr, exact
        return _or(expr, col.is_null()), False

    def negate(self, child: Node) -> Result:
        if isinstance(child, Exists) and child.path != "_id":
            spec = self.specs.get(child.path)
            if spec is None:
                return None, False
            return pc.field(*spec.parts).is_null(), False  # null may be an explicit null
        expr, exact = self.build(child)
        if not exact:
            return None, False
        return _not(expr), True

    # -- shredded columns ------------------------------------------------------------
    def leaf(self, node: Node, kind: str, col: pc.Expression) -> Result:
        if isinstance(node, Compare):
            return self.compare(node.op, node.value, kind, col), True
        if isinstance(node, In):
            return self.in_(node, kind, col)
        if isinstance(node, RegexMatch):
            if kind != "string":
                return FALSE, True
            return self.regex(node.pattern, node.options, col)
        if isinstance(node, Exists):
            return None, False
        if isinstance(node, TypeIs):
            kt = _KIND_TYPES[kind]
            expr: Any = FALSE
            if node.codes & kt:
                expr = col.is_valid()
            if 10 in node.codes:
                expr = _or(expr, col.is_null())
            return expr, 10 not in node.codes and (not (node.codes & kt) or kt <= node.codes)
        if isinstance(node, (Size, ElemMatchObject, ElemMatchValue)):
            return FALSE, True
        if isinstance(node, Mod):
            if kind == "int":
                rem = pc.remainder(col, pa.scalar(node.divisor, pa.int64()))
                return rem == pa.scalar(node.remainder, pa.int64()), True
            return (col.is_valid(), False) if kind == "double" else (FALSE, True)
        if isinstance(node, Bits):
            return self.bits(node, kind, col)
        return None, False

    def compare(self, op: str, v: Any, kind: str, col: pc.Expression) -> Any:
        if v is None:
            return col.is_null() if op in ("$eq", "$gte", "$lte") else FALSE
        if isinstance(v, MinKey):
            return None if op in ("$gt", "$gte") else FALSE
        if isinstance(v, MaxKey):
            return None if op in ("$lt", "$lte") else FALSE
        if bo.canonical_rank(v) != _KIND_RANK[kind] or (bo.is_number(v) and bo.is_nan(v)):
            return FALSE
        if kind == "int":
            return _int_compare(op, v, col)
        if kind == "double":
            return _double_compare(op, v, col)
        if kind == "date":
            s = pa.scalar(bo.date_ms(v), pa.timestamp("ms", tz="UTC"))
        elif kind == "objectId":
            s = pa.scalar(str(v), pa.string())
        elif kind == "bool":
            s = pa.scalar(bool(v), pa.bool_())
        else:
            s = pa.scalar(v, pa.string())
        return _OPS[op](col, s)

    def in_(self, node: In, kind: str, col: pc.Expression) -> Result:
        expr: Any = FALSE
        exact = True
        scalars = []
        for v in node.values:
            if v is None:
                expr = _or(expr, col.is_null())
                continue
            e = self.compare("$eq", v, kind, col)
            if e is FALSE:
                continue
            if isinstance(e, pc.Expression) and _is_simple_eq(v, kind):
                scalars.append(_eq_scalar(v, kind))
            else:
                expr = _or(expr, e)
        if len(scalars) > _ISIN_MIN:
            expr = _or(expr, col.isin(pa.array(scalars, type=_ARROW[kind])))
        else:                                       # a few equalities beat is_in's hashing
            for x in scalars:
                expr = _or(expr, col == pa.scalar(x, type=_ARROW[kind]))
        if node.regexes and kind == "string":
            for pattern, options in node.regex_sources:
                e, x = self.regex(pattern, options, col)
                expr, exact = _or(expr, e), exact and x
        return expr, exact

    def regex(self, pattern: str, options: str, col: pc.Expression) -> Result:
        pre = literal_prefix(pattern, options)
        if pre is None:
            return col.is_valid(), False
        prefix, whole = pre
        return pc.starts_with(col, pattern=prefix), whole

    def bits(self, node: Bits, kind: str, col: pc.Expression) -> Result:
        if kind not in ("int", "double"):
            return FALSE, True
        if kind == "double" or node.high_positions or node.mask > _I64_MAX:
            return col.is_valid(), False
        m = pa.scalar(node.mask, pa.int64())
        anded = pc.bit_wise_and(col, m)
        zero = pa.scalar(0, pa.int64())
        return {"$bitsAllSet": anded == m, "$bitsAllClear": anded == zero,
                "$bitsAnySet": anded != zero, "$bitsAnyClear": anded != m}[node.op], True

    # -- _id through _key ---------------------------------------------------------------
    def id_leaf(self, node: Node) -> Result:
        key = pc.field(KEY_COLUMN)
        if isinstance(node, Exists):
            return None, True
        if isinstance(node, Compare):
            return _key_range_expr(key, key_range(node.op, node.value)), True
        if isinstance(node, In):
            expr: Any = FALSE
            if node.values:
                expr = key.isin(pa.array([encode_key(v) for v in node.values], pa.binary()))
            if node.regexes:
                for rank in (bo.STRING, bo.REGEX):
                    lo, hi = type_bracket_bounds(rank)
                    expr = _or(expr, _key_range_expr(key, (lo, True, hi, False)))
                return expr, False
            return expr, True
        if isinstance(node, RegexMatch):
            expr = FALSE
            for rank in (bo.STRING, bo.REGEX):
                lo, hi = type_bracket_bounds(rank)
                expr = _or(expr, _key_range_expr(key, (lo, True, hi, False)))
            return expr, False
        return None, False


_ARROW = {"int": pa.int64(), "double": pa.float64(), "string": pa.string(), "bool": pa.bool_(),
          "date": pa.timestamp("ms", tz="UTC"), "objectId": pa.string()}
_OPS = {
    "$eq": lambda c, s: c == s, "$gt": lambda c, s: c > s, "$gte": lambda c, s: c >= s,
    "$lt": lambda c, s: c < s, "$lte": lambda c, s: c <= s,
}


def _is_simple_eq(v: Any, kind: str) -> bool:
    if kind == "int":
        return _exact_int(v) is not None
    if kind == "double":
        return type(v) is float and v != 0              # is_in hashes bits: -0.0 would miss 0.0
    return True


def _eq_scalar(v: Any, kind: str) -> Any:
    if kind == "int":
        return _exact_int(v)
    if kind == "date":
        return bo.date_ms(v)
    if kind == "objectId":
        return str(v)
    return v


def _exact_int(v: Any) -> int | None:
    """v as an int64 when it is an integral number in range, else None."""
    x = bo.to_number(v)
    if isinstance(x, float):
        if not math.isfinite(x) or x != math.floor(x):
            return None
        x = int(x)
    elif isinstance(x, decimal.Decimal):
        if not x.is_finite() or x != x.to_integral_value():
            return None
        x = int(x)
    x = int(x)
    return x if _I64_MIN <= x <= _I64_MAX else None


def _floor_ceil(v: Any) -> tuple[Any, Any]:
    """(floor, ceil) of a number as Python ints, or +-inf for infinities."""
    x = bo.to_number(v)
    if isinstance(x, float):
        if math.isinf(x):
            return x, x
        return math.floor(x), math.ceil(x)
    if isinstance(x, decimal.Decimal):
        if x.is_infinite():
            return float(x), float(x)
        return int(x.to_integral_value(decimal.ROUND_FLOOR)), int(x.to_integral_value(decimal.ROUND_CEILING))
    return int(x), int(x)


def _int_compare(op: str, v: Any, col: pc.Expression) -> Any:
    if op == "$eq":
        x = _exact_int(v)
        return FALSE if x is None else col == pa.scalar(x, pa.int64())
    fl, ce = _floor_ceil(v)
    valid = col.is_valid()
    if op == "$gt":
        b, cmp = fl, lambda s: col > s
        if b >= _I64_MAX:
            return FALSE
        if b < _I64_MIN:
            return valid
    elif op == "$gte":
        b, cmp = ce, lambda s: col >= s
        if b > _I64_MAX:
            return FALSE
        if b <= _I64_MIN:
            return valid
    elif op == "$lt":
        b, cmp = ce, lambda s: col < s
        if b <= _I64_MIN:
            return FALSE
        if b > _I64_MAX:
            return valid
    else:
        b, cmp = fl, lambda s: col <= s
        if b < _I64_MIN:
            return FALSE
        if b >= _I64_MAX:
            return valid
    return cmp(pa.scalar(int(b), pa.int64()))


def _double_compare(op: str, v: Any, col: pc.Expression) -> Any:
    x = bo.to_number(v)
    if isinstance(x, float):
        return _OPS[op](col, pa.scalar(x, pa.float64()))
    f = float(x)
    exact_d = x if isinstance(x, decimal.Decimal) else decimal.Decimal(int(x))
    fd = decimal.Decimal(f) if math.isfinite(f) else None
    if fd is not None and fd == exact_d:
        return _OPS[op](col, pa.scalar(f, pa.float64()))
    rounded_up = f > 0 if fd is None else fd > exact_d   # f lies above the true value
    s = pa.scalar(f, pa.float64())
    if op == "$eq":
        return FALSE
    if op in ("$gt", "$gte"):
        return col >= s if rounded_up else col > s
    return col < s if rounded_up else col <= s


def _key_range_expr(key: pc.Expression, rng: tuple | None) -> Any:
    if rng is None:
        return FALSE
    lo, lo_incl, hi, hi_incl = rng
    expr: Any = None
    if lo is not None and hi is not None and lo == hi and lo_incl and hi_incl:
        return key == pa.scalar(lo, pa.binary())
    if lo is not None:
        s = pa.scalar(lo, pa.binary())
        expr = _and(expr, key >= s if lo_incl else key > s)
    if hi is not None:
        s = pa.scalar(hi, pa.binary())
        expr = _and(expr, key <= s if hi_incl else key < s)
    return expr
