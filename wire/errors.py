"""Exceptions of the wire layer.

Two families, with different consequences for the connection:

* :class:`ProtocolError` – the byte stream cannot be trusted any more (bad framing,
  unknown opcode, bad checksum, impossible lengths, corrupt compression).  The only
  safe reaction is to close the connection; nothing is replied.
* :class:`InvalidRequestError` – the message was framed correctly but its content is
  unusable (invalid BSON, a document above the size limit).  The connection stays
  open and the server answers with ``{ok: 0, errmsg, code, codeName}`` using the
  exception's :attr:`~InvalidRequestError.code` and :attr:`~InvalidRequestError.code_name`.

Neither derives from ``mongolake.errors.MongoError``: ``wire/`` does not depend on the
command layer.  The command layer's error converter can read ``code``/``code_name``
from :class:`InvalidRequestError` directly.
"""
from __future__ import annotations


class WireError(Exception):
    """Base class of every exception raised by ``wire``."""


class ProtocolError(WireError):
    """The peer violated the framing rules: close this connection.

    ``requests`` holds the complete requests that :meth:`MessageReader.feed` parsed from
    the same chunk before the bad frame (a server may still answer them, then close)."""

    def __init__(self, message: str, requests: list | None = None) -> None:
        super().__init__(message)
        self.requests: list = requests if requests is not None else []


class InvalidRequestError(WireError):
    """A well-framed message with unusable content: reply with an error, keep the connection."""

    code: int = 2
    code_name: str = "BadValue"

    def __init__(self, message: str, *, code: int | None = None, code_name: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code
        if code_name is not None:
            self.code_name = code_name

    @property
    def errmsg(self) -> str:
        return str(self.args[0]) if self.args else self.code_name

    def to_document(self) -> dict:
        """The MongoDB error reply for this exception."""
        return {"ok": 0.0, "errmsg": self.errmsg, "code": self.code, "codeName": self.code_name}


class InvalidBSONError(InvalidRequestError):
    """A BSON document inside the message does not decode (MongoDB code 22)."""

    code = 22
    code_name = "InvalidBSON"


class DocumentTooLargeError(InvalidRequestError):
    """A BSON document is above ``maxBsonObjectSize`` (MongoDB code 10334)."""

    code = 10334
    code_name = "BSONObjectTooLarge"
