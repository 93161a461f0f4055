"""``$bucket`` and ``$bucketAuto`` (with preferred-number granularities)."""
from __future__ import annotations

import bisect
import math
from functools import cmp_to_key
from typing import Any, Iterator

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.aggregate.accumulators import AccSpec, parse_accumulator
from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
from mongolake.query.aggregate.stages.group import parse_output_fields, run_groups, sort_rows_by_id
from mongolake.query.bsonorder import MISSING, canonical_rank
from mongolake.query.expr.core import Node, const_value, is_const
from mongolake.query.expr.logic import agg_compare
from mongolake.query.expr.numeric import kind, to_float
from mongolake.query.expr.values import type_name


def _group_by(spec: Any, code: int, stage_name: str, opts: ParseOptions) -> Node:
    if isinstance(spec, str) and spec.startswith("$"):
        return opts.expr(spec)
    if isinstance(spec, dict) and spec and str(next(iter(spec))).startswith("$"):
        return opts.expr(spec)
    raise MongoError(code, f"The {stage_name} 'groupBy' field must be defined as a $-prefixed path or an "
                           f"expression, but found: {spec!r}")


def _default_output(opts: ParseOptions) -> list[AccSpec]:
    return [parse_accumulator("count", {"$sum": 1}, opts)]


# --- $bucket ------------------------------------------------------------------------------------------


class BucketStage(Stage):
    name = "$bucket"
    blocking = True

    def __init__(self, spec: Any, group_by: Node, boundaries: list, default: Any, accs: list[AccSpec]):
        super().__init__(spec)
        self.group_by = group_by
        self.boundaries = boundaries
        self.default = default
        self.accs = accs
        self._keys = [cmp_to_key(agg_compare)(b) for b in boundaries]

    def _bucket_of(self, s: dict) -> Any:
        v = self.group_by(s)
        b = self.boundaries
        if v is not MISSING and canonical_rank(v) == canonical_rank(b[0]) and \
                agg_compare(v, b[0]) >= 0 and agg_compare(v, b[-1]) < 0:
            i = bisect.bisect_right(self._keys, cmp_to_key(agg_compare)(v)) - 1
            return b[i]
        if self.default is MISSING:
            raise MongoError(40066, "$switch could not find a matching branch for an input, and no default was "
                                    "specified.")
        return self.default

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        groups = run_groups(docs, env, self._bucket_of, self.accs, "$bucket")
        rows = []
        for gid, states in groups.values():
            out = {"_id": gid}
            for a, st in zip(self.accs, states):
                out[a.field] = st.result()
            rows.append(out)
        yield from sort_rows_by_id(rows)


@stage("$bucket")
def _parse_bucket(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(40201, f"Argument to $bucket stage must be an object, but found type: {type_name(spec)}.")
    for k in spec:
        if k not in ("groupBy", "boundaries", "default", "output"):
            raise MongoError(40197, f"Unrecognized option to $bucket: {k}.")
    if "groupBy" not in spec or "boundaries" not in spec:
        raise MongoError(40198, "$bucket requires 'groupBy' and 'boundaries' to be specified.")
    group_by = _group_by(spec["groupBy"], 40202, "$bucket", opts)
    raw = spec["boundaries"]
    if not isinstance(raw, list):
        raise MongoError(40200, f"The $bucket 'boundaries' field must be an array, but found type: "
                                f"{type_name(raw)}.")
    if len(raw) < 2:
        raise MongoError(40192, f"The $bucket 'boundaries' field must have at least 2 values, but found "
                                f"{len(raw)} value(s).")
    bounds = []
    for b in raw:
        n = opts.expr(b)
        if not is_const(n):
            raise MongoError(40191, f"The $bucket 'boundaries' field must be an array of constant values, but "
                                    f"found value: {b!r}.")
        bounds.append(const_value(n))
    for a, b in zip(bounds, bounds[1:]):
        if canonical_rank(a) != canonical_rank(b):
            raise MongoError(40193, f"All values in the the 'boundaries' option to $bucket must have the same "
                                    f"type. Found conflicting types {type_name(a)} and {type_name(b)}.")
        if agg_compare(a, b) >= 0:
            raise MongoError(40194, "The 'boundaries' option to $bucket must be sorted in ascending order, but "
                                    f"elements {a!r} and {b!r} are not in ascending order.")
    default = MISSING
    if "default" in spec:
        dn = opts.expr(spec["default"])
        if not is_const(dn):
            raise MongoError(40195, "The $bucket 'default' field must be a constant expression")
        default = const_value(dn)
        if canonical_rank(default) == canonical_rank(bounds[0]) and \
                agg_compare(default, bounds[0]) >= 0 and agg_compare(default, bounds[-1]) < 0:
            raise MongoError(40199, "The $bucket 'default' field must be less than the lowest boundary or greater "
                                    "than or equal to the highest boundary.")
    if "output" in spec:
        if not isinstance(spec["output"], dict):
            raise MongoError(40196, f"The $bucket 'output' field must be an object, but found type: "
                                    f"{type_name(spec['output'])}.")
        accs = parse_output_fields(spec["output"], opts, "$bucket", skip=())
    else:
        accs = _default_output(opts)
    return BucketStage(spec, group_by, bounds, default, accs)


# --- granularity ------------------------------------------------------------------------------------

_SERIES = {
    "R5": [10, 16, 25, 40, 63],
    "R10": [100, 125, 160, 200, 250, 315, 400, 500, 630, 800],
    "R20": [100, 112, 125, 140, 160, 180, 200, 224, 250, 280, 315, 355, 400, 450, 500, 560, 630, 710, 800, 900],
    "R40": [100, 106, 112, 118, 125, 132, 140, 150, 160, 170, 180, 190, 200, 212, 224, 236, 250, 265, 280, 300,
            315, 335, 355, 375, 400, 425, 450, 475, 500, 530, 560, 600, 630, 670, 710, 750, 800, 850, 900, 950],
    "1-2-5": [10, 20, 50],
    "E6": [10, 15, 22, 33, 47, 68],
    "E12": [10, 12, 15, 18, 22, 27, 33, 39, 47, 56, 68, 82],
    "E24": [10, 11, 12, 13, 15, 16, 18, 20, 22, 24, 27, 30, 33, 36, 39, 43, 47, 51, 56, 62, 68, 75, 82, 91],
}
_UNSUPPORTED_GRANULARITIES = {"R80", "E48", "E96", "E192"}


class Rounder:
    """Round numbers up/down to a preferred-number series (or powers of two)."""

    def __init__(self, name: str):
        self.name = name
        self.series = _SERIES.get(name)

    def _check(self, v: Any) -> float:
        if kind(v) is None:
            raise MongoError(40258, f"$bucketAuto can specify a 'granularity' with numeric boundaries only, but "
                                    f"found a value with type: {type_name(v)}")
        f = to_float(v)
        if f != f:
            raise MongoError(40259, "A granularity rounder cannot round NaN")
        if f < 0:
            raise MongoError(40260, f"A granularity rounder can only round non-negative numbers, but found {f}")
        return f

    def _candidates(self, f: float) -> list[float]:
        if self.series is None:
            e = math.floor(math.log2(f))
            return [2.0 ** k for k in range(e - 2, e + 3)]
        base = 10 ** (len(str(self.series[0])) - 1)
        e = math.floor(math.log10(f))
        out = []
        for k in range(e - 2, e + 3):
            for s in self.series:
                out.append(float(s) / base * (10.0 ** k))
        return out

    def round_up(self, v: Any) -> float:
        f = self._check(v)
        if f == 0:
            return 0.0
        return min(c for c in self._candidates(f) if c > f * (1 + 1e-12))

    def round_down(self, v: Any) -> float:
        f = self._check(v)
        if f == 0:
            return 0.0
        return max(c for c in self._candidates(f) if c < f * (1 - 1e-12))


# --- $bucketAuto ------------------------------------------------------------------------------------


class BucketAutoStage(Stage):
    name = "$bucketAuto"
    blocking = True

    def __init__(self, spec: Any, group_by: Node, buckets: int, accs: list[AccSpec], rounder: Rounder | None):
        super().__init__(spec)
        self.group_by = group_by
        self.n_buckets = buckets
        self.accs = accs
        self.rounder = rounder

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        budget = env.budget("$bucketAuto")
        fn = env.evaluator(self.group_by)
        entries = []
        for d in docs:
            v = fn(d)
            if v is MISSING:
                v = None
            if self.rounder is not None:
                self.rounder._check(v)
            entries.append((v, d))
            budget.add(d)
        if not entries:
            return
        entries.sort(key=cmp_to_key(lambda a, b: agg_compare(a[0], b[0])))
        n = len(entries)
        approx = max(1, int(math.floor(n / self.n_buckets + 0.5)))
        buckets: list[list] = []  # [min, max, [docs]]
        i = 0
        for b in range(self.n_buckets):
            if i >= n:
                break
            first = entries[i]
            cur = [first[0], first[0], [first[1]]]
            i += 1
            if b == self.n_buckets - 1:
                while i < n:
                    cur[1] = entries[i][0]
                    cur[2].append(entries[i][1])
                    i += 1
            else:
                take = 0
                while take < approx - 1 and i < n:
                    cur[1] = entries[i][0]
                    cur[2].append(entries[i][1])
                    i += 1
                    take += 1
                if self.rounder is not None:
                    boundary = self.rounder.round_up(cur[1])
                    while i < n and agg_compare(boundary, entries[i][0]) > 0:
                        cur[1] = entries[i][0]
                        cur[2].append(entries[i][1])
                        i += 1
                    if i < n:
                        cur[1] = boundary
                else:
                    while i < n and agg_compare(cur[1], entries[i][0]) == 0:
                        cur[2].append(entries[i][1])
                        i += 1
            if buckets:
                if self.rounder is not None:
                    cur[0] = buckets[-1][1]
                else:
                    buckets[-1][1] = cur[0]
            buckets.append(cur)
        if buckets and self.rounder is not None:
            buckets[0][0] = self.rounder.round_down(buckets[0][0])
            buckets[-1][1] = self.rounder.round_up(buckets[-1][1])
        s = dict(env.variables)
        for lo, hi, members in buckets:
            gid = {"min": lo, "max": hi}
            gscope = dict(env.variables)
            gscope["ROOT"] = gscope["CURRENT"] = gid
            states = [a.create(gscope) for a in self.accs]
            for d in members:
                s["ROOT"] = s["CURRENT"] = d
                for a, st in zip(self.accs, states):
                    st.add(a.input(s))
            out = {"_id": gid}
            for a, st in zip(self.accs, states):
                out[a.field] = st.result()
            yield out


@stage("$bucketAuto")
def _parse_bucket_auto(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(40240, f"The argument to $bucketAuto must be an object, but found type: {type_name(spec)}.")
    for k in spec:
        if k not in ("groupBy", "buckets", "output", "granularity"):
            raise MongoError(40245, f"Unrecognized option to $bucketAuto: {k}.")
    if "groupBy" not in spec or "buckets" not in spec:
        raise MongoError(40246, "$bucketAuto requires 'groupBy' and 'buckets' to be specified")
    group_by = _group_by(spec["groupBy"], 40239, "$bucketAuto", opts)
    b = spec["buckets"]
    if kind(b) is None or to_float(b) != int(to_float(b)) or not -2 ** 31 <= to_float(b) < 2 ** 31:
        raise MongoError(40241, f"The $bucketAuto 'buckets' field must be a numeric value, but found type: "
                                f"{type_name(b)}.")
    if int(to_float(b)) <= 0:
        raise MongoError(40243, f"The $bucketAuto 'buckets' field must be greater than 0, but found: {b}.")
    rounder = None
    if "granularity" in spec:
        g = spec["granularity"]
        if not isinstance(g, str):
            raise MongoError(40261, f"The $bucketAuto 'granularity' field must be a string, but found type: "
                                    f"{type_name(g)}.")
        if g in _UNSUPPORTED_GRANULARITIES:
            raise MongoError(ErrorCode.NotImplemented, f"granularity '{g}' is not supported by MongoLake")
        if g not in _SERIES and g != "POWERSOF2":
            raise MongoError(40257, f"Unknown rounding granularity '{g}'")
        rounder = Rounder(g)
    if "output" in spec:
        if not isinstance(spec["output"], dict):
            raise MongoError(40244, f"The $bucketAuto 'output' field must be an object, but found type: "
                                    f"{type_name(spec['output'])}.")
        accs = parse_output_fields(spec["output"], opts, "$bucketAuto", skip=())
    else:
        accs = _default_output(opts)
    return BucketAutoStage(spec, group_by, int(to_float(b)), accs, rounder)
