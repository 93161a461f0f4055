"""Sans-IO codec of the MongoDB wire protocol: framing, parsing and encoding.

* :class:`MessageReader` – feed it arbitrary byte chunks, get complete requests back
  (:class:`~wire.messages.OpMsgRequest` / :class:`~wire.messages.OpQueryRequest`), or a
  :class:`~wire.errors.ProtocolError` meaning "close this connection".
* :func:`parse_message` – parse one complete frame.
* :func:`encode_op_msg`, :func:`encode_op_reply`, :func:`encode_op_query`,
  :func:`encode_compressed` – build frames (optionally wrapped in OP_COMPRESSED).

Framing is checked eagerly (lengths are validated from the first 4 bytes, opcodes from
the first 16, before anything is buffered for the body); BSON is decoded lazily.
"""
from __future__ import annotations

import itertools
import struct
from typing import Any, Iterable, Mapping

import crc32c
from bson.codec_options import CodecOptions

from . import compression
from .bsonutil import DEFAULT_CODEC_OPTIONS, encode_document, split_documents
from .constants import (
    ACCEPTED_OPCODES,
    COMPRESSIBLE_OPCODES,
    HEADER,
    HEADER_SIZE,
    INT32,
    INT64,
    MAX_MESSAGE_SIZE_BYTES,
    MSG_CHECKSUM_PRESENT,
    MSG_KNOWN_REQUIRED_BITS,
    MSG_REQUIRED_BITS_MASK,
    REPLY_AWAIT_CAPABLE,
    UINT32,
    OpCode,
)
from .errors import ProtocolError
from .messages import OpMsgRequest, OpQueryRequest, Request

_unpack_header = HEADER.unpack_from
_pack_header = HEADER.pack
_unpack_int32 = INT32.unpack_from
_unpack_uint32 = UINT32.unpack_from
_pack_int32 = INT32.pack
_pack_uint32 = UINT32.pack
_COMPRESSED_PREFIX = struct.Struct("<iiB")  # originalOpcode, uncompressedSize, compressorId
_pack_msg_prefix = struct.Struct("<iiiiIB").pack  # header, flagBits, kind of the body section

_request_ids = itertools.count(1)


def next_request_id() -> int:
    """A process-wide increasing requestID for outgoing messages (wraps at 2**31)."""
    return next(_request_ids) & 0x7FFFFFFF


def _opcode_name(opcode: int) -> str:
    try:
        return f"OP_{OpCode(opcode).name}"
    except ValueError:
        return str(opcode)


# ---------------------------------------------------------------------------- parsing


def parse_message(
    message: bytes,
    *,
    codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS,
    max_message_size: int = MAX_MESSAGE_SIZE_BYTES,
) -> Request:
    """Parse one complete frame (header included).  Raises :class:`ProtocolError`."""
    if len(message) < HEADER_SIZE:
        raise ProtocolError("message shorter than its header")
    length, request_id, response_to, opcode = _unpack_header(message, 0)
    if length != len(message):
        raise ProtocolError(f"messageLength {length} but frame has {len(message)} bytes")
    if length > max_message_size:
        raise ProtocolError(f"messageLength {length} above maxMessageSizeBytes {max_message_size}")
    return _parse_frame(message, request_id, response_to, opcode, codec_options, max_message_size)


def _parse_frame(
    message: bytes, request_id: int, response_to: int, opcode: int, codec_options: CodecOptions, max_message_size: int
) -> Request:
    if opcode == 2013:  # OP_MSG
        return _parse_op_msg(message, request_id, response_to, len(message), codec_options, None)
    if opcode == 2004:  # OP_QUERY
        return _parse_op_query(message, request_id, response_to, len(message), codec_options, None)
    if opcode == 2012:  # OP_COMPRESSED
        return _parse_op_compressed(message, request_id, response_to, codec_options, max_message_size)
    raise ProtocolError(f"unsupported opcode {_opcode_name(opcode)}")


def _parse_op_compressed(
    message: bytes, request_id: int, response_to: int, codec_options: CodecOptions, max_message_size: int
) -> Request:
    if len(message) < HEADER_SIZE + _COMPRESSED_PREFIX.size:
        raise ProtocolError("OP_COMPRESSED: truncated header")
    original_opcode, uncompressed_size, cid = _COMPRESSED_PREFIX.unpack_from(message, HEADER_SIZE)
    if original_opcode not in COMPRESSIBLE_OPCODES:
        raise ProtocolError(f"OP_COMPRESSED: cannot wrap opcode {_opcode_name(original_opcode)}")
    if uncompressed_size < 0 or uncompressed_size + HEADER_SIZE > max_message_size:
        raise ProtocolError(f"OP_COMPRESSED: uncompressedSize {uncompressed_size} out of bounds")
    payload = compression.decompress(
        cid, memoryview(message)[HEADER_SIZE + _COMPRESSED_PREFIX.size :], uncompressed_size
    )
    # Rebuild the original frame: an OP_MSG checksum covers the uncompressed message
    # with its own header (as mongod reconstructs it).
    inner = _pack_header(HEADER_SIZE + uncompressed_size, request_id, response_to, original_opcode) + payload
    parse = _parse_op_msg if original_opcode == OpCode.MSG else _parse_op_query
    return parse(inner, request_id, response_to, len(message), codec_options, cid)


def _parse_op_msg(
    message: bytes,
    request_id: int,
    response_to: int,
    message_length: int,
    codec_options: CodecOptions,
    compressor_id: int | None,
) -> OpMsgRequest:
    end = len(message)
    if end < HEADER_SIZE + 5:
        raise ProtocolError("OP_MSG: truncated (no flagBits or sections)")
    flags = _unpack_uint32(message, HEADER_SIZE)[0]
    if flags & MSG_REQUIRED_BITS_MASK & ~MSG_KNOWN_REQUIRED_BITS:
        raise ProtocolError(f"OP_MSG: unknown required flag bits {flags & MSG_REQUIRED_BITS_MASK:#x}")
    if flags & MSG_CHECKSUM_PRESENT:
        if end < HEADER_SIZE + 4 + 4 + 1:
            raise ProtocolError("OP_MSG: too short for a checksum")
        end -= 4
        expected = _unpack_uint32(message, end)[0]
        if crc32c.crc32c(memoryview(message)[:end]) != expected:
            raise ProtocolError("OP_MSG: checksum mismatch")
    view = None
    pos = HEADER_SIZE + 4
    body = body_end = None
    sequences: dict[str, list[memoryview]] | None = None
    while pos < end:
        kind = message[pos]
        pos += 1
        if end - pos < 4:
            raise ProtocolError("OP_MSG: truncated section")
        size = _unpack_int32(message, pos)[0]
        if kind == 0:
            if body is not None:
                raise ProtocolError("OP_MSG: more than one body section")
            if size < 5 or pos + size > end:
                raise ProtocolError("OP_MSG: body section length out of bounds")
            body = pos
            body_end = pos + size
        elif kind == 1:
            if size < 5 or pos + size > end:
                raise ProtocolError("OP_MSG: document sequence length out of bounds")
            section_end = pos + size
            nul = message.find(b"\x00", pos + 4, section_end)
            if nul < 0:
                raise ProtocolError("OP_MSG: document sequence identifier not terminated")
            try:
                ident = message[pos + 4 : nul].decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError("OP_MSG: document sequence identifier is not UTF-8") from None
            if sequences is None:
                sequences = {}
                view = memoryview(message)
            elif ident in sequences:
                raise ProtocolError(f"OP_MSG: duplicate document sequence {ident!r}")
            sequences[ident] = split_documents(view, nul + 1, section_end)
        else:
            raise ProtocolError(f"OP_MSG: unknown section kind {kind}")
        pos += size
    if body is None:
        raise ProtocolError("OP_MSG: no body section")
    return OpMsgRequest(
        request_id, response_to, message_length, flags, message, body, body_end, sequences, codec_options, compressor_id
    )


def _parse_op_query(
    message: bytes,
    request_id: int,
    response_to: int,
    message_length: int,
    codec_options: CodecOptions,
    compressor_id: int | None,
) -> OpQueryRequest:
    end = len(message)
    if end < HEADER_SIZE + 4 + 1 + 8 + 5:
        raise ProtocolError("OP_QUERY: truncated")
    flags = _unpack_int32(message, HEADER_SIZE)[0]
    nul = message.find(b"\x00", HEADER_SIZE + 4, end)
    if nul < 0:
        raise ProtocolError("OP_QUERY: fullCollectionName not terminated")
    try:
        ns = message[HEADER_SIZE + 4 : nul].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("OP_QUERY: fullCollectionName is not UTF-8") from None
    pos = nul + 1
    if end - pos < 8 + 5:
        raise ProtocolError("OP_QUERY: truncated")
    skip = _unpack_int32(message, pos)[0]
    limit = _unpack_int32(message, pos + 4)[0]
    pos += 8
    size = _unpack_int32(message, pos)[0]
    if size < 5 or pos + size > end:
        raise ProtocolError("OP_QUERY: query document length out of bounds")
    query_start = pos
    pos += size
    fields = None
    if pos < end:
        if end - pos < 5:
            raise ProtocolError("OP_QUERY: truncated returnFieldsSelector")
        fsize = _unpack_int32(message, pos)[0]
        if fsize < 5 or pos + fsize != end:
            raise ProtocolError("OP_QUERY: returnFieldsSelector length does not match the message")
        fields = memoryview(message)[pos:end]
    return OpQueryRequest(
        request_id,
        response_to,
        message_length,
        flags,
        ns,
        skip,
        limit,
        message,
        query_start,
        query_start + size,
        fields,
        codec_options,
        compressor_id,
    )


class MessageReader:
    """Incremental frame decoder: ``for request in reader.feed(chunk): ...``.

    Lengths are checked as soon as 4 bytes of a frame are known and opcodes as soon as
    16 are, so an oversize or nonsense frame is rejected before its body is buffered.
    After a :class:`ProtocolError` the reader is unusable (the connection must close).
    """

    __slots__ = ("_buf", "codec_options", "max_message_size", "_failed")

    def __init__(
        self,
        *,
        codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS,
        max_message_size: int = MAX_MESSAGE_SIZE_BYTES,
    ) -> None:
        self._buf = bytearray()
        self.codec_options = codec_options
        self.max_message_size = max_message_size
        self._failed = False

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete message."""
        return len(self._buf)

    def _fail(self, message: str) -> ProtocolError:
        self._failed = True
        return ProtocolError(message)

    def _check_length(self, length: int) -> None:
        if length < HEADER_SIZE or length > self.max_message_size:
            raise self._fail(f"messageLength {length} out of bounds [16, {self.max_message_size}]")

    def _parse(self, message: bytes, request_id: int, response_to: int, opcode: int) -> Request:
        try:
            return _parse_frame(message, request_id, response_to, opcode, self.codec_options, self.max_message_size)
        except ProtocolError:
            self._failed = True
            raise

    def feed(self, data: bytes | bytearray | memoryview) -> list[Request]:
        """Add received bytes; return the requests completed by them (possibly none)."""
        if self._failed:
            raise ProtocolError("reader already failed")
        out: list[Request] = []
        buf = self._buf
        if buf:
            buf += data
            data = buf
        elif type(data) is not bytes:
            data = bytes(data)
        # ``data`` is either the chunk itself (nothing buffered: parse straight from it,
        # no copy for a chunk holding exactly one message) or the buffer.
        try:
            return self._feed(data, out)
        except ProtocolError as exc:
            self._failed = True
            exc.requests = out
            raise

    def _feed(self, data: bytes | bytearray, out: list[Request]) -> list[Request]:
        buf = self._buf
        pos, n = 0, len(data)
        while n - pos >= HEADER_SIZE:
            length, request_id, response_to, opcode = _unpack_header(data, pos)
            if length < HEADER_SIZE or length > self.max_message_size:
                self._check_length(length)
            if opcode not in ACCEPTED_OPCODES:
                raise self._fail(f"unsupported opcode {_opcode_name(opcode)}")
            end = pos + length
            if end > n:
                break
            if data is buf:
                message = bytes(memoryview(buf)[pos:end])
            else:
                message = data if length == n else data[pos:end]
            out.append(self._parse(message, request_id, response_to, opcode))
            pos = end
        if n - pos >= 4:
            self._check_length(_unpack_int32(data, pos)[0])
        if data is buf:
            if pos:
                del buf[:pos]
        elif pos < n:
            buf += data[pos:] if pos else data
        return out


# ---------------------------------------------------------------------------- encoding


def encode_compressed(
    original_opcode: int, request_id: int, response_to: int, payload: bytes, compressor: str | int
) -> bytes:
    """Wrap a message payload (everything after its header) in OP_COMPRESSED."""
    cid = compression.compressor_id(compressor)
    data = compression.compress(cid, payload)
    prefix = _COMPRESSED_PREFIX.pack(original_opcode, len(payload), cid)
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


def decode_op_reply(message: bytes, codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS) -> dict:
    """Decode an OP_REPLY frame (client side; used by tests): header fields and documents."""
    from .bsonutil import decode_document

    length, request_id, response_to, opcode = _unpack_header(message, 0)
    if opcode != OpCode.REPLY or length != len(message):
        raise ProtocolError("not an OP_REPLY frame")
    flags = _unpack_int32(message, 16)[0]
    cursor_id = INT64.unpack_from(message, 20)[0]
    starting_from, number = _unpack_int32(message, 28)[0], _unpack_int32(message, 32)[0]
    docs = [decode_document(v, codec_options) for v in split_documents(message, 36, length)]
    if len(docs) != number:
        raise ProtocolError("OP_REPLY: numberReturned does not match the documents")
    return {
        "request_id": request_id,
        "response_to": response_to,
        "response_flags": flags,
        "cursor_id": cursor_id,
        "starting_from": starting_from,
        "documents": docs,
    }


def decode_reply(message: bytes, codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS) -> dict:
    """Decode a server reply frame (OP_MSG, OP_REPLY, possibly OP_COMPRESSED) for clients/tests.

    Returns ``{"op", "request_id", "response_to", "flags", "body" | "documents", "compressor_id"}``."""
    length, request_id, response_to, opcode = _unpack_header(message, 0)
    cid = None
    if opcode == OpCode.COMPRESSED:
        original, size, cid = _COMPRESSED_PREFIX.unpack_from(message, HEADER_SIZE)
        payload = compression.decompress(cid, memoryview(message)[HEADER_SIZE + _COMPRESSED_PREFIX.size :], size)
        message = _pack_header(HEADER_SIZE + size, request_id, response_to, original) + payload
        opcode = original
    if opcode == OpCode.REPLY:
        out = decode_op_reply(message, codec_options)
        out.update(op=OpCode.REPLY, compressor_id=cid)
        return out
    if opcode == OpCode.MSG:
        msg = _parse_op_msg(message, request_id, response_to, len(message), codec_options, cid)
        return {
            "op": OpCode.MSG,
            "request_id": request_id,
            "response_to": response_to,
            "flags": msg.flags,
            "body": msg.body,
            "compressor_id": cid,
        }
    raise ProtocolError(f"unexpected reply opcode {_opcode_name(opcode)}")
