"""Sans-IO codec of the MongoDB wire protocol: framing, parsing and encoding.

* :class:`MessageReader` – feed it arbitrary byte chunks, get complete requests back
  (:class:`~wire.messages.OpMsgRequest` / :class:`~wire.messages.OpQueryRequest`), or a
  :class:`~wire.errors.ProtocolError` meaning "close this connection".
* :func:`parse_message` – parse one complete frame.
* :func:`encode_op_msg`, :func:`encode_op_reply`, :func:`encode_op_query`,
  :func:`encode_compressed` – build frames (optionally wrapped in OP_COMPRESSED).

Framing is checked eagerly (lengths are validated from the first 4 bytes, opcodes from
the first 16, before anything is buffered for the body); BSON is decoded lazily.

The encoders live in :mod:`wire.encoding` and are re-exported here.
"""
from __future__ import annotations

import crc32c
from bson.codec_options import CodecOptions

from . import compression
from .bsonutil import DEFAULT_CODEC_OPTIONS, split_documents
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
    UINT32,
    OpCode,
)
from .encoding import COMPRESSED_PREFIX as _COMPRESSED_PREFIX
from .encoding import encode_compressed, encode_op_msg, encode_op_query, encode_op_reply, next_request_id
from .errors import ProtocolError
from .messages import OpMsgRequest, OpQueryRequest, Request

__all__ = [
    "MessageReader",
    "parse_message",
    "decode_reply",
    "decode_op_reply",
    "encode_compressed",
    "encode_op_msg",
    "encode_op_query",
    "encode_op_reply",
    "next_request_id",
]

_unpack_header = HEADER.unpack_from
_pack_header = HEADER.pack
_unpack_int32 = INT32.unpack_from
_unpack_uint32 = UINT32.unpack_from

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


# ---------------------------------------------------------------------------- client side


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
