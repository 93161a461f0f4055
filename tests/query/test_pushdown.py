"""Arrow pushdown: exact where promised, a superset otherwise, careful with nulls,
type brackets, NaN, int/double boundaries, dates, ObjectIds and _id keys."""
from __future__ import annotations

import datetime as dt

import bson
import pyarrow.compute as pc
import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex

from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.query.columns import ColumnSpec, build_table, infer_columns
from mongolake.query.filter import parse_filter
from mongolake.query.keystring import encode_key
from mongolake.query.matcher import compile_matcher
from mongolake.query.pushdown import pushdown

UTC = dt.timezone.utc
I64_MAX = 2 ** 63 - 1


def _table(docs, specs=None):
    raw = [bson.encode(d) for d in docs]
    dec = [bson.decode(r, CODEC_OPTIONS) for r in raw]
    specs = specs if specs is not None else infer_columns(dec, {})
    table, exact = build_table(raw, dec, specs)
    return dec, table, exact, specs


def check(docs, f, *, expect_exact=None, specs=None):
    """Pushdown never loses a matching row, and is exact when it says so."""
    dec, table, exact, specs = _table(docs, specs)
    tree = parse_filter(f)
    fn = compile_matcher(tree)
    expr, is_exact = pushdown(tree, specs, exact)
    kept = table if expr is None else table.filter(expr)
    kept_ids = set(kept.column("_key").to_pylist())
    wanted = {encode_key(d["_id"]) for d in dec if fn(d)}
    assert wanted <= kept_ids, (f, expr)
    if is_exact:
        assert kept_ids == wanted, (f, expr)
    if expect_exact is not None:
        assert is_exact is expect_exact, (f, expr)
    return expr, kept_ids


INTS = [{"_id": i, "a": v} for i, v in enumerate([-(2 ** 63), -3, -1, 0, 1, 2, 3, 2 ** 53 + 1, I64_MAX])] + [
    {"_id": 100}, {"_id": 101, "a": None}]


@pytest.mark.parametrize("f", [
    {"a": 2}, {"a": 2.0}, {"a": 2.5}, {"a": Decimal128("3")}, {"a": Decimal128("3.1")}, {"a": float(2 ** 53 + 1)},
    {"a": {"$gt": 1.5}}, {"a": {"$gte": 1.5}}, {"a": {"$lt": 1.5}}, {"a": {"$lte": 1.5}},
    {"a": {"$gt": -1.5}}, {"a": {"$lte": -2.5}}, {"a": {"$gt": 1e300}}, {"a": {"$lt": 1e300}},
    {"a": {"$gt": -1e300}}, {"a": {"$lt": -1e300}}, {"a": {"$gte": float("-inf")}}, {"a": {"$lte": float("inf")}},
    {"a": {"$gt": float("inf")}}, {"a": {"$gte": Decimal128("1E+30")}}, {"a": {"$lt": Decimal128("-1E+30")}},
    {"a": {"$gte": I64_MAX}}, {"a": {"$gt": I64_MAX}}, {"a": {"$lte": -(2 ** 63)}}, {"a": {"$lt": -(2 ** 63)}},
    {"a": {"$gt": 9.3e18}}, {"a": {"$lt": -9.3e18}}, {"a": {"$gte": Decimal128("2.5")}},
    {"a": float("nan")}, {"a": {"$gte": float("nan")}}, {"a": None}, {"a": {"$ne": None}}, {"a": {"$gt": None}},
    {"a": {"$in": [1, 2.5, 3.0, Int64(-1), None]}}, {"a": {"$in": list(range(-3, 20)) + [2.5, I64_MAX, None]}}, {"a": {"$nin": [1, 2]}}, {"a": {"$ne": 2}},
    {"a": {"$gt": MinKey()}}, {"a": {"$lt": MinKey()}}, {"a": {"$lte": MaxKey()}}, {"a": "2"},
    {"a": {"$mod": [2, 1]}}, {"a": {"$mod": [-3, -1]}}, {"a": {"$bitsAllSet": [0, 1]}}, {"a": {"$bitsAnyClear": 5}},
    {"a": {"$bitsAllClear": [63]}}, {"a": {"$bitsAnySet": [70]}}, {"a": {"$type": "int"}}, {"a": {"$type": "number"}},
    {"a": {"$type": "null"}}, {"a": {"$type": "string"}}, {"a": {"$exists": False}}, {"a": {"$exists": True}},
    {"a": {"$size": 0}}, {"a": {"$not": {"$gt": 1}}}, {"$nor": [{"a": 1}, {"a": 2}]}, {"$or": [{"a": 1}, {"b": 1}]},
])
def test_int_column(f):
    check(INTS, f)


DOUBLES = [{"_id": i, "d": v} for i, v in enumerate(
    [-0.0, 0.0, 0.1, 2.01, 2.0 ** 53, 2.0 ** 53 + 2, 1e308, float("inf"), float("-inf"), -2.5, 3.0])] + [{"_id": 99}]


@pytest.mark.parametrize("f", [
    {"d": 0}, {"d": -0.0}, {"d": {"$in": [0.0, 3]}}, {"d": {"$in": [float(i) for i in range(20)] + [0.1, -0.0]}}, {"d": {"$in": [-0.0]}}, {"d": 3}, {"d": Int64(3)},
    {"d": Decimal128("0.1")}, {"d": {"$gt": Decimal128("0.1")}}, {"d": {"$lte": Decimal128("0.1")}},
    {"d": {"$gte": Decimal128("2.01")}}, {"d": {"$lt": Decimal128("2.01")}}, {"d": 2 ** 53 + 1},
    {"d": {"$gt": 2 ** 53 + 1}}, {"d": {"$gte": 2 ** 53 + 1}}, {"d": {"$lt": 2 ** 53 + 1}}, {"d": {"$lte": 2 ** 53 + 3}},
    {"d": {"$gt": Decimal128("1E+400")}}, {"d": {"$lt": Decimal128("1E+400")}}, {"d": {"$gt": Decimal128("-1E+400")}},
    {"d": {"$gt": Decimal128("1E-400")}}, {"d": {"$lt": Decimal128("1E-400")}}, {"d": {"$lte": Decimal128("-1E-400")}},
    {"d": {"$gt": float("inf")}}, {"d": {"$gte": float("inf")}}, {"d": {"$lt": float("-inf")}},
    {"d": float("nan")}, {"d": {"$mod": [2, 1]}}, {"d": {"$type": "double"}}, {"d": {"$type": "number"}},
])
def test_double_column(f):
    check(DOUBLES, f, expect_exact=None)


def test_double_bounds_that_no_double_represents_stay_exact():
    for f in [{"d": {"$gte": Decimal128("2.01")}}, {"d": {"$lt": Decimal128("2.01")}}, {"d": {"$gt": 2 ** 53 + 1}}]:
        check(DOUBLES, f, expect_exact=True)


def test_nan_makes_a_double_column_inexact_but_still_correct():
    docs = [{"_id": 1, "d": float("nan")}, {"_id": 2, "d": 1.5}, {"_id": 3, "d": 5.0}]
    for f in [{"d": float("nan")}, {"d": {"$lt": 2}}, {"d": {"$ne": 1.5}}, {"d": {"$gte": float("nan")}}]:
        check(docs, f)


OID1, OID2 = ObjectId(b"\x01" * 12), ObjectId(b"\xf0" * 12)
MIXED = [
    {"_id": 1, "s": "apple", "t": dt.datetime(2020, 1, 1, tzinfo=UTC), "o": OID1, "b": True, "p": {"x": 1}},
    {"_id": 2, "s": "banana", "t": dt.datetime(1960, 1, 1, tzinfo=UTC), "o": OID2, "b": False, "p": {"x": 2}},
    {"_id": 3, "s": "apricot", "p": None},
    {"_id": 4, "s": None, "t": None, "o": None, "b": None, "p": {"y": 1}},
]


@pytest.mark.parametrize("f", [
    {"s": "apple"}, {"s": {"$gt": "apple"}}, {"s": {"$regex": "^ap"}}, {"s": {"$regex": "^ap", "$options": "i"}},
    {"s": {"$regex": "an"}}, {"s": {"$regex": "^a.*"}}, {"s": {"$regex": "^ab?r"}}, {"s": {"$in": ["banana", Regex("^apr")]}},
    {"s": {"$nin": ["apple", None]}}, {"s": {"$not": {"$regex": "^a"}}}, {"s": 5}, {"s": {"$lt": 5}},
    {"t": {"$gt": dt.datetime(2000, 1, 1)}}, {"t": {"$lt": dt.datetime(2000, 1, 1, tzinfo=UTC)}},
    {"t": dt.datetime(1960, 1, 1)}, {"t": {"$in": [dt.datetime(2020, 1, 1)]}},
    {"o": OID1}, {"o": {"$gt": OID1}}, {"o": {"$in": [OID2]}}, {"o": str(OID1)},
    {"b": True}, {"b": {"$ne": True}}, {"b": {"$in": [False]}}, {"b": 1},
    {"p.x": 2}, {"p.x": None}, {"p.x": {"$gte": 1}}, {"p.x": {"$exists": False}},
])
def test_other_kinds(f):
    check(MIXED, f)


def test_exactness_flags():
    _, _, exact, specs = _table(MIXED)
    assert pushdown(parse_filter({"s": {"$regex": "^ap"}}), specs, exact)[1] is True
    assert pushdown(parse_filter({"s": {"$regex": "^ab?r"}}), specs, exact)[1] is False
    assert pushdown(parse_filter({"s": {"$regex": "an"}}), specs, exact)[1] is False
    assert pushdown(parse_filter({"s": {"$exists": True}}), specs, exact) == (None, False)
    assert pushdown(parse_filter({"zzz": 1}), specs, exact) == (None, False)
    assert pushdown(parse_filter({"$expr": {"$eq": ["$s", "x"]}}), specs, exact) == (None, False)
    assert pushdown(parse_filter({}), specs, exact) == (None, True)
    expr, ok = pushdown(parse_filter({"$alwaysFalse": 1}), specs, exact)
    assert ok and expr.equals(pc.scalar(False))
    # an exact column loses exactness when the file says it is not exact
    expr, ok = pushdown(parse_filter({"s": "apple"}), specs, exact - {"s"})
    assert not ok and "is_null" in str(expr)
    # negation of an inexact operand cannot be pushed
    assert pushdown(parse_filter({"s": {"$not": {"$regex": "an"}}}), specs, exact) == (None, False)


def test_inexact_columns_keep_unfit_rows():
    docs = [{"_id": 1, "a": 1}, {"_id": 2, "a": "x"}, {"_id": 3, "a": [5, 1]}, {"_id": 4, "a": {"b": 1}},
            {"_id": 5, "a": 2.5}, {"_id": 6}]
    specs = {"a": ColumnSpec("a", "int")}
    dec, table, exact, specs = _table(docs, specs)
    assert "a" not in exact
    for f in [{"a": 1}, {"a": 5}, {"a": {"$gt": 2}}, {"a": "x"}, {"a": {"$size": 2}}, {"a": None},
              {"a": {"$in": [2.5, "x"]}}, {"a": {"$type": "string"}}, {"a.b": 1}, {"a": {"$ne": 1}}]:
        check(docs, f, expect_exact=False, specs=specs)


ID_DOCS = [{"_id": v} for v in [1, 2.5, Decimal128("3"), "a", "b", ObjectId(b"\x02" * 12), dt.datetime(2020, 1, 1),
                                 float("nan"), None, {"x": 1}, True, MinKey(), MaxKey()]]


@pytest.mark.parametrize("f", [
    {"_id": 1}, {"_id": 1.0}, {"_id": 3}, {"_id": {"$gt": 1}}, {"_id": {"$lt": 3}}, {"_id": {"$lte": "a"}},
    {"_id": {"$gte": float("nan")}}, {"_id": {"$lt": float("nan")}}, {"_id": None}, {"_id": {"$gt": None}},
    {"_id": {"$in": [2.5, "b", None]}}, {"_id": {"$in": [Regex("^a")]}}, {"_id": {"$regex": "b"}},
    {"_id": {"$nin": [1, "a"]}}, {"_id": {"$ne": "a"}}, {"_id": {"$gt": MinKey()}}, {"_id": {"$lt": MaxKey()}},
    {"_id": {"x": 1}}, {"_id": {"$exists": True}}, {"_id": {"$type": "string"}},
])
def test_id_through_key_column(f):
    check(ID_DOCS, f)


def test_id_comparisons_are_exact():
    for f in [{"_id": 1}, {"_id": {"$gt": 1}}, {"_id": {"$in": [1, "a"]}}, {"_id": {"$ne": 1}}]:
        check(ID_DOCS, f, expect_exact=True)
