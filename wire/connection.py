"""Per-connection state shared between the wire server and the command layer."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from . import compression


class Connection:
    """One client connection.

    ``id``: increasing connectionId (what ``hello``'s ``connectionId`` reports);
    ``peer`` / ``local``: "host:port" strings; ``compressor``: the negotiated compressor
    name or ``None`` (settable by the command layer while answering hello; replies to
    compressed requests are compressed with the request's own compressor);
    ``state``: free dict for upper layers (sessions, auth, client metadata);
    ``closed``: True once the socket is gone; ``created_at``: ``time.time()`` at accept.
    """

    __slots__ = ("id", "peer", "local", "state", "closed", "created_at", "_compressor", "_transport", "_closed_future")

    def __init__(self, conn_id: int, peer: str, local: str, transport: asyncio.BaseTransport | None = None) -> None:
        self.id = conn_id
        self.peer = peer
        self.local = local
        self.state: dict[str, Any] = {}
        self.closed = False
        self.created_at = time.time()
        self._compressor: str | None = None
        self._transport = transport
        self._closed_future: asyncio.Future | None = None

    @property
    def compressor(self) -> str | None:
        return self._compressor

    @compressor.setter
    def compressor(self, name: str | None) -> None:
        if name is not None and name not in compression.SUPPORTED:
            raise ValueError(f"unsupported compressor {name!r}; supported: {compression.SUPPORTED}")
        self._compressor = name

    def close(self) -> None:
        """Close the connection (pending replies already written are flushed first)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once, discarding unsent data."""
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (e.g. to stop a long wait for a gone client)."""
        if self.closed:
            return
        if self._closed_future is None:
            self._closed_future = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._closed_future)

    def _mark_closed(self) -> None:
        self.closed = True
        fut = self._closed_future
        if fut is not None and not fut.done():
            fut.set_result(None)

    def __repr__(self) -> str:
        return f"Connection(id={self.id}, peer={self.peer!r}, closed={self.closed})"
