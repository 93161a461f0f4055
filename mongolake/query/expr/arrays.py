"""Array expression operators (higher-order ones live in :mod:`.arrays_hof`)."""
from __future__ import annotations

from typing import Any

from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import (
    Node, ParseState, compile_node, err, fixed, fold, ranged, register, variadic,
)
from mongolake.query.expr.logic import agg_compare
from mongolake.query.expr.numeric import as_int, as_int32, kind
from mongolake.query.expr.values import INT32_MAX, INT32_MIN, type_name


def _nullish(v: Any) -> bool:
    return v is None or v is MISSING


@fixed("$size", 1)
def op_size(v: Any) -> int:
    if type(v) is not list:
        raise err(17124, f"The argument to $size must be an array. Type of argument was: {type_name(v)}")
    return len(v)


@fixed("$isArray", 1)
def op_is_array(v: Any) -> bool:
    return type(v) is list


@fixed("$arrayElemAt", 2)
def op_array_elem_at(arr: Any, idx: Any) -> Any:
    if _nullish(arr) or _nullish(idx):
        return None
    if type(arr) is not list:
        raise err(28689, f"$arrayElemAt's first argument must be an array, but is {type_name(arr)}")
    if kind(idx) is None:
        raise err(28690, f"$arrayElemAt's second argument must be a numeric value, but is {type_name(idx)}")
    i = as_int32(idx)
    if i is None:
        raise err(28691, f"$arrayElemAt's second argument must be representable as a 32-bit integer: {idx}")
    if i < 0:
        i += len(arr)
        if i < 0:
            return MISSING
    return arr[i] if i < len(arr) else MISSING


def _first_last(name: str, pick: int) -> None:
    def op(arr: Any) -> Any:
        if _nullish(arr):
            return None
        if type(arr) is not list:
            raise err(28689, f"{name}'s argument must be an array, but is {type_name(arr)}")
        return arr[pick] if arr else MISSING
    fixed(name, 1)(op)


_first_last("$first", 0)
_first_last("$last", -1)


@fixed("$in", 2)
def op_in(x: Any, arr: Any) -> bool:
    if type(arr) is not list:
        raise err(40081, f"$in requires an array as a second argument, found: {type_name(arr)}")
    return any(agg_compare(x, el) == 0 for el in arr)


@ranged("$slice", 2, 3)
def op_slice(arr: Any, a: Any, b: Any = MISSING) -> Any:
    if _nullish(arr) or _nullish(a) or (b is not MISSING and b is None):
        return None
    if type(arr) is not list:
        raise err(28724, f"First argument to $slice must be an array, but is of type: {type_name(arr)}")
    if kind(a) is None:
        raise err(28725, f"Second argument to $slice must be a numeric value, but is of type: {type_name(a)}")
    ia = as_int32(a)
    if ia is None:
        raise err(28726, f"Second argument to $slice can't be represented as a 32-bit integer: {a}")
    n = len(arr)
    if b is MISSING:
        return arr[:ia] if ia >= 0 else arr[max(0, n + ia):]
    if kind(b) is None:
        raise err(28727, f"Third argument to $slice must be numeric, but is of type: {type_name(b)}")
    ib = as_int32(b)
    if ib is None:
        raise err(28728, f"Third argument to $slice can't be represented as a 32-bit integer: {b}")
    if ib <= 0:
        raise err(28729, f"Third argument to $slice must be positive: {b}")
    start = ia if ia >= 0 else max(0, n + ia)
    return arr[start:start + ib]


@variadic("$concatArrays")
def op_concat_arrays(values: list) -> Any:
    out: list = []
    for v in values:
        if _nullish(v):
            return None
        if type(v) is not list:
            raise err(28664, f"$concatArrays only supports arrays, not {type_name(v)}")
        out.extend(v)
    return out


@ranged("$range", 2, 3)
def op_range(start: Any, end: Any, step: Any = 1) -> list:
    vals = []
    for v, what, c1, c2 in ((start, "starting value", 34443, 34444), (end, "ending value", 34445, 34446),
                            (step, "step value", 34447, 34448)):
        if kind(v) is None:
            raise err(c1, f"$range requires a numeric {what}, found value of type: {type_name(v)}")
        i = as_int32(v)
        if i is None:
            raise err(c2, f"$range requires a {what} that can be represented as a 32-bit integer, found "
                          f"value: {v}")
        vals.append(i)
    s, e, st = vals
    if st == 0:
        raise err(34449, "$range requires a non-zero step value")
    return list(range(s, e, st))


@fixed("$reverseArray", 1)
def op_reverse_array(v: Any) -> Any:
    if _nullish(v):
        return None
    if type(v) is not list:
        raise err(34435, f"The argument to $reverseArray must be an array, but was of type: {type_name(v)}")
    return v[::-1]


@ranged("$indexOfArray", 2, 4)
def op_index_of_array(arr: Any, x: Any, start: Any = MISSING, end: Any = MISSING) -> Any:
    if _nullish(arr):
        return None
    if type(arr) is not list:
        raise err(40090, f"$indexOfArray requires an array as a first argument, found: {type_name(arr)}")
    lo, hi = 0, len(arr)
    for label, v in (("starting", start), ("ending", end)):
        if v is MISSING:
            continue
        i = as_int(v) if kind(v) is not None else None
        if i is None:
            raise err(40096, f"$indexOfArray requires an integral {label} index, found a value of type: "
                             f"{type_name(v)}, with value: {v}")
        if i < 0:
            raise err(40097, f"$indexOfArray requires a nonnegative {label} index, found: {i}")
        if label == "starting":
            lo = i
        else:
            hi = min(hi, i)
    for i in range(lo, hi):
        if agg_compare(arr[i], x) == 0:
            return i
    return -1


@register("$zip")
def _parse_zip(args: Any, ps: ParseState, name: str) -> Node:
    if not isinstance(args, dict):
        raise err(34460, f"$zip only supports an object as an argument, found {type_name(args)}")
    for k in args:
        if k not in ("inputs", "useLongestLength", "defaults"):
            raise err(34464, f"$zip found an unknown argument: {k}")
    inputs = args.get("inputs")
    if not isinstance(inputs, list):
        raise err(34461, "inputs must be an array of expressions, found " + type_name(inputs))
    if not inputs:
        raise err(34465, "$zip requires at least one input array")
    longest = args.get("useLongestLength", False)
    if not isinstance(longest, bool):
        raise err(34463, "useLongestLength must be a bool, found " + type_name(longest))
    defaults_spec = args.get("defaults", MISSING)
    if defaults_spec is not MISSING:
        if not isinstance(defaults_spec, list):
            raise err(34462, "defaults must be an array of expressions, found " + type_name(defaults_spec))
        if not longest:
            raise err(34466, "cannot specify defaults unless useLongestLength is true")
        if len(defaults_spec) != len(inputs):
            raise err(34467, "defaults and inputs must have the same length")
    in_nodes = [compile_node(x, ps) for x in inputs]
    def_nodes = [compile_node(x, ps) for x in defaults_spec] if defaults_spec is not MISSING else []

    def node(s: dict) -> Any:
        arrays = []
        for n in in_nodes:
            v = n(s)
            if _nullish(v):
                return None
            if type(v) is not list:
                raise err(34468, f"$zip found a non-array expression in input: {v!r}")
            arrays.append(v)
        defaults = [d(s) for d in def_nodes] if def_nodes else [None] * len(arrays)
        defaults = [None if d is MISSING else d for d in defaults]
        n_out = max(map(len, arrays)) if longest else min(map(len, arrays))
        return [[a[i] if i < len(a) else defaults[j] for j, a in enumerate(arrays)] for i in range(n_out)]

    return fold(node, in_nodes + def_nodes)


@fixed("$arrayToObject", 1)
def op_array_to_object(arr: Any) -> Any:
    if _nullish(arr):
        return None
    if type(arr) is not list:
        raise err(40386, f"$arrayToObject requires an array input, found: {type_name(arr)}")
    out: dict = {}
    fmt = None
    for el in arr:
        if type(el) is list:
            if fmt == "object":
                raise err(40391, "$arrayToObject requires a consistent input format. Elements must all be arrays "
                                 "or all be objects. Object was detected, now found: array")
            fmt = "array"
            if len(el) != 2:
                raise err(40397, f"$arrayToObject requires an array of size 2 arrays,found array of size: "
                                 f"{len(el)}")
            k, v = el
            if type(k) is not str:
                raise err(40395, "$arrayToObject requires an array of key-value pairs, where the key must be "
                                 f"of type string. Found key type: {type_name(k)}")
        elif type(el) is dict:
            if fmt == "array":
                raise err(40391, "$arrayToObject requires a consistent input format. Elements must all be arrays "
                                 "or all be objects. Array was detected, now found: object")
            fmt = "object"
            if len(el) != 2:
                raise err(40392, "$arrayToObject requires an object keys of 'k' and 'v'. Found incorrect number "
                                 f"of keys:{len(el)}")
            if "k" not in el or "v" not in el:
                raise err(40393, "$arrayToObject requires an object with keys 'k' and 'v'. Missing either or "
                                 "both keys from: " + repr(el))
            k, v = el["k"], el["v"]
            if type(k) is not str:
                raise err(40394, "$arrayToObject requires an object with keys 'k' and 'v', where the value of "
                                 f"'k' must be of type string. Found type: {type_name(k)}")
        else:
            raise err(40398, f"Unrecognised input type format for $arrayToObject: {type_name(el)}")
        if "\0" in k:
            raise err(4940400, "Key field cannot contain an embedded null byte")
        out[k] = v
    return out


@fixed("$objectToArray", 1)
def op_object_to_array(obj: Any) -> Any:
    if _nullish(obj):
        return None
    if type(obj) is not dict:
        raise err(40390, f"$objectToArray requires a document input, found: {type_name(obj)}")
    return [{"k": k, "v": v} for k, v in obj.items()]


# --- $firstN / $lastN / $maxN / $minN (array forms) ---------------------------------


def _n_array_parser(name: str) -> None:
    from mongolake.query.bsonorder import sort_key

    @register(name)
    def parser(args: Any, ps: ParseState, opname: str) -> Node:
        if not isinstance(args, dict):
            raise err(5787801, f"specification must be an object; found {type_name(args)}")
        for k in args:
            if k not in ("n", "input"):
                raise err(5787901, f"Unknown argument for '{name}': {k}")
        if "n" not in args:
            raise err(5787906, f"Missing value for 'n'")
        if "input" not in args:
            raise err(5787907, f"Missing value for 'input'")
        n_node, in_node = compile_node(args["n"], ps), compile_node(args["input"], ps)

        def node(s: dict) -> Any:
            n = validate_n(n_node(s), name)
            arr = in_node(s)
            if _nullish(arr):
                return None
            if type(arr) is not list:
                raise err(5788200, f"Input to '{name}' must be an array; found {type_name(arr)}")
            if name == "$firstN":
                return arr[:n]
            if name == "$lastN":
                return arr[-n:] if n < len(arr) else list(arr)
            vals = [v for v in arr if not _nullish(v)]
            vals.sort(key=sort_key, reverse=(name == "$maxN"))
            return vals[:n]

        return fold(node, [n_node, in_node])


def validate_n(n: Any, name: str) -> int:
    """The ``n`` of the N-family operators: a positive integer."""
    if kind(n) is None:
        raise err(5787902, f"Value for 'n' must be of integral type, but found {n!r}")
    i = as_int(n)
    if i is None:
        raise err(5787903, f"Value for 'n' must be of integral type, but found {n!r}")
    if i <= 0:
        raise err(5787908, "'n' must be greater than 0, found " + str(i))
    return i


for _n in ("$firstN", "$lastN", "$maxN", "$minN"):
    _n_array_parser(_n)

__all__ = ["validate_n", "INT32_MAX", "INT32_MIN"]
