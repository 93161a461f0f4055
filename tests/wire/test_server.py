"""Live tests of WireServer with pymongo and raw sockets."""
from __future__ import annotations

import importlib
import socket
import struct
import threading
import time

import bson
import pymongo
import pytest

from wire import compression
from wire.constants import OpCode
from wire.protocol import encode_op_msg, encode_op_query

from .conftest import PingHandler, ServerThread
from .helpers import compressed, op_msg, op_query
from .rawclient import RawClient


def client(port: int, **kwargs) -> pymongo.MongoClient:
    return pymongo.MongoClient(
        f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=5000, **kwargs
    )


def test_pymongo_ping_and_hello(live):
    with client(live.port) as c:
        assert c.admin.command("ping")["ok"] == 1.0
        hello = c.admin.command("hello")
        assert hello["maxWireVersion"] == 25 and hello["connectionId"] >= 1
        with pytest.raises(pymongo.errors.OperationFailure) as info:
            c.admin.command("nosuch")
        assert info.value.code == 59


def test_connection_ids_increase_and_hooks_run(live):
    with RawClient(live.port) as a, RawClient(live.port) as b:
        a.send(op_msg({"hello": 1, "$db": "admin"}, request_id=1))
        b.send(op_msg({"hello": 1, "$db": "admin"}, request_id=2))
        ida = a.recv_reply()["body"]["connectionId"]
        idb = b.recv_reply()["body"]["connectionId"]
        assert ida != idb and ida in live.handler.connected and idb in live.handler.connected
    deadline = time.time() + 5
    while time.time() < deadline and not {ida, idb} <= set(live.handler.disconnected):
        time.sleep(0.01)
    assert {ida, idb} <= set(live.handler.disconnected)


def _pymongo_has(name: str) -> bool:
    """pymongo needs backports.zstd (or Python 3.14's compression.zstd) for zstd;
    without it the raw-socket part of the test below still covers zstd."""
    if name != "zstd":
        return True
    for module in ("backports.zstd", "compression.zstd"):
        try:
            importlib.import_module(module)
            return True
        except ImportError:
            pass
    return False


@pytest.mark.parametrize("name", ["zstd", "zlib", "snappy"])
def test_compression_end_to_end(live, name):
    cid = compression.NAME_TO_ID[name]
    if _pymongo_has(name):
        with client(live.port, compressors=name) as c:
            reply = c.admin.command("ping")
            assert reply["requestCompressor"] == cid and reply["connCompressor"] == name
            echoed = c.admin.command("echo", 1, ok=1.0, pad="p" * 10_000)  # large compressed round trip
            assert echoed["pad"] == "p" * 10_000
    # Raw check that replies to compressed requests are compressed with the same compressor,
    # and that a (never compressed) hello reply stays uncompressed.
    with RawClient(live.port) as raw:
        raw.send(compressed(op_msg({"ping": 1, "$db": "admin"}, request_id=5), cid))
        out = raw.recv_reply()
        assert out["compressor_id"] == cid and out["response_to"] == 5 and out["body"]["ok"] == 1.0
        raw.send(compressed(op_msg({"hello": 1, "$db": "admin"}, request_id=6), cid))
        out = raw.recv_reply()
        assert out["compressor_id"] is None and out["body"]["ismaster"] is True
        raw.send(op_msg({"ping": 1, "$db": "admin"}, request_id=7))  # uncompressed request
        assert raw.recv_reply()["compressor_id"] is None


def test_legacy_op_query_handshake(live):
    with RawClient(live.port) as raw:
        raw.send(encode_op_query(11, "admin.$cmd", {"isMaster": 1, "compression": ["zlib"]}))
        out = raw.recv_reply()
        assert out["op"] == OpCode.REPLY and out["response_to"] == 11
        assert out["documents"][0]["ismaster"] is True and out["documents"][0]["compression"] == ["zlib"]
        raw.send(compressed(op_query("admin.$cmd", {"ping": 1}, request_id=12), 2))
        out = raw.recv_reply()
        assert out["op"] == OpCode.REPLY and out["compressor_id"] == 2 and out["documents"][0]["ok"] == 1.0


def test_garbage_closes_only_that_socket(live):
    with client(live.port) as c:
        c.admin.command("ping")
        for garbage in (b"\xff" * 64, struct.pack("<iiii", 100, 1, 0, 2002) + b"\x00" * 84, op_msg({"a": 1}, flags=4)):
            with RawClient(live.port) as bad:
                bad.send(garbage)
                assert bad.is_closed_by_peer()
            assert c.admin.command("ping")["ok"] == 1.0


def test_invalid_bson_gets_error_reply_and_connection_survives(live):
    bad_body = struct.pack("<i", 12) + b"\x99a\x00\x01\x00\x00\x00\x00"
    with RawClient(live.port) as raw:
        raw.send(op_msg(bad_body, request_id=21))
        out = raw.recv_reply()
        assert out["response_to"] == 21
        assert out["body"]["ok"] == 0 and out["body"]["code"] == 22 and out["body"]["codeName"] == "InvalidBSON"
        raw.send(op_msg({"invalid": 1, "$db": "a"}, request_id=22))
        assert raw.recv_reply()["body"]["code"] == 22
        raw.send(op_msg({"ping": 1, "$db": "admin"}, request_id=23))
        assert raw.recv_reply()["body"]["ok"] == 1.0


def test_handler_exception_becomes_internal_error(live):
    with client(live.port) as c:
        with pytest.raises(pymongo.errors.OperationFailure) as info:
            c.admin.command("boom")
        assert info.value.code == 1 and "kaboom" in str(info.value)
        with pytest.raises(pymongo.errors.OperationFailure) as info:
            c.admin.command("unencodable")
        assert info.value.code == 1
        assert c.admin.command("ping")["ok"] == 1.0


def test_pipelined_requests_and_more_to_come_keep_order(live):
    with RawClient(live.port) as raw:
        data = b"".join(
            [
                op_msg({"sleep": 0.05, "$db": "a"}, request_id=31),
                op_msg({"sequences": 1, "$db": "a"}, flags=2, sequences=[("docs", [{"a": 1}])], request_id=32),
                op_msg({"ping": 1, "$db": "a"}, request_id=33),
                op_msg({"sequences": 1, "$db": "a"}, sequences=[("docs", [{"a": 1}, {"b": 2}])], request_id=34),
            ]
        )
        raw.send(data)
        replies = [raw.recv_reply() for _ in range(3)]  # no reply to the moreToCome message
        assert [r["response_to"] for r in replies] == [31, 33, 34]
        assert replies[0]["body"]["slept"] == 0.05 and replies[2]["body"]["seq"] == {"docs": 2}
    names = [s[1] for s in live.handler.seen]
    i = names.index("sleep")
    assert names[i : i + 4] == ["sleep", "sequences", "ping", "sequences"]


def test_exhaust_stream(live):
    with RawClient(live.port) as raw:
        raw.send(op_msg({"stream": 3, "$db": "a"}, flags=1 << 16, request_id=41))
        replies = [raw.recv_reply() for _ in range(4)]
        assert [r["body"]["n"] for r in replies] == [0, 1, 2, 3]
        assert [bool(r["flags"] & 2) for r in replies] == [True, True, True, False]
        assert replies[0]["response_to"] == 41
        for prev, cur in zip(replies, replies[1:]):
            assert cur["response_to"] == prev["request_id"]
        # without exhaustAllowed the same command gets one plain reply
        raw.send(op_msg({"stream": 3, "$db": "a"}, request_id=42))
        out = raw.recv_reply()
        assert out["flags"] == 0 and out["body"]["n"] == 0
        raw.send(op_msg({"ping": 1, "$db": "a"}, request_id=43))
        assert raw.recv_reply()["response_to"] == 43


def test_exhaust_stream_ends_on_encoding_error(live):
    with RawClient(live.port) as raw:
        raw.send(op_msg({"stream": 5, "badAt": 2, "$db": "a"}, flags=1 << 16, request_id=44))
        replies = [raw.recv_reply() for _ in range(3)]
        assert [r["body"].get("n") for r in replies[:2]] == [0, 1]
        assert replies[2]["body"]["code"] == 1 and replies[2]["flags"] == 0
        raw.send(op_msg({"ping": 1, "$db": "a"}, request_id=45))
        assert raw.recv_reply()["response_to"] == 45


def test_messages_before_a_bad_frame_are_answered(live):
    with RawClient(live.port) as raw:
        raw.send(op_msg({"ping": 1, "$db": "a"}, request_id=71) + b"\xff" * 32)
        assert raw.recv_reply()["response_to"] == 71
        assert raw.is_closed_by_peer()


def test_close_connection_reply_and_half_close(live):
    with RawClient(live.port) as raw:
        raw.send(op_msg({"bye": 1, "$db": "a"}, request_id=51))
        assert raw.recv_reply()["body"]["ok"] == 1.0
        assert raw.is_closed_by_peer()
    with RawClient(live.port) as raw:
        raw.send(op_msg({"sleep": 0.05, "$db": "a"}, request_id=52))
        raw.sock.shutdown(socket.SHUT_WR)
        assert raw.recv_reply()["response_to"] == 52
        assert raw.is_closed_by_peer()


def test_200_concurrent_raw_connections(live):
    socks = [RawClient(live.port) for _ in range(200)]
    try:
        for i, s in enumerate(socks):
            s.send(op_msg({"sleep": 0.2, "$db": "a"}, request_id=1000 + i))
        time.sleep(0.05)
        open_now = live.call(_count_connections(live.server))
        assert open_now >= 200
        start = time.monotonic()
        for i, s in enumerate(socks):
            out = s.recv_reply()
            assert out["response_to"] == 1000 + i and out["body"]["slept"] == 0.2
        # handled concurrently: 200 x 0.2 s sequentially would be 40 s
        assert time.monotonic() - start < 5
    finally:
        for s in socks:
            s.close()


async def _count_connections(server) -> int:
    return len(server.connections)


def test_slow_reader_does_not_block_others(live):
    slow = RawClient(live.port)
    try:
        # 40 requests for 1 MiB replies that the client never reads: the server must
        # stop reading from it (backpressure) without stalling other connections.
        slow.send(b"".join(op_msg({"big": 1 << 20, "$db": "a"}, request_id=i) for i in range(40)))
        with client(live.port) as c:
            t0 = time.monotonic()
            for _ in range(50):
                c.admin.command("ping")
            assert time.monotonic() - t0 < 5
        first = slow.recv_reply()
        assert first["response_to"] == 0 and len(first["body"]["data"]) == 1 << 20
    finally:
        slow.close()


def test_many_threads_pymongo(live):
    with client(live.port, maxPoolSize=20) as c:
        errors = []

        def work():
            try:
                for _ in range(30):
                    assert c.admin.command("ping")["ok"] == 1.0
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors


def test_max_connections_and_stop():
    st = ServerThread(PingHandler(), max_connections=2)
    try:
        a, b = RawClient(st.port), RawClient(st.port)
        for i, s in enumerate((a, b)):
            s.send(op_msg({"ping": 1, "$db": "a"}, request_id=i))
            assert s.recv_reply()["body"]["ok"] == 1.0
        with RawClient(st.port) as third:
            assert third.is_closed_by_peer()
        a.send(op_msg({"ping": 1, "$db": "a"}, request_id=9))
        assert a.recv_reply()["response_to"] == 9
        st.call(st.server.stop())
        assert a.is_closed_by_peer() and b.is_closed_by_peer()
        assert sorted(st.handler.disconnected) == sorted(st.handler.connected[:2])
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", st.port), timeout=2).recv(1)
        a.close()
        b.close()
    finally:
        st.close()


def test_encoded_reply_bytes_are_spliced(live):
    with RawClient(live.port) as raw:
        body = {"echo": 1, "$db": "a", "x": bson.Int64(3)}
        raw.send(encode_op_msg(61, 0, body))
        frame = raw.recv_frame()
        assert frame[21:] == bson.encode(body)


def test_oversize_reply_becomes_error(live):
    with client(live.port) as c:
        with pytest.raises(pymongo.errors.OperationFailure) as info:
            c.admin.command("big", 16 * 1024 * 1024 + 20 * 1024)
        assert info.value.code == 10334
        assert len(c.admin.command("big", 1000)["data"]) == 1000


def test_stop_with_a_client_that_does_not_read():
    st = ServerThread(PingHandler())
    slow = RawClient(st.port)
    try:
        slow.send(b"".join(op_msg({"big": 4 << 20, "$db": "a"}, request_id=i) for i in range(8)))
        time.sleep(0.3)
        t0 = time.monotonic()
        st.call(st.server.stop(timeout=1.0))
        assert time.monotonic() - t0 < 5
        assert st.call(_count_connections(st.server)) == 0
        assert len(st.handler.disconnected) == 1
    finally:
        slow.close()
        st.close()
