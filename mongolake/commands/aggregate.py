"""The aggregate command: pipelines over a collection or (``aggregate: 1``) a database."""
from __future__ import annotations

import asyncio
import datetime as dt
import os
from typing import Any, Iterable, Iterator

from bson.binary import Binary

import bson

from mongolake.engine import columnar
from mongolake.engine.reader import ScanStats
from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import CODEC_OPTIONS

from . import bsonreply
from .context import Ctx
from .args import check_fields
from .crud_read import check_hint, open_cursor, open_cursor_offloaded
from .letvars import LetScope
from .registry import command


class EngineContext:
    """What pipeline stages need from outside: other collections, writes, variables."""

    def __init__(self, ctx: Ctx, let: dict | None, collation: dict | None):
        self._ctx = ctx
        self.db = ctx.db
        self.engine = ctx.engine
        now = dt.datetime.now(dt.timezone.utc)
        self.variables: dict[str, Any] = {"NOW": now, "CLUSTER_TIME": ctx.engine.cluster_time}
        if let:
            if not isinstance(let, dict):
                raise MongoError(ErrorCode.TypeMismatch, "let must be an object")
            from mongolake.query.expressions import compile_expression
            for k, v in let.items():
                self.variables[k] = compile_expression(v)({}, self.variables)
        self.collation = collation
        self.allow_disk_use = bool(ctx.body.get("allowDiskUse", True))
        self.memory_limit_bytes, self.memory_limits, self.spill_dir = memory_settings(ctx)
        target = ctx.body.get("aggregate")
        self.collection = target if isinstance(target, str) else None

    def scan(self, db: str, coll: str, filter: dict | None = None) -> Iterable[dict]:
        return self.engine.find(db, coll, filter or {}, as_raw=False)

    def write(self, db: str, coll: str, docs: list[dict], mode: str = "insert") -> None:
        """$out (mode 'replace': the collection becomes ``docs``) and $merge ('insert' batches)."""
        if mode == "replace":
            self._replace(db, coll, docs)
            return
        res = self.engine.insert(db, coll, docs, ordered=True)
        if res.errors:
            raise res.errors[0][1]

    def _replace(self, db: str, coll: str, docs: list[dict]) -> None:
        """$out as MongoDB runs it: the documents go into a temporary collection
        created with the target's options, table format and indexes, which then
        replaces the target by a rename (dropTarget). A failure part-way (e.g. a
        duplicate key in a unique index) leaves the target as it was."""
        import uuid as _uuid

        eng = self.engine
        target = eng.get_collection(db, coll)
        tmp = f"tmp.agg_out.{_uuid.uuid4().hex}"
        if target is not None:
            meta = target.meta
            c = eng.create_collection(db, tmp, dict(meta.options), table_format=meta.format)
            extra = [ix for ix in meta.indexes if ix.get("name") != "_id_"]
            if extra:
                eng.set_indexes(c, list(c.meta.indexes) + [dict(ix) for ix in extra])
        else:
            eng.create_collection(db, tmp)
        try:
            if docs:
                res = eng.insert(db, tmp, docs, ordered=True)
                if res.errors:
                    raise res.errors[0][1]
            eng.rename_collection(db, tmp, db, coll, drop_target=True)
        except BaseException:
            eng.drop_collection(db, tmp)
            raise

    def find_one(self, db: str, coll: str, filter: dict) -> dict | None:
        for d in self.engine.find(db, coll, filter, limit=1, as_raw=False):
            return d
        return None

    def replace_one(self, db: str, coll: str, filter: dict, doc: dict, upsert: bool = True) -> None:
        self.engine.update(db, coll, filter, doc, upsert=upsert)

    def update_one(self, db: str, coll: str, filter: dict, update: Any, upsert: bool = False) -> None:
        self.engine.update(db, coll, filter, update, upsert=upsert)

    def delete_one(self, db: str, coll: str, filter: dict) -> None:
        self.engine.delete(db, coll, filter, limit=1)

    def collection_stats(self, db: str, coll: str) -> dict:
        from .admin import coll_stats
        return coll_stats(self._ctx, coll)


_SORT_PARAM = "internalQueryMaxBlockingSortMemoryUsageBytes"
_GROUP_PARAM = "internalDocumentSourceGroupMaxMemoryBytes"
_DEFAULT_LIMIT = 100 * 1024 * 1024


def memory_settings(ctx: Ctx) -> tuple[int, dict, str | None]:
    """(limit of a blocking stage, per-stage limits, spill folder) from the server's options
    (``agg_memory_limit``, ``spill_dir``) and parameters set at run time with setParameter."""
    opts = ctx.state.options.parsed
    limit = int(opts.get("agg_memory_limit") or _DEFAULT_LIMIT)
    per_stage: dict = {}
    params = ctx.state.parameters
    sort = params.get(_SORT_PARAM)
    if sort is not None and int(sort) != _DEFAULT_LIMIT:       # changed by setParameter
        per_stage["$sort"] = int(sort)
    group = params.get(_GROUP_PARAM)
    if group is not None and int(group) != _DEFAULT_LIMIT:
        per_stage["$group"] = int(group)
    spill_dir = opts.get("spill_dir")
    if not spill_dir:
        local = getattr(ctx.engine.storage, "local_path", None)
        base = local("_mongolake") if local is not None else None
        spill_dir = os.path.join(base, "tmp") if base else None
    return limit, per_stage, spill_dir


def _parse(ctx: Ctx) -> tuple[Any, list, dict]:
    from mongolake.query.aggregate import parse_pipeline

    pipeline = ctx.body.get("pipeline")
    if not isinstance(pipeline, list):
        raise MongoError(ErrorCode.TypeMismatch, "'pipeline' option must be specified as an array")
    let = ctx.body.get("let")
    return parse_pipeline(pipeline, let_vars=list(let) if isinstance(let, dict) else None), pipeline, ctx.body


def _source(ctx: Ctx, pl: Any, stats: ScanStats | None = None) -> Iterator[dict]:
    target = ctx.arg
    if target == 1 or target == 1.0:
        return iter(())
    if not isinstance(target, str) or not target:
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid namespace specified '{ctx.db}.{target}'")
    # the leading $match runs in the engine, which knows no variables: bind `let` first
    flt = LetScope.for_command(ctx, ctx.body.get("let")).filter(pl.leading_match() or {})
    return ctx.engine.find(ctx.db, target, flt, as_raw=False, stats=stats)


def columnar_source(ctx: Ctx, pl: Any, rest: Any) -> tuple[str, list[dict]] | None:
    """``("group", docs)`` for ``[$match?, $group, ...]`` with the group computed in Arrow over
    shredded columns, ``("topK", docs)`` for ``[$match?, $sort+$limit, ...]`` on one exact
    column, when that is provably identical (see mongolake.engine.columnar); else None.
    ``docs`` is the output of the first stage after the leading ``$match``."""
    if not isinstance(ctx.arg, str) or not rest.stages or ctx.body.get("let") or ctx.body.get("collation"):
        return None
    first = rest.stages[0]
    if first.name == "$group":
        docs = columnar.group(ctx.engine, ctx.db, ctx.arg, pl.leading_match() or {}, first.spec)
        return None if docs is None else ("group", docs)
    if first.name == "$sort" and getattr(first, "limit", None) and isinstance(first.spec, dict):
        # an index whose order is the sort: walk it and stop after the limit
        docs = ctx.engine.index_top_k(ctx.db, ctx.arg, pl.leading_match() or {}, first.spec, int(first.limit))
        if docs is not None:
            return "topK", docs
        raws = columnar.top_k(ctx.engine, ctx.db, ctx.arg, pl.leading_match() or {}, first.spec, int(first.limit))
        return None if raws is None else ("topK", [bson.decode(r, CODEC_OPTIONS) for r in raws])
    return None


def _columnar(ctx: Ctx, pl: Any, rest: Any, pctx: Any) -> Iterator[dict] | None:
    from mongolake.query.aggregate.pipeline import Pipeline

    src = columnar_source(ctx, pl, rest)
    if src is None:
        return None
    return Pipeline(rest.stages[1:], rest.options).run(iter(src[1]), pctx)


def _pruned(ctx: Ctx, pl: Any, rest: Any, pctx: Any, stats: ScanStats | None = None) -> Iterator[dict] | None:
    """The pipeline over documents reduced to the shredded columns it reads (no ``_doc``
    decoded in files where those columns are exact and never null), when its result
    provably depends on nothing else (mongolake.query.aggregate.deps); else None."""
    plan = prune_plan(ctx, pl, rest)
    if plan is None:
        return None
    flt, paths = plan
    it = columnar.scan_pruned(ctx.engine, ctx.db, ctx.arg, flt, paths, stats)
    return None if it is None else rest.run(it, pctx)


def prune_plan(ctx: Ctx, pl: Any, rest: Any) -> tuple[dict, list[str]] | None:
    """(bound leading filter, columns to read) when column pruning applies."""
    from mongolake.query.aggregate.deps import source_fields

    if not isinstance(ctx.arg, str) or not rest.stages:
        return None
    c = ctx.engine.get_collection(ctx.db, ctx.arg)
    if c is None:
        return None
    uses = source_fields([(s.name, s.spec) for s in rest.stages])
    paths = None if uses is None else columnar.prune_plan(c, uses)
    if paths is None:
        return None
    return LetScope.for_command(ctx, ctx.body.get("let")).filter(pl.leading_match() or {}), paths


_AGG_FIELDS = {"pipeline", "explain", "allowDiskUse", "cursor", "bypassDocumentValidation", "collation", "hint",
               "let", "fromMongos", "needsMerge", "isMapReduceCommand", "collectionUUID", "exchange",
               "includeQueryStatsMetrics"}


_SERVER_SOURCES = ("$currentOp", "$listLocalSessions")


def _server_source(ctx: Ctx) -> tuple[list[dict], list] | None:
    """``$currentOp`` / ``$listLocalSessions`` as a first stage: the documents come from the
    server's own state, the rest of the pipeline runs over them."""
    pipeline = ctx.body.get("pipeline")
    if not isinstance(pipeline, list) or not pipeline or not isinstance(pipeline[0], dict) or len(pipeline[0]) != 1:
        return None
    name, spec = next(iter(pipeline[0].items()))
    if name not in _SERVER_SOURCES:
        return None
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.TypeMismatch, f"{name} options must be specified in an object")
    if ctx.arg not in (1, 1.0) or (name == "$currentOp" and ctx.db != "admin"):
        raise MongoError(ErrorCode.InvalidNamespace, f"{name} must be run against the 'admin' database with "
                         "{aggregate: 1}" if name == "$currentOp" else f"{name} must be run with {{aggregate: 1}}")
    if name == "$currentOp":
        from .diagnostics import current_ops
        docs = current_ops(ctx, show_all=bool(spec.get("idleConnections") or spec.get("idleSessions") is False))
    else:
        docs = [{"_id": {"id": Binary(k, 4)}, "lastUse": dt.datetime.fromtimestamp(t, dt.timezone.utc)}
                for k, t in list(ctx.state.sessions.items()) if isinstance(k, bytes)]
    return docs, pipeline[1:]


def _index_stats_source(ctx: Ctx) -> tuple[list[dict], list] | None:
    """``$indexStats`` as the first stage: one document per index of the collection,
    with how many reads the planner answered with it since the server started."""
    pipeline = ctx.body.get("pipeline")
    if not isinstance(pipeline, list) or not pipeline or not isinstance(pipeline[0], dict) \
            or next(iter(pipeline[0]), None) != "$indexStats" or len(pipeline[0]) != 1:
        return None
    spec = pipeline[0]["$indexStats"]
    if not isinstance(spec, dict) or spec:
        raise MongoError(28803, "The $indexStats stage specification must be an empty object")
    if not isinstance(ctx.arg, str):
        raise MongoError(ErrorCode.InvalidNamespace, "$indexStats must be run against a collection")
    import socket
    from bson.int64 import Int64
    c = ctx.engine.get_collection(ctx.db, ctx.arg)
    docs = []
    host = f"{socket.gethostname()}:{ctx.state.options.port}"
    for ix in (c.meta.indexes if c is not None else ()):
        with ctx.engine.lock:
            ops, since = ctx.engine.indexes.access_stats(c, ix["name"])
        docs.append({"name": ix["name"], "key": dict(ix["key"]), "host": host,
                     "accesses": {"ops": Int64(ops), "since": dt.datetime.fromtimestamp(since, dt.timezone.utc)},
                     "spec": dict(ix)})
    return docs, pipeline[1:]


@command("aggregate", help="Run an aggregation pipeline; returns a cursor.")
async def aggregate(ctx: Ctx) -> bytes:
    server_src = _server_source(ctx) or _index_stats_source(ctx)
    if server_src is not None:
        from mongolake.query.aggregate import parse_pipeline
        docs, rest_spec = server_src
        cursor = ctx.body.get("cursor") or {}
        pctx = EngineContext(ctx, ctx.body.get("let"), ctx.body.get("collation"))
        out_iter = parse_pipeline(rest_spec).run(iter(docs), pctx)
        src_ns = ctx.ns(ctx.arg) if isinstance(ctx.arg, str) else f"{ctx.db}.$cmd.aggregate"
        return open_cursor(ctx, src_ns, (bsonreply.encode(d) for d in out_iter),
                           batch_size=cursor.get("batchSize") if isinstance(cursor, dict) else None,
                           kind="aggregate")
    check_fields("aggregate", ctx.body, _AGG_FIELDS)
    from .changestream import is_change_stream, open_change_stream
    if is_change_stream(ctx.body.get("pipeline")):
        return await open_change_stream(ctx)
    pl, raw_pipeline, body = _parse(ctx)
    if isinstance(ctx.arg, str):
        check_hint(ctx, ctx.arg, body.get("hint"))
    if body.get("explain"):
        return bsonreply.encode(await explain_aggregate(ctx, body, "queryPlanner"))
    cursor = body.get("cursor")
    if not isinstance(cursor, dict):
        raise MongoError(ErrorCode.FailedToParse,
                         "The 'cursor' option is required, except for aggregate with the explain argument")
    bs = cursor.get("batchSize")
    pcount = pl.pure_count() if isinstance(ctx.arg, str) else None
    if pcount is not None:
        # [$match?, $count] and its $group form: counted in the engine (zone maps, Arrow
        # pushdown), no document decoded where the pushdown is exact
        flt = LetScope.for_command(ctx, body.get("let")).filter(pcount.filter)
        n = await asyncio.to_thread(ctx.engine.count, ctx.db, ctx.arg, flt)
        return open_cursor(ctx, ctx.ns(ctx.arg), (bsonreply.encode(d) for d in pcount.result(n)), batch_size=bs,
                           kind="aggregate")
    pctx = EngineContext(ctx, body.get("let"), body.get("collation"))
    rest = pl.without_leading_match()
    out_iter = await asyncio.to_thread(_columnar, ctx, pl, rest, pctx)     # Arrow work off the loop
    if out_iter is None:
        out_iter = _pruned(ctx, pl, rest, pctx)
    if out_iter is None:
        out_iter = rest.run(_source(ctx, pl), pctx)
    target = ctx.arg
    ns = ctx.ns(target) if isinstance(target, str) else f"{ctx.db}.$cmd.aggregate"
    if rest.writes_output:
        # $out / $merge run to completion now and answer an empty cursor
        for _ in out_iter:
            pass
        return bsonreply.cursor_reply([], 0, ns, True)
    return await open_cursor_offloaded(ctx, ns, (bsonreply.encode(d) for d in out_iter), batch_size=bs,
                                       kind="aggregate")


async def explain_aggregate(ctx: Ctx, body: dict, verbosity: str) -> dict:
    """``aggregate`` with ``explain: true`` or inside ``explain`` (see aggregate_explain)."""
    from .aggregate_explain import explain
    return await explain(ctx, body, verbosity)
