"""Sans-IO codec tests with hand-built frames."""
from __future__ import annotations

import struct
import zlib

import bson
from bson.raw_bson import RawBSONDocument
import pytest
import snappy
import zstandard

from wire import compression
from wire.constants import MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE_BYTES, OpCode
from wire.errors import DocumentTooLargeError, InvalidBSONError, ProtocolError
from wire.messages import OpMsgRequest, OpQueryRequest
from wire.protocol import (
    MessageReader,
    decode_reply,
    encode_op_msg,
    encode_op_query,
    encode_op_reply,
    parse_message,
)

from .helpers import compressed, frame, header, op_msg, op_query


def feed_one(data: bytes):
    reqs = MessageReader().feed(data)
    assert len(reqs) == 1
    return reqs[0]


# ------------------------------------------------------------------ OP_MSG


def test_op_msg_kind0_body():
    req = feed_one(op_msg({"ping": 1, "$db": "admin"}, request_id=42))
    assert isinstance(req, OpMsgRequest)
    assert req.op == OpCode.MSG == 2013
    assert req.request_id == 42 and req.response_to == 0
    assert req.body == {"ping": 1, "$db": "admin"}
    assert req.raw_body == bson.encode({"ping": 1, "$db": "admin"})
    assert req.command_name == "ping"
    assert req.sequences == {} and req.raw_sequences == {}
    assert not req.more_to_come and not req.exhaust_allowed and not req.checksum_present
    assert req.compressor_id is None and not req.compressed


def test_op_msg_kind1_sequences():
    docs = [{"_id": i, "x": "y" * i} for i in range(3)]
    data = op_msg(
        {"insert": "c", "$db": "db"},
        sequences=[("documents", docs), ("other", [{"a": 1}])],
    )
    req = feed_one(data)
    assert req.body == {"insert": "c", "$db": "db"}
    assert req.sequences == {"documents": docs, "other": [{"a": 1}]}
    raw = req.raw_sequences["documents"]
    assert [bytes(v) for v in raw] == [bson.encode(d) for d in docs]


def test_op_msg_sequence_before_body_and_empty_sequence():
    body = bson.encode({"update": "c"})
    name = b"updates\x00"
    payload = struct.pack("<I", 0) + b"\x01" + struct.pack("<i", 4 + len(name)) + name + b"\x00" + body
    req = feed_one(frame(2013, payload))
    assert req.body == {"update": "c"}
    assert req.sequences == {"updates": []}


def test_op_msg_flags():
    req = feed_one(op_msg({"insert": "c"}, flags=(1 << 1) | (1 << 16)))
    assert req.more_to_come and req.exhaust_allowed
    with pytest.raises(ProtocolError, match="required flag"):
        feed_one(op_msg({"ping": 1}, flags=1 << 2))
    # unknown optional bits (16-31) are ignored
    assert feed_one(op_msg({"ping": 1}, flags=1 << 20)).body == {"ping": 1}


def test_op_msg_checksum_valid_and_invalid():
    req = feed_one(op_msg({"ping": 1}, checksum=True))
    assert req.checksum_present and req.body == {"ping": 1}
    with pytest.raises(ProtocolError, match="checksum"):
        feed_one(op_msg({"ping": 1}, checksum=True, bad_crc=True))


def test_op_msg_structure_errors():
    body = bson.encode({"ping": 1})
    flags = struct.pack("<I", 0)
    cases = {
        "no body": flags + b"\x01" + struct.pack("<i", 6) + b"x\x00",
        "two bodies": flags + b"\x00" + body + b"\x00" + body,
        "unknown kind": flags + b"\x02" + body,
        "body too long": flags + b"\x00" + struct.pack("<i", len(body) + 10) + body[4:],
        "truncated section": flags + b"\x00" + b"\x05\x00",
        "sequence too long": flags + b"\x00" + body + b"\x01" + struct.pack("<i", 100) + b"d\x00",
        "identifier not terminated": flags + b"\x00" + body + b"\x01" + struct.pack("<i", 6) + b"ab",
        "sequence docs do not tile": flags + b"\x00" + body + b"\x01" + struct.pack("<i", 4 + 2 + 7) + b"d\x00"
        + struct.pack("<i", 9) + b"\x00\x00\x00",
        "no sections": flags,
    }
    for name, payload in cases.items():
        with pytest.raises(ProtocolError):
            feed_one(frame(2013, payload))
        # the same with a duplicate identifier
    dup = op_msg({"insert": "c"}, sequences=[("documents", [{"a": 1}]), ("documents", [{"a": 2}])])
    with pytest.raises(ProtocolError, match="duplicate"):
        feed_one(dup)


def test_invalid_bson_body_is_flagged_not_fatal():
    good = op_msg({"ping": 1}, request_id=2)
    # well-framed: declared length matches, but the element type 0x99 is invalid
    bad_body = struct.pack("<i", 12) + b"\x99a\x00\x01\x00\x00\x00\x00"
    bad = op_msg(bad_body, request_id=1)
    reader = MessageReader()
    reqs = reader.feed(bad + good)
    assert [r.request_id for r in reqs] == [1, 2]
    with pytest.raises(InvalidBSONError) as info:
        reqs[0].body
    assert info.value.code == 22 and info.value.code_name == "InvalidBSON"
    assert info.value.to_document()["code"] == 22
    with pytest.raises(InvalidBSONError):  # keeps failing, no half-decoded cache
        reqs[0].validate()
    assert reqs[1].body == {"ping": 1}
    # a bad document inside a sequence: body still fine, sequences flagged
    req = feed_one(op_msg({"insert": "c"}, sequences=[("documents", [bad_body])]))
    assert req.body == {"insert": "c"}
    with pytest.raises(InvalidBSONError):
        req.sequences


def test_oversize_documents_are_flagged():
    big = bson.encode({"x": b"a" * (MAX_BSON_OBJECT_SIZE + 16 * 1024)})
    req = feed_one(op_msg(big))
    with pytest.raises(DocumentTooLargeError) as info:
        req.body
    assert info.value.code == 10334
    # the body may use the 16 KiB command overhead
    ok = bson.encode({"x": b"a" * (MAX_BSON_OBJECT_SIZE + 1000)})
    assert len(feed_one(op_msg(ok)).body["x"]) == MAX_BSON_OBJECT_SIZE + 1000
    # a sequence document may not
    req = feed_one(op_msg({"insert": "c"}, sequences=[("documents", [ok])]))
    with pytest.raises(DocumentTooLargeError):
        req.sequences


# ------------------------------------------------------------------ OP_QUERY


def test_op_query_plain_and_projection():
    req = feed_one(op_query("admin.$cmd", {"isMaster": 1, "client": {"a": 1}}, {"x": 1}, flags=4, skip=0, limit=-1))
    assert isinstance(req, OpQueryRequest)
    assert req.op == OpCode.QUERY
    assert req.full_collection_name == "admin.$cmd"
    assert req.database == "admin" and req.collection == "$cmd" and req.is_command
    assert req.flags == 4 and req.number_to_skip == 0 and req.number_to_return == -1
    assert req.body == {"isMaster": 1, "client": {"a": 1}}
    assert req.return_fields_selector == {"x": 1}
    assert req.command_name == "isMaster"
    assert not req.more_to_come and req.sequences == {}


def test_op_query_wrapped_query():
    q = {"$query": {"saslStart": 1, "mechanism": "SCRAM-SHA-256"}, "$readPreference": {"mode": "primary"}}
    req = feed_one(op_query("admin.$cmd", q))
    assert req.query == q
    assert req.body == {"saslStart": 1, "mechanism": "SCRAM-SHA-256", "$readPreference": {"mode": "primary"}}
    assert req.command_name == "saslStart"
    assert req.return_fields_selector is None


def test_op_query_errors():
    q = bson.encode({"isMaster": 1})
    with pytest.raises(ProtocolError):
        feed_one(frame(2004, struct.pack("<i", 0) + b"admin.$cmd"))  # no NUL, truncated
    with pytest.raises(ProtocolError):
        feed_one(frame(2004, struct.pack("<i", 0) + b"a.$cmd\x00" + struct.pack("<ii", 0, -1) + q[:-2]))
    with pytest.raises(ProtocolError):  # trailing garbage after the query
        feed_one(frame(2004, struct.pack("<i", 0) + b"a.$cmd\x00" + struct.pack("<ii", 0, -1) + q + b"\x01\x02"))
    bad = op_query("a.$cmd", struct.pack("<i", 7) + b"\x08\x00\x00")
    req = feed_one(bad)  # framing fine, BSON not
    with pytest.raises(InvalidBSONError):
        req.body


# ------------------------------------------------------------------ OP_COMPRESSED


@pytest.mark.parametrize("cid", [0, 1, 2, 3])
def test_op_compressed_each_compressor(cid):
    docs = [{"_id": i, "pad": "z" * 200} for i in range(20)]
    inner = op_msg({"insert": "c", "$db": "d"}, sequences=[("documents", docs)], request_id=77)
    req = feed_one(compressed(inner, cid))
    assert req.compressor_id == cid and req.compressed
    assert req.request_id == 77
    assert req.body == {"insert": "c", "$db": "d"}
    assert req.sequences["documents"] == docs


def test_op_compressed_query_and_checksum_inside():
    req = feed_one(compressed(op_query("admin.$cmd", {"hello": 1}), 2))
    assert isinstance(req, OpQueryRequest) and req.body == {"hello": 1} and req.compressor_id == 2
    req = feed_one(compressed(op_msg({"ping": 1}, checksum=True), 1))
    assert req.checksum_present and req.body == {"ping": 1}
    with pytest.raises(ProtocolError, match="checksum"):
        feed_one(compressed(op_msg({"ping": 1}, checksum=True, bad_crc=True), 3))


def test_op_compressed_errors():
    inner = op_msg({"ping": 1})
    payload = inner[16:]
    with pytest.raises(ProtocolError, match="uncompressedSize"):
        feed_one(compressed(inner, 2, size=len(payload) + 1))
    with pytest.raises(ProtocolError):
        feed_one(compressed(inner, 1, size=len(payload) - 1))
    with pytest.raises(ProtocolError):
        feed_one(compressed(inner, 3, size=len(payload) + 5))
    with pytest.raises(ProtocolError, match="out of bounds"):
        feed_one(compressed(inner, 2, size=MAX_MESSAGE_SIZE_BYTES))
    with pytest.raises(ProtocolError, match="out of bounds"):
        feed_one(compressed(inner, 2, size=-1))
    with pytest.raises(ProtocolError, match="unknown compressorId"):
        feed_one(compressed(inner, 9, data=payload))
    with pytest.raises(ProtocolError):
        feed_one(compressed(inner, 2, data=b"not zlib at all"))
    with pytest.raises(ProtocolError):
        feed_one(compressed(inner, 1, data=b"\x80\x80\x80\x80\x80\x80"))
    # a zlib bomb announcing a small size is cut off at that size
    bomb = zlib.compress(b"\x00" * 10_000_000)
    with pytest.raises(ProtocolError):
        feed_one(compressed(inner, 2, data=bomb, size=100))
    # a zstd frame declaring a larger content size
    with pytest.raises(ProtocolError):
        feed_one(compressed(inner, 3, data=zstandard.ZstdCompressor().compress(b"\x00" * 1000), size=100))
    # OP_COMPRESSED may only wrap OP_MSG / OP_QUERY
    reply = encode_op_reply(1, 2, {"ok": 1})
    with pytest.raises(ProtocolError, match="cannot wrap"):
        feed_one(compressed(reply, 0))
    with pytest.raises(ProtocolError, match="cannot wrap"):
        feed_one(compressed(compressed(inner, 0), 0))
    with pytest.raises(ProtocolError, match="truncated"):
        feed_one(frame(2012, b"\x01\x02"))


# ------------------------------------------------------------------ framing


def test_truncated_frames_and_chunked_feeding():
    msgs = [op_msg({"ping": i}, request_id=i) for i in range(5)]
    msgs.append(compressed(op_query("admin.$cmd", {"isMaster": 1}, request_id=99), 1))
    data = b"".join(msgs)
    for chunk in (1, 3, 7, 16, 17, 100, len(data)):
        reader = MessageReader()
        got = []
        for i in range(0, len(data), chunk):
            got += reader.feed(data[i : i + chunk])
        assert [r.request_id for r in got] == [0, 1, 2, 3, 4, 99]
        assert got[3].body == {"ping": 3}
        assert reader.buffered == 0
    reader = MessageReader()
    assert reader.feed(data[:-1]) and reader.buffered > 0
    # a frame truncated at the end of the stream never yields a message
    reader = MessageReader()
    assert reader.feed(msgs[0][:-3]) == []
    assert reader.feed(memoryview(msgs[0][-3:]))[0].body == {"ping": 0}


@pytest.mark.parametrize("length", [2**31 - 1, -1, -(2**31), 0, 15, MAX_MESSAGE_SIZE_BYTES + 1])
def test_bad_lengths_rejected_from_four_bytes(length):
    reader = MessageReader()
    with pytest.raises(ProtocolError, match="messageLength"):
        reader.feed(struct.pack("<i", length))
    with pytest.raises(ProtocolError):  # the reader stays failed
        reader.feed(op_msg({"ping": 1}))


def test_protocol_error_carries_preceding_requests():
    reader = MessageReader()
    with pytest.raises(ProtocolError) as info:
        reader.feed(op_msg({"ping": 1}, request_id=1) + op_msg({"ping": 2}, request_id=2) + b"\x00" * 20)
    assert [r.request_id for r in info.value.requests] == [1, 2]
    reader = MessageReader()
    reader.feed(op_msg({"ping": 1}, request_id=3)[:10])
    with pytest.raises(ProtocolError) as info:
        reader.feed(op_msg({"ping": 1}, request_id=3)[10:] + struct.pack("<iiii", 16, 0, 0, 1))
    assert [r.request_id for r in info.value.requests] == [3]


def test_max_length_accepted_as_prefix():
    reader = MessageReader()
    assert reader.feed(header(MAX_MESSAGE_SIZE_BYTES, 1, 0, 2013)) == []
    reader = MessageReader(max_message_size=1000)
    with pytest.raises(ProtocolError):
        reader.feed(header(1001, 1, 0, 2013))


@pytest.mark.parametrize("opcode", [1, 2001, 2002, 2005, 2006, 2007, 2010, 0, 12345, -5])
def test_unknown_or_legacy_opcodes_rejected_from_header(opcode):
    reader = MessageReader()
    assert reader.feed(struct.pack("<ii", 1000, 1)) == []
    with pytest.raises(ProtocolError, match="opcode"):
        reader.feed(struct.pack("<ii", 0, opcode))
    with pytest.raises(ProtocolError, match="opcode"):
        parse_message(frame(opcode, b"\x00" * 8))


def test_parse_message_length_mismatch():
    msg = op_msg({"ping": 1})
    with pytest.raises(ProtocolError):
        parse_message(msg + b"\x00")
    with pytest.raises(ProtocolError):
        parse_message(msg[:10])


# ------------------------------------------------------------------ encoding


def test_encode_op_msg_splices_raw_bytes():
    raw = bson.encode({"ok": 1.0, "cursor": {"firstBatch": [], "id": bson.Int64(0)}})
    msg = encode_op_msg(5, 42, raw)
    length, rid, rto, op = struct.unpack_from("<iiii", msg)
    assert (length, rid, rto, op) == (len(msg), 5, 42, 2013)
    assert msg[16:20] == b"\x00\x00\x00\x00" and msg[20] == 0 and msg[21:] == raw
    assert encode_op_msg(5, 42, {"ok": 1.0, "cursor": {"firstBatch": [], "id": bson.Int64(0)}}) == msg
    assert encode_op_msg(5, 42, RawBSONDocument(raw)) == msg


def test_encode_op_msg_flags_checksum_sequences_roundtrip():
    msg = encode_op_msg(3, 1, {"insert": "c"}, flags=1 | 2, sequences={"documents": [{"a": 1}, bson.encode({"b": 2})]})
    req = feed_one(msg)
    assert req.checksum_present and req.more_to_come
    assert req.sequences == {"documents": [{"a": 1}, {"b": 2}]}


@pytest.mark.parametrize("name", ["noop", "snappy", "zlib", "zstd"])
def test_encode_compressed_replies(name):
    msg = encode_op_msg(9, 8, {"ok": 1.0, "pad": "x" * 500}, compressor=name)
    assert struct.unpack_from("<i", msg, 12)[0] == 2012
    assert msg[24] == compression.NAME_TO_ID[name]
    out = decode_reply(msg)
    assert out["op"] == OpCode.MSG and out["response_to"] == 8
    assert out["body"] == {"ok": 1.0, "pad": "x" * 500}
    assert out["compressor_id"] == compression.NAME_TO_ID[name]
    rep = decode_reply(encode_op_reply(4, 3, [{"a": 1}, {"b": 2}], compressor=name, cursor_id=5))
    assert rep["op"] == OpCode.REPLY and rep["documents"] == [{"a": 1}, {"b": 2}] and rep["cursor_id"] == 5


def test_encode_op_reply_layout():
    msg = encode_op_reply(11, 9, {"ismaster": True})
    length, rid, rto, op, flags, cursor, start, n = struct.unpack_from("<iiiiiqii", msg)
    assert (length, rid, rto, op) == (len(msg), 11, 9, 1)
    assert flags == 8 and cursor == 0 and start == 0 and n == 1
    assert bson.decode(msg[36:]) == {"ismaster": True}


def test_encode_op_query_roundtrip():
    req = feed_one(encode_op_query(3, "admin.$cmd", {"hello": 1}, return_fields_selector={"a": 1}, compressor="zlib"))
    assert req.body == {"hello": 1} and req.return_fields_selector == {"a": 1} and req.compressor_id == 2


def test_compression_module_helpers():
    assert set(compression.SUPPORTED) == {"zstd", "snappy", "zlib"}
    assert not compression.may_compress("hello") and not compression.may_compress("isMaster")
    assert not compression.may_compress("saslContinue") and compression.may_compress("find")
    assert compression.compressor_id("ZLIB") == 2 and compression.compressor_id(3) == 3
    with pytest.raises(ValueError):
        compression.compressor_id("lz4")
    data = b"abc" * 1000
    for cid in (0, 1, 2, 3):
        assert compression.decompress(cid, compression.compress(cid, data), len(data)) == data
    assert snappy.uncompress(compression.compress("snappy", data)) == data
