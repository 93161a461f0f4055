"""MongoLake's soft-delete commands (no MongoDB equivalent; see docs/storage.md).

Deletes are soft in a collection created or modified with ``softDelete: true`` (or
``{enabled: true, retentionSeconds: n}``): ``delete``/``findAndModify`` then answer
exactly as MongoDB does and readers no longer see the documents, but the table keeps
them until the retention passes. These commands reach them:

* ``{findDeleted: <coll>, filter, limit, batchSize}``: a cursor of the soft-deleted
  documents (as stored), in ``_id`` order;
* ``{restoreDeleted: <coll>, filter}``: bring them back (``n`` restored; one atomic
  write, change streams see inserts; unique indexes are checked);
* ``{purgeDeleted: <coll>, filter, olderThanSeconds, dryRun}``: remove them for good
  now (``olderThanSeconds`` defaults to the collection's retention; 0 = all).
"""
from __future__ import annotations

import asyncio
from typing import Any

import bson

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import CODEC_OPTIONS

from .args import check_fields
from .context import Ctx
from .crud_read import open_cursor
from .registry import command


def _filter(ctx: Ctx) -> dict | None:
    f = ctx.body.get("filter")
    if f is not None and not isinstance(f, dict):
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field '{ctx.name}.filter' is the wrong type, "
                         "expected type 'object'")
    return f or None


def _nonneg(ctx: Ctx, field: str) -> Any:
    v = ctx.body.get(field)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0:
        raise MongoError(ErrorCode.BadValue, f"'{field}' must be a non-negative number")
    return v


@command("findDeleted", help="Soft-deleted documents of a collection (filter, limit, batchSize).", in_txn=False)
async def find_deleted(ctx: Ctx) -> bytes:
    check_fields("findDeleted", ctx.body, {"filter", "limit", "batchSize"})
    coll = ctx.coll_name()
    limit = int(_nonneg(ctx, "limit") or 0)
    bs = _nonneg(ctx, "batchSize")
    rows = ctx.engine.find_deleted(ctx.db, coll, _filter(ctx), limit=limit)
    docs = [bson.encode(d, codec_options=CODEC_OPTIONS) for d, _at in rows]
    return open_cursor(ctx, ctx.ns(coll), iter(docs), batch_size=int(bs) if bs is not None else None)


@command("restoreDeleted", help="Restore soft-deleted documents matching a filter.", write=True, in_txn=False)
async def restore_deleted(ctx: Ctx) -> dict:
    check_fields("restoreDeleted", ctx.body, {"filter"})
    coll = ctx.coll_name()
    res = ctx.engine.restore(ctx.db, coll, _filter(ctx), wait=False)
    await ctx.durable(res.seq)
    return {"n": res.n, "ok": 1.0}


@command("purgeDeleted", help="Remove soft-deleted documents for good (filter, olderThanSeconds, dryRun).",
         in_txn=False)
async def purge_deleted(ctx: Ctx) -> dict:
    check_fields("purgeDeleted", ctx.body, {"filter", "olderThanSeconds", "dryRun"})
    coll = ctx.coll_name()
    if ctx.engine.get_collection(ctx.db, coll) is None:
        raise MongoError(ErrorCode.NamespaceNotFound, f"collection does not exist: {ctx.db}.{coll}")
    m = await asyncio.to_thread(ctx.engine.purge_deleted, ctx.db, coll, older_than_seconds=_nonneg(
        ctx, "olderThanSeconds"), filter=_filter(ctx), dry_run=bool(ctx.body.get("dryRun", False)))
    return {"purged": m["purged"], "mongolake": m, "ok": 1.0}
