"""Raw-BSON helpers: depth check, first key, document splitting."""
from __future__ import annotations

import datetime

import bson
import pytest
from bson.datetime_ms import DatetimeMS

from wire.bsonutil import (
    DEFAULT_CODEC_OPTIONS,
    bson_depth_exceeds,
    decode_document,
    encode_document,
    first_key,
    split_documents,
)
from wire.errors import InvalidBSONError, ProtocolError


def nested(depth: int, *, array: bool = False, pad: int = 0) -> dict:
    """A document of exactly ``depth`` levels (the top level counts as 1)."""
    inner: object = {"leaf": 1, "pad": "p" * pad}
    for _ in range(depth - 1):
        inner = [inner] if array else {"k": inner}
    assert isinstance(inner, dict) or array
    return inner if isinstance(inner, dict) else {"a": inner}


def depth_of(doc) -> int:
    """Reference nesting depth, computed iteratively on the decoded value."""
    best, stack = 0, [(doc, 1)]
    while stack:
        value, level = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        best = max(best, level)
        stack.extend((c, level + 1) for c in children if isinstance(c, (dict, list)))
    return best


@pytest.mark.parametrize("depth", [1, 2, 50, 99, 100, 101, 150, 500])
def test_depth_exceeds_matches_reference(depth):
    for doc in (nested(depth), nested(depth, pad=3000)):
        raw = bson.encode(doc)
        real = depth_of(doc)
        for limit in (real - 1, real, real + 1):
            if limit >= 1:
                assert bson_depth_exceeds(raw, limit) is (real > limit), (depth, limit)


def test_depth_with_arrays_and_mixed_siblings():
    deep = nested(120, array=True)
    real = depth_of(deep)
    doc = {
        "s": "x" * 5000,
        "b": bson.Binary(b"\x00" * 100),
        "r": bson.Regex("a.b", "i"),
        "o": bson.ObjectId(),
        "d": datetime.datetime(2020, 1, 1),
        "i": 5,
        "l": bson.Int64(7),
        "f": 1.5,
        "dec": bson.Decimal128("1.1"),
        "ts": bson.Timestamp(1, 2),
        "n": None,
        "t": True,
        "code": bson.Code("x", {"scope": {"a": {"b": 1}}}),
        "min": bson.MinKey(),
        "max": bson.MaxKey(),
        "flat": {"x": list(range(200))},
        "deep": deep,
    }
    raw = bson.encode(doc)
    total = depth_of(doc)
    assert total == real + 1  # "deep" hangs one level below the top document
    assert bson_depth_exceeds(raw, total - 1) is True
    assert bson_depth_exceeds(raw, total) is False
    assert bson_depth_exceeds(raw, 3) is True


def test_depth_small_docs_fast_path_and_malformed():
    assert bson_depth_exceeds(bson.encode({"a": 1}), 100) is False
    assert bson_depth_exceeds(b"", 1) is False
    raw = bytearray(bson.encode(nested(300)))
    raw[0] ^= 1  # wrong total length
    assert bson_depth_exceeds(bytes(raw), 10) is False
    assert bson_depth_exceeds(memoryview(bson.encode(nested(300))), 10) is True


def test_first_key():
    raw = bson.encode({"find": "c", "filter": {}})
    assert first_key(raw) == "find"
    assert first_key(memoryview(b"xx" + raw)[2:]) == "find"
    long_name = "k" * 200
    assert first_key(memoryview(bson.encode({long_name: 1}))) == long_name
    assert first_key(b"xyz" + raw, 3) == "find"
    assert first_key(bson.encode({})) is None
    assert first_key(b"\x05\x00") is None


def test_split_documents():
    docs = [bson.encode({"i": i}) for i in range(4)]
    buf = b"junk" + b"".join(docs)
    views = split_documents(buf, 4, len(buf))
    assert [bytes(v) for v in views] == docs
    with pytest.raises(ProtocolError):
        split_documents(buf, 4, len(buf) - 1)
    with pytest.raises(ProtocolError):
        split_documents(b"\x04\x00\x00\x00", 0, 4)


def test_decode_and_encode_defaults_are_lossless():
    far = DatetimeMS(2**62)
    doc = {"d": far, "u": bson.Binary(b"\x01" * 16, 4), "l": bson.Int64(5), "t": datetime.datetime(2020, 1, 1)}
    out = decode_document(bson.encode(doc), DEFAULT_CODEC_OPTIONS)
    assert out["d"] == far and isinstance(out["u"], bson.Binary) and out["u"].subtype == 4
    assert type(out["l"]) is bson.Int64
    assert out["t"] == datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
    assert encode_document(out) == bson.encode(doc)
    raw = bson.encode({"a": 1})
    assert encode_document(raw) is raw or encode_document(raw) == raw
    with pytest.raises(InvalidBSONError):
        decode_document(b"\x06\x00\x00\x00\x08\x00")
