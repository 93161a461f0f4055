"""``$setWindowFields``: partitions, sort and window functions.

Like MongoDB, documents come out sorted by the partition value then by
``sortBy``; each ``output`` field is computed by a
:class:`~mongolake.query.aggregate.window_funcs.WindowFunc`.
"""
from __future__ import annotations

from functools import cmp_to_key
from typing import Any, Iterator

from mongolake.errors import MongoError
from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
from mongolake.query.aggregate.stages.basic import get_nested, set_nested
from mongolake.query.aggregate.window_funcs import WindowFunc, parse_frame
from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import Node, split_field_path
from mongolake.query.expr.logic import agg_compare
from mongolake.query.expr.sortspec import make_key, parse_sort_spec
from mongolake.query.expr.values import hash_key, type_name


class SetWindowFieldsStage(Stage):
    name = "$setWindowFields"
    blocking = True

    def __init__(self, spec: Any, partition: Node | None, sort_fields: list, outputs: list[tuple[list[str], WindowFunc]]):
        super().__init__(spec)
        self.partition = partition
        self.sort_fields = sort_fields
        self.key = make_key(sort_fields) if sort_fields else None
        self.outputs = outputs

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        budget = env.budget("$setWindowFields")
        part_fn = env.evaluator(self.partition) if self.partition is not None else None
        partitions: dict = {}
        for d in docs:
            budget.add(d)
            pv = part_fn(d) if part_fn else None
            if pv is MISSING:
                pv = None
            partitions.setdefault(hash_key(pv), (pv, []))[1].append(d)
        groups = list(partitions.values())
        if part_fn is not None:
            groups.sort(key=cmp_to_key(lambda a, b: agg_compare(a[0], b[0])))
        first_sort = self.sort_fields[0][0] if self.sort_fields else None
        for _, members in groups:
            if self.key is not None:
                keyed = [(self.key(d), d) for d in members]
                keyed.sort(key=_first)
                keys = [k for k, _ in keyed]
                members = [d for _, d in keyed]
            else:
                keys = [None] * len(members)
            sort_vals = [get_nested(d, first_sort) for d in members] if first_sort else [None] * len(members)
            scopes = [env.scope(d) for d in members]
            results = [(path, fn.compute(members, scopes, keys, sort_vals, env)) for path, fn in self.outputs]
            for i, d in enumerate(members):
                out = d
                for path, values in results:
                    v = values[i]
                    out = set_nested(out, path, v)
                yield out


@stage("$setWindowFields")
def _parse_set_window_fields(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(ErrorTypeMismatch, f"$setWindowFields specification must be an object, found "
                                            f"{type_name(spec)}")
    for k in spec:
        if k not in ("partitionBy", "sortBy", "output"):
            raise MongoError(40415, f"BSON field '$setWindowFields.{k}' is an unknown field.")
    if "output" not in spec:
        raise MongoError(40414, "BSON field '$setWindowFields.output' is missing but a required field")
    partition = None
    if "partitionBy" in spec:
        pb = spec["partitionBy"]
        if isinstance(pb, str) and not pb.startswith("$"):
            raise MongoError(ErrBadValue, "An expression used to partition cannot evaluate to value of type "
                                          "string")
        partition = opts.expr(pb)
    sort_fields = parse_sort_spec(spec["sortBy"], what="$setWindowFields sortBy") if "sortBy" in spec else []
    output = spec["output"]
    if not isinstance(output, dict):
        raise MongoError(ErrorTypeMismatch, "$setWindowFields 'output' must be an object")
    outputs = []
    for field, fspec in output.items():
        path = split_field_path(field)
        if not isinstance(fspec, dict):
            raise MongoError(ErrorFailedToParse, f"Window function found an unknown argument: {field}")
        funcs = [k for k in fspec if k != "window"]
        if len(funcs) != 1 or not str(funcs[0]).startswith("$"):
            raise MongoError(ErrorFailedToParse, "Expected a $-prefixed window function" if not funcs else
                             f"Window function found an unknown argument: {funcs[-1]}")
        frame = parse_frame(fspec.get("window"))
        if frame is not None and frame.kind == "range" and (len(sort_fields) != 1 or sort_fields[0][1] != 1):
            raise MongoError(5339902, "Range-based window requires sortBy a single field, in ascending order")
        if frame is not None and frame.kind == "documents" and (frame.lo != "unbounded" or frame.hi != "unbounded") \
                and not sort_fields:
            raise MongoError(5339901, "Document-based bounds require a sortBy")
        outputs.append((path, WindowFunc(field, funcs[0], fspec[funcs[0]], frame, opts, sort_fields)))
    return SetWindowFieldsStage(spec, partition, sort_fields, outputs)


def _first(p: tuple) -> Any:
    return p[0]


ErrBadValue = 2
ErrorTypeMismatch = 14
ErrorFailedToParse = 9
