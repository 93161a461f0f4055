"""``$out`` and ``$merge``: write the pipeline's result through the context.

Both materialise their input before writing (so a pipeline may read and write
the same collection) and output no documents.  ``$out`` calls
``ctx.write(db, coll, docs, "replace")``.  ``$merge`` looks target documents up
with ``ctx.scan(db, coll, {on...})``, replaces matches with
``ctx.replace_one`` and inserts the others in batches with
``ctx.write(db, coll, docs, "insert")``.
"""
from __future__ import annotations

from typing import Any, Iterator

from bson.objectid import ObjectId

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
from mongolake.query.aggregate.stages.basic import get_nested
from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import split_field_path, validate_var_name
from mongolake.query.expr.values import hash_key, type_name

_BATCH = 1000
_MERGE_PIPELINE_STAGES = {"$addFields", "$set", "$project", "$unset", "$replaceRoot", "$replaceWith"}


def _with_id(doc: dict) -> dict:
    if "_id" in doc:
        return doc
    return {"_id": ObjectId(), **doc}


def _target(spec: Any, what: str, code: int) -> tuple[str | None, str]:
    if isinstance(spec, str):
        if not spec:
            raise MongoError(ErrorCode.InvalidNamespace, f"Invalid {what} target namespace")
        return None, spec
    if isinstance(spec, dict):
        for k in spec:
            if k not in ("db", "coll", "timeseries"):
                raise MongoError(40415, f"BSON field '{what}.{k}' is an unknown field.")
        if "timeseries" in spec:
            raise MongoError(ErrorCode.NotImplemented, f"{what} to a time-series collection is not supported")
        coll, db = spec.get("coll"), spec.get("db")
        if not isinstance(coll, str) or not coll:
            raise MongoError(ErrorCode.FailedToParse, f"{what} requires a 'coll' string")
        if db is not None and not isinstance(db, str):
            raise MongoError(ErrorCode.TypeMismatch, f"{what} 'db' must be a string")
        return db, coll
    raise MongoError(code, f"{what} only supports a string or object argument, but found {type_name(spec)}")


class OutStage(Stage):
    name = "$out"
    position = "last"
    allowed_in_facet = False
    allowed_in_lookup = False

    def __init__(self, spec: Any, db: str | None, coll: str):
        super().__init__(spec)
        self.target = (db, coll)

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        rows = [_with_id(d) for d in docs]
        db, coll = self.target
        env.ctx.write(db or env.db, coll, rows, "replace")
        yield from ()


@stage("$out")
def _parse_out(spec: Any, opts: ParseOptions) -> Stage:
    db, coll = _target(spec, "$out", 16990)
    if coll.startswith("system."):
        raise MongoError(17385, f"Can't $out to special collection: {coll}")
    return OutStage(spec, db, coll)


class MergeStage(Stage):
    name = "$merge"
    position = "last"
    allowed_in_facet = False
    allowed_in_lookup = False

    def __init__(self, spec: Any, db: str | None, coll: str, on: list[str], matched: Any, not_matched: str,
                 let: list, pipeline: Any):
        super().__init__(spec)
        self.target = (db, coll)
        self.on = on
        self.on_parts = [split_field_path(f) for f in on]
        self.when_matched = matched
        self.when_not_matched = not_matched
        self.let = let
        self.pipeline = pipeline

    def _on_values(self, doc: dict) -> list:
        vals = []
        for f, parts in zip(self.on, self.on_parts):
            v = get_nested(doc, parts)
            if v is MISSING or v is None or type(v) is list:
                raise MongoError(51132, "$merge write error: 'on' field cannot be missing, null, undefined or an "
                                        f"array: {f}")
            vals.append(v)
        return vals

    def _updated(self, existing: dict, new: dict, env: RunEnv) -> dict | None:
        wm = self.when_matched
        if wm == "keepExisting":
            return None
        if wm == "fail":
            raise MongoError(ErrorCode.DuplicateKey, "$merge with whenMatched: fail found an existing document with "
                                                     "the same values for the 'on' field")
        if wm == "replace":
            out = dict(new)
        elif wm == "merge":
            out = dict(existing)
            out.update(new)
        else:
            variables = {"new": new}
            if self.let:
                s = env.scope(new)
                variables = {name: node(s) for name, node in self.let}
                variables = {k: (None if v is MISSING else v) for k, v in variables.items()}
            res = list(self.pipeline.run_env(iter([existing]), env.child(variables)))
            out = res[0] if res else dict(existing)
        if "_id" in out and hash_key(out["_id"]) != hash_key(existing.get("_id")):
            raise MongoError(ErrorCode.ImmutableField, "$merge failed to update the matching document, did you "
                                                       "attempt to modify the _id or the shard key? :: caused by :: "
                                                       "Performing an update on the path '_id' would modify the "
                                                       "immutable field '_id'")
        out.pop("_id", None)
        return {"_id": existing.get("_id"), **out}

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        rows = list(docs)
        db, coll = self.target
        db = db or env.db
        ctx = env.ctx
        pending: dict = {}
        for d in rows:
            if "_id" not in d and "_id" in self.on:
                d = _with_id(d)
            vals = self._on_values(d)
            key = hash_key(vals)
            if key in pending:
                upd = self._updated(pending[key], d, env)
                if upd is not None:
                    pending[key] = upd
                continue
            flt = {f: {"$eq": v} for f, v in zip(self.on, vals)}
            existing = next(iter(ctx.scan(db, coll, flt)), None)
            if existing is not None:
                upd = self._updated(existing, d, env)
                if upd is not None:
                    ctx.replace_one(db, coll, {"_id": existing["_id"]}, upd, False)
                continue
            if self.when_not_matched == "discard":
                continue
            if self.when_not_matched == "fail":
                raise MongoError(13113, "$merge could not find a matching document in the target collection for at "
                                        "least one document in the source collection")
            pending[key] = _with_id(d)
            if len(pending) >= _BATCH:
                ctx.write(db, coll, list(pending.values()), "insert")
                pending.clear()
        if pending:
            ctx.write(db, coll, list(pending.values()), "insert")
        yield from ()


@stage("$merge")
def _parse_merge(spec: Any, opts: ParseOptions) -> Stage:
    from mongolake.query.aggregate.pipeline import parse_pipeline

    if isinstance(spec, str):
        spec = {"into": spec}
    if not isinstance(spec, dict):
        raise MongoError(51182, f"$merge only supports a string or object argument, but found {type_name(spec)}")
    for k in spec:
        if k not in ("into", "on", "let", "whenMatched", "whenNotMatched"):
            raise MongoError(40415, f"BSON field '$merge.{k}' is an unknown field.")
    if "into" not in spec:
        raise MongoError(40414, "BSON field '$merge.into' is missing but a required field")
    db, coll = _target(spec["into"], "$merge", 51178)
    on = spec.get("on", "_id")
    on_list = [on] if isinstance(on, str) else on
    if not isinstance(on_list, list) or not on_list or not all(isinstance(f, str) for f in on_list):
        raise MongoError(51186, "$merge 'on' field must be either a string or an array of strings")
    if len(set(on_list)) != len(on_list):
        raise MongoError(31465, "Found a duplicate field in $merge 'on'")
    wm = spec.get("whenMatched", "merge")
    pipeline = None
    let = []
    if isinstance(wm, list):
        for st in wm:
            name = next(iter(st)) if isinstance(st, dict) and len(st) == 1 else None
            if name not in _MERGE_PIPELINE_STAGES:
                raise MongoError(ErrorCode.InvalidOptions, f"{name} is not allowed to be used within an update")
        let_spec = spec.get("let", {"new": "$$ROOT"})
        if not isinstance(let_spec, dict):
            raise MongoError(ErrorCode.TypeMismatch, "$merge 'let' must be an object")
        for name, expr in let_spec.items():
            validate_var_name(name)
            let.append((name, opts.expr(expr)))
        pipeline = parse_pipeline(wm, options=opts.with_vars(set(let_spec) | {"new"}).nested("$merge"))
    elif wm not in ("replace", "keepExisting", "merge", "fail"):
        raise MongoError(ErrorCode.BadValue, f"Enumeration value '{wm}' for field 'whenMatched' is not a valid "
                                             "value.")
    elif "let" in spec:
        raise MongoError(51199, "Cannot use 'let' variables with 'whenMatched: {}' mode".format(wm))
    wnm = spec.get("whenNotMatched", "insert")
    if wnm not in ("insert", "discard", "fail"):
        raise MongoError(ErrorCode.BadValue, f"Enumeration value '{wnm}' for field 'whenNotMatched' is not a valid "
                                             "value.")
    return MergeStage(spec, db, coll, on_list, wm, wnm, let, pipeline)
