"""Arithmetic, comparison, boolean and conditional expressions."""
from __future__ import annotations

import datetime as dt
import math

from bson.decimal128 import Decimal128
from bson.int64 import Int64

from mongolake.query.bsonorder import MISSING
from mongolake.query.expressions import type_name

from tests.query._exprutil import ev, fails

UTC = dt.timezone.utc


def test_add_types_and_widening():
    assert ev({"$add": [1, 2]}) == 3 and type_name(ev({"$add": [1, 2]})) == "int"
    r = ev({"$add": [2 ** 31 - 1, 1]})
    assert r == 2 ** 31 and type_name(r) == "long"
    r = ev({"$add": [Int64(1), 1]})
    assert type_name(r) == "long"
    r = ev({"$add": [Int64(2 ** 63 - 1), 1]})
    assert isinstance(r, float)
    assert ev({"$add": [1, 2.5]}) == 3.5
    assert ev({"$add": [Decimal128("1.1"), 1]}) == Decimal128("2.1")
    assert ev({"$add": [1, None]}) is None
    assert ev({"$add": ["$x", 1]}, {}) is None
    e = fails({"$add": ["$s", 1]}, 14, {"s": "a"})
    assert e.message == "$add only supports numeric or date types, not string"


def test_add_dates():
    d = dt.datetime(2014, 1, 1, 8, tzinfo=UTC)
    assert ev({"$add": ["$date", 3 * 24 * 60 * 60000]}, {"date": d}) == dt.datetime(2014, 1, 4, 8, tzinfo=UTC)
    assert ev({"$add": ["$date", 1.6]}, {"date": d}) == d + dt.timedelta(milliseconds=2)
    fails({"$add": ["$date", "$date"]}, 16612, {"date": d})


def test_subtract():
    d1 = dt.datetime(2014, 3, 1, 8, tzinfo=UTC)
    d2 = dt.datetime(2014, 3, 1, 9, tzinfo=UTC)
    assert ev({"$subtract": [5, 3]}) == 2
    assert ev({"$subtract": ["$b", "$a"]}, {"a": d1, "b": d2}) == 3600000
    assert type_name(ev({"$subtract": ["$b", "$a"]}, {"a": d1, "b": d2})) == "long"
    assert ev({"$subtract": ["$a", 5 * 60 * 1000]}, {"a": d1}) == dt.datetime(2014, 3, 1, 7, 55, tzinfo=UTC)
    assert ev({"$subtract": [None, 1]}) is None
    fails({"$subtract": [1, "$a"]}, 16556, {"a": d1})
    fails({"$subtract": [1]}, 16020)


def test_multiply_divide_mod():
    assert ev({"$multiply": [2, 3, 4]}) == 24
    assert ev({"$multiply": ["$price", "$quantity"]}, {"price": 10, "quantity": 2}) == 20
    assert ev({"$multiply": [Decimal128("1.5"), 2]}) == Decimal128("3.0")
    fails({"$multiply": [2, "x"]}, 16555)
    assert ev({"$divide": [9, 2]}) == 4.5
    assert isinstance(ev({"$divide": [8, 2]}), float)
    assert ev({"$divide": [Decimal128("1"), 4]}) == Decimal128("0.25")
    e = fails({"$divide": ["$a", 0]}, 2, {"a": 1})
    assert e.message == "can't $divide by zero"
    fails({"$divide": ["a", 1]}, 16609)
    assert ev({"$mod": [10, 3]}) == 1
    assert ev({"$mod": [-10, 3]}) == -1
    assert ev({"$mod": [10.5, 3]}) == 1.5
    fails({"$mod": ["$a", 0]}, 16610, {"a": 4})


def test_unary_math():
    assert ev({"$abs": -5}) == 5
    assert ev({"$abs": [-2.5]}) == 2.5
    assert ev({"$abs": None}) is None
    fails({"$abs": "x"}, 28765)
    assert ev({"$ceil": 7.80}) == 8.0 and ev({"$ceil": -2.8}) == -2.0
    assert ev({"$floor": -2.8}) == -3.0 and ev({"$floor": 5}) == 5
    assert ev({"$sqrt": 25}) == 5.0
    fails({"$sqrt": -1}, 28714)
    assert ev({"$exp": 0}) == 1.0
    assert ev({"$ln": 1}) == 0.0
    fails({"$ln": -1}, 28766)
    assert ev({"$log10": 100}) == 2.0
    fails({"$log10": 0}, 28761)
    assert ev({"$log": [100, 10]}) == 2.0
    fails({"$log": [100, 1]}, 28759)
    assert ev({"$pow": [5, 2]}) == 25 and type_name(ev({"$pow": [5, 2]})) == "int"
    assert ev({"$pow": [2, -1]}) == 0.5
    assert ev({"$pow": [2, 40]}) == 2 ** 40
    fails({"$pow": [0, -1]}, 28764)
    assert ev({"$sin": 0}) == 0.0
    fails({"$acos": 2}, 50989)
    assert math.isclose(ev({"$degreesToRadians": 180}), math.pi)


def test_round_and_trunc():
    # MongoDB documentation examples
    assert ev({"$round": [19.25, 1]}) == 19.2
    assert ev({"$round": [28.73, 1]}) == 28.7
    assert ev({"$round": [34.32, 1]}) == 34.3
    assert ev({"$round": [-45.39, 1]}) == -45.4
    assert ev({"$round": [19.25, -1]}) == 20.0
    assert ev({"$round": [1234, -2]}) == 1200
    assert ev({"$round": [2.5, 0]}) == 2.0 and ev({"$round": [3.5]}) == 4.0
    assert ev({"$trunc": [19.25, 1]}) == 19.2
    assert ev({"$trunc": [-45.39, 1]}) == -45.3
    assert ev({"$trunc": [19.25, -1]}) == 10.0
    assert ev({"$round": [Decimal128("1.25"), 1]}) == Decimal128("1.2")
    fails({"$round": [1.5, 101]}, 51083)


def test_bitwise():
    assert ev({"$bitAnd": [12, 10]}) == 8
    assert ev({"$bitOr": [12, 10]}) == 14
    assert ev({"$bitXor": [12, 10]}) == 6
    assert ev({"$bitNot": 0}) == -1
    fails({"$bitAnd": [1.5, 1]}, 14)


def test_comparisons_use_bson_order():
    assert ev({"$cmp": [1, 2]}) == -1 and ev({"$cmp": ["b", "a"]}) == 1
    assert ev({"$eq": [1, 1.0]}) is True
    assert ev({"$lt": [5, "a"]}) is True  # numbers sort before strings
    assert ev({"$gt": [{"a": 1}, "z"]}) is True
    assert ev({"$eq": ["$missing", None]}) is False  # missing sorts below null
    assert ev({"$lt": ["$missing", None]}) is True
    assert ev({"$ne": [[1, 2], [1, 2]]}) is False
    assert ev({"$gte": ["$qty", 250]}, {"qty": 250}) is True
    assert ev({"$lte": [Decimal128("1"), 1]}) is True


def test_boolean():
    assert ev({"$and": [1, "green"]}) is True
    assert ev({"$and": []}) is True
    assert ev({"$and": [None, True]}) is False
    assert ev({"$and": [0, True]}) is False
    assert ev({"$or": [True, False]}) is True
    assert ev({"$or": [[False], False]}) is True
    assert ev({"$or": [None, 0, "$missing"]}) is False
    assert ev({"$not": [[False]]}) is False
    assert ev({"$not": [None]}) is True
    fails({"$not": [1, 2]}, 16020)


def test_cond_ifnull_switch():
    assert ev({"$cond": {"if": {"$gte": ["$qty", 250]}, "then": 30, "else": 20}}, {"qty": 300}) == 30
    assert ev({"$cond": [{"$gte": ["$qty", 250]}, 30, 20]}, {"qty": 100}) == 20
    fails({"$cond": {"if": True, "then": 1}}, 17082)
    fails({"$cond": {"if": True, "then": 1, "else": 2, "x": 1}}, 17083)
    assert ev({"$ifNull": ["$description", "Unspecified"]}, {}) == "Unspecified"
    assert ev({"$ifNull": ["$description", "Unspecified"]}, {"description": "x"}) == "x"
    assert ev({"$ifNull": ["$a", "$b", "c"]}, {"b": None}) == "c"
    assert ev({"$ifNull": ["$a", "$b"]}, {}) is MISSING
    sw = {"$switch": {"branches": [{"case": {"$gte": ["$s", 90]}, "then": "A"},
                                   {"case": {"$gte": ["$s", 80]}, "then": "B"}],
                      "default": "F"}}
    assert [ev(sw, {"s": s}) for s in (95, 85, 10)] == ["A", "B", "F"]
    fails({"$switch": {"branches": [{"case": False, "then": 1}]}}, 40066)
    fails({"$switch": {"branches": []}}, 40068)
    fails({"$switch": {"branches": [{"case": 1}]}}, 40065)
