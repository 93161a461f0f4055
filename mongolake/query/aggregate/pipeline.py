"""Pipeline parsing, optimisation and execution."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.aggregate.base import STAGES, ParseOptions, RunEnv, Stage

# stages that are valid MongoDB but not implemented here (NotImplemented 238, not 40324)
UNSUPPORTED_STAGES = frozenset({
    "$changeStream", "$changeStreamSplitLargeEvent", "$currentOp", "$geoNear", "$indexStats", "$listLocalSessions",
    "$listSessions", "$listSampledQueries", "$listSearchIndexes", "$planCacheStats", "$search", "$searchMeta",
    "$vectorSearch", "$shardedDataDistribution", "$querySettings", "$listClusterCatalog", "$rankFusion",
    "$scoreFusion", "$score",
})


@dataclass(frozen=True)
class PureCount:
    """A pipeline that only counts (``[$match?, $count]`` or ``[$match?, $group: {_id: null, n: {$sum: 1}}]``)."""

    filter: dict
    field: str
    group_form: bool
    group_id: Any = None

    def result(self, n: int) -> list[dict]:
        """The documents the pipeline would output for ``n`` matching documents."""
        if n == 0:
            return []
        from mongolake.query.expr.numeric import int_result, INT
        value = int_result(n, INT)
        return [{"_id": self.group_id, self.field: value}] if self.group_form else [{self.field: value}]


class Pipeline:
    """A parsed pipeline: ``run(source, ctx)`` yields the output documents."""

    def __init__(self, stages: list[Stage], options: ParseOptions | None = None):
        self.stages = stages
        self.options = options or ParseOptions()

    # -- introspection -------------------------------------------------------------

    @property
    def writes_output(self) -> bool:
        """True when the last stage is ``$out`` or ``$merge`` (the result is written, not returned)."""
        return bool(self.stages) and self.stages[-1].name in ("$out", "$merge")

    @property
    def output_namespace(self) -> tuple[str | None, str] | None:
        """(db or None, collection) written by a final $out/$merge."""
        if not self.writes_output:
            return None
        return self.stages[-1].target  # type: ignore[attr-defined]

    @property
    def is_collectionless(self) -> bool:
        """True when the pipeline starts with ``$documents`` (it reads no collection)."""
        return bool(self.stages) and self.stages[0].name == "$documents"

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def leading_match(self) -> dict | None:
        """The filter of the leading ``$match`` stages (combined with ``$and``), or None."""
        specs = []
        for s in self.stages:
            if s.name != "$match":
                break
            specs.append(s.spec)
        if not specs:
            return None
        if len(specs) == 1:
            return specs[0]
        return {"$and": specs}

    def without_leading_match(self) -> "Pipeline":
        """The pipeline after its leading ``$match`` stages (for a source that already applied them)."""
        i = 0
        while i < len(self.stages) and self.stages[i].name == "$match":
            i += 1
        return Pipeline(self.stages[i:], self.options)

    def pure_count(self) -> PureCount | None:
        """Describe the pipeline if it only counts the documents of a (filtered) collection."""
        rest = self.without_leading_match().stages
        flt = self.leading_match() or {}
        if len(rest) != 1:
            return None
        s = rest[0]
        if s.name == "$count":
            return PureCount(flt, s.field, False)  # type: ignore[attr-defined]
        if s.name == "$group":
            field = s.count_field()  # type: ignore[attr-defined]
            if field is not None:
                return PureCount(flt, field, True, s.constant_id())  # type: ignore[attr-defined]
        return None

    def to_specs(self) -> list[dict]:
        """The (optimised) stages as specifications, for explain."""
        return [s.to_spec() for s in self.stages]

    # -- execution -----------------------------------------------------------------

    def run(self, source: Iterable[dict], ctx: Any, *, variables: dict | None = None) -> Iterator[dict]:
        """Run over ``source`` (ignored when the pipeline starts with $documents)."""
        return self.run_env(source, RunEnv(ctx, variables))

    def run_env(self, source: Iterable[dict], env: RunEnv) -> Iterator[dict]:
        it: Iterator[dict] = iter(source)
        for s in self.stages:
            it = s.apply(it, env)
        return it


def _check_stage_shape(st: Any) -> tuple[str, Any]:
    if not isinstance(st, dict) or len(st) != 1:
        raise MongoError(40323, "A pipeline stage specification object must contain exactly one field.")
    name, spec = next(iter(st.items()))
    return name, spec


def parse_pipeline(stages: Any, *, let_vars: Iterable[str] | None = None, context: str | None = None,
                   options: ParseOptions | None = None) -> Pipeline:
    """Parse and optimise a pipeline (raising MongoError with MongoDB's codes).

    ``let_vars``: names of the command's ``let`` variables; when given, references
    to other user variables fail at parse time (17276).  ``context`` is used for
    sub-pipelines ("$facet", "$lookup", "$unionWith").
    """
    from mongolake.query.aggregate import stages as _stages  # noqa: F401  (registers the stages)

    if not isinstance(stages, list):
        raise MongoError(ErrorCode.TypeMismatch, "'pipeline' option must be specified as an array")
    if options is None:
        options = ParseOptions(None if let_vars is None else frozenset(let_vars), context)
    parsed: list[Stage] = []
    n = len(stages)
    for i, st in enumerate(stages):
        name, spec = _check_stage_shape(st)
        parser = STAGES.get(name)
        if name == "$changeStream" and (i > 0 or options.context is not None):
            # a leading $changeStream is run by mongolake.commands.changestream
            raise MongoError(40602, "$changeStream is only valid as the first stage in a pipeline")
        if parser is None:
            if name in UNSUPPORTED_STAGES:
                raise MongoError(ErrorCode.NotImplemented, f"{name} is not supported by MongoLake")
            raise MongoError(40324, f"Unrecognized pipeline stage name: '{name}'")
        stage = parser(spec, options)
        if options.context == "$facet" and not stage.allowed_in_facet:
            raise MongoError(40600, f"{name} is not allowed to be used within a $facet stage")
        if options.context in ("$lookup", "$unionWith") and not stage.allowed_in_lookup:
            raise MongoError(51047, f"{name} is not allowed to be used within a {options.context} stage")
        if stage.position == "last" and i != n - 1:
            raise MongoError(40601, f"{name} can only be the final stage in the pipeline")
        if stage.position == "first" and i != 0:
            code = {"$documents": 40602, "$collStats": 40602, "$geoNear": 40603}.get(name, 40602)
            raise MongoError(code, f"{name} is only valid as the first stage in a pipeline")
        parsed.append(stage)
    return Pipeline(optimize(parsed), options)


def optimize(stages: list[Stage]) -> list[Stage]:
    """Local rewrites, as MongoDB does.

    * a ``$match`` directly after a ``$sort`` moves before it (filter first, and a leading
      ``$match`` can be pushed down to the scan);
    * ``$sort`` + ``$skip``/``$limit`` becomes a bounded top-k sort.
    """
    stages = list(stages)
    moved = True
    while moved:
        moved = False
        for i in range(1, len(stages)):
            if stages[i].name == "$match" and stages[i - 1].name == "$sort":
                stages[i - 1], stages[i] = stages[i], stages[i - 1]
                moved = True
    out: list[Stage] = []
    i = 0
    while i < len(stages):
        s = stages[i]
        if s.name == "$sort" and getattr(s, "limit", None) is None:
            # absorb a following run of $skip/$limit into a top-k bound
            bound, skip, j = None, 0, i + 1
            while j < len(stages) and stages[j].name in ("$skip", "$limit"):
                nxt = stages[j]
                if nxt.name == "$skip":
                    skip += nxt.n  # type: ignore[attr-defined]
                else:
                    cand = skip + nxt.n  # type: ignore[attr-defined]
                    bound = cand if bound is None else min(bound, cand)
                j += 1
            if bound is not None:
                out.append(s.with_limit(bound))  # type: ignore[attr-defined]
                out.extend(stages[i + 1:j])
                i = j
                continue
        out.append(s)
        i += 1
    return out


__all__ = ["Pipeline", "parse_pipeline", "PureCount", "UNSUPPORTED_STAGES"]
