"""Writing Parquet data files (not yet committed) with Iceberg field ids and statistics.

Every Arrow field of a written file, struct leaves, list elements and map keys and
values included, carries ``PARQUET:field_id`` metadata: Iceberg readers match
columns by id, never by name. Columns the table does not have yet get *pending*
ids (above ``last-column-id``) that the handle remembers and the commit adding the
column to the schema reuses.
"""
from __future__ import annotations

import time
import uuid
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from mongolake.formats.base import DataFile, TableError
from mongolake.formats.stats import (BINARY_PREFIX, STRING_PREFIX, compute_stats,
                                      parquet_statistics_columns)
from mongolake.storage import StorageBackend

from .metadata import DATA_DIR, join
from .schema import IdAssigner, Path, strip_ids, arrow_to_iceberg, field_ids, iceberg_to_arrow

# accepted ``compression`` values -> (pyarrow codec, file-name label)
CODECS = {"zstd": ("zstd", "zstd"), "snappy": ("snappy", "snappy"), "gzip": ("gzip", "gzip"),
          "lz4": ("lz4", "lz4"), "none": ("none", "uncompressed"), "uncompressed": ("none", "uncompressed")}
_TIMESTAMPS = {"timestamp", "timestamptz"}


def _reconcile(data: dict, table: dict, path: str) -> None:
    """Make the data's Iceberg struct agree with the table's for shared columns (in place):
    same types (a naive/UTC timestamp difference follows the table), the table's
    required-ness. Extra columns in the data are allowed."""
    fields = {f["name"]: f for f in table["fields"]}
    for f in data["fields"]:
        name = f"{path}.{f['name']}" if path else f["name"]
        tf = fields.get(f["name"])
        if tf is None:
            continue
        f["required"] = bool(tf.get("required", False))
        a, b = f["type"], tf["type"]
        if isinstance(a, dict) and a.get("type") == "struct" and isinstance(b, dict) and b.get("type") == "struct":
            _reconcile(a, b, name)
        elif isinstance(a, str) and isinstance(b, str) and a in _TIMESTAMPS and b in _TIMESTAMPS:
            f["type"] = b
        elif strip_ids(a) != strip_ids(b):
            raise TableError(f"column {name!r} has type {strip_ids(a)} in the data but {strip_ids(b)} in the table schema")


def conform(data: pa.Table, table_schema: dict, ids: IdAssigner) -> tuple[pa.Table, dict[int, Path]]:
    """``data`` cast to Iceberg physical types with field ids, and the ids it uses that
    the table schema does not know yet (``{id: name path}``)."""
    ice = arrow_to_iceberg(data.schema, ids)
    _reconcile(ice, table_schema, "")
    target = iceberg_to_arrow(ice, with_ids=True)
    try:
        data = data.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as e:
        raise TableError(f"cannot convert data to Iceberg types: {e}") from e
    known = field_ids(table_schema)
    new = {fid: p for p, fid in field_ids(ice).items() if p not in known}
    return data, new


def write_data_file(storage: StorageBackend, root: str, data: pa.Table, table_schema: dict, ids: IdAssigner, *,
                    stats_columns: Iterable[str] | None = None, compression: str = "zstd",
                    row_group_size: int = 64 * 1024, tags: dict[str, str] | None = None,
                    subdir: str | None = None) -> tuple[DataFile, dict[int, Path]]:
    """Write ``data`` as ``data/[subdir/]part-<uuid>.<codec>.parquet``; return the
    :class:`DataFile` and the not-yet-committed field ids it uses."""
    try:
        codec, label = CODECS[compression.lower()]
    except KeyError:
        raise TableError(f"unknown compression {compression!r} (use {', '.join(sorted(CODECS))})") from None
    if row_group_size <= 0:
        raise TableError("row_group_size must be positive")
    data, new_ids = conform(data, table_schema, ids)
    mins, maxs, nulls = compute_stats(data, stats_columns, string_prefix=STRING_PREFIX, binary_prefix=BINARY_PREFIX)
    sink = pa.BufferOutputStream()
    try:
        pq.write_table(data, sink, compression=codec, row_group_size=row_group_size,
                       write_statistics=parquet_statistics_columns(data.schema),
                       use_compliant_nested_type=True)
    except (pa.ArrowInvalid, ValueError) as e:
        raise TableError(f"cannot write data file: {e}") from e
    payload = sink.getvalue().to_pybytes()
    name = f"part-{uuid.uuid4()}.{label}.parquet"
    rel = f"{DATA_DIR}/{subdir.strip('/')}/{name}" if subdir else f"{DATA_DIR}/{name}"
    storage.write(join(root, rel), payload)
    df = DataFile(path=rel, size=len(payload), num_records=data.num_rows, min_values=mins, max_values=maxs,
                  null_count=nulls, modification_time=int(time.time() * 1000), tags=dict(tags or {}))
    return df, new_ids
