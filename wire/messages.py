"""Parsed request messages.

Parsing (in :mod:`wire.protocol`) only checks framing; BSON is decoded lazily on
first access of :attr:`body` / :attr:`sequences`, so a well-framed message with bad
BSON reaches the handler and can be answered with ``InvalidBSON`` (code 22) instead
of killing the connection.  Raw views are always available for splicing.
"""
from __future__ import annotations

from typing import Any

from bson.codec_options import CodecOptions

from .bsonutil import DEFAULT_CODEC_OPTIONS, bson_depth_exceeds, decode_document, first_key
from .constants import (
    BSON_COMMAND_OVERHEAD,
    MAX_BSON_OBJECT_SIZE,
    MSG_CHECKSUM_PRESENT,
    MSG_EXHAUST_ALLOWED,
    MSG_MORE_TO_COME,
    OpCode,
)
from .errors import DocumentTooLargeError

_UNSET: Any = object()


def _check_size(view: memoryview, limit: int, what: str) -> None:
    if view.nbytes > limit:
        raise DocumentTooLargeError(f"{what} is {view.nbytes} bytes, above the limit of {limit} bytes")


class Request:
    """Fields shared by :class:`OpMsgRequest` and :class:`OpQueryRequest`.

    Attributes set by the parser:
      ``request_id``, ``response_to``, ``message_length`` (of the frame as received),
      ``compressor_id`` (``None`` if the message was not wrapped in OP_COMPRESSED).
    """

    __slots__ = (
        "request_id",
        "response_to",
        "message_length",
        "compressor_id",
        "codec_options",
        "_msg",
        "_bstart",
        "_bend",
        "_body",
        "_raw_body",
        "_name",
    )
    op: OpCode

    def __init__(
        self,
        request_id: int,
        response_to: int,
        message_length: int,
        message: bytes,
        body_start: int,
        body_end: int,
        codec_options: CodecOptions,
        compressor_id: int | None,
    ) -> None:
        self.request_id = request_id
        self.response_to = response_to
        self.message_length = message_length
        self._msg = message
        self._bstart = body_start
        self._bend = body_end
        self.codec_options = codec_options
        self.compressor_id = compressor_id
        self._body = _UNSET
        self._raw_body = None
        self._name = _UNSET

    # -- body -----------------------------------------------------------------
    body_size_limit = MAX_BSON_OBJECT_SIZE + BSON_COMMAND_OVERHEAD

    @property
    def body(self) -> dict:
        """The command document, decoded on first access (then cached).

        Raises :class:`~wire.errors.InvalidBSONError` (code 22) or
        :class:`~wire.errors.DocumentTooLargeError` (code 10334) – every time it is accessed."""
        body = self._body
        if body is _UNSET:
            body = self._body = self._decode_body()
        return body

    def _decode_body(self) -> dict:
        size = self._bend - self._bstart
        if size > self.body_size_limit:
            raise DocumentTooLargeError(
                f"command document is {size} bytes, above the limit of {self.body_size_limit} bytes"
            )
        return decode_document(memoryview(self._msg)[self._bstart : self._bend], self.codec_options)

    @property
    def raw_body(self) -> bytes:
        """The command document's BSON bytes, undecoded."""
        if self._raw_body is None:
            self._raw_body = self._msg[self._bstart : self._bend]
        return self._raw_body

    @property
    def body_view(self) -> memoryview:
        """Zero-copy view of the command document's BSON bytes."""
        return memoryview(self._msg)[self._bstart : self._bend]

    @property
    def command_name(self) -> str | None:
        """First key of the command document, read from the raw bytes (no decoding)."""
        name = self._name
        if name is _UNSET:
            name = self._name = first_key(self._msg, self._bstart)
        return name

    def body_depth_exceeds(self, limit: int) -> bool:
        """See :func:`wire.bsonutil.bson_depth_exceeds` (cheap for small bodies)."""
        if self._bend - self._bstart < 7 * limit:
            return False
        return bson_depth_exceeds(self.raw_body, limit)

    def validate(self) -> None:
        """Decode everything now; raises :class:`~wire.errors.InvalidRequestError` subclasses."""
        self.body  # noqa: B018 - decoding is the point

    # Defaults overridden by OP_MSG.
    more_to_come = False
    exhaust_allowed = False
    checksum_present = False

    @property
    def sequences(self) -> dict[str, list[dict]]:
        return {}

    @property
    def raw_sequences(self) -> dict[str, list[memoryview]]:
        return {}

    @property
    def compressed(self) -> bool:
        return self.compressor_id is not None


class OpMsgRequest(Request):
    """An OP_MSG request: one body (kind 0) and any document sequences (kind 1)."""

    __slots__ = ("flags", "_raw_sequences", "_sequences")
    op = OpCode.MSG

    def __init__(
        self,
        request_id: int,
        response_to: int,
        message_length: int,
        flags: int,
        message: bytes,
        body_start: int,
        body_end: int,
        raw_sequences: dict[str, list[memoryview]] | None,
        codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS,
        compressor_id: int | None = None,
    ) -> None:
        # (inlined Request.__init__: this runs once per message)
        self.request_id = request_id
        self.response_to = response_to
        self.message_length = message_length
        self._msg = message
        self._bstart = body_start
        self._bend = body_end
        self.codec_options = codec_options
        self.compressor_id = compressor_id
        self._body = _UNSET
        self._raw_body = None
        self._name = _UNSET
        self.flags = flags
        self._raw_sequences = raw_sequences
        self._sequences = None

    @property
    def more_to_come(self) -> bool:  # type: ignore[override]
        """The client expects no reply to this message."""
        return bool(self.flags & MSG_MORE_TO_COME)

    @property
    def exhaust_allowed(self) -> bool:  # type: ignore[override]
        """The client accepts a stream of replies (exhaust) to this request."""
        return bool(self.flags & MSG_EXHAUST_ALLOWED)

    @property
    def checksum_present(self) -> bool:  # type: ignore[override]
        return bool(self.flags & MSG_CHECKSUM_PRESENT)

    @property
    def raw_sequences(self) -> dict[str, list[memoryview]]:  # type: ignore[override]
        """Kind 1 sections as ``{identifier: [memoryview of each BSON document]}``."""
        return self._raw_sequences or {}

    @property
    def sequences(self) -> dict[str, list[dict]]:  # type: ignore[override]
        """Kind 1 sections decoded: ``{identifier: [document, ...]}`` (cached).

        Raises :class:`~wire.errors.InvalidBSONError` / :class:`~wire.errors.DocumentTooLargeError`."""
        if self._sequences is None:
            decoded = {}
            opts = self.codec_options
            for ident, views in (self._raw_sequences or {}).items():
                docs = []
                for view in views:
                    _check_size(view, MAX_BSON_OBJECT_SIZE, f"document in sequence {ident!r}")
                    docs.append(decode_document(view, opts))
                decoded[ident] = docs
            self._sequences = decoded
        return self._sequences

    def validate(self) -> None:
        self.body  # noqa: B018
        self.sequences  # noqa: B018

    def __repr__(self) -> str:
        seqs = {k: len(v) for k, v in (self._raw_sequences or {}).items()}
        return (
            f"OpMsgRequest(request_id={self.request_id}, flags={self.flags:#x}, "
            f"command={self.command_name!r}, body_bytes={self._bend - self._bstart}, sequences={seqs})"
        )


class OpQueryRequest(Request):
    """A legacy OP_QUERY (only used by drivers for the first hello/isMaster, and
    saslStart/saslContinue during that handshake).

    :attr:`body` is the command document: ``query`` itself, or, when the driver wrapped
    it as ``{$query: {...}, $readPreference: ...}``, the inner document plus the other
    ``$``-prefixed modifiers.  :attr:`query` is always the document as sent."""

    __slots__ = (
        "flags",
        "full_collection_name",
        "number_to_skip",
        "number_to_return",
        "_fields_view",
        "_fields",
        "_query",
    )
    op = OpCode.QUERY
    body_size_limit = MAX_BSON_OBJECT_SIZE + BSON_COMMAND_OVERHEAD

    def __init__(
        self,
        request_id: int,
        response_to: int,
        message_length: int,
        flags: int,
        full_collection_name: str,
        number_to_skip: int,
        number_to_return: int,
        message: bytes,
        query_start: int,
        query_end: int,
        fields_view: memoryview | None,
        codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS,
        compressor_id: int | None = None,
    ) -> None:
        super().__init__(
            request_id, response_to, message_length, message, query_start, query_end, codec_options, compressor_id
        )
        self.flags = flags
        self.full_collection_name = full_collection_name
        self.number_to_skip = number_to_skip
        self.number_to_return = number_to_return
        self._fields_view = fields_view
        self._fields = _UNSET
        self._query = _UNSET

    @property
    def database(self) -> str:
        """The part of ``fullCollectionName`` before the first dot (``admin`` for ``admin.$cmd``)."""
        return self.full_collection_name.partition(".")[0]

    @property
    def collection(self) -> str:
        """The part of ``fullCollectionName`` after the first dot (``$cmd`` for commands)."""
        return self.full_collection_name.partition(".")[2]

    @property
    def is_command(self) -> bool:
        return self.collection == "$cmd"

    @property
    def query(self) -> dict:
        """The query document exactly as sent (decoded lazily)."""
        query = self._query
        if query is _UNSET:
            query = self._query = self._decode_body()
        return query

    @property
    def body(self) -> dict:  # type: ignore[override]
        body = self._body
        if body is _UNSET:
            query = self.query
            first = next(iter(query), None)
            if first in ("$query", "query") and isinstance(query[first], dict):
                body = dict(query[first])
                for key, value in query.items():
                    if key != first and key.startswith("$"):
                        body.setdefault(key, value)
            else:
                body = query
            self._body = body
        return body

    @property
    def command_name(self) -> str | None:  # type: ignore[override]
        name = first_key(self._msg, self._bstart)
        if name in ("$query", "query"):
            try:
                return next(iter(self.body), None)
            except Exception:  # invalid BSON: no name
                return None
        return name

    @property
    def return_fields_selector(self) -> dict | None:
        """The optional projection document."""
        if self._fields is _UNSET:
            view = self._fields_view
            if view is None:
                self._fields = None
            else:
                _check_size(view, MAX_BSON_OBJECT_SIZE, "returnFieldsSelector")
                self._fields = decode_document(view, self.codec_options)
        return self._fields

    @property
    def raw_return_fields_selector(self) -> memoryview | None:
        return self._fields_view

    def validate(self) -> None:
        self.body  # noqa: B018
        self.return_fields_selector  # noqa: B018

    def __repr__(self) -> str:
        return (
            f"OpQueryRequest(request_id={self.request_id}, ns={self.full_collection_name!r}, "
            f"command={self.command_name!r}, flags={self.flags:#x})"
        )
