"""Optimistic commits: write the new manifests, manifest list and ``v{N+1}.metadata.json``
(put-if-absent); on a lost race re-read the winners, check for conflicts, and retry.

Every commit creates one snapshot (sequence number = previous + 1), even when it adds
and removes nothing (a schema, property or ``app_version`` change), so versions are
contiguous. Conflicts (→ :class:`CommitConflictError`):

* a concurrent commit removed a file this commit removes (or it is gone already);
* a concurrent commit recorded a version for the same ``app_id``;
* the table was replaced (new ``table-uuid``), or a concurrent schema change cannot be
  merged with this commit's (same new column with another type, or it took the field
  ids this handle's data files were written with).

Everything else (concurrent appends, property changes, compatible schema additions)
is rebased and retried, at most ``MAX_ATTEMPTS`` times.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import pyarrow as pa

from mongolake.formats.base import CommitConflictError, DataFile, TableError

from .deletes import DeleteFile, delete_record, referenced_uri
from .manifest import (ADDED, CONTENT_DATA, CONTENT_DELETES, DELETED, EXISTING, ManifestFile, RawEntry, summarize, write_manifest,
                       write_manifest_list)
from .metadata import (APP_PREFIX, ENGINE, METADATA_DIR, app_versions, current_schema, props_bool, props_int,
                       snapshots_sorted)
from .schema import (IdAssigner, SchemaEvolutionError, arrow_to_iceberg, check_evolution, field_ids,
                     iceberg_to_arrow, max_field_id, merge_arrow, same_schema, stats_leaves)
from .state import Live, TableState
from .values import encode_value

if TYPE_CHECKING:
    from .table import IcebergTable

MAX_ATTEMPTS = 100
NO_DATA_CHANGE = {"OPTIMIZE", "COMPACT", "COMPACTION"}
CHANGES_KEY = "mongolake.changes"
OPERATION_KEY = "mongolake.operation"
INFO_KEY = "mongolake.info"
MERGE_MIN_COUNT = "commit.manifest.min-count-to-merge"
MERGE_ENABLED = "commit.manifest-merge.enabled"
DEFAULT_MERGE_MIN_COUNT = 100
PREVIOUS_VERSIONS_MAX = "write.metadata.previous-versions-max"
DEFAULT_PREVIOUS_VERSIONS = 100


@dataclass
class Intent:
    """What the caller wants to commit, independent of the version it lands at."""
    adds: Sequence[DataFile] = ()
    removes: Sequence[DataFile] = ()
    cdc: Sequence[DataFile] = ()
    schema: pa.Schema | None = None
    properties: dict[str, str] = field(default_factory=dict)
    app_id: str | None = None
    app_version: int | None = None
    operation: str = "WRITE"
    info: dict[str, Any] = field(default_factory=dict)
    read_version: int | None = None
    position_deletes: Sequence[DeleteFile] = ()       # delete files already written, one per data file
    schema_changed_concurrently: bool = False


@dataclass
class Built:
    """One attempt's new metadata and the files written for it."""
    metadata: dict
    written: list[str] = field(default_factory=list)                          # storage paths (cleanup)
    manifests: list[tuple[str, list[RawEntry]]] = field(default_factory=list)  # for the cache
    manifest_list: tuple[str, list[ManifestFile]] | None = None
    base: TableState | None = None                                            # snapshot commits: the parent
    removed: frozenset[str] = frozenset()


def new_snapshot_id() -> int:
    return uuid.uuid4().int & ((1 << 63) - 1) or 1


def file_record(f: DataFile, uri: str, schema: dict) -> dict:
    """The ``data_file`` record of a MongoLake data file (metrics for its exact columns)."""
    leaves = stats_leaves(schema)
    value_counts, nulls, nans, lower, upper = [], [], [], [], []
    for name, n in f.null_count.items():
        leaf = leaves.get(name)
        if leaf is None:
            continue
        fid, itype = leaf
        value_counts.append({"key": fid, "value": int(f.num_records)})
        nulls.append({"key": fid, "value": int(n)})
        lo, hi = encode_value(itype, f.min_values.get(name)), encode_value(itype, f.max_values.get(name))
        if lo is not None:
            lower.append({"key": fid, "value": lo})
        if hi is not None:
            upper.append({"key": fid, "value": hi})
        if itype in ("float", "double") and (lo is not None or hi is not None or n == f.num_records):
            nans.append({"key": fid, "value": 0})          # bounds are only computed when no NaN
    return {"content": 0, "file_path": uri, "file_format": "PARQUET", "partition": {},
            "record_count": int(f.num_records), "file_size_in_bytes": int(f.size), "column_sizes": None,
            "value_counts": value_counts, "null_value_counts": nulls, "nan_value_counts": nans,
            "lower_bounds": lower, "upper_bounds": upper, "key_metadata": None, "split_offsets": None,
            "equality_ids": None, "sort_order_id": None}


def _iceberg_operation(intent: Intent) -> str:
    if intent.operation.upper() in NO_DATA_CHANGE:
        return "replace"
    if intent.removes or intent.position_deletes:
        return "overwrite" if intent.adds else "delete"
    return "append"


def _totals(base: TableState) -> tuple[int, int, int]:
    """(files, records, bytes) of the base snapshot: from its summary when it has them."""
    snap = base.head.snapshot
    if snap is None:
        return 0, 0, 0
    s = snap.get("summary") or {}
    try:
        return int(s["total-data-files"]), int(s["total-records"]), int(s["total-files-size"])
    except (KeyError, TypeError, ValueError):
        files = [lv.file for lv in base.head.live.values()]
        return len(files), sum(f.num_records for f in files), sum(f.size for f in files)


def _delete_totals(base: TableState) -> tuple[int, int]:
    """(delete files, position deletes) of the base snapshot."""
    snap = base.head.snapshot
    if snap is None:
        return 0, 0
    s = snap.get("summary") or {}
    try:
        return int(s["total-delete-files"]), int(s["total-position-deletes"])
    except (KeyError, TypeError, ValueError):
        ds = [lv.file for lv in base.head.deletes.values()]
        return len(ds), sum(f.num_records for f in ds)


def _summary(intent: Intent, base: TableState, dropped: Sequence[Live] = ()) -> dict[str, str]:
    s: dict[str, str] = {"operation": _iceberg_operation(intent)}
    stats = {"added-data-files": len(intent.adds), "deleted-data-files": len(intent.removes),
             "added-records": sum(f.num_records for f in intent.adds),
             "deleted-records": sum(f.num_records for f in intent.removes),
             "added-files-size": sum(f.size for f in intent.adds),
             "removed-files-size": sum(f.size for f in intent.removes)}
    added_pd = sum(len(d.positions) for d in intent.position_deletes)
    removed_pd = sum(lv.file.num_records for lv in dropped)
    dstats = {"added-delete-files": len(intent.position_deletes),
              "added-position-delete-files": len(intent.position_deletes), "added-position-deletes": added_pd,
              "removed-delete-files": len(dropped), "removed-position-delete-files": len(dropped),
              "removed-position-deletes": removed_pd}
    stats["added-files-size"] += sum(d.file.size for d in intent.position_deletes)
    stats["removed-files-size"] += sum(lv.file.size for lv in dropped)
    s.update({k: str(v) for k, v in stats.items() if v})
    s.update({k: str(v) for k, v in dstats.items() if v})
    total_dfiles, total_pd = _delete_totals(base)
    total_dfiles += len(intent.position_deletes) - len(dropped)
    total_pd += added_pd - removed_pd
    files, records, size = _totals(base)
    files += stats["added-data-files"] - stats["deleted-data-files"]
    records += stats["added-records"] - stats["deleted-records"]
    size += stats["added-files-size"] - stats["removed-files-size"]
    s.update({"total-data-files": str(files), "total-records": str(records),
              "total-files-size": str(size), "total-delete-files": str(total_dfiles),
              "total-position-deletes": str(total_pd), "total-equality-deletes": "0",
              "mongolake.engine": ENGINE, OPERATION_KEY: intent.operation})
    if intent.info:
        params = {str(k): v if isinstance(v, str) else json.dumps(v, default=str) for k, v in intent.info.items()}
        s[INFO_KEY] = json.dumps(params, separators=(",", ":"))
    if intent.read_version is not None:
        s["mongolake.read-version"] = str(intent.read_version)
    apps = app_versions(base.head.snapshot)
    if intent.app_id is not None and intent.app_version is not None:
        apps[intent.app_id] = int(intent.app_version)
    s.update({APP_PREFIX + k: str(v) for k, v in apps.items()})
    if intent.cdc:
        s[CHANGES_KEY] = json.dumps([{"path": f.path, "size": f.size, "records": f.num_records,
                                      "mtime": f.modification_time, **({"tags": f.tags} if f.tags else {})}
                                     for f in intent.cdc], separators=(",", ":"))
    return s


def _new_schema(table: "IcebergTable", intent: Intent, md: dict) -> tuple[dict | None, int]:
    """(the new schema JSON or None when unchanged, new last-column-id)."""
    cur = current_schema(md)
    known = field_ids(cur)
    last = int(md.get("last-column-id", max_field_id(cur)))
    pending = table.pending_ids()
    taken = {fid: p for p, fid in known.items()}
    used: dict[int, tuple[str, ...]] = {}          # field ids the added files were written with
    for f in intent.adds:
        used.update(table.file_ids(f.path))
    for fid, path in used.items():
        if path in known and known[path] != fid:
            raise CommitConflictError(f"column {'.'.join(path)!r} was added concurrently with field id "
                                      f"{known[path]}, but data files were written with id {fid}")
        if fid in taken and taken[fid] != path:
            raise CommitConflictError(f"a concurrent schema change gave field id {fid} to column "
                                      f"{'.'.join(taken[fid])!r}, which data files of this commit use for "
                                      f"column {'.'.join(path)!r}")
    last = max([last, *used])
    if intent.schema is None:
        return None, last
    target = intent.schema
    if intent.schema_changed_concurrently:
        try:
            target = merge_arrow(intent.schema, iceberg_to_arrow(cur))
        except SchemaEvolutionError as e:
            raise CommitConflictError(f"a concurrent commit changed the schema: {e}") from e
    ids = IdAssigner({**{p: i for p, i in pending.items() if i not in taken}, **known},
                     max([last, *pending.values()]) + 1)
    new = arrow_to_iceberg(target, ids)
    check_evolution(cur, new)
    last = max(last, max_field_id(new))
    if same_schema(new, cur):
        return None, last
    for s in md.get("schemas") or []:
        if same_schema(s, new):
            return dict(new, **{"schema-id": s.get("schema-id", 0)}), last
    new["schema-id"] = max((s.get("schema-id", 0) for s in md.get("schemas") or []), default=-1) + 1
    return new, last


def build_commit(table: "IcebergTable", intent: Intent, base: TableState, snapshot_id: int, attempt: int,
                 ts: int) -> Built:
    """The metadata of the next version on top of ``base`` (manifests written)."""
    md, head = base.metadata, base.head
    for f in intent.removes:
        if f.path not in head.live:
            raise CommitConflictError(f"file {f.path!r} is no longer part of the table (version {head.seq}): "
                                      f"it was removed by a concurrent commit or never committed")
    removed_paths = {f.path for f in intent.removes}
    for d in intent.position_deletes:
        lv = head.live.get(d.data_path)
        if lv is None or d.data_path in removed_paths or lv.entry.data_file["file_path"] != d.data_uri:
            raise CommitConflictError(f"file {d.data_path!r} is no longer part of the table (version {head.seq}): "
                                      f"its rows cannot be deleted by position")
    removed_uris = {head.live[p].entry.data_file["file_path"] for p in removed_paths}
    dropped = {p: lv for p, lv in head.deletes.items() if referenced_uri(lv.entry.data_file) in removed_uris}
    new_schema, last_column_id = _new_schema(table, intent, md)
    schema = new_schema if new_schema is not None else current_schema(md)
    seq = int(md.get("last-sequence-number", 0)) + 1
    built = Built(metadata={}, base=base, removed=frozenset(removed_paths | set(dropped)))
    tag = uuid.uuid4().hex

    def write(entries: list[RawEntry], k: int, content: int = CONTENT_DATA) -> ManifestFile:
        rel = f"{METADATA_DIR}/{tag}-m{k}.avro"
        data = write_manifest(entries, schema, new_snapshot_id=snapshot_id, content=content)
        table.storage.write(table.storage_path(rel), data)
        built.written.append(table.storage_path(rel))
        built.manifests.append((table.uri(rel), entries))
        return summarize(table.uri(rel), len(data), entries, sequence_number=seq, snapshot_id=snapshot_id,
                         content=content)

    new_list: list[ManifestFile] = []
    if intent.adds:
        entries = [RawEntry(ADDED, snapshot_id, seq, seq, file_record(f, table.uri(f.path), schema),
                            int(f.modification_time), dict(f.tags)) for f in intent.adds]
        new_list.append(write(entries, len(new_list)))
    if intent.position_deletes:
        entries = [RawEntry(ADDED, snapshot_id, seq, seq, delete_record(d, table.uri(d.file.path)),
                            int(d.file.modification_time)) for d in intent.position_deletes]
        new_list.append(write(entries, len(new_list), CONTENT_DELETES))
    removed = removed_paths | set(dropped)
    affected = {head.live[p].manifest for p in removed_paths} | {lv.manifest for lv in dropped.values()}
    carried: list[ManifestFile] = []
    for mf in head.manifests:
        if mf.path in affected:
            raw, files = table.cache.entries(mf, head.schema_json, md["location"], table.location)
            out = []
            for e, f in zip(raw, files):
                if e.status == DELETED:
                    continue
                if f.path in removed:
                    out.append(RawEntry(DELETED, snapshot_id, e.sequence_number, e.file_sequence_number,
                                        e.data_file, e.mtime, e.tags))
                else:
                    out.append(RawEntry(EXISTING, e.snapshot_id, e.sequence_number, e.file_sequence_number,
                                        e.data_file, e.mtime, e.tags))
            new_list.append(write(out, len(new_list), mf.content))
        elif mf.live_files > 0:
            carried.append(mf)              # manifests holding only deletions of older snapshots are dropped
    if props_bool(md, MERGE_ENABLED, True):
        min_count = props_int(md, MERGE_MIN_COUNT, DEFAULT_MERGE_MIN_COUNT)
        out_carried: list[ManifestFile] = []
        for content in (CONTENT_DATA, CONTENT_DELETES):       # data and delete manifests never mix
            group = [mf for mf in carried if mf.content == content]
            if len(group) >= min_count > 1:
                merged: list[RawEntry] = []
                for mf in group:
                    raw, _ = table.cache.entries(mf, head.schema_json, md["location"], table.location)
                    merged.extend(RawEntry(EXISTING, e.snapshot_id, e.sequence_number, e.file_sequence_number,
                                           e.data_file, e.mtime, e.tags) for e in raw if e.status != DELETED)
                merged.sort(key=lambda e: e.sequence_number)
                out_carried.append(write(merged, len(new_list) + len(out_carried), content))
            else:
                out_carried.extend(group)
        carried = out_carried
    manifests = new_list + carried

    rel_list = f"{METADATA_DIR}/snap-{snapshot_id}-{attempt}-{tag}.avro"
    parent = head.snapshot_id
    table.storage.write(table.storage_path(rel_list),
                        write_manifest_list(manifests, snapshot_id=snapshot_id, parent_id=parent, sequence_number=seq))
    built.written.append(table.storage_path(rel_list))
    built.manifest_list = (table.uri(rel_list), manifests)

    snap: dict[str, Any] = {"snapshot-id": snapshot_id, "sequence-number": seq, "timestamp-ms": ts,
                            "manifest-list": table.uri(rel_list), "summary": _summary(intent, base, list(dropped.values())),
                            "schema-id": schema.get("schema-id", 0)}
    if parent is not None:
        snap["parent-snapshot-id"] = parent
    new_md = next_metadata(table, base, ts)
    if new_schema is not None:
        if not any(s.get("schema-id") == new_schema["schema-id"] for s in new_md["schemas"]):
            new_md["schemas"] = new_md["schemas"] + [new_schema]
        new_md["current-schema-id"] = new_schema["schema-id"]
    new_md["last-column-id"] = last_column_id
    if intent.properties:
        new_md["properties"] = {**md.get("properties", {}), **{str(k): str(v) for k, v in intent.properties.items()}}
    new_md["snapshots"] = list(md.get("snapshots") or []) + [snap]
    new_md["snapshot-log"] = list(md.get("snapshot-log") or []) + [{"timestamp-ms": ts, "snapshot-id": snapshot_id}]
    new_md["current-snapshot-id"] = snapshot_id
    new_md["refs"] = {**(md.get("refs") or {}), "main": {"snapshot-id": snapshot_id, "type": "branch"}}
    new_md["last-sequence-number"] = seq
    built.metadata = new_md
    return built


def next_metadata(table: "IcebergTable", base: TableState, ts: int) -> dict:
    """A copy of the base metadata with ``last-updated-ms`` and the metadata log advanced."""
    md = dict(base.metadata)
    keep = max(1, props_int(md, PREVIOUS_VERSIONS_MAX, DEFAULT_PREVIOUS_VERSIONS))
    log = list(md.get("metadata-log") or []) + [{"timestamp-ms": int(md.get("last-updated-ms", ts)),
                                                 "metadata-file": table.metadata_uri(base.version)}]
    md["metadata-log"] = log[-keep:]
    md["last-updated-ms"] = ts
    return md


def next_timestamp(md: dict, clock: Callable[[], float] = time.time) -> int:
    """Now (ms), kept strictly after every snapshot and metadata update so far."""
    snaps = md.get("snapshots") or []
    last = max([int(md.get("last-updated-ms", 0))] + [int(s["timestamp-ms"]) for s in snaps])
    return max(int(clock() * 1000), last + 1)


def check_conflicts(intent: Intent, old: TableState, new: TableState) -> None:
    """Raise :class:`CommitConflictError` if the commits between ``old`` and ``new``
    invalidate ``intent`` (removed files are checked when the commit is rebuilt)."""
    if old.metadata.get("table-uuid") != new.metadata.get("table-uuid"):
        raise CommitConflictError("the table was replaced by a concurrent commit")
    if intent.app_id is not None:
        a, b = app_versions(old.head.snapshot).get(intent.app_id), app_versions(new.head.snapshot).get(intent.app_id)
        if a != b:
            raise CommitConflictError(f"a concurrent commit recorded a version for app {intent.app_id!r}")
    if not same_schema(current_schema(old.metadata), current_schema(new.metadata)):
        intent.schema_changed_concurrently = True


def check_read_version(intent: Intent, base: TableState) -> None:
    """Conflicts between ``intent.read_version`` and the newest state ``base``."""
    rv = intent.read_version
    if rv is None:
        return
    if rv > base.head.seq:
        raise TableError(f"read_version {rv} is newer than the table ({base.head.seq})")
    if rv == base.head.seq:
        return
    snaps = {s.get("sequence-number"): s for s in snapshots_sorted(base.metadata)}
    if any(v not in snaps for v in range(rv + 1, base.head.seq + 1)) or (rv > 0 and rv not in snaps):
        raise CommitConflictError(f"commits after read_version {rv} are no longer available to check for "
                                  f"conflicts")
    for path in [f.path for f in intent.removes] + [d.data_path for d in intent.position_deletes]:
        if path not in base.head.live:
            raise CommitConflictError(f"file {path!r} was removed by a concurrent commit after version {rv}")
    if intent.app_id is not None:
        before = app_versions(snaps.get(rv)).get(intent.app_id)
        if before != app_versions(base.head.snapshot).get(intent.app_id):
            raise CommitConflictError(f"a concurrent commit recorded a version for app {intent.app_id!r}")
    first = snaps.get(rv)
    schemas = base.metadata.get("schemas") or [{}]
    read_schema_id = first.get("schema-id") if first is not None else schemas[0].get("schema-id", 0)
    if read_schema_id != base.metadata.get("current-schema-id"):
        intent.schema_changed_concurrently = True


def run_commit(table: "IcebergTable", intent: Intent) -> tuple[TableState, int]:
    """Commit ``intent``; return the new state and how many races were lost."""
    base = table.refresh_state()
    check_read_version(intent, base)
    if intent.schema is not None and not intent.schema_changed_concurrently:
        # a type change / drop against the current schema is the caller's error, not a race
        cur = current_schema(base.metadata)
        check_evolution(cur, arrow_to_iceberg(intent.schema, IdAssigner(field_ids(cur), 10 ** 9)))
    snapshot_id = new_snapshot_id()
    return run_metadata_commit(table, base, lambda b, attempt, ts: build_commit(table, intent, b, snapshot_id,
                                                                                attempt, ts),
                               lambda old, new: check_conflicts(intent, old, new))


def run_metadata_commit(table: "IcebergTable", base: TableState,
                        build: Callable[[TableState, int, int], Built | None],
                        on_race: Callable[[TableState, TableState], None]) -> tuple[TableState, int]:
    """The optimistic loop shared by commits and snapshot expiry. ``build`` returns
    None when there is nothing to commit (the base state is returned)."""
    for attempt in range(MAX_ATTEMPTS):
        built = build(base, attempt, next_timestamp(base.metadata))
        if built is None:
            return base, attempt
        version = base.version + 1
        if table.store.try_write(version, built.metadata):
            return table.adopt(version, built), attempt
        for path in built.written:            # this attempt's manifests are garbage now
            try:
                table.storage.delete(path)
            except Exception:  # noqa: BLE001 - vacuum removes leftovers later
                pass
        new = table.refresh_state()
        if new.version <= base.version:
            raise TableError(f"metadata version {version} exists but cannot be read")
        on_race(base, new)
        base = new
        time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
    raise CommitConflictError(f"gave up committing after {MAX_ATTEMPTS} lost races")
