"""Accumulators for ``$group``, ``$bucket``, ``$bucketAuto`` and ``$setWindowFields``.

``parse_accumulator(field, spec, opts)`` validates ``{$op: args}`` and returns
an :class:`AccSpec`.  Per group, ``spec.create(group_scope)`` makes a state
object with ``add(value)`` and ``result()``; ``spec.input(scope)`` evaluates
what one document contributes (for ``$top``-like operators a
``(sort_key, output)`` pair).
"""
from __future__ import annotations

import bisect
import math
from typing import Any, Callable

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.accexprs import parse_p, percentiles, validate_percentile_args
from mongolake.query.expr.arrays import validate_n
from mongolake.query.expr.core import Node, const, const_value, is_const
from mongolake.query.expr.logic import agg_compare
from mongolake.query.expr.numeric import Summer, kind, to_float
from mongolake.query.expr.objects import merge_objects
from mongolake.query.expr.sortspec import make_key, parse_sort_spec
from mongolake.query.expr.values import hash_key


def _nullish(v: Any) -> bool:
    return v is None or v is MISSING


# --- state objects ---------------------------------------------------------------------------------


class _Sum:
    __slots__ = ("s",)

    def __init__(self) -> None:
        self.s = Summer()

    def add(self, v: Any) -> None:
        self.s.add(v)

    def result(self) -> Any:
        return self.s.result()


class _Avg(_Sum):
    def result(self) -> Any:
        return self.s.mean()


class _MinMax:
    __slots__ = ("best", "sign")

    def __init__(self, want_max: bool):
        self.best = MISSING
        self.sign = 1 if want_max else -1

    def add(self, v: Any) -> None:
        if _nullish(v):
            return
        if self.best is MISSING or agg_compare(v, self.best) * self.sign > 0:
            self.best = v

    def result(self) -> Any:
        return None if self.best is MISSING else self.best


class _First:
    __slots__ = ("v", "seen")

    def __init__(self) -> None:
        self.v, self.seen = None, False

    def add(self, v: Any) -> None:
        if not self.seen:
            self.seen = True
            self.v = None if v is MISSING else v

    def result(self) -> Any:
        return self.v


class _Last:
    __slots__ = ("v",)

    def __init__(self) -> None:
        self.v = None

    def add(self, v: Any) -> None:
        self.v = None if v is MISSING else v

    def result(self) -> Any:
        return self.v


class _Push:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list = []

    def add(self, v: Any) -> None:
        if v is not MISSING:
            self.items.append(v)

    def result(self) -> Any:
        return self.items


class _AddToSet:
    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: dict = {}

    def add(self, v: Any) -> None:
        if v is not MISSING:
            self.items.setdefault(hash_key(v), v)

    def result(self) -> Any:
        return list(self.items.values())


class _MergeObjects:
    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out: dict = {}

    def add(self, v: Any) -> None:
        self.out = merge_objects([self.out, v])

    def result(self) -> Any:
        return self.out


class _StdDev:
    __slots__ = ("n", "mean", "m2", "sample")

    def __init__(self, sample: bool):
        self.n, self.mean, self.m2, self.sample = 0, 0.0, 0.0, sample

    def add(self, v: Any) -> None:
        if kind(v) is None:
            return
        x = to_float(v)
        self.n += 1
        d = x - self.mean
        self.mean += d / self.n
        self.m2 += d * (x - self.mean)

    def result(self) -> Any:
        if self.n == 0 or (self.sample and self.n < 2):
            return None
        return math.sqrt(max(self.m2, 0.0) / (self.n - 1 if self.sample else self.n))


class _Percentile:
    __slots__ = ("values", "ps", "method", "single")

    def __init__(self, ps: list[float], method: str, single: bool):
        self.values: list = []
        self.ps, self.method, self.single = ps, method, single

    def add(self, v: Any) -> None:
        if kind(v) is not None:
            self.values.append(v)

    def result(self) -> Any:
        r = percentiles(self.values, self.ps, self.method)
        return r[0] if self.single else r


class _FirstN:
    __slots__ = ("n", "items")

    def __init__(self, n: int):
        self.n, self.items = n, []

    def add(self, v: Any) -> None:
        if len(self.items) < self.n:
            self.items.append(None if v is MISSING else v)

    def result(self) -> Any:
        return self.items


class _LastN(_FirstN):
    def add(self, v: Any) -> None:
        self.items.append(None if v is MISSING else v)
        if len(self.items) > self.n:
            del self.items[0]


class _MinMaxN:
    """Keeps the n smallest (or largest) non-null values in BSON order."""

    __slots__ = ("n", "items", "want_max")

    def __init__(self, n: int, want_max: bool):
        self.n, self.items, self.want_max = n, [], want_max

    def add(self, v: Any) -> None:
        if _nullish(v):
            return
        key = _VKey(v, self.want_max)
        bisect.insort(self.items, key)
        if len(self.items) > self.n:
            self.items.pop()

    def result(self) -> Any:
        return [k.v for k in self.items]


class _VKey:
    __slots__ = ("v", "rev")

    def __init__(self, v: Any, rev: bool):
        self.v, self.rev = v, rev

    def __lt__(self, other: "_VKey") -> bool:
        c = agg_compare(self.v, other.v)
        return c > 0 if self.rev else c < 0


class _TopN:
    """Keeps the first n (sort_key, output) pairs by sort key; ``bottom`` keeps the last n."""

    __slots__ = ("n", "items", "bottom", "single", "seq")

    def __init__(self, n: int, bottom: bool, single: bool):
        self.n, self.items, self.bottom, self.single, self.seq = n, [], bottom, single, 0

    def add(self, pair: Any) -> None:
        key, out = pair
        self.seq += 1
        entry = (_Rev(key) if self.bottom else key, self.seq, None if out is MISSING else out)
        bisect.insort(self.items, entry, key=_EntryKey)
        if len(self.items) > self.n:
            self.items.pop()

    def result(self) -> Any:
        outs = [e[2] for e in self.items]
        if self.bottom:
            outs.reverse()
        if self.single:
            return outs[0] if outs else None
        return outs


class _Rev:
    __slots__ = ("k",)

    def __init__(self, k: Any):
        self.k = k

    def __lt__(self, other: "_Rev") -> bool:
        return other.k < self.k


class _EntryKey:
    """Order entries by sort key, then by arrival (earlier first; later first for bottom)."""

    __slots__ = ("e",)

    def __init__(self, e: tuple):
        self.e = e

    def __lt__(self, other: "_EntryKey") -> bool:
        a, b = self.e, other.e
        if a[0] < b[0]:
            return True
        if b[0] < a[0]:
            return False
        if isinstance(a[0], _Rev):
            return a[1] > b[1]
        return a[1] < b[1]


# --- specifications --------------------------------------------------------------------------------


class AccSpec:
    """A parsed accumulator: how to evaluate a document's input and create per-group state."""

    def __init__(self, name: str, field: str, input_fn: Callable[[dict], Any],
                 factory: Callable[[dict], Any], *, counts_docs: bool = False):
        self.name = name
        self.field = field
        self.input = input_fn
        self.create = factory
        #: True for {$sum: 1} / {$count: {}} (used to detect pure counts)
        self.counts_docs = counts_docs


def _n_factory(n_node: Node, name: str, make: Callable[[int], Any]) -> Callable[[dict], Any]:
    def factory(group_scope: dict) -> Any:
        return make(validate_n(n_node(group_scope), name))
    return factory


def _obj(args: Any, name: str, required: tuple, optional: tuple = ()) -> dict:
    if not isinstance(args, dict):
        raise MongoError(5787801, f"specification must be an object; found {args!r}")
    for k in args:
        if k not in required + optional:
            raise MongoError(5787901, f"Unknown argument for '{name}': {k}")
    for k in required:
        if k not in args:
            raise MongoError(5787906 if k == "n" else 5787907, f"Missing value for '{k}'")
    return args


ACCUMULATOR_NAMES = ("$sum", "$avg", "$min", "$max", "$first", "$last", "$push", "$addToSet", "$count",
                     "$mergeObjects", "$stdDevPop", "$stdDevSamp", "$top", "$bottom", "$topN", "$bottomN",
                     "$firstN", "$lastN", "$maxN", "$minN", "$median", "$percentile")


def parse_accumulator(field: str, spec: Any, opts: Any, *, stage: str = "$group") -> AccSpec:
    """Parse ``{$op: args}`` for output ``field``."""
    if not isinstance(spec, dict):
        raise MongoError(40234, f"The field '{field}' must be an accumulator object")
    if len(spec) != 1:
        raise MongoError(40238, f"The field '{field}' must specify one accumulator")
    name, args = next(iter(spec.items()))
    if name in ("$accumulator", "$function"):
        raise MongoError(ErrorCode.NotImplemented, f"{name} (server-side JavaScript) is not supported")
    if name not in ACCUMULATOR_NAMES:
        raise MongoError(15952, f"unknown group operator '{name}'")
    if isinstance(args, list) and name not in ("$count",):
        raise MongoError(40237, f"The {name} accumulator is a unary operator")
    x = opts.expr
    if name == "$count":
        if args != {}:
            raise MongoError(ErrorCode.TypeMismatch, "$count takes no arguments, i.e. $count:{}")
        return AccSpec(name, field, lambda s: 1, lambda g: _Sum(), counts_docs=True)
    simple: dict[str, Callable[[], Any]] = {
        "$sum": _Sum, "$avg": _Avg, "$min": lambda: _MinMax(False), "$max": lambda: _MinMax(True),
        "$first": _First, "$last": _Last, "$push": _Push, "$addToSet": _AddToSet,
        "$mergeObjects": _MergeObjects, "$stdDevPop": lambda: _StdDev(False), "$stdDevSamp": lambda: _StdDev(True),
    }
    if name in simple:
        node = x(args)
        make = simple[name]
        counts = name == "$sum" and is_const(node) and kind(const_value(node)) is not None and const_value(node) == 1
        return AccSpec(name, field, node, lambda g: make(), counts_docs=counts)
    if name in ("$median", "$percentile"):
        inp_spec, p_spec, method = validate_percentile_args(args, name)
        inp = x(inp_spec)
        if name == "$median":
            return AccSpec(name, field, inp, lambda g: _Percentile([0.5], method, True))
        p_node = x(p_spec)
        return AccSpec(name, field, inp, lambda g: _Percentile(parse_p(p_node, g, name), method, False))
    if name in ("$firstN", "$lastN", "$maxN", "$minN"):
        a = _obj(args, name, ("input", "n"))
        inp, n_node = x(a["input"]), x(a["n"])
        makers = {"$firstN": _FirstN, "$lastN": _LastN, "$maxN": lambda n: _MinMaxN(n, True),
                  "$minN": lambda n: _MinMaxN(n, False)}
        return AccSpec(name, field, inp, _n_factory(n_node, name, makers[name]))
    # $top, $bottom, $topN, $bottomN
    single = name in ("$top", "$bottom")
    bottom = name in ("$bottom", "$bottomN")
    a = _obj(args, name, ("sortBy", "output") + (() if single else ("n",)))
    if not isinstance(a["sortBy"], dict):
        raise MongoError(5788604, f"{name} sortBy must be an object")
    key = make_key(parse_sort_spec(a["sortBy"], what=name))
    out_node = x(a["output"])

    def pair(s: dict) -> Any:
        return key(s["CURRENT"]), out_node(s)

    if single:
        return AccSpec(name, field, pair, lambda g: _TopN(1, bottom, True))
    n_node = x(a["n"])
    return AccSpec(name, field, pair, _n_factory(n_node, name, lambda n: _TopN(n, bottom, False)))


__all__ = ["AccSpec", "parse_accumulator", "ACCUMULATOR_NAMES", "const"]
