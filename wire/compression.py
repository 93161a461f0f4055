"""OP_COMPRESSED compressors: noop (0), snappy (1), zlib (2), zstd (3).

Sans-IO helpers used by :mod:`wire.protocol`.  Decompression is always bounded by
the ``uncompressedSize`` the peer announced (itself bounded by the message size
limit), so a small "compression bomb" cannot make the server allocate more.
"""
from __future__ import annotations

import threading
import zlib

import snappy
import zstandard

from .errors import ProtocolError

NOOP, SNAPPY, ZLIB, ZSTD = 0, 1, 2, 3

#: Compressor names this server can negotiate, in order of preference.
SUPPORTED: tuple[str, ...] = ("zstd", "snappy", "zlib")

NAME_TO_ID: dict[str, int] = {"noop": NOOP, "snappy": SNAPPY, "zlib": ZLIB, "zstd": ZSTD}
ID_TO_NAME: dict[int, str] = {v: k for k, v in NAME_TO_ID.items()}

#: Commands whose messages must never be compressed (OP_COMPRESSED specification).
UNCOMPRESSIBLE_COMMANDS = frozenset(
    {
        "hello",
        "ismaster",
        "saslstart",
        "saslcontinue",
        "getnonce",
        "authenticate",
        "createuser",
        "updateuser",
        "copydbsaslstart",
        "copydbgetnonce",
        "copydb",
    }
)

#: zlib level used for replies (-1 = zlib's default, 6).
ZLIB_LEVEL = -1
#: zstd level used for replies.
ZSTD_LEVEL = 3


def may_compress(command_name: str | None) -> bool:
    """False for the handshake/authentication commands that must stay uncompressed."""
    return command_name is None or command_name.lower() not in UNCOMPRESSIBLE_COMMANDS


def compressor_id(compressor: str | int) -> int:
    """Map a compressor name ("zstd") or id (3) to its id; ValueError when unknown."""
    if isinstance(compressor, int):
        if compressor in ID_TO_NAME:
            return compressor
    else:
        cid = NAME_TO_ID.get(compressor.lower())
        if cid is not None:
            return cid
    raise ValueError(f"unknown compressor {compressor!r}")


class _ZstdCodecs(threading.local):
    """zstandard (de)compressor objects are not thread-safe: one pair per thread."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()


_zstd = _ZstdCodecs()


def compress(compressor: str | int, data: bytes | bytearray | memoryview) -> bytes:
    """Compress ``data`` with the given compressor (name or id)."""
    cid = compressor_id(compressor)
    if cid == ZSTD:
        return _zstd.compressor.compress(data)
    if cid == SNAPPY:
        return snappy.compress(bytes(data))
    if cid == ZLIB:
        return zlib.compress(data, ZLIB_LEVEL)
    return bytes(data)


def _snappy_declared_length(data: bytes | memoryview) -> int:
    """The uncompressed length a raw snappy block announces (varint preamble)."""
    result = shift = 0
    for i in range(min(len(data), 5)):
        byte = data[i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result
        shift += 7
    raise ProtocolError("OP_COMPRESSED: corrupt snappy preamble")


def decompress(cid: int, data: bytes | memoryview, uncompressed_size: int) -> bytes:
    """Decompress an OP_COMPRESSED payload; the result must be exactly ``uncompressed_size``.

    Raises :class:`ProtocolError` for unknown compressors, corrupt data, or output
    whose size differs from the announced one (never producing more than announced).
    """
    try:
        if cid == ZSTD:
            declared = zstandard.get_frame_parameters(data).content_size
            if declared != zstandard.CONTENTSIZE_UNKNOWN and declared != uncompressed_size:
                raise ProtocolError("OP_COMPRESSED: zstd frame size differs from uncompressedSize")
            out = _zstd.decompressor.decompress(data, max_output_size=uncompressed_size)
        elif cid == SNAPPY:
            if _snappy_declared_length(data) != uncompressed_size:
                raise ProtocolError("OP_COMPRESSED: snappy length differs from uncompressedSize")
            out = snappy.uncompress(bytes(data))
        elif cid == ZLIB:
            dobj = zlib.decompressobj()
            out = dobj.decompress(data, uncompressed_size)
            if dobj.unconsumed_tail or not dobj.eof:
                raise ProtocolError("OP_COMPRESSED: zlib data longer than uncompressedSize or truncated")
        elif cid == NOOP:
            out = bytes(data)
        else:
            raise ProtocolError(f"OP_COMPRESSED: unknown compressorId {cid}")
    except ProtocolError:
        raise
    except Exception as exc:  # zlib.error, zstandard.ZstdError, snappy.UncompressError, ...
        raise ProtocolError(f"OP_COMPRESSED: cannot decompress ({type(exc).__name__}: {exc})") from None
    if len(out) != uncompressed_size:
        raise ProtocolError(
            f"OP_COMPRESSED: uncompressedSize {uncompressed_size} but data decompresses to {len(out)} bytes"
        )
    return out
