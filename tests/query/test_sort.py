"""Sort specifications and MongoDB's sort order (arrays, missing, mixed types, collation)."""
from __future__ import annotations

import datetime as dt
import functools

import pytest
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from hypothesis import given, settings, strategies as st

from mongolake.errors import MongoError
from mongolake.query import bsonorder
from mongolake.query.collation import parse_collation
from mongolake.query.sort import parse_sort


def ids(docs):
    return [d["_id"] for d in docs]


def test_compound_and_dotted():
    docs = [{"_id": 1, "a": 2, "b": {"c": 1}}, {"_id": 2, "a": 1, "b": {"c": 5}}, {"_id": 3, "a": 2, "b": {"c": 0}}]
    assert ids(parse_sort({"a": 1, "b.c": -1}).sort(docs)) == [2, 1, 3]
    assert ids(parse_sort({"b.c": 1}).sort(docs)) == [3, 1, 2]


def test_mixed_types_follow_bson_order():
    docs = [{"_id": i, "v": v} for i, v in enumerate(
        ["s", 1, None, {"x": 1}, [], True, ObjectId("0" * 24), dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc),
         MaxKey(), MinKey(), 2.5, Int64(2)])]
    docs.append({"_id": 99})  # missing sorts with null
    out = ids(parse_sort({"v": 1}).sort(docs))
    assert out == [9, 4, 2, 99, 1, 11, 10, 0, 3, 6, 5, 7, 8]


def test_arrays_sort_by_min_ascending_and_max_descending():
    docs = [{"_id": 1, "a": [1, 10]}, {"_id": 2, "a": [5]}, {"_id": 3, "a": 7}, {"_id": 4, "a": []}]
    assert ids(parse_sort({"a": 1}).sort(docs)) == [4, 1, 2, 3]  # empty array below everything but MinKey
    assert ids(parse_sort({"a": -1}).sort(docs)) == [1, 3, 2, 4]


def test_dotted_path_through_array_of_documents():
    docs = [{"_id": 1, "a": [{"b": 3}, {"b": 1}]}, {"_id": 2, "a": [{"b": 2}]}, {"_id": 3, "a": [{"b": 4}, {}]}]
    # doc 3 has an element without b: it contributes null, the smallest value
    assert ids(parse_sort({"a.b": 1}).sort(docs)) == [3, 1, 2]
    assert ids(parse_sort({"a.b": -1}).sort(docs)) == [3, 1, 2]


def test_stable_ties_and_top_k():
    docs = [{"_id": i, "k": i % 3} for i in range(20)]
    s = parse_sort({"k": -1})
    full = s.sort(docs)
    assert ids(s.top_k(iter(docs), 5)) == ids(full[:5])
    assert ids(full[:7]) == [2, 5, 8, 11, 14, 17, 1]
    assert s.top_k(docs, 0) == []
    assert ids(parse_sort({}).top_k(docs, 2)) == [0, 1]


def test_collation_in_sort():
    docs = [{"_id": 1, "s": "b"}, {"_id": 2, "s": "B"}, {"_id": 3, "s": "a"}, {"_id": 4, "s": "C"}]
    assert ids(parse_sort({"s": 1}).sort(docs)) == [2, 4, 3, 1]  # binary: upper case first
    coll = parse_collation({"locale": "en", "strength": 2})
    assert ids(parse_sort({"s": 1}, collation=coll).sort(docs)) == [3, 1, 2, 4]


def test_natural_and_meta():
    s = parse_sort({"$natural": -1})
    assert s.natural == -1 and not s.fields
    s = parse_sort({"score": {"$meta": "textScore"}})
    with pytest.raises(MongoError) as ei:
        s.key({"_id": 1})                       # no text score on the document: no $text in the query
    assert ei.value.code == 40218
    with pytest.raises(MongoError) as ei:
        parse_sort({"score": {"$meta": "randVal"}}).key({"_id": 1})
    assert ei.value.code == 238


@pytest.mark.parametrize("spec,code", [
    ({"a": 2}, 15975), ({"a": 0}, 15975), ({"a": "x"}, 15974), ({"a": {"b": 1}}, 15974), ({"a": True}, 15974),
    (5, 15973), ({"": 1}, 40352), ({"$a": 1}, 16410), ({"a..b": 1}, 15998),
    ({"$natural": 1, "a": 1}, 2), ({"a": {"$meta": "nope"}}, 17312),
])
def test_errors(spec, code):
    with pytest.raises(MongoError) as ei:
        parse_sort(spec)
    assert ei.value.code == code


def test_messages_and_lenient_numbers():
    with pytest.raises(MongoError) as ei:
        parse_sort({"a": 3})
    assert ei.value.message == "$sort key ordering must be 1 (for ascending) or -1 (for descending)"
    with pytest.raises(MongoError) as ei:
        parse_sort({"a": "up"})
    assert ei.value.message == 'Illegal key in $sort specification: a: "up"'
    assert parse_sort({"a": -1.5, "b": Int64(1)}).fields == (("a", -1), ("b", 1))
    with pytest.raises(MongoError) as ei:
        parse_sort({}, require_keys=True)
    assert ei.value.code == 15976


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-100, 100), st.floats(allow_nan=True, width=32),
                    st.text(max_size=3), st.binary(max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.lists(SCALARS, min_size=0, max_size=8))
def test_sort_key_agrees_with_bsonorder(values):
    docs = [{"_id": i, "v": v} for i, v in enumerate(values)]
    out = [d["v"] for d in parse_sort({"v": 1}).sort(docs)]
    for x, y in zip(out, out[1:]):
        assert bsonorder.compare(x, y) <= 0
    desc = [d["v"] for d in parse_sort({"v": -1}).sort(docs)]
    assert desc == sorted(values, key=functools.cmp_to_key(lambda a, b: -bsonorder.compare(a, b)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(-5, 5), max_size=3), max_size=6))
def test_array_sort_key_is_min_or_max(arrays):
    docs = [{"_id": i, "a": a} for i, a in enumerate(arrays)]
    asc = parse_sort({"a": 1})
    keys = [min(a) if a else None for a in (d["a"] for d in asc.sort(docs))]
    empties = [k for k in keys if k is None]
    assert keys[:len(empties)] == empties  # empty arrays first
    rest = keys[len(empties):]
    assert rest == sorted(rest)
