"""``IcebergTable`` (a :class:`~mongolake.formats.base.Table`) and ``IcebergFormat``.

The latest state is cached per handle. ``snapshot()`` costs one storage read attempt
(of the next metadata version) when nothing changed; after a commit by someone else it
reads the new metadata, the new manifest list and only the manifests it has not seen
(manifests are immutable and cached by path). A handle's own commits update the cache
without reading anything back. Older snapshots are rebuilt from their manifest lists
(a small LRU keeps a few).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

import pyarrow as pa

from mongolake.formats.base import (CommitConflictError, CommitInfo, DataFile, Snapshot, SnapshotNotFoundError, Table, TableError,
                                    TableExistsError, TableFormat, TableNotFoundError)
from mongolake.storage import StorageBackend

from . import maintenance
from .deletes import write_delete_file
from .commit import CHANGES_KEY, INFO_KEY, OPERATION_KEY, Built, Intent, run_commit
from .metadata import (METADATA_DIR, MetadataStore, check_supported, current_snapshot, join, new_metadata,
                       schema_by_id, snapshots_sorted, table_location)
from .schema import IdAssigner, Path, arrow_to_iceberg, field_ids, max_field_id
from .sqlcatalog import SqlCatalog, identifier
from .state import ManifestCache, SnapState, TableState, build_snap_state, created_ms, derive_snap_state
from .writer import write_data_file

log = logging.getLogger(__name__)

_HISTORY_LRU = 4
HINT_RECHECK_SECONDS = 10.0
CATALOG_URI_PROPERTY = "mongolake.iceberg.catalog-uri"
CATALOG_NAME_PROPERTY = "mongolake.iceberg.catalog-name"


class IcebergTable(Table):
    format_name = "iceberg"
    supports_position_deletes = True

    def __init__(self, storage: StorageBackend, root: str, *, catalog: SqlCatalog | None = None):
        super().__init__(storage, root)
        self.store = MetadataStore(storage, self.root)
        self.location = table_location(storage, self.root)
        self.cache = ManifestCache(storage, self.root)
        self.catalog = catalog
        self._state: TableState | None = None
        self._lock = threading.RLock()          # guards the caches
        self._commit_lock = threading.Lock()    # serialises this handle's commits
        self._old: OrderedDict[int, SnapState] = OrderedDict()
        self._pending: dict[Path, int] = {}     # field ids handed to columns not in the schema yet
        self._file_ids: dict[str, dict[int, Path]] = {}   # uncommitted file -> pending ids it uses
        self.lost_races = 0                     # commits retried because another writer won a version
        self._hint_checked = time.monotonic()

    # -- paths (also used by commit/maintenance) ---------------------------------------
    def file_path(self, f: DataFile | str) -> str:
        return join(self.root, f.path if isinstance(f, DataFile) else f)

    def storage_path(self, rel: str) -> str:
        return join(self.root, rel)

    def uri(self, rel: str) -> str:
        return self.location + ("" if self.location.endswith("/") else "/") + rel

    def metadata_uri(self, version: int) -> str:
        return self.uri(f"{METADATA_DIR}/v{version}.metadata.json")

    def pending_ids(self) -> dict[Path, int]:
        with self._lock:
            return dict(self._pending)

    def file_ids(self, path: str) -> dict[int, Path]:
        with self._lock:
            return dict(self._file_ids.get(path, {}))

    # -- state loading ---------------------------------------------------------------
    def _build(self, version: int, md: dict) -> TableState:
        check_supported(md)
        head = build_snap_state(md, current_snapshot(md), self.cache, md["location"], self.location)
        return TableState(version, md, head)

    def refresh_state(self) -> TableState:
        """The newest state, reading only what changed since the cached one."""
        with self._lock:
            cur = self._state
            if cur is None:
                st = self._build(*self.store.latest())
            else:
                newer = self.store.newest_after(cur.version)
                if newer is None:
                    newer = self._recheck_hint(cur)
                    if newer is None:
                        return cur
                st = self._build(*newer)
            self._publish(st)
            return self._state

    def _recheck_hint(self, cur: TableState) -> tuple[int, dict] | None:
        """Every ``HINT_RECHECK_SECONDS`` a miss also reads the hint: if metadata files
        right after ours were vacuumed away while this handle lagged far behind, the
        probe alone would never see newer versions."""
        now = time.monotonic()
        if now - self._hint_checked < HINT_RECHECK_SECONDS:
            return None
        self._hint_checked = now
        hint = self.store.read_hint()
        if hint is None or hint <= cur.version + 1:
            return None
        return self.store.latest()

    def _publish(self, st: TableState) -> None:
        with self._lock:
            if self._state is not None and self._state.version >= st.version:
                return
            if self._state is not None and self._state.head.seq != st.head.seq:
                self._remember(self._state.head)
            self._state = st

    def _remember(self, snap: SnapState) -> None:
        self._old[snap.seq] = snap
        self._old.move_to_end(snap.seq)
        while len(self._old) > _HISTORY_LRU:
            self._old.popitem(last=False)

    def adopt(self, version: int, built: Built) -> TableState:
        """Install this handle's own just-committed metadata (no storage reads)."""
        md = built.metadata
        check_supported(md)
        snap = current_snapshot(md)
        schema = schema_by_id(md, snap.get("schema-id") if snap else None)
        written = []
        for uri, entries in built.manifests:
            raw, files = self.cache.put_entries(uri, entries, schema, md["location"], self.location)
            written.append((uri, raw, files))
        if built.manifest_list is not None:
            self.cache.put_list(*built.manifest_list)
            head = derive_snap_state(md, snap, built.base.head, built.removed, built.manifest_list[1], written,
                                     self.cache, md["location"], self.location)
        else:                                   # metadata-only commit (snapshot expiry): same snapshot
            head = (built.base.head if built.base is not None and built.base.head.snapshot is snap
                    else build_snap_state(md, snap, self.cache, md["location"], self.location))
            head = SnapState(md, head.snapshot, head.manifests, head.live, head.deletes, head.file_deletes)
        st = TableState(version, md, head)
        self._publish(st)
        try:
            self.store.write_hint(version)
        except Exception:  # noqa: BLE001 - the hint is an optimisation
            log.warning("writing version-hint.text of %s failed", self.root, exc_info=True)
        self._register(st)
        return st

    def _register(self, st: TableState, *, force: bool = False) -> None:
        if self.catalog is None:
            return
        ns, name = identifier(self.root, st.metadata.get("properties"))
        try:
            self.catalog.register(ns, name, self.metadata_uri(st.version), force=force)
        except Exception:  # noqa: BLE001 - the filesystem catalog is the source of truth
            log.warning("registering %s.%s in %s failed", ns, name, self.catalog.uri, exc_info=True)

    def _snap_at(self, version: int) -> SnapState:
        latest = self.refresh_state()
        if version == latest.head.seq:
            return latest.head
        if version > latest.head.seq or version < 0:
            raise SnapshotNotFoundError(f"{self.root!r} has no version {version} (latest is {latest.head.seq})")
        with self._lock:
            hit = self._old.get(version)
            if hit is not None:
                self._old.move_to_end(version)
                return hit
        md = latest.metadata
        if version == 0:
            if maintenance.earliest_version(md) != 0:
                raise SnapshotNotFoundError(f"version 0 of {self.root!r} has been expired")
            first = (md.get("schemas") or [md.get("schema")])[0]
            st = SnapState(dict(md, **{"current-schema-id": first.get("schema-id", 0)}), None, [], {})
        else:
            snap = next((s for s in md.get("snapshots") or [] if s.get("sequence-number") == version), None)
            if snap is None:
                raise SnapshotNotFoundError(f"version {version} of {self.root!r} has been expired")
            st = build_snap_state(md, snap, self.cache, md["location"], self.location)
        with self._lock:
            self._remember(st)
        return st

    # -- reading -----------------------------------------------------------------------
    def snapshot(self, version: int | None = None, *, timestamp: datetime | None = None) -> Snapshot:
        if version is not None and timestamp is not None:
            raise ValueError("pass version or timestamp, not both")
        if timestamp is not None:
            version = self._version_at(timestamp)
        st = self.refresh_state().head if version is None else self._snap_at(version)
        return st.to_snapshot()

    def snapshot_by_id(self, snapshot_id: int) -> Snapshot:
        """The snapshot with this Iceberg snapshot id (time travel as other engines name it)."""
        md = self.refresh_state().metadata
        for s in md.get("snapshots") or []:
            if s["snapshot-id"] == snapshot_id:
                return self._snap_at(int(s.get("sequence-number", 0))).to_snapshot()
        raise SnapshotNotFoundError(f"{self.root!r} has no snapshot {snapshot_id} (never existed or expired)")

    def cached_snapshot(self) -> Snapshot:
        """The newest snapshot this handle knows, without any storage I/O (it includes
        this handle's own commits; other writers' commits appear after ``snapshot()``)."""
        st = self._state or self.refresh_state()
        return st.head.to_snapshot()

    def _version_at(self, when: datetime) -> int:
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        target = int(when.timestamp() * 1000)
        md = self.refresh_state().metadata
        found = None
        for s in snapshots_sorted(md):
            if int(s["timestamp-ms"]) <= target:
                found = int(s.get("sequence-number", 0))
        if found is None:
            created = created_ms(md)
            if maintenance.earliest_version(md) == 0 and 0 < created <= target:
                return 0
            raise SnapshotNotFoundError(f"{self.root!r} has no snapshot at or before {when.isoformat()}")
        return found

    def history(self, limit: int | None = None) -> list[CommitInfo]:
        md = self.refresh_state().metadata
        out: list[CommitInfo] = []
        for s in reversed(snapshots_sorted(md)):
            if limit is not None and len(out) >= limit:
                return out
            summary = s.get("summary") or {}
            try:
                info = json.loads(summary.get(INFO_KEY, "{}"))
            except ValueError:
                info = {}
            out.append(CommitInfo(version=int(s.get("sequence-number", 0)), timestamp_ms=int(s["timestamp-ms"]),
                                  operation=str(summary.get(OPERATION_KEY, summary.get("operation", "UNKNOWN"))),
                                  info=info if isinstance(info, dict) else {}))
        if (limit is None or len(out) < limit) and maintenance.earliest_version(md) == 0:
            out.append(CommitInfo(version=0, timestamp_ms=created_ms(md), operation="CREATE TABLE",
                                  info={"properties": json.dumps(md.get("properties") or {})}))
        return out

    def changes(self, since_version: int, until_version: int | None = None) -> list[tuple[int, DataFile]]:
        """Change-data files (``commit(cdc=...)``) of the versions after ``since_version``
        (up to ``until_version``), oldest first, as ``(version, DataFile)``.
        :class:`SnapshotNotFoundError` when versions after ``since_version`` have been
        expired (a change stream cannot resume there)."""
        md = self.refresh_state().metadata
        earliest = maintenance.earliest_version(md)
        if earliest > 0 and since_version < earliest - 1:
            raise SnapshotNotFoundError(f"changes after version {since_version} of {self.root!r} have been expired "
                                        f"(the oldest version kept is {earliest})")
        out: list[tuple[int, DataFile]] = []
        for s in snapshots_sorted(md):
            v = int(s.get("sequence-number", 0))
            if v <= since_version or (until_version is not None and v > until_version):
                continue
            for c in json.loads((s.get("summary") or {}).get(CHANGES_KEY, "[]")):
                out.append((v, DataFile(path=c["path"], size=int(c["size"]), num_records=int(c["records"]),
                                        modification_time=int(c.get("mtime", 0)), tags=dict(c.get("tags") or {}))))
        return out

    # -- writing -----------------------------------------------------------------------
    def write_data_file(self, data: pa.Table, *, stats_columns: Iterable[str] | None = None,
                        compression: str = "zstd", row_group_size: int = 64 * 1024,
                        tags: dict[str, str] | None = None, subdir: str | None = None) -> DataFile:
        """See :meth:`Table.write_data_file`. Files go to ``data/``; ``subdir="_change_data"``
        writes a change-data file under ``data/_change_data/`` (pass it to
        ``commit(cdc=[...])``; extra columns such as ``_change_type`` are allowed). Uses
        the cached table state (no metadata read)."""
        with self._lock:      # reserve ids for new columns before writing (threads must not share one)
            st = self._state or self.refresh_state()
            md = st.metadata
            schema = schema_by_id(md, md.get("current-schema-id"))
            known = field_ids(schema)
            pending = dict(self._pending)
            last = max([int(md.get("last-column-id", max_field_id(schema))), *pending.values()])
            ids = IdAssigner({**pending, **known}, last + 1)
            arrow_to_iceberg(data.schema, ids)
            if not subdir:
                self._pending.update(ids.assigned)
        ids = IdAssigner({**pending, **ids.assigned, **known}, ids.next_id)
        f, new_ids = write_data_file(self.storage, self.root, data, schema, ids, stats_columns=stats_columns,
                                     compression=compression, row_group_size=row_group_size, tags=tags,
                                     subdir=subdir)
        if not subdir and new_ids:
            with self._lock:
                self._file_ids[f.path] = new_ids
                while len(self._file_ids) > 100_000:          # files written but never committed
                    self._file_ids.pop(next(iter(self._file_ids)))
        return f

    def commit(self, *, adds: Sequence[DataFile] = (), removes: Sequence[DataFile] = (),
               schema: pa.Schema | None = None, properties: dict[str, str] | None = None,
               app_id: str | None = None, app_version: int | None = None,
               operation: str = "WRITE", info: dict[str, Any] | None = None,
               read_version: int | None = None, cdc: Sequence[DataFile] = (),
               position_deletes: Mapping[str, Sequence[int]] | None = None) -> int:
        """See :meth:`Table.commit`. Creates one Iceberg snapshot (operation ``append``,
        ``overwrite``, ``delete``, or ``replace`` for OPTIMIZE/COMPACT) whose sequence
        number is the returned version.

        ``position_deletes`` maps live data files (relative paths) to row positions to
        delete: one position delete file per data file is written and listed in a delete
        manifest (merge-on-read). Removing a data file also removes the delete files
        that apply to it. :class:`CommitConflictError` if a data file named there was
        removed concurrently."""
        deletes = self._write_deletes(position_deletes) if position_deletes else ()
        intent = Intent(adds=tuple(adds), removes=tuple(removes), cdc=tuple(cdc), schema=schema,
                        properties={str(k): str(v) for k, v in (properties or {}).items()}, app_id=app_id,
                        app_version=app_version, operation=operation, info=dict(info or {}),
                        read_version=read_version, position_deletes=deletes)
        with self._commit_lock:
            st, lost = run_commit(self, intent)
            self.lost_races += lost
            with self._lock:
                known = field_ids(schema_by_id(st.metadata, st.metadata.get("current-schema-id")))
                for f in adds:
                    self._file_ids.pop(f.path, None)
                for p in [p for p in self._pending if p in known]:
                    del self._pending[p]
        return st.head.seq

    def _write_deletes(self, position_deletes: Mapping[str, Sequence[int]]) -> tuple:
        head = self.refresh_state().head
        out = []
        for path, positions in position_deletes.items():
            if not len(positions):
                continue
            lv = head.live.get(path)
            if lv is None:
                raise CommitConflictError(f"file {path!r} is not part of the table (version {head.seq}): its rows "
                                          f"cannot be deleted by position")
            uri = lv.entry.data_file["file_path"]
            d = write_delete_file(self.storage, self.root, path, uri, positions, lv.file.num_records)
            self.cache.put_positions(self.uri(d.file.path), {uri: np.asarray(d.positions, dtype=np.int64)})
            out.append(d)
        return tuple(out)

    # -- maintenance ---------------------------------------------------------------------
    def vacuum(self, *, retention_seconds: float, dry_run: bool = False) -> dict[str, Any]:
        """Expire snapshots that stopped being current more than ``retention_seconds`` ago,
        then delete unreferenced data, change-data and metadata files older than that.
        Returns ``{"files_deleted", "bytes_deleted", "files", "dry_run",
        "snapshots_expired", "metadata_files_deleted"}`` (``files``: data and change files)."""
        with self._commit_lock:
            result = maintenance.vacuum(self, retention_seconds=retention_seconds, dry_run=dry_run)
        self._forget_expired()
        return result

    def expire_snapshots(self, *, older_than_ms: int, min_snapshots: int = 1) -> dict[str, Any]:
        """Drop snapshots committed before ``older_than_ms`` (keeping at least
        ``min_snapshots`` and the current one) and their manifest lists/manifests.
        Returns ``{"snapshots_expired", "files_deleted", "earliest_version"}``."""
        with self._commit_lock:
            result = maintenance.expire_snapshots(self, older_than_ms=older_than_ms, min_snapshots=min_snapshots)
        self._forget_expired()
        return result

    def _forget_expired(self) -> None:
        st = self._state
        if st is None:
            return
        first = maintenance.earliest_version(st.metadata)
        with self._lock:
            for v in [v for v in self._old if v < first]:
                del self._old[v]

    def register(self, catalog: SqlCatalog | None = None) -> None:
        """Register (or re-point) this table in ``catalog`` (default: the handle's)."""
        if catalog is not None:
            self.catalog = catalog
        if self.catalog is None:
            raise TableError("no SQL catalog configured for this table")
        self._register(self.refresh_state())


class IcebergFormat(TableFormat):
    """Iceberg tables in the filesystem catalog layout, optionally also registered in a
    SQLite catalog: ``IcebergFormat(catalog_uri="sqlite:////path/catalog.db")``, or
    set ``catalog_uri`` on the registered instance (``get_format("iceberg")``), or give a
    table the property ``mongolake.iceberg.catalog-uri``."""

    name = "iceberg"

    def __init__(self, catalog_uri: str | None = None, catalog_name: str = "mongolake"):
        self.catalog_uri = catalog_uri
        self.catalog_name = catalog_name
        self._catalogs: dict[tuple[str, str], SqlCatalog] = {}
        self._lock = threading.Lock()

    def _catalog(self, properties: dict[str, str] | None) -> SqlCatalog | None:
        props = properties or {}
        uri = props.get(CATALOG_URI_PROPERTY) or self.catalog_uri
        if not uri:
            return None
        key = (uri, props.get(CATALOG_NAME_PROPERTY) or self.catalog_name)
        with self._lock:
            cat = self._catalogs.get(key)
            if cat is None:
                cat = self._catalogs[key] = SqlCatalog(*key)
            return cat

    def create_table(self, storage: StorageBackend, root: str, schema: pa.Schema, *,
                     properties: dict[str, str] | None = None) -> IcebergTable:
        root = root.rstrip("/")
        store = MetadataStore(storage, root)
        if store.exists():
            raise TableExistsError(f"an Iceberg table already exists at {root!r}")
        props = {str(k): str(v) for k, v in (properties or {}).items()}
        ice = arrow_to_iceberg(schema, IdAssigner({}, 1))
        md = new_metadata(table_location(storage, root), ice, max_field_id(ice), props, int(time.time() * 1000))
        if not store.try_write(1, md):
            raise TableExistsError(f"an Iceberg table already exists at {root!r}")
        store.write_hint(1)
        table = IcebergTable(storage, root, catalog=self._catalog(props))
        table._register(table.refresh_state(), force=True)
        return table

    def open_table(self, storage: StorageBackend, root: str) -> IcebergTable:
        root = root.rstrip("/")
        store = MetadataStore(storage, root)
        if not store.exists():
            raise TableNotFoundError(f"no Iceberg table at {root!r}")
        table = IcebergTable(storage, root)
        table.catalog = self._catalog(table.refresh_state().metadata.get("properties"))
        return table

    def table_exists(self, storage: StorageBackend, root: str) -> bool:
        return MetadataStore(storage, root.rstrip("/")).exists()
