"""Building blocks shared by every stage: the stage registry, parse options, the
run-time environment and the memory budget of blocking stages."""
from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator

import bson
from bson.timestamp import Timestamp

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.aggregate.context import DEFAULT_MEMORY_LIMIT, ctx_option
from mongolake.query.expr.core import Node, ParseState, compile_node

QueryExceededMemoryLimitNoDiskUseAllowed = 292


@dataclass(frozen=True)
class ParseOptions:
    """What stage parsers need to know about where they are.

    ``let_vars``: user variable names in scope (None: not checked at parse time);
    ``context``: None at top level, or "$facet" / "$lookup" / "$unionWith" /
    "$merge" for sub-pipelines (restricts some stages).
    """

    let_vars: frozenset | None = None
    context: str | None = None

    def state(self) -> ParseState:
        return ParseState(self.let_vars)

    def with_vars(self, names: Iterable[str]) -> "ParseOptions":
        if self.let_vars is None:
            return self
        return replace(self, let_vars=self.let_vars | frozenset(names))

    def nested(self, context: str) -> "ParseOptions":
        return replace(self, context=context)

    def expr(self, spec: Any) -> Node:
        return compile_node(spec, self.state())


class Stage:
    """One compiled stage. Subclasses set ``name`` and implement :meth:`apply`."""

    name = "$stage"
    blocking = False
    #: when False the stage may only appear first in a pipeline
    position: str = "any"   # "any" | "first" | "last"
    #: may appear inside $facet / inside $lookup and $unionWith sub-pipelines
    allowed_in_facet = True
    allowed_in_lookup = True

    def __init__(self, spec: Any):
        self.spec = spec

    def apply(self, docs: Iterator[dict], env: "RunEnv") -> Iterator[dict]:
        raise NotImplementedError

    def to_spec(self) -> dict:
        return {self.name: self.spec}


StageParser = Callable[[Any, ParseOptions], Stage]
STAGES: dict[str, StageParser] = {}


def stage(*names: str) -> Callable[[StageParser], StageParser]:
    """Register a stage parser ``parser(spec, options) -> Stage`` under ``names``."""

    def deco(parser: StageParser) -> StageParser:
        for n in names:
            STAGES[n] = parser
        return parser

    return deco


class RunEnv:
    """Per-run state: the context, the variables and the memory policy."""

    def __init__(self, ctx: Any, variables: dict | None = None):
        self.ctx = ctx
        base = dict(ctx_option(ctx, "variables", None) or {})
        if variables:
            base.update(variables)
        if "NOW" not in base:
            now = _dt.datetime.now(_dt.timezone.utc)
            base["NOW"] = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if "CLUSTER_TIME" not in base:
            base["CLUSTER_TIME"] = Timestamp(int(time.time()), 1)
        self.variables = base
        self.db: str = ctx_option(ctx, "db", "test")
        self.allow_disk_use: bool = bool(ctx_option(ctx, "allow_disk_use", True))
        self.memory_limit: int = int(ctx_option(ctx, "memory_limit_bytes", DEFAULT_MEMORY_LIMIT))
        #: per-stage limits overriding ``memory_limit`` (``{"$sort": bytes, "$group": bytes}``)
        self.memory_limits: dict = dict(ctx_option(ctx, "memory_limits", None) or {})
        #: folder of spill files (None: the system's temporary folder)
        self.spill_dir: str | None = ctx_option(ctx, "spill_dir", None)
        #: run-time statistics of stages (usedDisk, spills ...), keyed by stage object id; for explain
        self.stats: dict = {}

    def child(self, variables: dict) -> "RunEnv":
        """An environment for a sub-pipeline with extra variables."""
        env = RunEnv.__new__(RunEnv)
        env.ctx, env.db = self.ctx, self.db
        env.allow_disk_use, env.memory_limit = self.allow_disk_use, self.memory_limit
        env.memory_limits, env.spill_dir, env.stats = self.memory_limits, self.spill_dir, self.stats
        env.variables = {**self.variables, **variables}
        return env

    def scope(self, doc: Any) -> dict:
        """A fresh variable scope for evaluating expressions on ``doc``."""
        s = dict(self.variables)
        s["ROOT"] = doc
        s["CURRENT"] = doc
        return s

    def evaluator(self, node: Node) -> Callable[[Any], Any]:
        """``fn(doc)`` evaluating ``node`` with a scope reused across documents."""
        s = dict(self.variables)

        def fn(doc: Any) -> Any:
            s["ROOT"] = doc
            s["CURRENT"] = doc
            return node(s)

        return fn

    def budget(self, what: str) -> "MemoryBudget":
        return MemoryBudget(what, self.limit_for(what), enforce=not self.allow_disk_use)

    def limit_for(self, what: str) -> int:
        """Bytes the blocking stage ``what`` may hold in memory."""
        return int(self.memory_limits.get(what, self.memory_limit))

    def stage_stats(self, stage: Any) -> dict:
        """The mutable run-time statistics of ``stage`` (reported by explain executionStats)."""
        return self.stats.setdefault(id(stage), {})


def approx_size(v: Any) -> int:
    """Approximate in-memory cost of a value (its BSON size)."""
    try:
        if type(v) is dict:
            return len(bson.encode(v))
        return len(bson.encode({"v": v})) - 8
    except Exception:  # noqa: BLE001 - values bson cannot encode (MISSING...) are small
        return 16


@dataclass
class MemoryBudget:
    """Counts bytes held by a blocking stage; raises 292 past the limit without allowDiskUse."""

    what: str
    limit: int
    enforce: bool
    used: int = field(default=0)

    def add(self, value: Any) -> None:
        if not self.enforce:
            return
        self.used += approx_size(value)
        if self.used > self.limit:
            self.fail()

    def add_bytes(self, n: int) -> None:
        if not self.enforce:
            return
        self.used += n
        if self.used > self.limit:
            self.fail()

    def fail(self) -> None:
        if self.what == "$sort":
            msg = (f"Sort exceeded memory limit of {self.limit} bytes, but did not opt in to external sorting. "
                   "Aborting operation. Pass allowDiskUse:true to opt in.")
        else:
            msg = (f"Exceeded memory limit for {self.what}, but didn't allow external spilling. Pass "
                   "allowDiskUse:true to opt in.")
        raise MongoError(QueryExceededMemoryLimitNoDiskUseAllowed, msg)


def bad(code: int, msg: str) -> MongoError:
    return MongoError(code, msg)


def type_mismatch(msg: str) -> MongoError:
    return MongoError(ErrorCode.TypeMismatch, msg)


def check_not_nested(name: str, opts: ParseOptions) -> None:
    """Refuse stages that MongoDB forbids inside $facet / $lookup sub-pipelines."""
    if opts.context == "$facet":
        raise MongoError(40600, f"{name} is not allowed to be used within a $facet stage")
    if opts.context in ("$lookup", "$unionWith"):
        raise MongoError(51047, f"{name} is not allowed within a {opts.context} sub-pipeline")


__all__ = ["Stage", "STAGES", "stage", "ParseOptions", "RunEnv", "MemoryBudget", "approx_size", "bad"]
