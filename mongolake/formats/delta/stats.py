"""Per-file statistics: computed from Arrow data, encoded as Delta ``stats`` JSON,
decoded back into :class:`~mongolake.formats.base.DataFile` fields.

Encoding rules:

* ``stats`` JSON holds ``numRecords`` and ``minValues``/``maxValues``/``nullCount``
  nested like the schema (``{"profile": {"level": 3}}`` for leaf ``profile.level``).
* Timestamps are ISO-8601 UTC strings with microseconds (``2024-01-02T03:04:05.123456Z``).
  When *reading* a max timestamp written with millisecond precision or less (Spark,
  delta-rs truncate to milliseconds) 999 µs are added so the bound stays an upper bound.
* Strings longer than ``string_prefix`` characters are cut: the min to its prefix
  (still a lower bound), the max to a prefix whose last character is incremented
  (still an upper bound) – or no max at all when no character can be incremented.
* Binary columns have no JSON min/max in Delta: their bounds go to the add action's
  ``tags`` as hex under ``mongolake.min.<col>``/``mongolake.max.<col>`` (cut at
  ``binary_prefix`` bytes the same way) and are decoded back to ``bytes``.
* Floats containing NaN get no min/max (only a null count); infinite bounds are left
  out (JSON cannot express them). Decimals, lists and maps get no statistics.
"""
from __future__ import annotations

import functools
import json
import math
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from .schema import leaf_index

TAG_MIN = "mongolake.min."
TAG_MAX = "mongolake.max."

_FRACTION = re.compile(r"T?\d\d:\d\d:\d\d\.(\d+)")


from mongolake.formats.stats import _utc


def _json_value(v: Any) -> Any:
    """A JSON-able rendering of a stats value, or None when it has none."""
    if isinstance(v, bool) or isinstance(v, int) or isinstance(v, str):
        return v
    if isinstance(v, float):
        return None if (math.isnan(v) or math.isinf(v)) else v
    if isinstance(v, datetime):
        return _utc(v).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(v, date):
        return v.isoformat()
    return None


def _put(d: dict, path: tuple[str, ...], value: Any) -> None:
    for p in path[:-1]:
        nxt = d.setdefault(p, {})
        if not isinstance(nxt, dict):
            return
        d = nxt
    d[path[-1]] = value


def encode_stats(num_records: int, min_values: dict[str, Any], max_values: dict[str, Any],
                 null_count: dict[str, int], schema: pa.Schema) -> tuple[str, dict[str, str]]:
    """(``stats`` JSON string, binary-bound tags) for one add action."""
    idx = leaf_index(schema)

    def path_of(col: str) -> tuple[str, ...]:
        hit = idx.get(col)
        return hit[0] if hit else tuple(col.split("."))

    tags: dict[str, str] = {}
    out: dict[str, Any] = {"numRecords": int(num_records)}
    for key, values, tag in (("minValues", min_values, TAG_MIN), ("maxValues", max_values, TAG_MAX)):
        section: dict[str, Any] = {}
        for col, v in values.items():
            if isinstance(v, (bytes, bytearray, memoryview)):
                tags[tag + col] = bytes(v).hex()
                continue
            j = _json_value(v)
            if j is not None:
                _put(section, path_of(col), j)
        out[key] = section
    nc: dict[str, Any] = {}
    for col, c in null_count.items():
        _put(nc, path_of(col), int(c))
    out["nullCount"] = nc
    return json.dumps(out, separators=(",", ":")), tags


# -- decoding (JSON -> DataFile fields) ------------------------------------------

def _get(d: Any, path: tuple[str, ...]) -> Any:
    for p in path:
        if d is None or d.__class__ is not dict:
            return None
        d = d.get(p)
    return d


def _parse_timestamp(s: str, is_max: bool) -> datetime:
    v = _utc(datetime.fromisoformat(s.strip().replace(" ", "T", 1)))
    if is_max:
        m = _FRACTION.search(s)
        digits = m.group(1) if m else ""
        if len(digits) <= 3:
            v += timedelta(microseconds=999)          # written at millisecond precision
        elif len(digits) > 6 and digits[6:].strip("0"):
            v += timedelta(microseconds=1)            # sub-microsecond digits were cut off
    return v


def _kind(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t):
        return "str"
    if pa.types.is_timestamp(t):
        return "ts"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_decimal(t):
        return "dec"
    if pa.types.is_binary(t):
        return "bin"
    return "other"


@functools.lru_cache(maxsize=128)
def _plan(schema: pa.Schema) -> tuple[tuple[str, tuple[str, ...], str], ...]:
    """(column name, name path, value kind) per stats leaf, computed once per schema."""
    return tuple((name, path, _kind(t)) for name, (path, t) in leaf_index(schema).items())


def _convert(v: Any, kind: str, is_max: bool) -> Any:
    if v is None:
        return None
    is_num = isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "int":
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        return int(v) if isinstance(v, float) and v.is_integer() else None
    if kind == "float":
        return float(v) if is_num else None
    if kind == "str":
        return v if isinstance(v, str) else None
    if kind == "bool":
        return v if isinstance(v, bool) else None
    if kind == "ts":
        return _parse_timestamp(v, is_max) if isinstance(v, str) else None
    if kind == "date":
        return date.fromisoformat(v[:10]) if isinstance(v, str) else None
    if kind == "dec":
        return Decimal(str(v)) if is_num or isinstance(v, str) else None
    return None


def decode_stats(stats: str | dict | None, tags: dict[str, str] | None, schema: pa.Schema
                 ) -> tuple[int | None, dict[str, Any], dict[str, Any], dict[str, int], dict[str, str]]:
    """(num_records or None, mins, maxs, null counts, remaining user tags)."""
    user_tags: dict[str, str] = {}
    bin_min: dict[str, bytes] = {}
    bin_max: dict[str, bytes] = {}
    for k, v in (tags or {}).items():
        try:
            if k.startswith(TAG_MIN):
                bin_min[k[len(TAG_MIN):]] = bytes.fromhex(v)
                continue
            if k.startswith(TAG_MAX):
                bin_max[k[len(TAG_MAX):]] = bytes.fromhex(v)
                continue
        except (ValueError, TypeError):
            continue
        if v is not None:
            user_tags[k] = v
    if isinstance(stats, str):
        try:
            stats = json.loads(stats)
        except ValueError:
            stats = None
    stats = stats if isinstance(stats, dict) else {}
    num = stats.get("numRecords")
    num = int(num) if isinstance(num, (int, float)) and not isinstance(num, bool) else None
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    min_sec, max_sec, nc_sec = stats.get("minValues"), stats.get("maxValues"), stats.get("nullCount")
    for name, path, kind in _plan(schema):
        nc = _get(nc_sec, path)
        if isinstance(nc, int) and not isinstance(nc, bool):
            nulls[name] = nc
        if kind == "bin":
            if name in bin_min:
                mins[name] = bin_min[name]
            if name in bin_max:
                maxs[name] = bin_max[name]
            continue
        for sec, out, is_max in ((min_sec, mins, False), (max_sec, maxs, True)):
            try:
                v = _convert(_get(sec, path), kind, is_max)
            except (ValueError, TypeError, ArithmeticError):
                v = None
            if v is not None:
                out[name] = v
    return num, mins, maxs, nulls, user_tags
