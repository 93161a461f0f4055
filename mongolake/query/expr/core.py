"""Compilation core of the aggregation expression language.

An expression specification (the BSON value MongoDB accepts wherever an
"aggregation expression" is allowed) is compiled once into a *node*: a plain
Python callable ``node(scope) -> value``.  ``scope`` is a dict of variables
without the ``$$`` prefix; it always holds ``ROOT`` and ``CURRENT`` (the
document being processed) and may hold ``NOW``, ``CLUSTER_TIME`` and user
variables (``let``, ``$let``, ``$map``'s ``as`` ...).

Operators live in sibling modules (``arith``, ``strings``, ...) and register a
*parser* in :data:`OPERATORS` with :func:`register` or one of the helpers
:func:`fixed`, :func:`ranged` and :func:`variadic`.  A parser receives the raw
argument of the operator and the :class:`ParseState` and returns a node.

Constant folding: nodes built from constants are evaluated at parse time, like
MongoDB's ``optimize()``; errors such as ``{$divide: [1, 0]}`` therefore surface
when the pipeline is parsed, as they do in MongoDB.
"""
from __future__ import annotations

import datetime as _dt
import time
from typing import Any, Callable, Iterable

from bson.timestamp import Timestamp

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.values import type_name

Node = Callable[[dict], Any]
Parser = Callable[[Any, "ParseState", str], Node]

OPERATORS: dict[str, Parser] = {}
"""Expression operator name (with ``$``) -> parser."""

UNSUPPORTED_OPERATORS: set[str] = set()
"""Valid MongoDB operators that MongoLake refuses with NotImplemented (238)."""

SYSTEM_VARIABLES = frozenset({
    "ROOT", "CURRENT", "REMOVE", "NOW", "CLUSTER_TIME", "DESCEND", "PRUNE", "KEEP",
    "SEARCH_META", "USER_ROLES",
})
_CONSTANT_SYSTEM_VARIABLES = {"REMOVE": MISSING, "DESCEND": "descend", "PRUNE": "prune", "KEEP": "keep"}

InvalidPipelineOperator = 168


def err(code: int, msg: str) -> MongoError:
    """A :class:`MongoError` (shorthand used by every operator module)."""
    return MongoError(code, msg)


class ParseState:
    """What the parser knows about the surrounding scope.

    ``user_vars`` is the set of user variable names in scope, or ``None`` when
    variables are not checked at parse time (they are then looked up at run time).
    """

    __slots__ = ("user_vars",)

    def __init__(self, user_vars: Iterable[str] | None = None):
        self.user_vars = None if user_vars is None else frozenset(user_vars)

    def with_vars(self, names: Iterable[str]) -> "ParseState":
        if self.user_vars is None:
            return self
        return ParseState(self.user_vars | frozenset(names))

    def check_var(self, name: str) -> None:
        if self.user_vars is not None and name not in SYSTEM_VARIABLES and name not in self.user_vars:
            raise err(ErrorCode.Location17276, f"Use of undefined variable: {name}")


# ---------------------------------------------------------------------------
# constant nodes


def const(value: Any) -> Node:
    """A node that always returns ``value`` (marked so folding can see it)."""

    def node(scope: dict) -> Any:
        return value

    node.is_const = True  # type: ignore[attr-defined]
    node.value = value  # type: ignore[attr-defined]
    return node


def is_const(node: Node) -> bool:
    return getattr(node, "is_const", False)


def const_value(node: Node) -> Any:
    return node.value  # type: ignore[attr-defined]


def fold(node: Node, args: Iterable[Node]) -> Node:
    """Evaluate ``node`` now if every argument is constant (MongoDB's optimize())."""
    if all(is_const(a) for a in args):
        return const(node({}))
    return node


# ---------------------------------------------------------------------------
# variables and field paths


def validate_var_name(name: str, *, for_write: bool = True) -> None:
    """MongoDB's rule for user variable names (``$let`` vars, ``as`` and ``let``)."""
    if not name:
        raise err(ErrorCode.FailedToParse, "empty variable names are not allowed")
    first = name[0]
    if for_write and name == "CURRENT":
        return
    if not (first.islower() and first.isascii() or not first.isascii()):
        raise err(ErrorCode.FailedToParse,
                  f"'{name}' starts with an invalid character for a user variable name")
    for ch in name:
        if ch.isascii() and not (ch.isalnum() or ch == "_"):
            raise err(ErrorCode.FailedToParse, f"'{name}' contains an invalid character for a variable name: '{ch}'")


def split_field_path(path: str) -> list[str]:
    """Split a field path (without its leading ``$``) and validate its parts."""
    if path == "":
        raise err(40352, "FieldPath cannot be constructed with empty string")
    if path.endswith("."):
        raise err(40353, "FieldPath must not end with a '.'.")
    parts = path.split(".")
    for p in parts:
        if p == "":
            raise err(15998, "FieldPath field names may not be empty strings.")
        if p.startswith("$"):
            raise err(16410, "FieldPath field names may not start with '$'. Consider using $getField or $setField.")
        if "\0" in p:
            raise err(16411, "FieldPath field names may not contain '\\0'.")
    return parts


def walk_path(value: Any, parts: list[str], i: int = 0) -> Any:
    """Resolve ``parts[i:]`` inside ``value`` with aggregation semantics.

    Arrays met along the way are traversed: each element that is a document
    contributes the value found under it (missing ones are skipped), other
    elements are skipped.  A missing field gives :data:`MISSING`.
    """
    n = len(parts)
    while i < n:
        if isinstance(value, dict):
            value = value.get(parts[i], MISSING)
            i += 1
        elif isinstance(value, list):
            out = []
            for el in value:
                if isinstance(el, dict):
                    r = walk_path(el, parts, i)
                    if r is not MISSING:
                        out.append(r)
            return out
        else:
            return MISSING
    return value


def get_variable(scope: dict, name: str) -> Any:
    try:
        return scope[name]
    except KeyError:
        pass
    if name == "NOW":
        now = _dt.datetime.now(_dt.timezone.utc)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        scope["NOW"] = now
        return now
    if name == "CLUSTER_TIME":
        ts = Timestamp(int(time.time()), 1)
        scope["CLUSTER_TIME"] = ts
        return ts
    if name in ("ROOT", "CURRENT"):
        return MISSING
    if name in ("SEARCH_META", "USER_ROLES"):
        return MISSING
    raise err(ErrorCode.Location17276, f"Use of undefined variable: {name}")


def compile_variable(ref: str, ps: ParseState) -> Node:
    """Compile ``$$name`` or ``$$name.a.b`` (``ref`` without the ``$$``)."""
    name, _, rest = ref.partition(".")
    if not name:
        raise err(16869, "empty variable names are not allowed")
    ps.check_var(name)
    parts = split_field_path(rest) if rest or ref.endswith(".") else []
    if name in _CONSTANT_SYSTEM_VARIABLES:
        v = _CONSTANT_SYSTEM_VARIABLES[name]
        return const(walk_path(v, parts) if parts else v)
    if not parts:
        if name == "CURRENT" or name == "ROOT":
            return lambda s: s[name]
        return lambda s: get_variable(s, name)
    if len(parts) == 1 and name == "CURRENT":
        (p0,) = parts

        def node(s: dict) -> Any:
            d = s["CURRENT"]
            if type(d) is dict:
                return d.get(p0, MISSING)
            return walk_path(d, parts)

        return node
    if len(parts) == 2 and name == "CURRENT":
        p0, p1 = parts

        def node2(s: dict) -> Any:
            d = s["CURRENT"]
            if type(d) is dict:
                d = d.get(p0, MISSING)
                if type(d) is dict:
                    return d.get(p1, MISSING)
                return walk_path(d, parts, 1)
            return walk_path(d, parts)

        return node2
    return lambda s: walk_path(get_variable(s, name), parts)


def compile_field_path(path: str, ps: ParseState) -> Node:
    """Compile a ``$a.b`` string (``path`` without the ``$``)."""
    if path.startswith("$"):
        if path == "$":
            raise err(16869, "'$$' by itself is not a valid FieldPath")
        return compile_variable(path[1:], ps)
    if path == "":
        raise err(16872, "'$' by itself is not a valid FieldPath")
    split_field_path(path)
    return compile_variable("CURRENT." + path, ps)


# ---------------------------------------------------------------------------
# the compiler


def compile_node(spec: Any, ps: ParseState) -> Node:
    """Compile any expression specification into a node."""
    t = type(spec)
    if t is str:
        if spec.startswith("$"):
            return compile_field_path(spec[1:], ps)
        return const(spec)
    if t is dict:
        if not spec:
            return const({})
        first = next(iter(spec))
        if isinstance(first, str) and first.startswith("$"):
            if len(spec) != 1:
                raise err(15983, "an expression specification must contain exactly one field, the name of "
                                 f"the expression. Found {len(spec)} fields in {_short(spec)}, while parsing "
                                 f"object {_short(spec)}")
            parser = OPERATORS.get(first)
            if parser is None:
                raise err(InvalidPipelineOperator, f"Unrecognized expression '{first}'")
            return parser(spec[first], ps, first)
        return compile_object(spec, ps)
    if t is list:
        return compile_array(spec, ps)
    return const(spec)


def compile_object(spec: dict, ps: ParseState) -> Node:
    """An object expression: each value is an expression; missing values are dropped."""
    items: list[tuple[str, Node]] = []
    for k, v in spec.items():
        if k.startswith("$"):
            raise err(16410, "FieldPath field names may not start with '$'. Consider using $getField or $setField.")
        if "." in k:
            raise err(16412, "FieldPath field names may not contain '.'. Consider using $getField or $setField.")
        if k == "":
            raise err(16411, "FieldPath field names may not be empty strings.")
        items.append((k, compile_node(v, ps)))

    def node(s: dict) -> dict:
        out = {}
        for k, n in items:
            v = n(s)
            if v is not MISSING:
                out[k] = v
        return out

    return fold(node, [n for _, n in items])


def compile_array(spec: list, ps: ParseState) -> Node:
    """An array expression: missing elements become null."""
    nodes = [compile_node(v, ps) for v in spec]

    def node(s: dict) -> list:
        out = []
        for n in nodes:
            v = n(s)
            out.append(None if v is MISSING else v)
        return out

    return fold(node, nodes)


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) < 200 else r[:197] + "..."


# ---------------------------------------------------------------------------
# registration helpers


def register(*names: str) -> Callable[[Parser], Parser]:
    """Register a raw parser ``parser(args, ps, name) -> Node`` under ``names``."""

    def deco(parser: Parser) -> Parser:
        for n in names:
            OPERATORS[n] = parser
        return parser

    return deco


def arg_list(args: Any) -> list:
    """Operator arguments: an array is the list of arguments, anything else is one argument."""
    return args if isinstance(args, list) else [args]


def arity_error(name: str, expected: int, got: int) -> MongoError:
    return err(16020, f"Expression {name} takes exactly {expected} arguments. {got} were passed in.")


def compile_args(args: Any, ps: ParseState, name: str, lo: int, hi: int | None) -> list[Node]:
    lst = arg_list(args)
    n = len(lst)
    if hi is not None and lo == hi and n != lo:
        raise arity_error(name, lo, n)
    if n < lo:
        if hi is None:
            raise err(16020, f"Expression {name} takes at least {lo} arguments, and {n} were passed in.")
        raise err(28667, f"Expression {name} takes at least {lo} arguments, and at most {hi}, but {n} were "
                         "passed in.")
    if hi is not None and n > hi:
        raise err(28667, f"Expression {name} takes at least {lo} arguments, and at most {hi}, but {n} were "
                         "passed in.")
    return [compile_node(a, ps) for a in lst]


def _make_node(fn: Callable, nodes: list[Node], pure: bool, spread: bool) -> Node:
    if not spread:
        def node(s: dict) -> Any:
            return fn([n(s) for n in nodes])
    elif len(nodes) == 1:
        (a,) = nodes

        def node(s: dict) -> Any:
            return fn(a(s))
    elif len(nodes) == 2:
        a, b = nodes

        def node(s: dict) -> Any:
            return fn(a(s), b(s))
    else:
        def node(s: dict) -> Any:
            return fn(*[n(s) for n in nodes])
    return fold(node, nodes) if pure else node


def fixed(name: str, nargs: int, *, pure: bool = True) -> Callable[[Callable], Callable]:
    """Register ``fn(*values)`` as an operator taking exactly ``nargs`` expressions."""

    def deco(fn: Callable) -> Callable:
        def parser(args: Any, ps: ParseState, opname: str) -> Node:
            return _make_node(fn, compile_args(args, ps, opname, nargs, nargs), pure, True)

        OPERATORS[name] = parser
        return fn

    return deco


def ranged(name: str, lo: int, hi: int, *, pure: bool = True) -> Callable[[Callable], Callable]:
    """Register ``fn(*values)`` taking between ``lo`` and ``hi`` expressions."""

    def deco(fn: Callable) -> Callable:
        def parser(args: Any, ps: ParseState, opname: str) -> Node:
            return _make_node(fn, compile_args(args, ps, opname, lo, hi), pure, True)

        OPERATORS[name] = parser
        return fn

    return deco


def variadic(name: str, lo: int = 0, *, pure: bool = True) -> Callable[[Callable], Callable]:
    """Register ``fn(list_of_values)`` taking any number (>= ``lo``) of expressions."""

    def deco(fn: Callable) -> Callable:
        def parser(args: Any, ps: ParseState, opname: str) -> Node:
            return _make_node(fn, compile_args(args, ps, opname, lo, None), pure, False)

        OPERATORS[name] = parser
        return fn

    return deco


def object_args(args: Any, name: str, required: Iterable[str], optional: Iterable[str] = (),
                *, code_not_object: int = 40533) -> dict:
    """Validate the object-form argument of an operator such as ``$filter``."""
    if not isinstance(args, dict):
        raise err(code_not_object, f"{name} only supports an object as its argument")
    allowed = set(required) | set(optional)
    for k in args:
        if k not in allowed:
            raise err(40535 if name != "$filter" else 28647, f"Unrecognized parameter to {name}: {k}")
    for k in required:
        if k not in args:
            raise err(40536 if name != "$filter" else 28648, f"Missing '{k}' parameter to {name}")
    return args


def describe(v: Any) -> str:
    """BSON type name for error messages."""
    return type_name(v)


# ---------------------------------------------------------------------------
# $literal, $let and $meta live here: they are part of the language itself


@register("$literal")
def _parse_literal(args: Any, ps: ParseState, name: str) -> Node:
    return const(args)


@register("$let")
def _parse_let(args: Any, ps: ParseState, name: str) -> Node:
    if not isinstance(args, dict):
        raise err(16874, "$let only supports an object as its argument")
    for k in args:
        if k not in ("vars", "in"):
            raise err(16875, f"Unrecognized parameter to $let: {k}")
    if "vars" not in args:
        raise err(16876, "Missing 'vars' parameter to $let")
    if "in" not in args:
        raise err(16877, "Missing 'in' parameter to $let")
    vars_spec = args["vars"]
    if not isinstance(vars_spec, dict):
        raise err(ErrorCode.TypeMismatch, "invalid parameter: expected an object (vars)")
    bindings = []
    for vname, vexpr in vars_spec.items():
        validate_var_name(vname)
        bindings.append((vname, compile_node(vexpr, ps)))
    body = compile_node(args["in"], ps.with_vars(vars_spec.keys()))

    def node(s: dict) -> Any:
        inner = dict(s)
        for vname, vn in bindings:
            inner[vname] = vn(s)
        return body(inner)

    return node


@register("$meta")
def _parse_meta(args: Any, ps: ParseState, name: str) -> Node:
    import random

    known = {"textScore", "randVal", "searchScore", "searchHighlights", "geoNearDistance", "geoNearPoint",
             "recordId", "indexKey", "sortKey", "searchScoreDetails", "searchSequenceToken", "vectorSearchScore",
             "score", "scoreDetails"}
    if not isinstance(args, str) or args not in known:
        raise err(17308, f"Unsupported argument to $meta: {args}")
    if args == "randVal":
        return lambda s: random.random()
    from mongolake.query.meta import MetaDoc

    def meta(s: dict) -> Any:
        d = s.get("CURRENT")
        if type(d) is not MetaDoc:
            return MISSING
        return d.meta.get(args, MISSING)

    return meta
