"""Higher-order array operators: ``$filter``, ``$map``, ``$reduce`` and ``$sortArray``."""
from __future__ import annotations

from typing import Any

from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import Node, ParseState, compile_node, err, register, validate_var_name
from mongolake.query.expr.numeric import as_int32, kind
from mongolake.query.expr.sortspec import compile_sort_spec, parse_direction, value_key
from mongolake.query.expr.values import truthy, type_name


def _nullish(v: Any) -> bool:
    return v is None or v is MISSING


def _check_keys(args: Any, name: str, allowed: tuple, required: tuple, codes: tuple[int, int, int]) -> dict:
    if not isinstance(args, dict):
        raise err(codes[0], f"{name} only supports an object as its argument")
    for k in args:
        if k not in allowed:
            raise err(codes[1], f"Unrecognized parameter to {name}: {k}")
    for k in required:
        if k not in args:
            raise err(codes[2], f"Missing '{k}' parameter to {name}")
    return args


def _as_name(args: dict, default: str = "this") -> str:
    name = args.get("as", default)
    if not isinstance(name, str):
        raise err(28649 if "cond" in args else 16866, "'as' must be a string")
    validate_var_name(name)
    return name


@register("$filter")
def _parse_filter(args: Any, ps: ParseState, name: str) -> Node:
    args = _check_keys(args, "$filter", ("input", "as", "cond", "limit"), ("input", "cond"),
                       (28646, 28647, 28648))
    var = _as_name(args)
    inp = compile_node(args["input"], ps)
    cond = compile_node(args["cond"], ps.with_vars([var]))
    limit = compile_node(args["limit"], ps) if "limit" in args else None

    def node(s: dict) -> Any:
        arr = inp(s)
        if _nullish(arr):
            return None
        if type(arr) is not list:
            raise err(28651, f"input to $filter must be an array not {type_name(arr)}")
        lim = None
        if limit is not None:
            lv = limit(s)
            if not _nullish(lv):
                if kind(lv) is None or as_int32(lv) is None:
                    raise err(327392, "$filter: limit must be represented as a 32-bit integral value: " + str(lv))
                lim = as_int32(lv)
                if lim < 1:
                    raise err(327391, f"$filter: limit must be greater than 0: {lim}")
        inner = dict(s)
        out = []
        for el in arr:
            inner[var] = el
            if truthy(cond(inner)):
                out.append(el)
                if lim is not None and len(out) >= lim:
                    break
        return out

    return node


@register("$map")
def _parse_map(args: Any, ps: ParseState, name: str) -> Node:
    if isinstance(args, dict) and "input" not in args:
        raise err(16880, "Missing 'input' parameter to $map")
    args = _check_keys(args, "$map", ("input", "as", "in"), ("input", "in"), (16878, 16879, 16882))
    var = _as_name(args)
    inp = compile_node(args["input"], ps)
    body = compile_node(args["in"], ps.with_vars([var]))

    def node(s: dict) -> Any:
        arr = inp(s)
        if _nullish(arr):
            return None
        if type(arr) is not list:
            raise err(16883, f"input to $map must be an array not {type_name(arr)}")
        inner = dict(s)
        out = []
        for el in arr:
            inner[var] = el
            v = body(inner)
            out.append(None if v is MISSING else v)
        return out

    return node


@register("$reduce")
def _parse_reduce(args: Any, ps: ParseState, name: str) -> Node:
    args = _check_keys(args, "$reduce", ("input", "initialValue", "in"), ("input", "initialValue", "in"),
                       (40075, 40076, 40079))
    inp = compile_node(args["input"], ps)
    init = compile_node(args["initialValue"], ps)
    body = compile_node(args["in"], ps.with_vars(["this", "value"]))

    def node(s: dict) -> Any:
        arr = inp(s)
        if _nullish(arr):
            return None
        if type(arr) is not list:
            raise err(40080, f"$reduce requires that 'input' be an array, found: {type_name(arr)}")
        acc = init(s)
        inner = dict(s)
        for el in arr:
            inner["this"] = el
            inner["value"] = acc
            acc = body(inner)
        return acc

    return node


@register("$sortArray")
def _parse_sort_array(args: Any, ps: ParseState, name: str) -> Node:
    if not isinstance(args, dict):
        raise err(2942500, f"$sortArray requires an object as an argument, found: {type_name(args)}")
    for k in args:
        if k not in ("input", "sortBy"):
            raise err(2942501, f"$sortArray found an unknown argument: {k}")
    if "input" not in args:
        raise err(2942502, "$sortArray requires 'input' to be specified")
    if "sortBy" not in args:
        raise err(2942503, "$sortArray requires 'sortBy' to be specified")
    inp = compile_node(args["input"], ps)
    sort_by = args["sortBy"]
    if isinstance(sort_by, dict):
        key = compile_sort_spec(sort_by, what="$sortArray")
        reverse = False
    else:
        d = parse_direction(sort_by, code=2942505, allow_meta=False)
        key = value_key(d == -1)
        reverse = False

    def node(s: dict) -> Any:
        arr = inp(s)
        if _nullish(arr):
            return None
        if type(arr) is not list:
            raise err(2942504, f"The input argument to $sortArray must be an array, but was of type: "
                               f"{type_name(arr)}")
        return sorted(arr, key=key, reverse=reverse)

    return node
