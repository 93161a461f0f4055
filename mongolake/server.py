"""Start and stop a MongoLake server: engine + command layer + wire server.

Besides wiring the layers together, the server owns what a long-running process
needs:

* **Graceful shutdown** (:meth:`MongoLakeServer.shutdown`, run on SIGTERM/SIGINT):
  stop accepting connections, answer new requests on open connections with
  ``ShutdownInProgress`` (91, retryable for drivers), let requests in flight
  finish (up to ``shutdown_timeout`` seconds), close the connections, flush every
  memtable, close the engine and release the store lock. A second signal skips
  the wait.
* **Background compaction** (:class:`BackgroundCompactor`): every
  ``compact_interval`` seconds, collections with at least ``compact_min_files``
  small files (below half of ``compact_target_size``) are compacted.
* **Command latencies** per command name, for the metrics endpoint.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from mongolake.commands.context import ServerOptions, ServerState
from mongolake.commands.dispatch import CommandHandler
from mongolake.engine import Engine
from mongolake.errors import ErrorCode, MongoError
from mongolake.metrics import Histogram, MetricsServer, render
from mongolake.query.bsonorder import CODEC_OPTIONS
from wire.handler import Reply
from wire.server import WireServer

log = logging.getLogger("mongolake")

_MONITOR_COMMANDS = frozenset({"hello", "isMaster", "ismaster"})
COMPACT_MAX_FILES = 100        # small files merged by one background compaction run (bounds its memory)


class ListenError(Exception):
    """The server (or its metrics endpoint) cannot listen on its address."""


class _Handler(CommandHandler):
    """The command handler plus in-flight tracking, latencies and shutdown refusal."""

    def __init__(self, server: "MongoLakeServer"):
        super().__init__(server.state)
        self.server = server

    async def handle(self, conn: Any, request: Any) -> Any:
        srv = self.server
        if srv.draining:
            if request.more_to_come:
                return None
            return Reply(MongoError(ErrorCode.ShutdownInProgress,
                                    "The server is shutting down; retry on another server").to_doc())
        name = request.command_name or "?"
        # a driver's monitor long-polls with hello (maxAwaitTimeMS): not work to wait for at shutdown
        counted = name not in _MONITOR_COMMANDS
        if counted:
            srv.in_flight += 1
        t0 = time.perf_counter()
        try:
            return await super().handle(conn, request)
        finally:
            sec = getattr(srv.state, "security", None)
            if sec is not None:     # an operation slot taken by a command that failed
                sec.limits.release(conn)
            srv.latency.observe(name if name in self.commands else "(unknown)", time.perf_counter() - t0)
            if counted:
                srv.in_flight -= 1
                if srv.in_flight == 0 and srv.draining:
                    srv._idle.set()


class BackgroundCompactor:
    """Compacts collections that accumulated small files (flushes make one file each)."""

    def __init__(self, engine: Engine, *, interval: float, min_files: int, target_size: int):
        self.engine = engine
        self.interval = interval
        self.min_files = min_files
        self.target_size = target_size
        self.small_file_bytes = target_size // 2       # engine.compact's own definition of "small"
        self.stats = {"checks": 0, "runs": 0, "files_rewritten": 0, "seconds": 0.0, "errors": 0}

    def candidates(self) -> list[tuple[str, str, int]]:
        """``(db, collection, small files)`` of every collection due for compaction."""
        out = []
        for c in list(self.engine.collections.values()):
            if c.dropped:
                continue
            n = sum(1 for f in c.snapshot.files if f.size < self.small_file_bytes)
            if n >= self.min_files:
                out.append((c.meta.db, c.meta.name, n))
        return out

    def run_once(self) -> list[dict]:
        """Compact every due collection now; return the engine's metrics per run."""
        self.stats["checks"] += 1
        results = []
        for db, name, n in self.candidates():
            t0 = time.perf_counter()
            try:
                m = self.engine.compact(db, name, target_file_size=self.target_size, max_files=COMPACT_MAX_FILES)
            except MongoError as e:
                if e.code == ErrorCode.NamespaceNotFound:    # dropped meanwhile
                    continue
                self.stats["errors"] += 1
                log.warning("background compaction of %s.%s failed: %s", db, name, e)
                continue
            except Exception:   # noqa: BLE001 - keep the loop alive; the next run retries
                self.stats["errors"] += 1
                log.exception("background compaction of %s.%s failed", db, name)
                continue
            secs = time.perf_counter() - t0
            self.stats["runs"] += 1
            self.stats["files_rewritten"] += m.get("files_rewritten", 0)
            self.stats["seconds"] += secs
            log.info("compacted %s.%s: %d small files -> %d (%.2f s)", db, name, m.get("files_rewritten", 0),
                     m.get("files_written", 0), secs,
                     extra={"attr": {"ns": f"{db}.{name}", "smallFiles": n, **m, "seconds": round(secs, 3)}})
            results.append({"ns": f"{db}.{name}", **m})
        return results

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await asyncio.to_thread(self.run_once)


class MongoLakeServer:
    def __init__(self, engine: Engine, options: ServerOptions, config: Any = None, lock: Any = None):
        self.engine = engine
        self.options = options
        self.config = config
        self.lock = lock
        self.state = ServerState(engine, options)
        if config is not None:
            self.state.slow_ms = config.slow_ms
        self.in_flight = 0
        self.draining = False
        self._idle = asyncio.Event()
        self.latency = Histogram()
        self.handler = _Handler(self)
        self.wire: WireServer | None = None
        self.metrics: MetricsServer | None = None
        self.compactor: BackgroundCompactor | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopped = False

    def _opt(self, name: str, default: Any) -> Any:
        return self.config.get(name, default) if self.config is not None else default

    async def start(self) -> None:
        if not self.engine.opened:
            await asyncio.to_thread(self.engine.open)
        from mongolake import security
        from mongolake.security import tls

        sec = security.setup(self)              # users, root user, hooks, limits, warnings
        tls_mode, tls_ctx = tls.from_options(self._opt)
        self.wire = tls.make_wire_server(self.handler, self.options.host, self.options.port, mode=tls_mode,
                                         context=tls_ctx, codec_options=CODEC_OPTIONS,
                                         max_connections=self._opt("max_connections", 10000))
        try:
            await self.wire.start()
        except OSError as e:
            raise ListenError(f"cannot listen on {self.options.host}:{self.options.port}: {e.strerror or e}") from e
        self.options.port = self.wire.port
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._reap_loop()))
        self._tasks.append(loop.create_task(sec.limits.reap_loop(self)))
        interval = self._opt("compact_interval", 0)
        if interval:
            self.compactor = BackgroundCompactor(self.engine, interval=interval,
                                                 min_files=self._opt("compact_min_files", 16),
                                                 target_size=self._opt("compact_target_size", 128) << 20)
            self._tasks.append(loop.create_task(self.compactor.loop()))
        port = self._opt("metrics_port", None)
        if port is not None:
            host = self._opt("metrics_host", "127.0.0.1")
            self.metrics = MetricsServer(lambda: render(self), host, port)
            try:
                await self.metrics.start()
            except OSError as e:
                raise ListenError(f"metrics: cannot listen on {host}:{port}: {e.strerror or e}") from e
            log.info("metrics on http://%s:%d/metrics", self.metrics.host, self.metrics.port,
                     extra={"attr": {"metricsPort": self.metrics.port}})

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(30)
            self.state.cursors.reap()

    async def shutdown(self, timeout: float | None = None, *, force: asyncio.Event | None = None) -> None:
        """Stop accepting, let requests in flight finish (at most ``timeout`` s, or
        until ``force`` is set), close connections, flush, close the engine."""
        if self._stopped:
            return
        self._stopped = True
        timeout = self._opt("shutdown_timeout", 10.0) if timeout is None else timeout
        self.draining = True
        if self.wire is not None and self.wire._server is not None:
            self.wire._server.close()          # stop accepting; open connections stay for now
        if self.in_flight:
            log.info("shutdown: waiting for %d request(s) in flight", self.in_flight)
            waits = [asyncio.ensure_future(self._idle.wait())]
            if force is not None:
                waits.append(asyncio.ensure_future(force.wait()))
            done, pending = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for w in pending:
                w.cancel()
            if self.in_flight:
                log.warning("shutdown: %d request(s) still running after %.1f s; closing their connections",
                            self.in_flight, timeout)
        for t in self._tasks:
            t.cancel()
        if self.wire is not None:
            await self.wire.stop(timeout=1.0)
        if self.metrics is not None:
            await self.metrics.stop()
        t0 = time.perf_counter()
        await asyncio.to_thread(self.engine.close)
        log.info("shutdown: flushed and closed the engine in %.2f s", time.perf_counter() - t0)
        if self.lock is not None:
            self.lock.release()

    async def stop(self) -> None:
        """Immediate variant of :meth:`shutdown` (no waiting for requests in flight)."""
        await self.shutdown(timeout=0)


async def serve(engine: Engine, options: ServerOptions, ready: Any = None, *, config: Any = None,
                lock: Any = None) -> None:
    """Run until SIGTERM/SIGINT, then shut down gracefully (see the module doc)."""
    srv = MongoLakeServer(engine, options, config, lock)
    try:
        await srv.start()
    except BaseException:
        for t in srv._tasks:
            t.cancel()
        if srv.wire is not None:
            await srv.wire.stop(timeout=0)
        await asyncio.to_thread(engine.close, flush=False)
        if lock is not None:
            lock.release()
        raise
    mode = f"replica set {options.replset}" if options.replset else "standalone"
    log.info("MongoLake listening on %s:%d (storage %s, format %s, %s)", options.host, options.port,
             engine.storage.url, engine.table_format, mode,
             extra={"attr": {"host": options.host, "port": options.port, "storage": engine.storage.url,
                             "walDir": engine.wal_dir, "format": engine.table_format}})
    stop, force = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signame: str) -> None:
        if stop.is_set():
            log.warning("%s again: not waiting for requests in flight", signame)
            force.set()
        else:
            log.info("%s received: shutting down", signame)
            stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig.name)
        except (NotImplementedError, RuntimeError):
            pass
    if ready is not None:
        ready(srv)
    await stop.wait()
    await srv.shutdown(force=force)
    log.info("stopped")
