"""Encoders of wire frames: OP_MSG, OP_REPLY, OP_QUERY, OP_COMPRESSED.

Bodies may be dicts (encoded here) or pre-encoded BSON bytes (spliced as they are).
"""
from __future__ import annotations

import itertools
import struct
from typing import Any, Iterable, Mapping

import crc32c
from bson.codec_options import CodecOptions

from . import compression
from .bsonutil import DEFAULT_CODEC_OPTIONS, encode_document
from .constants import HEADER, HEADER_SIZE, INT32, INT64, MSG_CHECKSUM_PRESENT, REPLY_AWAIT_CAPABLE, UINT32, OpCode

_pack_header = HEADER.pack
_pack_int32 = INT32.pack
_pack_uint32 = UINT32.pack
#: originalOpcode, uncompressedSize, compressorId
COMPRESSED_PREFIX = struct.Struct("<iiB")
_pack_msg_prefix = struct.Struct("<iiiiIB").pack  # header, flagBits, kind of the body section

_request_ids = itertools.count(1)


def next_request_id() -> int:
    """A process-wide increasing requestID for outgoing messages (wraps at 2**31)."""
    return next(_request_ids) & 0x7FFFFFFF




def encode_compressed(
    original_opcode: int, request_id: int, response_to: int, payload: bytes, compressor: str | int
) -> bytes:
    """Wrap a message payload (everything after its header) in OP_COMPRESSED."""
    cid = compression.compressor_id(compressor)
    data = compression.compress(cid, payload)
    prefix = COMPRESSED_PREFIX.pack(original_opcode, len(payload), cid)
    length = HEADER_SIZE + len(prefix) + len(data)
    return b"".join((_pack_header(length, request_id, response_to, OpCode.COMPRESSED), prefix, data))


def _frame(opcode: int, request_id: int, response_to: int, payload: bytes, compressor: str | int | None) -> bytes:
    if compressor is not None:
        return encode_compressed(opcode, request_id, response_to, payload, compressor)
    return _pack_header(HEADER_SIZE + len(payload), request_id, response_to, opcode) + payload


def encode_op_msg(
    request_id: int,
    response_to: int,
    body: bytes | Mapping[str, Any],
    flags: int = 0,
    compressor: str | int | None = None,
    *,
    sequences: Mapping[str, Iterable[bytes | Mapping[str, Any]]] | None = None,
    codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS,
) -> bytes:
    """Build an OP_MSG frame.

    ``body`` may be pre-encoded BSON (``bytes``/``RawBSONDocument``, spliced as is) or a
    mapping.  ``sequences`` adds kind 1 sections.  If ``flags`` has checksumPresent the
    CRC-32C is appended.  With ``compressor`` ("zstd", "snappy", "zlib", "noop" or an
    id) the frame is wrapped in OP_COMPRESSED (the checksum, if any, stays inside).
    """
    raw = body if type(body) is bytes else encode_document(body, codec_options)
    if not sequences and compressor is None and not flags & MSG_CHECKSUM_PRESENT:
        # the common reply: one pack for header + flagBits + section kind
        return _pack_msg_prefix(HEADER_SIZE + 5 + len(raw), request_id, response_to, OpCode.MSG, flags, 0) + raw
    parts = [_pack_uint32(flags), b"\x00", raw]
    if sequences:
        for ident, docs in sequences.items():
            encoded = b"".join(encode_document(d, codec_options) for d in docs)
            name = ident.encode("utf-8") + b"\x00"
            parts += (b"\x01", _pack_int32(4 + len(name) + len(encoded)), name, encoded)
    payload = b"".join(parts)
    if flags & MSG_CHECKSUM_PRESENT:
        header = _pack_header(HEADER_SIZE + len(payload) + 4, request_id, response_to, OpCode.MSG)
        payload += _pack_uint32(crc32c.crc32c(payload, value=crc32c.crc32c(header)))
    return _frame(OpCode.MSG, request_id, response_to, payload, compressor)


def encode_op_reply(
    request_id: int,
    response_to: int,
    documents: bytes | Mapping[str, Any] | Iterable[bytes | Mapping[str, Any]],
    *,
    response_flags: int = REPLY_AWAIT_CAPABLE,
    cursor_id: int = 0,
    starting_from: int = 0,
    compressor: str | int | None = None,
    codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS,
) -> bytes:
    """Build an OP_REPLY frame (the answer to an OP_QUERY).

    ``documents`` is one document (mapping or BSON bytes) or an iterable of them."""
    if isinstance(documents, (bytes, bytearray, Mapping)) or hasattr(documents, "raw"):
        encoded = [encode_document(documents, codec_options)]
    else:
        encoded = [encode_document(d, codec_options) for d in documents]
    payload = b"".join(
        (
            _pack_int32(response_flags),
            INT64.pack(cursor_id),
            _pack_int32(starting_from),
            _pack_int32(len(encoded)),
            *encoded,
        )
    )
    return _frame(OpCode.REPLY, request_id, response_to, payload, compressor)


def encode_op_query(
    request_id: int,
    full_collection_name: str,
    query: bytes | Mapping[str, Any],
    *,
    flags: int = 0,
    number_to_skip: int = 0,
    number_to_return: int = -1,
    return_fields_selector: bytes | Mapping[str, Any] | None = None,
    compressor: str | int | None = None,
    codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS,
) -> bytes:
    """Build an OP_QUERY frame (client side; used by tests and tools)."""
    parts = [
        _pack_int32(flags),
        full_collection_name.encode("utf-8") + b"\x00",
        _pack_int32(number_to_skip),
        _pack_int32(number_to_return),
        encode_document(query, codec_options),
    ]
    if return_fields_selector is not None:
        parts.append(encode_document(return_fields_selector, codec_options))
    return _frame(OpCode.QUERY, request_id, 0, b"".join(parts), compressor)
