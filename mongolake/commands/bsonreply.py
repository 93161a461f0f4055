"""Building reply documents from raw BSON without decoding it again."""
from __future__ import annotations

import struct
from typing import Any, Iterable

import bson
from bson.int64 import Int64

from mongolake.query.bsonorder import CODEC_OPTIONS

_I32 = struct.Struct("<i")


def encode(doc: Any) -> bytes:
    return bson.encode(doc, codec_options=CODEC_OPTIONS)


def raw_array(docs: Iterable[bytes]) -> bytes:
    """A BSON array (the bytes of its document form) of raw documents."""
    parts = []
    for i, raw in enumerate(docs):
        parts.append(b"\x03" + str(i).encode() + b"\x00")
        parts.append(raw)
    body = b"".join(parts)
    return _I32.pack(len(body) + 5) + body + b"\x00"


def _element(name: str, value: Any) -> bytes:
    # encode {name: value} and strip the document framing
    d = bson.encode({name: value}, codec_options=CODEC_OPTIONS)
    return d[4:-1]


def cursor_reply(batch: list[bytes], cursor_id: int, ns: str, first: bool, extra: dict | None = None) -> bytes:
    """``{cursor: {firstBatch|nextBatch: [...], id, ns, ...extra}, ok: 1}`` as BSON."""
    arr = raw_array(batch)
    key = b"firstBatch" if first else b"nextBatch"
    cur = b"\x04" + key + b"\x00" + arr + _element("id", Int64(cursor_id)) + _element("ns", ns)
    if extra:
        for k, v in extra.items():
            cur += _element(k, v)
    cur_doc = _I32.pack(len(cur) + 5) + cur + b"\x00"
    body = b"\x03cursor\x00" + cur_doc + _element("ok", 1.0)
    return _I32.pack(len(body) + 5) + body + b"\x00"


def append_fields(raw: bytes, fields: dict) -> bytes:
    """``raw`` (a BSON document) with ``fields`` appended."""
    extra = b"".join(_element(k, v) for k, v in fields.items())
    body = raw[4:-1] + extra
    return _I32.pack(len(body) + 5) + body + b"\x00"
