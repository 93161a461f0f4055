"""The interface between the wire server and the command layer.

The server calls, for every connection::

    await handler.on_connect(conn)                # optional hook, before any request
    reply = await handler.handle(conn, request)   # once per request, strictly in order
    await handler.on_disconnect(conn)             # optional hook, once, after the last request

``request`` is an :class:`~wire.messages.OpMsgRequest` or
:class:`~wire.messages.OpQueryRequest`; ``handle`` returns a :class:`Reply`, a plain
mapping or pre-encoded BSON ``bytes`` (both mean ``Reply(that)``), or ``None`` for "no
reply" (only correct for ``request.more_to_come`` messages, whose replies the server
drops anyway).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Protocol, Union, runtime_checkable

if TYPE_CHECKING:
    from .connection import Connection
    from .messages import Request


class Reply:
    """What a handler answers.

    ``body``: the reply document – a mapping (encoded by the server with its codec
    options), or pre-encoded BSON (``bytes`` or ``bson.RawBSONDocument``), spliced
    without re-encoding.  The server frames it as OP_MSG for OP_MSG requests and as
    OP_REPLY (one document) for OP_QUERY requests, compressed as negotiated.

    ``more_to_come``: exhaust.  Only honoured for OP_MSG requests with
    ``exhaust_allowed`` when the handler implements ``next_exhaust``; the reply is then
    sent with the moreToCome flag and the server asks ``next_exhaust`` for the next one,
    until a reply without ``more_to_come``.  Otherwise ignored (a normal single reply).

    ``close_connection``: close the connection after this reply has been written.
    """

    __slots__ = ("body", "more_to_come", "close_connection")

    def __init__(
        self,
        body: Mapping[str, Any] | bytes,
        *,
        more_to_come: bool = False,
        close_connection: bool = False,
    ) -> None:
        self.body = body
        self.more_to_come = more_to_come
        self.close_connection = close_connection

    def __repr__(self) -> str:
        kind = f"{len(self.body)} bytes" if isinstance(self.body, (bytes, bytearray)) else repr(self.body)
        return f"Reply({kind}, more_to_come={self.more_to_come}, close_connection={self.close_connection})"


HandlerResult = Union[Reply, Mapping[str, Any], bytes, None]


@runtime_checkable
class Handler(Protocol):
    """What :class:`~wire.server.WireServer` needs.  Only ``handle`` is required;
    ``on_connect``, ``on_disconnect`` and ``next_exhaust`` are looked up with getattr."""

    async def handle(self, conn: "Connection", request: "Request") -> HandlerResult:
        """Answer one request.  Exceptions are logged and answered with InternalError
        (``InvalidRequestError`` subclasses with their own code, without a traceback)."""
        ...


class BaseHandler:
    """Convenience base class with no-op hooks; subclasses implement :meth:`handle`."""

    async def on_connect(self, conn: "Connection") -> None:
        """Called once per connection before its first request is handled."""

    async def on_disconnect(self, conn: "Connection") -> None:
        """Called once per connection after it closed and its last request finished
        (kill the connection's cursors, end its implicit sessions, ...)."""

    async def handle(self, conn: "Connection", request: "Request") -> HandlerResult:  # pragma: no cover
        raise NotImplementedError

    # Optional exhaust support; define it in a subclass to enable it:
    # async def next_exhaust(self, conn, request, previous: Reply) -> Reply: ...
