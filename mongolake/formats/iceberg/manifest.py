"""Manifests and manifest lists: the spec's (format v2) Avro schemas, with field ids,
written and read with fastavro.

A *manifest* lists data files (``manifest_entry`` records: status, snapshot id,
sequence numbers, ``data_file`` with column metrics). A *manifest list* lists the
manifests of one snapshot (``manifest_file`` records with file/row counts).

MongoLake keeps two things the spec has no field for in a manifest's Avro header
(key ``mongolake.files``, JSON ``{file_path: {"m": mtime_ms, "t": {tags}}}``):
each data file's modification time and its free-form tags. Other readers ignore it.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

import fastavro

# manifest entry status
EXISTING, ADDED, DELETED = 0, 1, 2
CONTENT_DATA, CONTENT_DELETES = 0, 1
FILES_META_KEY = "mongolake.files"
CODEC = "deflate"


def _opt(name: str, avro_type: Any, fid: int) -> dict:
    return {"name": name, "type": ["null", avro_type], "default": None, "field-id": fid}


def _int_map(name: str, fid: int, kid: int, vid: int, value_type: str) -> dict:
    return _opt(name, {"type": "array", "logicalType": "map", "items": {
        "type": "record", "name": f"k{kid}_v{vid}",
        "fields": [{"name": "key", "type": "int", "field-id": kid},
                   {"name": "value", "type": value_type, "field-id": vid}]}}, fid)


DATA_FILE_SCHEMA = {
    "type": "record", "name": "r2", "fields": [
        {"name": "content", "type": "int", "field-id": 134},
        {"name": "file_path", "type": "string", "field-id": 100},
        {"name": "file_format", "type": "string", "field-id": 101},
        {"name": "partition", "type": {"type": "record", "name": "r102", "fields": []}, "field-id": 102},
        {"name": "record_count", "type": "long", "field-id": 103},
        {"name": "file_size_in_bytes", "type": "long", "field-id": 104},
        _int_map("column_sizes", 108, 117, 118, "long"),
        _int_map("value_counts", 109, 119, 120, "long"),
        _int_map("null_value_counts", 110, 121, 122, "long"),
        _int_map("nan_value_counts", 137, 138, 139, "long"),
        _int_map("lower_bounds", 125, 126, 127, "bytes"),
        _int_map("upper_bounds", 128, 129, 130, "bytes"),
        _opt("key_metadata", "bytes", 131),
        _opt("split_offsets", {"type": "array", "items": "long", "element-id": 133}, 132),
        _opt("equality_ids", {"type": "array", "items": "int", "element-id": 136}, 135),
        _opt("sort_order_id", "int", 140),
    ]}

MANIFEST_ENTRY_SCHEMA = fastavro.parse_schema({
    "type": "record", "name": "manifest_entry", "fields": [
        {"name": "status", "type": "int", "field-id": 0},
        _opt("snapshot_id", "long", 1),
        _opt("sequence_number", "long", 3),
        _opt("file_sequence_number", "long", 4),
        {"name": "data_file", "type": DATA_FILE_SCHEMA, "field-id": 2},
    ]})

MANIFEST_FILE_SCHEMA = fastavro.parse_schema({
    "type": "record", "name": "manifest_file", "fields": [
        {"name": "manifest_path", "type": "string", "field-id": 500},
        {"name": "manifest_length", "type": "long", "field-id": 501},
        {"name": "partition_spec_id", "type": "int", "field-id": 502},
        {"name": "content", "type": "int", "field-id": 517},
        {"name": "sequence_number", "type": "long", "field-id": 515},
        {"name": "min_sequence_number", "type": "long", "field-id": 516},
        {"name": "added_snapshot_id", "type": "long", "field-id": 503},
        {"name": "added_files_count", "type": "int", "field-id": 504},
        {"name": "existing_files_count", "type": "int", "field-id": 505},
        {"name": "deleted_files_count", "type": "int", "field-id": 506},
        {"name": "added_rows_count", "type": "long", "field-id": 512},
        {"name": "existing_rows_count", "type": "long", "field-id": 513},
        {"name": "deleted_rows_count", "type": "long", "field-id": 514},
        _opt("partitions", {"type": "array", "element-id": 508, "items": {
            "type": "record", "name": "r508", "fields": [
                {"name": "contains_null", "type": "boolean", "field-id": 509},
                _opt("contains_nan", "boolean", 518),
                _opt("lower_bound", "bytes", 510),
                _opt("upper_bound", "bytes", 511)]}}, 507),
        _opt("key_metadata", "bytes", 519),
    ]})


@dataclass(frozen=True)
class ManifestFile:
    """One manifest list entry."""
    path: str                       # absolute URI, as written
    length: int
    content: int
    sequence_number: int
    min_sequence_number: int
    added_snapshot_id: int
    added_files: int
    existing_files: int
    deleted_files: int
    added_rows: int
    existing_rows: int
    deleted_rows: int

    @property
    def live_files(self) -> int:
        return self.added_files + self.existing_files

    def record(self) -> dict:
        return {"manifest_path": self.path, "manifest_length": self.length, "partition_spec_id": 0,
                "content": self.content, "sequence_number": self.sequence_number,
                "min_sequence_number": self.min_sequence_number, "added_snapshot_id": self.added_snapshot_id,
                "added_files_count": self.added_files, "existing_files_count": self.existing_files,
                "deleted_files_count": self.deleted_files, "added_rows_count": self.added_rows,
                "existing_rows_count": self.existing_rows, "deleted_rows_count": self.deleted_rows,
                "partitions": [], "key_metadata": None}


@dataclass(frozen=True)
class RawEntry:
    """One manifest entry with sequence numbers and snapshot id inherited (v2 rules)."""
    status: int
    snapshot_id: int
    sequence_number: int
    file_sequence_number: int
    data_file: dict                 # the ``data_file`` record (absolute file_path)
    mtime: int = 0
    tags: dict[str, str] = field(default_factory=dict)


def _avro(schema: Any, records: Iterable[dict], metadata: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    fastavro.writer(buf, schema, records, codec=CODEC, metadata=metadata)
    return buf.getvalue()


def write_manifest(entries: Iterable[RawEntry], schema_json: dict, *, new_snapshot_id: int,
                   content: int = CONTENT_DATA) -> bytes:
    """A manifest file. Entries ADDED by ``new_snapshot_id`` get null sequence numbers
    (inherited from the manifest list entry); every other entry keeps explicit ones."""
    records = []
    files_meta: dict[str, dict] = {}
    for e in entries:
        inherit = e.status == ADDED and e.snapshot_id == new_snapshot_id
        records.append({"status": e.status, "snapshot_id": e.snapshot_id,
                        "sequence_number": None if inherit else e.sequence_number,
                        "file_sequence_number": None if inherit else e.file_sequence_number,
                        "data_file": e.data_file})
        meta: dict[str, Any] = {}
        if e.mtime:
            meta["m"] = e.mtime
        if e.tags:
            meta["t"] = e.tags
        if meta:
            files_meta[e.data_file["file_path"]] = meta
    header = {"schema": json.dumps(schema_json, separators=(",", ":")),
              "schema-id": str(schema_json.get("schema-id", 0)),
              "partition-spec": "[]", "partition-spec-id": "0", "format-version": "2",
              "content": "data" if content == CONTENT_DATA else "deletes"}
    if files_meta:
        header[FILES_META_KEY] = json.dumps(files_meta, separators=(",", ":"))
    return _avro(MANIFEST_ENTRY_SCHEMA, records, header)


def read_manifest(data: bytes, mf: ManifestFile) -> list[RawEntry]:
    """The entries of a manifest, sequence numbers inherited from ``mf``."""
    reader = fastavro.reader(io.BytesIO(data))
    meta_text = reader.metadata.get(FILES_META_KEY)
    files_meta = json.loads(meta_text) if meta_text else {}
    out = []
    for r in reader:
        status = int(r["status"])
        sid = r.get("snapshot_id")
        seq = r.get("sequence_number")
        fseq = r.get("file_sequence_number")
        if sid is None:
            sid = mf.added_snapshot_id
        if seq is None:
            seq = mf.sequence_number if status == ADDED or mf.sequence_number == 0 else 0
        if fseq is None:
            fseq = mf.sequence_number if status == ADDED else seq
        df = r["data_file"]
        meta = files_meta.get(df["file_path"], {})
        out.append(RawEntry(status, int(sid), int(seq), int(fseq), df, int(meta.get("m", 0)),
                            dict(meta.get("t", {}))))
    return out


def summarize(path: str, length: int, entries: list[RawEntry], *, sequence_number: int,
              snapshot_id: int, content: int = CONTENT_DATA) -> ManifestFile:
    """The manifest list entry of a manifest written by snapshot ``snapshot_id``."""
    counts = {ADDED: [0, 0], EXISTING: [0, 0], DELETED: [0, 0]}
    seqs = []
    for e in entries:
        c = counts[e.status]
        c[0] += 1
        c[1] += int(e.data_file["record_count"])
        if e.status != DELETED:
            seqs.append(sequence_number if e.status == ADDED and e.snapshot_id == snapshot_id
                        else e.sequence_number)
    return ManifestFile(path=path, length=length, content=content, sequence_number=sequence_number,
                        min_sequence_number=min(seqs, default=sequence_number), added_snapshot_id=snapshot_id,
                        added_files=counts[ADDED][0], existing_files=counts[EXISTING][0],
                        deleted_files=counts[DELETED][0], added_rows=counts[ADDED][1],
                        existing_rows=counts[EXISTING][1], deleted_rows=counts[DELETED][1])


def write_manifest_list(manifests: Iterable[ManifestFile], *, snapshot_id: int, parent_id: int | None,
                        sequence_number: int) -> bytes:
    return _avro(MANIFEST_FILE_SCHEMA, [m.record() for m in manifests],
                 {"snapshot-id": str(snapshot_id), "parent-snapshot-id": str(parent_id) if parent_id else "null",
                  "sequence-number": str(sequence_number), "format-version": "2"})


def read_manifest_list(data: bytes) -> list[ManifestFile]:
    out = []
    for r in fastavro.reader(io.BytesIO(data)):
        seq = r.get("sequence_number")
        seq = 0 if seq is None else int(seq)
        out.append(ManifestFile(
            path=r["manifest_path"], length=int(r["manifest_length"]), content=int(r.get("content") or 0),
            sequence_number=seq, min_sequence_number=int(r.get("min_sequence_number") or seq),
            added_snapshot_id=int(r["added_snapshot_id"]),
            added_files=int(r.get("added_files_count") or r.get("added_data_files_count") or 0),
            existing_files=int(r.get("existing_files_count") or r.get("existing_data_files_count") or 0),
            deleted_files=int(r.get("deleted_files_count") or r.get("deleted_data_files_count") or 0),
            added_rows=int(r.get("added_rows_count") or 0), existing_rows=int(r.get("existing_rows_count") or 0),
            deleted_rows=int(r.get("deleted_rows_count") or 0)))
    return out
