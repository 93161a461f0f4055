"""Find projections (MongoDB 4.4+ rules) and the aggregation $project/$addFields bodies."""
from __future__ import annotations

import pytest

from mongolake.errors import MongoError
from mongolake.query.projection import parse_add_fields, parse_projection

DOC = {"_id": 1, "a": 1, "b": {"c": 2, "d": 3}, "arr": [{"x": 1, "y": 2}, {"x": 3, "y": 4}, 5], "s": "t"}

CASES = [
    ({}, DOC),
    ({"a": 1}, {"_id": 1, "a": 1}),
    ({"a": True, "s": 1.0}, {"_id": 1, "a": 1, "s": "t"}),
    ({"s": 1, "a": 1}, {"_id": 1, "a": 1, "s": "t"}),  # document order, not projection order
    ({"a": 1, "_id": 0}, {"a": 1}),
    ({"_id": 1}, {"_id": 1}),
    ({"_id": 0}, {"a": 1, "b": {"c": 2, "d": 3}, "arr": DOC["arr"], "s": "t"}),
    ({"a": 0, "arr": 0}, {"_id": 1, "b": {"c": 2, "d": 3}, "s": "t"}),
    ({"a": 0, "_id": 1}, {"_id": 1, "b": {"c": 2, "d": 3}, "arr": DOC["arr"], "s": "t"}),
    ({"b.c": 1}, {"_id": 1, "b": {"c": 2}}),
    ({"b": {"c": 1}}, {"_id": 1, "b": {"c": 2}}),
    ({"b.c": 0}, {"_id": 1, "a": 1, "b": {"d": 3}, "arr": DOC["arr"], "s": "t"}),
    ({"arr.x": 1}, {"_id": 1, "arr": [{"x": 1}, {"x": 3}]}),  # scalars in the array are dropped
    ({"arr.x": 0, "_id": 0, "a": 0, "b": 0, "s": 0}, {"arr": [{"y": 2}, {"y": 4}, 5]}),
    ({"b.z": 1}, {"_id": 1, "b": {}}),
    ({"missing.z": 1}, {"_id": 1}),
    ({"arr": {"$slice": 1}}, {**DOC, "arr": [{"x": 1, "y": 2}]}),
    ({"arr": {"$slice": -1}}, {**DOC, "arr": [5]}),
    ({"arr": {"$slice": [1, 1]}}, {**DOC, "arr": [{"x": 3, "y": 4}]}),
    ({"arr": {"$slice": [-2, 5]}}, {**DOC, "arr": DOC["arr"][1:]}),
    ({"arr": {"$slice": [10, 1]}}, {**DOC, "arr": []}),
    ({"arr": {"$slice": 1}, "a": 1}, {"_id": 1, "a": 1, "arr": [{"x": 1, "y": 2}]}),
    ({"arr": {"$slice": 1}, "_id": 1}, {"_id": 1, "arr": [{"x": 1, "y": 2}]}),
    ({"a": {"$slice": 1}}, DOC),  # not an array: unchanged
    ({"arr": {"$elemMatch": {"x": 3}}}, {"_id": 1, "arr": [{"x": 3, "y": 4}]}),
    ({"arr": {"$elemMatch": {"x": 9}}, "a": 1}, {"_id": 1, "a": 1}),
    ({"arr": {"$elemMatch": {"x": {"$gte": 1}}}, "s": 1}, {"_id": 1, "s": "t", "arr": [{"x": 1, "y": 2}]}),
    ({"n": "$a", "a": 1}, {"_id": 1, "a": 1, "n": 1}),
    ({"n": {"$add": ["$a", "$b.c"]}, "_id": 0}, {"n": 3}),
    ({"lit": "text", "num": {"$literal": 1}}, {"_id": 1, "lit": "text", "num": 1}),
    ({"n": ["$a", "$s"]}, {"_id": 1, "n": [1, "t"]}),
    ({"b.e": "$a"}, {"_id": 1, "b": {"e": 1}}),
    ({"b.c": 1, "b.e": "$a"}, {"_id": 1, "b": {"c": 2, "e": 1}}),
    ({"a.z": "$s"}, {"_id": 1, "a": {"z": "t"}}),  # a scalar is replaced by a document of computed fields
    ({"nothing": "$missing", "a": 1}, {"_id": 1, "a": 1}),
]


@pytest.mark.parametrize("spec,expected", CASES)
def test_find_projection(spec, expected):
    out = parse_projection(spec).apply(DOC)
    assert out == expected
    assert list(out) == list(expected)


def test_positional_projection():
    doc = {"_id": 1, "grades": [80, 95, 88], "x": 1}
    p = parse_projection({"grades.$": 1}, filter_spec={"grades": {"$gte": 85}})
    assert p.positional
    assert p.apply(doc, position=1) == {"_id": 1, "grades": [95]}
    nested = {"_id": 1, "a": {"b": [{"c": 1}, {"c": 2}]}}
    assert parse_projection({"a.b.$": 1}).apply(nested, position=1) == {"_id": 1, "a": {"b": [{"c": 2}]}}
    with pytest.raises(MongoError) as ei:
        p.apply(doc)
    assert ei.value.code == 51246


def test_fields_needed():
    assert parse_projection({"a": 1, "b.c": 1}).fields_needed == {"_id", "a", "b"}
    assert parse_projection({"a": 1, "_id": 0}).fields_needed == {"a"}
    assert parse_projection({"a": 0}).fields_needed is None
    assert parse_projection({"n": "$x"}).fields_needed is None
    assert parse_projection({}).fields_needed is None


ERRORS = [
    ({"a": 1, "b": 0}, 31254, "Cannot do exclusion on field b in inclusion projection"),
    ({"a": 0, "b": 1}, 31253, "Cannot do inclusion on field b in exclusion projection"),
    ({"a": 0, "b": "$x"}, 31310, "in an exclusion projection"),
    ({"a": 0, "b": {"$add": [1, 2]}}, 31252, "Cannot use expression other than $meta in exclusion projection"),
    ({"a": 1, "a.b": 1}, 31249, "Path collision at a.b remaining portion b"),
    ({"a.b": 1, "a": 1}, 31250, "Path collision at a"),
    ({"a": 1, "a.b.c": 1}, 31249, "Path collision at a.b.c remaining portion b.c"),
    ({"a.$": 1, "b.$": 1}, 31276, "Cannot specify more than one positional projection per query."),
    ({"a.$": 1, "b": {"$elemMatch": {"x": 1}}}, 31255, "Cannot specify positional operator and $elemMatch."),
    ({"b": {"$elemMatch": {"x": 1}}, "a.$": 1}, 31256, "Cannot specify positional operator and $elemMatch."),
    ({"a.$": {"x": 1}}, 31271, "positional projection cannot be used with an expression or sub object"),
    ({"a.$": "x"}, 31308, "positional projection cannot be used with a literal"),
    ({"a.$.b.$": 1}, 31287, "Cannot use positional operator twice"),
    ({"a": {"$elemMatch": 1}}, 31274, "elemMatch: Invalid argument, object required, but got int"),
    ({"a.b": {"$elemMatch": {"x": 1}}}, 31275, "Cannot use $elemMatch projection on a nested field."),
    # a find $slice that fails is retried as the expression; mongod reports the expression's error
    ({"a": {"$slice": [1]}}, 28667, "$slice array argument should be of form [skip, limit]"),
    ({"a": {"$slice": [1, 0]}}, 28724, "$slice limit must be positive, got 0"),
    ({"a": {"$meta": "indexKey"}}, 238, "not supported"),
    ({"a": {"$meta": "bogus"}}, 17308, "Unsupported argument to $meta: bogus"),
    ({"a..b": 1}, 15998, "FieldPath field names may not be empty strings."),
    ({"$a": 1}, 16410, "FieldPath field names may not start with '$'"),
    ({"a": {"$bogus": 1}}, 168, "Unrecognized expression '$bogus'"),
]


@pytest.mark.parametrize("spec,code,message", ERRORS)
def test_projection_errors(spec, code, message):
    with pytest.raises(MongoError) as ei:
        parse_projection(spec)
    assert ei.value.code == code, ei.value
    assert message in ei.value.message


def test_positional_must_match_query():
    with pytest.raises(MongoError) as ei:
        parse_projection({"a.$": 1}, filter_spec={"b": 1})
    assert ei.value.code == 31277
    parse_projection({"a.$": 1}, filter_spec={"$and": [{"a.x": 1}]})


def test_aggregation_project_differs_from_find():
    with pytest.raises(MongoError) as ei:
        parse_projection({"a.$": 1}, find=False)
    assert ei.value.code == 31324
    with pytest.raises(MongoError) as ei:
        parse_projection({"a": {"$elemMatch": {"x": 1}}}, find=False)
    assert ei.value.code == 168
    # $slice is the aggregation expression there
    out = parse_projection({"arr": {"$slice": ["$arr", 1]}}, find=False).apply(DOC)
    assert out == {"_id": 1, "arr": [{"x": 1, "y": 2}]}


def test_find_slice_falls_back_to_expression():
    out = parse_projection({"first": {"$slice": ["$arr", -1]}}).apply(DOC)
    assert out == {"_id": 1, "first": [5]}


def test_add_fields():
    af = parse_add_fields({"b": {"e": 5}, "n": {"$multiply": ["$a", 10]}, "a": "replaced"})
    out = af.apply(DOC)
    assert out["b"] == {"c": 2, "d": 3, "e": 5}
    assert out["n"] == 10 and out["a"] == "replaced"
    assert list(out) == ["_id", "a", "b", "arr", "s", "n"]  # existing fields keep their place


def test_projection_does_not_mutate():
    doc = {"_id": 1, "a": {"b": 1, "c": 2}}
    parse_projection({"a.b": 0}).apply(doc)
    parse_projection({"a.x": "$a.b"}).apply(doc)
    assert doc == {"_id": 1, "a": {"b": 1, "c": 2}}
