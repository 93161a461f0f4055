"""Start and stop a MongoLake server: engine + command layer + wire server."""
from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from mongolake.commands.context import ServerOptions, ServerState
from mongolake.commands.dispatch import CommandHandler
from mongolake.engine import Engine
from mongolake.query.bsonorder import CODEC_OPTIONS
from wire.server import WireServer

log = logging.getLogger("mongolake")


class MongoLakeServer:
    def __init__(self, engine: Engine, options: ServerOptions):
        self.engine = engine
        self.options = options
        self.state = ServerState(engine, options)
        self.handler = CommandHandler(self.state)
        self.wire: WireServer | None = None
        self._reaper: asyncio.Task | None = None

    async def start(self) -> None:
        if not self.engine.opened:
            await asyncio.to_thread(self.engine.open)
        self.wire = WireServer(self.handler, self.options.host, self.options.port, codec_options=CODEC_OPTIONS)
        await self.wire.start()
        self.options.port = self.wire.port
        self._reaper = asyncio.get_running_loop().create_task(self._reap_loop())

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(30)
            self.state.cursors.reap()

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        if self.wire is not None:
            await self.wire.stop()
        await asyncio.to_thread(self.engine.close)


async def serve(engine: Engine, options: ServerOptions, ready: Any = None) -> None:
    """Run until SIGTERM/SIGINT, then stop accepting, flush and exit."""
    srv = MongoLakeServer(engine, options)
    await srv.start()
    mode = f"replica set {options.replset}" if options.replset else "standalone"
    log.info("MongoLake listening on %s:%d (storage %s, format %s, %s)", options.host, options.port,
             engine.storage.url, engine.table_format, mode)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    if ready is not None:
        ready(srv)
    await stop.wait()
    log.info("shutting down: flushing and closing")
    await srv.stop()
    log.info("stopped")
