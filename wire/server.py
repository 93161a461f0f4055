"""asyncio server speaking the MongoDB wire protocol to a :class:`~wire.handler.Handler`.

Transport only: it moves bytes between sockets and :class:`~wire.protocol.MessageReader`,
calls the handler once per request (in order, per connection), and frames the replies.
Logging of "listening on ..." is left to the caller.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections import deque
from typing import Any, Sequence

from bson.codec_options import CodecOptions

from . import compression
from .bsonutil import DEFAULT_CODEC_OPTIONS, encode_document
from .connection import Connection
from .constants import BSON_COMMAND_OVERHEAD, MAX_BSON_OBJECT_SIZE, MAX_MESSAGE_SIZE_BYTES, MSG_MORE_TO_COME, OpCode
from .errors import InvalidRequestError, ProtocolError
from .handler import Reply
from .messages import Request
from .protocol import MessageReader, encode_op_msg, encode_op_reply, next_request_id

log = logging.getLogger("wire.server")

#: Pause reading a connection when this many parsed requests wait to be handled.
MAX_PENDING_REQUESTS = 64
MAX_REPLY_BODY = MAX_BSON_OBJECT_SIZE + BSON_COMMAND_OVERHEAD
REPLY_TOO_LARGE = {
    "ok": 0.0,
    "errmsg": "reply document exceeds the maximum BSON object size",
    "code": 10334,
    "codeName": "BSONObjectTooLarge",
}


def internal_error_document(message: str) -> dict:
    return {"ok": 0.0, "errmsg": message, "code": 1, "codeName": "InternalError"}


def _format_address(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host, port = addr[0], addr[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(addr)


class _ConnectionProtocol(asyncio.Protocol):
    """One accepted socket: parse incoming frames, run the handler, write replies."""

    def __init__(self, server: "WireServer") -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self.conn: Connection | None = None
        self._reader = MessageReader(codec_options=server.codec_options, max_message_size=server.max_message_size)
        self._queue: deque[Request] = deque()
        self._worker: asyncio.Task | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: asyncio.Future | None = None
        self._eof = False
        self._connect_pending = False
        self._disconnected = False

    # -- asyncio callbacks --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._server
        self._transport = transport  # type: ignore[assignment]
        if len(server._protocols) >= server.max_connections or server._stopping:
            log.warning("connection refused: %d connections open (max %d)", len(server._protocols), server.max_connections)
            transport.abort()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover - platform specific
                pass
        self.conn = Connection(
            next(server._conn_ids),
            _format_address(transport.get_extra_info("peername")),
            _format_address(transport.get_extra_info("sockname")),
            transport,
        )
        server._protocols.add(self)
        if server._on_connect is not None:
            self._connect_pending = True
            self._worker = server._loop.create_task(self._run())

    def data_received(self, data: bytes) -> None:
        if self.conn is None or self.conn.closed:
            return
        try:
            requests = self._reader.feed(data)
        except ProtocolError as exc:
            log.info("closing connection %d from %s: %s", self.conn.id, self.conn.peer, exc)
            if not exc.requests:
                self._transport.abort()  # type: ignore[union-attr]
                return
            # Like mongod, answer the complete messages that preceded the bad frame, then close.
            requests = exc.requests
            self._eof = True
            self._transport.pause_reading()  # type: ignore[union-attr]
            self._reading_paused = True
        if requests:
            self._queue.extend(requests)
            if self._worker is None:
                self._worker = self._server._loop.create_task(self._run())
            if len(self._queue) >= MAX_PENDING_REQUESTS and not self._reading_paused and not self._eof:
                self._reading_paused = True
                self._transport.pause_reading()  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        self._eof = True
        # Keep the socket half-open while requests are pending so their replies can be sent.
        return self._worker is not None

    def connection_lost(self, exc: Exception | None) -> None:
        conn = self.conn
        if conn is None:
            return
        conn._mark_closed()
        self._server._protocols.discard(self)
        self._wake_writer()
        if self._worker is None:
            self._server._spawn(self._disconnect())

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_writer()

    def _wake_writer(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- request processing ---------------------------------------------------------------
    async def _drain(self) -> None:
        while self._writing_paused and not self.conn.closed:  # type: ignore[union-attr]
            self._drain_waiter = self._server._loop.create_future()
            await self._drain_waiter

    async def _run(self) -> None:
        conn = self.conn
        handler = self._server.handler
        try:
            if self._connect_pending:
                self._connect_pending = False
                try:
                    await self._server._on_connect(conn)  # type: ignore[misc]
                except Exception:
                    log.exception("on_connect failed for connection %d; closing it", conn.id)  # type: ignore[union-attr]
                    self._transport.abort()  # type: ignore[union-attr]
                    self._queue.clear()
            queue = self._queue
            while queue:
                request = queue.popleft()
                if self._reading_paused and not self._eof and len(queue) < MAX_PENDING_REQUESTS // 2:
                    self._reading_paused = False
                    if not conn.closed:  # type: ignore[union-attr]
                        self._transport.resume_reading()  # type: ignore[union-attr]
                await self._process(handler, conn, request)  # type: ignore[arg-type]
                if self._writing_paused:
                    await self._drain()
        finally:
            self._worker = None
            if conn.closed:  # type: ignore[union-attr]
                await self._disconnect()
            elif self._eof and not self._queue:
                self._transport.close()  # type: ignore[union-attr]

    async def _disconnect(self) -> None:
        if self._disconnected or self._server._on_disconnect is None:
            self._disconnected = True
            return
        self._disconnected = True
        try:
            await self._server._on_disconnect(self.conn)
        except Exception:
            log.exception("on_disconnect failed for connection %d", self.conn.id)  # type: ignore[union-attr]

    async def _call(self, coro_fn: Any, *args: Any) -> Any:
        """Run a handler coroutine; turn exceptions into error documents."""
        try:
            return await coro_fn(*args)
        except InvalidRequestError as exc:
            return exc.to_document()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("handler failed on connection %d", args[0].id)
            return internal_error_document(f"{type(exc).__name__}: {exc}")

    async def _process(self, handler: Any, conn: Connection, request: Request) -> None:
        result = await self._call(handler.handle, conn, request)
        if result is None or conn.closed:
            return
        reply = result if isinstance(result, Reply) else Reply(result)
        if request.more_to_come:  # the client expects no reply
            if reply.close_connection:
                self._transport.close()  # type: ignore[union-attr]
            return
        exhaust = (
            reply.more_to_come
            and request.exhaust_allowed
            and request.op == OpCode.MSG
            and self._server._next_exhaust is not None
        )
        reply_id, streaming = self._write_reply(request, reply, request.request_id, exhaust)
        while streaming and not conn.closed:
            if self._writing_paused:
                await self._drain()
                if conn.closed:
                    return
            result = await self._call(self._server._next_exhaust, conn, request, reply)
            if result is None:
                log.warning("next_exhaust returned None on connection %d; closing it", conn.id)
                self._transport.close()  # type: ignore[union-attr]
                return
            reply = result if isinstance(result, Reply) else Reply(result)
            reply_id, streaming = self._write_reply(request, reply, reply_id, reply.more_to_come)  # type: ignore[arg-type]
        if reply.close_connection:
            self._transport.close()  # type: ignore[union-attr]

    def _write_reply(
        self, request: Request, reply: Reply, response_to: int, more_to_come: bool
    ) -> tuple[int | None, bool]:
        """Frame and send one reply.  Returns its requestID (None if nothing was sent)
        and whether it went out with moreToCome (an encoding error ends a stream)."""
        conn = self.conn
        if conn.closed:  # type: ignore[union-attr]
            return None, False
        compressor = None
        if request.compressor_id is not None and compression.may_compress(request.command_name):
            compressor = request.compressor_id
        reply_id = next_request_id()
        opts = self._server.codec_options
        try:
            raw = encode_document(reply.body, opts)
        except Exception as exc:
            log.exception("cannot encode reply on connection %d", conn.id)  # type: ignore[union-attr]
            raw = encode_document(internal_error_document(f"cannot encode reply: {exc}"), opts)
            more_to_come = False
        if len(raw) > MAX_REPLY_BODY:
            log.warning("reply of %d bytes exceeds the BSON size limit on connection %d", len(raw), conn.id)  # type: ignore[union-attr]
            raw = encode_document(REPLY_TOO_LARGE, opts)
            more_to_come = False
        if request.op == OpCode.MSG:
            frame = encode_op_msg(reply_id, response_to, raw, MSG_MORE_TO_COME if more_to_come else 0, compressor)
        else:
            frame = encode_op_reply(reply_id, response_to, raw, compressor=compressor)
        self._transport.write(frame)  # type: ignore[union-attr]
        return reply_id, more_to_come

class WireServer:
    """MongoDB wire protocol server.

    ``WireServer(handler, host="127.0.0.1", port=27017)``; ``await start()`` binds and
    listens (``port=0`` picks a free port, read it back from :attr:`port`);
    ``await stop()`` stops accepting, closes every connection and waits (bounded) for
    in-flight handlers.  ``host`` may be a sequence of hosts.
    """

    def __init__(
        self,
        handler: Any,
        host: str | Sequence[str] | None = "127.0.0.1",
        port: int = 27017,
        *,
        max_connections: int = 10_000,
        max_message_size: int = MAX_MESSAGE_SIZE_BYTES,
        codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS,
        backlog: int = 1024,
        reuse_address: bool = True,
        ssl: Any = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.max_message_size = max_message_size
        self.codec_options = codec_options
        self.backlog = backlog
        self.reuse_address = reuse_address
        self.ssl = ssl
        self._on_connect = getattr(handler, "on_connect", None)
        self._on_disconnect = getattr(handler, "on_disconnect", None)
        self._next_exhaust = getattr(handler, "next_exhaust", None)
        self._conn_ids = itertools.count(1)
        self._protocols: set[_ConnectionProtocol] = set()
        self._background: set[asyncio.Task] = set()
        self._server: asyncio.base_events.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    @property
    def connections(self) -> list[Connection]:
        """Open connections."""
        return [p.conn for p in self._protocols if p.conn is not None]

    @property
    def addresses(self) -> list[str]:
        """Bound addresses as "host:port" strings."""
        if self._server is None:
            return []
        return [_format_address(s.getsockname()) for s in self._server.sockets]

    @property
    def serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        """Bind and start accepting connections."""
        if self._server is not None:
            raise RuntimeError("server already started")
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._server = await self._loop.create_server(
            lambda: _ConnectionProtocol(self),
            self.host,
            self.port,
            backlog=self.backlog,
            reuse_address=self.reuse_address,
            ssl=self.ssl,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        await self._server.serve_forever()  # type: ignore[union-attr]

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close all connections, wait up to ``timeout`` s for in-flight
        handlers and ``on_disconnect`` hooks, then cancel what is left."""
        if self._server is None:
            return
        self._stopping = True
        self._server.close()
        protocols = list(self._protocols)
        for proto in protocols:
            transport = proto._transport
            if transport is not None:
                # A client that is not reading its replies would hold close() forever.
                if transport.get_write_buffer_size():
                    transport.abort()
                else:
                    transport.close()
        pending = [p._worker for p in protocols if p._worker is not None] + list(self._background)
        if pending:
            done, not_done = await asyncio.wait(pending, timeout=timeout)
            for task in not_done:
                task.cancel()
            if not_done:
                await asyncio.wait(not_done, timeout=1.0)
        for proto in protocols:  # e.g. a client that does not read: close() would wait forever
            if proto._transport is not None and proto.conn is not None and not proto.conn.closed:
                proto._transport.abort()
        # connection_lost callbacks of the transports just closed run on the next loop turns.
        for _ in range(3):
            await asyncio.sleep(0)
        if self._background:
            await asyncio.wait(list(self._background), timeout=timeout)
        await self._server.wait_closed()
        self._server = None

    def _spawn(self, coro: Any) -> None:
        task = self._loop.create_task(coro)  # type: ignore[union-attr]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def __aenter__(self) -> "WireServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
