"""What a pipeline needs from outside: :class:`PipelineContext`.

The pipeline is pure query logic; everything that touches collections goes
through a context object supplied by the caller (the engine's aggregate
command, or :class:`InMemoryPipelineContext` for tests and embedded use).

Required:

* ``db`` — the database the aggregate runs in (default for ``from``/``coll``);
* ``variables`` — the command's variables: ``let`` values, ``NOW`` and
  ``CLUSTER_TIME`` (names without ``$$``); missing NOW/CLUSTER_TIME are filled
  in once per run;
* ``scan(db, coll, filter=None) -> Iterable[dict]`` — the documents of a
  collection matching ``filter`` (a MongoDB query filter, ``None`` = all).  An
  implementation must apply the filter exactly; a missing collection is empty.
  Used by ``$lookup``, ``$graphLookup``, ``$unionWith`` and ``$merge``.

Optional (read with ``getattr`` so any duck-typed object works):

* ``allow_disk_use`` (default True, MongoDB >= 6.0's default) — when False,
  blocking stages raise QueryExceededMemoryLimitNoDiskUseAllowed (292) past
  ``memory_limit_bytes`` (default 100 MiB); with True, ``$sort`` and
  ``$group``-like stages spill to temporary files (``spill.py``);
* ``write(db, coll, docs, mode)`` — ``mode="replace"``: ``$out``, the
  collection's content becomes ``docs`` (created if needed, indexes kept);
  ``mode="insert"``: insert ``docs`` (a duplicate ``_id`` raises DuplicateKey);
* ``replace_one(db, coll, filter, doc, upsert=False)`` — replace the single
  document matching ``filter`` (``$merge`` when a target document matched);
* ``collection`` — the name of the aggregated collection (``$collStats``);
* ``collection_stats(db, coll) -> dict`` — for ``$collStats`` (``count``,
  ``size``, ``storageSize``, ``nindexes`` ...);
* ``collection_exists(db, coll) -> bool`` — ``$out``/``$merge`` targets (absent:
  assumed to exist when documents are found, else not).
"""
from __future__ import annotations

import abc
from typing import Any, Iterable

from mongolake.errors import ErrorCode, MongoError

DEFAULT_MEMORY_LIMIT = 100 * 1024 * 1024


class PipelineContext(abc.ABC):
    """Base class documenting the interface; subclassing it is optional (duck typing works)."""

    db: str = "test"
    variables: dict = {}
    allow_disk_use: bool = True
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT

    @abc.abstractmethod
    def scan(self, db: str, coll: str, filter: dict | None = None) -> Iterable[dict]:
        """The documents of ``db.coll`` matching ``filter`` (exactly)."""

    def write(self, db: str, coll: str, docs: list[dict], mode: str = "insert") -> None:
        raise MongoError(ErrorCode.NotImplemented, "this context cannot write ($out/$merge)")

    def replace_one(self, db: str, coll: str, filter: dict, doc: dict, upsert: bool = False) -> None:
        raise MongoError(ErrorCode.NotImplemented, "this context cannot write ($merge)")

    def collection_stats(self, db: str, coll: str) -> dict:
        raise MongoError(ErrorCode.NotImplemented, "$collStats is not supported here")


class InMemoryPipelineContext(PipelineContext):
    """Collections held in a dict ``{(db, coll): [docs]}``; for tests and embedded use."""

    def __init__(self, collections: dict[tuple[str, str] | str, list[dict]] | None = None, *, db: str = "test",
                 variables: dict | None = None, allow_disk_use: bool = True,
                 memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT, collection: str | None = None):
        self.db = db
        self.collection = collection
        self.variables = dict(variables or {})
        self.allow_disk_use = allow_disk_use
        self.memory_limit_bytes = memory_limit_bytes
        self.collections: dict[tuple[str, str], list[dict]] = {}
        for k, docs in (collections or {}).items():
            key = (db, k) if isinstance(k, str) else k
            self.collections[key] = list(docs)
        self.scans = 0

    def coll(self, name: str, db: str | None = None) -> list[dict]:
        """The (mutable) list of documents of a collection."""
        return self.collections.setdefault((db or self.db, name), [])

    def scan(self, db: str, coll: str, filter: dict | None = None) -> Iterable[dict]:
        self.scans += 1
        docs = list(self.collections.get((db, coll), []))
        if not filter:
            return docs
        from mongolake.query.filter import parse_filter
        from mongolake.query.matcher import compile_matcher

        m = compile_matcher(parse_filter(filter))
        return [d for d in docs if m(d)]

    def collection_exists(self, db: str, coll: str) -> bool:
        return (db, coll) in self.collections

    def write(self, db: str, coll: str, docs: list[dict], mode: str = "insert") -> None:
        from mongolake.query.expr.values import hash_key

        target = [] if mode == "replace" else list(self.collections.get((db, coll), []))
        seen = {hash_key(d.get("_id")) for d in target}
        for d in docs:
            d = dict(d)
            if "_id" not in d:
                from bson.objectid import ObjectId
                d = {"_id": ObjectId(), **d}
            k = hash_key(d["_id"])
            if k in seen:
                raise MongoError(ErrorCode.DuplicateKey, f"E11000 duplicate key error collection: {db}.{coll} "
                                                         f"index: _id_ dup key: {{ _id: {d['_id']!r} }}")
            seen.add(k)
            target.append(d)
        self.collections[(db, coll)] = target

    def replace_one(self, db: str, coll: str, filter: dict, doc: dict, upsert: bool = False) -> None:
        from mongolake.query.filter import parse_filter
        from mongolake.query.matcher import compile_matcher

        m = compile_matcher(parse_filter(filter))
        docs = self.collections.setdefault((db, coll), [])
        for i, d in enumerate(docs):
            if m(d):
                new = dict(doc)
                new.setdefault("_id", d.get("_id"))
                docs[i] = {"_id": new.pop("_id"), **new}
                return
        if upsert:
            self.write(db, coll, [doc], "insert")

    def collection_stats(self, db: str, coll: str) -> dict:
        import bson

        docs = self.collections.get((db, coll), [])
        size = sum(len(bson.encode(d)) for d in docs)
        return {"ns": f"{db}.{coll}", "count": len(docs), "size": size, "storageSize": size,
                "avgObjSize": size // len(docs) if docs else 0, "nindexes": 1, "totalIndexSize": 0}


def ctx_option(ctx: Any, name: str, default: Any) -> Any:
    """An optional context attribute."""
    return getattr(ctx, name, default)


__all__ = ["PipelineContext", "InMemoryPipelineContext", "DEFAULT_MEMORY_LIMIT", "ctx_option"]
