"""Writing Parquet data files (not yet committed) with their statistics."""
from __future__ import annotations

import time
import uuid
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from mongolake.formats.base import DataFile, TableError
from mongolake.storage import StorageBackend

from .log import join
from .schema import strip_metadata, arrow_to_delta, delta_to_arrow
from mongolake.formats.stats import (BINARY_PREFIX, STRING_PREFIX, compute_stats,
                                      parquet_statistics_columns)

# accepted ``compression`` values -> (pyarrow codec, file-name label)
CODECS = {"zstd": ("zstd", "zstd"), "snappy": ("snappy", "snappy"), "gzip": ("gzip", "gzip"),
          "lz4": ("lz4", "lz4"), "none": ("none", "uncompressed"), "uncompressed": ("none", "uncompressed")}


def _check_compatible(data_type: dict, table_type: dict, path: str) -> None:
    """Columns present in both must agree; extra columns in the data are allowed
    (the caller will add them to the schema when committing)."""
    fields = {f["name"]: f for f in table_type["fields"]}
    for f in data_type["fields"]:
        name = f"{path}.{f['name']}" if path else f["name"]
        tf = fields.get(f["name"])
        if tf is None:
            continue
        a, b = f["type"], tf["type"]
        if isinstance(a, dict) and a.get("type") == "struct" and isinstance(b, dict) and b.get("type") == "struct":
            _check_compatible(a, b, name)
        elif strip_metadata(a) != strip_metadata(b):
            raise TableError(f"column {name!r} has type {strip_metadata(a)} in the data but "
                             f"{strip_metadata(b)} in the table schema")


def conform(data: pa.Table, table_schema: pa.Schema | None) -> pa.Table:
    """``data`` with Delta-representable physical types (timestamps in µs UTC,
    dictionaries decoded, large/view types narrowed), checked against the table schema."""
    delta = arrow_to_delta(data.schema)
    if table_schema is not None:
        _check_compatible(delta, arrow_to_delta(table_schema), "")
    target = delta_to_arrow(delta)
    if not data.schema.equals(target, check_metadata=False):
        try:
            data = data.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise TableError(f"cannot convert data to Delta types: {e}") from e
    return data


def write_data_file(storage: StorageBackend, root: str, data: pa.Table, table_schema: pa.Schema | None, *,
                    stats_columns: Iterable[str] | None = None, compression: str = "zstd",
                    row_group_size: int = 64 * 1024, tags: dict[str, str] | None = None,
                    subdir: str | None = None, string_prefix: int = STRING_PREFIX) -> DataFile:
    """Write ``data`` as ``[subdir/]part-<uuid>.<codec>.parquet`` under the table root."""
    try:
        codec, label = CODECS[compression.lower()]
    except KeyError:
        raise TableError(f"unknown compression {compression!r} (use {', '.join(sorted(CODECS))})") from None
    if row_group_size <= 0:
        raise TableError("row_group_size must be positive")
    data = conform(data, table_schema)
    mins, maxs, nulls = compute_stats(data, stats_columns, string_prefix=string_prefix, binary_prefix=BINARY_PREFIX)
    sink = pa.BufferOutputStream()
    pq.write_table(data, sink, compression=codec, row_group_size=row_group_size,
                   write_statistics=parquet_statistics_columns(data.schema),
                   use_compliant_nested_type=True)
    payload = sink.getvalue().to_pybytes()
    name = f"part-{uuid.uuid4()}.{label}.parquet"
    rel = f"{subdir.strip('/')}/{name}" if subdir else name
    storage.write(join(root, rel), payload)
    return DataFile(path=rel, size=len(payload), num_records=data.num_rows, min_values=mins, max_values=maxs,
                    null_count=nulls, modification_time=int(time.time() * 1000), tags=dict(tags or {}))
