"""The rest of the EntityBackend API: existence, statistics, the shredded schema."""
from __future__ import annotations

from typing import Any

from mongolake.errors import ErrorCode, MongoError
from mongolake.query import columns


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
                "path": c.meta.path}

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
                if any(not columns.is_shreddable_name(p, i == 0) for i, p in enumerate(parts)):
                    raise MongoError(ErrorCode.BadValue, f"field {path!r} cannot be a column")
                have = specs.get(path)
                if have is not None and have.kind != kind:
                    raise MongoError(ErrorCode.BadValue,
                                     f"column {path!r} is already of kind {have.kind!r}; kinds never change")
                if have is None:
                    added[path] = columns.ColumnSpec(path, kind)
            if added:
                specs.update(added)
                snap = c.snapshot
                c.table.commit(schema=columns.arrow_schema(specs), operation="SET SCHEMA", read_version=snap.version,
                               info={"columns": sorted(added)})
                with self.lock:
                    c.snapshot = c.table.snapshot()
                    c.specs = specs
        return self.get_schema(db, coll)
