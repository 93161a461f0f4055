"""``$densify`` and ``$fill``."""
from __future__ import annotations

from typing import Any, Iterator

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
from mongolake.query.aggregate.stages.basic import get_nested, set_nested
from mongolake.query.aggregate.stages.project import build_add_fields
from mongolake.query.aggregate.stages.window import _parse_set_window_fields
from mongolake.query.bsonorder import MISSING, date_ms
from mongolake.query.expr.core import split_field_path
from mongolake.query.expr.datecore import UNITS, UTC, to_datetime
from mongolake.query.expr.dates import add_to_date
from mongolake.query.expr.numeric import as_int64, kind, to_float
from mongolake.query.expr.sortspec import make_key
from mongolake.query.expr.values import hash_key, is_date, type_name


# --- $densify -----------------------------------------------------------------------------------------


class DensifyStage(Stage):
    name = "$densify"
    blocking = True

    def __init__(self, spec: Any, field: list[str], partition_fields: list[list[str]], step: Any, unit: str | None,
                 bounds: Any):
        super().__init__(spec)
        self.field = field
        self.partition_fields = partition_fields
        self.step = step
        self.unit = unit
        self.bounds = bounds
        self.key = make_key([(p, 1) for p in partition_fields] + [(field, 1)])

    def _check(self, v: Any) -> None:
        if self.unit is None:
            if kind(v) is None:
                raise MongoError(5733201, "Densify field type must be numeric when 'unit' is not specified, found "
                                 + type_name(v))
        elif not is_date(v):
            raise MongoError(5733202, "Densify field type must be a date when 'unit' is specified, found "
                             + type_name(v))

    def _next(self, v: Any, k: int) -> Any:
        """The k-th grid value after ``v``."""
        if self.unit is None:
            from mongolake.query.expr.arith import op_add, op_multiply
            return op_add([v, op_multiply([self.step, k])])
        return add_to_date(to_datetime(v), self.unit, int(self.step) * k, UTC)

    def _lt(self, a: Any, b: Any) -> bool:
        if self.unit is None:
            return to_float(a) < to_float(b)
        return date_ms(a) < date_ms(b)

    def _grid(self, lo: Any, hi: Any, inclusive_hi: bool) -> list:
        out = []
        k = 0
        while True:
            g = self._next(lo, k)
            if self._lt(g, hi) or (inclusive_hi and not self._lt(hi, g)):
                out.append(g)
                k += 1
                if k > 10_000_000:
                    raise MongoError(5897900, "$densify would generate too many documents")
            else:
                return out

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        budget = env.budget("$densify")
        rows = []
        for d in docs:
            budget.add(d)
            v = get_nested(d, self.field)
            if v is not MISSING and v is not None:
                self._check(v)
            rows.append(d)
        rows.sort(key=self.key)
        partitions: dict = {}
        for d in rows:
            pvals = tuple(get_nested(d, p) for p in self.partition_fields)
            partitions.setdefault(hash_key(list(pvals)), (pvals, []))[1].append(d)
        values = [v for d in rows for v in [get_nested(d, self.field)] if v is not MISSING and v is not None]
        bounds = self.bounds
        if bounds == "full":
            if not values:
                yield from rows
                return
            glo, ghi = values[0], values[-1]
            for v in values:
                if self._lt(v, glo):
                    glo = v
                if self._lt(ghi, v):
                    ghi = v
        for pvals, members in partitions.values():
            present = [get_nested(d, self.field) for d in members]
            present_vals = [v for v in present if v is not MISSING and v is not None]
            if bounds == "full":
                lo, hi, inclusive = glo, ghi, True
            elif bounds == "partition":
                if not present_vals:
                    yield from members
                    continue
                lo, hi, inclusive = present_vals[0], present_vals[-1], True
            else:
                lo, hi, inclusive = bounds[0], bounds[1], False
            grid = self._grid(lo, hi, inclusive)
            have = {hash_key(v) for v in present_vals}
            new = [g for g in grid if hash_key(g) not in have]
            yield from self._merge(members, new, pvals)

    def _merge(self, members: list[dict], new: list, pvals: tuple) -> Iterator[dict]:
        i = 0
        for d in members:
            v = get_nested(d, self.field)
            if v is not MISSING and v is not None:
                while i < len(new) and self._lt(new[i], v):
                    yield self._make(new[i], pvals)
                    i += 1
            yield d
        while i < len(new):
            yield self._make(new[i], pvals)
            i += 1

    def _make(self, value: Any, pvals: tuple) -> dict:
        doc: dict = {}
        doc = set_nested(doc, self.field, value)
        for p, v in zip(self.partition_fields, pvals):
            if v is not MISSING:
                doc = set_nested(doc, p, v)
        return doc


@stage("$densify")
def _parse_densify(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.TypeMismatch, "$densify specification must be an object")
    for k in spec:
        if k not in ("field", "partitionByFields", "range"):
            raise MongoError(40415, f"BSON field '$densify.{k}' is an unknown field.")
    for k in ("field", "range"):
        if k not in spec:
            raise MongoError(40414, f"BSON field '$densify.{k}' is missing but a required field")
    field = spec["field"]
    if not isinstance(field, str) or field.startswith("$"):
        raise MongoError(5733600, "Cannot densify field with a '$' prefix or a non-string name")
    pf = spec.get("partitionByFields", [])
    if not isinstance(pf, list) or not all(isinstance(p, str) for p in pf):
        raise MongoError(ErrorCode.TypeMismatch, "partitionByFields must be an array of strings")
    if field in pf:
        raise MongoError(8993000, "Cannot densify a field that is also a partitionByField")
    rng = spec["range"]
    if not isinstance(rng, dict):
        raise MongoError(ErrorCode.TypeMismatch, "$densify 'range' must be an object")
    for k in rng:
        if k not in ("step", "unit", "bounds"):
            raise MongoError(40415, f"BSON field '$densify.range.{k}' is an unknown field.")
    step, unit, bounds = rng.get("step"), rng.get("unit"), rng.get("bounds")
    if kind(step) is None or to_float(step) <= 0:
        raise MongoError(5733401, "the step parameter in a range statement must be a strictly positive numeric value")
    if unit is not None:
        if unit not in UNITS:
            raise MongoError(ErrorCode.BadValue, f"unknown time unit value: {unit}")
        if as_int64(step) is None:
            raise MongoError(5733402, "The step parameter in a range statement must be a whole number when "
                                      "densifying a date range")
        step = as_int64(step)
    if bounds not in ("full", "partition"):
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise MongoError(5733403, "a bounding array in a range statement must have exactly two elements")
        lo, hi = bounds
        if unit is None and (kind(lo) is None or kind(hi) is None):
            raise MongoError(5733403, "a bounding array must be an ascending array of either two dates or two "
                                      "numbers")
        if unit is not None and not (is_date(lo) and is_date(hi)):
            raise MongoError(5733403, "a bounding array must contain dates when 'unit' is specified")
        if (to_float(lo) > to_float(hi)) if unit is None else date_ms(lo) > date_ms(hi):
            raise MongoError(5733403, "a bounding array must be an ascending array of either two dates or two "
                                      "numbers")
    return DensifyStage(spec, split_field_path(field), [split_field_path(p) for p in pf], step, unit, bounds)


# --- $fill ----------------------------------------------------------------------------------------------


class FillStage(Stage):
    name = "$fill"
    blocking = True

    def __init__(self, spec: Any, parts: list[Stage]):
        super().__init__(spec)
        self.parts = parts

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        it = docs
        for p in self.parts:
            it = p.apply(it, env)
        return it


@stage("$fill")
def _parse_fill(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.TypeMismatch, "$fill specification must be an object")
    for k in spec:
        if k not in ("partitionBy", "partitionByFields", "sortBy", "output"):
            raise MongoError(40415, f"BSON field '$fill.{k}' is an unknown field.")
    if "output" not in spec:
        raise MongoError(40414, "BSON field '$fill.output' is missing but a required field")
    if "partitionBy" in spec and "partitionByFields" in spec:
        raise MongoError(6050204, "Maximum one of 'partitionBy' and 'partitionByFields can be specified in '$fill'")
    output = spec["output"]
    if not isinstance(output, dict) or not output:
        raise MongoError(ErrorCode.TypeMismatch, "$fill 'output' must be a non-empty object")
    window_out: dict = {}
    value_out: dict = {}
    for field, fspec in output.items():
        if not isinstance(fspec, dict) or len(fspec) != 1 or next(iter(fspec)) not in ("value", "method"):
            raise MongoError(6050203, "Exactly one of 'value' or 'method' must be specified in $fill output field "
                                      f"'{field}'")
        if "value" in fspec:
            value_out[field] = {"$ifNull": ["$" + field, fspec["value"]]}
        else:
            method = fspec["method"]
            if method not in ("linear", "locf"):
                raise MongoError(6050202, f"Method must be either 'linear' or 'locf', found '{method}'")
            window_out[field] = {"$linearFill" if method == "linear" else "$locf": "$" + field}
    parts: list[Stage] = []
    if window_out:
        if "sortBy" not in spec:
            raise MongoError(6050201, "'sortBy' field is required if 'method' is used in '$fill'")
        sw: dict = {"sortBy": spec["sortBy"], "output": window_out}
        if "partitionBy" in spec:
            sw["partitionBy"] = spec["partitionBy"]
        elif "partitionByFields" in spec:
            pf = spec["partitionByFields"]
            if not isinstance(pf, list) or not all(isinstance(p, str) for p in pf):
                raise MongoError(ErrorCode.TypeMismatch, "partitionByFields must be an array of strings")
            sw["partitionBy"] = {p.replace(".", "_"): "$" + p for p in pf} if pf else None
        parts.append(_parse_set_window_fields(sw, opts))
    if value_out:
        parts.append(build_add_fields(value_out, opts, "$addFields"))
    return FillStage(spec, parts)
