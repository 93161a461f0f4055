"""Matcher semantics, table-driven from MongoDB's documented behaviour: equality,
comparisons, type bracketing, null/missing, arrays, dotted paths, positional."""
from __future__ import annotations

import datetime as dt

import bson
import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex

from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.query.filter import parse_filter
from mongolake.query.matcher import compile_matcher, match_position

UTC = dt.timezone.utc
NAN = float("nan")


def m(f, doc) -> bool:
    return compile_matcher(parse_filter(f))(doc)


# (filter, document, expected)
CASES = [
    # equality across numeric types, no cross-type equality
    ({"a": 5}, {"a": 5}, True),
    ({"a": 5}, {"a": 5.0}, True),
    ({"a": 5}, {"a": Int64(5)}, True),
    ({"a": 5}, {"a": Decimal128("5.00")}, True),
    ({"a": Decimal128("0.1")}, {"a": 0.1}, False),
    ({"a": 5}, {"a": "5"}, False),
    ({"a": 1}, {"a": True}, False),
    ({"a": True}, {"a": 1}, False),
    ({"a": 0}, {"a": -0.0}, True),
    ({"a": "x"}, {"a": "X"}, False),
    # arrays: element or whole-array equality, one level deep
    ({"a": 5}, {"a": [1, 5]}, True),
    ({"a": 5}, {"a": [[5]]}, False),
    ({"a": [5]}, {"a": [[5]]}, True),
    ({"a": [1, 2]}, {"a": [1, 2]}, True),
    ({"a": [1, 2]}, {"a": [2, 1]}, False),
    ({"a": [1, 2]}, {"a": [1, 2, 3]}, False),
    ({"a": [1, 2]}, {"a": [[1, 2], 3]}, True),
    ({"a": []}, {"a": []}, True),
    ({"a": []}, {"a": [[]]}, True),
    # embedded documents: exact field order and values
    ({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 2}}, True),
    ({"a": {"b": 1, "c": 2}}, {"a": {"c": 2, "b": 1}}, False),
    ({"a": {"b": 1}}, {"a": {"b": 1.0}}, True),
    ({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}}, False),
    ({"a": {"b": 1}}, {"a": [{"b": 1}]}, True),
    # dotted paths
    ({"a.b": 1}, {"a": {"b": 1}}, True),
    ({"a.b": 1}, {"a": [{"b": 1}, {"b": 2}]}, True),
    ({"a.b": 1}, {"a": [{"b": [0, 1]}]}, True),
    ({"a.b": 1}, {"a": [[{"b": 1}]]}, False),
    ({"a.b.c": 1}, {"a": [{"b": [{"c": 1}]}]}, True),
    ({"a.0": 1}, {"a": [1, 2]}, True),
    ({"a.1": 1}, {"a": [1, 2]}, False),
    ({"a.0": 1}, {"a": {"0": 1}}, True),
    ({"a.0": 1}, {"a": [[1]]}, False),
    ({"a.0": [1]}, {"a": [[1]]}, True),
    ({"a.0.b": 1}, {"a": [{"b": 1}]}, True),
    ({"a.0.b": 1}, {"a": [{"b": 2}, {"b": 1}]}, False),
    ({"a.0.b": 1}, {"a": [[{"b": 1}]]}, True),
    ({"a.0.b": 1}, {"a": [{"0": {"b": 1}}]}, True),
    ({"a.00": 1}, {"a": [1]}, False),
    ({"a.b": 1}, {"a": 1}, False),
    ({"a.b": 1}, {"a.b": 1}, False),
    # comparisons and type bracketing
    ({"a": {"$gt": 1}}, {"a": 2}, True),
    ({"a": {"$gt": 1}}, {"a": "2"}, False),
    ({"a": {"$gt": 1}}, {"a": [0, 5]}, True),
    ({"a": {"$lt": 1}}, {"a": None}, False),
    ({"a": {"$gt": 1}}, {}, False),
    ({"a": {"$gte": 1.5}}, {"a": Int64(2)}, True),
    ({"a": {"$lt": Decimal128("2.5")}}, {"a": 2}, True),
    ({"a": {"$gt": 2 ** 53}}, {"a": 2 ** 53 + 1}, True),
    ({"a": {"$gt": float(2 ** 53)}}, {"a": 2 ** 53 + 1}, True),
    ({"a": {"$gt": "a"}}, {"a": "b"}, True),
    ({"a": {"$gt": "a"}}, {"a": 5}, False),
    ({"a": {"$lt": "é"}}, {"a": "z"}, True),
    ({"a": {"$gt": dt.datetime(2020, 1, 1)}}, {"a": dt.datetime(2021, 1, 1, tzinfo=UTC)}, True),
    ({"a": {"$gt": dt.datetime(2020, 1, 1)}}, {"a": 5}, False),
    ({"a": {"$lt": ObjectId("ffffffffffffffffffffffff")}}, {"a": ObjectId("000000000000000000000000")}, True),
    ({"a": {"$gt": False}}, {"a": True}, True),
    ({"a": {"$gt": {"b": 1}}}, {"a": {"b": 2}}, True),
    ({"a": {"$gt": {"b": 1}}}, {"a": {"c": 0}}, True),
    ({"a": {"$gt": [1]}}, {"a": [2]}, True),
    ({"a": {"$lt": [1]}}, {"a": [[0]]}, True),
    # null and missing
    ({"a": None}, {}, True),
    ({"a": None}, {"a": None}, True),
    ({"a": None}, {"a": [1, None]}, True),
    ({"a": None}, {"a": []}, False),
    ({"a": None}, {"a": 0}, False),
    ({"a": {"$gte": None}}, {}, True),
    ({"a": {"$lte": None}}, {"a": None}, True),
    ({"a": {"$gt": None}}, {"a": None}, False),
    ({"a": {"$lt": None}}, {"a": 1}, False),
    ({"a": {"$ne": None}}, {}, False),
    ({"a": {"$ne": None}}, {"a": []}, True),
    ({"a.b": None}, {"a": 4}, True),
    ({"a.b": None}, {"a": [{"b": 3}, {}]}, True),
    ({"a.b": None}, {"a": [1, 2]}, False),
    ({"a.b": None}, {"a": []}, False),
    ({"a.b": None}, {"a": [None]}, False),
    ({"a.b": {"$ne": None}}, {"a": [1, 2]}, True),
    ({"a": {"$exists": True}}, {"a": None}, True),
    ({"a": {"$exists": False}}, {"a": None}, False),
    ({"a.b": {"$exists": True}}, {"a": [{"c": 1}, {"b": None}]}, True),
    ({"a.b": {"$exists": False}}, {"a": [1, 2]}, True),
    ({"a": {"$exists": True}}, {"a": []}, True),
    # MinKey / MaxKey
    ({"a": {"$gt": MinKey()}}, {}, True),
    ({"a": {"$gt": MinKey()}}, {"a": "x"}, True),
    ({"a": {"$gt": MinKey()}}, {"a": MinKey()}, False),
    ({"a": {"$gte": MinKey()}}, {"a": MinKey()}, True),
    ({"a": {"$lt": MaxKey()}}, {"a": None}, True),
    ({"a": {"$lt": MaxKey()}}, {"a": MaxKey()}, False),
    ({"a": MinKey()}, {"a": MinKey()}, True),
    ({"a": {"$lt": MinKey()}}, {"a": 1}, False),
    # NaN
    ({"a": NAN}, {"a": NAN}, True),
    ({"a": NAN}, {"a": Decimal128("NaN")}, True),
    ({"a": {"$gte": NAN}}, {"a": NAN}, True),
    ({"a": {"$gt": NAN}}, {"a": NAN}, False),
    ({"a": {"$lt": 5}}, {"a": NAN}, False),
    ({"a": {"$gt": 5}}, {"a": NAN}, False),
    ({"a": {"$lte": 5}}, {"a": Decimal128("NaN")}, False),
    ({"a": {"$ne": NAN}}, {"a": 1}, True),
    ({"a": {"$in": [NAN]}}, {"a": NAN}, True),
    ({"a": {"$gt": -float("inf")}}, {"a": NAN}, False),
    # $ne / $nin on arrays: no element may match
    ({"a": {"$ne": 1}}, {"a": [1, 2]}, False),
    ({"a": {"$ne": 3}}, {"a": [1, 2]}, True),
    ({"a": {"$ne": [1, 2]}}, {"a": [1, 2]}, False),
    ({"a": {"$nin": [1, 5]}}, {"a": [2, 3]}, True),
    ({"a": {"$nin": [1, 5]}}, {"a": [2, 5]}, False),
    ({"a": {"$nin": []}}, {}, True),
    # $in
    ({"a": {"$in": []}}, {"a": 1}, False),
    ({"a": {"$in": [1, "x"]}}, {"a": "x"}, True),
    ({"a": {"$in": [1, "x"]}}, {"a": 1.0}, True),
    ({"a": {"$in": [1]}}, {"a": True}, False),
    ({"a": {"$in": [True]}}, {"a": 1}, False),
    ({"a": {"$in": [[1, 2]]}}, {"a": [1, 2]}, True),
    ({"a": {"$in": [{"b": 1}]}}, {"a": [{"b": 1}]}, True),
    ({"a": {"$in": [None]}}, {}, True),
    ({"a": {"$in": [Regex("^x")]}}, {"a": ["y", "xz"]}, True),
    ({"a": {"$in": [Regex("^x")]}}, {"a": Regex("^x")}, True),
    ({"a": {"$in": [dt.datetime(2020, 1, 1)]}}, {"a": dt.datetime(2020, 1, 1, tzinfo=UTC)}, True),
    ({"a": {"$in": [ObjectId("5f0000000000000000000000")]}}, {"a": ObjectId("5f0000000000000000000000")}, True),
    ({"a": {"$in": [Decimal128("2")]}}, {"a": Int64(2)}, True),
    # $and/$or/$nor/$not
    ({"$and": [{"a": 1}, {"b": 2}]}, {"a": 1, "b": 2}, True),
    ({"$or": [{"a": 1}, {"b": 2}]}, {"b": 2}, True),
    ({"$nor": [{"a": 1}, {"b": 2}]}, {"b": 2}, False),
    ({"$nor": [{"a": 1}]}, {}, True),
    ({"a": {"$not": {"$gt": 5}}}, {"a": 3}, True),
    ({"a": {"$not": {"$gt": 5}}}, {}, True),
    ({"a": {"$not": {"$gt": 5}}}, {"a": "x"}, True),
    ({"a": {"$not": {"$gt": 5}}}, {"a": [3, 6]}, False),
    # range on arrays: each bound may be met by a different element
    ({"a": {"$gt": 1, "$lt": 3}}, {"a": [0, 5]}, True),
    ({"a": {"$gt": 1, "$lt": 3}}, {"a": 5}, False),
    ({"a": {"$gt": 1, "$lt": 3}}, {"a": 2}, True),
    ({"a": {"$gte": 1.5, "$lte": 2}}, {"a": Decimal128("2")}, True),
    ({"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}}, {"a": [0, 5]}, False),
    ({"a": {"$elemMatch": {"$gt": 1, "$lt": 3}}}, {"a": [0, 2]}, True),
    # dotted path fallbacks in the fast paths
    ({"a.b": {"$in": [1, 2]}}, {"a": [{"b": 2}]}, True),
    ({"a.b": {"$gt": 1}}, {"a": {"b": [0, 3]}}, True),
]


@pytest.mark.parametrize("f,doc,expected", CASES, ids=[f"{i}:{c[0]}"[:70] for i, c in enumerate(CASES)])
def test_matcher_cases(f, doc, expected):
    assert m(f, doc) is expected
    # the same after a BSON round trip (types as the server decodes them)
    decoded = bson.decode(bson.encode(doc), CODEC_OPTIONS)
    assert m(f, decoded) is expected


# The null semantics suite of MongoDB's jstests (null_query_semantics.js), without
# the documents holding `undefined` (which the Python driver decodes as null).
NULL_DOCS = {
    "a_empty_subobject": {"a": {}},
    "a_null": {"a": None},
    "a_number": {"a": 4},
    "a_subobject_b_not_null": {"a": {"b": "hi"}},
    "a_subobject_b_null": {"a": {"b": None}},
    "no_a": {},
    "a_double_array": {"a": [[]]},
    "a_empty_array": {"a": []},
    "a_object_array_no_b_nulls": {"a": [{"b": 1}, {"b": 3}, {"b": "string"}]},
    "a_object_array_some_b_nulls": {"a": [{"b": None}, {"b": 3}, {"b": None}]},
    "a_object_array_some_b_missing": {"a": [{"b": 3}, {}]},
    "a_value_array_all_nulls": {"a": [None, None]},
    "a_value_array_no_nulls": {"a": [1, "string", 4]},
    "a_value_array_with_null": {"a": [1, "string", None, 4]},
}
ALL = set(NULL_DOCS)
EQ_NULL = {"a_null", "a_value_array_all_nulls", "a_value_array_with_null", "no_a"}
DOTTED_EQ_NULL = {"a_empty_subobject", "a_null", "a_number", "a_subobject_b_null", "no_a",
                  "a_object_array_some_b_nulls", "a_object_array_some_b_missing"}
NULL_SUITE = [
    ({"a": {"$eq": None}}, EQ_NULL),
    ({"a": {"$ne": None}}, ALL - EQ_NULL),
    ({"a": {"$not": {"$gte": None}}}, ALL - EQ_NULL),
    ({"a": {"$in": [None, 75]}}, EQ_NULL),
    ({"$or": [{"a": None}, {"a": 75}]}, EQ_NULL),
    ({"a": {"$nin": [None, 75]}}, ALL - EQ_NULL),
    ({"a": {"$nin": [None, []]}}, ALL - EQ_NULL - {"a_double_array", "a_empty_array"}),
    ({"a": {"$nin": [None, Regex("^str.*")]}}, ALL - EQ_NULL - {"a_value_array_no_nulls"}),
    ({"a": {"$elemMatch": {"$eq": None}}}, {"a_value_array_all_nulls", "a_value_array_with_null"}),
    ({"a": {"$elemMatch": {"$ne": None}}}, {"a_double_array", "a_object_array_no_b_nulls",
                                            "a_object_array_some_b_nulls", "a_object_array_some_b_missing",
                                            "a_value_array_no_nulls", "a_value_array_with_null"}),
    ({"a.b": {"$eq": None}}, DOTTED_EQ_NULL),
    ({"a.b": {"$ne": None}}, ALL - DOTTED_EQ_NULL),
    ({"a.b": {"$in": [None, 75]}}, DOTTED_EQ_NULL),
    ({"$or": [{"a.b": None}, {"a.b": 75}]}, DOTTED_EQ_NULL),
    ({"a.b": {"$nin": [None, 75]}}, ALL - DOTTED_EQ_NULL),
    ({"a.b": {"$nin": [None, Regex("^str.*")]}}, ALL - DOTTED_EQ_NULL - {"a_object_array_no_b_nulls"}),
    ({"a.b": {"$elemMatch": {"$eq": None}}}, set()),
    ({"a": {"$elemMatch": {"b": {"$eq": None}}}}, {"a_double_array", "a_object_array_some_b_nulls",
                                                   "a_object_array_some_b_missing"}),
    ({"a": {"$elemMatch": {"b": {"$ne": None}}}}, {"a_object_array_no_b_nulls", "a_object_array_some_b_nulls",
                                                   "a_object_array_some_b_missing"}),
]


@pytest.mark.parametrize("f,expected", NULL_SUITE, ids=[str(c[0])[:60] for c in NULL_SUITE])
def test_mongodb_null_semantics_suite(f, expected):
    fn = compile_matcher(parse_filter(f))
    assert {name for name, doc in NULL_DOCS.items() if fn(doc)} == expected


POSITION_CASES = [
    ({"a": 2}, {"a": [1, 2, 3]}, 1),
    ({"a": {"$gt": 1}}, {"a": [0, 1, 5]}, 2),
    ({"a.b": 2}, {"a": [{"b": 1}, {"b": 2}]}, 1),
    ({"a.b": 2}, {"a": [{"b": [0, 2]}]}, 0),                 # the outermost array's index
    ({"a": {"$elemMatch": {"$gte": 2}}}, {"a": [1, 2]}, 1),
    ({"a": {"$elemMatch": {"b": 1}}}, {"a": [{"b": 0}, {"b": 1}]}, 1),
    ({"a": 5, "b": 1}, {"a": [4, 5], "b": [0, 1, 2]}, 1),     # $and: the last child's index
    ({"a": [1, 2]}, {"a": [1, 2]}, None),                     # whole-array match: no index
    ({"a": 1}, {"a": 1}, None),
    ({"$or": [{"a": 2}]}, {"a": [1, 2]}, None),
    ({"a.1": 2}, {"a": [1, 2]}, None),                        # explicit index, not implicit traversal
]


@pytest.mark.parametrize("f,doc,pos", POSITION_CASES, ids=[str(c[0])[:60] for c in POSITION_CASES])
def test_match_position(f, doc, pos):
    assert match_position(parse_filter(f), doc) == (True, pos)


def test_match_position_no_match():
    assert match_position(parse_filter({"a": 9}), {"a": [1]}) == (False, None)


def test_compiled_matcher_is_reusable_and_handles_subclassed_dicts():
    from collections import OrderedDict
    fn = compile_matcher(parse_filter({"a.b": {"$in": [1, 2]}, "c": 3}))
    assert fn({"a": {"b": 2}, "c": 3})
    assert not fn({"a": {"b": 3}, "c": 3})
    assert fn(OrderedDict(a=OrderedDict(b=1), c=3))
