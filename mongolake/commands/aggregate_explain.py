"""``explain`` of an aggregate: which stages ran in the engine, and what each stage did.

The shape follows MongoDB's: ``stages`` starts with a ``$cursor`` stage whose
``queryPlanner.winningPlan`` describes the read — a ``COLLSCAN`` (or ``EOF``)
under whatever the engine ran instead of the pipeline (``COUNT`` for a pure
count, ``GROUP`` for a columnar ``$group``, ``SORT`` with ``limitAmount`` for a
top-k, ``PROJECTION_SIMPLE`` for a read of the pipeline's columns only) —
followed by the stages that ran document by document. With ``executionStats``
(or ``allPlansExecution``) the pipeline runs (a final ``$out``/``$merge`` does
not) and every stage reports ``nReturned`` and ``executionTimeMillisEstimate``;
``$sort`` adds ``totalDataSizeSortedBytesEstimate``, ``usedDisk``, ``spills``,
``$group`` ``usedDisk`` and ``spills`` (and ``spilledDataStorageSize`` /
``spilledRecords`` when they spilled). A ``mongolake`` section says what was
pushed down: ``execution`` (``countPushdown`` | ``columnarGroup`` | ``topK`` |
``prunedColumns`` | ``documents``), ``pushedDown`` (stage names), ``columns``
(those read instead of ``_doc``) and ``scan`` (files and row groups in total,
skipped by zone maps, read, documents decoded).
"""
from __future__ import annotations

import socket
import time
from typing import Any, Iterator

import mongolake
from mongolake.engine import columnar
from mongolake.engine.reader import ScanStats
from mongolake.query import zonemap

from . import aggregate as agg
from .context import Ctx
from .letvars import LetScope

_WRITES = ("$out", "$merge")


def _inner_ctx(ctx: Ctx, body: dict) -> Ctx:
    if body is ctx.body:
        return ctx
    return Ctx(ctx.state, ctx.conn, ctx.db, body, "aggregate", ctx.request)


def _zone_scan(ctx: Ctx, flt: dict) -> dict:
    """Files and row groups of the collection, and how many zone maps skip (footers only)."""
    out = {"filesTotal": 0, "filesSkipped": 0, "rowGroupsTotal": 0, "rowGroupsSkipped": 0}
    c = ctx.engine.get_collection(ctx.db, ctx.arg)
    if c is None:
        return out
    plan = ctx.engine.plan(c, flt)
    _view, snapshot = ctx.engine._state(c)
    for f in snapshot.files:
        out["filesTotal"] += 1
        fi = ctx.engine.reader.info(c.table, f)
        n = fi.md.num_row_groups
        out["rowGroupsTotal"] += n
        if plan.expr is not None and not zonemap.might_match(plan.expr, f, plan.specs):
            out["filesSkipped"] += 1
            out["rowGroupsSkipped"] += n
            continue
        if plan.expr is None:
            continue
        exact_cols, fspecs = set(f.null_count), fi.file_specs(plan.specs)
        out["rowGroupsSkipped"] += sum(1 for rg in range(n) if not zonemap.might_match(
            plan.expr, fi.rowgroup_stats(rg, exact_cols, fspecs), fspecs))
    return out


class _Counted:
    """Counts the documents a stage outputs and the time spent producing them (its inputs included)."""

    def __init__(self, it: Iterator[Any]):
        self.it, self.n, self.secs = it, 0, 0.0

    def __iter__(self) -> "_Counted":
        return self

    def __next__(self) -> Any:
        t = time.perf_counter()
        try:
            v = next(self.it)
        finally:
            self.secs += time.perf_counter() - t
        self.n += 1
        return v


def _stage_entry(stage: Any, env: Any, counted: _Counted | None) -> dict:
    entry = dict(stage.to_spec())
    if counted is None:
        return entry
    st = (env.stats.get(id(stage)) or env.stats.get(stage.name, {})) if env is not None else {}
    if stage.name == "$sort" and "limit" not in entry["$sort"]:
        entry["totalDataSizeSortedBytesEstimate"] = st.get("totalDataSizeSortedBytesEstimate", 0)
    if stage.name in ("$sort", "$group", "$bucket", "$sortByCount"):
        entry["usedDisk"] = bool(st.get("usedDisk", False))
        entry["spills"] = st.get("spills", 0)
        if st.get("usedDisk"):
            entry["spilledDataStorageSize"] = st.get("spilledDataStorageSize", 0)
            entry["spilledRecords"] = st.get("spilledRecords", 0)
    entry["nReturned"] = counted.n
    entry["executionTimeMillisEstimate"] = int(counted.secs * 1000)
    return entry


def _plan(ctx: Ctx, pl: Any, rest: Any, stats: ScanStats) -> dict:
    """Which path the aggregate command takes; with a ``source`` iterator of the documents
    entering ``stages`` (the stages that still run document by document)."""
    coll = ctx.arg
    if not isinstance(coll, str) or ctx.engine.get_collection(ctx.db, coll) is None:
        return {"execution": "documents", "stage": "EOF", "source": agg._source(ctx, pl, stats),
                "stages": rest.stages, "pushed": [], "columns": None}
    pcount = pl.pure_count()
    if pcount is not None:
        flt = LetScope.for_command(ctx, ctx.body.get("let")).filter(pcount.filter)
        n = ctx.engine.count(ctx.db, coll, flt, stats=stats)
        return {"execution": "countPushdown", "stage": "COUNT", "source": iter(pcount.result(n)), "stages": [],
                "pushed": rest.stages, "columns": None}
    src = agg.columnar_source(ctx, pl, rest)
    if src is not None:
        kind, docs = src
        first = rest.stages[0]
        extra = ({"stage": "GROUP", "groupSpec": first.spec} if kind == "group" else
                 {"stage": "SORT", "sortPattern": first.spec, "limitAmount": int(first.limit)})
        return {"execution": "columnarGroup" if kind == "group" else "topK", **extra, "source": iter(docs),
                "stages": rest.stages[1:], "pushed": [first], "columns": None}
    pruned = agg.prune_plan(ctx, pl, rest)
    if pruned is not None:
        it = columnar.scan_pruned(ctx.engine, ctx.db, coll, pruned[0], pruned[1], stats)
        if it is not None:
            return {"execution": "prunedColumns", "stage": "PROJECTION_SIMPLE",
                    "transformBy": {p: 1 for p in pruned[1]}, "source": it, "stages": rest.stages, "pushed": [],
                    "columns": pruned[1]}
    return {"execution": "documents", "stage": None, "source": agg._source(ctx, pl, stats), "stages": rest.stages,
            "pushed": [], "columns": None}


async def explain(ctx: Ctx, body: dict, verbosity: str) -> dict:
    ctx = _inner_ctx(ctx, body)
    pl, raw_pipeline, _ = agg._parse(ctx)
    rest = pl.without_leading_match()
    stats = ScanStats()
    flt = LetScope.for_command(ctx, body.get("let")).filter(pl.leading_match() or {})
    p = _plan(ctx, pl, rest, stats)
    execute = verbosity in ("executionStats", "allPlansExecution")
    stages = list(p["stages"])
    writes = [s for s in stages if s.name in _WRITES]
    runnable = [s for s in stages if s.name not in _WRITES]
    source = _Counted(iter(p["source"]))
    counted: list[_Counted | None] = []
    env = None
    t0 = time.perf_counter()
    if execute:
        from mongolake.query.aggregate.base import RunEnv
        env = RunEnv(agg.EngineContext(ctx, body.get("let"), body.get("collation")))
        it: Any = source
        for s in runnable:
            it = _Counted(s.apply(it, env))
            counted.append(it)
        for _ in it:
            pass
    else:
        for _ in source:                  # the read only: files, row groups and documents examined
            pass
    millis = int((time.perf_counter() - t0) * 1000)
    scan: dict[str, Any] = _zone_scan(ctx, flt)
    if p["execution"] in ("documents", "prunedColumns", "countPushdown"):
        for k, v in stats.as_dict().items():
            if k not in ("files_total", "files_scanned", "row_groups_total", "row_groups_scanned"):
                head, *tail = k.split("_")
                scan[head + "".join(t.title() for t in tail)] = v
    coll_stage: dict = {"stage": "COLLSCAN", "filter": flt, "direction": "forward"}
    ix_name = getattr(stats, "index_name", None)
    if ix_name is not None:
        coll_stage = {"stage": "FETCH", "filter": flt, "inputStage": {
            "stage": "IXSCAN", "indexName": ix_name, "direction": "forward",
            "indexBounds": dict(getattr(stats, "index_bounds", None) or {})}}
    if p["stage"] == "EOF":
        winning: dict = {"stage": "EOF"}
    elif p["stage"] is None:
        winning = coll_stage
    else:
        winning = {k: v for k, v in p.items() if k in ("stage", "groupSpec", "sortPattern", "limitAmount",
                                                          "transformBy")}
        winning["inputStage"] = coll_stage
    cursor: dict[str, Any] = {"queryPlanner": {
        "namespace": ctx.ns(ctx.arg) if isinstance(ctx.arg, str) else f"{ctx.db}.$cmd.aggregate",
        "indexFilterSet": False, "parsedQuery": flt, "winningPlan": winning, "rejectedPlans": []}}
    if execute:
        examined = stats.rows_read + stats.memtable_docs
        cursor["executionStats"] = {"executionSuccess": True, "nReturned": source.n, "executionTimeMillis": millis,
                                    "totalKeysExamined": 0, "totalDocsExamined": examined,
                                    "executionStages": {**{k: v for k, v in winning.items() if k != "inputStage"},
                                                        "nReturned": source.n, "docsExamined": examined}}
    out_stages: list[dict] = [{"$cursor": cursor}]
    if execute:
        out_stages[0].update({"nReturned": source.n, "executionTimeMillisEstimate": int(source.secs * 1000)})
    for s, c in zip(runnable, counted or [None] * len(runnable)):
        out_stages.append(_stage_entry(s, env, c))
    out_stages.extend(_stage_entry(s, None, None) for s in writes)
    ml = {"execution": p["execution"], "pushedDown": (["$match"] if pl.leading_match() is not None else [])
          + [s.name for s in p["pushed"]], "scan": scan}
    if p["columns"] is not None:
        ml["columns"] = p["columns"]
    return {"explainVersion": "1", "stages": out_stages, "mongolake": ml,
            "serverInfo": {"host": socket.gethostname(), "port": ctx.state.options.port,
                           "version": mongolake.MONGODB_COMPAT_VERSION, "gitVersion": "mongolake"},
            "command": body, "ok": 1.0}


__all__ = ["explain"]
