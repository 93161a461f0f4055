"""Unit tests of the command layer's ``let`` binding (mongolake.commands.letvars)."""
import pytest
from bson import Timestamp

from mongolake.commands.letvars import LetScope, eval_let
from mongolake.errors import MongoError


def scope(**variables):
    return LetScope(variables)


def test_eval_let_in_order_and_name_rules():
    assert eval_let({"a": 2, "b": {"$multiply": ["$$a", 3]}}, {}) == {"a": 2, "b": 6}
    with pytest.raises(MongoError) as ei:
        eval_let({"Bad": 1}, {})
    assert ei.value.code == 9
    with pytest.raises(MongoError) as ei:
        eval_let([1], {})
    assert ei.value.code == 14


def test_filter_binds_only_inside_expr():
    s = scope(v=5, obj={"x": [1, 2]})
    f = s.filter({"a": "$$v", "$expr": {"$eq": ["$a", "$$v"]},
                  "$or": [{"$expr": {"$in": ["$$obj.x", "$b"]}}, {"c": 1}]})
    assert f["a"] == "$$v"                                   # a plain value stays a string
    assert f["$expr"] == {"$eq": ["$a", {"$literal": 5}]}
    assert f["$or"][0] == {"$expr": {"$in": [{"$literal": [1, 2]}, "$b"]}}
    assert f["$or"][1] == {"c": 1}


def test_shadowing_and_literal_are_respected():
    s = scope(x=1, this=99)
    e = s.filter({"$expr": {"$let": {"vars": {"x": "$$x"}, "in": {"$add": ["$$x", "$$this"]}}}})
    assert e["$expr"]["$let"]["vars"] == {"x": {"$literal": 1}}          # evaluated in the outer scope
    assert e["$expr"]["$let"]["in"] == {"$add": ["$$x", {"$literal": 99}]}
    m = s.filter({"$expr": {"$map": {"input": "$arr", "in": {"$add": ["$$this", "$$x"]}}}})
    assert m["$expr"]["$map"]["in"] == {"$add": ["$$this", {"$literal": 1}]}
    lit = s.filter({"$expr": {"$literal": "$$x"}})
    assert lit["$expr"] == {"$literal": "$$x"}
    r = s.filter({"$expr": {"$reduce": {"input": "$a", "initialValue": "$$x", "in": "$$this"}}})
    assert r["$expr"]["$reduce"] == {"input": "$a", "initialValue": {"$literal": 1}, "in": "$$this"}


def test_updates_and_projections():
    s = scope(n=3)
    assert s.update({"$set": {"a": "$$n"}}) == {"$set": {"a": "$$n"}}       # operator updates: literal
    assert s.update([{"$set": {"a": "$$n"}}]) == [{"$set": {"a": {"$literal": 3}}}]
    assert s.projection({"a": 1, "b": "$$n", "c": {"$elemMatch": {"x": "$$n"}}}) == {
        "a": 1, "b": {"$literal": 3}, "c": {"$elemMatch": {"x": "$$n"}}}
    s2 = s.with_constants({"m": {"$add": ["$$n", 1]}})
    assert s2.variables == {"n": 3, "m": 4}


def test_unbound_names_stay_for_the_engine_to_reject():
    s = scope(a=1, CLUSTER_TIME=Timestamp(5, 1))
    f = s.filter({"$expr": {"$eq": ["$$nope", "$$CLUSTER_TIME"]}})
    assert f["$expr"] == {"$eq": ["$$nope", {"$literal": Timestamp(5, 1)}]}
    assert scope().filter({"$expr": "$$a"}) == {"$expr": "$$a"}
