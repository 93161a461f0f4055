"""``$collStats`` (through ``ctx.collection_stats``)."""
from __future__ import annotations

import datetime as _dt
import socket
from typing import Any, Iterator

from mongolake.errors import MongoError
from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
from mongolake.query.expr.values import type_name


class CollStatsStage(Stage):
    """One document describing the aggregated collection (``ctx.collection``)."""

    name = "$collStats"
    position = "first"
    allowed_in_facet = False

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        coll = getattr(env.ctx, "collection", None)
        if not isinstance(coll, str):
            raise MongoError(2, "$collStats must be run against a collection")
        stats = env.ctx.collection_stats(env.db, coll)
        now = _dt.datetime.now(_dt.timezone.utc)
        out: dict = {"ns": f"{env.db}.{coll}", "host": socket.gethostname(),
                     "localTime": now.replace(microsecond=now.microsecond // 1000 * 1000)}
        if "latencyStats" in self.spec:
            zero = {"latency": 0, "ops": 0}
            out["latencyStats"] = {"reads": dict(zero), "writes": dict(zero), "commands": dict(zero),
                                   "transactions": dict(zero)}
        if "storageStats" in self.spec:
            out["storageStats"] = dict(stats)
        if "count" in self.spec:
            out["count"] = stats.get("count", 0)
        if "queryExecStats" in self.spec:
            out["queryExecStats"] = {"collectionScans": {"total": 0, "nonTailable": 0}}
        yield out


@stage("$collStats")
def _parse_coll_stats(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(5447000, f"$collStats must take a nested object but found: {type_name(spec)}")
    for k, v in spec.items():
        if k not in ("latencyStats", "storageStats", "count", "queryExecStats"):
            raise MongoError(40415, f"BSON field '$collStats.{k}' is an unknown field.")
        if not isinstance(v, dict):
            raise MongoError(14, f"BSON field '$collStats.{k}' is the wrong type '{type_name(v)}', expected type "
                                 "'object'")
    return CollStatsStage(spec)
