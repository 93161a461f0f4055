"""The EntityBackend: collections of documents over lakehouse tables.

Usable embedded (``Engine(...).open()``) or behind the wire server. Every write
becomes one atomic :class:`ChangeBatch`: appended to the WAL, applied to the
memtables, then published to listeners; it is durable once the WAL has synced
it (``wait_durable``/``durable_future``). Flushes turn memtables into table
commits that record the WAL position they cover, so recovery replays exactly
what is missing.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime
from typing import Any, Callable

from bson.timestamp import Timestamp

from mongolake.errors import ErrorCode, MongoError
from mongolake.formats.base import TableExistsError, get_format
from mongolake.query import columns
from mongolake.storage import StorageBackend, open_storage

from . import flush as _flush
from .cache import LRUCache
from .changes import ChangeLog, last_ddl_boundary, write_ddl_file
from .catalog import Catalog, CollectionMeta, validate_coll_name, validate_db_name
from .collection import Collection
from .entity import EntityOps
from .indexing import IndexManager
from .indexing.ttl import TTLMonitor
from .reader import FileReader
from .reads import ReadOps
from .records import DDL_OPS, Change, ChangeBatch
from .softdelete import is_soft, normalize_options, soft_table
from .txn import Transaction, TxnManager
from .wal import WriteAheadLog
from .writes import WriteOps

log = logging.getLogger("mongolake.engine")

FORMATS = ("delta", "iceberg")


class Engine(ReadOps, WriteOps, EntityOps):
    def __init__(self, storage: str | StorageBackend = "./.mongolake", *, wal_dir: str | None = None,
                 table_format: str = "delta", sync: str = "always", flush_interval: float = 30.0,
                 memtable_bytes: int = 64 << 20, cache_bytes: int = 256 << 20, compression: str = "zstd",
                 row_group_rows: int = 4096, file_rows: int = 1 << 20, storage_options: dict | None = None):
        if table_format not in FORMATS:
            raise ValueError(f"unknown table format {table_format!r} (use delta or iceberg)")
        self.storage = storage if isinstance(storage, StorageBackend) else open_storage(storage,
                                                                                         **(storage_options or {}))
        if wal_dir is None:
            local = self.storage.local_path("_mongolake") if hasattr(self.storage, "local_path") else None
            wal_dir = os.path.join(local, "wal") if local else os.path.abspath("./.mongolake-wal")
        self.wal_dir = wal_dir
        self.table_format = table_format
        self.flush_interval = flush_interval
        self.memtable_bytes = memtable_bytes
        self.compression = compression
        self.row_group_rows = row_group_rows
        self.file_rows = file_rows
        self.cache = LRUCache(cache_bytes)
        self.reader = FileReader(self.cache)
        self.wal = WriteAheadLog(wal_dir, sync=sync)
        self.lock = threading.RLock()
        self.flush_lock = threading.Lock()
        self.catalog: Catalog | None = None
        self.collections: dict[str, Collection] = {}      # uuid -> open collection
        self.listeners: list[Callable[[ChangeBatch], None]] = []
        self.changelog = ChangeLog(self)
        self.txns = TxnManager(self)
        self.indexes = IndexManager(self)
        self.ttl_interval = float(os.environ.get("MONGOLAKE_TTL_INTERVAL", "60"))
        self.ttl: TTLMonitor | None = None
        self.wal.on_sync.append(self.changelog.notify)
        self._last_ts = Timestamp(0, 0)
        self._flusher: threading.Thread | None = None
        self._flush_wakeup = threading.Event()
        self._closing = False
        self.opened = False
        self.stats = {"flushes": 0, "flush_seconds": 0.0, "batches": 0, "recovered_batches": 0}

    # -- lifecycle -----------------------------------------------------------
    def open(self) -> "Engine":
        self.catalog = Catalog(self.storage)
        for meta in list(self.catalog.collections.values()):
            self.collections[meta.uuid] = self._open_collection(meta)
        n = 0
        first = None
        for seq, payload in self.wal.replay():
            batch = ChangeBatch.decode(payload, seq)
            first = seq if first is None else first
            applied = False
            for ch in batch.changes:
                c = self.collections.get(ch.uuid)
                if ch.ns:
                    batch.namespaces.setdefault(ch.uuid, ch.ns)
                if c is None or seq <= c.flushed_seq or ch.op in DDL_OPS:
                    continue
                if ch.doc is None and is_soft(ch):
                    c.active.put(ch.key, None, seq, 0, ch.before, batch.wall_ms)
                else:
                    c.active.put(ch.key, ch.doc, seq)
                applied = True
            if batch.cluster_time is not None and batch.cluster_time > self._last_ts:
                self._last_ts = batch.cluster_time
            self.changelog.append(batch)
            n += applied
        self.stats["recovered_batches"] = n
        # the cluster clock never starts below the wall clock (an empty WAL after a clean stop)
        now = Timestamp(int(time.time()), 0)
        if now > self._last_ts:
            self._last_ts = now
        max_flushed = max((c.flushed_seq for c in self.collections.values()), default=0)
        self.wal.open(next_seq=max(self.wal.last_seq, max_flushed, last_ddl_boundary(self)) + 1)
        # everything before the oldest WAL record made it into table / ddl change files
        self.changelog.persisted_seq = (first - 1) if first is not None else self.wal.last_seq
        self.opened = True
        self._flusher = threading.Thread(target=self._flush_loop, name="flusher", daemon=True)
        self._flusher.start()
        self.ttl = TTLMonitor(self, self.ttl_interval)
        self.ttl.start()
        if n:
            log.info("recovered %d WAL batches", n)
        return self

    def close(self, *, flush: bool = True) -> None:
        if not self.opened:
            return
        self._closing = True
        self._flush_wakeup.set()
        if self.ttl is not None:
            self.ttl.stop()
        if self._flusher is not None:
            self._flusher.join(timeout=60)
        if flush:
            try:
                self.flush()
            except Exception:
                log.exception("flush at shutdown failed (the WAL keeps the data)")
        self.wal.close()
        self.storage.close()
        self.opened = False

    def __enter__(self) -> "Engine":
        return self.open() if not self.opened else self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _open_collection(self, meta: CollectionMeta) -> Collection:
        fmt = get_format(meta.format)
        table = soft_table(fmt.open_table(self.storage, meta.path))
        c = Collection(meta, table, table.snapshot())
        c.refresh_specs()
        return c

    # -- clock ---------------------------------------------------------------
    def next_cluster_time(self) -> Timestamp:
        now = int(time.time())
        last = self._last_ts
        ts = Timestamp(now, 1) if now > last.time else Timestamp(last.time, last.inc + 1)
        self._last_ts = ts
        return ts

    @property
    def cluster_time(self) -> Timestamp:
        return self._last_ts

    # -- catalog -------------------------------------------------------------
    def list_databases(self) -> list[str]:
        return self.catalog.databases()

    def list_collections(self, db: str) -> list[CollectionMeta]:
        return self.catalog.list(db)

    def get_collection(self, db: str, name: str) -> Collection | None:
        meta = self.catalog.get(db, name)
        return self.collections.get(meta.uuid) if meta is not None else None

    def create_collection(self, db: str, name: str, options: dict | None = None, *,
                          table_format: str | None = None, exist_ok: bool = False) -> Collection:
        validate_db_name(db)
        validate_coll_name(db, name, allow_system=name.startswith("system.") and db in ("admin", "config"))
        options = normalize_options(dict(options or {}))
        fmt_name = table_format or options.pop("tableFormat", None) or self.table_format
        if fmt_name not in FORMATS:
            raise MongoError(ErrorCode.InvalidOptions, f"unknown tableFormat {fmt_name!r} (use delta or iceberg)")
        with self.lock:
            existing = self.get_collection(db, name)
            if existing is not None:
                if exist_ok:
                    return existing
                raise MongoError(ErrorCode.NamespaceExists, f"Collection {db}.{name} already exists.")
            meta = self.catalog.create(db, name, fmt=fmt_name, options=options,
                                       indexes=[{"v": 2, "key": {"_id": 1}, "name": "_id_"}])
            try:
                c = self._create_table(meta)
            except BaseException:
                self.catalog.drop(db, name)
                raise
            self.collections[meta.uuid] = c
            self.ddl_event("create", meta.uuid, (db, name), {"options": dict(options)}, wait=False)
            return c

    def ddl_event(self, op: str, uuid: str, ns: tuple[str, str], desc: dict | None = None, *,
                  wait: bool = True) -> int:
        """Record a catalog event (create, drop, rename, ...) for change streams."""
        with self.lock:
            seq = self.commit_batch(ChangeBatch([Change(uuid, op, b"", None, desc=desc, ns=ns)]))
        if wait:
            self.wait_durable(seq)
        return seq

    def _create_table(self, meta: CollectionMeta) -> Collection:
        fmt = get_format(meta.format)
        schema = columns.arrow_schema({})
        props = {"delta.enableChangeDataFeed": "true", "mongolake.namespace": meta.ns, "mongolake.uuid": meta.uuid}
        try:
            table = fmt.create_table(self.storage, meta.path, schema, properties=props)
        except TableExistsError:
            # an orphan left by a drop/rename interrupted by a crash: it is not in the catalog
            self.storage.delete_prefix(meta.path + "/")
            table = fmt.create_table(self.storage, meta.path, schema, properties=props)
        table = soft_table(table)
        c = Collection(meta, table, table.snapshot())
        c.refresh_specs()
        return c

    def collection_for_write(self, db: str, name: str) -> Collection:
        c = self.get_collection(db, name)
        if c is None:
            c = self.create_collection(db, name)
        return c

    def drop_collection(self, db: str, name: str) -> bool:
        with self.lock:
            meta = self.catalog.drop(db, name)
            if meta is None:
                return False
            c = self.collections.pop(meta.uuid, None)
            self.indexes.forget(meta.uuid)
            if c is not None:
                c.dropped = True
                self.reader.forget_files(c.table, {f.path for f in c.snapshot.files})
            self.ddl_event("drop", meta.uuid, (db, name), wait=False)
        self.storage.delete_prefix(meta.path + "/")
        return True

    def drop_database(self, db: str) -> list[str]:
        names = [m.name for m in self.catalog.list(db)]
        for n in names:
            self.drop_collection(db, n)
        self.ddl_event("dropDatabase", "", (db, ""))
        return names

    def rename_collection(self, db: str, name: str, to_db: str, to_name: str, *, drop_target: bool = False) -> None:
        validate_db_name(to_db)
        validate_coll_name(to_db, to_name)
        with self.lock:
            src = self.get_collection(db, name)
            if src is None:
                raise MongoError(ErrorCode.NamespaceNotFound, "source namespace does not exist")
            if self.get_collection(to_db, to_name) is not None:
                if not drop_target:
                    raise MongoError(ErrorCode.NamespaceExists, "target namespace exists")
                self.drop_collection(to_db, to_name)
            # the table stays where it is: its folder is recorded in the catalog
            self.catalog.update(src.meta, new_db=to_db, new_name=to_name)
            self.ddl_event("rename", src.uuid, (db, name), {"to": {"db": to_db, "coll": to_name},
                                                            "dropTarget": bool(drop_target)}, wait=False)

    def _set_meta(self, c: Collection, attr: str, value: Any) -> Any:
        """Set one catalog field of ``c`` and persist it (lock held by the caller);
        the old value is restored when the catalog cannot be written. Returns it."""
        old = getattr(c.meta, attr)
        setattr(c.meta, attr, value)
        try:
            self.catalog.update(c.meta)
        except BaseException:
            setattr(c.meta, attr, old)
            raise
        return old

    def set_indexes(self, c: Collection, indexes: list[dict]) -> None:
        with self.lock:
            old = self._set_meta(c, "indexes", indexes)
            added = [ix for ix in indexes if ix["name"] not in {o["name"] for o in old}]
            removed = [ix for ix in old if ix["name"] not in {n["name"] for n in indexes}]
            if added:
                self.ddl_event("createIndexes", c.uuid, (c.meta.db, c.meta.name), {"indexes": added}, wait=False)
            if removed:
                self.ddl_event("dropIndexes", c.uuid, (c.meta.db, c.meta.name), {"indexes": removed}, wait=False)

    def set_search_indexes(self, c: Collection, specs: list[dict]) -> None:
        """Replace the collection's search-index definitions (``createSearchIndexes``
        and friends) in the catalog; the index manager builds them on next use."""
        with self.lock:
            self._set_meta(c, "search_indexes", specs)

    def set_options(self, c: Collection, options: dict) -> None:
        options = normalize_options(options, "collMod")
        with self.lock:
            self._set_meta(c, "options", options)
            self.ddl_event("modify", c.uuid, (c.meta.db, c.meta.name), {"options": dict(options)}, wait=False)

    # -- the write path ------------------------------------------------------
    def commit_batch(self, batch: ChangeBatch) -> int:
        """Append ``batch`` to the WAL, apply it to the memtables, publish it. Call
        with ``self.lock`` held. Returns the batch's sequence number."""
        if not batch.changes:
            return 0
        batch.cluster_time = self.next_cluster_time()
        batch.wall_ms = int(time.time() * 1000)
        for ch in batch.changes:
            if ch.ns is None:
                c = self.collections[ch.uuid]
                ch.ns = (c.meta.db, c.meta.name)
                pp = c.meta.options.get("changeStreamPreAndPostImages")
                ch.keep_before = isinstance(pp, dict) and bool(pp.get("enabled"))
            if ch.doc is None and ch.desc is not None and is_soft(ch):
                ch.keep_before = True           # a soft delete keeps the document (WAL, then flush)
        seq = self.wal.append(batch.encode())
        batch.seq = seq
        horizon = self.txns.horizon
        for ch in batch.changes:
            batch.namespaces.setdefault(ch.uuid, ch.ns)
            if ch.op not in DDL_OPS:
                self.indexes.before_apply(ch)
                if ch.doc is None and ch.desc is not None and is_soft(ch):
                    self.collections[ch.uuid].active.put(ch.key, None, seq, horizon, ch.before, batch.wall_ms)
                else:
                    self.collections[ch.uuid].active.put(ch.key, ch.doc, seq, horizon)
        if horizon:
            self.txns.note_committed(batch.changes, seq)
        self.changelog.append(batch)
        self.stats["batches"] += 1
        for fn in self.listeners:
            try:
                fn(batch)
            except Exception:
                log.exception("change listener failed")
        if self._mem_total() > self.memtable_bytes:
            self._flush_wakeup.set()
        return seq

    def wait_durable(self, seq: int) -> None:
        if seq:
            self.wal.wait_durable(seq)

    def durable_future(self, seq: int, loop):
        return self.wal.durable_future(seq, loop) if seq else None

    def _mem_total(self) -> int:
        return sum(c.active.nbytes for c in self.collections.values())

    # -- flushing ------------------------------------------------------------
    def flush(self) -> dict:
        """Write every memtable to its table (one commit per changed collection)."""
        with self.flush_lock:
            t0 = time.time()
            with self.lock:
                boundary = self.wal.rotate()
                work = []
                for c in self.collections.values():
                    if len(c.active):
                        c.active.frozen = True
                        c.frozen.append(c.active)
                        c.active = type(c.active)()
                    if c.frozen:
                        work.append(c)
            metrics = {"collections": 0, "files_added": 0, "files_removed": 0, "documents": 0}
            ok = True
            for c in work:
                try:
                    m = _flush.flush_collection(self, c, boundary)
                except Exception:
                    ok = False
                    log.exception("flush of %s failed; its data stays in the WAL", c.ns)
                    continue
                metrics["collections"] += 1
                for k in ("files_added", "files_removed", "documents"):
                    metrics[k] += m.get(k, 0)
            if ok:
                try:
                    write_ddl_file(self, self.changelog.batches_for_flush(self.changelog.persisted_seq, boundary),
                                   boundary)
                    self.changelog.mark_persisted(boundary)
                    self.wal.drop_through(boundary)
                except Exception:
                    log.exception("writing catalog change events failed; the WAL keeps them")
            self.stats["flushes"] += 1
            self.stats["flush_seconds"] += time.time() - t0
            metrics["seconds"] = round(time.time() - t0, 4)
            return metrics

    def _flush_loop(self) -> None:
        last = time.time()
        while not self._closing:
            self._flush_wakeup.wait(timeout=min(1.0, self.flush_interval))
            self._flush_wakeup.clear()
            if self._closing:
                return
            due = time.time() - last >= self.flush_interval
            if due or self._mem_total() > self.memtable_bytes:
                try:
                    if any(len(c.active) for c in list(self.collections.values())):
                        self.flush()
                except Exception:
                    log.exception("background flush failed")
                last = time.time()

    # -- transactions --------------------------------------------------------
    def begin_transaction(self, info: dict | None = None) -> Transaction:
        """Start a snapshot-isolated transaction; run operations under
        ``with mongolake.engine.txn.using(tx):`` then commit or abort it."""
        return self.txns.begin(info)

    def commit_transaction(self, tx: Transaction, *, wait: bool = True) -> int:
        seq = self.txns.commit(tx)
        if wait:
            self.wait_durable(seq)
        return seq

    def abort_transaction(self, tx: Transaction) -> None:
        self.txns.abort(tx)

    # -- maintenance ---------------------------------------------------------
    def compact(self, db: str, name: str, **kw: Any) -> dict:
        from .maintenance import compact
        return compact(self, db, name, **kw)

    def vacuum(self, db: str, name: str, **kw: Any) -> dict:
        from .maintenance import vacuum
        return vacuum(self, db, name, **kw)

    # -- time travel ---------------------------------------------------------
    def snapshot_view(self, db: str, name: str, *, version: int | None = None,
                      timestamp: datetime | None = None) -> Collection:
        """A read-only view of a collection's table at a past version or time (no memtable)."""
        c = self.get_collection(db, name)
        if c is None:
            raise MongoError(ErrorCode.NamespaceNotFound, f"ns not found: {db}.{name}")
        snap = c.table.snapshot(version, timestamp=timestamp)
        view = Collection(c.meta, c.table, snap)
        view.refresh_specs()
        return view

    def list_snapshots(self, db: str, name: str) -> list[dict]:
        c = self.get_collection(db, name)
        if c is None:
            raise MongoError(ErrorCode.NamespaceNotFound, f"ns not found: {db}.{name}")
        return [{"version": h.version, "timestamp_ms": h.timestamp_ms, "operation": h.operation, **h.info}
                for h in c.table.history()]
