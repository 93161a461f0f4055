"""``$group`` and ``$sortByCount``."""
from __future__ import annotations

from typing import Any, Iterator

from mongolake.errors import MongoError
from mongolake.query.aggregate.accumulators import AccSpec, parse_accumulator
from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
from mongolake.query.expr.core import Node, const_value, is_const
from mongolake.query.expr.sortspec import sort_compare


def parse_output_fields(spec: dict, opts: ParseOptions, stage_name: str, skip: tuple = ("_id",)) -> list[AccSpec]:
    accs = []
    for field, acc in spec.items():
        if field in skip:
            continue
        if "." in field:
            raise MongoError(40235, f"The field name '{field}' cannot contain '.'")
        if field.startswith("$"):
            raise MongoError(40236, f"The field name '{field}' cannot be an operator name")
        accs.append(parse_accumulator(field, acc, opts, stage=stage_name))
    return accs


def run_groups(docs: Iterator[dict], env: RunEnv, key_fn: Any, accs: list[AccSpec], what: str,
               stage: Any = None) -> Any:
    """Group ``docs`` by ``key_fn(scope)``; ``.values()`` of the result yields ``(id_value, [states])``
    once, in first-seen order while in memory (spilling to disk past the memory limit: see spill.py)."""
    from mongolake.query.aggregate import spill
    return spill.group(docs, env, key_fn, accs, what, stage)


class GroupStage(Stage):
    name = "$group"
    blocking = True

    def __init__(self, spec: dict, id_node: Node, accs: list[AccSpec]):
        super().__init__(spec)
        self.id_node = id_node
        self.accs = accs

    def count_field(self) -> str | None:
        """The output field when this stage is ``{_id: <constant>, f: {$sum: 1}}`` (a plain
        count, e.g. the drivers' count_documents sends ``_id: 1``)."""
        if is_const(self.id_node) and len(self.accs) == 1 and self.accs[0].counts_docs:
            return self.accs[0].field
        return None

    def constant_id(self) -> Any:
        return const_value(self.id_node)

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        groups = run_groups(docs, env, self.id_node, self.accs, "$group", self)
        for gid, states in groups.values():
            out = {"_id": gid}
            for a, st in zip(self.accs, states):
                out[a.field] = st.result()
            yield out


@stage("$group")
def _parse_group(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(15947, "a group's fields must be specified in an object")
    if "_id" not in spec:
        raise MongoError(15955, "a group specification must include an _id")
    id_node = opts.expr(spec["_id"])
    return GroupStage(spec, id_node, parse_output_fields(spec, opts, "$group"))


class SortByCountStage(Stage):
    name = "$sortByCount"
    blocking = True

    def __init__(self, spec: Any, node: Node, opts: ParseOptions):
        super().__init__(spec)
        self.node = node
        self.count = parse_accumulator("count", {"$sum": 1}, opts)

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        groups = run_groups(docs, env, self.node, [self.count], "$sortByCount", self)
        rows = [{"_id": gid, "count": states[0].result()} for gid, states in groups.values()]
        rows.sort(key=lambda r: -r["count"])
        yield from rows


@stage("$sortByCount")
def _parse_sort_by_count(spec: Any, opts: ParseOptions) -> Stage:
    if isinstance(spec, str):
        if not spec.startswith("$"):
            raise MongoError(40148, "the sortByCount field must be defined as a $-prefixed path or an expression")
    elif isinstance(spec, dict):
        if not spec or not str(next(iter(spec))).startswith("$"):
            raise MongoError(40147, "the sortByCount field must be specified as a string or as an expression "
                                    "object")
    else:
        raise MongoError(40149, "the sortByCount field must be defined as a $-prefixed path or an expression")
    return SortByCountStage(spec, opts.expr(spec), opts)


def sort_rows_by_id(rows: list[dict]) -> list[dict]:
    from functools import cmp_to_key
    return sorted(rows, key=cmp_to_key(lambda a, b: sort_compare(a["_id"], b["_id"])))
