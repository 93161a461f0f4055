"""The table-format interface that Delta Lake and Apache Iceberg both implement.

The engine above speaks only this: snapshots with per-file statistics, writing
Parquet data files, committing adds/removes atomically, history, vacuum. Nothing
here knows about MongoDB; nothing above knows about ``_delta_log`` or manifests.

Statistics conventions (shared by every format):

* Column names in stats are leaf paths joined with '.', e.g. ``"profile.level"``
  for the leaf ``level`` of the struct column ``profile``.
* ``DataFile.null_count`` has an entry for exactly the columns whose statistics
  are *exact* for that file. A column absent from ``null_count`` has no usable
  statistics in that file (its values may not fit the column type, or stats were
  not collected): every reader must then treat it as "might match".
* ``min_values``/``max_values`` hold Python values (int, float, str, bool, bytes,
  ``datetime`` in UTC). A column may have a null count but no min/max (all nulls,
  or a type the format cannot express).

Position deletes (formats with ``Table.supports_position_deletes``): a data file may
come with ``DataFile.deletes``, the sorted 0-based row positions of the file that are
deleted. Readers must skip those rows; ``num_records`` and the statistics still
describe the whole physical file (a superset of its live rows, so pruning on them
stays correct); ``live_records`` is what remains.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from mongolake.storage import StorageBackend


class TableError(Exception):
    """Base class of table-format failures."""


class TableNotFoundError(TableError):
    pass


class TableExistsError(TableError):
    pass


class CommitConflictError(TableError):
    """A concurrent commit touched what this commit depends on (e.g. removed the
    same file). The caller must re-read the table and redo its work."""


class SnapshotNotFoundError(TableError):
    """No snapshot at that version/timestamp (never existed or was expired)."""


@dataclass(frozen=True)
class DataFile:
    path: str                                   # relative to the table root
    size: int                                   # bytes
    num_records: int
    min_values: dict[str, Any] = field(default_factory=dict)
    max_values: dict[str, Any] = field(default_factory=dict)
    null_count: dict[str, int] = field(default_factory=dict)
    modification_time: int = 0                  # ms since the epoch
    tags: dict[str, str] = field(default_factory=dict)   # free-form, persisted where the format can
    deletes: tuple[int, ...] = ()               # deleted row positions (sorted), see the module doc

    @property
    def live_records(self) -> int:
        return self.num_records - len(self.deletes)


@dataclass(frozen=True)
class Snapshot:
    version: int                                # Delta version / Iceberg sequence number
    timestamp_ms: int
    schema: pa.Schema
    files: tuple[DataFile, ...]
    properties: dict[str, str] = field(default_factory=dict)
    # application transaction ids -> last committed version (Delta ``txn`` actions,
    # Iceberg snapshot summary); the engine records its WAL position here.
    app_versions: dict[str, int] = field(default_factory=dict)
    snapshot_id: int | None = None              # Iceberg snapshot id (None for Delta)

    @property
    def num_records(self) -> int:
        return sum(f.live_records for f in self.files)

    @property
    def size_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class CommitInfo:
    version: int
    timestamp_ms: int
    operation: str
    info: dict[str, Any] = field(default_factory=dict)   # operation parameters / metrics


class Table(ABC):
    """A handle on one table at ``root`` in ``storage``. Thread-safe for readers;
    one process may commit from several threads (commits serialise on the log)."""

    format_name: str = ""
    # whether ``commit`` accepts ``position_deletes={data file path: [row positions]}``
    # (rows of live files deleted without rewriting them; see ``DataFile.deletes``)
    supports_position_deletes: bool = False

    def __init__(self, storage: StorageBackend, root: str):
        self.storage = storage
        self.root = root.rstrip("/")

    # -- reading -------------------------------------------------------------
    @abstractmethod
    def snapshot(self, version: int | None = None, *, timestamp: datetime | None = None) -> Snapshot:
        """The latest snapshot (re-reading the log), or the one at ``version``, or the
        newest one committed at or before ``timestamp``."""

    @abstractmethod
    def history(self, limit: int | None = None) -> list[CommitInfo]:
        """Commits, newest first."""

    def file_path(self, f: DataFile | str) -> str:
        p = f.path if isinstance(f, DataFile) else f
        return f"{self.root}/{p}"

    def open_data_file(self, f: DataFile | str, **kwargs: Any) -> pq.ParquetFile:
        """Open a data file for reading: memory-mapped when local, ranged reads on object stores."""
        full = self.file_path(f)
        local = self.storage.local_path(full)
        if local is not None:
            return pq.ParquetFile(local, memory_map=True, **kwargs)
        return pq.ParquetFile(self.storage.open_input(full), **kwargs)

    # -- writing -------------------------------------------------------------
    @abstractmethod
    def write_data_file(self, data: pa.Table, *, stats_columns: Iterable[str] | None = None,
                        compression: str = "zstd", row_group_size: int = 64 * 1024,
                        tags: dict[str, str] | None = None) -> DataFile:
        """Write ``data`` (whose schema must be compatible with the table schema) as
        one new Parquet data file, not yet committed. Statistics are collected for
        the leaf columns in ``stats_columns`` (all leaves when None)."""

    @abstractmethod
    def commit(self, *, adds: Sequence[DataFile] = (), removes: Sequence[DataFile] = (),
               schema: pa.Schema | None = None, properties: dict[str, str] | None = None,
               app_id: str | None = None, app_version: int | None = None,
               operation: str = "WRITE", info: dict[str, Any] | None = None,
               read_version: int | None = None, cdc: Sequence[DataFile] = ()) -> int:
        """Atomically commit one new table version and return its number.

        ``read_version`` is the version the caller based its changes on. If other
        commits landed since, the commit is retried on top of them unless one of them
        removed a file in ``removes`` (or changed the schema incompatibly), in which
        case :class:`CommitConflictError` is raised. ``schema`` replaces the table
        schema (only additive evolution is allowed). ``app_id``/``app_version``
        record an idempotency marker (returned in ``Snapshot.app_versions``)."""

    @abstractmethod
    def vacuum(self, *, retention_seconds: float, dry_run: bool = False) -> dict[str, Any]:
        """Delete data files that no snapshot within the retention period references.
        Returns metrics: ``{"files_deleted": n, "bytes_deleted": b, "files": [...]}``."""

    def expire_snapshots(self, *, older_than_ms: int, min_snapshots: int = 1) -> dict[str, Any]:
        """Drop history older than ``older_than_ms`` (formats where history is explicit)."""
        return {"snapshots_expired": 0}


class TableFormat(ABC):
    """Factory for one format's tables."""

    name: str = ""

    @abstractmethod
    def create_table(self, storage: StorageBackend, root: str, schema: pa.Schema, *,
                     properties: dict[str, str] | None = None) -> Table:
        """Create a new empty table (version 0). :class:`TableExistsError` if one exists."""

    @abstractmethod
    def open_table(self, storage: StorageBackend, root: str) -> Table:
        """:class:`TableNotFoundError` if there is none."""

    @abstractmethod
    def table_exists(self, storage: StorageBackend, root: str) -> bool: ...


_FORMATS: dict[str, TableFormat] = {}


def register_format(fmt: TableFormat) -> None:
    _FORMATS[fmt.name] = fmt


def get_format(name: str) -> TableFormat:
    if not _FORMATS:
        _load_builtin_formats()
    try:
        return _FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown table format {name!r} (known: {', '.join(sorted(_FORMATS))})") from None


def _load_builtin_formats() -> None:
    from mongolake.formats import delta  # noqa: F401  (registers itself)
    try:
        from mongolake.formats import iceberg  # noqa: F401
    except ImportError:
        pass
