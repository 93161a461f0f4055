"""Hand-built wire frames for the tests (independent of wire.protocol's encoders)."""
from __future__ import annotations

import struct

import bson
import crc32c


def header(length: int, request_id: int, response_to: int, opcode: int) -> bytes:
    return struct.pack("<iiii", length, request_id, response_to, opcode)


def frame(opcode: int, payload: bytes, request_id: int = 7, response_to: int = 0) -> bytes:
    return header(16 + len(payload), request_id, response_to, opcode) + payload


def op_msg(body, *, sequences=(), flags: int = 0, checksum: bool = False, request_id: int = 7, bad_crc: bool = False) -> bytes:
    """OP_MSG frame; ``body`` is a dict or raw bytes; ``sequences`` a list of (identifier, [docs])."""
    if checksum:
        flags |= 1
    raw = body if isinstance(body, bytes) else bson.encode(body)
    payload = struct.pack("<I", flags) + b"\x00" + raw
    for ident, docs in sequences:
        encoded = b"".join(d if isinstance(d, bytes) else bson.encode(d) for d in docs)
        name = ident.encode() + b"\x00"
        payload += b"\x01" + struct.pack("<i", 4 + len(name) + len(encoded)) + name + encoded
    if checksum:
        msg = header(16 + len(payload) + 4, request_id, 0, 2013) + payload
        crc = crc32c.crc32c(msg)
        if bad_crc:
            crc ^= 1
        return msg + struct.pack("<I", crc)
    return frame(2013, payload, request_id)


def op_query(ns: str, query, fields=None, *, flags: int = 0, skip: int = 0, limit: int = -1, request_id: int = 9) -> bytes:
    payload = struct.pack("<i", flags) + ns.encode() + b"\x00" + struct.pack("<ii", skip, limit)
    payload += query if isinstance(query, bytes) else bson.encode(query)
    if fields is not None:
        payload += bson.encode(fields)
    return frame(2004, payload, request_id)


def compressed(inner: bytes, compressor_id: int, data: bytes | None = None, size: int | None = None) -> bytes:
    """Wrap a complete frame ``inner`` in OP_COMPRESSED (``data`` overrides the compressed bytes)."""
    import zlib

    import snappy
    import zstandard

    _, request_id, response_to, opcode = struct.unpack_from("<iiii", inner)
    payload = inner[16:]
    if data is None:
        data = {
            0: lambda p: p,
            1: snappy.compress,
            2: zlib.compress,
            3: lambda p: zstandard.ZstdCompressor().compress(p),
        }[compressor_id](payload)
    body = struct.pack("<iiB", opcode, len(payload) if size is None else size, compressor_id) + data
    return header(16 + len(body), request_id, response_to, 2012) + body
