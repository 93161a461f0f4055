"""createIndexes, listIndexes, dropIndexes: index metadata kept in the catalog.

The engine keeps an in-memory sorted structure per B-tree style index (see
``mongolake/engine/indexing``): queries use them, unique indexes are enforced
through them. ``createIndexes`` builds the new indexes before it answers, as
MongoDB does, in a worker thread from a snapshot while writes go on; they enter
the catalog (and service) together, once built and checked for duplicates.
"""
from __future__ import annotations

import asyncio
from typing import Any

from mongolake.errors import ErrorCode, MongoError

from . import bsonreply
from .context import Ctx
from .crud_read import open_cursor
from .registry import command

_KINDS = {"hashed", "text", "2dsphere", "2d"}
_OPTION_KEYS = {"unique", "sparse", "partialFilterExpression", "expireAfterSeconds", "collation", "hidden",
                "weights", "default_language", "language_override", "textIndexVersion", "2dsphereIndexVersion",
                "bits", "min", "max", "wildcardProjection", "background", "storageEngine", "v", "bucketSize"}


def default_name(key: dict) -> str:
    return "_".join(f"{k}_{v}" for k, v in key.items())


def validate_spec(spec: Any) -> dict:
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.TypeMismatch, "index specification must be an object")
    key = spec.get("key")
    if not isinstance(key, dict) or not key:
        raise MongoError(ErrorCode.CannotCreateIndex, "Index keys cannot be empty." if isinstance(key, dict)
                         else "The 'key' field is a required property of an index specification")
    for f, v in key.items():
        if not f:
            raise MongoError(ErrorCode.CannotCreateIndex, "Index keys cannot be an empty field.")
        if isinstance(v, bool) or not (isinstance(v, (int, float)) and v != 0 or v in _KINDS):
            raise MongoError(ErrorCode.CannotCreateIndex,
                             f"Values in the index key pattern can only be numbers or strings, and non-zero; got {f}: {v!r}")
    name = spec.get("name", default_name(key))
    if not isinstance(name, str) or not name:
        raise MongoError(ErrorCode.CannotCreateIndex, "index name must be a non-empty string")
    for k in spec:
        if k not in ("key", "name") and k not in _OPTION_KEYS:
            raise MongoError(ErrorCode.InvalidIndexSpecificationOption,
                             f"The field '{k}' is not valid for an index specification. Specification: {spec}")
    kinds = sorted(set(v for v in key.values() if v in _KINDS and v != "hashed"))
    special = None
    if kinds:
        from mongolake.engine.indexing.kinds import INDEX_KINDS, index_class
        if len(kinds) > 1 or kinds[0] not in INDEX_KINDS:
            raise MongoError(ErrorCode.NotImplemented, f"{', '.join(kinds)} indexes are not supported yet by MongoLake")
        special = index_class(kinds[0])
    if sum(1 for v in key.values() if v == "hashed") > 1:
        raise MongoError(ErrorCode.CannotCreateIndex, "A maximum of one index field is allowed to be hashed")
    out = {"v": 2, "key": dict(key), "name": name}
    for k in sorted(_OPTION_KEYS & set(spec)):
        if k not in ("v", "background"):
            out[k] = spec[k]
    if "partialFilterExpression" in out:
        from mongolake.query.filter import parse_filter
        parse_filter(out["partialFilterExpression"])
    if special is not None:
        out = special.validate_spec(out)       # kind-specific checks and normalisation
    return out


def _same_options(a: dict, b: dict) -> bool:
    keys = ("unique", "sparse", "partialFilterExpression", "expireAfterSeconds", "collation",
            "weights", "default_language", "language_override", "2dsphereIndexVersion")
    return all(bool(a.get(k)) == bool(b.get(k)) if k in ("unique", "sparse") else a.get(k) == b.get(k)
               for k in keys)


@command("createIndexes", help="Create indexes (built in memory, used by queries; unique enforced).", write=True)
async def create_indexes(ctx: Ctx) -> dict:
    name = ctx.coll_name()
    specs = ctx.body.get("indexes")
    if not isinstance(specs, list) or not specs:
        raise MongoError(ErrorCode.BadValue, "Must specify at least one index to create")
    new = [validate_spec(s) for s in specs]
    eng = ctx.engine
    created = eng.get_collection(ctx.db, name) is None
    c = eng.collection_for_write(ctx.db, name)
    existing = list(c.meta.indexes)
    before = len(existing)
    to_add = []
    for spec in new:
        same_name = next((ix for ix in existing + to_add if ix["name"] == spec["name"]), None)
        same_key = next((ix for ix in existing + to_add if list(ix["key"].items()) == list(spec["key"].items())),
                        None)
        if same_name is not None:
            if list(same_name["key"].items()) != list(spec["key"].items()):
                raise MongoError(ErrorCode.IndexKeySpecsConflict,
                                 f"An existing index has the same name as the requested index. When index names are "
                                 f"not specified, they are auto generated and can cause conflicts. Please refer to "
                                 f"our documentation. Requested index: {spec}, existing index: {same_name}")
            if not _same_options(same_name, spec):
                raise MongoError(ErrorCode.IndexOptionsConflict,
                                 f"An equivalent index already exists with the same name but different options. "
                                 f"Requested index: {spec}, existing index: {same_name}")
            continue
        if same_key is not None and _same_options(same_key, spec):
            raise MongoError(ErrorCode.IndexOptionsConflict,
                             f"Index already exists with a different name: {same_key['name']}")
        other_text = next((ix for ix in existing + to_add if "_fts" in ix["key"]), None) \
            if "_fts" in spec["key"] else None
        if other_text is not None:                                    # one text index per collection
            raise MongoError(ErrorCode.IndexOptionsConflict,
                             f"An equivalent index already exists with a different name and options. "
                             f"Requested index: {spec}, existing index: {other_text}")
        to_add.append(spec)
    if to_add:
        # built (unique ones checked) from a snapshot, then added to the catalog
        to_add = await asyncio.to_thread(eng.indexes.create, c, to_add)
    out: dict[str, Any] = {"numIndexesBefore": before, "numIndexesAfter": before + len(to_add),
                           "createdCollectionAutomatically": created}
    if not to_add:
        out["note"] = "all indexes already exist"
    out["ok"] = 1.0
    return out


@command("listIndexes", help="Indexes of a collection (cursor).")
async def list_indexes(ctx: Ctx) -> bytes:
    name = ctx.coll_name()
    c = ctx.engine.get_collection(ctx.db, name)
    if c is None:
        raise MongoError(ErrorCode.NamespaceNotFound, f"ns does not exist: {ctx.db}.{name}")
    docs = [bsonreply.encode(ix) for ix in c.meta.indexes]
    cursor = ctx.body.get("cursor") or {}
    bs = cursor.get("batchSize") if isinstance(cursor, dict) else None
    return open_cursor(ctx, ctx.ns(name), iter(docs), batch_size=bs)


@command("dropIndexes", "deleteIndexes", help="Drop indexes by name, key pattern, list or '*'.", write=True)
async def drop_indexes(ctx: Ctx) -> dict:
    name = ctx.coll_name()
    c = ctx.engine.get_collection(ctx.db, name)
    if c is None:
        raise MongoError(ErrorCode.NamespaceNotFound, f"ns not found {ctx.db}.{name}")
    which = ctx.body.get("index")
    existing = list(c.meta.indexes)
    before = len(existing)
    if which == "*":
        keep = [ix for ix in existing if ix["name"] == "_id_"]
    else:
        targets = which if isinstance(which, list) else [which]
        keep = list(existing)
        for t in targets:
            if isinstance(t, str):
                ix = next((i for i in keep if i["name"] == t), None)
                if ix is None:
                    raise MongoError(ErrorCode.IndexNotFound, f"index not found with name [{t}]")
            elif isinstance(t, dict):
                ix = next((i for i in keep if list(i["key"].items()) == list(t.items())), None)
                if ix is None:
                    raise MongoError(ErrorCode.IndexNotFound, f"can't find index with key: {t}")
            else:
                raise MongoError(ErrorCode.TypeMismatch, "index must be a string, an object or an array of names")
            if ix["name"] == "_id_":
                raise MongoError(ErrorCode.InvalidOptions, "cannot drop _id index")
            keep.remove(ix)
    ctx.engine.set_indexes(c, keep)
    return {"nIndexesWas": before, "ok": 1.0}
