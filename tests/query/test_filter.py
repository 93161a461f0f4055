"""Parsing filters: tree shapes and MongoDB's syntax errors (codes and messages)."""
from __future__ import annotations

import re

import pytest
from bson.binary import Binary
from bson.regex import Regex

from mongolake.errors import MongoError
from mongolake.query.filter import (
    AlwaysFalse, AlwaysTrue, And, Bits, Compare, ElemMatchObject, ElemMatchValue, Exists, In, JsonSchema,
    Mod, Nor, Not, Or, RegexMatch, Size, TypeIs, parse_filter, referenced_paths,
)


def test_empty_filter_is_always_true():
    assert parse_filter({}) == AlwaysTrue()


def test_equality_and_implicit_and():
    assert parse_filter({"a": 5}) == Compare("a", "$eq", 5)
    t = parse_filter({"a": 5, "b.c": "x"})
    assert t == And((Compare("a", "$eq", 5), Compare("b.c", "$eq", "x")))
    assert t.children[1].parts == ("b", "c")


def test_operator_documents():
    t = parse_filter({"a": {"$gt": 1, "$lte": 9}})
    assert t == And((Compare("a", "$gt", 1), Compare("a", "$lte", 9)))
    assert parse_filter({"a": {"$ne": 1}}) == Not(Compare("a", "$eq", 1))
    assert parse_filter({"a": {"$nin": [1]}}) == Not(In("a", values=(1,)))
    assert parse_filter({"a": {"$exists": 0}}) == Not(Exists("a"))
    assert parse_filter({"a": {"$exists": "yes"}}) == Exists("a")
    assert parse_filter({"a": {"$not": {"$gt": 1}}}) == Not(Compare("a", "$gt", 1))
    assert parse_filter({"a": {"$size": 2.0}}) == Size("a", size=2)
    assert parse_filter({"a": {"$mod": [4.7, -1.2]}}) == Mod("a", divisor=4, remainder=-1)


def test_object_values_that_are_not_operator_documents():
    # first key without '$' -> literal equality, even with $ keys after it
    assert parse_filter({"a": {"b": 1, "$c": 2}}) == Compare("a", "$eq", {"b": 1, "$c": 2})
    # DBRef-shaped documents are values, not operators
    ref = {"$ref": "coll", "$id": 1}
    assert parse_filter({"a": ref}) == Compare("a", "$eq", ref)
    assert parse_filter({"a": {"$in": [ref]}}) == In("a", values=(ref,))
    assert parse_filter({"a": {}}) == Compare("a", "$eq", {})


def test_regex_forms():
    t = parse_filter({"a": Regex("^x", "i")})
    assert isinstance(t, RegexMatch) and (t.pattern, t.options) == ("^x", "i")
    t = parse_filter({"a": re.compile("^x", re.I)})
    assert (t.pattern, t.options) == ("^x", "i")
    t = parse_filter({"a": {"$options": "m", "$regex": "^x"}})
    assert (t.pattern, t.options) == ("^x", "m")
    t = parse_filter({"a": {"$regex": Regex("y", "s")}})
    assert (t.pattern, t.options) == ("y", "s")
    t = parse_filter({"a": {"$in": [1, Regex("^b")]}})
    assert t.values == (1,) and t.regex_sources == (("^b", ""),)
    assert parse_filter({"a": {"$eq": Regex("x")}}) == Compare("a", "$eq", Regex("x"))
    assert parse_filter({"a": {"$not": Regex("x")}}).child.pattern == "x"


def test_logical_operators():
    t = parse_filter({"$or": [{"a": 1}, {"b": 2}], "$nor": [{"c": 3}], "$comment": "hi"})
    assert t == And((Or((Compare("a", "$eq", 1), Compare("b", "$eq", 2))), Nor((Compare("c", "$eq", 3),))))
    assert parse_filter({"$and": [{}]}) == And((And(()),))
    assert parse_filter({"$alwaysFalse": 1}) == AlwaysFalse()


def test_all_and_elem_match_shapes():
    assert parse_filter({"a": {"$all": []}}) == AlwaysFalse()
    assert parse_filter({"a": {"$all": [1, 2]}}) == And((Compare("a", "$eq", 1), Compare("a", "$eq", 2)))
    t = parse_filter({"a": {"$all": [{"$elemMatch": {"b": 1}}, {"$elemMatch": {"$gt": 2}}]}})
    assert isinstance(t.children[0], ElemMatchObject) and isinstance(t.children[1], ElemMatchValue)
    t = parse_filter({"a": {"$elemMatch": {"$gt": 1, "$lt": 5}}})
    assert t == ElemMatchValue("a", predicates=(Compare("", "$gt", 1), Compare("", "$lt", 5)))
    t = parse_filter({"a": {"$elemMatch": {"$or": [{"b": 1}]}}})     # pathless first key -> object form
    assert isinstance(t, ElemMatchObject)


def test_type_and_bits():
    assert parse_filter({"a": {"$type": "number"}}) == TypeIs("a", codes=frozenset({1, 16, 18, 19}))
    assert parse_filter({"a": {"$type": ["string", 10, 2.0]}}).codes == frozenset({2, 10})
    assert parse_filter({"a": {"$bitsAllSet": [0, 3]}}) == Bits("a", op="$bitsAllSet", mask=9)
    assert parse_filter({"a": {"$bitsAnySet": Binary(b"\x01\x02")}}).mask == 0x0201
    assert parse_filter({"a": {"$bitsAllClear": [100000]}}).high_positions == (100000,)


def test_json_schema_node_and_paths():
    t = parse_filter({"$jsonSchema": {"required": ["a"]}, "b.c": 1})
    assert isinstance(t.children[0], JsonSchema)
    assert referenced_paths(t) == {"$ROOT", "b.c"}


ERRORS = [
    ({"$foo": 1}, 2, "unknown top level operator: $foo"),
    ({"a": {"$foo": 1}}, 2, "unknown operator: $foo"),
    ({"a": {"$gt": 1, "b": 2}}, 2, "unknown operator: b"),
    ({"a": {"$in": 1}}, 2, "$in needs an array"),
    ({"a": {"$nin": {"x": 1}}}, 2, "$nin needs an array"),
    ({"a": {"$in": [{"$gt": 1}]}}, 2, "cannot nest $ under $in"),
    ({"a": {"$regex": 5}}, 2, "$regex has to be a string"),
    ({"a": {"$options": "i"}}, 2, "$options needs a $regex"),
    ({"a": {"$regex": "x", "$options": 5}}, 2, "$options has to be a string"),
    ({"a": {"$regex": Regex("x", "i"), "$options": "m"}}, 51075, "options set in both $regex and $options"),
    ({"a": {"$options": "m", "$regex": Regex("x", "i")}}, 51074, "options set in both $regex and $options"),
    ({"a": {"$regex": "x", "$options": "z"}}, 51108, "invalid flag in regex options: z"),
    ({"a": {"$regex": "("}}, 51091, "Regular expression is invalid"),
    ({"$and": []}, 2, "$and/$or/$nor must be a nonempty array"),
    ({"$or": {}}, 2, "$or must be an array"),
    ({"$nor": [1]}, 2, "$or/$and/$nor entries need to be full objects"),
    ({"a": {"$size": "1"}}, 2, 'Failed to parse $size. Expected a number in: $size: "1"'),
    ({"a": {"$size": 1.5}}, 2, "Failed to parse $size. Expected an integer: $size: 1.5"),
    ({"a": {"$size": -1}}, 2, "Failed to parse $size. Expected a positive number in: $size: -1"),
    ({"a": {"$not": 5}}, 2, "$not needs a regex or a document"),
    ({"a": {"$not": {}}}, 2, "$not cannot be empty"),
    ({"a": {"$not": {"b": 1}}}, 2, "unknown operator: b"),
    ({"a": {"$gt": Regex("x")}}, 2, "Can't have RegEx as arg to predicate over field 'a'."),
    ({"a": {"$ne": re.compile("x")}}, 2, "Can't have regex as arg to $ne."),
    ({"a": {"$type": "foo"}}, 2, "Unknown type name alias: foo"),
    ({"a": {"$type": 100}}, 2, "Invalid numerical type code: 100"),
    ({"a": {"$type": 1.5}}, 2, "Invalid numerical type code: 1.5"),
    ({"a": {"$type": {}}}, 14, "type must be represented as a number or a string"),
    ({"a": {"$type": []}}, 9, "a must match at least one type"),
    ({"a": {"$mod": 5}}, 2, "malformed mod, needs to be an array"),
    ({"a": {"$mod": [5]}}, 2, "malformed mod, not enough elements"),
    ({"a": {"$mod": [5, 1, 2]}}, 2, "malformed mod, too many elements"),
    ({"a": {"$mod": ["5", 1]}}, 2, "malformed mod, divisor not a number"),
    ({"a": {"$mod": [5, "1"]}}, 2, "malformed mod, remainder not a number"),
    ({"a": {"$mod": [0, 1]}}, 2, "divisor cannot be 0"),
    ({"a": {"$mod": [float("nan"), 1]}}, 2, "malformed mod, divisor value is invalid :: caused by :: "
                                            "Unable to coerce NaN/Inf to integral type"),
    ({"a": {"$mod": [1e300, 1]}}, 2, "malformed mod, divisor value is invalid :: caused by :: "
                                     "Out of bounds coercing to integral value"),
    ({"a": {"$elemMatch": 1}}, 2, "$elemMatch needs an Object"),
    ({"a": {"$all": 1}}, 2, "$all needs an array"),
    ({"a": {"$all": [{"$elemMatch": {"b": 1}}, 5]}}, 2, "$all/$elemMatch has to be consistent"),
    ({"a": {"$all": [1, {"$gt": 5}]}}, 2, "no $ expressions in $all"),
    ({"a": {"$bitsAllSet": "x"}}, 2, 'takes an Array, a number, or a BinData but received: $bitsAllSet: "x"'),
    ({"a": {"$bitsAllSet": -1}}, 9, "Expected a positive number in: $bitsAllSet: -1"),
    ({"a": {"$bitsAnySet": 1.5}}, 9, "Expected an integer: $bitsAnySet: 1.5"),
    ({"a": {"$bitsAllClear": [-1]}}, 2, "Failed to parse bit position. Expected a positive number"),
    ({"$where": "this.a == 1"}, 6108304, "no globalScriptEngine in $where parsing"),
    ({"a": {"$where": "x"}}, 2, "$where cannot be applied to a field"),
    ({"a": {"$elemMatch": {"$expr": {"$eq": [1, 1]}}}}, 2, "$expr can only be applied to the top-level document"),
    ({"a": {"$elemMatch": {"$where": "x"}}}, 2, "$elemMatch cannot contain $where expression"),
    ({"$text": {"$search": 1}}, 14, '"$search" had the wrong type. Expected string, found int'),
    ({"$text": {}}, 4, 'Missing expected field "$search"'),
    ({"a": {"$elemMatch": {"$text": {"$search": "x"}}}}, 2, "$text can only be applied to the top-level document"),
    ({"a": {"$near": {"$geometry": [0, 0]}}}, 2, "$near requires geojson point, given [ 0, 0 ]"),
    ({"a": {"$geoWithin": 1}}, 2, "geometry must be an object"),
    ({"$jsonSchema": 1}, 14, "$jsonSchema must be an object"),
    ({"$jsonSchema": {"foo": 1}}, 9, "Unknown $jsonSchema keyword: foo"),
    ({"$jsonSchema": {"format": "email"}}, 9, "$jsonSchema keyword 'format' is not currently supported"),
    ({"$jsonSchema": {"type": "integer"}}, 9, "$jsonSchema type 'integer' is not currently supported."),
    ({"$jsonSchema": {"type": "object", "bsonType": "object"}}, 9, "Cannot specify both"),
    ({"$alwaysTrue": 2}, 9, "$alwaysTrue must be an integer value of 1"),
]


@pytest.mark.parametrize("spec,code,message", ERRORS, ids=[repr(e[0])[:60] for e in ERRORS])
def test_parse_errors(spec, code, message):
    with pytest.raises(MongoError) as info:
        parse_filter(spec)
    assert info.value.code == code
    assert message in info.value.message


def test_where_in_aggregation_context():
    with pytest.raises(MongoError) as info:
        parse_filter({"$where": "1"}, in_aggregation=True)
    assert (info.value.code, info.value.message) == (2, "$where is not allowed in this context")


def test_filter_must_be_a_document():
    with pytest.raises(MongoError) as info:
        parse_filter([("a", 1)])  # type: ignore[arg-type]
    assert info.value.code == 14


def test_tree_is_immutable():
    t = parse_filter({"a": 1})
    with pytest.raises(AttributeError):
        t.value = 2  # type: ignore[misc]
