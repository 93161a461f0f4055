"""A live WireServer running a tiny test handler on a background event loop."""
from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from wire import SUPPORTED_COMPRESSORS, BaseHandler, InvalidBSONError, Reply, WireServer

HELLO = {
    "ismaster": True,
    "isWritablePrimary": True,
    "helloOk": True,
    "maxWireVersion": 25,
    "minWireVersion": 0,
    "maxBsonObjectSize": 16 * 1024 * 1024,
    "maxMessageSizeBytes": 48_000_000,
    "maxWriteBatchSize": 100_000,
    "ok": 1.0,
}


class PingHandler(BaseHandler):
    """Answers hello/isMaster/ping plus a few commands that exercise the server."""

    def __init__(self) -> None:
        self.connected: list[int] = []
        self.disconnected: list[int] = []
        self.seen: list[tuple[int, str, Any]] = []  # (conn id, command, argument)

    async def on_connect(self, conn) -> None:
        self.connected.append(conn.id)

    async def on_disconnect(self, conn) -> None:
        self.disconnected.append(conn.id)

    async def handle(self, conn, request):
        body = request.body  # InvalidBSONError propagates: the server answers code 22
        name = next(iter(body), "")
        self.seen.append((conn.id, name, body.get(name)))
        lname = name.lower()
        if lname in ("hello", "ismaster"):
            doc = dict(HELLO, connectionId=conn.id)
            offered = [c for c in body.get("compression", ()) if c in SUPPORTED_COMPRESSORS]
            if offered:
                conn.compressor = offered[0]
                doc["compression"] = offered[:1]
            return doc
        if lname == "ping":
            return {"ok": 1.0, "requestCompressor": request.compressor_id, "connCompressor": conn.compressor}
        if lname == "echo":
            return Reply(request.raw_body)
        if lname == "sequences":
            return {"ok": 1.0, "seq": {k: len(v) for k, v in request.sequences.items()}}
        if lname == "boom":
            raise RuntimeError("kaboom")
        if lname == "invalid":
            raise InvalidBSONError("made up")
        if lname == "sleep":
            await asyncio.sleep(body["sleep"])
            return {"ok": 1.0, "slept": body["sleep"]}
        if lname == "big":
            return {"ok": 1.0, "data": b"x" * body["big"]}
        if lname == "bye":
            return Reply({"ok": 1.0}, close_connection=True)
        if lname == "stream":
            conn.state["stream_left"] = body["stream"]
            conn.state["stream_bad_at"] = body.get("badAt")
            return Reply({"ok": 1.0, "n": 0}, more_to_come=True)
        if lname == "unencodable":
            return {"ok": 1.0, "x": object()}
        return {"ok": 0.0, "errmsg": f"no such command: '{name}'", "code": 59, "codeName": "CommandNotFound"}

    async def next_exhaust(self, conn, request, previous):
        left = conn.state["stream_left"] = conn.state["stream_left"] - 1
        n = previous.body["n"] + 1
        if n == conn.state["stream_bad_at"]:
            return Reply({"ok": 1.0, "n": n, "bad": object()}, more_to_come=True)
        return Reply({"ok": 1.0, "n": n}, more_to_come=left > 0)


class ServerThread:
    """Runs a WireServer on its own event loop thread; ``call`` runs coroutines there."""

    def __init__(self, handler, **kwargs) -> None:
        self.handler = handler
        self.loop = asyncio.new_event_loop()
        self.server = WireServer(handler, port=0, **kwargs)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.call(self.server.start())
        self.port = self.server.port

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def live():
    st = ServerThread(PingHandler())
    yield st
    st.close()
