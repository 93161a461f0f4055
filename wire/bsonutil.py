"""Small BSON helpers that work on raw bytes without decoding whole documents."""
from __future__ import annotations

import datetime
import struct
from typing import Any

import bson
from bson.codec_options import CodecOptions, DatetimeConversion

from .errors import InvalidBSONError, ProtocolError

#: How the wire layer decodes BSON unless told otherwise: plain dicts, timezone-aware
#: UTC datetimes, out-of-range dates as ``DatetimeMS`` (lossless), UUIDs left as
#: ``Binary`` (lossless for every subtype), int64 as ``bson.Int64``.
DEFAULT_CODEC_OPTIONS: CodecOptions = CodecOptions(
    document_class=dict,
    tz_aware=True,
    tzinfo=datetime.timezone.utc,
    datetime_conversion=DatetimeConversion.DATETIME_AUTO,
)

_int32 = struct.Struct("<i").unpack_from

_bson_to_dict = getattr(bson, "_bson_to_dict", None)
_dict_to_bson = getattr(bson, "_dict_to_bson", None)


def decode_document(data: bytes | memoryview, codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS) -> Any:
    """Decode one BSON document; any failure becomes :class:`InvalidBSONError` (code 22)."""
    try:
        if _bson_to_dict is not None:
            return _bson_to_dict(data, codec_options)
        return bson.decode(data, codec_options)
    except Exception as exc:  # bson.errors.InvalidBSON, OverflowError, UnicodeDecodeError, ...
        raise InvalidBSONError(f"invalid BSON: {exc}") from None


def encode_document(doc: Any, codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS) -> bytes:
    """Encode a mapping to BSON (``bytes`` and ``RawBSONDocument`` pass through)."""
    if type(doc) is dict and _dict_to_bson is not None:
        return _dict_to_bson(doc, False, codec_options)
    if isinstance(doc, (bytes, bytearray)):
        return bytes(doc)
    raw = getattr(doc, "raw", None)
    if isinstance(raw, bytes):
        return raw
    return bson.encode(doc, codec_options=codec_options)


def first_key(data: bytes | memoryview, offset: int = 0) -> str | None:
    """The name of the first element of the document at ``offset`` (the command name
    of a command body), read without decoding; ``None`` for an empty or broken document."""
    try:
        if data[offset + 4] == 0:
            return None
        start = offset + 5
        if isinstance(data, memoryview):
            doc_end = offset + _int32(data, offset)[0]
            head = bytes(data[start : min(start + 64, doc_end)])
            if b"\x00" not in head:
                head = bytes(data[start:doc_end])
            return head[: head.index(b"\x00")].decode("utf-8")
        return data[start : data.index(b"\x00", start)].decode("utf-8")
    except (IndexError, ValueError, UnicodeDecodeError, struct.error):
        return None


def split_documents(buf: bytes | memoryview, start: int, end: int) -> list[memoryview]:
    """Cut the concatenated BSON documents in ``buf[start:end]`` into memoryviews.

    Raises :class:`ProtocolError` when the length prefixes do not tile the range exactly
    (that is a framing error: the documents cannot even be delimited)."""
    view = buf if isinstance(buf, memoryview) else memoryview(buf)
    docs = []
    pos = start
    while pos < end:
        if end - pos < 5:
            raise ProtocolError("document sequence: truncated document")
        size = _int32(view, pos)[0]
        if size < 5 or pos + size > end:
            raise ProtocolError("document sequence: document length out of bounds")
        docs.append(view[pos : pos + size])
        pos += size
    return docs


# Sizes of fixed-width BSON values, by element type.
_FIXED = {0x01: 8, 0x06: 0, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16, 0xFF: 0, 0x7F: 0}
_STRINGLIKE = (0x02, 0x0D, 0x0E)
# Each extra nesting level costs at least 7 bytes: type byte, empty name's NUL, 5-byte empty document.
_LEVEL_COST = 7


def bson_depth_exceeds(raw: bytes | memoryview, limit: int) -> bool:
    """True when the BSON document nests deeper than ``limit`` levels.

    The top-level document is depth 1; every embedded document or array adds one
    (``{a: {b: []}}`` has depth 3).  Cheap: documents too small to reach the limit
    (fewer than ``7 * limit`` bytes) return at once, and the walk only descends into
    sub-documents large enough to possibly exceed it.  Malformed BSON returns False
    (the decoder reports it).  Code-with-scope scopes are not descended into.
    """
    n = len(raw)
    if n < 5 or 1 + (n - 5) // _LEVEL_COST <= limit:
        return False
    data = bytes(raw) if not isinstance(raw, bytes) else raw
    end = _int32(data, 0)[0]
    if end != n:
        return False
    find = data.find
    stack: list[int] = []
    depth, pos = 1, 4
    try:
        while True:
            if pos >= end - 1:
                if pos != end - 1 or data[pos] != 0 or not stack:
                    return False
                pos, end = end, stack.pop()
                depth -= 1
                continue
            etype = data[pos]
            nul = find(b"\x00", pos + 1, end)
            if nul < 0:
                return False
            pos = nul + 1
            if etype == 0x03 or etype == 0x04:
                size = _int32(data, pos)[0]
                if size < 5 or pos + size > end:
                    return False
                if depth + 1 + (size - 5) // _LEVEL_COST > limit:
                    if depth + 1 > limit:
                        return True
                    stack.append(end)
                    end = pos + size
                    pos += 4
                    depth += 1
                else:
                    pos += size
            elif etype in _FIXED:
                pos += _FIXED[etype]
            elif etype in _STRINGLIKE:
                size = _int32(data, pos)[0]
                if size < 1:
                    return False
                pos += 4 + size
            elif etype == 0x05:
                size = _int32(data, pos)[0]
                if size < 0:
                    return False
                pos += 5 + size
            elif etype == 0x0B:
                nul = find(b"\x00", pos, end)
                nul = find(b"\x00", nul + 1, end) if nul >= 0 else -1
                if nul < 0:
                    return False
                pos = nul + 1
            elif etype == 0x0C:
                size = _int32(data, pos)[0]
                if size < 1:
                    return False
                pos += 4 + size + 12
            elif etype == 0x0F:
                size = _int32(data, pos)[0]
                if size < 14:
                    return False
                pos += size
            else:
                return False
            if pos > end:
                return False
    except struct.error:
        return False
