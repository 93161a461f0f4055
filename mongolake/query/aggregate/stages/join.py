"""Stages reading other collections: ``$lookup``, ``$graphLookup``, ``$unionWith``; and ``$facet``."""
from __future__ import annotations

from typing import Any, Iterator

from bson.int64 import Int64
from bson.regex import Regex

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
from mongolake.query.aggregate.stages.basic import set_nested
from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import split_field_path, validate_var_name
from mongolake.query.expr.numeric import as_int64, kind
from mongolake.query.expr.values import hash_key, type_name

_CACHE_LIMIT = 4096


def path_values(doc: Any, parts: list[str]) -> list:
    """Every value at ``parts`` with query semantics (arrays expanded, including leaf arrays)."""
    out: list = []

    def walk(v: Any, i: int) -> None:
        if i == len(parts):
            if type(v) is list:
                out.extend(v)
            else:
                out.append(v)
            return
        if type(v) is dict:
            x = v.get(parts[i], MISSING)
            if x is not MISSING:
                walk(x, i + 1)
        elif type(v) is list:
            for el in v:
                if type(el) is dict:
                    walk(el, i)

    walk(doc, 0)
    return out


def _in_filter(field: str, values: list) -> dict:
    vals = []
    seen = set()
    for v in values:
        hk = hash_key(v)
        if hk not in seen:
            seen.add(hk)
            vals.append(v)
    if any(isinstance(v, Regex) or hasattr(v, "pattern") and hasattr(v, "flags") for v in vals):
        return {"$or": [{field: {"$eq": v}} for v in vals]}
    if len(vals) == 1:
        return {field: {"$eq": vals[0]}}
    return {field: {"$in": vals}}


def _mentions_variables(spec: Any) -> bool:
    if isinstance(spec, str):
        return spec.startswith("$$")
    if isinstance(spec, dict):
        return any(k == "$expr" or _mentions_variables(v) for k, v in spec.items())
    if isinstance(spec, list):
        return any(_mentions_variables(v) for v in spec)
    return False


def _namespace(spec: Any, what: str) -> tuple[str | None, str | None]:
    if spec is MISSING:
        return None, None
    if isinstance(spec, str):
        return None, spec
    if isinstance(spec, dict) and set(spec) <= {"db", "coll"} and isinstance(spec.get("coll"), str):
        db = spec.get("db")
        return (db if isinstance(db, str) else None), spec["coll"]
    raise MongoError(ErrorCode.FailedToParse, f"{what} must be a string or an object with 'db' and 'coll', is type "
                                              f"{type_name(spec)}")


class _SubPipeline:
    """A parsed sub-pipeline plus the filter of its leading $match when it can be pushed to scan()."""

    def __init__(self, stages: list, opts: ParseOptions, context: str):
        from mongolake.query.aggregate.pipeline import parse_pipeline

        self.pipeline = parse_pipeline(stages, options=opts.nested(context))
        lm = self.pipeline.leading_match()
        if lm is not None and not _mentions_variables(lm):
            self.pushdown: dict | None = lm
            self.rest = self.pipeline.without_leading_match()
        else:
            self.pushdown, self.rest = None, self.pipeline
        self.correlated = _mentions_variables(stages)


def _combine(a: dict | None, b: dict | None) -> dict | None:
    if not a:
        return b
    if not b:
        return a
    return {"$and": [a, b]}


# --- $lookup -------------------------------------------------------------------------------------


class LookupStage(Stage):
    name = "$lookup"

    def __init__(self, spec: Any, db: str | None, coll: str | None, as_path: list[str], local: list[str] | None,
                 foreign: str | None, let: list, sub: _SubPipeline | None):
        super().__init__(spec)
        self.from_db, self.from_coll = db, coll
        self.as_path = as_path
        self.local = local
        self.foreign = foreign
        self.let = let
        self.sub = sub

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        db = self.from_db or env.db
        cache: dict = {}
        uncorrelated = self.sub is not None and not self.let and not self.sub.correlated
        for d in docs:
            flt = None
            key: Any = ()
            if self.local is not None:
                values = path_values(d, self.local) or [None]
                flt = _in_filter(self.foreign, values)  # type: ignore[arg-type]
                key = hash_key(flt)
            if self.sub is None:
                matches = cache.get(key)
                if matches is None:
                    matches = list(env.ctx.scan(db, self.from_coll, flt))
                    if len(cache) < _CACHE_LIMIT:
                        cache[key] = matches
            else:
                if uncorrelated and key in cache:
                    matches = cache[key]
                else:
                    variables = {}
                    if self.let:
                        s = env.scope(d)
                        for name, node in self.let:
                            v = node(s)
                            variables[name] = None if v is MISSING else v
                    child = env.child(variables)
                    if self.sub.pipeline.is_collectionless:
                        matches = list(self._run_documents(flt, child))
                    else:
                        source = env.ctx.scan(db, self.from_coll, _combine(flt, self.sub.pushdown))
                        matches = list(self.sub.rest.run_env(source, child))
                    if uncorrelated and len(cache) < _CACHE_LIMIT:
                        cache[key] = matches
            yield set_nested(d, self.as_path, list(matches))

    def _run_documents(self, flt: dict | None, env: RunEnv) -> Iterator[dict]:
        """A sub-pipeline starting with $documents; the join condition applies right after it."""
        from mongolake.query.aggregate.pipeline import Pipeline

        stages = self.sub.pipeline.stages  # type: ignore[union-attr]
        docs = Pipeline(stages[:1]).run_env(iter(()), env)
        if flt:
            from mongolake.query.filter import parse_filter
            from mongolake.query.matcher import compile_matcher

            m = compile_matcher(parse_filter(flt))
            docs = (d for d in docs if m(d))
        return Pipeline(stages[1:]).run_env(docs, env)


@stage("$lookup")
def _parse_lookup(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.FailedToParse, "the $lookup specification must be an Object")
    allowed = ("from", "as", "localField", "foreignField", "let", "pipeline")
    for k in spec:
        if k not in allowed:
            raise MongoError(ErrorCode.FailedToParse, f"unknown argument to $lookup: {k}")
    for k in ("as", "localField", "foreignField"):
        if k in spec and not isinstance(spec[k], str):
            raise MongoError(ErrorCode.FailedToParse, f"$lookup argument '{k}: {spec[k]!r}' must be a string, is "
                                                      f"type {type_name(spec[k])}")
    if "as" not in spec:
        raise MongoError(ErrorCode.FailedToParse, "must specify 'as' field for a $lookup")
    db, coll = _namespace(spec.get("from", MISSING), "$lookup 'from'")
    has_local, has_foreign = "localField" in spec, "foreignField" in spec
    if has_local != has_foreign:
        raise MongoError(ErrorCode.FailedToParse, "$lookup requires both or neither of 'localField' and "
                                                  "'foreignField' to be specified")
    if "pipeline" not in spec and not has_local:
        raise MongoError(ErrorCode.FailedToParse, "$lookup requires either 'pipeline' or both 'localField' and "
                                                  "'foreignField' to be specified")
    if "let" in spec and "pipeline" not in spec:
        raise MongoError(ErrorCode.FailedToParse, "$lookup with 'let' must also specify a 'pipeline'")
    let_spec = spec.get("let", {})
    if not isinstance(let_spec, dict):
        raise MongoError(ErrorCode.FailedToParse, "$lookup argument 'let' must be an object")
    let = []
    for name, expr in let_spec.items():
        validate_var_name(name)
        let.append((name, opts.expr(expr)))
    sub = None
    if "pipeline" in spec:
        if not isinstance(spec["pipeline"], list):
            raise MongoError(ErrorCode.FailedToParse, "$lookup argument 'pipeline' must be an array")
        sub = _SubPipeline(spec["pipeline"], opts.with_vars(let_spec.keys()), "$lookup")
    if coll is None and not (sub is not None and sub.pipeline.is_collectionless):
        raise MongoError(ErrorCode.FailedToParse, "must specify 'from' field for a $lookup")
    local = split_field_path(spec["localField"]) if has_local else None
    if has_foreign:
        split_field_path(spec["foreignField"])
    return LookupStage(spec, db, coll, split_field_path(spec["as"]), local, spec.get("foreignField"), let, sub)


# --- $graphLookup --------------------------------------------------------------------------------


class GraphLookupStage(Stage):
    name = "$graphLookup"

    def __init__(self, spec: dict, start: Any, opts: dict):
        super().__init__(spec)
        self.start = start
        self.o = opts

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        o = self.o
        db = o["db"] or env.db
        budget = env.budget("$graphLookup")
        start_fn = env.evaluator(self.start)
        for d in docs:
            sv = start_fn(d)
            frontier = list(sv) if type(sv) is list else [None if sv is MISSING else sv]
            queried: set = set()
            found: dict = {}
            depth = 0
            while frontier and (o["max_depth"] is None or depth <= o["max_depth"]):
                fresh = []
                for v in frontier:
                    hk = hash_key(v)
                    if hk not in queried:
                        queried.add(hk)
                        fresh.append(v)
                if not fresh:
                    break
                flt = _combine(_in_filter(o["to"], fresh), o["restrict"])
                nxt: list = []
                for fd in env.ctx.scan(db, o["coll"], flt):
                    idk = hash_key(fd.get("_id"))
                    if idk in found:
                        continue
                    out = fd if o["depth_field"] is None else set_nested(fd, o["depth_field"], Int64(depth))
                    found[idk] = out
                    budget.add(out)
                    nxt.extend(path_values(fd, o["from_parts"]))
                frontier = nxt
                depth += 1
            yield set_nested(d, o["as"], list(found.values()))


@stage("$graphLookup")
def _parse_graph_lookup(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(40327, "the $graphLookup stage specification must be an object")
    allowed = ("from", "startWith", "connectFromField", "connectToField", "as", "maxDepth", "depthField",
               "restrictSearchWithMatch")
    for k in spec:
        if k not in allowed:
            raise MongoError(40104, f"Unknown argument to $graphLookup: {k}")
    for k in ("from", "startWith", "connectFromField", "connectToField", "as"):
        if k not in spec:
            raise MongoError(40105, "$graphLookup requires 'from', 'startWith', 'connectFromField', "
                                    "'connectToField' and 'as' to be specified")
    for k in ("connectFromField", "connectToField", "as", "depthField"):
        if k in spec:
            v = spec[k]
            if not isinstance(v, str):
                raise MongoError(40103, f"expected string as argument for {k}, found: {type_name(v)}")
            if v.startswith("$"):
                raise MongoError(16410, "FieldPath field names may not start with '$'.")
    max_depth = None
    if "maxDepth" in spec:
        md = spec["maxDepth"]
        if kind(md) is None:
            raise MongoError(40100, f"maxDepth must be numeric, found type: {type_name(md)}")
        max_depth = as_int64(md)
        if max_depth is None or max_depth < 0:
            raise MongoError(40101, f"maxDepth requires a nonnegative argument, found: {md}")
    restrict = spec.get("restrictSearchWithMatch")
    if restrict is not None:
        if not isinstance(restrict, dict):
            raise MongoError(40185, "restrictSearchWithMatch must be an object")
        if _mentions_variables(restrict):
            raise MongoError(40186, "Cannot use $expr or variables in restrictSearchWithMatch")
        from mongolake.query.filter import parse_filter
        parse_filter(restrict)
    db, coll = _namespace(spec["from"], "$graphLookup 'from'")
    o = {"db": db, "coll": coll, "to": spec["connectToField"], "from_parts": split_field_path(spec["connectFromField"]),
         "as": split_field_path(spec["as"]), "max_depth": max_depth, "restrict": restrict,
         "depth_field": split_field_path(spec["depthField"]) if "depthField" in spec else None}
    split_field_path(spec["connectToField"])
    return GraphLookupStage(spec, opts.expr(spec["startWith"]), o)


# --- $unionWith ----------------------------------------------------------------------------------


class UnionWithStage(Stage):
    name = "$unionWith"

    def __init__(self, spec: Any, db: str | None, coll: str | None, sub: _SubPipeline | None):
        super().__init__(spec)
        self.db, self.coll, self.sub = db, coll, sub

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        yield from docs
        db = self.db or env.db
        if self.sub is None:
            yield from env.ctx.scan(db, self.coll, None)
            return
        source = iter(()) if self.sub.pipeline.is_collectionless else env.ctx.scan(db, self.coll, self.sub.pushdown)
        yield from self.sub.rest.run_env(source, env)


@stage("$unionWith")
def _parse_union_with(spec: Any, opts: ParseOptions) -> Stage:
    if isinstance(spec, str):
        return UnionWithStage(spec, None, spec, None)
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.FailedToParse, "the $unionWith stage specification must be an object or string, "
                                                  f"but found {type_name(spec)}")
    for k in spec:
        if k not in ("coll", "pipeline"):
            raise MongoError(40415, f"BSON field '$unionWith.{k}' is an unknown field.")
    db, coll = _namespace(spec.get("coll", MISSING), "$unionWith 'coll'")
    sub = None
    if "pipeline" in spec:
        if not isinstance(spec["pipeline"], list):
            raise MongoError(ErrorCode.TypeMismatch, "BSON field '$unionWith.pipeline' is the wrong type, expected "
                                                     "type 'array'")
        sub = _SubPipeline(spec["pipeline"], opts, "$unionWith")
    if coll is None and not (sub is not None and sub.pipeline.is_collectionless):
        raise MongoError(ErrorCode.FailedToParse, "$unionWith stage without explicit collection must have a "
                                                  "pipeline with $documents as first stage")
    return UnionWithStage(spec, db, coll, sub)


# --- $facet --------------------------------------------------------------------------------------


class FacetStage(Stage):
    name = "$facet"
    blocking = True
    allowed_in_facet = False

    def __init__(self, spec: dict, facets: list):
        super().__init__(spec)
        self.facets = facets

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        budget = env.budget("$facet")
        rows = []
        for d in docs:
            budget.add(d)
            rows.append(d)
        yield {name: list(p.run_env(iter(rows), env)) for name, p in self.facets}


@stage("$facet")
def _parse_facet(spec: Any, opts: ParseOptions) -> Stage:
    from mongolake.query.aggregate.pipeline import parse_pipeline

    if not isinstance(spec, dict) or not spec:
        raise MongoError(40169, "the $facet specification must be a non-empty object")
    facets = []
    for name, sub in spec.items():
        if not isinstance(name, str) or not name or name.startswith("$") or "." in name:
            raise MongoError(40173, f"$facet field names cannot start with '$' or contain '.': {name}")
        if not isinstance(sub, list):
            raise MongoError(40170, f"arguments to $facet must be arrays, {name} is type {type_name(sub)}")
        if not sub:
            raise MongoError(40171, f"sub-pipeline in $facet stage cannot be empty: {name}")
        facets.append((name, parse_pipeline(sub, options=opts.nested("$facet"))))
    return FacetStage(spec, facets)
