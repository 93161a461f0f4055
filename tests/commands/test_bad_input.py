"""Hostile and broken input over raw sockets against the real server process.

Each case gets a clear error reply or a closed connection; afterwards the server is
still up, a long-lived pymongo client and fresh connections still work, and no file
appears outside the storage root.
"""
import os
import random
import socket
import struct

import bson
import pytest

from tests.commands.rawmsg import RawMsg
from tests.wire.helpers import frame, header, op_msg, op_query
from tests.wire.rawclient import RawClient
from wire.protocol import decode_reply

BIG = 17 * 1024 * 1024


@pytest.fixture
def healthy(server, client):
    """Checks, after the test body, that the server is fine for everybody."""
    parent = os.path.dirname(os.path.abspath(server.storage))
    before = set(os.listdir(parent))
    client.bad_input_probe.c.insert_one({"before": True})
    yield
    assert server.alive(), server.log()
    assert client.admin.command("ping")["ok"] == 1.0
    assert client.bad_input_probe.c.count_documents({"before": True}) >= 1
    with RawMsg(server.port) as raw:
        assert raw.cmd({"ping": 1, "$db": "admin"})["ok"] == 1.0
    assert set(os.listdir(parent)) == before, "files appeared next to the storage root"
    root = os.path.realpath(server.storage)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            assert os.path.realpath(os.path.join(dirpath, name)).startswith(root + os.sep)


def _closed(c: RawClient) -> bool:
    try:
        data = c.sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return data == b""


def _reply(c: RawClient) -> dict:
    return decode_reply(c.recv_frame())["body"]


def test_random_bytes_close_the_connection(server, healthy):
    rnd = random.Random(1234)
    for _ in range(5):
        with RawClient(server.port, timeout=5) as c:
            junk = bytes(rnd.randrange(256) for _ in range(2048))
            junk = struct.pack("<i", 2048) + junk[4:12] + struct.pack("<i", 7777) + junk[16:]   # bad opcode
            c.send(junk)
            assert _closed(c)


@pytest.mark.parametrize("length", [2**31 - 1, -1, -(2**31), 0, 15, 48_000_001])
def test_impossible_lengths_close_at_once(server, healthy, length):
    with RawClient(server.port, timeout=5) as c:
        c.send(struct.pack("<iiii", length, 1, 0, 2013))
        assert _closed(c)


def test_unknown_and_removed_opcodes_close(server, healthy):
    for opcode in (1, 1000, 2002, 2005, 2006, 9999):
        with RawClient(server.port, timeout=5) as c:
            c.send(frame(opcode, b"\x00" * 24))
            assert _closed(c)


def test_truncated_frame_does_not_block_others(server, client, healthy):
    with RawClient(server.port, timeout=5) as stuck:
        msg = op_msg({"ping": 1, "$db": "admin"})
        stuck.send(msg[: len(msg) // 2])           # half a frame, then silence
        assert client.admin.command("ping")["ok"] == 1.0
        with RawMsg(server.port) as other:
            assert other.cmd({"ping": 1, "$db": "admin"})["ok"] == 1.0
        stuck.send(msg[len(msg) // 2:])            # completing it later still works
        assert _reply(stuck)["ok"] == 1.0
    with RawClient(server.port, timeout=5) as c:
        c.send(header(1000, 1, 0, 2013) + b"\x00" * 100)
    # closed mid-frame by the client: nothing to assert beyond the healthy checks


def test_invalid_bson_gets_an_error_and_keeps_the_connection(server, healthy):
    good = bson.encode({"ping": 1, "$db": "admin"})
    with RawClient(server.port, timeout=5) as c:
        bad_len = struct.pack("<i", len(good) + 50) + good[4:]           # runs past the frame: framing error
        c.send(op_msg(bad_len))
        assert _closed(c)
    with RawClient(server.port, timeout=5) as c:
        short = struct.pack("<i", len(good) - 3) + good[4:]              # leftover bytes: a bogus section
        c.send(op_msg(short))
        assert _closed(c)
    with RawClient(server.port, timeout=5) as c:
        garbage_type = good[:4] + b"\x99" + good[5:]                      # unknown element type
        c.send(op_msg(garbage_type))
        r = _reply(c)
        assert r["ok"] == 0.0 and r["code"] == 22
        c.send(op_msg({"ping": 1, "$db": "admin"}))
        assert _reply(c)["ok"] == 1.0


def _with_invalid_utf8(doc: dict, marker: str) -> bytes:
    raw = bson.encode(doc)
    i = raw.index(marker.encode())
    return raw[:i] + b"\xff\xfe" + raw[i + 2:]


def test_invalid_utf8_strings(server, healthy):
    with RawClient(server.port, timeout=5) as c:
        raw = _with_invalid_utf8({"insert": "c", "documents": [{"s": "ZZok"}], "$db": "bad_input_probe"}, "ZZ")
        c.send(op_msg(raw))
        r = _reply(c)
        assert r["ok"] == 0.0 and r["code"] == 22
        doc = _with_invalid_utf8({"s": "ZZok"}, "ZZ")
        c.send(op_msg({"insert": "c", "$db": "bad_input_probe"}, sequences=[("documents", [doc])]))
        r = _reply(c)
        assert r["ok"] == 0.0 and r["code"] == 22
        c.send(op_msg({"ping": 1, "$db": "admin"}))
        assert _reply(c)["ok"] == 1.0


def test_seventeen_megabyte_documents(server, client, healthy):
    pad = "x" * BIG
    with RawClient(server.port, timeout=30) as c:
        c.send(op_msg({"insert": "big", "documents": [{"pad": pad}], "$db": "bad_input_probe"}))
        r = _reply(c)
        assert r["ok"] == 0.0 and r["code"] == 10334 and "16793600" in r["errmsg"] or r["code"] == 10334
        c.send(op_msg({"insert": "big", "$db": "bad_input_probe"}, sequences=[("documents", [{"pad": pad}])]))
        r = _reply(c)
        assert r["ok"] == 0.0 and r["code"] == 10334
        # just over 16 MiB: passes the wire's command allowance, refused by the document limit
        c.send(op_msg({"insert": "big", "documents": [{"pad": "y" * (16 * 1024 * 1024)}],
                       "$db": "bad_input_probe"}))
        r = _reply(c)
        assert r["ok"] == 1.0 and r["n"] == 0 and r["writeErrors"][0]["code"] == 10334
        c.send(op_msg({"ping": 1, "$db": "admin"}))
        assert _reply(c)["ok"] == 1.0
    assert client.bad_input_probe.big.count_documents({}) == 0


def _nested(depth: int) -> dict:
    d: dict = {"leaf": 1}
    for _ in range(depth - 1):
        d = {"a": d}
    return d


def test_deeply_nested_documents(server, client, healthy):
    with RawMsg(server.port) as raw:
        r = raw.cmd({"insert": "deep", "documents": [_nested(150)], "$db": "bad_input_probe"})
        assert r["ok"] == 1.0 and r["n"] == 0 and r["writeErrors"][0]["code"] == 15
        r = raw.cmd({"insert": "deep", "documents": [_nested(99)], "$db": "bad_input_probe"})
        assert r["n"] == 1
        r = raw.cmd({"find": "deep", "filter": _nested(300), "$db": "bad_input_probe"})
        assert r["ok"] == 0.0 and r["code"] == 15
        # nesting made of arrays counts too
        arr: list = [1]
        for _ in range(150):
            arr = [arr]
        r = raw.cmd({"insert": "deep", "documents": [{"arr": arr}], "$db": "bad_input_probe"})
        assert r["writeErrors"][0]["code"] == 15
    assert client.bad_input_probe.deep.count_documents({}) == 1


@pytest.mark.parametrize("name", ["a/b", "..", "../escape", "a\x00b", "a$b", "$", "x.y", "a\\b", "", "a b"])
def test_invalid_database_names(server, healthy, name):
    with RawMsg(server.port) as raw:
        for body in ({"insert": "c", "documents": [{"x": 1}]}, {"find": "c"}, {"create": "c"},
                     {"drop": "c"}, {"listCollections": 1}, {"dropDatabase": 1}):
            r = raw.cmd({**body, "$db": name})
            assert r["ok"] == 0.0 and r["code"] == 73, (name, body, r)
        if "." not in name:             # in a namespace the first dot ends the database name
            r = raw.cmd({"bulkWrite": 1, "ops": [{"insert": 0, "document": {}}], "nsInfo": [{"ns": f"{name}.c"}],
                         "$db": "admin"})
            assert r["ok"] == 0.0 and r["code"] == 73
            r = raw.cmd({"renameCollection": "bad_input_probe.c", "to": f"{name}.c", "$db": "admin"})
            assert r["ok"] == 0.0 and r["code"] == 73


def test_hostile_collection_names_stay_inside_the_root(server, client, healthy):
    with RawMsg(server.port) as raw:
        for name in ("../../escape", "..", "a/../../b", "/abs", "nul\x00x", "$bad", "system.evil", "ok.dotted/..x"):
            r = raw.cmd({"insert": name, "documents": [{"x": 1}], "$db": "bad_input_probe"})
            if r["ok"] == 1.0:
                assert r["n"] == 1
                assert raw.cmd({"count": name, "$db": "bad_input_probe"})["n"] == 1
            else:
                assert r["code"] == 73, (name, r)
    client.admin.command("fsync")                   # flush: table files are written now
    names = client.bad_input_probe.list_collection_names()
    assert "a/../../b" in names and "/abs" in names and "ok.dotted/..x" in names
    assert "../../escape" not in names and ".." not in names and "$bad" not in names


def test_non_document_arguments_and_command_shapes(server, healthy):
    with RawMsg(server.port) as raw:
        assert raw.cmd({"insert": "c", "documents": [1, "x"], "$db": "bad_input_probe"})["code"] == 14
        assert raw.cmd({"insert": 5, "documents": [{}], "$db": "bad_input_probe"})["code"] == 73
        assert raw.cmd({"find": "c", "filter": [], "$db": "bad_input_probe"})["code"] == 14
        assert raw.cmd({"update": "c", "updates": "no", "$db": "bad_input_probe"})["code"] == 14
        assert raw.cmd({"delete": "c", "deletes": [{"q": {}, "limit": 5}], "$db": "bad_input_probe"})["code"] == 9
        assert raw.cmd({"getMore": 1.5, "collection": "c", "$db": "bad_input_probe"})["code"] == 14
        r = raw.cmd({"ping": 1})                              # no $db
        assert r["ok"] == 0.0 and r["code"] == 40571
        r = raw.cmd({"insert": "c", "$db": "bad_input_probe"}, sequences={"documents": [{"_id": 1}],
                                                                          "updates": [{}]})
        assert r["ok"] == 0.0 and r["code"] == 40415          # a sequence is a field like any other
        r = raw.cmd({"insert": "c", "documents": [{"_id": 2}], "$db": "bad_input_probe"},
                    sequences={"documents": [{"_id": 3}]})
        assert r["ok"] == 0.0 and r["code"] == 2              # body and sequence both define documents


def test_legacy_op_query_only_for_the_handshake(server, healthy):
    with RawClient(server.port, timeout=5) as c:
        c.send(op_query("admin.$cmd", {"isMaster": 1, "helloOk": True}))
        r = decode_reply(c.recv_frame())["documents"][0]
        assert r["ok"] == 1.0 and r["ismaster"] is True and r["helloOk"] is True
        c.send(op_query("bad_input_probe.$cmd", {"find": "c"}))
        r = decode_reply(c.recv_frame())["documents"][0]
        assert r["ok"] == 0.0 and r["code"] == 352
        c.send(op_query("bad_input_probe.c", {"x": 1}))
        r = decode_reply(c.recv_frame())["documents"][0]
        assert r["ok"] == 0.0 and r["code"] == 352
