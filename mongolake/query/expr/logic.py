"""Comparison, boolean and conditional operators, and :func:`agg_compare`."""
from __future__ import annotations

from typing import Any

from bson.min_key import MinKey

from mongolake.query.bsonorder import MISSING, compare
from mongolake.query.expr.core import (
    Node, ParseState, compile_args, compile_node, const, err, fixed, fold, is_const, register,
)
from mongolake.query.expr.values import truthy


def agg_compare(a: Any, b: Any) -> int:
    """BSON order as aggregation sees it: a missing value sorts below null (above MinKey)."""
    if a is MISSING or b is MISSING:
        if a is b:
            return 0
        other = b if a is MISSING else a
        sign = -1 if a is MISSING else 1
        if isinstance(other, MinKey):
            return -sign
        return sign
    return compare(a, b)


@fixed("$cmp", 2)
def op_cmp(a: Any, b: Any) -> int:
    return agg_compare(a, b)


fixed("$eq", 2)(lambda a, b: agg_compare(a, b) == 0)
fixed("$ne", 2)(lambda a, b: agg_compare(a, b) != 0)
fixed("$gt", 2)(lambda a, b: agg_compare(a, b) > 0)
fixed("$gte", 2)(lambda a, b: agg_compare(a, b) >= 0)
fixed("$lt", 2)(lambda a, b: agg_compare(a, b) < 0)
fixed("$lte", 2)(lambda a, b: agg_compare(a, b) <= 0)


@register("$and")
def _parse_and(args: Any, ps: ParseState, name: str) -> Node:
    nodes = compile_args(args, ps, name, 0, None)

    def node(s: dict) -> bool:
        for n in nodes:
            if not truthy(n(s)):
                return False
        return True

    return fold(node, nodes)


@register("$or")
def _parse_or(args: Any, ps: ParseState, name: str) -> Node:
    nodes = compile_args(args, ps, name, 0, None)

    def node(s: dict) -> bool:
        for n in nodes:
            if truthy(n(s)):
                return True
        return False

    return fold(node, nodes)


fixed("$not", 1)(lambda v: not truthy(v))


def _cond_node(c: Node, t: Node, e: Node) -> Node:
    if is_const(c):
        return t if truthy(c({})) else e

    def node(s: dict) -> Any:
        return t(s) if truthy(c(s)) else e(s)

    return node


@register("$cond")
def _parse_cond(args: Any, ps: ParseState, name: str) -> Node:
    if isinstance(args, dict):
        for k in args:
            if k not in ("if", "then", "else"):
                raise err(17083, f"Unrecognized parameter to $cond: {k}")
        for k, code in (("if", 17080), ("then", 17081), ("else", 17082)):
            if k not in args:
                raise err(code, f"Missing '{k}' parameter to $cond")
        return _cond_node(compile_node(args["if"], ps), compile_node(args["then"], ps),
                          compile_node(args["else"], ps))
    c, t, e = compile_args(args, ps, name, 3, 3)
    return _cond_node(c, t, e)


@register("$ifNull")
def _parse_ifnull(args: Any, ps: ParseState, name: str) -> Node:
    nodes = compile_args(args, ps, name, 2, None)
    *heads, last = nodes

    def node(s: dict) -> Any:
        for n in heads:
            v = n(s)
            if v is not None and v is not MISSING:
                return v
        return last(s)

    return fold(node, nodes)


@register("$switch")
def _parse_switch(args: Any, ps: ParseState, name: str) -> Node:
    if not isinstance(args, dict):
        raise err(40060, "$switch requires an object as an argument, found: " + type(args).__name__)
    branches: list[tuple[Node, Node]] = []
    default: Node | None = None
    for k, v in args.items():
        if k == "branches":
            if not isinstance(v, list):
                raise err(40061, "$switch expected an array for 'branches'")
            for b in v:
                if not isinstance(b, dict):
                    raise err(40062, "$switch expected each branch to be an object")
                for bk in b:
                    if bk not in ("case", "then"):
                        raise err(40063, f"$switch found an unknown argument to a branch: {bk}")
                if "case" not in b:
                    raise err(40064, "$switch requires each branch have a 'case' expression")
                if "then" not in b:
                    raise err(40065, "$switch requires each branch have a 'then' expression.")
                branches.append((compile_node(b["case"], ps), compile_node(b["then"], ps)))
        elif k == "default":
            default = compile_node(v, ps)
        else:
            raise err(40067, f"$switch found an unknown argument: {k}")
    if not branches:
        raise err(40068, "$switch requires at least one branch.")

    def node(s: dict) -> Any:
        for c, t in branches:
            if truthy(c(s)):
                return t(s)
        if default is None:
            raise err(40066, "$switch could not find a matching branch for an input, and no default was "
                             "specified.")
        return default(s)

    return node


__all__ = ["agg_compare", "const"]
