"""Single-value tests (MongoDB's ``matchesSingleElement``) for the matcher.

Each builder takes a parsed path node and returns ``test(value) -> bool`` for one
value already reached through the path (:mod:`matcher` handles the path walk and
array traversal). Hot cases are specialised with small code templates
(:func:`define`) whose compiled code objects are cached.
"""
from __future__ import annotations

import datetime as _dt
import decimal
import math
from functools import lru_cache
from typing import Any, Callable

from bson.binary import Binary
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId

from mongolake.query.bsonorder import (
    MISSING, canonical_rank, compare, date_ms, is_nan, is_number, values_equal,
)
from mongolake.query.filter import Bits, In, Mod, RegexMatch, is_regex
from mongolake.query.regex import regex_parts

__all__ = ["hash_key", "compare_test", "regex_test", "in_test", "in_sets", "mod_test", "bits_test",
           "as_document", "define", "PYOP"]

_SLOW_NUMBERS = (Int64, Decimal128, decimal.Decimal)


def hash_key(v: Any) -> Any:
    """A hashable key such that ``hash_key(a) == hash_key(b)`` iff ``values_equal(a, b)``,
    or None for values without one (documents, arrays, regexes, code)."""
    t = type(v)
    if t is str:
        return ("s", v)
    if t is int or t is float:
        return ("nan",) if v != v else ("n", v)
    if v is None or v is MISSING:
        return ("null",)
    if t is bool:
        return ("b", v)
    if is_number(v):
        if is_nan(v):
            return ("nan",)
        d = v.to_decimal() if isinstance(v, Decimal128) else v
        if isinstance(d, decimal.Decimal) and d.is_infinite():
            return ("n", float(d))
        return ("n", d if isinstance(d, decimal.Decimal) else int(d))
    if isinstance(v, ObjectId):
        return ("o", v.binary)
    if isinstance(v, _dt.datetime) or type(v).__name__ == "DatetimeMS":
        return ("d", date_ms(v))
    if isinstance(v, (bytes, Binary)):
        return ("x", len(v), v.subtype if isinstance(v, Binary) else 0, bytes(v))
    if type(v).__name__ == "UUID":
        return ("x", 16, 4, v.bytes)
    if isinstance(v, MinKey):
        return ("min",)
    if isinstance(v, MaxKey):
        return ("max",)
    if type(v).__name__ == "Timestamp":
        return ("t", v.time, v.inc)
    return None


# -- single-element tests (MongoDB's matchesSingleElement) -------------------------

def compare_test(op: str, val: Any) -> Callable[[Any], bool]:
    t_val = type(val)
    if val is None:
        if op in ("$eq", "$gte", "$lte"):
            return lambda v: v is None or v is MISSING
        return lambda v: False
    if isinstance(val, MinKey):
        if op == "$gte":
            return lambda v: True
        if op == "$gt":
            return lambda v: not isinstance(v, MinKey)
        if op == "$lt":
            return lambda v: False
        return lambda v: isinstance(v, MinKey)
    if isinstance(val, MaxKey):
        if op == "$lte":
            return lambda v: True
        if op == "$lt":
            return lambda v: not isinstance(v, MaxKey)
        if op == "$gt":
            return lambda v: False
        return lambda v: isinstance(v, MaxKey)
    if is_number(val) and is_nan(val):
        if op in ("$gt", "$lt"):
            return lambda v: False
        return lambda v: is_number(v) and is_nan(v)
    if (t_val is int or t_val is float or t_val is Int64) and t_val is not bool:
        num = int(val) if t_val is Int64 else val
        pyop = PYOP[op]

        def slow_num(v: Any, _op=_CMPOP[op]) -> bool:
            return isinstance(v, _SLOW_NUMBERS) and not is_nan(v) and _op(compare(v, num))
        return define(f"def test(v):\n t = type(v)\n if t is int or t is float: return v {pyop} num\n"
                       f" return slow(v)\n", {"num": num, "slow": slow_num}, "test")
    if t_val is str:
        return define(f"def test(v): return type(v) is str and v {PYOP[op]} s\n", {"s": val}, "test")
    if t_val is _dt.datetime and op != "$eq":
        ms = date_ms(val)
        cmp_op = _CMPOP[op]
        return lambda v: canonical_rank(v) == _DATE_RANK and cmp_op(_cmp(date_ms(v), ms))
    rank = canonical_rank(val)
    cmp_op = _CMPOP[op]
    if op == "$eq":
        return lambda v: canonical_rank(v) == rank and compare(v, val) == 0
    return lambda v: canonical_rank(v) == rank and not (rank == _NUM_RANK and is_nan(v)) and cmp_op(compare(v, val))


@lru_cache(maxsize=256)
def _code(src: str) -> Any:
    """Compiled code of a closure template (templates are few; values go in namespaces)."""
    return compile(src, "<mongolake.matcher>", "exec")


def define(src: str, ns: dict[str, Any], name: str) -> Any:
    exec(_code(src), ns)
    return ns[name]


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


_NUM_RANK = canonical_rank(0)
_DATE_RANK = canonical_rank(_dt.datetime(2000, 1, 1))
PYOP = {"$eq": "==", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_CMPOP: dict[str, Callable[[int], bool]] = {
    "$eq": lambda c: c == 0, "$gt": lambda c: c > 0, "$gte": lambda c: c >= 0,
    "$lt": lambda c: c < 0, "$lte": lambda c: c <= 0,
}


def _regex_value_equal(v: Any, pattern: str, options: str) -> bool:
    p, o = regex_parts(v)
    return p == pattern and sorted(o) == sorted(options)


def regex_test(node: RegexMatch) -> Callable[[Any], bool]:
    search = node.regex.search
    pattern, options = node.pattern, node.options

    def test(v: Any) -> bool:
        if type(v) is str:
            return search(v) is not None
        if is_regex(v):
            return _regex_value_equal(v, pattern, options)
        return False
    return test


def in_sets(node: In) -> tuple[set, set, set, list, bool, bool]:
    nums, strs, keys, slow = set(), set(), set(), []
    has_nan = has_null = False
    for x in node.values:
        t = type(x)
        if t is str:
            strs.add(x)
            continue
        if x is None:
            has_null = True
            continue
        k = hash_key(x)
        if k is None:
            slow.append(x)
        elif k == ("nan",):
            has_nan = True
        else:
            keys.add(k)
            if k[0] == "n":
                nums.add(k[1])
    return nums, strs, keys, slow, has_nan, has_null


def in_test(node: In) -> Callable[[Any], bool]:
    nums, strs, keys, slow, has_nan, has_null = in_sets(node)
    searches = [r.search for r in node.regexes]
    sources = node.regex_sources

    def test(v: Any) -> bool:
        t = type(v)
        if t is str:
            if v in strs:
                return True
            for s in searches:
                if s(v) is not None:
                    return True
            return False
        if t is int or t is float:
            return v in nums or (has_nan and v != v)
        if v is None or v is MISSING:
            return has_null
        k = hash_key(v)
        if k is not None:
            if k in keys or (has_nan and k == ("nan",)):
                return True
        else:
            for x in slow:
                if values_equal(v, x):
                    return True
        if sources and is_regex(v):
            return any(_regex_value_equal(v, p, o) for p, o in sources)
        return False
    return test


def mod_test(node: Mod) -> Callable[[Any], bool]:
    d, r = node.divisor, node.remainder
    ad = abs(d)

    def test(v: Any) -> bool:
        t = type(v)
        if t is int or t is Int64:
            x = int(v)
        elif t is float:
            if v != v or v in (math.inf, -math.inf) or abs(v) >= 2.0 ** 63:
                return False
            x = int(v)
        elif t is Decimal128:
            dv = v.to_decimal()
            if not dv.is_finite() or abs(dv) >= 2 ** 63:
                return False
            x = int(dv)
        else:
            return False
        m = abs(x) % ad
        return (-m if x < 0 else m) == r
    return test


def _bits_value(v: Any) -> int | None:
    t = type(v)
    if t is int or t is Int64:
        return int(v)
    if t is float:
        if v != v or v in (math.inf, -math.inf) or v != math.floor(v) or not -(2.0 ** 63) <= v < 2.0 ** 63:
            return None
        return int(v)
    if t is Decimal128:
        d = v.to_decimal()
        if not d.is_finite() or d != d.to_integral_value() or not -(2 ** 63) <= d < 2 ** 63:
            return None
        return int(d)
    if isinstance(v, (bytes, Binary)) and t is not bool:
        return int.from_bytes(bytes(v), "little")
    if t.__name__ == "UUID":
        return int.from_bytes(v.bytes, "little")
    return None


def bits_test(node: Bits) -> Callable[[Any], bool]:
    mask, high, op = node.mask, node.high_positions, node.op

    def test(v: Any) -> bool:
        x = _bits_value(v)
        if x is None:
            return False
        hb = [(x >> p) & 1 for p in high]
        if op == "$bitsAllSet":
            return (x & mask) == mask and all(hb)
        if op == "$bitsAllClear":
            return (x & mask) == 0 and not any(hb)
        if op == "$bitsAnySet":
            return (x & mask) != 0 or any(hb)
        return (x & mask) != mask or not all(hb)
    return test


def as_document(e: Any) -> Any:
    if type(e) is list:
        return {str(i): x for i, x in enumerate(e)}
    if isinstance(e, DBRef):
        return dict(e.as_doc())
    return e
