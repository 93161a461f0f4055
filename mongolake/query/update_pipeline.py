"""Aggregation-pipeline updates: ``[{$set: ...}, {$unset: ...}, {$replaceWith: ...}]``.

Allowed stages are mongod's: ``$addFields``/``$set``, ``$project``, ``$unset``,
``$replaceRoot``/``$replaceWith``. Expressions come from
:mod:`mongolake.query.expressions`; ``$$NOW``/``$$CLUSTER_TIME`` and the ``let``
constants are available as variables. The result replaces the document (keeping
``_id``); the update description is the difference between the two documents,
computed like mongod's ``document_diff_calculator`` (``truncatedArrays`` for arrays
that shrank).
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Callable

from bson.timestamp import Timestamp

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.docpath import fmt_value, identical, type_name
from mongolake.query.projection import parse_add_fields, parse_projection

__all__ = ["parse_pipeline", "describe_diff"]

_AGG_STAGES = {
    "$match", "$group", "$sort", "$limit", "$skip", "$lookup", "$unwind", "$out", "$merge", "$facet", "$count",
    "$bucket", "$bucketAuto", "$sortByCount", "$sample", "$geoNear", "$graphLookup", "$redact", "$densify",
    "$fill", "$setWindowFields", "$unionWith", "$documents", "$collStats", "$indexStats", "$currentOp",
    "$listSessions", "$changeStream", "$search", "$searchMeta", "$planCacheStats", "$listLocalSessions",
    "$vectorSearch", "$changeStreamSplitLargeEvent",
}

Stage = Callable[[dict, dict], dict]


def _replacement(doc: dict, value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise MongoError(40228, f"'{what}' must evaluate to an object, but resulting value was: {fmt_value(value)}. "
                                f"Type of resulting value: '{type_name(value)}'. Input document: {fmt_value(doc)}")
    return value


def _compile(spec: Any) -> Callable[[dict, dict], Any]:
    from mongolake.query.expressions import compile_expression

    return compile_expression(spec)


def _stage(stage: Any) -> Stage:
    if not isinstance(stage, dict) or len(stage) != 1:
        raise MongoError(40323, "A pipeline stage specification object must contain exactly one field.")
    name, arg = next(iter(stage.items()))
    if name in ("$addFields", "$set"):
        af = parse_add_fields(arg)
        return lambda doc, variables: af.apply(doc, variables=variables)
    if name == "$project":
        if not isinstance(arg, dict):
            raise MongoError(15969, "$project specification must be an object")
        if not arg:
            raise MongoError(51272, "$project specification must have at least one field")
        proj = parse_projection(arg, find=False)
        return lambda doc, variables: proj.apply(doc, variables=variables)
    if name == "$unset":
        fields = [arg] if isinstance(arg, str) else arg
        if not isinstance(fields, list):
            raise MongoError(31002, "$unset specification must be a string or an array")
        if not fields:
            raise MongoError(31119, "$unset specification must be a string or an array with at least one field")
        if not all(isinstance(f, str) for f in fields):
            raise MongoError(31120, "$unset specification must be a string or an array containing only string values")
        proj = parse_projection({f: 0 for f in fields}, find=False)
        return lambda doc, variables: proj.apply(doc, variables=variables)
    if name in ("$replaceRoot", "$replaceWith"):
        if name == "$replaceRoot":
            if not isinstance(arg, dict):
                raise MongoError(40229, f"expected an object as specification for $replaceRoot stage, got "
                                        f"{type_name(arg)}")
            for k in arg:
                if k != "newRoot":
                    raise MongoError(40415, f"BSON field '$replaceRoot.{k}' is an unknown field.")
            if "newRoot" not in arg:
                raise MongoError(40414, "BSON field '$replaceRoot.newRoot' is missing but a required field")
            expr, what = _compile(arg["newRoot"]), "newRoot"
        else:
            expr, what = _compile(arg), "replacement document"
        return lambda doc, variables: _replacement(doc, expr(doc, variables), what)
    if name in _AGG_STAGES:
        raise MongoError(ErrorCode.InvalidOptions, f"{name} is not allowed to be used within an update")
    raise MongoError(40324, f"Unrecognized pipeline stage name: '{name}'")


def parse_pipeline(stages: list, *, let: dict | None = None, collation: Any = None) -> Callable[..., dict]:
    """Compile an update pipeline into ``fn(doc, *, now, timestamp) -> new document``."""
    compiled = [_stage(s) for s in stages]
    constants = dict(let or {})

    def run(doc: dict, *, now: Any = None, timestamp: Timestamp | None = None) -> dict:
        if now is None:
            now = _dt.datetime.now(_dt.timezone.utc)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        variables = dict(constants)
        variables["NOW"] = now
        variables["CLUSTER_TIME"] = timestamp if timestamp is not None else Timestamp(int(now.timestamp()), 1)
        for fn in compiled:
            doc = fn(doc, variables)
        return doc

    return run


def describe_diff(old: dict, new: dict) -> dict:
    """``{updatedFields, removedFields, truncatedArrays}`` turning ``old`` into ``new``."""
    updated: dict[str, Any] = {}
    removed: list[str] = []
    truncated: list[dict] = []
    _diff_obj(old, new, "", updated, removed, truncated)
    return {"updatedFields": updated, "removedFields": removed, "truncatedArrays": truncated}


def _diff_value(ov: Any, nv: Any, path: str, updated: dict, removed: list, truncated: list) -> None:
    if identical(ov, nv):
        return
    if isinstance(ov, dict) and isinstance(nv, dict):
        _diff_obj(ov, nv, path + ".", updated, removed, truncated)
    elif isinstance(ov, list) and isinstance(nv, list):
        _diff_arr(ov, nv, path, updated, removed, truncated)
    else:
        updated[path] = nv


def _diff_obj(old: dict, new: dict, prefix: str, updated: dict, removed: list, truncated: list) -> None:
    for k in old:
        if k not in new:
            removed.append(prefix + k)
    for k, nv in new.items():
        if k not in old:
            updated[prefix + k] = nv
        else:
            _diff_value(old[k], nv, prefix + k, updated, removed, truncated)


def _diff_arr(old: list, new: list, path: str, updated: dict, removed: list, truncated: list) -> None:
    if len(new) < len(old):
        truncated.append({"field": path, "newSize": len(new)})
    for i, nv in enumerate(new):
        p = f"{path}.{i}"
        if i >= len(old):
            updated[p] = nv
        elif isinstance(old[i], dict) and isinstance(nv, dict):
            _diff_value(old[i], nv, p, updated, removed, truncated)
        elif not identical(old[i], nv):
            updated[p] = nv
