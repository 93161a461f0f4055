"""Extended JSON v2 straight from BSON bytes and back (mongolake/admin/extjson.py)."""
from __future__ import annotations

import json
import struct

import bson
import pytest
from bson import json_util
from bson.datetime_ms import DatetimeMS
from hypothesis import given, settings, strategies as st

from mongolake.admin import extjson
from mongolake.admin.extjson import ExtJSONError
from mongolake.query.bsonorder import CODEC_OPTIONS
from tests.admin.bsontypes import every_type

CANONICAL = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, document_class=dict,
                                  datetime_conversion=bson.DatetimeConversion.DATETIME_MS,
                                  uuid_representation=bson.binary.UuidRepresentation.UNSPECIFIED)


def enc(doc: dict) -> bytes:
    return bson.encode(doc, codec_options=CODEC_OPTIONS)


def test_every_type_round_trips_byte_for_byte():
    for i in (0, 1, 7, 2**20):
        raw = enc(every_type(i))
        assert enc(extjson.loads(extjson.dumps(raw))) == raw


def test_canonical_output_agrees_with_pymongo():
    raw = enc(every_type(3))
    mine = json.loads(extjson.dumps(raw))
    theirs = json.loads(json_util.dumps(bson.decode(raw, CODEC_OPTIONS), json_options=CANONICAL))
    assert mine == theirs
    assert list(mine) == list(bson.decode(raw, CODEC_OPTIONS))           # field order kept


def test_dates_over_the_whole_int64_range():
    for ms in (-2**63, -62135596800001, -1, 0, 253402300800000, 2**63 - 1):
        raw = enc({"d": DatetimeMS(ms)})
        text = extjson.dumps(raw)
        assert text == '{"d": {"$date": {"$numberLong": "%d"}}}' % ms
        assert enc(extjson.loads(text)) == raw
    assert extjson.dumps(enc({"d": DatetimeMS(1)}), relaxed=True) == '{"d": {"$date": "1970-01-01T00:00:00.001Z"}}'
    assert extjson.dumps(enc({"d": DatetimeMS(-1)}), relaxed=True) == '{"d": {"$date": {"$numberLong": "-1"}}}'


def test_numbers_keep_their_types():
    raw = enc({"i": 1, "l": bson.Int64(1), "d": 1.0, "z": -0.0, "dec": bson.Decimal128("1.0")})
    text = extjson.dumps(raw)
    assert text == ('{"i": {"$numberInt": "1"}, "l": {"$numberLong": "1"}, "d": {"$numberDouble": "1.0"}, '
                    '"z": {"$numberDouble": "-0.0"}, "dec": {"$numberDecimal": "1.0"}}')
    assert enc(extjson.loads(text)) == raw
    assert extjson.dumps(raw, relaxed=True) == '{"i": 1, "l": 1, "d": 1.0, "z": -0.0, "dec": {"$numberDecimal": "1.0"}}'
    # other producers' spellings
    assert extjson.loads('{"a":{"$numberInt":"7"},"b":{"$numberDouble":"2"},"c":{"$numberDouble":"1e3"}}') == \
        {"a": 7, "b": 2.0, "c": 1000.0}
    assert type(extjson.loads('{"b": {"$numberDouble": "2"}}')["b"]) is float


def test_text_that_looks_like_a_wrapper_inside_strings_stays_a_string():
    doc = {"s": '{"$numberInt": "5"}', "t": 'x{"$numberDouble": "1.5"}', "k": {'{"$numberInt": "1"}': 1}}
    raw = enc(doc)
    assert extjson.loads(extjson.dumps(raw)) == doc


def test_deprecated_types_are_written_canonically():
    def elem(t: int, name: bytes, payload: bytes) -> bytes:
        body = bytes([t]) + name + b"\x00" + payload
        return struct.pack("<i", len(body) + 5) + body + b"\x00"
    s = b"sym\x00"
    assert extjson.dumps(elem(0x06, b"u", b"")) == '{"u": {"$undefined": true}}'
    assert extjson.dumps(elem(0x0E, b"s", struct.pack("<i", len(s)) + s)) == '{"s": {"$symbol": "sym"}}'
    ns = b"db.c\x00"
    ptr = extjson.dumps(elem(0x0C, b"p", struct.pack("<i", len(ns)) + ns + b"\x01" * 12))
    assert ptr == '{"p": {"$dbPointer": {"$ref": "db.c", "$id": {"$oid": "010101010101010101010101"}}}}'
    # bson cannot store them back: null, a string, a DBRef
    assert extjson.loads('{"u": {"$undefined": true}}') == {"u": None}
    assert extjson.loads('{"s": {"$symbol": "sym"}}') == {"s": "sym"}
    assert extjson.loads(ptr)["p"] == bson.DBRef("db.c", bson.ObjectId("01" * 12))


def test_relaxed_input_and_legacy_shapes():
    d = extjson.loads('{"n": 3000000000, "m": 5, "f": 1.5, "d": {"$date": "2020-01-02T03:04:05.678Z"}, '
                      '"u": {"$uuid": "00112233-4455-6677-8899-aabbccddeeff"}}')
    assert d["n"] == 3000000000 and d["m"] == 5 and d["f"] == 1.5
    assert d["d"] == DatetimeMS(1577934245678)
    assert d["u"] == bson.Binary(bytes.fromhex("00112233445566778899aabbccddeeff"), 4)
    assert extjson.loads('{"a": {"$oid": "5f0c5e0e0e0e0e0e0e0e0e0e", "x": 1}}')["a"] == \
        {"$oid": "5f0c5e0e0e0e0e0e0e0e0e0e", "x": 1}                     # not a wrapper: a plain document


@pytest.mark.parametrize("text,message", [
    ("not json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"a": {"$numberInt": "x"}}', "bad $numberInt"),
    ('{"a": {"$numberInt": 5}}', "expected a string"),
    ('{"a": {"$numberLong": "1.5"}}', "bad $numberLong"),
    ('{"a": {"$binary": {"base64": "!!", "subType": "00"}}}', "bad $binary"),
    ('{"a": {"$binary": "AA=="}}', "bad $binary"),
    ('{"a": {"$date": "yesterday"}}', "bad $date"),
    ('{"a": {"$timestamp": {"t": 1}}}', "bad $timestamp"),
    ('{"a": {"$oid": "xyz"}}', "bad $oid"),
])
def test_bad_input(text, message):
    with pytest.raises(ExtJSONError, match=message.replace("$", r"\$")):
        extjson.loads(text)


def test_malformed_bson_is_refused():
    with pytest.raises(ExtJSONError):
        extjson.dumps(b"\x05\x00\x00\x00")
    with pytest.raises(ExtJSONError):
        extjson.dumps(b"\x0c\x00\x00\x00\x10a\x00\x01\x00\x00")


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
    st.text(max_size=20), st.binary(max_size=20).map(lambda b: bson.Binary(b, 0)),
    st.integers(-2**63, 2**63 - 1).map(bson.Int64), st.integers(-2**63, 2**63 - 1).map(DatetimeMS),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)).map(lambda t: bson.Timestamp(*t)),
)
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(min_size=1, max_size=8).filter(
        lambda k: "\x00" not in k and not k.startswith("$")), inner, max_size=4)), max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8).filter(lambda k: "\x00" not in k and not k.startswith("$")),
                       _values, max_size=6))
def test_round_trip_property(doc):
    raw = enc(doc)
    assert enc(extjson.loads(extjson.dumps(raw))) == raw
