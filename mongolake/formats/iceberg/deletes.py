"""Position delete files (Iceberg format v2, merge-on-read).

A position delete file is a Parquet file with two required columns, ``file_path``
(field id 2147483546: the data file's location as written in its manifest entry)
and ``pos`` (2147483545: the 0-based row position in that data file), sorted by
``(file_path, pos)``. It is listed in a *delete manifest* (manifest ``content`` 1,
entry ``data_file.content`` 1). Its rows apply to data files whose data sequence
number is less than or equal to the delete file's.

MongoLake writes one delete file per data file and records the data file's path as
both the lower and the upper bound of ``file_path``, so readers (ours, pyiceberg,
Spark) can match a delete file to its data file without opening it. Files written by
others that reference several data files are read and split by ``file_path``.
"""
from __future__ import annotations

import io
import struct
import time
import uuid
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mongolake.formats.base import DataFile, TableError
from mongolake.storage import StorageBackend

from .metadata import DATA_DIR, join

PATH_ID = 2147483546
POS_ID = 2147483545
CONTENT_POSITION_DELETES = 1
CONTENT_EQUALITY_DELETES = 2

SCHEMA = pa.schema([
    pa.field("file_path", pa.string(), nullable=False, metadata={b"PARQUET:field_id": str(PATH_ID).encode()}),
    pa.field("pos", pa.int64(), nullable=False, metadata={b"PARQUET:field_id": str(POS_ID).encode()}),
])


@dataclass(frozen=True)
class DeleteFile:
    """A written (not yet committed) position delete file for one data file."""
    file: DataFile            # path relative to the table root, num_records = number of positions
    data_path: str            # the data file it applies to (relative path)
    data_uri: str             # the data file's location as written in its manifest entry
    positions: tuple[int, ...]


def normalize_positions(positions: Sequence[int]) -> tuple[int, ...]:
    out = sorted({int(p) for p in positions})
    if out and out[0] < 0:
        raise TableError(f"negative row position {out[0]} in position deletes")
    return tuple(out)


def write_delete_file(storage: StorageBackend, root: str, data_path: str, data_uri: str,
                      positions: Sequence[int], num_rows: int) -> DeleteFile:
    """Write ``data/delete-<uuid>.parquet`` deleting ``positions`` of ``data_uri``."""
    pos = normalize_positions(positions)
    if not pos:
        raise TableError(f"no positions to delete in {data_path!r}")
    if pos[-1] >= num_rows:
        raise TableError(f"row position {pos[-1]} is past the end of {data_path!r} ({num_rows} rows)")
    t = pa.table([pa.array([data_uri] * len(pos), pa.string()), pa.array(pos, pa.int64())], schema=SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(t, sink, compression="zstd")
    payload = sink.getvalue().to_pybytes()
    rel = f"{DATA_DIR}/delete-{uuid.uuid4()}.parquet"
    storage.write(join(root, rel), payload)
    f = DataFile(path=rel, size=len(payload), num_records=len(pos), modification_time=int(time.time() * 1000))
    return DeleteFile(f, data_path, data_uri, pos)


def delete_record(d: DeleteFile, uri: str) -> dict:
    """The manifest ``data_file`` record of a position delete file."""
    n = len(d.positions)
    path_b = d.data_uri.encode("utf-8")
    return {"content": CONTENT_POSITION_DELETES, "file_path": uri, "file_format": "PARQUET", "partition": {},
            "record_count": n, "file_size_in_bytes": int(d.file.size), "column_sizes": None,
            "value_counts": [{"key": PATH_ID, "value": n}, {"key": POS_ID, "value": n}],
            "null_value_counts": [{"key": PATH_ID, "value": 0}, {"key": POS_ID, "value": 0}],
            "nan_value_counts": [],
            "lower_bounds": [{"key": PATH_ID, "value": path_b},
                             {"key": POS_ID, "value": struct.pack("<q", d.positions[0])}],
            "upper_bounds": [{"key": PATH_ID, "value": path_b},
                             {"key": POS_ID, "value": struct.pack("<q", d.positions[-1])}],
            "key_metadata": None, "split_offsets": None, "equality_ids": None, "sort_order_id": None}


def referenced_uri(record: dict) -> str | None:
    """The one data file a delete file's ``file_path`` bounds name, else None."""
    def bound(m: object) -> bytes | None:
        if not m:
            return None
        if isinstance(m, dict):
            return m.get(PATH_ID)
        for kv in m:                    # type: ignore[union-attr]
            if int(kv["key"]) == PATH_ID:
                return kv["value"]
        return None
    lo, hi = bound(record.get("lower_bounds")), bound(record.get("upper_bounds"))
    if lo is not None and lo == hi:
        try:
            return bytes(lo).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def read_positions(data: bytes) -> dict[str, np.ndarray]:
    """``{data file location: sorted int64 positions}`` of a position delete file."""
    t = pq.read_table(io.BytesIO(data), columns=["file_path", "pos"])
    out: dict[str, np.ndarray] = {}
    if not t.num_rows:
        return out
    paths = t.column("file_path").to_pylist()
    pos = t.column("pos").to_numpy()
    order = {}
    for i, p in enumerate(paths):
        order.setdefault(p, []).append(i)
    for p, idx in order.items():
        out[p] = np.unique(pos[np.asarray(idx)])
    return out
