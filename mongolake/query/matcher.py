"""Document matching: the expression tree compiled into Python closures.

``compile_matcher(tree)`` returns ``fn(doc) -> bool``. The closures follow
MongoDB's MatchExpression semantics exactly (see :mod:`paths` for how dotted
paths meet arrays); :func:`single_element_test` gives MongoDB's
``matchesSingleElement`` for one value. Common shapes on a top-level field —
``{a: 5}``, ``{a: "x"}``, ``{a: {$gt: 1, $lt: 9}}``, ``{a: {$in: [...]}}`` —
get specialised closures whose scalar path costs one dict lookup and one type
check.

``match_position(tree, doc)`` re-evaluates a filter recording, like MongoDB's
``MatchDetails.elemMatchKey``, the array index that satisfied it (for the
positional ``$`` operator of projections and updates).
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
from bson.regex import Regex

from mongolake.query.bsonorder import (
    MISSING, NULL, canonical_rank, compare, date_ms, is_nan, is_number, type_code, values_equal,
)
from mongolake.query.filter import (
    AlwaysFalse, AlwaysTrue, And, Bits, Compare, ElemMatchObject, ElemMatchValue, Exists, ExprNode,
    In, JsonSchema, Mod, Node, Nor, Not, Or, RegexMatch, Size, TypeIs, is_regex,
)
from mongolake.query.paths import iter_path
from mongolake.query.regex import regex_parts

__all__ = ["compile_matcher", "matches", "match_position", "single_element_test", "hash_key"]

Matcher = Callable[[Any], bool]
_SLOW_NUMBERS = (Int64, Decimal128, decimal.Decimal)
_UTC = _dt.timezone.utc


def compile_matcher(node: Node, *, variables: dict | None = None) -> Matcher:
    """Compile a parsed filter into ``fn(doc) -> bool``.

    ``variables`` are the aggregation variables visible to ``$expr`` (``$$NOW``
    defaults to the compile time; ``ROOT``/``CURRENT`` are set per document).
    """
    base = dict(variables or {})
    if "NOW" not in base:
        now = _dt.datetime.now(_UTC)
        base["NOW"] = now.replace(microsecond=now.microsecond // 1000 * 1000)
    return _Compiler(base).compile(node)


def matches(node: Node, doc: Any, **kwargs: Any) -> bool:
    """Convenience: compile and apply once (compile once when matching many documents)."""
    return compile_matcher(node, **kwargs)(doc)


# -- hashing of values for $in ---------------------------------------------------

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

def single_element_test(node: Node, variables: dict | None = None) -> Callable[[Any], bool]:
    """``test(value) -> bool`` for a path node applied to one value (no path walk)."""
    return _Compiler(dict(variables or {})).test(node)


def _compare_test(op: str, val: Any) -> Callable[[Any], bool]:
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
        pyop = _PYOP[op]

        def slow_num(v: Any, _op=_CMPOP[op]) -> bool:
            return isinstance(v, _SLOW_NUMBERS) and not is_nan(v) and _op(compare(v, num))
        return _define(f"def test(v):\n t = type(v)\n if t is int or t is float: return v {pyop} num\n"
                       f" return slow(v)\n", {"num": num, "slow": slow_num}, "test")
    if t_val is str:
        return _define(f"def test(v): return type(v) is str and v {_PYOP[op]} s\n", {"s": val}, "test")
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


def _define(src: str, ns: dict[str, Any], name: str) -> Any:
    exec(_code(src), ns)
    return ns[name]


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


_NUM_RANK = canonical_rank(0)
_DATE_RANK = canonical_rank(_dt.datetime(2000, 1, 1))
_PYOP = {"$eq": "==", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_CMPOP: dict[str, Callable[[int], bool]] = {
    "$eq": lambda c: c == 0, "$gt": lambda c: c > 0, "$gte": lambda c: c >= 0,
    "$lt": lambda c: c < 0, "$lte": lambda c: c <= 0,
}


def _regex_value_equal(v: Any, pattern: str, options: str) -> bool:
    p, o = regex_parts(v)
    return p == pattern and sorted(o) == sorted(options)


def _regex_test(node: RegexMatch) -> Callable[[Any], bool]:
    search = node.regex.search
    pattern, options = node.pattern, node.options

    def test(v: Any) -> bool:
        if type(v) is str:
            return search(v) is not None
        if is_regex(v):
            return _regex_value_equal(v, pattern, options)
        return False
    return test


def _in_sets(node: In) -> tuple[set, set, set, list, bool, bool]:
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


def _in_test(node: In) -> Callable[[Any], bool]:
    nums, strs, keys, slow, has_nan, has_null = _in_sets(node)
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


def _mod_test(node: Mod) -> Callable[[Any], bool]:
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


def _bits_test(node: Bits) -> Callable[[Any], bool]:
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


def _as_document(e: Any) -> Any:
    if type(e) is list:
        return {str(i): x for i, x in enumerate(e)}
    if isinstance(e, DBRef):
        return dict(e.as_doc())
    return e


# -- the compiler ------------------------------------------------------------------

class _Compiler:
    def __init__(self, variables: dict):
        self.variables = variables

    def compile(self, node: Node) -> Matcher:
        if isinstance(node, And):
            return self._and(node)
        if isinstance(node, Or):
            fs = [self.compile(c) for c in node.children]
            return lambda doc: any(f(doc) for f in fs)
        if isinstance(node, Nor):
            fs = [self.compile(c) for c in node.children]
            return lambda doc: not any(f(doc) for f in fs)
        if isinstance(node, Not):
            f = self.compile(node.child)
            return lambda doc: not f(doc)
        if isinstance(node, AlwaysTrue):
            return lambda doc: True
        if isinstance(node, AlwaysFalse):
            return lambda doc: False
        if isinstance(node, ExprNode):
            return self._expr(node)
        if isinstance(node, JsonSchema):
            return node.validate
        test = self.test(node)
        leaf = not isinstance(node, (Size, ElemMatchObject, ElemMatchValue))
        return _path_matcher(node, test, leaf)

    def _expr(self, node: ExprNode) -> Matcher:
        from mongolake.query.expressions import truthy
        fn, base = node.fn, self.variables

        def m(doc: Any) -> bool:
            env = dict(base)
            env["ROOT"] = env["CURRENT"] = doc
            return truthy(fn(doc, env))
        return m

    def _and(self, node: And) -> Matcher:
        children = list(node.children)
        fused = _fuse_ranges(children)
        fs = fused + [self.compile(c) for c in children]
        if not fs:
            return lambda doc: True
        if len(fs) == 1:
            return fs[0]
        if len(fs) == 2:
            f1, f2 = fs
            return lambda doc: f1(doc) and f2(doc)
        if len(fs) == 3:
            f1, f2, f3 = fs
            return lambda doc: f1(doc) and f2(doc) and f3(doc)

        def m(doc: Any) -> bool:
            for f in fs:
                if not f(doc):
                    return False
            return True
        return m

    def test(self, node: Node) -> Callable[[Any], bool]:
        """matchesSingleElement for a path node (path ignored)."""
        if isinstance(node, Compare):
            return _compare_test(node.op, node.value)
        if isinstance(node, In):
            return _in_test(node)
        if isinstance(node, RegexMatch):
            return _regex_test(node)
        if isinstance(node, Exists):
            return lambda v: v is not MISSING
        if isinstance(node, TypeIs):
            codes = node.codes
            return lambda v: type_code(v) in codes
        if isinstance(node, Size):
            n = node.size
            return lambda v: type(v) is list and len(v) == n
        if isinstance(node, Mod):
            return _mod_test(node)
        if isinstance(node, Bits):
            return _bits_test(node)
        if isinstance(node, ElemMatchObject):
            sub = self.compile(node.filter)

            def em_obj(v: Any) -> bool:
                if type(v) is not list:
                    return False
                for e in v:
                    if isinstance(e, (dict, list, DBRef)) and sub(_as_document(e)):
                        return True
                return False
            return em_obj
        if isinstance(node, ElemMatchValue):
            tests = [self.test(p) for p in node.predicates]

            def em_val(v: Any) -> bool:
                if type(v) is not list:
                    return False
                for e in v:
                    if all(t(e) for t in tests):
                        return True
                return False
            return em_val
        if isinstance(node, Not):
            t = self.test(node.child)
            return lambda v: not t(v)
        if isinstance(node, And):
            ts = [self.test(c) for c in node.children]
            return lambda v: all(t(v) for t in ts)
        raise TypeError(f"cannot test a single element with {type(node).__name__}")


# -- path access ---------------------------------------------------------------------

def _path_matcher(node: Node, test: Callable[[Any], bool], leaf: bool) -> Matcher:
    parts = node.parts  # type: ignore[attr-defined]

    def slow(doc: Any) -> bool:
        for v, _ in iter_path(doc, parts, leaf):
            if test(v):
                return True
        return False

    if not parts:
        return lambda doc: test(doc)
    if len(parts) == 1:
        key = parts[0]
        fast = _fast_single_key(node, key, test, leaf)
        if fast is not None:
            return fast

        if leaf:
            def m1(doc: Any) -> bool:
                v = doc.get(key, MISSING) if type(doc) is dict else _generic_get(doc, key)
                if type(v) is list:
                    for e in v:
                        if test(e):
                            return True
                return test(v)
            return m1
        return lambda doc: test(doc.get(key, MISSING) if type(doc) is dict else _generic_get(doc, key))

    def m(doc: Any) -> bool:
        cur = doc
        for p in parts:
            t = type(cur)
            if t is dict:
                cur = cur.get(p, MISSING)
            elif t is list or isinstance(cur, (dict, DBRef)):
                return slow(doc)
            else:
                return test(MISSING)
        if type(cur) is list:
            if leaf:
                for e in cur:
                    if test(e):
                        return True
            return test(cur)
        return test(cur)
    return m


def _generic_get(doc: Any, key: str) -> Any:
    for v, _ in iter_path(doc, (key,), False):
        return v
    return MISSING


def _fast_single_key(node: Node, key: str, test: Callable, leaf: bool) -> Matcher | None:
    """Inline the scalar case for equality/range/$in on numbers and strings."""
    src = None
    ns: dict[str, Any] = {"MISSING": MISSING, "test": test, "key": key}
    if isinstance(node, Compare) and leaf:
        val, t_val = node.value, type(node.value)
        if (t_val is int or t_val is float) and val == val:
            ns["val"] = val
            src = f"  if t is int or t is float: return v {_PYOP[node.op]} val\n"
        elif t_val is str:
            ns["val"] = val
            src = f"  if t is str: return v {_PYOP[node.op]} val\n"
    elif isinstance(node, In) and leaf:
        nums, strs, _keys, _slow, has_nan, _null = _in_sets(node)
        ns["nums"], ns["strs"] = nums, strs
        src = ""
        if not has_nan:
            src += "  if t is int or t is float: return v in nums\n"
        if not node.regexes:
            src += "  if t is str: return v in strs\n"
    if src is None:
        return None
    body = ("def m(doc):\n"
            "  if type(doc) is not dict: return generic(doc)\n"
            "  v = doc.get(key, MISSING)\n"
            "  t = type(v)\n" + src +
            "  if t is list:\n"
            "    for e in v:\n"
            "      if test(e): return True\n"
            "  return test(v)\n")
    ns["generic"] = lambda doc: test(_generic_get(doc, key))
    return _define(body, ns, "m")


def _fuse_ranges(children: list[Node]) -> list[Matcher]:
    """Pull pairs of numeric range bounds on one top-level field out of ``children``
    (mutated) and return fused matchers: ``{a: {$gt: 1, $lt: 9}}`` costs one lookup."""
    by_key: dict[str, list[Compare]] = {}
    for c in children:
        if (isinstance(c, Compare) and c.op != "$eq" and len(c.parts) == 1
                and type(c.value) in (int, float) and c.value == c.value):
            by_key.setdefault(c.parts[0], []).append(c)
    out = []
    for key, cs in by_key.items():
        lows = [c for c in cs if c.op in ("$gt", "$gte")]
        highs = [c for c in cs if c.op in ("$lt", "$lte")]
        if len(lows) != 1 or len(highs) != 1:
            continue
        lo, hi = lows[0], highs[0]
        t_lo, t_hi = _compare_test(lo.op, lo.value), _compare_test(hi.op, hi.value)
        ns = {"MISSING": MISSING, "key": key, "lo": lo.value, "hi": hi.value, "tl": t_lo, "th": t_hi,
              "iter_path": iter_path}
        out.append(_define("def m(doc):\n"
             "  v = doc.get(key, MISSING) if type(doc) is dict else MISSING\n"
             "  t = type(v)\n"
             f"  if t is int or t is float: return v {_PYOP[lo.op]} lo and v {_PYOP[hi.op]} hi\n"
             "  if t is list:\n"
             "    return (any(tl(e) for e in v) or tl(v)) and (any(th(e) for e in v) or th(v))\n"
             "  if type(doc) is not dict:\n"
             "    vals = [x for x, _ in iter_path(doc, (key,))]\n"
             "    return any(tl(x) for x in vals) and any(th(x) for x in vals)\n"
             "  return tl(v) and th(v)\n", ns, "m"))
        children.remove(lo)
        children.remove(hi)
    return out


# -- positional ($) -------------------------------------------------------------------

def match_position(node: Node, doc: Any, *, variables: dict | None = None) -> tuple[bool, int | None]:
    """``(matched, index)``: whether ``doc`` matches and, if so, the array index
    MongoDB's positional ``$`` would use (None when no array was traversed).

    Follows MatchDetails: an ``$and`` keeps the last index a child recorded; ``$or``,
    ``$nor`` and negations record none; ``$elemMatch`` records the matching element.
    """
    return _Positional(_Compiler(dict(variables or {}))).eval(node, doc)


class _Positional:
    def __init__(self, compiler: _Compiler):
        self.c = compiler

    def eval(self, node: Node, doc: Any) -> tuple[bool, int | None]:
        if isinstance(node, And):
            pos = None
            for ch in node.children:
                ok, p = self.eval(ch, doc)
                if not ok:
                    return False, None
                if p is not None:
                    pos = p
            return True, pos
        if isinstance(node, (Or, Nor, Not, AlwaysTrue, AlwaysFalse, ExprNode, JsonSchema)):
            return self.c.compile(node)(doc), None
        em = isinstance(node, (ElemMatchObject, ElemMatchValue))
        leaf = not (em or isinstance(node, Size))
        test = self.c.test(node)
        for v, off in iter_path(doc, node.parts, leaf):  # type: ignore[attr-defined]
            if test(v):
                if em and off is None:
                    off = self._elem_index(node, v)
                return True, off
        return False, None

    def _elem_index(self, node: Node, arr: list) -> int | None:
        if isinstance(node, ElemMatchObject):
            sub = self.c.compile(node.filter)
            for i, e in enumerate(arr):
                if isinstance(e, (dict, list, DBRef)) and sub(_as_document(e)):
                    return i
            return None
        tests = [self.c.test(p) for p in node.predicates]  # type: ignore[attr-defined]
        for i, e in enumerate(arr):
            if all(t(e) for t in tests):
                return i
        return None
