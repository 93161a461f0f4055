"""Atlas search-index commands: createSearchIndexes, updateSearchIndex,
dropSearchIndex and the deprecated listSearchIndexes (drivers list with the
``$listSearchIndexes`` stage, see ``query/aggregate/stages/search.py``).

Only ``type: "vectorSearch"`` indexes are implemented (answered by
:class:`mongolake.engine.indexing.vector.VectorIndex`); Atlas Search full-text
indexes (``type: "search"``, the default) answer NotImplemented. Definitions are
kept in the catalog (``CollectionMeta.search_indexes``); indexes are built in
memory by the command (in a worker thread) or, after a restart, at first use,
and are queryable at once (status ``READY``).

Stored spec: ``{name, type: "vectorSearch", id, definition, version, createdAt,
key}``. ``key`` (``{<vector path>: "vectorSearch"}``) only keeps the index
manager from taking the spec for a B-tree one.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from bson import ObjectId

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.expr.values import type_name

from . import bsonreply
from .context import Ctx
from .crud_read import open_cursor
from .registry import command


def _collection(ctx: Ctx, name: str) -> Any:
    c = ctx.engine.get_collection(ctx.db, name)
    if c is None:
        raise MongoError(ErrorCode.NamespaceNotFound, f"Collection '{ctx.db}.{name}' does not exist.")
    return c


def _now() -> dt.datetime:
    t = dt.datetime.now(dt.timezone.utc)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _stored(name: str, definition: dict, *, id_: str | None = None, version: int = 0) -> dict:
    from mongolake.engine.indexing.vector import VectorIndex
    spec = VectorIndex.validate_spec({"name": name, "definition": definition})
    vpath = next(f["path"] for f in spec["definition"]["fields"] if f["type"] == "vector")
    return {"name": name, "type": "vectorSearch", "id": id_ or str(ObjectId()), "definition": spec["definition"],
            "version": version, "createdAt": _now(), "key": {vpath: "vectorSearch"}}


async def _build(ctx: Ctx, c: Any) -> None:
    """Build the collection's vector indexes now, in a worker thread (the event loop
    keeps serving), so the command answers when the index is ready, as its
    ``READY`` status says. (After a restart the first ``$vectorSearch`` builds it.)"""
    eng = ctx.engine

    def run() -> None:
        eng.indexes.ensure_special(c, "vectorSearch")
        with eng.lock:
            eng.indexes.special(c, "vectorSearch")
    await asyncio.to_thread(run)


def _check_type(cmd: str, field: str, v: Any, expected: str, ok: bool) -> None:
    if not ok:
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field '{cmd}.{field}' is the wrong type '{type_name(v)}', "
                                                 f"expected type '{expected}'")


def _find(specs: list[dict], cmd: str, body: dict) -> dict:
    name, id_ = body.get("name"), body.get("id")
    if name is not None and id_ is not None:
        raise MongoError(ErrorCode.InvalidOptions, "Cannot set both 'name' and 'id'.")
    if name is None and id_ is None:
        raise MongoError(ErrorCode.InvalidOptions, "Must set either 'name' or 'id'.")
    for f, v in (("name", name), ("id", id_)):
        if v is not None:
            _check_type(cmd, f, v, "string", isinstance(v, str))
    for s in specs:
        if (name is not None and s["name"] == name) or (id_ is not None and s.get("id") == id_):
            return s
    what = f"name '{name}'" if name is not None else f"id '{id_}'"
    raise MongoError(ErrorCode.IndexNotFound, f"Search index with {what} not found")


@command("createSearchIndexes", help="Create Atlas-style search indexes (type 'vectorSearch').", write=True,
         in_txn=False)
async def create_search_indexes(ctx: Ctx) -> dict:
    name = ctx.coll_name()
    indexes = ctx.body.get("indexes")
    if indexes is None:
        raise MongoError(40414, "BSON field 'createSearchIndexes.indexes' is missing but a required field")
    _check_type("createSearchIndexes", "indexes", indexes, "array", isinstance(indexes, list))
    if not indexes:
        raise MongoError(ErrorCode.BadValue, "createSearchIndexes requires at least one index")
    c = _collection(ctx, name)
    existing = list(c.meta.search_indexes)
    taken = {ix["name"] for ix in c.meta.indexes}
    created: list[dict] = []
    new: list[dict] = []
    for i, ix in enumerate(indexes):
        _check_type("createSearchIndexes", f"indexes.{i}", ix, "object", isinstance(ix, dict))
        for k in ix:
            if k not in ("name", "type", "definition"):
                raise MongoError(40415, f"BSON field 'createSearchIndexes.indexes.{k}' is an unknown field.")
        iname = ix.get("name", "default")
        _check_type("createSearchIndexes", "indexes.name", iname, "string", isinstance(iname, str))
        typ = ix.get("type", "search")
        _check_type("createSearchIndexes", "indexes.type", typ, "string", isinstance(typ, str))
        if "definition" not in ix:
            raise MongoError(40414, "BSON field 'createSearchIndexes.indexes.definition' is missing but a required "
                                    "field")
        if typ == "search":
            raise MongoError(ErrorCode.NotImplemented, "createSearchIndexes: Atlas Search indexes (type 'search') are "
                                                       "not supported by MongoLake; only type 'vectorSearch' is")
        if typ != "vectorSearch":
            raise MongoError(ErrorCode.BadValue, f"Invalid index type '{typ}': must be 'search' or 'vectorSearch'")
        spec = _stored(iname, ix["definition"])
        same = next((s for s in existing + new if s["name"] == iname), None)
        if same is not None:
            if same["definition"] != spec["definition"]:
                raise MongoError(ErrorCode.IndexAlreadyExists,
                                 f"Duplicate Index: a search index named '{iname}' already exists with a different "
                                 f"definition")
            created.append({"id": same["id"], "name": iname})
            continue
        if iname in taken:
            raise MongoError(ErrorCode.IndexAlreadyExists,
                             f"Duplicate Index: the collection has an index named '{iname}'; MongoLake needs search "
                             f"index names distinct from index names")
        new.append(spec)
        created.append({"id": spec["id"], "name": iname})
    if new:
        ctx.engine.set_search_indexes(c, existing + new)
        await _build(ctx, c)
    return {"indexesCreated": created, "ok": 1.0}


@command("updateSearchIndex", help="Replace the definition of a search index.", write=True, in_txn=False)
async def update_search_index(ctx: Ctx) -> dict:
    name = ctx.coll_name()
    if "definition" not in ctx.body:
        raise MongoError(40414, "BSON field 'updateSearchIndex.definition' is missing but a required field")
    definition = ctx.body["definition"]
    _check_type("updateSearchIndex", "definition", definition, "object", isinstance(definition, dict))
    c = _collection(ctx, name)
    specs = list(c.meta.search_indexes)
    old = _find(specs, "updateSearchIndex", ctx.body)
    new = _stored(old["name"], definition, id_=old["id"], version=int(old.get("version", 0)) + 1)
    if new["definition"] != old["definition"]:
        ctx.engine.set_search_indexes(c, [new if s is old else s for s in specs])
        await _build(ctx, c)
    return {"ok": 1.0}


@command("dropSearchIndex", help="Drop a search index by name or id.", write=True, in_txn=False)
async def drop_search_index(ctx: Ctx) -> dict:
    name = ctx.coll_name()
    c = _collection(ctx, name)
    specs = list(c.meta.search_indexes)
    old = _find(specs, "dropSearchIndex", ctx.body)
    ctx.engine.set_search_indexes(c, [s for s in specs if s is not old])
    return {"ok": 1.0}


@command("listSearchIndexes", help="Search indexes of a collection (deprecated: use $listSearchIndexes).")
async def list_search_indexes(ctx: Ctx) -> bytes:
    from mongolake.query.aggregate.stages.search import select_search_indexes
    name = ctx.coll_name()
    id_, iname = ctx.body.get("id"), ctx.body.get("name")
    if id_ is not None and iname is not None:
        raise MongoError(ErrorCode.InvalidOptions, "Cannot set both 'name' and 'id'.")
    c = _collection(ctx, name)
    docs = [bsonreply.encode(d) for d in select_search_indexes(list(c.meta.search_indexes), id_, iname)]
    return open_cursor(ctx, ctx.ns(name), iter(docs), batch_size=None)
