"""Opcodes, flag bits and size limits of the MongoDB wire protocol."""
from __future__ import annotations

import struct
from enum import IntEnum


class OpCode(IntEnum):
    """Message opcodes.  Only REPLY, QUERY, COMPRESSED and MSG are spoken here;
    the others (removed in MongoDB 5.1/6.0) are listed to name them in errors."""

    REPLY = 1
    UPDATE = 2001
    INSERT = 2002
    RESERVED = 2003
    QUERY = 2004
    GET_MORE = 2005
    DELETE = 2006
    KILL_CURSORS = 2007
    COMPRESSED = 2012
    MSG = 2013


#: Opcodes a client may send to this server.
ACCEPTED_OPCODES = frozenset({OpCode.QUERY, OpCode.MSG, OpCode.COMPRESSED})
#: Opcodes allowed inside OP_COMPRESSED (requests).
COMPRESSIBLE_OPCODES = frozenset({OpCode.QUERY, OpCode.MSG})

# OP_MSG flagBits
MSG_CHECKSUM_PRESENT = 1 << 0
MSG_MORE_TO_COME = 1 << 1
MSG_EXHAUST_ALLOWED = 1 << 16
#: Bits 0-15 are "required": a receiver must reject a message with an unknown one set.
MSG_REQUIRED_BITS_MASK = 0xFFFF
MSG_KNOWN_REQUIRED_BITS = MSG_CHECKSUM_PRESENT | MSG_MORE_TO_COME

# OP_QUERY flags (legacy); only reported, never acted on here.
QUERY_TAILABLE_CURSOR = 1 << 1
QUERY_SECONDARY_OK = 1 << 2
QUERY_NO_CURSOR_TIMEOUT = 1 << 4
QUERY_AWAIT_DATA = 1 << 5
QUERY_EXHAUST = 1 << 6
QUERY_PARTIAL = 1 << 7

# OP_REPLY responseFlags
REPLY_CURSOR_NOT_FOUND = 1 << 0
REPLY_QUERY_FAILURE = 1 << 1
REPLY_AWAIT_CAPABLE = 1 << 3

# Limits, as advertised by mongod in its hello reply.
MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024
#: Extra room mongod grants a command body over maxBsonObjectSize (BSONObjMaxInternalSize).
BSON_COMMAND_OVERHEAD = 16 * 1024
MAX_MESSAGE_SIZE_BYTES = 48_000_000
MAX_WRITE_BATCH_SIZE = 100_000

HEADER_SIZE = 16
HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
INT32 = struct.Struct("<i")
UINT32 = struct.Struct("<I")
INT64 = struct.Struct("<q")
