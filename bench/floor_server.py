"""The floor: the fastest a Python wire server can answer pymongo on this machine.

A deliberately minimal, independent MongoDB wire server (it shares no code with
``wire/`` or ``mongolake``): one ``asyncio.Protocol``, OP_MSG framing by hand, BSON
via the ``bson`` package that ships with pymongo, documents kept as raw BSON bytes
in a Python dict keyed by the raw bytes of their ``_id`` value.  No storage, no
durability, no query engine.  MongoLake figures divided by this server's figures say
how much of the per-request budget MongoLake spends beyond framing and BSON.

Answers:

* ``hello`` / ``isMaster`` (OP_MSG, or OP_QUERY for the driver's first handshake) as a
  standalone: ``isWritablePrimary`` true, ``maxWireVersion`` 25, sessions supported;
* ``ping``, ``endSessions`` and anything unknown: ``{ok: 1}``;
* ``insert``: documents from a kind-1 ``documents`` sequence or the body array, stored
  without decoding (only the ``_id`` element is located);
* ``find`` with filter ``{_id: v}`` (one document) or ``{}`` (every document, with
  ``batchSize`` / ``limit`` and real ``getMore`` cursors); any other filter is refused
  with code 238 (NotImplemented) so a misuse is never mistaken for an empty result;
* ``getMore`` / ``killCursors`` for those cursors; ``drop`` clears a collection.

Run: ``python bench/floor_server.py --port 27999`` (``--host`` defaults to 127.0.0.1).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import signal
import struct

import bson
from bson.raw_bson import RawBSONDocument

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
HEADER = struct.Struct("<iiii")
INT32 = struct.Struct("<i")
MAX_MESSAGE = 48_000_000
GETMORE_BYTES = 16 * 1024 * 1024
FIRST_BATCH = 101

# Fixed-width BSON values by type byte (for locating the end of the _id element).
_FIXED = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16, 0x7F: 0, 0xFF: 0}
_LENGTH_PREFIXED = {0x02: 4, 0x0D: 4, 0x0E: 4}  # string-like: int32 length + bytes
_DOC_LIKE = {0x03, 0x04}  # int32 total length including itself


def _hello(conn_id: int) -> dict:
    return {
        "helloOk": True,
        "ismaster": True,
        "isWritablePrimary": True,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": MAX_MESSAGE,
        "maxWriteBatchSize": 100_000,
        "localTime": datetime.datetime.now(datetime.timezone.utc),
        "logicalSessionTimeoutMinutes": 30,
        "connectionId": conn_id,
        "minWireVersion": 0,
        "maxWireVersion": 25,
        "readOnly": False,
        "ok": 1.0,
    }


def id_key(raw: bytes) -> bytes:
    """The raw bytes (type byte + value) of a document's ``_id`` element.

    pymongo writes ``_id`` first in top-level documents, so this normally reads a few
    bytes; otherwise (or for an unusual type) it falls back to a full decode.
    """
    t = raw[4]
    if raw[5:9] == b"_id\x00":
        start = 9
        if t in _FIXED:
            return bytes((t,)) + raw[start:start + _FIXED[t]]
        if t in _LENGTH_PREFIXED:
            n = INT32.unpack_from(raw, start)[0]
            return bytes((t,)) + raw[start:start + 4 + n]
        if t in _DOC_LIKE:
            n = INT32.unpack_from(raw, start)[0]
            return bytes((t,)) + raw[start:start + n]
        if t == 0x05:
            n = INT32.unpack_from(raw, start)[0]
            return bytes((t,)) + raw[start:start + 5 + n]
    return value_key(bson.decode(raw)["_id"])


def value_key(value) -> bytes:
    """The same key for a Python value (a filter's ``_id``)."""
    enc = bson.encode({"_id": value})
    return enc[4:5] + enc[9:-1]


def _cstring(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(b"\x00", pos)
    return buf[pos:end].decode(), end + 1


def _split_docs(buf: bytes) -> list[bytes]:
    docs, pos, end = [], 0, len(buf)
    while pos < end:
        n = INT32.unpack_from(buf, pos)[0]
        docs.append(buf[pos:pos + n])
        pos += n
    return docs


class Store:
    """Namespaces -> ``{id_key: raw document bytes}``; cursors over lists of raw docs."""

    def __init__(self) -> None:
        self.collections: dict[str, dict[bytes, bytes]] = {}
        self.cursors: dict[int, tuple[str, list[bytes], int]] = {}
        self._ids = itertools.count(1)

    def new_cursor(self, ns: str, docs: list[bytes], pos: int) -> int:
        cid = next(self._ids)
        self.cursors[cid] = (ns, docs, pos)
        return cid


class FloorProtocol(asyncio.Protocol):
    _conn_ids = itertools.count(1)

    def __init__(self, store: Store) -> None:
        self.store = store
        self.buf = bytearray()
        self.conn_id = next(self._conn_ids)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        out = []
        while len(buf) >= 16:
            length, request_id, _, op = HEADER.unpack_from(buf, 0)
            if length < 16 or length > MAX_MESSAGE:
                self.transport.close()
                return
            if len(buf) < length:
                break
            msg = bytes(buf[16:length])
            del buf[:length]
            if op == OP_MSG:
                out.append(self._op_msg(request_id, msg))
            elif op == OP_QUERY:
                out.append(self._op_query(request_id, msg))
            else:
                self.transport.close()
                return
        if out:
            self.transport.write(b"".join(out))

    # -- framing ---------------------------------------------------------------------
    def _op_msg(self, request_id: int, msg: bytes) -> bytes:
        flags = INT32.unpack_from(msg, 0)[0]
        end = len(msg) - (4 if flags & 1 else 0)
        pos, body, seqs = 4, None, {}
        while pos < end:
            kind = msg[pos]
            pos += 1
            n = INT32.unpack_from(msg, pos)[0]
            if kind == 0:
                body = bson.decode(msg[pos:pos + n])
            else:
                name, start = _cstring(msg, pos + 4)
                seqs[name] = _split_docs(msg[start:pos + n])
            pos += n
        reply = bson.encode(self._command(body or {}, seqs))
        return HEADER.pack(16 + 5 + len(reply), 0, request_id, OP_MSG) + b"\x00\x00\x00\x00\x00" + reply

    def _op_query(self, request_id: int, msg: bytes) -> bytes:
        _, pos = _cstring(msg, 4)
        pos += 8  # numberToSkip, numberToReturn
        n = INT32.unpack_from(msg, pos)[0]
        query = bson.decode(msg[pos:pos + n])
        if "$query" in query:
            query = query["$query"]
        reply = bson.encode(self._command(query, {}))
        return (HEADER.pack(16 + 20 + len(reply), 0, request_id, OP_REPLY)
                + struct.pack("<iqii", 0, 0, 0, 1) + reply)

    # -- commands --------------------------------------------------------------------
    def _command(self, body: dict, seqs: dict) -> dict:
        name = next(iter(body), "")
        lname = name.lower()
        if lname in ("hello", "ismaster"):
            return _hello(self.conn_id)
        if name == "insert":
            return self._insert(body, seqs)
        if name == "find":
            return self._find(body)
        if name == "getMore":
            return self._get_more(body)
        if name == "killCursors":
            for cid in body.get("cursors", ()):
                self.store.cursors.pop(cid, None)
            return {"cursorsKilled": body.get("cursors", []), "ok": 1.0}
        if name == "drop":
            self.store.collections.pop(f"{body.get('$db')}.{body[name]}", None)
            return {"ok": 1.0}
        return {"ok": 1.0}  # ping, endSessions, fsync, anything else

    def _insert(self, body: dict, seqs: dict) -> dict:
        ns = f"{body.get('$db')}.{body['insert']}"
        coll = self.store.collections.setdefault(ns, {})
        docs = seqs.get("documents")
        if docs is None:
            docs = [bson.encode(d) for d in body.get("documents", ())]
        for raw in docs:
            coll[id_key(raw)] = raw
        return {"n": len(docs), "ok": 1.0}

    def _find(self, body: dict) -> dict:
        ns = f"{body.get('$db')}.{body['find']}"
        coll = self.store.collections.get(ns, {})
        flt = body.get("filter") or {}
        if not flt:
            docs = list(coll.values())
        elif list(flt) == ["_id"] and not isinstance(flt["_id"], dict):
            raw = coll.get(value_key(flt["_id"]))
            docs = [] if raw is None else [raw]
        else:
            return {"ok": 0.0, "errmsg": "the floor server only finds by {_id: value} or {}",
                    "code": 238, "codeName": "NotImplemented"}
        limit = abs(int(body.get("limit", 0) or 0))
        if limit:
            docs = docs[:limit]
        batch = int(body.get("batchSize", FIRST_BATCH))
        if body.get("singleBatch") or len(docs) <= batch:
            return self._cursor(ns, docs, 0, "firstBatch")
        cid = self.store.new_cursor(ns, docs, batch)
        return self._cursor(ns, docs[:batch], cid, "firstBatch")

    def _get_more(self, body: dict) -> dict:
        cid = body["getMore"]
        ns, docs, pos = self.store.cursors.pop(cid, (f"{body.get('$db')}.{body.get('collection')}", [], 0))
        limit = int(body.get("batchSize", 0) or 0)
        end, size = pos, 0
        while end < len(docs) and (not limit or end - pos < limit) and size < GETMORE_BYTES:
            size += len(docs[end])
            end += 1
        if end < len(docs):
            self.store.cursors[cid] = (ns, docs, end)
        else:
            cid = 0
        return self._cursor(ns, docs[pos:end], cid, "nextBatch")

    @staticmethod
    def _cursor(ns: str, docs: list[bytes], cid: int, key: str) -> dict:
        return {"cursor": cursor_body(key, docs, cid, ns), "ok": 1.0}


_ARRAY_KEYS: list[bytes] = []


def cursor_body(key: str, docs: list[bytes], cid: int, ns: str) -> RawBSONDocument:
    """The ``cursor`` sub-document, splicing the stored raw documents in (no re-encoding)."""
    while len(_ARRAY_KEYS) < len(docs):
        _ARRAY_KEYS.append(b"\x03%d\x00" % len(_ARRAY_KEYS))
    items = b"".join(itertools.chain.from_iterable(zip(_ARRAY_KEYS, docs)))
    nsb = ns.encode()
    body = b"".join((b"\x04", key.encode(), b"\x00", INT32.pack(len(items) + 5), items, b"\x00\x12id\x00",
                     struct.pack("<q", cid), b"\x02ns\x00", INT32.pack(len(nsb) + 1), nsb, b"\x00"))
    return RawBSONDocument(INT32.pack(len(body) + 5) + body + b"\x00")


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    store = Store()
    server = await loop.create_server(lambda: FloorProtocol(store), host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        print(f"floor server listening on {host}:{port}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=27999)
    args = p.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
