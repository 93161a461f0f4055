"""Query filters parsed once into an immutable expression tree.

:func:`parse_filter` turns a MongoDB filter document into a tree of frozen
dataclasses (the node classes below). Syntax errors are raised here, at parse
time, as :class:`~mongolake.errors.MongoError` with MongoDB's codes and
messages. The tree is then consumed by visitors, never by re-reading the raw
filter: :mod:`matcher` (documents), :mod:`zonemap` (file / row-group
statistics), :mod:`pushdown` (Arrow expressions).

Node semantics follow MongoDB's MatchExpression tree:

* ``{a: {$ne: v}}`` is ``Not(Compare(a, "$eq", v))``; ``$nin`` is ``Not(In)``;
  ``{$exists: false}`` is ``Not(Exists)``; ``{a: {$not: {...}}}`` is ``Not(And(...))``
  (single children are unwrapped).
* ``$all`` becomes an ``And`` of equalities / regexes / ``$elemMatch`` es
  (``$all: []`` is ``AlwaysFalse``).
* Path leaves carry ``path`` (dotted string) and ``parts`` (its components).
* An empty filter parses to ``AlwaysTrue()``.

Value objects held by the tree (lists, dicts) must not be mutated.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from bson.regex import Regex

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import is_number
from mongolake.query.filter_args import (
    BITS, CMP, GEO, PATHLESS, bad, is_operator, non_negative_int, parse_bitmask, parse_mod, parse_types, truthy,
)
from mongolake.query.regex import compile_regex, regex_parts

__all__ = [
    "Node", "And", "Or", "Nor", "Not", "AlwaysTrue", "AlwaysFalse", "Compare", "In", "RegexMatch",
    "Exists", "TypeIs", "Mod", "Size", "ElemMatchObject", "ElemMatchValue", "Bits", "ExprNode",
    "JsonSchema", "CustomNode", "CustomPathNode", "parse_filter", "is_regex", "walk", "referenced_paths",
]


class Node:
    """Base class of every expression-tree node."""

    __slots__ = ()


# -- logical nodes -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class And(Node):
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or(Node):
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Nor(Node):
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    child: Node


@dataclass(frozen=True, slots=True)
class AlwaysTrue(Node):
    pass


@dataclass(frozen=True, slots=True)
class AlwaysFalse(Node):
    pass


# -- path (leaf) nodes ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _PathNode(Node):
    path: str
    parts: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.path.split(".")) if self.path else ())


@dataclass(frozen=True, slots=True)
class Compare(_PathNode):
    """``op`` is one of ``$eq $gt $gte $lt $lte``; ``value`` any BSON value
    (a Regex only with ``$eq``, meaning equality to a stored regex)."""
    op: str = "$eq"
    value: Any = None


@dataclass(frozen=True, slots=True)
class In(_PathNode):
    """``$in``: equality with any of ``values`` or a match of any of ``regexes``
    (compiled ``re.Pattern`` objects, with ``regex_sources`` their (pattern, options))."""
    values: tuple = ()
    regexes: tuple = ()
    regex_sources: tuple = ()

    @property
    def has_null(self) -> bool:
        return any(v is None for v in self.values)


@dataclass(frozen=True, slots=True)
class RegexMatch(_PathNode):
    pattern: str = ""
    options: str = ""
    regex: re.Pattern = field(default=None, compare=False, repr=False)  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Exists(_PathNode):
    pass


@dataclass(frozen=True, slots=True)
class TypeIs(_PathNode):
    codes: frozenset = frozenset()


@dataclass(frozen=True, slots=True)
class Mod(_PathNode):
    divisor: int = 1
    remainder: int = 0


@dataclass(frozen=True, slots=True)
class Size(_PathNode):
    size: int = 0


@dataclass(frozen=True, slots=True)
class ElemMatchObject(_PathNode):
    """``$elemMatch`` with a query: some element (document or array) matches ``filter``."""
    filter: Node = None  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ElemMatchValue(_PathNode):
    """``$elemMatch`` with operators: some element satisfies every predicate
    (predicates are path nodes with the empty path, applied to the element)."""
    predicates: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class Bits(_PathNode):
    """``op`` is ``$bitsAllSet $bitsAllClear $bitsAnySet $bitsAnyClear``; ``mask`` a
    non-negative int whose set bits are the tested positions. Bit positions
    beyond 65535 (absurd but legal) are listed in ``high_positions`` instead."""
    op: str = "$bitsAllSet"
    mask: int = 0
    high_positions: tuple = ()


@dataclass(frozen=True, slots=True)
class ExprNode(Node):
    """``$expr``; ``fn(doc, variables)`` is the compiled aggregation expression."""
    spec: Any = None
    fn: Callable = field(default=None, compare=False, repr=False)  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class JsonSchema(Node):
    """``$jsonSchema``; ``validate(doc) -> bool`` is the compiled schema."""
    schema: Any = None
    validate: Callable = field(default=None, compare=False, repr=False)  # type: ignore[assignment]


# -- extension nodes -------------------------------------------------------------
# Operators that need more than a value test (``$text``, geospatial) are parsed by
# their own packages (``mongolake.query.text``, ``mongolake.query.geo``) into
# subclasses of these two. The matcher calls their methods; the zone-map and
# pushdown visitors treat them as unknown (no pruning, residual), which is
# always correct.

class CustomNode(Node):
    """A path-less extension node (e.g. ``$text``): ``matcher(variables)`` returns
    ``fn(doc) -> bool``. ``needs_index`` names the index kind a read must use to
    answer it (the engine then runs that kind's reader; see
    ``mongolake/engine/indexing/kinds.py``), or is None."""

    __slots__ = ()
    needs_index: str | None = None

    def matcher(self, variables: dict) -> Callable[[Any], bool]:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class CustomPathNode(_PathNode):
    """A path extension node (e.g. ``$geoWithin``): ``element_test()`` returns
    ``fn(value) -> bool`` applied to every value the path reaches (array
    elements and the array itself, like any leaf operator). ``needs_index`` as
    for :class:`CustomNode` (``$near`` needs a ``2dsphere`` index)."""

    needs_index = None

    def element_test(self) -> Callable[[Any], bool]:
        raise NotImplementedError


# -- helpers -------------------------------------------------------------------

def is_regex(v: Any) -> bool:
    return isinstance(v, (Regex, re.Pattern))


def walk(node: Node):
    """Pre-order iteration over a tree (does not enter $elemMatch sub-filters)."""
    yield node
    if isinstance(node, (And, Or, Nor)):
        for c in node.children:
            yield from walk(c)
    elif isinstance(node, Not):
        yield from walk(node.child)


def index_requirement(node: Node | None) -> tuple[str, Node] | None:
    """``(kind, node)`` for the first node of the tree that must be answered with
    a special index (``$text``, ``$near``), else None."""
    if node is None:
        return None
    for n in walk(node):
        kind = getattr(n, "needs_index", None)
        if kind:
            return kind, n
    return None


def referenced_paths(node: Node) -> set[str]:
    """Top-level document paths a tree reads (``$expr``/``$jsonSchema`` add ``"$ROOT"``)."""
    out: set[str] = set()
    for n in walk(node):
        if isinstance(n, _PathNode):
            out.add(n.path)
        elif isinstance(n, (ExprNode, JsonSchema)):
            out.add("$ROOT")
    return out


def _is_dbref_doc(obj: Mapping, allow_incomplete: bool) -> bool:
    keys = set(obj)
    if allow_incomplete:
        return bool(keys & {"$ref", "$id", "$db"})
    return "$ref" in keys and "$id" in keys


def _is_expression_doc(v: Any, allow_incomplete_dbref: bool = False) -> bool:
    if not isinstance(v, Mapping) or not v:
        return False
    first = next(iter(v))
    return isinstance(first, str) and first.startswith("$") and not _is_dbref_doc(v, allow_incomplete_dbref)


def _as_and(nodes: list[Node]) -> Node:
    if len(nodes) == 1:
        return nodes[0]
    return And(tuple(nodes))


# -- parser ----------------------------------------------------------------------

_TOP, _USER_TOP, _SUB = 0, 1, 2
def parse_filter(spec: Mapping[str, Any], *, in_aggregation: bool = False) -> Node:
    """Parse a filter document into an expression tree (raises MongoError on bad syntax).

    ``in_aggregation`` selects the ``$where`` refusal MongoDB gives inside
    ``$match`` (BadValue "$where is not allowed in this context") instead of
    the one a server without JavaScript gives for queries (6108304).
    """
    if not isinstance(spec, Mapping):
        raise MongoError(ErrorCode.TypeMismatch, "filter must be an object")
    node = _Parser(in_aggregation).parse_doc(spec, _TOP)
    if isinstance(node, And) and not node.children:
        return AlwaysTrue()
    return node


class _Parser:
    def __init__(self, in_aggregation: bool):
        self.in_aggregation = in_aggregation

    # {field: value, $op: ...}
    def parse_doc(self, obj: Mapping[str, Any], level: int) -> Node:
        nodes: list[Node] = []
        next_level = _USER_TOP if level == _TOP else level
        for key, val in obj.items():
            if not isinstance(key, str):
                raise bad("field names must be strings")
            if key.startswith("$"):
                n = self.parse_pathless(key, val, level)
                if n is not None:
                    nodes.append(n)
            elif _is_expression_doc(val):
                nodes.extend(self.parse_sub(key, val, next_level))
            elif is_regex(val):
                nodes.append(self.regex_node(key, val))
            else:
                nodes.append(Compare(key, "$eq", val))
        return And(tuple(nodes)) if len(nodes) != 1 else nodes[0]

    def parse_pathless(self, key: str, val: Any, level: int) -> Node | None:
        if key in ("$and", "$or", "$nor"):
            if not isinstance(val, list):
                raise bad(f"{key} must be an array")
            if not val:
                raise bad("$and/$or/$nor must be a nonempty array")
            subs = []
            for e in val:
                if not isinstance(e, Mapping):
                    raise bad("$or/$and/$nor entries need to be full objects")
                subs.append(self.parse_doc(e, level))
            return {"$and": And, "$or": Or, "$nor": Nor}[key](tuple(subs))
        if key == "$comment":
            return None
        if key in ("$ref", "$id", "$db"):                 # DBRef fields queried by name
            return Compare(key, "$eq", val)
        if key == "$expr":
            if level == _SUB:
                raise bad("$expr can only be applied to the top-level document")
            return self.parse_expr(val)
        if key == "$where":
            if self.in_aggregation:
                raise bad("$where is not allowed in this context")
            raise MongoError(6108304, "no globalScriptEngine in $where parsing")
        if key == "$text":
            if level == _SUB:
                raise bad("$text can only be applied to the top-level document")
            from mongolake.query.text import parse_text_filter
            return parse_text_filter(val)
        if key == "$jsonSchema":
            if not isinstance(val, Mapping):
                raise MongoError(ErrorCode.TypeMismatch, "$jsonSchema must be an object")
            from mongolake.query.jsonschema import compile_schema
            return JsonSchema(val, compile_schema(val))
        if key in ("$alwaysTrue", "$alwaysFalse"):
            if not is_number(val) or val != 1:
                raise MongoError(ErrorCode.FailedToParse, f"{key} must be an integer value of 1")
            return AlwaysTrue() if key == "$alwaysTrue" else AlwaysFalse()
        if key == "$sampleRate":
            raise MongoError(ErrorCode.NotImplemented, "$sampleRate is not supported")
        raise bad(f"unknown top level operator: {key}")

    def parse_expr(self, val: Any) -> Node:
        try:
            from mongolake.query import expressions
        except ImportError:
            raise MongoError(ErrorCode.NotImplemented, "$expr is not available in this build") from None
        return ExprNode(val, expressions.compile_expression(val))

    # {field: {$op: v, ...}}
    def parse_sub(self, path: str, obj: Mapping[str, Any], level: int) -> list[Node]:
        first = next(iter(obj))
        if first in ("$near", "$nearSphere", "$geoNear") and isinstance(obj[first], (Mapping, list)):
            if self.in_aggregation:                  # $match (and so countDocuments): use $geoNear
                raise bad("$geoNear, $near, and $nearSphere are not allowed in this context")
            from mongolake.query.geo import parse_near
            return [parse_near(path, obj, level == _SUB)]
        out = []
        for op, val in obj.items():
            n = self.parse_sub_field(obj, path, op, val, level)
            if n is not None:
                out.append(n)
        return out

    def parse_sub_field(self, ctx: Mapping, path: str, op: str, val: Any, level: int) -> Node | None:
        if op == "$not":
            return self.parse_not(path, val, level)
        if op in CMP:
            if op != "$eq" and is_regex(val):
                raise bad(f"Can't have RegEx as arg to predicate over field '{path}'.")
            return Compare(path, op, val)
        if op == "$ne":
            if is_regex(val):
                raise bad("Can't have regex as arg to $ne.")
            return Not(Compare(path, "$eq", val))
        if op in ("$in", "$nin"):
            if not isinstance(val, list):
                raise bad(f"{op} needs an array")
            node = self.in_node(path, val)
            return node if op == "$in" else Not(node)
        if op == "$exists":
            return Exists(path) if truthy(val) else Not(Exists(path))
        if op == "$size":
            try:
                n = non_negative_int(op, val, int32=True)
            except MongoError as exc:
                raise bad(f"Failed to parse $size. {exc.message}") from None
            return Size(path, size=n)
        if op == "$type":
            return TypeIs(path, codes=parse_types(path, val))
        if op == "$mod":
            divisor, remainder = parse_mod(val)
            return Mod(path, divisor=divisor, remainder=remainder)
        if op == "$regex":
            return self.regex_from_doc(path, ctx)
        if op == "$options":
            if "$regex" in ctx:
                return None
            raise bad("$options needs a $regex")
        if op == "$elemMatch":
            return self.parse_elem_match(path, val)
        if op == "$all":
            return self.parse_all(path, val)
        if op in BITS:
            mask, high = parse_bitmask(op, val)
            return Bits(path, op=op, mask=mask, high_positions=high)
        if op in GEO:
            if op in ("$near", "$nearSphere", "$geoNear"):
                raise bad(f"near must be first in: {dict(ctx)}")
            from mongolake.query.geo import parse_geo_predicate
            return parse_geo_predicate(path, op, val)
        if op == "$where":
            raise bad("$where cannot be applied to a field")
        raise bad(f"unknown operator: {op}")

    def parse_not(self, path: str, val: Any, level: int) -> Node:
        if is_regex(val):
            return Not(self.regex_node(path, val))
        if not isinstance(val, Mapping):
            raise bad("$not needs a regex or a document")
        if not val:
            raise bad("$not cannot be empty")
        return Not(_as_and(self.parse_sub(path, val, level)))

    def in_node(self, path: str, arr: list) -> In:
        values, regexes, sources = [], [], []
        for e in arr:
            if _is_expression_doc(e):
                raise bad("cannot nest $ under $in")
            if is_regex(e):
                pat, opts = regex_parts(e)
                regexes.append(compile_regex(pat, opts))
                sources.append((pat, opts))
            else:
                values.append(e)
        return In(path, values=tuple(values), regexes=tuple(regexes), regex_sources=tuple(sources))

    def regex_node(self, path: str, value: Any) -> RegexMatch:
        pat, opts = regex_parts(value)
        return RegexMatch(path, pattern=pat, options=opts, regex=compile_regex(pat, opts))

    def regex_from_doc(self, path: str, ctx: Mapping) -> RegexMatch:
        pattern, options = "", ""
        for k, v in ctx.items():
            if k == "$regex":
                if isinstance(v, str):
                    pattern = v
                elif is_regex(v):
                    pattern, flags = regex_parts(v)
                    if flags:
                        if options:
                            raise MongoError(51074, "options set in both $regex and $options")
                        options = flags
                else:
                    raise bad("$regex has to be a string")
            elif k == "$options":
                if not isinstance(v, str):
                    raise bad("$options has to be a string")
                if options:
                    raise MongoError(51075, "options set in both $regex and $options")
                options = v
        return RegexMatch(path, pattern=pattern, options=options, regex=compile_regex(pattern, options))

    def parse_elem_match(self, path: str, val: Any) -> Node:
        if not isinstance(val, Mapping):
            raise bad("$elemMatch needs an Object")
        value_form = False
        if _is_expression_doc(val, allow_incomplete_dbref=True):
            value_form = next(iter(val)) not in PATHLESS
        if value_form:
            preds = self.parse_sub("", val, _SUB)
            return ElemMatchValue(path, predicates=tuple(preds))
        if "$where" in val:
            raise bad("$elemMatch cannot contain $where expression")
        return ElemMatchObject(path, filter=self.parse_doc(val, _SUB))

    def parse_all(self, path: str, val: Any) -> Node:
        if not isinstance(val, list):
            raise bad("$all needs an array")
        if val and isinstance(val[0], Mapping) and val[0] and next(iter(val[0])) == "$elemMatch":
            subs = []
            for e in val:
                if not isinstance(e, Mapping) or not e or next(iter(e)) != "$elemMatch":
                    raise bad("$all/$elemMatch has to be consistent")
                subs.append(self.parse_elem_match(path, e["$elemMatch"]))
            return _as_and(subs)
        nodes: list[Node] = []
        for e in val:
            if is_regex(e):
                nodes.append(self.regex_node(path, e))
            elif isinstance(e, Mapping) and e and is_operator(next(iter(e))):
                raise bad("no $ expressions in $all")
            else:
                nodes.append(Compare(path, "$eq", e))
        if not nodes:
            return AlwaysFalse()
        return _as_and(nodes)
