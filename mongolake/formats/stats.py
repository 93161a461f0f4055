"""Per-file column statistics computed from Arrow data, shared by every table format.

Strings longer than a prefix are cut: the min to its prefix (still a lower bound),
the max to a prefix whose last character is incremented (still an upper bound) – or
no max at all when no character can be incremented. Floats containing NaN get no
min/max; decimals, lists and maps get no statistics.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc

STRING_PREFIX = 32
BINARY_PREFIX = 128


# -- truncation -----------------------------------------------------------------

def truncate_max_str(s: str, n: int) -> str | None:
    """The shortest string of at most ``n`` characters that is >= ``s`` (None if none)."""
    if len(s) <= n:
        return s
    prefix = s[:n]
    for i in range(len(prefix) - 1, -1, -1):
        nxt = ord(prefix[i]) + 1
        if 0xD800 <= nxt <= 0xDFFF:
            nxt = 0xE000
        if nxt <= 0x10FFFF:
            return prefix[:i] + chr(nxt)
    return None


def truncate_max_bytes(b: bytes, n: int) -> bytes | None:
    if len(b) <= n:
        return b
    prefix = b[:n]
    for i in range(len(prefix) - 1, -1, -1):
        if prefix[i] < 0xFF:
            return prefix[:i] + bytes([prefix[i] + 1])
    return None


# -- computing ------------------------------------------------------------------

def _flatten(prefix: tuple[str, ...], col: pa.ChunkedArray) -> Iterator[tuple[tuple[str, ...], pa.ChunkedArray]]:
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_struct(t):
        children: list[list[pa.Array]] = [[] for _ in range(t.num_fields)]
        for chunk in col.chunks:
            for i, child in enumerate(chunk.flatten()):   # flatten() folds in the parent's nulls
                children[i].append(child)
        for i in range(t.num_fields):
            yield from _flatten(prefix + (t.field(i).name,), pa.chunked_array(children[i], type=t.field(i).type))
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t) or pa.types.is_fixed_size_list(t):
        return
    else:
        yield prefix, col


def _selected(path: tuple[str, ...], wanted: set[str] | None) -> bool:
    if wanted is None:
        return True
    return any(".".join(path[:i]) in wanted for i in range(1, len(path) + 1))


def _utc(v: datetime) -> datetime:
    return v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)


def compute_stats(data: pa.Table, stats_columns: Iterable[str] | None = None, *,
                  string_prefix: int = STRING_PREFIX, binary_prefix: int = BINARY_PREFIX
                  ) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """(min_values, max_values, null_count) for the selected leaf columns of ``data``."""
    wanted = None if stats_columns is None else set(stats_columns)
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    n = data.num_rows
    for field, col in zip(data.schema, data.columns):
        for path, leaf in _flatten((field.name,), col):
            if not _selected(path, wanted):
                continue
            name = ".".join(path)
            t = leaf.type
            nulls[name] = leaf.null_count
            if leaf.null_count == n or pa.types.is_decimal(t) or pa.types.is_null(t):
                continue
            if pa.types.is_floating(t) and pc.any(pc.is_nan(leaf)).as_py():
                continue
            mm = pc.min_max(leaf)
            lo, hi = mm["min"].as_py(), mm["max"].as_py()
            if pa.types.is_floating(t):
                lo = None if math.isinf(lo) else lo
                hi = None if math.isinf(hi) else hi
            elif isinstance(lo, str):
                lo, hi = lo[:string_prefix], truncate_max_str(hi, string_prefix)
            elif isinstance(lo, (bytes, bytearray)):
                lo, hi = bytes(lo[:binary_prefix]), truncate_max_bytes(bytes(hi), binary_prefix)
            elif isinstance(lo, datetime):
                lo, hi = _utc(lo), _utc(hi)
            if lo is not None:
                mins[name] = lo
            if hi is not None:
                maxs[name] = hi
    return mins, maxs, nulls


# -- encoding (DataFile -> JSON) ------------------------------------------------


NO_PARQUET_STATS = frozenset({"_doc"})
"""Columns whose Parquet min/max would only bloat footers (whole documents)."""


def parquet_statistics_columns(schema: pa.Schema) -> list[str]:
    """Leaf paths that get Parquet statistics: every leaf except :data:`NO_PARQUET_STATS`."""
    out: list[str] = []

    def walk(path: str, typ: pa.DataType) -> None:
        if pa.types.is_struct(typ):
            for f in typ:
                walk(f"{path}.{f.name}", f.type)
        else:
            out.append(path)
    for f in schema:
        if f.name not in NO_PARQUET_STATS:
            walk(f.name, f.type)
    return out
