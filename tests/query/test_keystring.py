"""Order-preserving keys: bytewise order == MongoDB's BSON order (property-tested)."""
from __future__ import annotations

import datetime as dt
import uuid

import bson
from bson import CodecOptions
from bson.binary import UuidRepresentation
import pytest
from bson.binary import Binary
from bson.code import Code
from bson.datetime_ms import DatetimeMS
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mongolake.query import bsonorder as bo
from mongolake.query.bsonorder import CODEC_OPTIONS, compare
from mongolake.query.keystring import encode_key, key_range, render_id, type_bracket_bounds

UTC = dt.timezone.utc

decimals = st.one_of(
    st.builds(lambda i, e: Decimal128(f"{i}E{e}"), st.integers(-10 ** 20, 10 ** 20), st.integers(-40, 40)),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "-0", "0E+10", "1E+6000", "-1E-6000", "0.1", "1.000"]).map(Decimal128),
)
numbers = st.one_of(
    st.integers(-(2 ** 63), 2 ** 63 - 1),
    st.integers(-5, 5),
    st.integers(-(2 ** 63), 2 ** 63 - 1).map(Int64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.1, 1.0, 2.0 ** 53, 5e-324, -5e-324, 1e308]),
    decimals,
)
strings = st.text(alphabet=st.sampled_from(["a", "b", "\x00", "é", "\uffff", "😀", "Z"]), max_size=4)
scalars = st.one_of(
    numbers, strings, st.booleans(), st.none(), st.just(MinKey()), st.just(MaxKey()),
    st.binary(max_size=3).map(bytes), st.builds(Binary, st.binary(max_size=3), st.sampled_from([0, 2, 128])),
    st.just(uuid.UUID(int=7)),
    st.binary(min_size=12, max_size=12).map(ObjectId),
    st.integers(-(10 ** 12), 10 ** 12).map(lambda ms: dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=ms)),
    st.integers(-(2 ** 63), 2 ** 63 - 1).map(DatetimeMS),
    st.builds(Timestamp, st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1)),
    st.builds(Regex, st.sampled_from(["a", "b", "a\x01"]), st.sampled_from(["", "i", "im"])),
    st.builds(Code, st.sampled_from(["f", "g", "f\x00"])),
    st.builds(Code, st.sampled_from(["f", "g"]), st.just({"x": 1})),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "ab", ""]), inner, max_size=3),
        st.builds(DBRef, st.sampled_from(["c", "d"]), inner),
    ),
    max_leaves=6,
)


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def bytes_cmp(a: bytes, b: bytes) -> int:
    return (a > b) - (a < b)


@settings(max_examples=1500, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(values, values)
def test_key_order_matches_bson_order(a, b):
    assert bytes_cmp(encode_key(a), encode_key(b)) == sign(compare(a, b)), (a, b)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(numbers, numbers)
def test_number_keys_order(a, b):
    assert bytes_cmp(encode_key(a), encode_key(b)) == sign(compare(a, b)), (a, b)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(values)
def test_keys_survive_a_bson_round_trip(v):
    raw = bson.encode({"v": v}, codec_options=CodecOptions(uuid_representation=UuidRepresentation.STANDARD))
    decoded = bson.decode(raw, CODEC_OPTIONS)["v"]
    assert encode_key(decoded) == encode_key(v)


def test_equal_numbers_share_a_key():
    keys = {encode_key(v) for v in (1, 1.0, Int64(1), Decimal128("1"), Decimal128("1.000"), Decimal128("0.1E1"))}
    assert len(keys) == 1
    assert encode_key(0) == encode_key(-0.0) == encode_key(Decimal128("-0")) == encode_key(Decimal128("0E+5"))
    assert encode_key(float("nan")) == encode_key(Decimal128("NaN"))
    assert encode_key(float("inf")) == encode_key(Decimal128("Infinity"))
    assert encode_key(0.1) != encode_key(Decimal128("0.1"))


def test_brackets_follow_mongodb_type_order():
    ordered = [MinKey(), None, float("nan"), -1, "", {}, [], b"", ObjectId(b"\x00" * 12), False,
               dt.datetime(1, 1, 1, tzinfo=UTC), Timestamp(0, 0), Regex(""), Code(""), Code("", {}), MaxKey()]
    keys = [encode_key(v) for v in ordered]
    assert keys == sorted(keys)
    for v in ordered:
        lo, hi = type_bracket_bounds(bo.canonical_rank(v))
        assert lo <= encode_key(v) < hi


def _in_range(k: bytes, rng) -> bool:
    lo, lo_incl, hi, hi_incl = rng
    return ((lo is None or k > lo or (lo_incl and k == lo)) and
            (hi is None or k < hi or (hi_incl and k == hi)))


SAMPLE = [  # possible _id values (never arrays)MinKey(), None, float("nan"), -float("inf"), -5, 0, 2.5, 3, Int64(7), Decimal128("7.5"), float("inf"),
          "", "a", "b", {"a": 1}, b"x", ObjectId(b"\x01" * 12), True, dt.datetime(2020, 1, 1, tzinfo=UTC),
          Timestamp(1, 1), MaxKey()]


@pytest.mark.parametrize("op", ["$eq", "$gt", "$gte", "$lt", "$lte"])
@pytest.mark.parametrize("bound", [3, 2.5, float("nan"), None, "a", MinKey(), MaxKey(), True,
                                   dt.datetime(2020, 1, 1, tzinfo=UTC)])
def test_key_range_agrees_with_the_matcher(op, bound):
    from mongolake.query.filter import parse_filter
    from mongolake.query.matcher import compile_matcher
    fn = compile_matcher(parse_filter({"_id": {op: bound}}))
    rng = key_range(op, bound)
    for v in SAMPLE:
        in_range = rng is not None and _in_range(encode_key(v), rng)
        assert in_range == fn({"_id": v}), (op, bound, v)


def test_render_id():
    oid = ObjectId("5f1d7a2b9c8e4f0a1b2c3d4e")
    assert render_id(oid) == "5f1d7a2b9c8e4f0a1b2c3d4e"
    assert render_id("abc") == "abc"
    assert render_id(5) == "5"
    assert render_id({"a": 1}) == '{"a": 1}'
    assert render_id(dt.datetime(2020, 1, 1, tzinfo=UTC)) == '{"$date": "2020-01-01T00:00:00Z"}'


TRICKY_NUMBERS = [  # in increasing order; equal neighbours are grouped in tuples
    (float("nan"), Decimal128("NaN")), (float("-inf"), Decimal128("-Infinity")), (Decimal128("-1E+400"),),
    (-1e308,), (-(2 ** 63),), (-1.5, Decimal128("-1.50")), (Decimal128("-1E-400"),),
    (-0.0, 0, Decimal128("0E-10"), Decimal128("-0")), (Decimal128("1E-400"),), (5e-324,), (Decimal128("0.1"),),
    (0.1,), (1, Int64(1), 1.0, Decimal128("1.000")), (2 ** 53, float(2 ** 53)), (2 ** 53 + 1,),
    (2 ** 63 - 1,), (1e308,), (Decimal128("1E+400"),), (float("inf"), Decimal128("Infinity")),
]


def test_tricky_numbers_pairwise():
    flat = [(i, v) for i, group in enumerate(TRICKY_NUMBERS) for v in group]
    for i, a in flat:
        for j, b in flat:
            expected = sign(i - j)
            assert sign(compare(a, b)) == expected, (a, b)
            assert bytes_cmp(encode_key(a), encode_key(b)) == expected, (a, b)
