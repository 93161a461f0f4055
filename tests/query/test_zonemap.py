"""Zone maps: conservative might/cannot-match answers from file and row-group statistics."""
from __future__ import annotations

import datetime as dt
import io

import bson
import pyarrow.parquet as pq
import pytest
from bson.decimal128 import Decimal128
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex

from mongolake.formats.base import DataFile
from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.query.columns import ColumnSpec, build_table
from mongolake.query.filter import parse_filter
from mongolake.query.keystring import encode_key
from mongolake.query.zonemap import ROWS_CANNOT_MATCH, ROWS_MIGHT_MATCH, Stats, file_stats, might_match, rowgroup_stats

UTC = dt.timezone.utc
SPECS = {"a": ColumnSpec("a", "int"), "d": ColumnSpec("d", "double"), "s": ColumnSpec("s", "string"),
         "t": ColumnSpec("t", "date"), "o": ColumnSpec("o", "objectId"), "b": ColumnSpec("b", "bool"),
         "p.x": ColumnSpec("p.x", "int")}
O1, O2 = ObjectId(b"\x01" * 12), ObjectId(b"\x05" * 12)

# 10 rows: a in [3, 7] with 2 nulls; s in ["b", "d"]; no nulls elsewhere
STATS = Stats(
    num_records=10,
    min_values={"a": 3, "d": -1.5, "s": "b", "t": dt.datetime(2020, 1, 1, tzinfo=UTC), "o": str(O1), "b": False,
                "p.x": 1, "_key": encode_key(10)},
    max_values={"a": 7, "d": 2.5, "s": "d", "t": dt.datetime(2020, 6, 1, tzinfo=UTC), "o": str(O2), "b": False,
                "p.x": 1, "_key": encode_key(20)},
    null_count={"a": 2, "d": 0, "s": 0, "t": 0, "o": 0, "b": 0, "p.x": 0, "_key": 0},
)


def mm(f, stats=STATS, specs=SPECS) -> bool:
    return might_match(parse_filter(f), stats, specs)


CASES = [
    ({"a": 5}, True), ({"a": 8}, False), ({"a": 2}, False), ({"a": 5.5}, True), ({"a": Decimal128("7")}, True),
    ({"a": "5"}, False), ({"a": [5]}, False), ({"a": {"x": 1}}, False), ({"a": float("nan")}, False),
    ({"a": {"$gt": 7}}, False), ({"a": {"$gte": 7}}, True), ({"a": {"$lt": 3}}, False), ({"a": {"$lte": 3}}, True),
    ({"a": {"$gt": 6.5}}, True), ({"a": {"$gt": "x"}}, False),
    ({"a": None}, True), ({"d": None}, False), ({"d": {"$gte": None}}, False), ({"a": {"$gt": None}}, False),
    ({"a": {"$gt": MinKey()}}, True), ({"a": {"$lt": MinKey()}}, False), ({"a": {"$lt": MaxKey()}}, True),
    ({"a": {"$gte": MaxKey()}}, False),
    ({"a": {"$in": [1, 9]}}, False), ({"a": {"$in": [1, 4]}}, True), ({"a": {"$in": [1, None]}}, True),
    ({"d": {"$in": [1, None]}}, True), ({"d": {"$in": [9, None]}}, False), ({"a": {"$in": []}}, False),
    ({"s": "c"}, True), ({"s": "e"}, False), ({"s": {"$regex": "^c"}}, True), ({"s": {"$regex": "^e"}}, False),
    ({"s": {"$regex": "^a"}}, False), ({"s": {"$regex": "^dz"}}, False), ({"s": {"$regex": "^d"}}, True),
    ({"s": {"$regex": "e"}}, True), ({"s": {"$regex": "^e", "$options": "i"}}, True),
    ({"s": {"$regex": "^e", "$options": "m"}}, True), ({"a": {"$regex": "^3"}}, False),
    ({"s": {"$in": [Regex("^z")]}}, False), ({"s": {"$in": [Regex("^c")]}}, True),
    ({"t": {"$gt": dt.datetime(2020, 7, 1)}}, False), ({"t": {"$lte": dt.datetime(2020, 1, 1)}}, True),
    ({"o": O1}, True), ({"o": ObjectId(b"\x09" * 12)}, False), ({"o": {"$lt": O1}}, False),
    ({"b": True}, False), ({"b": False}, True), ({"b": {"$ne": False}}, False),
    ({"p.x": 1}, True), ({"p.x": {"$ne": 1}}, False), ({"p.x": {"$nin": [1]}}, False),
    ({"a": {"$exists": True}}, True), ({"a": {"$exists": False}}, True), ({"d": {"$exists": False}}, False),
    ({"a": {"$ne": 5}}, True), ({"d": {"$ne": None}}, True), ({"a": {"$ne": None}}, True),
    ({"a": {"$type": "number"}}, True), ({"a": {"$type": "string"}}, False), ({"a": {"$type": "null"}}, True),
    ({"d": {"$type": "null"}}, False), ({"d": {"$not": {"$type": "number"}}}, False),
    ({"a": {"$not": {"$type": "number"}}}, True),
    ({"a": {"$size": 1}}, False), ({"a": {"$elemMatch": {"$gt": 1}}}, False), ({"a": {"$all": [5]}}, True),
    ({"a": {"$mod": [2, 0]}}, True), ({"s": {"$mod": [2, 0]}}, False), ({"s": {"$bitsAllSet": 1}}, False),
    ({"a": 5, "s": "z"}, False), ({"$or": [{"a": 100}, {"s": "z"}]}, False), ({"$or": [{"a": 100}, {"s": "c"}]}, True),
    ({"$nor": [{"d": {"$gte": -2}}]}, False), ({"$nor": [{"a": {"$gte": 3}}]}, True),
    ({"$and": [{"a": 5}, {"$expr": {"$eq": [1, 1]}}]}, True),
    ({"unknown": 5}, True), ({"a.b": 5}, True), ({"$alwaysFalse": 1}, False),
    ({"_id": 15}, True), ({"_id": 25}, False), ({"_id": "15"}, False), ({"_id": {"$gt": 20}}, False),
    ({"_id": {"$gte": 20}}, True), ({"_id": {"$lt": 10}}, False), ({"_id": {"$in": [1, 2, 12]}}, True),
    ({"_id": {"$in": [1, 2]}}, False), ({"_id": {"$exists": False}}, False), ({"_id": {"$regex": "x"}}, False),
    ({"_id": {"$ne": 15}}, True),
]


@pytest.mark.parametrize("f,expected", CASES, ids=[str(c[0])[:60] for c in CASES])
def test_zone_map_cases(f, expected):
    assert mm(f) is expected


def test_missing_or_inexact_statistics_never_prune():
    no_stats = Stats(num_records=10)
    assert mm({"a": 100}, no_stats) is ROWS_MIGHT_MATCH
    # 'a' has min/max but no null count -> not exact -> might match
    inexact = Stats(10, {"a": 3}, {"a": 7}, {})
    assert mm({"a": 100}, inexact) is ROWS_MIGHT_MATCH
    assert mm({"a": {"$size": 1}}, inexact) is ROWS_MIGHT_MATCH
    # exact but no min/max (e.g. all values null) -> only null reasoning
    nulls_only = Stats(10, {}, {}, {"a": 10})
    assert mm({"a": 5}, nulls_only) is ROWS_CANNOT_MATCH
    assert mm({"a": None}, nulls_only) is ROWS_MIGHT_MATCH
    assert mm({"a": {"$exists": True}}, nulls_only) is ROWS_MIGHT_MATCH
    assert mm({"a": 5}, Stats(0)) is ROWS_CANNOT_MATCH


def test_data_file_statistics_work_directly():
    df = DataFile(path="x.parquet", size=1, num_records=3, min_values={"a": 1}, max_values={"a": 2},
                  null_count={"a": 0})
    assert might_match(parse_filter({"a": 2}), df, SPECS)
    assert not might_match(parse_filter({"a": 3}), df, SPECS)


def _parquet(docs, specs, rg):
    raw = [bson.encode(d) for d in docs]
    dec = [bson.decode(r, CODEC_OPTIONS) for r in raw]
    table, exact = build_table(raw, dec, specs)
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=rg)
    return pq.ParquetFile(io.BytesIO(buf.getvalue())).metadata, exact


def test_rowgroup_and_file_stats_from_parquet():
    docs = [{"_id": i, "a": i, "s": f"s{i}", "t": dt.datetime(2020, 1, 1 + i), "o": ObjectId(bytes([i] * 12)),
             "p": {"x": i * 10}, "b": [i]} for i in range(6)]
    specs = {"a": ColumnSpec("a", "int"), "s": ColumnSpec("s", "string"), "t": ColumnSpec("t", "date"),
             "o": ColumnSpec("o", "objectId"), "p.x": ColumnSpec("p.x", "int"), "b": ColumnSpec("b", "int")}
    md, exact = _parquet(docs, specs, 2)
    assert "b" not in exact
    rg = rowgroup_stats(md, 1, exact, specs)
    assert rg.num_records == 2
    assert (rg.min_values["a"], rg.max_values["a"]) == (2, 3)
    assert (rg.min_values["p.x"], rg.max_values["p.x"]) == (20, 30)
    assert rg.min_values["s"] == "s2" and rg.min_values["o"] == str(ObjectId(bytes([2] * 12)))
    assert rg.min_values["t"] == dt.datetime(2020, 1, 3, tzinfo=UTC)
    assert rg.min_values["_key"] == encode_key(2)
    assert "b" not in rg.null_count and rg.null_count["a"] == 0
    fs = file_stats(md, exact, specs)
    assert fs.num_records == 6 and (fs.min_values["a"], fs.max_values["a"]) == (0, 5)
    assert not might_match(parse_filter({"t": {"$lt": dt.datetime(2019, 1, 1)}}), fs, specs)
    assert [might_match(parse_filter({"p.x": 40}), rowgroup_stats(md, i, exact, specs), specs)
            for i in range(3)] == [False, False, True]
    assert [might_match(parse_filter({"_id": {"$gte": 3}}), rowgroup_stats(md, i, exact, specs), specs)
            for i in range(3)] == [False, True, True]
