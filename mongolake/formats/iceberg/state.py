"""Table state: one metadata version plus the live files of one of its snapshots,
built from manifest lists and manifests (through a cache of immutable Avro files),
and its conversion to a :class:`~mongolake.formats.base.Snapshot`.

Manifests never change once written, so a bounded cache keyed by path holds their
parsed entries (and the decoded :class:`DataFile` objects): refreshing after a
commit reads only the new manifest list and the new manifests.
"""
from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mongolake.formats.base import DataFile, Snapshot, TableError
from mongolake.storage import StorageBackend

from .deletes import CONTENT_POSITION_DELETES, read_positions, referenced_uri
from .manifest import CONTENT_DATA, DELETED, ManifestFile, RawEntry, read_manifest, read_manifest_list
from .metadata import (app_versions, current_schema, join, relativize, schema_by_id, sequence_of)
from .schema import iceberg_to_arrow, leaves_by_id
from .values import decode_value

_FLOATS = ("float", "double")


def _pairs(m: Any) -> dict[int, Any]:
    """An Avro int-keyed map (list of key/value records, or a dict) as a dict."""
    if not m:
        return {}
    if isinstance(m, dict):
        return {int(k): v for k, v in m.items()}
    return {int(kv["key"]): kv["value"] for kv in m}


def decode_file(entry: RawEntry, schema: dict, location: str, actual_location: str) -> DataFile:
    """The :class:`DataFile` of a manifest entry. Statistics exist only for primitive
    leaves outside lists/maps that have a null count (the exactness convention);
    float bounds are dropped unless the NaN count is known to be zero."""
    df = entry.data_file
    leaves = leaves_by_id(schema)
    nulls_raw = _pairs(df.get("null_value_counts"))
    nans = _pairs(df.get("nan_value_counts"))
    lower = _pairs(df.get("lower_bounds"))
    upper = _pairs(df.get("upper_bounds"))
    nulls: dict[str, int] = {}
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    for fid, n in nulls_raw.items():
        leaf = leaves.get(fid)
        if leaf is None or n is None:
            continue
        name, itype = leaf
        nulls[name] = int(n)
        if itype in _FLOATS and nans.get(fid) != 0:
            continue
        for bounds, out in ((lower, mins), (upper, maxs)):
            b = bounds.get(fid)
            if b is not None:
                v = decode_value(itype, b)
                if v is not None:
                    out[name] = v
    return DataFile(path=relativize(location, df["file_path"], actual_location), size=int(df["file_size_in_bytes"]),
                    num_records=int(df["record_count"]), min_values=mins, max_values=maxs, null_count=nulls,
                    modification_time=entry.mtime, tags=dict(entry.tags))


@dataclass
class Live:
    file: DataFile
    entry: RawEntry
    manifest: str                      # path (URI) of the manifest listing it


class ManifestCache:
    """Parsed manifest lists and manifests of one table, by path (bounded LRU)."""

    def __init__(self, storage: StorageBackend, root: str, max_manifests: int = 4096, max_lists: int = 64):
        self.storage = storage
        self.root = root
        self._manifests: OrderedDict[str, tuple[list[RawEntry], list[DataFile]]] = OrderedDict()
        self._lists: OrderedDict[str, list[ManifestFile]] = OrderedDict()
        self._positions: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._max_manifests = max_manifests
        self._max_lists = max_lists
        self._lock = threading.Lock()

    def storage_path(self, uri: str, location: str, actual_location: str) -> str:
        return join(self.root, relativize(location, uri, actual_location))

    @staticmethod
    def _put(d: OrderedDict, key: str, value: Any, limit: int) -> None:
        d[key] = value
        d.move_to_end(key)
        while len(d) > limit:
            d.popitem(last=False)

    def manifest_list(self, uri: str, location: str, actual_location: str) -> list[ManifestFile]:
        with self._lock:
            hit = self._lists.get(uri)
            if hit is not None:
                self._lists.move_to_end(uri)
                return hit
        lst = read_manifest_list(self.storage.read(self.storage_path(uri, location, actual_location)))
        with self._lock:
            self._put(self._lists, uri, lst, self._max_lists)
        return lst

    def put_list(self, uri: str, manifests: list[ManifestFile]) -> None:
        with self._lock:
            self._put(self._lists, uri, manifests, self._max_lists)

    def positions(self, uri: str, location: str, actual_location: str) -> dict[str, np.ndarray]:
        """The rows of a position delete file: ``{data file location: positions}``."""
        with self._lock:
            hit = self._positions.get(uri)
            if hit is not None:
                self._positions.move_to_end(uri)
                return hit
        got = read_positions(self.storage.read(self.storage_path(uri, location, actual_location)))
        self.put_positions(uri, got)
        return got

    def put_positions(self, uri: str, positions: dict[str, np.ndarray]) -> None:
        with self._lock:
            self._put(self._positions, uri, positions, self._max_manifests)

    def entries(self, mf: ManifestFile, schema: dict, location: str, actual_location: str
                ) -> tuple[list[RawEntry], list[DataFile]]:
        with self._lock:
            hit = self._manifests.get(mf.path)
            if hit is not None:
                self._manifests.move_to_end(mf.path)
                return hit
        raw = read_manifest(self.storage.read(self.storage_path(mf.path, location, actual_location)), mf)
        return self.put_entries(mf.path, raw, schema, location, actual_location)

    def put_entries(self, path: str, raw: list[RawEntry], schema: dict, location: str, actual_location: str
                    ) -> tuple[list[RawEntry], list[DataFile]]:
        files = [decode_file(e, schema, location, actual_location) for e in raw]
        with self._lock:
            self._put(self._manifests, path, (raw, files), self._max_manifests)
        return raw, files


@dataclass
class SnapState:
    """The live files of one snapshot (``snapshot`` None: the empty table, version 0)."""
    metadata: dict
    snapshot: dict | None
    manifests: list[ManifestFile]
    live: dict[str, Live]              # relative path -> Live, ordered by data sequence number
    deletes: dict[str, Live] = field(default_factory=dict)      # position delete files by relative path
    file_deletes: dict[str, tuple[int, ...]] = field(default_factory=dict)   # data path -> deleted rows
    _snap: Snapshot | None = field(default=None, repr=False)

    @property
    def seq(self) -> int:
        return sequence_of(self.snapshot)

    @property
    def snapshot_id(self) -> int | None:
        return None if self.snapshot is None else int(self.snapshot["snapshot-id"])

    @property
    def timestamp_ms(self) -> int:
        if self.snapshot is None:
            return created_ms(self.metadata)
        return int(self.snapshot["timestamp-ms"])

    @property
    def schema_json(self) -> dict:
        if self.snapshot is None:
            return current_schema(self.metadata)
        return schema_by_id(self.metadata, self.snapshot.get("schema-id", self.metadata.get("current-schema-id")))

    def to_snapshot(self) -> Snapshot:
        if self._snap is None:
            self._snap = Snapshot(
                version=self.seq, timestamp_ms=self.timestamp_ms, schema=iceberg_to_arrow(self.schema_json),
                files=tuple(dataclasses.replace(lv.file, deletes=self.file_deletes[p]) if p in self.file_deletes
                            else lv.file for p, lv in self.live.items()),
                properties=dict(self.metadata.get("properties") or {}),
                app_versions=app_versions(self.snapshot), snapshot_id=self.snapshot_id)
        return self._snap


@dataclass
class TableState:
    version: int                       # N of metadata/vN.metadata.json
    metadata: dict
    head: SnapState                    # the current snapshot


def created_ms(md: dict) -> int:
    """When the table was created, as far as the metadata still tells."""
    log = md.get("metadata-log") or []
    if log and str(log[0].get("metadata-file", "")).endswith("/v1.metadata.json"):
        return int(log[0]["timestamp-ms"])
    if not md.get("snapshots") and not log:
        return int(md.get("last-updated-ms", 0))
    return 0


def build_snap_state(md: dict, snap: dict | None, cache: ManifestCache, location: str, actual_location: str
                     ) -> SnapState:
    """The live files of ``snap`` (read through ``cache``)."""
    if snap is None:
        return SnapState(md, None, [], {})
    if "manifest-list" not in snap:
        raise TableError("Iceberg v1 snapshots with inline manifests are not supported")
    schema = schema_by_id(md, snap.get("schema-id", md.get("current-schema-id")))
    manifests = cache.manifest_list(snap["manifest-list"], location, actual_location)
    found: list[tuple[int, int, str, Live]] = []
    deletes: dict[str, Live] = {}
    order = 0
    for mf in manifests:
        raw, files = cache.entries(mf, schema, location, actual_location)
        for e, f in zip(raw, files):
            if e.status == DELETED:
                continue
            content = int(e.data_file.get("content") or 0)
            if content == CONTENT_POSITION_DELETES:
                deletes[f.path] = Live(f, e, mf.path)
                continue
            if content != CONTENT_DATA or mf.content != CONTENT_DATA:
                raise TableError("Iceberg equality delete files are not supported")
            found.append((e.sequence_number, order, f.path, Live(f, e, mf.path)))
            order += 1
    found.sort(key=lambda t: (t[0], t[1]))
    live: dict[str, Live] = {}
    for _, _, path, lv in found:
        live.setdefault(path, lv)
    return SnapState(md, snap, list(manifests), live, deletes,
                     resolve_deletes(live, deletes, cache, location, actual_location))


def resolve_deletes(live: dict[str, Live], deletes: dict[str, Live], cache: ManifestCache, location: str,
                    actual_location: str) -> dict[str, tuple[int, ...]]:
    """Deleted row positions per live data file: the union of the position delete files
    that name it and whose data sequence number is at least the data file's."""
    if not deletes:
        return {}
    by_uri = {lv.entry.data_file["file_path"]: (path, lv.entry.sequence_number) for path, lv in live.items()}
    acc: dict[str, list[np.ndarray]] = {}
    for d in deletes.values():
        target = referenced_uri(d.entry.data_file)
        if target is not None and target not in by_uri:
            continue                                 # its data file is gone: nothing to apply
        for uri, arr in cache.positions(d.entry.data_file["file_path"], location, actual_location).items():
            hit = by_uri.get(uri)
            if hit is None or hit[1] > d.entry.sequence_number:
                continue
            acc.setdefault(hit[0], []).append(arr)
    out: dict[str, tuple[int, ...]] = {}
    for path, arrs in acc.items():
        pos = np.unique(np.concatenate(arrs)) if len(arrs) > 1 else arrs[0]
        n = live[path].file.num_records
        out[path] = tuple(int(x) for x in pos if 0 <= x < n)
    return out


def derive_snap_state(md: dict, snap: dict, parent: SnapState, removed: frozenset[str] | set[str],
                      manifests: list[ManifestFile], written: list[tuple[str, list[RawEntry], list[DataFile]]],
                      cache: ManifestCache, location: str, actual_location: str) -> SnapState:
    """The state of a snapshot this handle just committed on top of ``parent``, without
    re-reading anything: the parent's files minus ``removed``, re-pointed at the
    manifests the commit ``written`` (rewritten/merged ones keep their position), plus
    the added files at the end (they have the newest sequence number). Same result as
    :func:`build_snap_state`."""
    live = dict(parent.live)
    deletes = dict(parent.deletes)
    for p in removed:
        live.pop(p, None)
        deletes.pop(p, None)
    for uri, raw, files in written:
        for e, f in zip(raw, files):
            if e.status != DELETED:
                if int(e.data_file.get("content") or 0) == CONTENT_POSITION_DELETES:
                    deletes[f.path] = Live(f, e, uri)
                else:
                    live[f.path] = Live(f, e, uri)
    if deletes or parent.file_deletes:
        fd = resolve_deletes(live, deletes, cache, location, actual_location)
    else:
        fd = {}
    return SnapState(md, snap, list(manifests), live, deletes, fd)
