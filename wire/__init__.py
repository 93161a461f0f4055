"""MongoDB wire protocol layer: framing, compression and an asyncio server.

Knows bytes and messages, never storage or command semantics.  See ``docs/wire.md``.
"""
from .bsonutil import DEFAULT_CODEC_OPTIONS, bson_depth_exceeds
from .compression import SUPPORTED as SUPPORTED_COMPRESSORS
from .connection import Connection
from .constants import (
    MAX_BSON_OBJECT_SIZE,
    MAX_MESSAGE_SIZE_BYTES,
    MAX_WRITE_BATCH_SIZE,
    OpCode,
)
from .errors import DocumentTooLargeError, InvalidBSONError, InvalidRequestError, ProtocolError, WireError
from .handler import BaseHandler, Handler, Reply
from .messages import OpMsgRequest, OpQueryRequest, Request
from .protocol import MessageReader, encode_op_msg, encode_op_query, encode_op_reply, parse_message
from .server import WireServer

__all__ = [
    "DEFAULT_CODEC_OPTIONS",
    "bson_depth_exceeds",
    "SUPPORTED_COMPRESSORS",
    "Connection",
    "MAX_BSON_OBJECT_SIZE",
    "MAX_MESSAGE_SIZE_BYTES",
    "MAX_WRITE_BATCH_SIZE",
    "OpCode",
    "DocumentTooLargeError",
    "InvalidBSONError",
    "InvalidRequestError",
    "ProtocolError",
    "WireError",
    "BaseHandler",
    "Handler",
    "Reply",
    "OpMsgRequest",
    "OpQueryRequest",
    "Request",
    "MessageReader",
    "encode_op_msg",
    "encode_op_query",
    "encode_op_reply",
    "parse_message",
    "WireServer",
]
