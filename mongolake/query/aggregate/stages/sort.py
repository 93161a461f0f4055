"""``$sort``; followed by ``$limit`` it becomes a bounded top-k (heapq)."""
from __future__ import annotations

import heapq
from typing import Any, Iterator

from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
# {$meta: "textScore"} sort keys and MetaDoc documents (text search); otherwise sortspec's
from mongolake.query.meta_sort import make_key, parse_fields as parse_sort_spec


class SortStage(Stage):
    name = "$sort"
    blocking = True

    def __init__(self, spec: Any, fields: list, limit: int | None = None):
        super().__init__(spec)
        self.fields = fields
        self.key = make_key(fields)
        #: top-k bound set by the optimiser when a $limit follows
        self.limit = limit

    def with_limit(self, k: int) -> "SortStage":
        return SortStage(self.spec, self.fields, k)

    def to_spec(self) -> dict:
        if self.limit is None:
            return {"$sort": self.spec}
        return {"$sort": {"sortKey": self.spec, "limit": self.limit}}

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        key = self.key
        budget = env.budget("$sort")
        if self.limit is not None:
            # keep the k smallest (key, arrival) pairs; arrival keeps the sort stable
            k = self.limit
            heap: list = []
            for i, d in enumerate(docs):
                item = (_Neg(key(d)), -i, d)
                if len(heap) < k:
                    heapq.heappush(heap, item)
                    budget.add(d)
                elif item > heap[0]:
                    heapq.heapreplace(heap, item)
            result = sorted(heap, reverse=True)
            for item in result:
                yield item[2]
            return
        # in memory up to the stage's limit, then an external merge sort (allowDiskUse) or 292
        from mongolake.query.aggregate import spill
        yield from spill.sort_docs(docs, key, env, self)


def _first(p: tuple) -> Any:
    return p[0]


class _Neg:
    """Inverts a sort key so a min-heap keeps the k smallest keys at hand."""

    __slots__ = ("k",)

    def __init__(self, k: Any):
        self.k = k

    def __lt__(self, other: "_Neg") -> bool:
        return other.k < self.k

    def __gt__(self, other: "_Neg") -> bool:
        return self.k < other.k

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Neg) and not (self.k < other.k) and not (other.k < self.k)


@stage("$sort")
def _parse_sort(spec: Any, opts: ParseOptions) -> Stage:
    return SortStage(spec, parse_sort_spec(spec))
