"""The rest of the EntityBackend API: existence, statistics, the shredded schema."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import bson

from mongolake.errors import ErrorCode, MongoError
from mongolake.query import columns, zonemap
from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.query.filter import parse_filter
from mongolake.query.matcher import compile_matcher

from . import softdelete
from .records import INSERT, Change, ChangeBatch
from .writes import WriteResult


class EntityOps:
    def exists(self, db: str, coll: str, filter: dict | None = None) -> bool:
        """Whether any document matches ``filter`` (the collection exists when no filter)."""
        c = self.get_collection(db, coll)
        if c is None:
            return False
        if filter is None:
            return True
        for _ in self.iter_matching(c, filter):
            return True
        return False

    def _need(self, db: str, coll: str) -> Any:
        c = self.get_collection(db, coll)
        if c is None:
            raise MongoError(ErrorCode.NamespaceNotFound, f"ns not found: {db}.{coll}")
        return c

    def collection_stats(self, db: str, coll: str) -> dict:
        """Records, bytes, files, snapshots and last modification of a collection."""
        c = self._need(db, coll)
        snap = c.snapshot
        history = c.table.history()
        return {"records": self.count(db, coll), "bytes": snap.size_bytes + c.mem_bytes(),
                "table_bytes": snap.size_bytes, "files": len(snap.files), "snapshots": len(history),
                "version": snap.version, "last_modified_ms": history[0].timestamp_ms if history else 0,
                "memtable_documents": sum(len(m) for m in c.memtables()), "format": c.meta.format,
                "path": c.meta.path, "soft_deleted": self.count_deleted(db, coll),
                "tombstone_files": len(softdelete.live_view(snap).tomb_files)}

    def get_schema(self, db: str, coll: str) -> dict[str, str]:
        """The shredded columns: dotted path -> kind (int, double, string, bool, date, objectId)."""
        return {p: s.kind for p, s in sorted(self._need(db, coll).specs.items())}

    def set_schema(self, db: str, coll: str, schema: dict[str, str]) -> dict[str, str]:
        """Declare shredded columns before data arrives (only additions: a column's kind
        never changes). Commits the evolved table schema; returns the full schema."""
        c = self._need(db, coll)
        with self.flush_lock:
            specs = dict(c.specs)
            added = {}
            for path, kind in schema.items():
                if kind not in columns.KINDS:
                    raise MongoError(ErrorCode.BadValue, f"unknown column kind {kind!r} (use {', '.join(columns.KINDS)})")
                parts = path.split(".")
                if any(not columns.is_shreddable_name(p, i == 0) for i, p in enumerate(parts)) or \
                        path in softdelete.SYSTEM_COLUMNS:
                    raise MongoError(ErrorCode.BadValue, f"field {path!r} cannot be a column")
                have = specs.get(path)
                if have is not None and have.kind != kind:
                    raise MongoError(ErrorCode.BadValue,
                                     f"column {path!r} is already of kind {have.kind!r}; kinds never change")
                if have is None:
                    added[path] = columns.ColumnSpec(path, kind)
            if added:
                specs.update(added)
                snap = softdelete.live_view(c.snapshot)
                c.table.commit(schema=softdelete.table_schema(columns.arrow_schema(specs), snap, False),
                               operation="SET SCHEMA", read_version=snap.version, info={"columns": sorted(added)})
                with self.lock:
                    c.snapshot = c.table.snapshot()
                    c.specs = specs
        return self.get_schema(db, coll)

    # -- soft deletes ----------------------------------------------------------
    def _tombstones(self, c: Any, filter: dict | None) -> list[tuple[bytes, bytes, int, dict]]:
        """Soft-deleted documents of ``c`` matching ``filter``: ``(key, raw, deleted_ms, doc)``
        in ``_id`` order (memtable tombstones over tombstone files)."""
        expr = parse_filter(filter or {}) if filter else None
        matcher = compile_matcher(expr) if expr is not None else None
        with self.lock:
            view = c.mem_view()
            snap = softdelete.live_view(c.snapshot)
        out = []
        for k, e in view.items():
            if e.doc is None and e.tomb is not None:
                d = bson.decode(e.tomb, CODEC_OPTIONS)
                if matcher is None or matcher(d):
                    out.append((k, e.tomb, e.deleted_ms, d))
        for f in snap.tomb_files:
            if expr is not None and not zonemap.might_match(expr, f, c.specs):
                continue
            t = self.reader.parquet(c.table, f).read(columns=["_key", "_doc", softdelete.DELETED_AT])
            ats = softdelete.deleted_ms(t.column(softdelete.DELETED_AT)).to_pylist()
            for k, raw, at in zip(t.column("_key").to_pylist(), t.column("_doc").to_pylist(), ats):
                if k in view:
                    continue            # the memtable has a newer version of this document
                d = bson.decode(raw, CODEC_OPTIONS)
                if matcher is None or matcher(d):
                    out.append((k, raw, at or 0, d))
        out.sort(key=lambda x: x[0])
        return out

    def find_deleted(self, db: str, coll: str, filter: dict | None = None, *, limit: int = 0
                     ) -> list[tuple[dict, datetime]]:
        """Soft-deleted documents matching ``filter`` (not purged yet), in ``_id`` order:
        ``(document, deleted_at)`` pairs (``deleted_at`` a UTC datetime)."""
        c = self.get_collection(db, coll)
        if c is None:
            parse_filter(filter or {})
            return []
        rows = self._tombstones(c, filter)
        if limit:
            rows = rows[:limit]
        return [(d, datetime.fromtimestamp(ms / 1000, timezone.utc)) for _k, _r, ms, d in rows]

    def count_deleted(self, db: str, coll: str, filter: dict | None = None) -> int:
        c = self.get_collection(db, coll)
        return len(self._tombstones(c, filter)) if c is not None else 0

    def restore(self, db: str, coll: str, filter: dict | None = None, *, wait: bool = True) -> WriteResult:
        """Bring soft-deleted documents matching ``filter`` back (one atomic batch; change
        streams see inserts). Unique indexes are checked: a conflict restores nothing."""
        from .txn import CURRENT

        if CURRENT.get() is not None:
            raise MongoError(ErrorCode.OperationNotSupportedInTransaction,
                             "restoring soft-deleted documents is not supported in a transaction")
        res = WriteResult()
        with self.lock:
            c = self.get_collection(db, coll)
            if c is None:
                parse_filter(filter or {})
                return res
            unique = self._has_unique_indexes(c)
            pending: dict[bytes, dict] = {}
            changes = []
            for key, raw, _ms, d in self._tombstones(c, filter):
                if unique:
                    self._check_unique(c, d, key, pending)
                pending[key] = d
                changes.append(Change(c.uuid, INSERT, key, raw))
                res.inserted_ids.append(d["_id"])
            res.n = len(changes)
            res.seq = self.commit_batch(ChangeBatch(changes))
        if wait:
            self.wait_durable(res.seq)
        return res

    def purge_deleted(self, db: str, coll: str, *, older_than_seconds: float | None = None,
                      filter: dict | None = None, dry_run: bool = False) -> dict:
        """Remove soft-deleted documents for good: those deleted more than
        ``older_than_seconds`` ago (None: the collection's retention; 0: all) and matching
        ``filter``. Flushes first; one table commit. Returns metrics."""
        from .maintenance import purge_deleted
        return purge_deleted(self, db, coll, older_than_seconds=older_than_seconds, filter=filter,
                             dry_run=dry_run)
