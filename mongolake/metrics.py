"""Prometheus metrics: command latencies recorded here, everything else read from
the running server (``ServerState`` counters, ``engine.stats``, the WAL, the cache,
the background compactor) when scraped.

``MetricsServer(registry, host, port)`` serves the text exposition format
(version 0.0.4) at ``GET /metrics`` (and ``GET /health`` answers ``ok``).
"""
from __future__ import annotations

import asyncio
import bisect
import logging
import os
import threading
import time
from typing import Any, Callable, Iterable

log = logging.getLogger("mongolake.metrics")

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Histogram:
    """Cumulative-bucket latency histogram per label value (a command name)."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS):
        self.buckets = buckets
        self._lock = threading.Lock()
        self._series: dict[str, list] = {}      # label -> [counts per bucket + inf, sum]

    def observe(self, label: str, seconds: float) -> None:
        i = bisect.bisect_left(self.buckets, seconds)
        with self._lock:
            s = self._series.get(label)
            if s is None:
                s = self._series[label] = [[0] * (len(self.buckets) + 1), 0.0]
            s[0][i] += 1
            s[1] += seconds

    def snapshot(self) -> dict[str, tuple[list[int], float]]:
        with self._lock:
            return {k: (list(v[0]), v[1]) for k, v in self._series.items()}


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(v: float) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


class Exposition:
    """Builds the text format: one ``# HELP``/``# TYPE`` header per metric family."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[dict[str, str], float]] | float) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        if isinstance(samples, (int, float)):
            samples = [({}, samples)]
        for labels, value in samples:
            lab = ",".join(f'{k}="{_esc(str(v))}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{lab}}} {_fmt(value)}" if lab else f"{name} {_fmt(value)}")

    def histogram(self, name: str, help_text: str, label: str, hist: Histogram) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} histogram")
        for value, (counts, total) in sorted(hist.snapshot().items()):
            acc = 0
            lv = _esc(value)
            for bound, c in zip((*hist.buckets, float("inf")), counts):
                acc += c
                le = "+Inf" if bound == float("inf") else repr(bound)
                self.lines.append(f'{name}_bucket{{{label}="{lv}",le="{le}"}} {acc}')
            self.lines.append(f'{name}_sum{{{label}="{lv}"}} {repr(total)}')
            self.lines.append(f'{name}_count{{{label}="{lv}"}} {acc}')

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def wal_size(wal: Any) -> tuple[int, int]:
    """(bytes, segments) of the WAL folder."""
    total = n = 0
    for _seq, path in wal.segments():
        try:
            total += os.path.getsize(path)
            n += 1
        except OSError:
            pass
    return total, n


def render(server: Any) -> str:
    """The metrics of a running :class:`mongolake.server.MongoLakeServer`."""
    st, eng = server.state, server.engine
    out = Exposition()
    out.family("mongolake_up", "gauge", "1 while the server runs", 1)
    out.family("mongolake_uptime_seconds", "gauge", "seconds since the server started", time.time() - st.started)
    out.family("mongolake_opcounters_total", "counter", "operations by type (serverStatus opcounters)",
               [({"type": k}, v) for k, v in sorted(st.opcounters.items())])
    out.family("mongolake_connections", "gauge", "open client connections", st.connections_current)
    out.family("mongolake_connections_created_total", "counter", "connections accepted", st.connections_total)
    out.family("mongolake_requests_in_flight", "gauge", "requests being handled", server.in_flight)
    out.histogram("mongolake_command_duration_seconds", "command latency (wire request to reply)", "command",
                  server.latency)
    out.family("mongolake_cursors_open", "gauge", "open cursors", len(st.cursors.cursors))
    out.family("mongolake_write_batches_total", "counter", "atomic write batches committed", eng.stats["batches"])
    out.family("mongolake_flushes_total", "counter", "memtable flushes", eng.stats["flushes"])
    out.family("mongolake_flush_seconds_total", "counter", "time spent flushing", eng.stats["flush_seconds"])
    size, segs = wal_size(eng.wal)
    out.family("mongolake_wal_size_bytes", "gauge", "bytes in WAL segments (not yet flushed to tables)", size)
    out.family("mongolake_wal_segments", "gauge", "WAL segment files", segs)
    out.family("mongolake_wal_bytes_written_total", "counter", "bytes appended to the WAL", eng.wal.bytes_written)
    out.family("mongolake_wal_fsyncs_total", "counter", "WAL fsyncs (shared by concurrent writers)", eng.wal.fsyncs)
    cache = eng.cache
    lookups = cache.hits + cache.misses
    out.family("mongolake_cache_hits_total", "counter", "read cache hits", cache.hits)
    out.family("mongolake_cache_misses_total", "counter", "read cache misses", cache.misses)
    out.family("mongolake_cache_hit_ratio", "gauge", "hits / lookups since start (0 before any lookup)",
               cache.hits / lookups if lookups else 0.0)
    out.family("mongolake_cache_bytes", "gauge", "bytes held by the read cache", cache.nbytes)
    out.family("mongolake_cache_capacity_bytes", "gauge", "read cache capacity", cache.max_bytes)
    colls = list(eng.collections.values())
    out.family("mongolake_memtable_bytes", "gauge", "bytes of BSON in memtables",
               sum(c.mem_bytes() for c in colls))
    out.family("mongolake_collections", "gauge", "open collections", len(colls))
    small_limit = server.compactor.small_file_bytes if server.compactor else 0
    files, nbytes, small = [], [], []
    for c in sorted(colls, key=lambda c: c.ns):
        snap = c.snapshot
        files.append(({"ns": c.ns}, len(snap.files)))
        nbytes.append(({"ns": c.ns}, snap.size_bytes))
        small.append(({"ns": c.ns}, sum(1 for f in snap.files if f.size < small_limit)))
    out.family("mongolake_table_files", "gauge", "data files in the latest table version", files)
    out.family("mongolake_table_bytes", "gauge", "bytes of data files in the latest table version", nbytes)
    out.family("mongolake_table_small_files", "gauge", "data files below the compaction threshold", small)
    comp = server.compactor.stats if server.compactor else {}
    out.family("mongolake_compactions_total", "counter", "background compactions run", comp.get("runs", 0))
    out.family("mongolake_compaction_files_rewritten_total", "counter", "small files rewritten by compaction",
               comp.get("files_rewritten", 0))
    out.family("mongolake_compaction_seconds_total", "counter", "time spent compacting", comp.get("seconds", 0.0))
    out.family("mongolake_compaction_errors_total", "counter", "failed compactions", comp.get("errors", 0))
    storage = eng.storage
    out.family("mongolake_storage_read_bytes_total", "counter", "bytes read from the table storage",
               getattr(storage, "bytes_read", 0))
    if hasattr(storage, "get_requests"):
        out.family("mongolake_storage_get_requests_total", "counter", "GET requests to the object store",
                   storage.get_requests)
    return out.text()


class MetricsServer:
    """A minimal HTTP/1.1 endpoint for Prometheus scrapes (one request per connection)."""

    def __init__(self, render_fn: Callable[[], str], host: str = "127.0.0.1", port: int = 0):
        self.render_fn = render_fn
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            parts = head.split(b"\r\n", 1)[0].split()
            method, path = (parts[0], parts[1].split(b"?")[0]) if len(parts) >= 2 else (b"", b"")
            if method not in (b"GET", b"HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"method not allowed\n"
            elif path == b"/metrics":
                status, ctype = "200 OK", CONTENT_TYPE
                body = (await asyncio.to_thread(self.render_fn)).encode()
            elif path in (b"/health", b"/"):
                status, ctype, body = "200 OK", "text/plain", b"ok\n"
            else:
                status, ctype, body = "404 Not Found", "text/plain", b"not found; try /metrics\n"
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + (body if method != b"HEAD" else b""))
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except Exception:   # noqa: BLE001 - a scrape must not take the server down
            log.exception("metrics request failed")
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
