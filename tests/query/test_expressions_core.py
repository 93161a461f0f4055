"""Expression language core: field paths, variables, literals, object/array expressions, errors."""
from __future__ import annotations

import datetime as dt

from bson.timestamp import Timestamp

from mongolake.query.bsonorder import MISSING
from mongolake.query.expressions import compile_expression, is_constant_expression, truthy

from tests.query._exprutil import ev, fails


def test_field_path_simple_and_nested():
    doc = {"a": 1, "b": {"c": {"d": 5}}}
    assert ev("$a", doc) == 1
    assert ev("$b.c.d", doc) == 5
    assert ev("$b.c", doc) == {"d": 5}
    assert ev("$nope", doc) is MISSING
    assert ev("$b.x.y", doc) is MISSING


def test_field_path_traverses_arrays():
    doc = {"a": [{"b": 1}, {"b": 2}, {"c": 3}, 7, [{"b": 9}]]}
    assert ev("$a.b", doc) == [1, 2]
    doc2 = {"a": [{"b": [1, 2]}, {"b": {"c": 4}}]}
    assert ev("$a.b", doc2) == [[1, 2], {"c": 4}]
    assert ev("$a.b.c", doc2) == [[], 4]  # MongoDB keeps the empty array from the nested walk
    assert ev("$a.b", {"a": 5}) is MISSING


def test_string_without_dollar_is_literal():
    assert ev("hello") == "hello"
    assert ev({"$literal": "$notapath"}) == "$notapath"
    assert ev({"$literal": {"$add": [1, 2]}}) == {"$add": [1, 2]}


def test_object_and_array_expressions_drop_or_null_missing():
    doc = {"a": 1}
    assert ev({"x": "$a", "y": "$missing", "z": {"w": "$a"}}, doc) == {"x": 1, "z": {"w": 1}}
    assert ev(["$a", "$missing", 3], doc) == [1, None, 3]


def test_root_current_and_remove():
    doc = {"a": 1}
    assert ev("$$ROOT", doc) == doc
    assert ev("$$CURRENT.a", doc) == 1
    assert ev("$$REMOVE", doc) is MISSING
    assert ev({"x": "$$REMOVE", "y": 1}) == {"y": 1}


def test_variables_passed_in_and_defaults():
    doc = {"a": 1}
    fn = compile_expression({"$add": ["$a", "$$inc"]})
    assert fn(doc, {"inc": 10}) == 11
    now = dt.datetime(2024, 1, 2, tzinfo=dt.timezone.utc)
    assert ev("$$NOW", doc, {"NOW": now}) == now
    assert isinstance(ev("$$NOW", doc), dt.datetime)
    assert ev("$$CLUSTER_TIME", doc, {"CLUSTER_TIME": Timestamp(5, 1)}) == Timestamp(5, 1)
    root = {"r": 1}
    assert ev("$$ROOT.r", doc, {"ROOT": root}) == 1


def test_undefined_variable_errors():
    fails("$$nope", 17276)
    fails("$$nope", 17276, allowed_vars=["other"])
    assert ev("$$x", {}, {"x": 3}, allowed_vars=["x"]) == 3


def test_let():
    spec = {"$let": {"vars": {"total": {"$add": ["$price", "$tax"]}, "discounted": {"$cond": ["$applyDiscount", 0.9, 1]}},
                     "in": {"$multiply": ["$$total", "$$discounted"]}}}
    assert ev(spec, {"price": 10, "tax": 0.5, "applyDiscount": True}) == 10.5 * 0.9
    assert ev(spec, {"price": 10, "tax": 0.5, "applyDiscount": False}) == 10.5
    fails({"$let": {"vars": {"Bad": 1}, "in": 1}}, 9)
    fails({"$let": {"vars": {}}}, 16877)
    fails({"$let": {"vars": {"x": 1}, "in": "$$y"}}, 17276, allowed_vars=[])


def test_invalid_expressions():
    e = fails({"$foo": 1}, 168)
    assert e.message == "Unrecognized expression '$foo'"
    fails({"$add": [1], "$sub": 1}, 15983)
    fails("$", 16872)
    fails("$a..b", 15998)
    fails("$a.$b", 16410)
    fails({"a": 1, "$b": 2}, 16410)
    fails({"a.b": 1}, 16412)
    fails({"$abs": [1, 2]}, 16020)


def test_truthy():
    for v in (False, None, MISSING, 0, 0.0, 0 * 1):
        assert not truthy(v)
    for v in (True, 1, -1.5, "", "x", [], {}, [0]):
        assert truthy(v)


def test_constant_folding_reports_errors_at_parse_time():
    fails({"$divide": [1, 0]}, 2)
    assert is_constant_expression({"$add": [1, 2]}) == (True, 3)
    assert is_constant_expression({"$add": ["$a", 2]})[0] is False
    assert is_constant_expression({"$rand": {}})[0] is False


def test_meta_rand_and_missing_metadata():
    assert 0 <= ev({"$meta": "randVal"}) < 1
    assert ev({"$meta": "textScore"}) is MISSING
    fails({"$meta": "bogus"}, 17308)
    r = ev({"$rand": {}})
    assert isinstance(r, float) and 0 <= r < 1


def test_caller_variables_are_not_mutated_and_results_are_per_document():
    variables = {"k": 2}
    fn = compile_expression({"$let": {"vars": {"x": {"$multiply": ["$a", "$$k"]}}, "in": {"$add": ["$$x", 1]}}})
    assert [fn({"a": i}, variables) for i in range(3)] == [1, 3, 5]
    assert variables == {"k": 2}
    m = compile_expression({"$map": {"input": "$xs", "in": {"$add": ["$$this", "$$ROOT.base"]}}})
    assert m({"xs": [1, 2], "base": 10}) == [11, 12]
    assert m({"xs": [], "base": 10}) == []
