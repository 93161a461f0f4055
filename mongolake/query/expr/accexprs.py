"""Expression forms of accumulators (``$sum``, ``$avg``, ``$min``, ``$max``, ``$stdDevPop``,
``$stdDevSamp``, ``$median``, ``$percentile``) plus ``$rand`` and timestamp helpers.

With one argument that evaluates to an array, the operator works on the array's
elements; otherwise it works on its argument list (arrays among several
arguments are not flattened).
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable

from bson.timestamp import Timestamp

from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import (
    Node, ParseState, arg_list, compile_node, const_value, err, fixed, fold, is_const, register,
)
from mongolake.query.expr.logic import agg_compare
from mongolake.query.expr.numeric import Summer, kind, std_dev, to_float
from mongolake.query.expr.values import type_name


def _nullish(v: Any) -> bool:
    return v is None or v is MISSING


def sum_values(values: list) -> Any:
    s = Summer()
    for v in values:
        s.add(v)
    return s.result()


def avg_values(values: list) -> Any:
    s = Summer()
    for v in values:
        s.add(v)
    return s.mean()


def min_max_values(values: list, want_max: bool) -> Any:
    best = MISSING
    for v in values:
        if _nullish(v):
            continue
        if best is MISSING or (agg_compare(v, best) > 0 if want_max else agg_compare(v, best) < 0):
            best = v
    return None if best is MISSING else best


def std_dev_values(values: list, sample: bool) -> Any:
    return std_dev([v for v in values if kind(v) is not None], sample)


def percentiles(values: list, ps: list[float], method: str) -> list:
    """Percentiles of the numeric ``values`` (None each when there are none).

    "approximate" and "discrete" return the value at rank ceil(p*n) (1-based);
    "continuous" interpolates linearly between the closest ranks.
    """
    nums = sorted(to_float(v) for v in values if kind(v) is not None and not _is_nan(v))
    n = len(nums)
    out: list = []
    for p in ps:
        if n == 0:
            out.append(None)
        elif method == "continuous":
            pos = p * (n - 1)
            lo = math.floor(pos)
            hi = min(lo + 1, n - 1)
            out.append(nums[lo] + (nums[hi] - nums[lo]) * (pos - lo))
        else:
            out.append(nums[max(0, math.ceil(p * n) - 1)])
    return out


def _is_nan(v: Any) -> bool:
    f = to_float(v)
    return f != f


def validate_percentile_args(args: Any, name: str) -> tuple[Any, Any, str]:
    """(input spec, p spec or None, method) of a $percentile/$median argument object."""
    if not isinstance(args, dict):
        raise err(7436100, f"specification must be an object; found {type_name(args)}")
    allowed = ("input", "p", "method") if name == "$percentile" else ("input", "method")
    for k in args:
        if k not in allowed:
            raise err(40415, f"BSON field '{name}.{k}' is an unknown field.")
    for k in allowed:
        if k not in args:
            raise err(40414, f"BSON field '{name}.{k}' is missing but a required field")
    method = args["method"]
    if method not in ("approximate", "discrete", "continuous"):
        raise err(ErrBadValue, f"Currently only 'approximate' can be used as percentile 'method'")
    return args["input"], args.get("p"), method


ErrBadValue = 2


def parse_p(p_node: Node, s: dict, name: str = "$percentile") -> list[float]:
    p = p_node(s)
    if type(p) is not list or not p:
        raise err(7750301, f"{name} 'p' must be an array of numbers from [0.0, 1.0], but found: {p!r}")
    out = []
    for x in p:
        if kind(x) is None or not 0 <= to_float(x) <= 1:
            raise err(7750301, f"{name} 'p' must be an array of numbers from [0.0, 1.0], but found: {p!r}")
        out.append(to_float(x))
    return out


def _from_accumulator(name: str, fn: Callable[[list], Any]) -> None:
    @register(name)
    def parser(args: Any, ps: ParseState, opname: str) -> Node:
        nodes = [compile_node(a, ps) for a in arg_list(args)]
        single = len(nodes) == 1

        def node(s: dict) -> Any:
            if single:
                v = nodes[0](s)
                return fn(v if type(v) is list else [v])
            return fn([n(s) for n in nodes])

        return fold(node, nodes)


_from_accumulator("$sum", sum_values)
_from_accumulator("$avg", avg_values)
_from_accumulator("$min", lambda vs: min_max_values(vs, False))
_from_accumulator("$max", lambda vs: min_max_values(vs, True))
_from_accumulator("$stdDevPop", lambda vs: std_dev_values(vs, False))
_from_accumulator("$stdDevSamp", lambda vs: std_dev_values(vs, True))


def _percentile_parser(name: str) -> None:
    @register(name)
    def parser(args: Any, ps: ParseState, opname: str) -> Node:
        inp_spec, p_spec, method = validate_percentile_args(args, name)
        inp = compile_node(inp_spec, ps)
        p_node = compile_node(p_spec, ps) if p_spec is not None else None
        if p_node is not None and is_const(p_node):
            parse_p(p_node, {}, name)

        def node(s: dict) -> Any:
            v = inp(s)
            values = v if type(v) is list else [v]
            if p_node is None:
                return percentiles(values, [0.5], method)[0]
            return percentiles(values, parse_p(p_node, s, name), method)

        return fold(node, [inp] + ([p_node] if p_node else []))


_percentile_parser("$percentile")
_percentile_parser("$median")


@register("$rand")
def _parse_rand(args: Any, ps: ParseState, name: str) -> Node:
    if args != {} and args != []:
        raise err(3040500, "$rand does not currently accept arguments")
    return lambda s: random.random()


def _ts_part(name: str, attr: str) -> None:
    def op(v: Any) -> Any:
        if _nullish(v):
            return None
        if not isinstance(v, Timestamp):
            raise err(5687301, f"Argument to {name} must be a timestamp, but is {type_name(v)}")
        from bson.int64 import Int64
        return Int64(getattr(v, attr))
    fixed(name, 1)(op)


_ts_part("$tsSecond", "time")
_ts_part("$tsIncrement", "inc")

__all__ = ["sum_values", "avg_values", "min_max_values", "percentiles", "parse_p", "const_value"]
