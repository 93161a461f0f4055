"""``DeltaTable`` (a :class:`~mongolake.formats.base.Table`) and ``DeltaFormat``.

The latest replayed state is cached per handle. ``snapshot()`` costs one storage
read attempt (of the next commit file) when nothing changed; new commits are
applied incrementally, or from a newer checkpoint when far behind. Older versions
are rebuilt from the newest checkpoint at or before them (a small LRU keeps a few).
"""
from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import pyarrow as pa

from mongolake.formats.base import (CommitInfo, DataFile, Snapshot, SnapshotNotFoundError, Table, TableError,
                                    TableExistsError, TableFormat, TableNotFoundError)
from mongolake.storage import NotFoundError, StorageBackend

from . import maintenance
from .checkpoint import read_checkpoint, write_checkpoint
from .commit import CDF_KEY, ENGINE_INFO, intent_from, run_commit
from .log import Action, DeltaLog, join
from .schema import arrow_to_delta, schema_to_json
from .state import decode_path, LogState
from .writer import write_data_file

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_INTERVAL = 10
DEFAULT_TOMBSTONE_RETENTION_MS = 7 * 24 * 3600 * 1000
_HISTORY_LRU = 4


def parse_interval_ms(text: str | None, default: int) -> int:
    """Delta duration properties: ``"interval 7 days"``, ``"1 week"``, ``"3600 seconds"``."""
    if not text:
        return default
    parts = text.lower().replace("interval", "").split()
    try:
        n = float(parts[0])
        unit = parts[1] if len(parts) > 1 else "milliseconds"
    except (IndexError, ValueError):
        return default
    scale = {"millisecond": 1, "second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000,
             "week": 604_800_000}
    for k, v in scale.items():
        if unit.startswith(k):
            return int(n * v)
    return default


class DeltaTable(Table):
    format_name = "delta"

    def __init__(self, storage: StorageBackend, root: str):
        super().__init__(storage, root)
        self.log = DeltaLog(storage, self.root)
        self._state: LogState | None = None
        self._lock = threading.RLock()          # guards the caches
        self._commit_lock = threading.Lock()    # serialises this handle's commits
        self._old: OrderedDict[int, LogState] = OrderedDict()
        self._commit_ts: dict[int, int] = {}
        self._history: dict[int, CommitInfo] = {}
        self.lost_races = 0                     # commits retried because another writer won a version

    def file_path(self, f: DataFile | str) -> str:
        return join(self.root, f.path if isinstance(f, DataFile) else f)

    # -- state loading ---------------------------------------------------------------
    def _footer_rows(self, path: str) -> int:
        return self.open_data_file(path).metadata.num_rows

    def _from_checkpoint(self, version: int, paths: list[str]) -> LogState:
        st = LogState()
        st.apply(version, read_checkpoint(self.log, paths))
        return st

    def _roll_forward(self, st: LogState, until: int | None = None) -> LogState:
        """Apply commits after ``st.version`` (up to ``until``) to ``st`` in place."""
        v = st.version + 1
        while until is None or v <= until:
            actions = self.log.read_commit(v)
            if actions is None:
                if until is not None:
                    raise SnapshotNotFoundError(f"commit {v} of {self.root!r} is missing")
                break
            st.apply(v, actions)
            if st.timestamp_ms is not None:
                self._commit_ts[v] = st.timestamp_ms
            v += 1
        return st

    def _fill_timestamp(self, st: LogState) -> None:
        if st.timestamp_ms is not None:
            return
        ts = self._commit_timestamp(st.version)
        if ts is None:
            try:
                ts = int(self.storage.stat(self.log.checkpoint_path(st.version)).mtime * 1000)
            except NotFoundError:
                ts = 0
        st.timestamp_ms = ts

    def _load_latest(self) -> LogState:
        st: LogState | None = None
        hint = self.log.read_last_checkpoint()
        if hint is not None:
            try:
                st = self._from_checkpoint(hint["version"], self.log.checkpoint_files(hint))
            except NotFoundError:
                st = None
        if st is None:
            listing = self.log.list()
            if not listing.commits and not listing.checkpoints:
                raise TableNotFoundError(f"no Delta table at {self.root!r}")
            c = listing.checkpoint_at_or_before(listing.latest)
            if c is not None:
                st = self._from_checkpoint(c, listing.checkpoints[c])
            elif 0 in listing.commits:
                st = LogState()
            else:
                raise TableError(f"Delta log of {self.root!r} has neither version 0 nor a checkpoint")
        self._roll_forward(st)
        if st.version < 0:
            raise TableNotFoundError(f"no Delta table at {self.root!r}")
        self._fill_timestamp(st)
        return st

    def _refresh(self) -> LogState:
        """The newest state, reading only commits newer than the cached one."""
        with self._lock:
            cur = self._state
            if cur is None:
                self._state = self._load_latest()
                return self._state
            nxt = self.log.read_commit(cur.version + 1)
            if nxt is None:
                return cur
            hint = self.log.read_last_checkpoint()
            if hint is not None and hint["version"] > cur.version + self._checkpoint_interval(cur):
                try:
                    st = self._from_checkpoint(hint["version"], self.log.checkpoint_files(hint))
                except NotFoundError:
                    st = None
                if st is not None:
                    self._roll_forward(st)
                    self._fill_timestamp(st)
                    self._publish(st)
                    return st
            st = cur.copy()
            st.apply(cur.version + 1, nxt)
            self._roll_forward(st)
            self._fill_timestamp(st)
            self._publish(st)
            return st

    def _publish(self, st: LogState) -> None:
        with self._lock:
            if self._state is not None and self._state.version >= st.version:
                return
            if self._state is not None:
                self._remember(self._state)
            self._state = st
            if st.timestamp_ms is not None:
                self._commit_ts[st.version] = st.timestamp_ms

    def _remember(self, st: LogState) -> None:
        self._old[st.version] = st
        self._old.move_to_end(st.version)
        while len(self._old) > _HISTORY_LRU:
            self._old.popitem(last=False)

    @staticmethod
    def _checkpoint_interval(st: LogState) -> int:
        try:
            return max(1, int(st.configuration.get("delta.checkpointInterval", DEFAULT_CHECKPOINT_INTERVAL)))
        except ValueError:
            return DEFAULT_CHECKPOINT_INTERVAL

    def _state_at(self, version: int) -> LogState:
        latest = self._refresh()
        if version == latest.version:
            return latest
        if version > latest.version or version < 0:
            raise SnapshotNotFoundError(f"{self.root!r} has no version {version} (latest is {latest.version})")
        with self._lock:
            if version in self._old:
                self._old.move_to_end(version)
                return self._old[version]
            older = [v for v in self._old if v < version]
            base = self._old[max(older)] if older else None
        listing = self.log.list()
        c = listing.checkpoint_at_or_before(version)
        if base is not None and (c is None or base.version >= c):
            st = base.copy()
        elif c is not None:
            st = self._from_checkpoint(c, listing.checkpoints[c])
        elif 0 in listing.commits:
            st = LogState()
        else:
            raise SnapshotNotFoundError(f"version {version} of {self.root!r} has been expired from the log")
        self._roll_forward(st, until=version)
        self._fill_timestamp(st)
        with self._lock:
            self._remember(st)
        return st

    def _commit_timestamp(self, version: int, mtime_s: float | None = None) -> int | None:
        ts = self._commit_ts.get(version)
        if ts is None:
            actions = self.log.read_commit(version)
            if actions is None:
                return None if mtime_s is None else int(mtime_s * 1000)
            for a in actions:
                ci = a.get("commitInfo")
                if ci and isinstance(ci.get("inCommitTimestamp", ci.get("timestamp")), int):
                    ts = ci.get("inCommitTimestamp", ci.get("timestamp"))
            if ts is None:
                ts = int(mtime_s * 1000) if mtime_s is not None else self.log.commit_mtime_ms(version)
            if ts is not None:
                self._commit_ts[version] = ts
        return ts

    # -- reading -----------------------------------------------------------------------
    def snapshot(self, version: int | None = None, *, timestamp: datetime | None = None) -> Snapshot:
        if version is not None and timestamp is not None:
            raise ValueError("pass version or timestamp, not both")
        if timestamp is not None:
            version = self._version_at(timestamp)
        st = self._refresh() if version is None else self._state_at(version)
        return st.to_snapshot(self._footer_rows)

    def cached_snapshot(self) -> Snapshot:
        """The newest snapshot this handle knows, without any storage I/O (it includes
        this handle's own commits; other writers' commits appear after ``snapshot()``)."""
        st = self._state or self._refresh()
        return st.to_snapshot(self._footer_rows)

    def _version_at(self, when: datetime) -> int:
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        target = int(when.timestamp() * 1000)
        latest = self._refresh()
        listing = self.log.list()
        first = listing.earliest_reconstructable()
        versions = sorted(v for v in listing.commits if first is not None and first <= v <= latest.version)
        if first is not None and first not in listing.commits:
            versions.insert(0, first)
        lo, hi, found = 0, len(versions) - 1, None
        while lo <= hi:                      # commit timestamps are monotonic for our writers
            mid = (lo + hi) // 2
            ts = self._commit_timestamp(versions[mid], listing.commits.get(versions[mid],
                                                                         listing.checkpoint_mtimes.get(versions[mid])))
            if ts is not None and ts <= target:
                found, lo = versions[mid], mid + 1
            else:
                hi = mid - 1
        if found is None:
            raise SnapshotNotFoundError(f"{self.root!r} has no snapshot at or before {when.isoformat()}")
        return found

    def history(self, limit: int | None = None) -> list[CommitInfo]:
        latest = self._refresh().version
        out: list[CommitInfo] = []
        v = latest
        while v >= 0 and (limit is None or len(out) < limit):
            ci = self._history.get(v)
            if ci is None:
                actions = self.log.read_commit(v)
                if actions is None:
                    break
                ci = _commit_info(v, actions) or CommitInfo(v, self.log.commit_mtime_ms(v) or 0, "UNKNOWN", {})
                self._history[v] = ci
            out.append(ci)
            v -= 1
        return out

    def changes(self, since_version: int, until_version: int | None = None) -> list[tuple[int, DataFile]]:
        """Change-data files (``commit(cdc=...)``) of the versions after ``since_version``
        (up to ``until_version``), oldest first, as ``(version, DataFile)``.
        :class:`SnapshotNotFoundError` when a needed commit file has been cleaned up."""
        latest = self._refresh().version
        last = latest if until_version is None else min(until_version, latest)
        out: list[tuple[int, DataFile]] = []
        for v in range(since_version + 1, last + 1):
            actions = self.log.read_commit(v)
            if actions is None:
                raise SnapshotNotFoundError(f"commit {v} of {self.root!r} has been cleaned up; "
                                            "its change data is no longer reachable")
            for a in actions:
                c = a.get("cdc")
                if c:
                    out.append((v, DataFile(path=decode_path(c["path"]), size=int(c.get("size", 0)),
                                            num_records=0, tags=dict(c.get("tags") or {}))))
        return out

    # -- writing -----------------------------------------------------------------------
    def write_data_file(self, data: pa.Table, *, stats_columns: Iterable[str] | None = None,
                        compression: str = "zstd", row_group_size: int = 64 * 1024,
                        tags: dict[str, str] | None = None, subdir: str | None = None) -> DataFile:
        """See :meth:`Table.write_data_file`; ``subdir="_change_data"`` writes a change-data
        file (pass it to ``commit(cdc=[...])``); its extra ``_change_type`` column is allowed.
        Uses the cached table state (no log read): the schema check is against the last
        version this handle saw."""
        st = self._state or self._refresh()
        conf = st.configuration
        try:
            prefix = int(conf.get("delta.dataSkippingStringPrefixLength", 32))
        except ValueError:
            prefix = 32
        return write_data_file(self.storage, self.root, data, st.schema, stats_columns=stats_columns,
                               compression=compression, row_group_size=row_group_size, tags=tags,
                               subdir=subdir, string_prefix=prefix)

    def commit(self, *, adds: Sequence[DataFile] = (), removes: Sequence[DataFile] = (),
               schema: pa.Schema | None = None, properties: dict[str, str] | None = None,
               app_id: str | None = None, app_version: int | None = None,
               operation: str = "WRITE", info: dict[str, Any] | None = None,
               read_version: int | None = None, cdc: Sequence[DataFile] = ()) -> int:
        intent = intent_from(adds, removes, cdc, schema, properties, app_id, app_version, operation, info,
                             read_version)
        with self._commit_lock:
            new, seen, lost = run_commit(self.log, intent, self._refresh())
            self.lost_races += lost
            for v, actions in seen:
                ci = _commit_info(v, actions)
                if ci is not None:
                    self._history[v] = ci
                    self._commit_ts[v] = ci.timestamp_ms
            self._publish(new)
        if new.version % self._checkpoint_interval(new) == 0:
            self.checkpoint(new)
        return new.version

    def checkpoint(self, state: LogState | None = None) -> dict[str, Any]:
        """Write a checkpoint of the latest (or given) state; failures are logged, not raised."""
        st = state or self._refresh()
        retention = parse_interval_ms(st.configuration.get("delta.deletedFileRetentionDuration"),
                                      DEFAULT_TOMBSTONE_RETENTION_MS)
        try:
            return write_checkpoint(self.log, st, tombstones_after_ms=int(time.time() * 1000) - retention)
        except Exception:  # a checkpoint is an optimisation: never fail the commit for it
            log.exception("writing Delta checkpoint %d of %s failed", st.version, self.root)
            return {}

    # -- maintenance ---------------------------------------------------------------------
    def vacuum(self, *, retention_seconds: float, dry_run: bool = False) -> dict[str, Any]:
        return maintenance.vacuum(self, self._refresh(), retention_seconds=retention_seconds, dry_run=dry_run)

    def expire_snapshots(self, *, older_than_ms: int, min_snapshots: int = 1) -> dict[str, Any]:
        latest = self._refresh()
        result = maintenance.expire_log(self, latest, older_than_ms=older_than_ms, min_snapshots=min_snapshots)
        with self._lock:
            first = result.get("earliest_version", 0)
            for v in [v for v in self._old if v < first]:
                del self._old[v]
            for v in [v for v in self._history if v < first]:
                del self._history[v]
        return result


def _commit_info(version: int, actions: list[Action]) -> CommitInfo | None:
    for a in actions:
        ci = a.get("commitInfo")
        if ci:
            ts = ci.get("inCommitTimestamp", ci.get("timestamp"))
            params = ci.get("operationParameters")
            return CommitInfo(version=version, timestamp_ms=int(ts or 0), operation=str(ci.get("operation", "UNKNOWN")),
                              info=dict(params) if isinstance(params, dict) else {})
    return None


class DeltaFormat(TableFormat):
    name = "delta"

    def create_table(self, storage: StorageBackend, root: str, schema: pa.Schema, *,
                     properties: dict[str, str] | None = None) -> DeltaTable:
        root = root.rstrip("/")
        if self.table_exists(storage, root):
            raise TableExistsError(f"a Delta table already exists at {root!r}")
        props = {str(k): str(v) for k, v in (properties or {}).items()}
        arrow_to_delta(schema)   # validates types early
        now = int(time.time() * 1000)
        cdf = props.get(CDF_KEY, "false").lower() == "true"
        actions: list[Action] = [
            {"commitInfo": {"timestamp": now, "operation": "CREATE TABLE",
                            "operationParameters": {"partitionBy": "[]", "properties": json.dumps(props)},
                            "isolationLevel": "Serializable", "isBlindAppend": True,
                            "engineInfo": ENGINE_INFO, "clientVersion": ENGINE_INFO}},
            {"protocol": {"minReaderVersion": 1, "minWriterVersion": 4 if cdf else 2}},
            {"metaData": {"id": str(uuid.uuid4()), "format": {"provider": "parquet", "options": {}},
                          "schemaString": schema_to_json(schema), "partitionColumns": [],
                          "configuration": props, "createdTime": now}},
        ]
        log_ = DeltaLog(storage, root)
        if not log_.try_write_commit(0, actions):
            raise TableExistsError(f"a Delta table already exists at {root!r}")
        return DeltaTable(storage, root)

    def open_table(self, storage: StorageBackend, root: str) -> DeltaTable:
        root = root.rstrip("/")
        if not self.table_exists(storage, root):
            raise TableNotFoundError(f"no Delta table at {root!r}")
        return DeltaTable(storage, root)

    def table_exists(self, storage: StorageBackend, root: str) -> bool:
        log_ = DeltaLog(storage, root.rstrip("/"))
        if storage.exists(log_.commit_path(0)) or storage.exists(log_.last_checkpoint_path):
            return True
        listing = log_.list()
        return bool(listing.commits or listing.checkpoints)
