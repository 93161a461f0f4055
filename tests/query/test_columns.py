"""Shredding documents into typed Arrow columns: kinds, fit, exactness, schema."""
from __future__ import annotations

import datetime as dt

import bson
import pyarrow as pa
import pytest
from bson.datetime_ms import DatetimeMS
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId

from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.query.columns import (
    UNFIT, ColumnSpec, arrow_schema, build_table, fit_value, infer_columns, specs_from_json, specs_from_schema,
    specs_to_json,
)
from mongolake.query.keystring import encode_key

UTC = dt.timezone.utc
OID = ObjectId("5f1d7a2b9c8e4f0a1b2c3d4e")


def roundtrip(docs):
    raw = [bson.encode(d) for d in docs]
    return raw, [bson.decode(r, CODEC_OPTIONS) for r in raw]


def test_infer_kinds_and_nesting():
    _, docs = roundtrip([
        {"_id": 1, "i": 1, "l": Int64(2), "d": 1.5, "s": "x", "b": True, "t": dt.datetime(2020, 1, 1),
         "o": OID, "p": {"level": 3, "q": {"r": "deep", "s": {"too": "deep"}}}, "arr": [1], "dec": Decimal128("1"),
         "$weird": 1, "n": None},
    ])
    specs = infer_columns(docs, {})
    assert {p: s.kind for p, s in specs.items()} == {
        "i": "int", "l": "int", "d": "double", "s": "string", "b": "bool", "t": "date", "o": "objectId",
        "p.level": "int", "p.q.r": "string"}


def test_kind_from_first_values_and_int_double_mix():
    specs = infer_columns([{"a": 1, "b": "x"}, {"a": 2.5, "b": 3}], {})
    assert specs["a"].kind == "double" and specs["b"].kind == "string"
    # existing columns never change kind, and are not returned again
    assert infer_columns([{"a": "s", "c": 1}], specs) == {"c": ColumnSpec("c", "int")}


def test_limits_and_conflicts():
    docs = [{f"f{i}": i for i in range(10)}]
    assert len(infer_columns(docs, {}, max_columns=4)) == 4
    existing = {"a": ColumnSpec("a", "int")}
    # 'a' is scalar: no 'a.b'; 'x.y' exists: no scalar 'x'
    assert infer_columns([{"a": {"b": 1}}], existing) == {}
    assert infer_columns([{"x": 5}], {"x.y": ColumnSpec("x.y", "int")}) == {}
    assert set(infer_columns([{"a": {"b": {"c": {"d": 1}}, "e": 1}}], {}, max_depth=2)) == {"a.e"}


def test_fit_values():
    assert fit_value(5, "double") == 5.0
    assert fit_value(2 ** 53 + 1, "double") is UNFIT
    assert fit_value(2 ** 60, "double") == 2.0 ** 60
    assert fit_value(2.5, "int") is UNFIT
    assert fit_value(float("nan"), "double") is UNFIT
    assert fit_value(True, "int") is UNFIT
    assert fit_value(Decimal128("1"), "int") is UNFIT
    assert fit_value("5", "int") is UNFIT
    assert fit_value(dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), "date") == 1000
    assert fit_value(DatetimeMS(-5), "date") == -5
    assert fit_value(OID, "objectId") == "5f1d7a2b9c8e4f0a1b2c3d4e"
    assert fit_value(None, "string") is None


def test_build_table_exactness_and_values():
    raw, docs = roundtrip([
        {"_id": 1, "a": 1, "b": "x", "p": {"level": 1}, "c": 1.5},
        {"_id": "k", "a": None, "b": ["y"], "p": 5, "c": 2},
        {"_id": OID, "p": {"level": None}, "c": 2 ** 53 + 1},
    ])
    specs = {"a": ColumnSpec("a", "int"), "b": ColumnSpec("b", "string"),
             "p.level": ColumnSpec("p.level", "int"), "c": ColumnSpec("c", "double")}
    table, exact = build_table(raw, docs, specs)
    assert exact == {"_key", "a", "p.level"}                # b meets an array, c an unrepresentable int
    assert table.column_names == ["_id", "_key", "_doc", "a", "b", "p", "c"]
    assert table.column("_id").to_pylist() == ["1", "k", str(OID)]
    assert table.column("_key").to_pylist() == [encode_key(d["_id"]) for d in docs]
    assert table.column("_doc").to_pylist() == raw
    assert table.column("a").to_pylist() == [1, None, None]
    assert table.column("b").to_pylist() == ["x", None, None]
    assert table.column("p").to_pylist() == [{"level": 1}, {"level": None}, {"level": None}]
    assert table.column("c").to_pylist() == [1.5, 2.0, None]


def test_arrays_anywhere_along_the_path_make_a_column_inexact():
    raw, docs = roundtrip([{"_id": 1, "p": [{"level": 1}]}, {"_id": 2, "p": {"level": 2}}])
    table, exact = build_table(raw, docs, {"p.level": ColumnSpec("p.level", "int")})
    assert "p.level" not in exact
    assert table.column("p").to_pylist() == [{"level": None}, {"level": 2}]


def test_schema_round_trips():
    specs = {"a": ColumnSpec("a", "int"), "p.x": ColumnSpec("p.x", "objectId"), "p.y.z": ColumnSpec("p.y.z", "date")}
    schema = arrow_schema(specs)
    assert schema.field("p").type == pa.struct([
        pa.field("x", pa.string()), pa.field("y", pa.struct([pa.field("z", pa.timestamp("ms", tz="UTC"))]))])
    assert specs_from_schema(schema) == specs
    assert specs_from_json(specs_to_json(specs)) == specs
    assert list(specs_from_json(specs_to_json(specs))) == list(specs)


def test_build_table_requires_ids_and_lengths():
    with pytest.raises(ValueError):
        build_table([b""], [{"a": 1}], {})
    with pytest.raises(ValueError):
        build_table([], [{"_id": 1}], {})
