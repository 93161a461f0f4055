"""Arrow <-> Iceberg schema conversion, field ids, additive evolution, stats leaves.

An Iceberg schema is a JSON struct whose every field (including list elements and
map keys/values) has a numeric ``id``. Ids are what data files (Parquet
``field_id``) and manifests (column metrics) refer to, so a column keeps its id for
ever; new columns get ids above the table's ``last-column-id``.

=============================================  ===============  =========================
Arrow                                          Iceberg          read back as
=============================================  ===============  =========================
int8/16/32, uint8/16                           int              int32
int64, uint32                                  long             int64
float16/32, float64                            float, double    float32, float64
bool                                           boolean          bool
string, large_string, string_view              string           string
binary, large/fixed-size binary, binary_view   binary           binary
date32/64                                      date             date32
timestamp with a time zone (any unit)          timestamptz      timestamp[us, UTC]
timestamp without a time zone                  timestamp        timestamp[us]
decimal128/256 with precision <= 38            decimal(p,s)     decimal128(p,s)
struct / list / map / dictionary<T>            struct/list/map  struct/list/map / T
=============================================  ===============  =========================

uint64, null, time, duration and interval types are refused with :class:`TableError`.
Reading foreign tables also accepts ``fixed[n]`` (fixed_size_binary), ``uuid``
(fixed_size_binary(16)) and ``time`` (time64[us]).
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterator

import pyarrow as pa

from mongolake.formats.base import TableError

FIELD_ID = b"PARQUET:field_id"
Path = tuple[str, ...]

_PRIMITIVES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(), "int": pa.int32(), "long": pa.int64(), "float": pa.float32(),
    "double": pa.float64(), "date": pa.date32(), "time": pa.time64("us"), "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"), "string": pa.string(), "binary": pa.binary(),
    "uuid": pa.binary(16),
}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_FIXED = re.compile(r"^fixed\[\s*(\d+)\s*\]$")


class SchemaEvolutionError(TableError):
    """A schema change that is not a pure addition of optional columns."""


# -- Arrow -> Iceberg -------------------------------------------------------------

def primitive_of(t: pa.DataType, path: str) -> str | None:
    """The Iceberg primitive type name for an Arrow type, None for nested types."""
    if pa.types.is_dictionary(t):
        return primitive_of(t.value_type, path)
    if pa.types.is_signed_integer(t):
        return "long" if t.bit_width == 64 else "int"
    if pa.types.is_unsigned_integer(t):
        if t.bit_width == 64:
            raise TableError(f"column {path!r}: uint64 has no Iceberg type (use int64 or decimal)")
        return "long" if t.bit_width == 32 else "int"
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
        return "timestamptz" if t.tz is not None else "timestamp"
    if pa.types.is_decimal(t):
        if t.precision > 38:
            raise TableError(f"column {path!r}: Iceberg decimals have at most 38 digits")
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_struct(t) or pa.types.is_map(t) or _is_list(t):
        return None
    raise TableError(f"column {path!r}: Arrow type {t} has no Iceberg equivalent")


def _is_list(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
            or pa.types.is_list_view(t) or pa.types.is_large_list_view(t))


class IdAssigner:
    """Hands out field ids: known paths keep theirs, new paths get fresh ones."""

    def __init__(self, known: dict[Path, int], next_id: int):
        self.known = known
        self.next_id = next_id
        self.assigned: dict[Path, int] = {}       # new paths -> ids given out here

    def id_for(self, path: Path) -> int:
        fid = self.known.get(path)
        if fid is None:
            fid = self.assigned.get(path)
        if fid is None:
            fid = self.assigned[path] = self.next_id
            self.next_id += 1
        return fid


def _type_to_iceberg(t: pa.DataType, path: Path, ids: IdAssigner) -> Any:
    if pa.types.is_dictionary(t):
        t = t.value_type
    prim = primitive_of(t, ".".join(path))
    if prim is not None:
        return prim
    if pa.types.is_struct(t):
        return {"type": "struct", "fields": _fields_to_iceberg([t.field(i) for i in range(t.num_fields)], path, ids)}
    if pa.types.is_map(t):
        kid, vid = ids.id_for(path + ("key",)), ids.id_for(path + ("value",))
        return {"type": "map", "key-id": kid, "key": _type_to_iceberg(t.key_type, path + ("key",), ids),
                "value-id": vid, "value": _type_to_iceberg(t.item_type, path + ("value",), ids),
                "value-required": not t.item_field.nullable}
    eid = ids.id_for(path + ("element",))
    return {"type": "list", "element-id": eid, "element": _type_to_iceberg(t.value_type, path + ("element",), ids),
            "element-required": not t.value_field.nullable}


def _fields_to_iceberg(fields: list[pa.Field], parent: Path, ids: IdAssigner) -> list[dict]:
    """Ids of one struct level first, then its children's (Iceberg's usual numbering)."""
    fids = [ids.id_for(parent + (f.name,)) for f in fields]
    return [{"id": fid, "name": f.name, "required": not f.nullable,
             "type": _type_to_iceberg(f.type, parent + (f.name,), ids)} for f, fid in zip(fields, fids)]


def arrow_to_iceberg(schema: pa.Schema, ids: IdAssigner, schema_id: int = 0) -> dict:
    """The Iceberg schema JSON of ``schema`` (ids from ``ids``)."""
    names = [f.name for f in schema]
    if len(set(names)) != len(names):
        raise TableError(f"duplicate column names in schema: {names}")
    return {"type": "struct", "schema-id": schema_id, "identifier-field-ids": [],
            "fields": _fields_to_iceberg(list(schema), (), ids)}


# -- Iceberg -> Arrow -------------------------------------------------------------

def _meta(fid: int | None, with_ids: bool) -> dict | None:
    return {FIELD_ID: str(fid).encode()} if with_ids and fid is not None else None


def type_to_arrow(t: Any, with_ids: bool = False) -> pa.DataType:
    if isinstance(t, str):
        prim = _PRIMITIVES.get(t)
        if prim is not None:
            return prim
        m = _DECIMAL.match(t)
        if m:
            return pa.decimal128(int(m.group(1)), int(m.group(2)))
        m = _FIXED.match(t)
        if m:
            return pa.binary(int(m.group(1)))
        raise TableError(f"unsupported Iceberg type {t!r}")
    kind = t.get("type")
    if kind == "struct":
        return pa.struct([field_to_arrow(f, with_ids) for f in t["fields"]])
    if kind == "list":
        return pa.list_(pa.field("element", type_to_arrow(t["element"], with_ids),
                                 nullable=not t.get("element-required", False),
                                 metadata=_meta(t.get("element-id"), with_ids)))
    if kind == "map":
        key = pa.field("key", type_to_arrow(t["key"], with_ids), nullable=False,
                       metadata=_meta(t.get("key-id"), with_ids))
        value = pa.field("value", type_to_arrow(t["value"], with_ids), nullable=not t.get("value-required", False),
                         metadata=_meta(t.get("value-id"), with_ids))
        return pa.map_(key, value)
    raise TableError(f"unsupported Iceberg type {t!r}")


def field_to_arrow(f: dict, with_ids: bool = False) -> pa.Field:
    return pa.field(f["name"], type_to_arrow(f["type"], with_ids), nullable=not f.get("required", False),
                    metadata=_meta(f.get("id"), with_ids))


class _IdentityCache:
    """Values derived from schema dicts, keyed by the dict's identity (schema dicts are
    never mutated once part of table metadata), then by content. Bounded."""

    def __init__(self, size: int = 256):
        self._by_id: dict[int, tuple[Any, Any]] = {}
        self._by_text: dict[str, Any] = {}
        self._size = size

    def get(self, obj: Any, compute) -> Any:
        hit = self._by_id.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        text = json.dumps(obj, sort_keys=True)
        value = self._by_text.get(text)
        if value is None:
            value = compute()
            if len(self._by_text) >= self._size:
                self._by_text.clear()
            self._by_text[text] = value
        if len(self._by_id) >= self._size:
            self._by_id.clear()
        self._by_id[id(obj)] = (obj, value)     # holding obj keeps its id from being reused
        return value


_ARROW = {False: _IdentityCache(), True: _IdentityCache()}
_LEAVES = _IdentityCache()


def iceberg_to_arrow(schema: dict, with_ids: bool = False) -> pa.Schema:
    """The Arrow schema of an Iceberg schema (with ``PARQUET:field_id`` metadata when asked)."""
    fields = schema.get("fields", [])
    return _ARROW[with_ids].get(fields, lambda: pa.schema([field_to_arrow(f, with_ids) for f in fields]))


def normalize(schema: pa.Schema) -> pa.Schema:
    """``schema`` as it will read back from an Iceberg table."""
    return iceberg_to_arrow(arrow_to_iceberg(schema, IdAssigner({}, 1)))


# -- ids and leaves -----------------------------------------------------------------

def iter_fields(schema: dict) -> Iterator[tuple[Path, int, Any, bool]]:
    """Every field as (name path, id, Iceberg type, inside a list/map). List elements
    and map keys/values appear as ``element``/``key``/``value`` path components."""
    def walk(prefix: Path, t: Any, nested: bool):
        if not isinstance(t, dict):
            return
        kind = t.get("type")
        if kind == "struct":
            for f in t["fields"]:
                p = prefix + (f["name"],)
                yield p, f["id"], f["type"], nested
                yield from walk(p, f["type"], nested)
        elif kind == "list":
            p = prefix + ("element",)
            yield p, t["element-id"], t["element"], True
            yield from walk(p, t["element"], True)
        elif kind == "map":
            for part in ("key", "value"):
                p = prefix + (part,)
                yield p, t[f"{part}-id"], t[part], True
                yield from walk(p, t[part], True)

    yield from walk((), {"type": "struct", "fields": schema.get("fields", [])}, False)


def field_ids(schema: dict) -> dict[Path, int]:
    return {p: fid for p, fid, _, _ in iter_fields(schema)}


def max_field_id(schema: dict) -> int:
    return max((fid for _, fid, _, _ in iter_fields(schema)), default=0)


def _leaves(fields: list) -> tuple[dict[str, tuple[int, str]], dict[int, tuple[str, str]]]:
    by_name = {".".join(p): (fid, t) for p, fid, t, nested in iter_fields({"fields": fields})
               if not nested and isinstance(t, str)}
    return by_name, {fid: (name, t) for name, (fid, t) in by_name.items()}


def stats_leaves(schema: dict) -> dict[str, tuple[int, str]]:
    """``{"a.b": (field id, Iceberg primitive type)}`` for primitive leaves outside lists
    and maps (cached: do not mutate)."""
    fields = schema.get("fields", [])
    return _LEAVES.get(fields, lambda: _leaves(fields))[0]


def leaves_by_id(schema: dict) -> dict[int, tuple[str, str]]:
    """``{field id: ("a.b", Iceberg primitive type)}`` (cached: do not mutate)."""
    fields = schema.get("fields", [])
    return _LEAVES.get(fields, lambda: _leaves(fields))[1]


# -- evolution ------------------------------------------------------------------------

def strip_ids(t: Any) -> Any:
    """A type without ids (ids are compared separately)."""
    if not isinstance(t, dict):
        return t
    kind = t.get("type")
    if kind == "struct":
        return {"type": "struct", "fields": [{"name": f["name"], "required": f.get("required", False),
                                              "type": strip_ids(f["type"])} for f in t["fields"]]}
    if kind == "list":
        return {"type": "list", "element": strip_ids(t["element"]), "element-required": t.get("element-required")}
    return {"type": "map", "key": strip_ids(t["key"]), "value": strip_ids(t["value"]),
            "value-required": t.get("value-required")}


def _check_struct(old: dict, new: dict, path: str) -> None:
    new_fields = {f["name"]: f for f in new["fields"]}
    for of in old["fields"]:
        name = f"{path}.{of['name']}" if path else of["name"]
        nf = new_fields.get(of["name"])
        if nf is None:
            raise SchemaEvolutionError(f"column {name!r} would be dropped: only adding columns is supported")
        if not of.get("required", False) and nf.get("required", False):
            raise SchemaEvolutionError(f"column {name!r} cannot change from optional to required")
        ot, nt = of["type"], nf["type"]
        if isinstance(ot, dict) and ot.get("type") == "struct" and isinstance(nt, dict) and nt.get("type") == "struct":
            _check_struct(ot, nt, name)
        elif strip_ids(ot) != strip_ids(nt):
            raise SchemaEvolutionError(f"column {name!r} cannot change type from {json.dumps(strip_ids(ot))} to "
                                       f"{json.dumps(strip_ids(nt))}: only adding columns is supported")
    old_names = {f["name"] for f in old["fields"]}
    for nf in new["fields"]:
        if nf["name"] not in old_names and nf.get("required", False):
            name = f"{path}.{nf['name']}" if path else nf["name"]
            raise SchemaEvolutionError(f"new column {name!r} must be optional (existing files lack it)")


def check_evolution(old: dict, new: dict) -> None:
    """Raise :class:`SchemaEvolutionError` unless ``new`` only adds optional columns
    (top-level or struct leaves) to ``old`` (or relaxes required to optional)."""
    _check_struct(old, new, "")


def same_schema(a: dict, b: dict) -> bool:
    """Equal fields, ids included (schema ids ignored)."""
    return a.get("fields") == b.get("fields")


def merge_arrow(ours: pa.Schema, theirs: pa.Schema) -> pa.Schema:
    """``ours`` plus any field only ``theirs`` has (recursively in structs): used when
    a concurrent commit evolved the schema too. Type disagreements raise."""
    return pa.schema(_merge_fields(list(ours), list(theirs), ""))


def _norm_type(f: pa.Field) -> pa.DataType:
    return normalize(pa.schema([f.with_name("x")])).field(0).type


def _merge_fields(ours: list[pa.Field], theirs: list[pa.Field], path: str) -> list[pa.Field]:
    their = {f.name: f for f in theirs}
    out = []
    for f in ours:
        tf = their.get(f.name)
        name = f"{path}.{f.name}" if path else f.name
        if tf is not None and pa.types.is_struct(f.type) and pa.types.is_struct(tf.type):
            f = f.with_type(pa.struct(_merge_fields(list(f.type), list(tf.type), name)))
        elif tf is not None and _norm_type(f) != _norm_type(tf):
            raise SchemaEvolutionError(f"column {name!r} has type {f.type} but a concurrent commit made it {tf.type}")
        out.append(f)
    names = {f.name for f in ours}
    out.extend(f for f in theirs if f.name not in names)
    return out
