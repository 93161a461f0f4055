"""Window functions of ``$setWindowFields``: frames and per-partition evaluation.

A :class:`WindowFunc` computes one output value per document of a sorted
partition.  Accumulator functions (``$sum``, ``$avg``, ``$push`` ...) run over
a frame — ``documents: [lo, hi]`` (positions relative to the current document)
or ``range: [lo, hi]`` (values of the single sortBy field, with an optional
time ``unit``); the default frame is the whole partition.  Running frames
(``[unbounded, current]``) are computed incrementally, other frames by
re-accumulating each frame.
"""
from __future__ import annotations

import bisect
from typing import Any

from mongolake.errors import MongoError
from mongolake.query.aggregate.accumulators import AccSpec, parse_accumulator
from mongolake.query.bsonorder import MISSING, date_ms
from mongolake.query.expr.datecore import UNITS, UNIT_MS
from mongolake.query.expr.numeric import as_int64, kind, to_float
from mongolake.query.expr.values import is_date, type_name

UNBOUNDED = "unbounded"
CURRENT = "current"
RANK_FUNCS = ("$rank", "$denseRank", "$documentNumber")
SPECIAL_FUNCS = RANK_FUNCS + ("$shift", "$locf", "$linearFill", "$expMovingAvg", "$derivative", "$integral",
                              "$covariancePop", "$covarianceSamp")


def _nullish(v: Any) -> bool:
    return v is None or v is MISSING


class Frame:
    """``kind`` is "documents" or "range"; bounds are ints/floats, "unbounded" or "current"."""

    def __init__(self, kind_: str, lo: Any, hi: Any, unit: str | None = None):
        self.kind, self.lo, self.hi, self.unit = kind_, lo, hi, unit

    @property
    def whole(self) -> bool:
        return self.lo == UNBOUNDED and self.hi == UNBOUNDED

    @property
    def running(self) -> bool:
        return self.kind == "documents" and self.lo == UNBOUNDED and self.hi == CURRENT


def parse_frame(spec: Any) -> Frame | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise MongoError(ErrBadValue, "'window' field must be an object")
    for k in spec:
        if k not in ("documents", "range", "unit"):
            raise MongoError(ErrBadValue, f"'window' has an invalid parameter: {k}")
    if ("documents" in spec) == ("range" in spec):
        raise MongoError(ErrBadValue, "'window' field must specify exactly one of 'documents' or 'range'")
    kind_ = "documents" if "documents" in spec else "range"
    bounds = spec[kind_]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise MongoError(ErrBadValue, f"Window bounds must be a 2-element array: {kind_}: {bounds!r}")
    unit = spec.get("unit")
    if unit is not None:
        if kind_ != "range":
            raise MongoError(5397904, "'unit' is only allowed with a range-based window")
        if unit not in UNITS:
            raise MongoError(ErrBadValue, f"unknown time unit value: {unit}")
    out = []
    for b in bounds:
        if b in (UNBOUNDED, CURRENT):
            out.append(b)
        elif kind_ == "documents":
            i = as_int64(b) if kind(b) is not None else None
            if i is None:
                raise MongoError(ErrBadValue, "Numeric document-based bounds must be an integer")
            out.append(i)
        else:
            if kind(b) is None:
                raise MongoError(ErrBadValue, f"Range-based bounds expression must be a number, got {type_name(b)}")
            if unit is not None and as_int64(b) is None:
                raise MongoError(ErrBadValue, "With 'unit', range-based bounds must be an integer")
            out.append(to_float(b) if unit is None else as_int64(b))
    lo, hi = out
    if lo != UNBOUNDED and hi != UNBOUNDED:
        lv = 0 if lo == CURRENT else lo
        hv = 0 if hi == CURRENT else hi
        if lv > hv:
            raise MongoError(5339900, "Lower bound must not exceed upper bound")
    return Frame(kind_, lo, hi, unit)


ErrBadValue = 2


class WindowFunc:
    """One ``output`` entry of ``$setWindowFields``."""

    def __init__(self, field: str, name: str, args: Any, frame: Frame | None, opts: Any, sort_fields: list):
        self.field = field
        self.name = name
        self.frame = frame
        self.acc: AccSpec | None = None
        self.args = args
        x = opts.expr
        if name in RANK_FUNCS:
            if args != {}:
                raise MongoError(5371603, f"{name} takes no arguments, i.e. {name}: {{}}")
            if frame is not None:
                raise MongoError(5371601, f"Rank style window functions take no other arguments")
            if len(sort_fields) != 1:
                raise MongoError(5371602, f"{name} must be specified with a top level sortBy expression with exactly "
                                          "one element")
        elif name == "$shift":
            if not isinstance(args, dict) or "output" not in args or "by" not in args:
                raise MongoError(ErrBadValue, "$shift requires 'output' and 'by'")
            if frame is not None:
                raise MongoError(ErrBadValue, "$shift does not accept a 'window' field")
            if not sort_fields:
                raise MongoError(5313203, "$shift requires a sortBy")
            by = args["by"]
            if as_int64(by) is None or kind(by) is None:
                raise MongoError(ErrBadValue, "'$shift:by' field must be an integer, but found " + repr(by))
            self.by = as_int64(by)
            self.output = x(args["output"])
            d = x(args.get("default", None))
            if not getattr(d, "is_const", False):
                raise MongoError(ErrBadValue, "'$shift:default' expression must yield a constant value.")
            self.default = d({})
        elif name in ("$locf", "$linearFill"):
            if frame is not None:
                raise MongoError(ErrBadValue, f"{name} does not accept a 'window' field")
            if name == "$linearFill" and len(sort_fields) != 1:
                raise MongoError(605001, "$linearFill requires a single sortBy field")
            self.input = x(args)
        elif name == "$expMovingAvg":
            if not isinstance(args, dict) or "input" not in args or (("N" in args) == ("alpha" in args)):
                raise MongoError(ErrBadValue, "$expMovingAvg requires 'input' and exactly one of 'N' or 'alpha'")
            if not sort_fields:
                raise MongoError(ErrBadValue, "$expMovingAvg requires an explicit 'sortBy'")
            self.input = x(args["input"])
            if "N" in args:
                n = as_int64(args["N"]) if kind(args["N"]) is not None else None
                if n is None or n <= 0:
                    raise MongoError(ErrBadValue, "'N' field must be an integer greater than zero")
                self.alpha = 2.0 / (n + 1)
            else:
                a = args["alpha"]
                if kind(a) is None or not 0 < to_float(a) < 1:
                    raise MongoError(ErrBadValue, "'alpha' must be between 0 and 1 (exclusive)")
                self.alpha = to_float(a)
        elif name in ("$derivative", "$integral"):
            if not isinstance(args, dict) or "input" not in args:
                raise MongoError(ErrBadValue, f"{name} requires an 'input' expression")
            if len(sort_fields) != 1:
                raise MongoError(ErrBadValue, f"{name} requires a sortBy with exactly one field")
            if name == "$derivative" and frame is None:
                raise MongoError(5624901, "$derivative requires explicit window bounds")
            self.input = x(args["input"])
            unit = args.get("unit")
            if unit is not None and unit not in UNIT_MS:
                raise MongoError(ErrBadValue, f"unknown time unit value: {unit}")
            self.unit = unit
        elif name in ("$covariancePop", "$covarianceSamp"):
            if not isinstance(args, list) or len(args) != 2:
                raise MongoError(ErrBadValue, f"{name} requires an array of two expressions")
            self.pair = (x(args[0]), x(args[1]))
        else:
            self.acc = parse_accumulator(field, {name: args}, opts, stage="$setWindowFields")

    # -- evaluation ----------------------------------------------------------------------------

    def compute(self, docs: list[dict], scopes: list[dict], keys: list, sort_vals: list, env: Any) -> list:
        n = len(docs)
        name = self.name
        if name == "$documentNumber":
            return list(range(1, n + 1))
        if name in ("$rank", "$denseRank"):
            out, rank, dense = [], 0, 0
            for i in range(n):
                if i == 0 or keys[i - 1] < keys[i] or keys[i] < keys[i - 1]:
                    rank = i + 1
                    dense += 1
                out.append(rank if name == "$rank" else dense)
            return out
        if name == "$shift":
            res = []
            for i in range(n):
                j = i + self.by
                if 0 <= j < n:
                    v = self.output(scopes[j])
                    res.append(None if v is MISSING else v)
                else:
                    res.append(self.default)
            return res
        if name == "$locf":
            res, last = [], None
            for s in scopes:
                v = self.input(s)
                if not _nullish(v):
                    last = v
                res.append(last)
            return res
        if name == "$linearFill":
            return _linear_fill([self.input(s) for s in scopes], sort_vals)
        if name == "$expMovingAvg":
            res, ema = [], None
            for s in scopes:
                v = self.input(s)
                if kind(v) is None:
                    res.append(None)
                    continue
                f = to_float(v)
                ema = f if ema is None else self.alpha * f + (1 - self.alpha) * ema
                res.append(ema)
            return res
        if self.acc is not None and self.frame is not None and self.frame.running:
            return self._accumulate(scopes, [], env)
        frames = self._frames(n, sort_vals)
        if name in ("$derivative", "$integral"):
            ys = [self.input(s) for s in scopes]
            xs = [self._x(v) for v in sort_vals]
            return [_derivative(xs, ys, a, b) if name == "$derivative" else _integral(xs, ys, a, b)
                    for a, b in frames]
        if name in ("$covariancePop", "$covarianceSamp"):
            pairs = [(self.pair[0](s), self.pair[1](s)) for s in scopes]
            return [_covariance(pairs[a:b], name == "$covarianceSamp") for a, b in frames]
        return self._accumulate(scopes, frames, env)

    def _x(self, v: Any) -> float | None:
        if is_date(v):
            ms = date_ms(v)
            return ms / UNIT_MS[self.unit] if self.unit else float(ms)
        if kind(v) is not None:
            if self.unit:
                raise MongoError(5624900, f"{self.name} with 'unit' expects the sortBy field to be a Date")
            return to_float(v)
        return None

    def _frames(self, n: int, sort_vals: list) -> list[tuple[int, int]]:
        f = self.frame
        if f is None or f.whole:
            return [(0, n)] * n
        if f.kind == "documents":
            out = []
            for i in range(n):
                a = 0 if f.lo == UNBOUNDED else i + (0 if f.lo == CURRENT else f.lo)
                b = n if f.hi == UNBOUNDED else i + (0 if f.hi == CURRENT else f.hi) + 1
                out.append((max(0, min(a, n)), max(0, min(b, n))))
            return out
        # range frames: numeric bounds are values relative to the current sortBy value; "current" is the
        # current document's position (as in MongoDB); the sortBy is ascending (checked at parse time)
        xs = [self._range_value(v, f) for v in sort_vals]
        out = []
        for i in range(n):
            if f.lo == UNBOUNDED:
                a = 0
            elif f.lo == CURRENT:
                a = i
            else:
                a = bisect.bisect_left(xs, self._shifted(sort_vals[i], xs[i], f.lo, f))
            if f.hi == UNBOUNDED:
                b = n
            elif f.hi == CURRENT:
                b = i + 1
            else:
                b = bisect.bisect_right(xs, self._shifted(sort_vals[i], xs[i], f.hi, f))
            out.append((a, max(a, b)))
        return out

    def _range_value(self, v: Any, f: Frame) -> float:
        if f.unit is not None:
            if not is_date(v):
                raise MongoError(5429513, "Invalid range: Expected the sortBy field to be a Date, but it was "
                                          + type_name(v))
            return float(date_ms(v))
        if kind(v) is None:
            raise MongoError(5429414, "Invalid range: Expected the sortBy field to be a number, but it was "
                                      + type_name(v))
        return to_float(v)

    @staticmethod
    def _shifted(raw: Any, x: float, bound: Any, f: Frame) -> float:
        if f.unit is not None:
            from mongolake.query.expr.datecore import UTC, to_datetime
            from mongolake.query.expr.dates import add_to_date
            return float(date_ms(add_to_date(to_datetime(raw), f.unit, int(bound), UTC)))
        return x + bound

    def _accumulate(self, scopes: list[dict], frames: list[tuple[int, int]], env: Any) -> list:
        acc = self.acc
        assert acc is not None
        gscope = dict(env.variables)
        gscope["ROOT"] = gscope["CURRENT"] = {}
        inputs = [acc.input(s) for s in scopes]
        n = len(scopes)
        if frames and all(fr == (0, n) for fr in frames):
            st = acc.create(gscope)
            for v in inputs:
                st.add(v)
            r = st.result()
            return [list(r) if type(r) is list else r for _ in range(n)]
        if self.frame is not None and self.frame.running:
            st = acc.create(gscope)
            out = []
            for v in inputs:
                st.add(v)
                r = st.result()
                out.append(list(r) if type(r) is list else r)
            return out
        out = []
        for a, b in frames:
            st = acc.create(gscope)
            for v in inputs[a:b]:
                st.add(v)
            out.append(st.result())
        return out


def _linear_fill(ys: list, xs: list) -> list:
    out: list = [None if _nullish(y) else y for y in ys]
    known = [i for i, y in enumerate(ys) if not _nullish(y)]
    for y in (ys[i] for i in known):
        if kind(y) is None:
            raise MongoError(ErrBadValue, "$linearFill requires numeric values")

    def xval(v: Any) -> float:
        return float(date_ms(v)) if is_date(v) else to_float(v)

    for a, b in zip(known, known[1:]):
        if b - a <= 1:
            continue
        x0, x1 = xval(xs[a]), xval(xs[b])
        y0, y1 = to_float(ys[a]), to_float(ys[b])
        for i in range(a + 1, b):
            out[i] = y0 + (y1 - y0) * (xval(xs[i]) - x0) / (x1 - x0) if x1 != x0 else y0
    return out


def _derivative(xs: list, ys: list, a: int, b: int) -> Any:
    if b - a < 2:
        return None
    x0, x1, y0, y1 = xs[a], xs[b - 1], ys[a], ys[b - 1]
    if x0 is None or x1 is None or kind(y0) is None or kind(y1) is None or x1 == x0:
        return None
    return (to_float(y1) - to_float(y0)) / (x1 - x0)


def _integral(xs: list, ys: list, a: int, b: int) -> Any:
    total = 0.0
    for i in range(a, b - 1):
        if xs[i] is None or xs[i + 1] is None or kind(ys[i]) is None or kind(ys[i + 1]) is None:
            continue
        total += (xs[i + 1] - xs[i]) * (to_float(ys[i]) + to_float(ys[i + 1])) / 2
    return total


def _covariance(pairs: list, sample: bool) -> Any:
    pts = [(to_float(x), to_float(y)) for x, y in pairs if kind(x) is not None and kind(y) is not None]
    n = len(pts)
    if n == 0 or (sample and n < 2):
        return None
    mx = sum(p[0] for p in pts) / n
    my = sum(p[1] for p in pts) / n
    return sum((x - mx) * (y - my) for x, y in pts) / (n - 1 if sample else n)


__all__ = ["WindowFunc", "Frame", "parse_frame", "SPECIAL_FUNCS"]
