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
from typing import Any, Callable

from bson.dbref import DBRef

from mongolake.query.bsonorder import MISSING, type_code
from mongolake.query.elemtests import (
    PYOP, as_document, bits_test, compare_test, define, hash_key, in_sets, in_test, mod_test, regex_test,
)
from mongolake.query.filter import (
    AlwaysFalse, AlwaysTrue, And, Bits, Compare, CustomNode, CustomPathNode, ElemMatchObject, ElemMatchValue,
    Exists, ExprNode, In, JsonSchema, Mod, Node, Nor, Not, Or, RegexMatch, Size, TypeIs,
)
from mongolake.query.paths import iter_path

__all__ = ["compile_matcher", "matches", "match_position", "single_element_test", "hash_key"]

Matcher = Callable[[Any], bool]
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


def single_element_test(node: Node, variables: dict | None = None) -> Callable[[Any], bool]:
    """``test(value) -> bool`` for a path node applied to one value (no path walk)."""
    return _Compiler(dict(variables or {})).test(node)



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
        if isinstance(node, CustomNode):
            return node.matcher(self.variables)
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
            return compare_test(node.op, node.value)
        if isinstance(node, In):
            return in_test(node)
        if isinstance(node, RegexMatch):
            return regex_test(node)
        if isinstance(node, Exists):
            return lambda v: v is not MISSING
        if isinstance(node, TypeIs):
            codes = node.codes
            return lambda v: type_code(v) in codes
        if isinstance(node, Size):
            n = node.size
            return lambda v: type(v) is list and len(v) == n
        if isinstance(node, Mod):
            return mod_test(node)
        if isinstance(node, Bits):
            return bits_test(node)
        if isinstance(node, ElemMatchObject):
            sub = self.compile(node.filter)

            def em_obj(v: Any) -> bool:
                if type(v) is not list:
                    return False
                for e in v:
                    if isinstance(e, (dict, list, DBRef)) and sub(as_document(e)):
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
        if isinstance(node, CustomPathNode):
            return node.element_test()
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
            src = f"  if t is int or t is float: return v {PYOP[node.op]} val\n"
        elif t_val is str:
            ns["val"] = val
            src = f"  if t is str: return v {PYOP[node.op]} val\n"
    elif isinstance(node, In) and leaf:
        nums, strs, _keys, _slow, has_nan, _null = in_sets(node)
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
    return define(body, ns, "m")


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
        t_lo, t_hi = compare_test(lo.op, lo.value), compare_test(hi.op, hi.value)
        ns = {"MISSING": MISSING, "key": key, "lo": lo.value, "hi": hi.value, "tl": t_lo, "th": t_hi,
              "iter_path": iter_path}
        out.append(define("def m(doc):\n"
             "  v = doc.get(key, MISSING) if type(doc) is dict else MISSING\n"
             "  t = type(v)\n"
             f"  if t is int or t is float: return v {PYOP[lo.op]} lo and v {PYOP[hi.op]} hi\n"
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
                if isinstance(e, (dict, list, DBRef)) and sub(as_document(e)):
                    return i
            return None
        tests = [self.c.test(p) for p in node.predicates]  # type: ignore[attr-defined]
        for i, e in enumerate(arr):
            if all(t(e) for t in tests):
                return i
        return None
