"""Arrow <-> Delta schema conversion, additive schema evolution, stats leaves.

Delta records the table schema as Spark's JSON schema (``metaData.schemaString``).
Arrow types map onto Delta types as follows (anything else is refused with a
:class:`TableError`):

=============================================  ====================  =====================
Arrow                                          Delta                 read back as
=============================================  ====================  =====================
int8/16/32/64 (uint8/16/32 widen losslessly)    byte/short/integer/long  int8/16/32/64
float32 / float64 (float16 widens)             float / double        float32 / float64
bool                                           boolean               bool
string, large_string, string_view              string                string
binary, large_binary, fixed_size_binary, view  binary                binary
date32 / date64                                date                  date32
timestamp (any unit, any tz or none)           timestamp             timestamp[us, UTC]
decimal128/256 with precision <= 38            decimal(p,s)          decimal128(p,s)
struct / list / map                            struct / array / map  struct / list / map
dictionary<_, T>                               as T                  T
=============================================  ====================  =====================

Naive (tz-less) timestamps are taken as UTC. Delta's own ``timestamp_ntz`` (read
from foreign tables) reads back as a tz-less ``timestamp[us]``.
"""
from __future__ import annotations

import functools
import json
from typing import Any, Iterator

import pyarrow as pa

from mongolake.formats.base import TableError

_INT_TYPES = {8: "byte", 16: "short", 32: "integer", 64: "long"}
_DELTA_PRIMITIVES: dict[str, pa.DataType] = {
    "long": pa.int64(), "integer": pa.int32(), "short": pa.int16(), "byte": pa.int8(),
    "float": pa.float32(), "double": pa.float64(), "boolean": pa.bool_(),
    "string": pa.string(), "binary": pa.binary(), "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"), "timestamp_ntz": pa.timestamp("us"),
}


class SchemaEvolutionError(TableError):
    """A schema change that is not a pure addition of nullable columns."""


# -- Arrow -> Delta -------------------------------------------------------------

def _arrow_type_to_delta(t: pa.DataType, path: str) -> Any:
    if pa.types.is_dictionary(t):
        return _arrow_type_to_delta(t.value_type, path)
    if pa.types.is_signed_integer(t):
        return _INT_TYPES[t.bit_width]
    if pa.types.is_unsigned_integer(t):
        if t.bit_width == 64:
            raise TableError(f"column {path!r}: uint64 has no Delta type (use int64 or decimal)")
        return _INT_TYPES[t.bit_width * 2]
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "float"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
            or pa.types.is_binary_view(t)):
        return "binary"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_decimal(t):
        if t.precision > 38:
            raise TableError(f"column {path!r}: Delta decimals have at most 38 digits")
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_struct(t):
        return {"type": "struct", "fields": [_arrow_field_to_delta(t.field(i), path) for i in range(t.num_fields)]}
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_list_view(t):
        return {"type": "array", "elementType": _arrow_type_to_delta(t.value_type, path + "[]"),
                "containsNull": t.value_field.nullable}
    if pa.types.is_map(t):
        return {"type": "map", "keyType": _arrow_type_to_delta(t.key_type, path + "{key}"),
                "valueType": _arrow_type_to_delta(t.item_type, path + "{value}"),
                "valueContainsNull": t.item_field.nullable}
    raise TableError(f"column {path!r}: Arrow type {t} has no Delta equivalent")


def _arrow_field_to_delta(f: pa.Field, parent: str = "") -> dict:
    path = f"{parent}.{f.name}" if parent else f.name
    meta: dict[str, Any] = {}
    for k, v in (f.metadata or {}).items():
        key = k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
        val = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        if key.startswith("PARQUET:"):
            continue
        meta[key] = val
    return {"name": f.name, "type": _arrow_type_to_delta(f.type, path), "nullable": bool(f.nullable),
            "metadata": meta}


def arrow_to_delta(schema: pa.Schema) -> dict:
    """The Delta schema (a ``struct`` dict) of an Arrow schema."""
    names = [f.name for f in schema]
    if len(set(names)) != len(names):
        raise TableError(f"duplicate column names in schema: {names}")
    return {"type": "struct", "fields": [_arrow_field_to_delta(f) for f in schema]}


def schema_to_json(schema: pa.Schema) -> str:
    return json.dumps(arrow_to_delta(schema), separators=(",", ":"))


# -- Delta -> Arrow -------------------------------------------------------------

def _delta_type_to_arrow(t: Any) -> pa.DataType:
    if isinstance(t, str):
        if t in _DELTA_PRIMITIVES:
            return _DELTA_PRIMITIVES[t]
        if t.startswith("decimal"):
            inner = t[t.index("(") + 1:t.index(")")] if "(" in t else "10,0"
            p, s = (int(x) for x in inner.split(","))
            return pa.decimal128(p, s)
        raise TableError(f"unsupported Delta type {t!r}")
    kind = t.get("type")
    if kind == "struct":
        return pa.struct([_delta_field_to_arrow(f) for f in t["fields"]])
    if kind == "array":
        return pa.list_(pa.field("element", _delta_type_to_arrow(t["elementType"]),
                                 nullable=t.get("containsNull", True)))
    if kind == "map":
        return pa.map_(_delta_type_to_arrow(t["keyType"]),
                       pa.field("value", _delta_type_to_arrow(t["valueType"]),
                                nullable=t.get("valueContainsNull", True)))
    raise TableError(f"unsupported Delta type {t!r}")


def _delta_field_to_arrow(f: dict) -> pa.Field:
    meta = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (f.get("metadata") or {}).items()}
    return pa.field(f["name"], _delta_type_to_arrow(f["type"]), nullable=f.get("nullable", True),
                    metadata=meta or None)


def delta_to_arrow(delta_schema: dict) -> pa.Schema:
    return pa.schema([_delta_field_to_arrow(f) for f in delta_schema.get("fields", [])])


def schema_from_json(text: str) -> pa.Schema:
    return delta_to_arrow(json.loads(text))


def normalize(schema: pa.Schema) -> pa.Schema:
    """The Arrow schema as it will read back from the Delta log."""
    return delta_to_arrow(arrow_to_delta(schema))


# -- evolution ------------------------------------------------------------------

def strip_metadata(t: Any) -> Any:
    """A Delta type with field metadata removed (metadata changes are not type changes)."""
    if isinstance(t, dict):
        if t.get("type") == "struct":
            return {"type": "struct", "fields": [
                {"name": f["name"], "type": strip_metadata(f["type"]), "nullable": f.get("nullable", True)}
                for f in t["fields"]]}
        return {k: strip_metadata(v) for k, v in t.items()}
    return t


def _check_struct(old: dict, new: dict, path: str) -> None:
    new_fields = {f["name"]: f for f in new["fields"]}
    for of in old["fields"]:
        name = f"{path}.{of['name']}" if path else of["name"]
        nf = new_fields.get(of["name"])
        if nf is None:
            raise SchemaEvolutionError(f"column {name!r} would be dropped: only adding columns is supported")
        if of.get("nullable", True) and not nf.get("nullable", True):
            raise SchemaEvolutionError(f"column {name!r} cannot change from nullable to non-nullable")
        ot, nt = of["type"], nf["type"]
        if isinstance(ot, dict) and ot.get("type") == "struct" and isinstance(nt, dict) and nt.get("type") == "struct":
            _check_struct(ot, nt, name)
        elif strip_metadata(ot) != strip_metadata(nt):
            raise SchemaEvolutionError(
                f"column {name!r} cannot change type from {json.dumps(strip_metadata(ot))} to "
                f"{json.dumps(strip_metadata(nt))}: only adding columns is supported")
    old_names = {f["name"] for f in old["fields"]}
    for nf in new["fields"]:
        if nf["name"] not in old_names and not nf.get("nullable", True):
            name = f"{path}.{nf['name']}" if path else nf["name"]
            raise SchemaEvolutionError(f"new column {name!r} must be nullable (existing files lack it)")


def check_evolution(old: pa.Schema | dict, new: pa.Schema | dict) -> None:
    """Raise :class:`SchemaEvolutionError` unless ``new`` only adds nullable columns
    (top-level or struct leaves) to ``old``."""
    o = old if isinstance(old, dict) else arrow_to_delta(old)
    n = new if isinstance(new, dict) else arrow_to_delta(new)
    _check_struct(o, n, "")


def merge(ours: dict, theirs: dict) -> dict:
    """``ours`` plus any field only ``theirs`` has (recursively in structs): used when
    a concurrent commit evolved the schema too. Type disagreements raise."""
    out_fields = []
    their_fields = {f["name"]: f for f in theirs["fields"]}
    for f in ours["fields"]:
        tf = their_fields.get(f["name"])
        if tf is not None and isinstance(f["type"], dict) and f["type"].get("type") == "struct" \
                and isinstance(tf["type"], dict) and tf["type"].get("type") == "struct":
            f = dict(f, type=merge(f["type"], tf["type"]))
        elif tf is not None and strip_metadata(f["type"]) != strip_metadata(tf["type"]):
            raise SchemaEvolutionError(f"column {f['name']!r} has type {json.dumps(strip_metadata(f['type']))} "
                                       f"but a concurrent commit made it {json.dumps(strip_metadata(tf['type']))}")
        out_fields.append(f)
    our_names = {f["name"] for f in ours["fields"]}
    out_fields.extend(f for f in theirs["fields"] if f["name"] not in our_names)
    return {"type": "struct", "fields": out_fields}


# -- leaves ---------------------------------------------------------------------

def iter_leaves(schema: pa.Schema) -> Iterator[tuple[tuple[str, ...], pa.DataType]]:
    """Primitive leaves outside lists and maps, as (name path, Arrow type)."""
    def walk(prefix: tuple[str, ...], t: pa.DataType):
        if pa.types.is_struct(t):
            for i in range(t.num_fields):
                yield from walk(prefix + (t.field(i).name,), t.field(i).type)
        elif not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_map(t)
                  or pa.types.is_fixed_size_list(t) or pa.types.is_list_view(t)):
            yield prefix, t

    for f in schema:
        yield from walk((f.name,), f.type)


@functools.lru_cache(maxsize=128)
def leaf_index(schema: pa.Schema) -> dict[str, tuple[tuple[str, ...], pa.DataType]]:
    """``{"a.b": (("a", "b"), type)}`` for every stats-capable leaf (cached: do not mutate)."""
    return {".".join(p): (p, t) for p, t in iter_leaves(schema)}
