"""``$vectorSearch`` and ``$listSearchIndexes`` (Atlas search-index stages).

``$vectorSearch`` answers from the collection's ``vectorSearch`` search index
(:class:`mongolake.engine.indexing.vector.VectorIndex`): the index ranks the
vectors (approximate IVF search, or exact with ``exact: true``) with the
``filter`` applied *before* ranking on the definition's ``filter`` paths, so the
result is the best ``limit`` documents among those matching the filter. Every
result is fetched by key, re-checked against the filter and carries
``{$meta: "vectorSearchScore"}``. It must be the first stage; an unknown index
(or collection) yields no documents, as on Atlas.

``$listSearchIndexes`` lists the definitions kept in the catalog.
"""
from __future__ import annotations

import datetime as _dt
from typing import Any, Iterator

import bson
from bson.binary import Binary

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.aggregate.base import ParseOptions, RunEnv, Stage, stage
from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.query.expr.values import type_name
from mongolake.query.meta import attach

MAX_NUM_CANDIDATES = 10000
_VS_FIELDS = {"index", "path", "queryVector", "numCandidates", "limit", "filter", "exact"}
# operators Atlas accepts in a $vectorSearch pre-filter
_FILTER_FIELD_OPS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$not", "$exists"}
_FILTER_TOP_OPS = {"$and", "$or", "$nor"}


def _bad(msg: str) -> MongoError:
    return MongoError(ErrorCode.BadValue, msg)


def _wrong_type(field: str, v: Any, expected: str) -> MongoError:
    return MongoError(ErrorCode.TypeMismatch, f"BSON field '$vectorSearch.{field}' is the wrong type "
                                              f"'{type_name(v)}', expected type '{expected}'")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def filter_paths(flt: Any, out: set[str] | None = None) -> set[str]:
    """The field paths a ``$vectorSearch`` filter reads; raises for operators Atlas
    does not accept there."""
    out = set() if out is None else out
    if not isinstance(flt, dict):
        raise _bad("$vectorSearch filter must be a document")
    for k, v in flt.items():
        if k in _FILTER_TOP_OPS:
            if not isinstance(v, list) or not v:
                raise _bad(f"{k} must be a non-empty array in a $vectorSearch filter")
            for sub in v:
                filter_paths(sub, out)
        elif k.startswith("$"):
            raise _bad(f"Operator {k} is not supported in a $vectorSearch filter")
        else:
            out.add(k)
            if isinstance(v, dict) and any(op.startswith("$") for op in v):
                for op, arg in v.items():
                    if op not in _FILTER_FIELD_OPS:
                        raise _bad(f"Operator {op} is not supported in a $vectorSearch filter")
                    if op == "$not" and isinstance(arg, dict):
                        for inner in arg:
                            if inner not in _FILTER_FIELD_OPS - {"$not"}:
                                raise _bad(f"Operator {inner} is not supported in a $vectorSearch filter")
    return out


def _target(env: RunEnv, stage_name: str) -> tuple[Any, Any]:
    """(engine, collection or None) of the aggregated collection; 73 without one."""
    ctx = env.ctx
    eng = getattr(ctx, "engine", None)
    coll = getattr(ctx, "collection", None)
    if eng is None or not isinstance(coll, str):
        raise MongoError(ErrorCode.InvalidNamespace, f"{stage_name} must be run against a collection")
    return eng, eng.get_collection(getattr(ctx, "db", env.db), coll)


class VectorSearchStage(Stage):
    name = "$vectorSearch"
    position = "first"
    allowed_in_facet = False
    allowed_in_lookup = False

    def __init__(self, spec: dict, index: str, path: str, query: list, limit: int, num_candidates: int,
                 exact: bool, flt: dict | None):
        super().__init__(spec)
        self.index, self.path, self.query = index, path, query
        self.limit, self.num_candidates, self.exact = limit, num_candidates, exact
        self.filter = flt or None
        self.matcher = None
        if self.filter:
            from mongolake.query.filter import parse_filter
            from mongolake.query.matcher import compile_matcher
            self.matcher = compile_matcher(parse_filter(self.filter))

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        eng, c = _target(env, self.name)
        if c is None:
            return
        eng.indexes.ensure_special(c, "vectorSearch")
        with eng.lock:
            ix = next((x for x in eng.indexes.special(c, "vectorSearch") if x.name == self.index), None)
            if ix is None:
                return
            if self.filter:
                allowed = set(ix.filter_paths)
                for p in sorted(filter_paths(self.filter)):
                    if p not in allowed:
                        raise _bad(f"Path '{p}' needs to be indexed as filter")
            hits, _examined = ix.search(self.path, self.query, self.limit, num_candidates=self.num_candidates,
                                        exact=self.exact, matcher=self.matcher)
        for key, score in hits:
            raw = eng.lookup_key(c, key)
            if raw is None:
                continue                      # deleted since the index was read
            d = bson.decode(raw, CODEC_OPTIONS)
            if self.matcher is not None and not self.matcher(d):
                continue
            yield attach(d, vectorSearchScore=score)


@stage("$vectorSearch")
def _parse_vector_search(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.FailedToParse, f"$vectorSearch value must be an object. Found: {type_name(spec)}")
    for k in spec:
        if k not in _VS_FIELDS:
            raise MongoError(40415, f"BSON field '$vectorSearch.{k}' is an unknown field.")
    for k in ("queryVector", "path", "limit"):
        if k not in spec:
            raise MongoError(40414, f"BSON field '$vectorSearch.{k}' is missing but a required field")
    path = spec["path"]
    if not isinstance(path, str):
        raise _wrong_type("path", path, "string")
    index = spec.get("index", "default")
    if not isinstance(index, str):
        raise _wrong_type("index", index, "string")
    limit = spec["limit"]
    if not _number(limit):
        raise MongoError(8575100, "Expected limit field to be a number in $vectorSearch")
    if limit != int(limit) or limit <= 0:
        raise MongoError(7912700, "Expected limit to be positive")
    limit = int(limit)
    qv = spec["queryVector"]
    if isinstance(qv, Binary):
        from mongolake.engine.indexing.vector import as_vector
        v = as_vector(qv)
        if v is None:
            raise _bad("\"queryVector\" must be an array of numbers or a float32/int8 binary vector")
        query = [float(x) for x in v]
    elif isinstance(qv, list):
        if not qv:
            raise _bad("\"queryVector\" must not be empty")
        for x in qv:
            if not _number(x):
                raise _wrong_type("queryVector", x, "double")
        query = [float(x) for x in qv]
    else:
        raise _wrong_type("queryVector", qv, "array")
    exact = spec.get("exact", False)
    if not isinstance(exact, bool):
        raise _wrong_type("exact", exact, "bool")
    nc = spec.get("numCandidates")
    if nc is None:
        if not exact:
            raise _bad("\"numCandidates\" is required when \"exact\" is false or omitted")
        nc = limit
    elif not _number(nc) or nc != int(nc):
        raise _wrong_type("numCandidates", nc, "int")
    nc = int(nc)
    if not exact:
        if nc > MAX_NUM_CANDIDATES:
            raise _bad(f"\"numCandidates\" must be less than or equal to {MAX_NUM_CANDIDATES}")
        if nc < limit:
            raise _bad("\"numCandidates\" must be greater than or equal to \"limit\"")
    flt = spec.get("filter")
    if flt is not None:
        if not isinstance(flt, dict):
            raise _wrong_type("filter", flt, "object")
        filter_paths(flt)
    return VectorSearchStage(spec, index, path, query, limit, nc, exact, flt)


# -- $listSearchIndexes ---------------------------------------------------------------------

def search_index_doc(spec: dict) -> dict:
    """How ``$listSearchIndexes`` shows a stored search-index definition."""
    created = spec.get("createdAt") or _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    return {"id": spec.get("id", ""), "name": spec["name"], "type": spec.get("type", "vectorSearch"),
            "status": "READY", "queryable": True,
            "latestDefinitionVersion": {"version": int(spec.get("version", 0)), "createdAt": created},
            "latestDefinition": spec["definition"]}


def select_search_indexes(specs: list[dict], id_: Any = None, name: Any = None) -> list[dict]:
    return [search_index_doc(s) for s in specs
            if (id_ is None or s.get("id") == id_) and (name is None or s.get("name") == name)]


class ListSearchIndexesStage(Stage):
    name = "$listSearchIndexes"
    position = "first"
    allowed_in_facet = False
    allowed_in_lookup = False

    def apply(self, docs: Iterator[dict], env: RunEnv) -> Iterator[dict]:
        _eng, c = _target(env, self.name)
        if c is None:
            return
        yield from select_search_indexes(list(c.meta.search_indexes), self.spec.get("id"), self.spec.get("name"))


@stage("$listSearchIndexes")
def _parse_list_search_indexes(spec: Any, opts: ParseOptions) -> Stage:
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.FailedToParse, "The $listSearchIndexes stage specification must be an object. "
                                                  f"Found: {type_name(spec)}")
    for k, v in spec.items():
        if k not in ("id", "name"):
            raise MongoError(40415, f"BSON field '$listSearchIndexes.{k}' is an unknown field.")
        if not isinstance(v, str):
            raise MongoError(ErrorCode.TypeMismatch, f"BSON field '$listSearchIndexes.{k}' is the wrong type "
                                                     f"'{type_name(v)}', expected type 'string'")
    if "id" in spec and "name" in spec:
        raise MongoError(ErrorCode.InvalidOptions, "Cannot set both 'name' and 'id' for $listSearchIndexes.")
    return ListSearchIndexesStage(spec)
