"""Property tests: $inc/$mul numeric promotion, $push $sort/$slice, no mutation of inputs."""
from __future__ import annotations

import copy

from bson.decimal128 import Decimal128
from bson.int64 import Int64
from hypothesis import given, settings, strategies as st

from mongolake.errors import MongoError
from mongolake.query.bsonorder import values_equal
from mongolake.query.docpath import identical, type_name
from mongolake.query.update import parse_update

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1).map(Int64)
DOUBLE = st.floats(allow_nan=False, allow_infinity=False, width=64)
NUMBER = st.one_of(INT32, INT64, DOUBLE)
RANK = {"int": 0, "long": 1, "double": 2, "decimal": 3}


@settings(max_examples=300, deadline=None)
@given(NUMBER, NUMBER)
def test_inc_promotion(cur, by):
    try:
        res = parse_update({"$inc": {"a": by}}).apply({"_id": 1, "a": cur})
    except MongoError as e:
        # only int64 overflow fails, with BadValue
        assert e.code == 2 and "Failed to apply $inc" in e.message
        assert "double" not in (type_name(cur), type_name(by))
        assert not (-(2**63) <= int(cur) + int(by) <= 2**63 - 1)
        return
    out = res.document["a"]
    widest = max(RANK[type_name(cur)], RANK[type_name(by)])
    t = type_name(out)
    if widest == 2:
        assert t == "double" and out == float(cur) + float(by)
    elif widest == 1:
        assert t == "long" and out == int(cur) + int(by)
    else:  # int32 + int32: int32 unless it overflows, then long
        total = int(cur) + int(by)
        assert out == total
        assert t == ("int" if -(2**31) <= total <= 2**31 - 1 else "long")
    assert res.modified == (not identical(out, cur))


@settings(max_examples=200, deadline=None)
@given(st.one_of(INT32, INT64), st.one_of(INT32, INT64))
def test_mul_integers(cur, by):
    product = int(cur) * int(by)
    try:
        out = parse_update({"$mul": {"a": by}}).apply({"_id": 1, "a": cur}).document["a"]
    except MongoError as e:
        assert e.code == 2 and not (-(2**63) <= product <= 2**63 - 1)
        return
    assert out == product
    if type_name(cur) == type_name(by) == "int":
        assert type_name(out) == ("int" if -(2**31) <= product <= 2**31 - 1 else "long")
    else:
        assert type_name(out) == "long"


@settings(max_examples=100, deadline=None)
@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_decimal_inc(a, b):
    out = parse_update({"$inc": {"a": Decimal128(str(b))}}).apply({"_id": 1, "a": a}).document["a"]
    assert isinstance(out, Decimal128) and out.to_decimal() == a + b


VALUES = st.one_of(st.integers(-50, 50), st.text(max_size=3), st.none(), st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-50, 50), max_size=8), st.lists(st.integers(-50, 50), max_size=8),
       st.sampled_from([1, -1]), st.integers(-10, 10))
def test_push_sort_slice(existing, each, direction, slice_):
    doc = {"_id": 1, "a": list(existing)}
    snapshot = copy.deepcopy(doc)
    res = parse_update({"$push": {"a": {"$each": each, "$sort": direction, "$slice": slice_}}}).apply(doc)
    expected = sorted(existing + each, reverse=direction < 0)
    expected = expected[:slice_] if slice_ >= 0 else expected[max(0, len(expected) + slice_):]
    assert res.document["a"] == expected
    assert doc == snapshot


@settings(max_examples=200, deadline=None)
@given(st.lists(VALUES, max_size=6), st.lists(VALUES, max_size=6))
def test_add_to_set_each_is_a_set_union(existing, each):
    res = parse_update({"$addToSet": {"a": {"$each": each}}}).apply({"_id": 1, "a": list(existing)})
    out = res.document["a"]
    assert out[:len(existing)] == existing
    for v in each:
        assert any(values_equal(v, x) for x in out)
    added = out[len(existing):]
    for i, x in enumerate(added):  # only new, distinct values were appended
        assert not any(values_equal(x, y) for y in existing + added[:i])
    assert res.modified == bool(added)
