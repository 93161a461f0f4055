"""Soft deletes: a deleted document stays in the table, marked, until a retention purges it.

A soft delete is an ordinary delete for every reader (and for change streams: a
``delete`` event) but keeps the document:

* in the WAL and the memtable it is a delete (``Change.doc is None``) whose
  description says ``soft`` and whose before-image is kept; the memtable entry
  is a tombstone that holds the document (``Entry.tomb``) and its deletion time;
* a flush writes such documents to *tombstone files*: data files holding only
  soft-deleted rows, with the columns ``_ml_deleted`` (true) and
  ``_ml_deleted_at`` (timestamp, UTC) after the document's usual columns, and
  the file tag ``mongolake.tombstones``. Live files never hold deleted rows.

Every table handle of an open collection is a :class:`SoftTable`, whose
snapshots (:class:`LiveSnapshot`) list only the live files (and hide the two
system columns from the schema), so every read path — point lookups, scans,
counts, indexes, columnar aggregation, transactions, time travel — sees no
soft-deleted document without knowing about them. The flush, compaction and
the soft-delete API reach the tombstone files through ``LiveSnapshot.tomb_files``.

Outside readers (deltalake, pyiceberg, Spark) see every row: live rows have
``_ml_deleted`` null (files written before the column existed lack it), deleted
rows true, so ``WHERE _ml_deleted IS NOT TRUE`` gives the live documents.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from mongolake.errors import ErrorCode, MongoError
from mongolake.formats.base import DataFile, Snapshot

DELETED = "_ml_deleted"
DELETED_AT = "_ml_deleted_at"
SYSTEM_COLUMNS = frozenset({DELETED, DELETED_AT})
SYSTEM_FIELDS = (pa.field(DELETED, pa.bool_()), pa.field(DELETED_AT, pa.timestamp("ms", tz="UTC")))
TOMB_TAG = "mongolake.tombstones"
OPTION = "softDelete"
DEFAULT_RETENTION = 7 * 86400.0


# -- the collection option --------------------------------------------------------

def normalize_option(value: Any, cmd: str = "create") -> dict:
    """``softDelete: true|false`` or ``{enabled: bool, retentionSeconds: number}`` ->
    the stored form ``{enabled: bool[, retentionSeconds: n]}``."""
    if isinstance(value, bool):
        return {"enabled": value}
    if not isinstance(value, dict):
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field '{cmd}.{OPTION}' is the wrong type "
                         f"'{type(value).__name__}', expected types '[bool, object]'")
    out: dict[str, Any] = {}
    for k, v in value.items():
        if k == "enabled":
            if not isinstance(v, (bool, int, float)) or isinstance(v, float) and v != v:
                raise MongoError(ErrorCode.TypeMismatch, f"BSON field '{cmd}.{OPTION}.enabled' is the wrong "
                                 "type, expected type 'bool'")
            out["enabled"] = bool(v)
        elif k == "retentionSeconds":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0:
                raise MongoError(ErrorCode.BadValue, f"'{OPTION}.retentionSeconds' must be a non-negative "
                                 f"number, not {v!r}")
            out["retentionSeconds"] = int(v) if float(v).is_integer() else float(v)
        else:
            raise MongoError(ErrorCode.UnrecognizedCommandField, f"BSON field '{cmd}.{OPTION}.{k}' is an "
                             "unknown field.")
    if "enabled" not in out:
        raise MongoError(ErrorCode.FailedToParse, f"BSON field '{cmd}.{OPTION}.enabled' is missing but a "
                         "required field")
    return out


def normalize_options(options: dict, cmd: str = "create") -> dict:
    """Collection options with ``softDelete`` (if present) in its stored form."""
    if OPTION in options:
        options = dict(options)
        options[OPTION] = normalize_option(options[OPTION], cmd)
    return options


def enabled(options: dict) -> bool:
    o = options.get(OPTION)
    return bool(o.get("enabled")) if isinstance(o, dict) else bool(o)


def retention_seconds(options: dict) -> float:
    o = options.get(OPTION)
    if isinstance(o, dict) and "retentionSeconds" in o:
        return float(o["retentionSeconds"])
    return DEFAULT_RETENTION


def is_soft(ch: Any) -> bool:
    """Whether a change record is a soft delete."""
    return ch.doc is None and ch.desc is not None and ch.desc.get("soft") is True


# -- snapshots that show only live files ----------------------------------------------

@dataclass(frozen=True)
class LiveSnapshot(Snapshot):
    """A table snapshot as the engine's readers see it: ``files`` are the live files,
    ``schema`` lacks the system columns; ``tomb_files`` and ``full_schema`` have the rest."""
    tomb_files: tuple[DataFile, ...] = ()
    full_schema: pa.Schema | None = None

    @property
    def all_files(self) -> tuple[DataFile, ...]:
        return self.files + self.tomb_files

    @property
    def has_system_columns(self) -> bool:
        return self.full_schema is not None and self.full_schema.get_field_index(DELETED) >= 0


def is_tomb_file(f: DataFile) -> bool:
    return bool(f.tags.get(TOMB_TAG))


def live_view(snap: Snapshot) -> LiveSnapshot:
    if isinstance(snap, LiveSnapshot):
        return snap
    base = {f.name: getattr(snap, f.name) for f in dataclasses.fields(Snapshot)}
    schema = snap.schema
    tomb = tuple(f for f in snap.files if f.tags and f.tags.get(TOMB_TAG))
    if tomb:
        base["files"] = tuple(f for f in snap.files if not (f.tags and f.tags.get(TOMB_TAG)))
    if schema is not None and any(n in SYSTEM_COLUMNS for n in schema.names):
        base["schema"] = pa.schema([f for f in schema if f.name not in SYSTEM_COLUMNS], metadata=schema.metadata)
    return LiveSnapshot(**base, tomb_files=tomb, full_schema=schema)


def table_schema(user_schema: pa.Schema, snap: LiveSnapshot, with_system: bool) -> pa.Schema:
    """The schema to commit: the user columns plus the system columns when the table
    has them or is about to (schemas only ever grow)."""
    if with_system or snap.has_system_columns:
        return pa.schema(list(user_schema) + list(SYSTEM_FIELDS), metadata=user_schema.metadata)
    return user_schema


def add_system_columns(t: pa.Table, deleted_ms: list[int]) -> pa.Table:
    t = t.append_column(SYSTEM_FIELDS[0], pa.array([True] * t.num_rows, pa.bool_()))
    return t.append_column(SYSTEM_FIELDS[1], pa.array(deleted_ms, pa.int64()).cast(SYSTEM_FIELDS[1].type))


def deleted_ms(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A file's ``_ml_deleted_at`` column as int64 milliseconds (formats may store
    microseconds)."""
    return col.cast(SYSTEM_FIELDS[1].type).cast(pa.int64())


class SoftTable:
    """A table handle whose snapshots hide tombstone files (see the module doc);
    everything else is the wrapped format table's."""

    def __init__(self, table: Any):
        self._table = table

    @property
    def inner(self) -> Any:
        return self._table

    def snapshot(self, *args: Any, **kw: Any) -> LiveSnapshot:
        return live_view(self._table.snapshot(*args, **kw))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def __repr__(self) -> str:
        return f"SoftTable({self._table!r})"


def soft_table(table: Any) -> SoftTable:
    return table if isinstance(table, SoftTable) else SoftTable(table)
