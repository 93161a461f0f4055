"""Namespace commands: list/create/drop/rename, stats, fsync, compact, validate."""
from __future__ import annotations

import asyncio
import uuid as _uuid
from typing import Any

from bson.binary import Binary, UuidRepresentation
from bson.int64 import Int64

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.filter import parse_filter
from mongolake.query.matcher import compile_matcher

from . import bsonreply
from .args import check_fields
from .context import Ctx
from .crud_read import open_cursor
from .registry import command

_CREATE_KNOWN = {"capped", "size", "max", "validator", "validationLevel", "validationAction", "collation",
                 "storageEngine", "indexOptionDefaults", "changeStreamPreAndPostImages", "clusteredIndex",
                 "expireAfterSeconds", "timeseries", "tableFormat", "viewOn", "pipeline", "idIndex",
                 "encryptedFields", "autoIndexId", "flags",
                 "softDelete"}       # MongoLake: deletes keep documents until a retention (docs/storage.md)


def _filter_fn(ctx: Ctx) -> Any:
    f = ctx.body.get("filter")
    if f is None:
        return None
    if not isinstance(f, dict):
        raise MongoError(ErrorCode.TypeMismatch, "filter must be an object")
    return compile_matcher(parse_filter(f)) if f else None


@command("listDatabases", help="Databases with their sizes.", admin_only=True)
async def list_databases(ctx: Ctx) -> dict:
    check_fields("listDatabases", ctx.body, {"filter", "nameOnly", "authorizedDatabases"})
    eng = ctx.engine
    match = _filter_fn(ctx)
    name_only = bool(ctx.body.get("nameOnly", False))
    dbs = []
    total = 0
    for db in eng.list_databases():
        size = sum(eng.get_collection(db, m.name).snapshot.size_bytes for m in eng.list_collections(db)
                   if eng.get_collection(db, m.name) is not None)
        entry = {"name": db} if name_only else {"name": db, "sizeOnDisk": Int64(size), "empty": False}
        if match is not None and not match(entry):
            continue
        total += size
        dbs.append(entry)
    if name_only:
        return {"databases": dbs, "ok": 1.0}
    return {"databases": dbs, "totalSize": Int64(total), "totalSizeMb": Int64(total >> 20), "ok": 1.0}


def collection_info(meta: Any, name_only: bool) -> dict:
    if name_only:
        return {"name": meta.name, "type": "collection"}
    return {"name": meta.name, "type": "collection", "options": dict(meta.options),
            "info": {"readOnly": False,
                     "uuid": Binary.from_uuid(_uuid.UUID(hex=meta.uuid), UuidRepresentation.STANDARD)},
            "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"}}


@command("listCollections", help="Collections of a database (filter, nameOnly, authorizedCollections, cursor).")
async def list_collections(ctx: Ctx) -> bytes:
    check_fields("listCollections", ctx.body, {"filter", "nameOnly", "authorizedCollections", "cursor",
                                               "includePendingDrops"})
    match = _filter_fn(ctx)
    name_only = bool(ctx.body.get("nameOnly", False))
    out = []
    for meta in ctx.engine.list_collections(ctx.db):
        info = collection_info(meta, name_only)
        if match is not None and not match(info if not name_only else collection_info(meta, False)):
            continue
        out.append(bsonreply.encode(info))
    cursor = ctx.body.get("cursor") or {}
    bs = cursor.get("batchSize") if isinstance(cursor, dict) else None
    return open_cursor(ctx, f"{ctx.db}.$cmd.listCollections", iter(out), batch_size=bs)


@command("create", help="Create a collection (options are kept; tableFormat: delta|iceberg).")
async def create(ctx: Ctx) -> dict:
    name = ctx.coll_name()
    opts = {k: v for k, v in ctx.body.items() if k in _CREATE_KNOWN}
    for k in ctx.body:
        if k != "create" and k not in _CREATE_KNOWN and not k.startswith("$") and k not in (
                "lsid", "txnNumber", "writeConcern", "comment", "apiVersion", "apiStrict", "apiDeprecationErrors",
                "maxTimeMS"):
            raise MongoError(ErrorCode.UnrecognizedCommandField,
                             f"BSON field 'create.{k}' is an unknown field.")
    if "viewOn" in opts:
        raise MongoError(ErrorCode.NotImplemented, "views are not supported yet by MongoLake")
    if opts.get("capped"):
        raise MongoError(ErrorCode.NotImplemented, "capped collections are not supported by MongoLake")
    if "timeseries" in opts:
        raise MongoError(ErrorCode.NotImplemented, "time-series collections are not supported by MongoLake")
    ctx.engine.create_collection(ctx.db, name, opts)
    return {"ok": 1.0}


@command("drop", help="Drop a collection.", write=True)
async def drop(ctx: Ctx) -> dict:
    name = ctx.coll_name()
    c = ctx.engine.get_collection(ctx.db, name)
    nidx = len(c.meta.indexes) if c is not None else 0
    if c is None:
        return {"ok": 1.0}
    await asyncio.to_thread(ctx.engine.drop_collection, ctx.db, name)
    ctx.state.cursors.invalidate(ctx.ns(name), reason="collection dropped")
    return {"ns": ctx.ns(name), "nIndexesWas": nidx, "ok": 1.0}


@command("dropDatabase", help="Drop a database and its collections.", write=True)
async def drop_database(ctx: Ctx) -> dict:
    await asyncio.to_thread(ctx.engine.drop_database, ctx.db)
    ctx.state.cursors.invalidate(db=ctx.db, reason="database dropped")
    return {"dropped": ctx.db, "ok": 1.0}


def _split_ns(ns: Any, what: str) -> tuple[str, str]:
    if not isinstance(ns, str) or "." not in ns:
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid {what} namespace: {ns}")
    db, _, coll = ns.partition(".")
    if not db or not coll:
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid {what} namespace: {ns}")
    return db, coll


@command("renameCollection", help="Rename a collection (within or across databases).", admin_only=True,
         write=True)
async def rename_collection(ctx: Ctx) -> dict:
    check_fields("renameCollection", ctx.body, {"to", "dropTarget", "stayTemp", "collectionUUID"})
    sdb, scoll = _split_ns(ctx.arg, "source")
    tdb, tcoll = _split_ns(ctx.body.get("to"), "target")
    if (sdb, scoll) == (tdb, tcoll):
        raise MongoError(ErrorCode.IllegalOperation, "Can't rename a collection to itself")
    ctx.engine.rename_collection(sdb, scoll, tdb, tcoll, drop_target=bool(ctx.body.get("dropTarget", False)))
    ctx.state.cursors.invalidate(f"{sdb}.{scoll}", reason="collection renamed")
    ctx.state.cursors.invalidate(f"{tdb}.{tcoll}", reason="collection dropped (renamed over)")
    return {"ok": 1.0}


def _mem_bytes(c: Any) -> int:
    """Bytes of the collection's memtables (writes not flushed to the table yet)."""
    return sum(m.nbytes for m in c.memtables())


def coll_stats(ctx: Ctx, name: str, scale: int = 1) -> dict:
    c = ctx.engine.get_collection(ctx.db, name)
    if c is None:
        raise MongoError(ErrorCode.NamespaceNotFound, f"Collection [{ctx.db}.{name}] not found.")
    n = ctx.engine.count(ctx.db, name)
    snap = c.snapshot
    size = snap.size_bytes + _mem_bytes(c)
    return {"ns": ctx.ns(name), "size": Int64(size // scale), "count": Int64(n),
            "avgObjSize": Int64(size // n if n else 0), "storageSize": Int64(snap.size_bytes // scale),
            "freeStorageSize": Int64(0), "capped": False, "nindexes": len(c.meta.indexes),
            "indexDetails": {}, "totalIndexSize": Int64(0), "totalSize": Int64(snap.size_bytes // scale),
            "indexSizes": {ix["name"]: Int64(0) for ix in c.meta.indexes}, "scaleFactor": scale,
            "mongolake": {"format": c.meta.format, "tableVersion": snap.version, "files": len(snap.files),
                          "memtableDocuments": sum(len(m) for m in c.memtables()),
                          "path": c.meta.path}}


def _scale(ctx: Ctx) -> int:
    s = ctx.body.get("scale", 1)
    if not isinstance(s, (int, float)) or isinstance(s, bool) or s < 1:
        raise MongoError(ErrorCode.BadValue, "Scale factor must be a positive integer")
    return int(s)


@command("collStats", help="Statistics of a collection (deprecated in MongoDB; see $collStats).")
async def coll_stats_cmd(ctx: Ctx) -> dict:
    out = coll_stats(ctx, ctx.coll_name(), _scale(ctx))
    out["ok"] = 1.0
    return out


@command("dbStats", help="Statistics of a database.")
async def db_stats(ctx: Ctx) -> dict:
    scale = _scale(ctx)
    eng = ctx.engine
    colls = eng.list_collections(ctx.db)
    objects = size = storage = 0
    nidx = 0
    for m in colls:
        c = eng.get_collection(ctx.db, m.name)
        if c is None:
            continue
        objects += eng.count(ctx.db, m.name)
        storage += c.snapshot.size_bytes
        size += c.snapshot.size_bytes + _mem_bytes(c)
        nidx += len(m.indexes)
    return {"db": ctx.db, "collections": len(colls), "views": 0, "objects": Int64(objects),
            "avgObjSize": float(size / objects) if objects else 0.0, "dataSize": float(size // scale),
            "storageSize": float(storage // scale), "indexes": nidx, "indexSize": 0.0,
            "totalSize": float(storage // scale), "scaleFactor": scale, "fsUsedSize": 0.0, "fsTotalSize": 0.0,
            "ok": 1.0}


@command("fsyncUnlock", help="Unlock after fsync with lock (never locked in MongoLake).", admin_only=True)
async def fsync_unlock(ctx: Ctx) -> dict:
    raise MongoError(ErrorCode.CommandFailed, "fsyncUnlock called when not locked")


@command("dataSize", help="Bytes and documents of a namespace (keyPattern/min/max ranges not supported).")
async def data_size(ctx: Ctx) -> dict:
    check_fields("dataSize", ctx.body, {"keyPattern", "min", "max", "estimate"})
    db, coll = _split_ns(ctx.arg, "dataSize")
    if ctx.body.get("min") or ctx.body.get("max"):
        raise MongoError(ErrorCode.NotImplemented, "dataSize with a min/max range is not supported by MongoLake")
    c = ctx.engine.get_collection(db, coll)
    if c is None:
        return {"size": Int64(0), "numObjects": Int64(0), "millis": Int64(0), "ok": 1.0}
    n = ctx.engine.count(db, coll)
    return {"size": Int64(c.snapshot.size_bytes + _mem_bytes(c)), "numObjects": Int64(n), "millis": Int64(0),
            "ok": 1.0}


@command("fsync", help="Flush every memtable to its table now.", admin_only=True)
async def fsync(ctx: Ctx) -> dict:
    if ctx.body.get("lock"):
        raise MongoError(ErrorCode.NotImplemented, "fsync with lock is not supported by MongoLake")
    metrics = await asyncio.to_thread(ctx.engine.flush)
    return {"numFiles": metrics.get("files_added", 0), "mongolake": metrics, "ok": 1.0}


@command("compact", help="Rewrite a collection's small files into larger ones.")
async def compact(ctx: Ctx) -> dict:
    name = ctx.coll_name()
    if ctx.engine.get_collection(ctx.db, name) is None:
        raise MongoError(ErrorCode.NamespaceNotFound, f"collection does not exist: {ctx.db}.{name}")
    dry = bool(ctx.body.get("dryRun", False))
    metrics = await asyncio.to_thread(ctx.engine.compact, ctx.db, name, dry_run=dry)
    return {"bytesFreed": Int64(max(0, metrics.get("bytes_before", 0) - metrics.get("bytes_after", 0))),
            "mongolake": metrics, "ok": 1.0}


@command("validate", help="Check a collection's table against its log.")
async def validate(ctx: Ctx) -> dict:
    name = ctx.coll_name()
    c = ctx.engine.get_collection(ctx.db, name)
    if c is None:
        raise MongoError(ErrorCode.NamespaceNotFound, f"Collection '{ctx.db}.{name}' does not exist to validate.")
    errors: list[str] = []
    snap = c.snapshot
    for f in snap.files:
        if not ctx.engine.storage.exists(c.table.file_path(f)):
            errors.append(f"data file missing: {f.path}")
    n = ctx.engine.count(ctx.db, name)
    return {"ns": ctx.ns(name), "nInvalidDocuments": 0, "nNonCompliantDocuments": 0, "nrecords": n,
            "nIndexes": len(c.meta.indexes), "keysPerIndex": {ix["name"]: n for ix in c.meta.indexes},
            "indexDetails": {}, "valid": not errors, "repaired": False, "warnings": [], "errors": errors,
            "extraIndexEntries": [], "missingIndexEntries": [], "corruptRecords": [], "ok": 1.0}


@command("collMod", help="Change collection options (validator, changeStreamPreAndPostImages, ...).")
async def coll_mod(ctx: Ctx) -> dict:
    name = ctx.coll_name()
    c = ctx.engine.get_collection(ctx.db, name)
    if c is None:
        raise MongoError(ErrorCode.NamespaceNotFound, f"ns does not exist: {ctx.db}.{name}")
    opts = dict(c.meta.options)
    for k, v in ctx.body.items():
        if k in ("collMod",) or k.startswith("$") or k in ("lsid", "txnNumber", "writeConcern", "comment"):
            continue
        if k not in _CREATE_KNOWN and k != "index":
            raise MongoError(ErrorCode.InvalidOptions, f"unknown option to collMod: {k}")
        opts[k] = v
    ctx.engine.set_options(c, opts)
    return {"ok": 1.0}
