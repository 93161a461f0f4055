"""Unit tests: Arrow <-> Delta schema, evolution rules, statistics encoding."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pyarrow as pa
import pytest

from mongolake.formats.base import TableError
from mongolake.formats.delta.schema import (SchemaEvolutionError, arrow_to_delta, check_evolution, merge, normalize,
                                            schema_from_json, schema_to_json)
from mongolake.formats.delta.stats import decode_stats, encode_stats
from mongolake.formats.stats import compute_stats, truncate_max_bytes, truncate_max_str

from .conftest import SCHEMA, make_batch


def test_schema_round_trip_with_structs_lists_maps():
    s = pa.schema([
        ("a", pa.int64()), ("b", pa.int32()), ("c", pa.int16()), ("d", pa.int8()), ("e", pa.float32()),
        ("f", pa.float64()), ("g", pa.bool_()), ("h", pa.string()), ("i", pa.binary()), ("j", pa.date32()),
        ("k", pa.timestamp("us", tz="UTC")), ("l", pa.decimal128(10, 2)),
        ("m", pa.struct([("x", pa.int64()), ("y", pa.struct([("z", pa.string())]))])),
        ("n", pa.list_(pa.int64())), ("o", pa.map_(pa.string(), pa.float64())),
    ])
    text = schema_to_json(s)
    doc = json.loads(text)
    assert doc["type"] == "struct"
    types = {f["name"]: f["type"] for f in doc["fields"]}
    assert types["a"] == "long" and types["b"] == "integer" and types["c"] == "short" and types["d"] == "byte"
    assert types["k"] == "timestamp" and types["l"] == "decimal(10,2)" and types["j"] == "date"
    assert types["m"]["fields"][1]["type"]["fields"][0] == {"name": "z", "type": "string", "nullable": True,
                                                            "metadata": {}}
    assert types["n"] == {"type": "array", "elementType": "long", "containsNull": True}
    assert types["o"]["type"] == "map" and types["o"]["valueType"] == "double"
    back = schema_from_json(text)
    assert back.names == s.names
    assert back.field("m").type == s.field("m").type
    assert back.field("k").type == pa.timestamp("us", tz="UTC")


def test_schema_normalises_and_refuses():
    s = normalize(pa.schema([("t", pa.timestamp("ns")), ("s", pa.large_string()), ("u", pa.uint16()),
                             ("d", pa.dictionary(pa.int32(), pa.string()))]))
    assert s.field("t").type == pa.timestamp("us", tz="UTC")
    assert s.field("s").type == pa.string() and s.field("u").type == pa.int32() and s.field("d").type == pa.string()
    for bad in (pa.uint64(), pa.null(), pa.time64("us"), pa.duration("s")):
        with pytest.raises(TableError):
            arrow_to_delta(pa.schema([("x", bad)]))


def test_evolution_allows_additions_only():
    old = pa.schema([("a", pa.int64()), ("p", pa.struct([("x", pa.int32())]))])
    check_evolution(old, pa.schema([("a", pa.int64()), ("p", pa.struct([("x", pa.int32()), ("y", pa.string())])),
                                    ("b", pa.string())]))
    with pytest.raises(SchemaEvolutionError, match="cannot change type"):
        check_evolution(old, pa.schema([("a", pa.string()), ("p", pa.struct([("x", pa.int32())]))]))
    with pytest.raises(SchemaEvolutionError, match="p.x"):
        check_evolution(old, pa.schema([("a", pa.int64()), ("p", pa.struct([("x", pa.int64())]))]))
    with pytest.raises(SchemaEvolutionError, match="dropped"):
        check_evolution(old, pa.schema([("a", pa.int64())]))
    with pytest.raises(SchemaEvolutionError, match="nullable"):
        check_evolution(old, old.append(pa.field("c", pa.int64(), nullable=False)))
    assert issubclass(SchemaEvolutionError, TableError)


def test_merge_unions_concurrent_additions_and_detects_type_clash():
    base = arrow_to_delta(pa.schema([("a", pa.int64()), ("p", pa.struct([("x", pa.int32())]))]))
    ours = arrow_to_delta(pa.schema([("a", pa.int64()), ("p", pa.struct([("x", pa.int32()), ("y", pa.string())]))]))
    theirs = arrow_to_delta(pa.schema([("a", pa.int64()), ("p", pa.struct([("x", pa.int32()), ("z", pa.bool_())])),
                                       ("b", pa.float64())]))
    merged = merge(ours, theirs)
    check_evolution(base, merged)
    names = [f["name"] for f in merged["fields"]]
    assert names == ["a", "p", "b"]
    assert [f["name"] for f in merged["fields"][1]["type"]["fields"]] == ["x", "y", "z"]
    with pytest.raises(SchemaEvolutionError):
        merge(arrow_to_delta(pa.schema([("b", pa.string())])), theirs)


def test_truncation_keeps_bounds():
    assert truncate_max_str("abc", 5) == "abc"
    assert truncate_max_str("abcdef", 3) == "abd"
    assert truncate_max_str("ab\U0010ffffzz", 3) == "ac"
    assert truncate_max_str("\U0010ffff" * 4, 2) is None
    assert truncate_max_str("a\ud7ffx", 2) == "a\ue000"
    assert truncate_max_bytes(b"\x01\xff\xff\x00", 3) == b"\x02"
    assert truncate_max_bytes(b"\xff\xff\xff", 2) is None
    for s in ["zzzzzzzzzz", "a" * 40 + "b", "héllo wörld" * 5]:
        hi = truncate_max_str(s, 8)
        assert hi >= s and len(hi) <= 8


def test_compute_stats_leaves_nulls_and_selection():
    t = make_batch(0, 50)
    mins, maxs, nulls = compute_stats(t, ["_key", "age", "profile", "seen", "score"])
    assert nulls == {"_key": 0, "age": 8, "score": 0, "profile.level": 10, "profile.name": 10, "seen": 0}
    assert mins["_key"] == b"\x10\x00\x00\x00\x00" and maxs["_key"] == b"\x10\x00\x00\x00\x31"
    assert mins["age"] == 1 and maxs["age"] == 48          # 49 % 7 == 0 -> null
    assert mins["profile.level"] == 1 and maxs["profile.level"] == 9
    assert mins["seen"].tzinfo is not None and maxs["seen"].microsecond == 123
    assert "_doc" not in nulls and "_id" not in nulls            # not selected
    all_mins, _, all_nulls = compute_stats(t)
    assert set(all_nulls) == {"_id", "_key", "_doc", "age", "score", "profile.level", "profile.name", "seen"}
    assert all_mins["_id"] == "id000000"


def test_compute_stats_nan_inf_all_null_long_strings():
    t = pa.table({"f": [1.0, float("nan")], "g": [float("-inf"), 2.0], "n": pa.array([None, None], pa.int64()),
                  "s": ["b" * 40, "a" * 40], "bin": [b"\xff" * 200, b"\x00"]})
    mins, maxs, nulls = compute_stats(t, string_prefix=10, binary_prefix=16)
    assert "f" not in mins and "f" not in maxs and nulls["f"] == 0
    assert "g" not in mins and maxs["g"] == 2.0
    assert nulls["n"] == 2 and "n" not in mins
    assert mins["s"] == "a" * 10 and maxs["s"] == "b" * 9 + "c"
    assert mins["bin"] == b"\x00" and "bin" not in maxs        # 0xff… cannot be rounded up


def test_encode_decode_round_trip_nested_binary_timestamps():
    schema = pa.schema(list(SCHEMA) + [pa.field("day", pa.date32())])
    mins = {"_key": b"\x01\x02", "age": 3, "profile.level": 2, "profile.name": "ann",
            "seen": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc), "day": date(2024, 1, 2),
            "score": 1.5}
    maxs = dict(mins, _key=b"\xff", age=9, score=2.5)
    nulls = {"_key": 0, "age": 1, "profile.level": 4, "profile.name": 4, "seen": 0, "day": 0, "score": 0}
    text, tags = encode_stats(10, mins, maxs, nulls, schema)
    doc = json.loads(text)
    assert doc["numRecords"] == 10
    assert doc["minValues"]["profile"] == {"level": 2, "name": "ann"}
    assert doc["minValues"]["seen"] == "2024-05-06T07:08:09.123456Z"
    assert "_key" not in doc["minValues"] and doc["nullCount"]["_key"] == 0
    assert tags == {"mongolake.min._key": "0102", "mongolake.max._key": "ff"}
    num, m2, x2, n2, user = decode_stats(text, {**tags, "owner": "me"}, schema)
    assert (num, m2, x2, n2, user) == (10, mins, maxs, nulls, {"owner": "me"})


def test_decode_widens_millisecond_max_timestamps():
    schema = pa.schema([("t", pa.timestamp("us", tz="UTC"))])
    stats = {"numRecords": 1, "minValues": {"t": "2021-01-01T01:02:03.123Z"},
             "maxValues": {"t": "2022-01-01T00:00:00Z"}, "nullCount": {"t": 0}}
    _, mins, maxs, _, _ = decode_stats(json.dumps(stats), None, schema)
    assert mins["t"] == datetime(2021, 1, 1, 1, 2, 3, 123000, tzinfo=timezone.utc)
    assert maxs["t"] == datetime(2022, 1, 1, 0, 0, 0, 999, tzinfo=timezone.utc)


def test_decode_tolerates_garbage():
    schema = pa.schema([("a", pa.int64()), ("s", pa.string())])
    num, mins, maxs, nulls, _ = decode_stats('{"numRecords": 3, "minValues": {"a": "x", "s": 5}, '
                                             '"maxValues": {"a": 2.0}, "nullCount": {"a": true, "s": 1}}',
                                             {"mongolake.min.a": "zz"}, schema)
    assert num == 3 and mins == {} and maxs == {"a": 2} and nulls == {"s": 1}
    assert decode_stats(None, None, schema)[0] is None
    assert decode_stats("not json", None, schema)[0] is None
