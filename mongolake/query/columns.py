"""Shredding documents into typed Arrow columns for data files.

Every data file has three fixed columns, then the shredded ones:

* ``_id``  (utf8)   — :func:`~mongolake.query.keystring.render_id` of the document's ``_id``;
* ``_key`` (binary) — :func:`~mongolake.query.keystring.encode_key` of ``_id`` (sort order, zone maps);
* ``_doc`` (binary) — the raw BSON of the document, the source of truth;
* shredded scalar fields, top-level (``age``) or nested in struct columns
  (``profile: struct<level: int64>``, leaf path ``"profile.level"``).

A shredded column has a fixed *kind* (:data:`KINDS`), chosen from the first
values seen and never changed. A value *fits* a kind when it is a scalar of it
(``double`` also takes ints it represents exactly; NaN fits nothing). Values
that don't fit are written as null, and so is anything reached through an
array. A column is **exact** in a batch iff, for every document, the value at
its path (MongoDB path semantics) is missing, null, or a fitting scalar — no
arrays along the path. Only exact columns get statistics (the table-format
convention: "a column is exact in a file iff ``DataFile.null_count`` has it");
``_key`` is always exact. For an exact column an Arrow null means "missing or
null" and any other value is exactly the document's value.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import pyarrow as pa
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.int64 import Int64
from bson.objectid import ObjectId

from mongolake.query.bsonorder import MISSING, date_ms
from mongolake.query.keystring import encode_key, render_id

__all__ = [
    "KINDS", "FIXED_COLUMNS", "KEY_COLUMN", "ColumnSpec", "value_kind", "fit_value", "infer_columns",
    "build_table", "arrow_schema", "specs_from_schema", "specs_to_json", "specs_from_json",
    "is_shreddable_name", "UNFIT",
]

KINDS = ("int", "double", "string", "bool", "date", "objectId")
FIXED_COLUMNS = ("_id", "_key", "_doc")
KEY_COLUMN = "_key"
KIND_METADATA = b"mongolake.kind"

_ARROW_TYPES = {
    "int": pa.int64(), "double": pa.float64(), "string": pa.string(), "bool": pa.bool_(),
    "date": pa.timestamp("ms", tz="UTC"), "objectId": pa.string(),
}


@dataclass(frozen=True)
class ColumnSpec:
    """One shredded leaf column: ``path`` (dotted) and ``kind`` (one of :data:`KINDS`)."""
    path: str
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in _ARROW_TYPES:
            raise ValueError(f"unknown column kind {self.kind!r}")

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.kind]


def is_shreddable_name(name: Any, top_level: bool) -> bool:
    return (isinstance(name, str) and name != "" and not name.startswith("$") and "." not in name
            and not (top_level and name in FIXED_COLUMNS))


def value_kind(v: Any) -> str | None:
    """The kind a column would get from this value (None: not shreddable)."""
    t = type(v)
    if t is int or t is Int64:
        return "int"
    if t is float:
        return None if v != v else "double"
    if t is str:
        return "string"
    if t is bool:
        return "bool"
    if t is ObjectId:
        return "objectId"
    if t is _dt.datetime or (t is DatetimeMS and _date_in_range(v)):
        return "date"
    return None


# dates outside years 1-9999 (pymongo's DatetimeMS) fit no engine's timestamp column
_MIN_MS = -62135596800000          # 0001-01-01
_MAX_MS = 253402300799999          # 9999-12-31 23:59:59.999


def _date_in_range(v: Any) -> bool:
    return _MIN_MS <= int(v) <= _MAX_MS


class _Unfit:
    def __repr__(self) -> str:
        return "UNFIT"


UNFIT: Any = _Unfit()
"""Returned by :func:`fit_value` for a value its column cannot hold."""


def fit_value(v: Any, kind: str) -> Any:
    """The Arrow value for a document value in a column of ``kind``: None for
    missing/null, the converted scalar when it fits, else the ``UNFIT`` marker."""
    if v is None or v is MISSING:
        return None
    t = type(v)
    if kind == "int":
        return int(v) if (t is int or t is Int64) else UNFIT
    if kind == "double":
        if t is float:
            return v if v == v else UNFIT
        if t is int or t is Int64:
            f = float(v)
            return f if f == v else UNFIT
        return UNFIT
    if kind == "string":
        return v if t is str else UNFIT
    if kind == "bool":
        return v if t is bool else UNFIT
    if kind == "date":
        if t is _dt.datetime or (t is DatetimeMS and _date_in_range(v)):
            return date_ms(v)
        return UNFIT
    if kind == "objectId":
        return str(v) if t is ObjectId else UNFIT
    return UNFIT


def _extract(doc: Any, parts: tuple[str, ...]) -> Any:
    """The value at a path through documents only; ``UNFIT`` if an array or a
    DBRef is met (the column cannot represent MongoDB's answer exactly)."""
    cur = doc
    for p in parts:
        t = type(cur)
        if t is dict:
            cur = cur.get(p, MISSING)
        elif t is list or isinstance(cur, (dict, DBRef)):
            return UNFIT
        else:
            return MISSING
    if type(cur) is list:
        return UNFIT
    return cur


def _conflicts(path: str, taken: Iterable[str]) -> bool:
    for q in taken:
        if q == path or q.startswith(path + ".") or path.startswith(q + "."):
            return True
    return False


def infer_columns(docs: Iterable[Mapping[str, Any]], existing: Mapping[str, ColumnSpec], *,
                  max_depth: int = 3, max_columns: int = 64) -> dict[str, ColumnSpec]:
    """New column specs suggested by ``docs`` (not including ``existing`` ones).

    Scalar fields at most ``max_depth`` levels deep become columns, in order of
    first appearance, as long as the total stays within ``max_columns`` and the
    path neither equals nor nests with an existing column (Arrow cannot have
    ``a`` both as a scalar and as a struct). The kind is that of the first
    non-null value, except that ints seen together with doubles give a double
    column.
    """
    seen: dict[str, list[str]] = {}
    for doc in docs:
        _collect(doc, "", 1, max_depth, seen)
    taken = list(existing)
    new: dict[str, ColumnSpec] = {}
    for path, kinds in seen.items():
        if len(taken) >= max_columns:
            break
        if path in existing or _conflicts(path, taken):
            continue
        kind = kinds[0]
        if kind == "int" and "double" in kinds:
            kind = "double"
        new[path] = ColumnSpec(path, kind)
        taken.append(path)
    return new


def _collect(obj: Mapping, prefix: str, depth: int, max_depth: int, seen: dict[str, list[str]]) -> None:
    for k, v in obj.items():
        if not is_shreddable_name(k, top_level=depth == 1):
            continue
        path = prefix + k
        if type(v) is dict:
            if depth < max_depth:
                _collect(v, path + ".", depth + 1, max_depth, seen)
            continue
        kind = value_kind(v)
        if kind is None:
            continue
        kinds = seen.get(path)
        if kinds is None:
            seen[path] = [kind]
        elif kind not in kinds:
            kinds.append(kind)


def _tree(specs: Mapping[str, ColumnSpec]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for spec in specs.values():
        node = root
        parts = spec.parts
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if isinstance(nxt, ColumnSpec):
                raise ValueError(f"column {spec.path!r} nests under scalar column {nxt.path!r}")
            node = nxt
        if parts[-1] in node:
            raise ValueError(f"column {spec.path!r} conflicts with another column")
        node[parts[-1]] = spec
    return root


def _fields(tree: Mapping[str, Any]) -> list[pa.Field]:
    out = []
    for name, node in tree.items():
        if isinstance(node, ColumnSpec):
            out.append(pa.field(name, node.arrow_type, nullable=True,
                                metadata={KIND_METADATA: node.kind.encode()}))
        else:
            out.append(pa.field(name, pa.struct(_fields(node)), nullable=True))
    return out


def arrow_schema(specs: Mapping[str, ColumnSpec]) -> pa.Schema:
    """The data-file schema: ``_id``, ``_key``, ``_doc``, then the shredded
    columns (struct columns for nested paths), in spec order."""
    fixed = [pa.field("_id", pa.string(), nullable=False), pa.field("_key", pa.binary(), nullable=False),
             pa.field("_doc", pa.binary(), nullable=False)]
    return pa.schema(fixed + _fields(_tree(specs)))


def build_table(raw_docs: Sequence[bytes], docs: Sequence[Mapping[str, Any]],
                specs: Mapping[str, ColumnSpec]) -> tuple[pa.Table, set[str]]:
    """Arrow table of ``docs`` (decoded) and ``raw_docs`` (their BSON) with
    :func:`arrow_schema` (``specs``), plus the set of *exact* columns for this
    batch: the leaf paths of exact shredded columns and ``"_key"``."""
    if len(raw_docs) != len(docs):
        raise ValueError("raw_docs and docs differ in length")
    ids = [d.get("_id", MISSING) for d in docs]
    if any(i is MISSING for i in ids):
        raise ValueError("every document needs an _id")
    values: dict[str, list] = {}
    exact: set[str] = {KEY_COLUMN}
    for path, spec in specs.items():
        parts, kind = spec.parts, spec.kind
        col, ok = [], True
        append = col.append
        for d in docs:
            v = _extract(d, parts)
            if v is UNFIT:
                ok = False
                append(None)
                continue
            a = fit_value(v, kind)
            if a is UNFIT:
                ok = False
                append(None)
            else:
                append(a)
        values[path] = col
        if ok:
            exact.add(path)
    schema = arrow_schema(specs)
    arrays = [pa.array([render_id(i) for i in ids], pa.string()),
              pa.array([encode_key(i) for i in ids], pa.binary()),
              pa.array([bytes(r) for r in raw_docs], pa.binary())]
    tree = _tree(specs)
    for name, node in tree.items():
        arrays.append(_build_array(node, values))
    return pa.Table.from_arrays(arrays, schema=schema), exact


def _build_array(node: Any, values: Mapping[str, list]) -> pa.Array:
    if isinstance(node, ColumnSpec):
        return pa.array(values[node.path], type=node.arrow_type)
    children = [_build_array(child, values) for child in node.values()]
    fields = _fields(node)
    return pa.StructArray.from_arrays(children, fields=fields)


def specs_from_schema(schema: pa.Schema) -> dict[str, ColumnSpec]:
    """Recover the specs of a data-file schema (kinds from field metadata, else
    from the Arrow type; utf8 without metadata is ``string``)."""
    out: dict[str, ColumnSpec] = {}

    def visit(field: pa.Field, prefix: str) -> None:
        path = prefix + field.name
        if pa.types.is_struct(field.type):
            for i in range(field.type.num_fields):
                visit(field.type.field(i), path + ".")
            return
        meta = field.metadata or {}
        kind = meta.get(KIND_METADATA, b"").decode() or _kind_of_type(field.type)
        if kind:
            out[path] = ColumnSpec(path, kind)

    for f in schema:
        if f.name not in FIXED_COLUMNS:
            visit(f, "")
    return out


def _kind_of_type(t: pa.DataType) -> str | None:
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "double"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_timestamp(t):
        return "date"
    return None


def specs_to_json(specs: Mapping[str, ColumnSpec]) -> str:
    """Serialise specs (e.g. into a table property), keeping their order."""
    return json.dumps([[s.path, s.kind] for s in specs.values()])


def specs_from_json(text: str) -> dict[str, ColumnSpec]:
    return {p: ColumnSpec(p, k) for p, k in json.loads(text)}
