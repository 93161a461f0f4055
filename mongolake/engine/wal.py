"""Write-ahead log with group commit.

Segments ``wal-<first seq:020d>.log`` in a local folder hold records::

    [u32 payload length][u32 crc32c(payload)][payload]

A writer appends under a lock (a plain ``write`` into the page cache) and gets
its record's sequence number; durability is a separate step: one fsync covers
whatever has been written and releases every waiter up to that point, so
concurrent writers share one fsync (group commit). A torn or corrupt tail record
(short length, bad checksum) ends replay and is truncated away.

Who fsyncs: writes made on the server's event-loop thread are synced by a
callback on that loop (scheduled once per loop iteration, so it runs after every
request that was ready has appended: the group), as long as fsyncs are fast
(moving average under ``LOOP_FSYNC_MAX``); this avoids two thread hand-offs
(and their GIL waits) per write. Writes from other threads, and every write once
fsyncs get slow, are synced by a background thread instead, so a slow disk never
stalls the event loop for long.

Sync modes: ``always`` (default: acknowledge after fsync), ``interval``
(acknowledge at once, fsync every ``interval`` seconds), ``none`` (never fsync;
tests and benchmarks only).
"""
from __future__ import annotations

import asyncio
import logging
import os
import struct
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import crc32c

log = logging.getLogger("mongolake.wal")

_HDR = struct.Struct("<II")
MAX_RECORD = 1 << 30
SYNC_MODES = ("always", "interval", "none")
LOOP_FSYNC_MAX = 0.002      # seconds: fsyncs this fast (moving average) run on the event loop


@dataclass(slots=True)
class _Waiter:
    seq: int
    fut: asyncio.Future
    loop: asyncio.AbstractEventLoop


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class WriteAheadLog:
    def __init__(self, directory: str, *, sync: str = "always", interval: float = 0.1):
        if sync not in SYNC_MODES:
            raise ValueError(f"unknown WAL sync mode {sync!r} (use {', '.join(SYNC_MODES)})")
        self.dir = directory
        self.sync = sync
        self.interval = interval
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)          # wakes the sync thread
        self._durable = threading.Condition(self._lock)       # wakes blocking waiters (wait_durable)
        self._loop: asyncio.AbstractEventLoop | None = None   # the event loop that syncs its own writes
        self._loop_pending = False
        self.fsync_avg = 0.0        # moving average of fsync durations (seconds)
        self.loop_fsyncs = 0        # fsyncs made by the event loop (the rest: the sync thread)
        self._blocked = 0           # threads inside wait_durable
        self._fd: int | None = None
        self._segment_first: int = 0
        self._last_seq = 0          # last appended
        self._synced_seq = 0        # last durable
        self._dirty_fd = False
        self._waiters: list[_Waiter] = []
        self._closed = False
        self.bytes_written = 0
        self.fsyncs = 0
        self._thread: threading.Thread | None = None
        self.on_sync: list[Callable[[int], None]] = []    # called (any thread) after records become durable

    # -- recovery ------------------------------------------------------------
    def segments(self) -> list[tuple[int, str]]:
        out = []
        for name in os.listdir(self.dir):
            if name.startswith("wal-") and name.endswith(".log"):
                try:
                    out.append((int(name[4:-4]), os.path.join(self.dir, name)))
                except ValueError:
                    continue
        out.sort()
        return out

    def replay(self) -> Iterator[tuple[int, bytes]]:
        """Yield ``(seq, payload)`` for every intact record, oldest first; truncate a torn tail.
        Must be called before :meth:`open`."""
        segs = self.segments()
        for idx, (first, path) in enumerate(segs):
            seq = first
            self._last_seq = max(self._last_seq, first - 1)     # an empty segment still says where we were
            with open(path, "r+b") as f:
                data = f.read()
                pos = 0
                while pos + _HDR.size <= len(data):
                    n, crc = _HDR.unpack_from(data, pos)
                    end = pos + _HDR.size + n
                    if n > MAX_RECORD or end > len(data):
                        break
                    payload = data[pos + _HDR.size:end]
                    if crc32c.crc32c(payload) != crc:
                        break
                    yield seq, payload
                    self._last_seq = seq
                    seq += 1
                    pos = end
                if pos != len(data):
                    log.warning("WAL %s: dropping %d bytes of torn/corrupt tail at offset %d",
                                path, len(data) - pos, pos)
                    f.truncate(pos)
                    f.flush()
                    os.fsync(f.fileno())
                    # anything in later segments is after a hole: cannot be trusted
                    for _first, later in segs[idx + 1:]:
                        os.unlink(later)
                    self._synced_seq = self._last_seq
                    return
        self._synced_seq = self._last_seq

    # -- writing -------------------------------------------------------------
    def open(self, next_seq: int | None = None) -> None:
        """Start appending (a new segment). ``next_seq`` forces the first sequence number."""
        if next_seq is not None and next_seq - 1 > self._last_seq:
            self._last_seq = next_seq - 1
            self._synced_seq = self._last_seq
        self._open_segment()
        if self.sync != "none" and self._thread is None:
            self._thread = threading.Thread(target=self._sync_loop, name="wal-sync", daemon=True)
            self._thread.start()

    def _open_segment(self) -> None:
        first = self._last_seq + 1
        path = os.path.join(self.dir, f"wal-{first:020d}.log")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        old = self._fd
        self._fd = fd
        self._segment_first = first
        if old is not None:
            if self.sync != "none":
                os.fsync(old)
            os.close(old)
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def synced_seq(self) -> int:
        return self._synced_seq

    def append(self, payload: bytes) -> int:
        """Append one record; return its sequence number (not yet durable)."""
        if len(payload) > MAX_RECORD:
            raise ValueError("WAL record too large")
        rec = _HDR.pack(len(payload), crc32c.crc32c(payload)) + payload
        with self._lock:
            if self._closed or self._fd is None:
                raise RuntimeError("WAL is closed")
            os.write(self._fd, rec)
            self._last_seq += 1
            self.bytes_written += len(rec)
            if self.sync == "none":
                self._synced_seq = self._last_seq
            elif self.sync == "always":
                loop = self._loop
                if loop is not None and self.fsync_avg < LOOP_FSYNC_MAX and _running_loop() is loop:
                    if not self._loop_pending:
                        self._loop_pending = True
                        loop.call_soon(self._loop_sync)
                else:
                    self._cond.notify_all()
            return self._last_seq

    def rotate(self) -> int:
        """Start a new segment; return the last sequence number in the old ones."""
        with self._lock:
            self._open_segment_locked_flush()
            return self._last_seq

    def _open_segment_locked_flush(self) -> None:
        if self.sync != "none" and self._fd is not None:
            os.fsync(self._fd)
            self._synced_seq = self._last_seq
            self._release_waiters_locked()
        self._open_segment()

    def drop_through(self, seq: int) -> int:
        """Delete whole segments whose records are all <= ``seq``; return how many."""
        segs = self.segments()
        dropped = 0
        for i, (first, path) in enumerate(segs):
            nxt = segs[i + 1][0] if i + 1 < len(segs) else None
            if nxt is None or first == self._segment_first:
                break   # never the active segment
            if nxt - 1 <= seq:
                os.unlink(path)
                dropped += 1
        return dropped

    # -- durability ----------------------------------------------------------
    def wait_durable(self, seq: int, timeout: float | None = None) -> None:
        """Block until record ``seq`` is durable (per the sync mode)."""
        if self.sync != "always":
            return
        with self._lock:
            if self._synced_seq < seq:
                self._cond.notify_all()
            self._blocked += 1
            try:
                while self._synced_seq < seq:
                    if self._closed:
                        raise RuntimeError("WAL closed before the write became durable")
                    if not self._durable.wait(timeout):
                        raise TimeoutError("WAL sync timed out")
            finally:
                self._blocked -= 1

    def durable_future(self, seq: int, loop: asyncio.AbstractEventLoop) -> asyncio.Future | None:
        """A future completed (on ``loop``) when ``seq`` is durable; None if it already is."""
        if self.sync != "always" or self._synced_seq >= seq:
            return None
        on_loop = _running_loop() is loop
        if on_loop and self._loop is not loop:
            self._loop = loop               # the server's loop: its own writes are synced on it
            self._loop_pending = False
        fut = loop.create_future()
        with self._lock:
            if self._synced_seq >= seq:
                return None
            self._waiters.append(_Waiter(seq, fut, loop))
            if on_loop and self.fsync_avg < LOOP_FSYNC_MAX:
                if not self._loop_pending:
                    self._loop_pending = True
                    loop.call_soon(self._loop_sync)
            else:
                self._cond.notify_all()
        return fut

    def _release_waiters_locked(self) -> None:
        if self._blocked:
            self._durable.notify_all()
        waiters = self._waiters
        if not waiters:
            return
        synced = self._synced_seq
        ready: list[_Waiter] = []
        keep: list[_Waiter] = []
        for w in waiters:
            (ready if w.seq <= synced else keep).append(w)
        self._waiters = keep
        if ready:
            here = _running_loop()
            for w in ready:
                if w.loop is here:
                    _resolve(w.fut)
                else:
                    try:
                        w.loop.call_soon_threadsafe(_resolve, w.fut)
                    except RuntimeError:    # that loop is closed: nobody waits any more
                        pass

    def _note_fsync(self, seconds: float) -> None:
        self.fsyncs += 1
        self.fsync_avg += (seconds - self.fsync_avg) * 0.2

    def _loop_sync(self) -> None:
        """Group commit on the event loop: fsync what its requests appended, release them."""
        self._loop_pending = False
        with self._lock:
            if self._closed or self._fd is None:
                return
            target = self._last_seq
            fd = self._fd
        if target > self._synced_seq:
            t0 = time.perf_counter()
            try:
                os.fsync(fd)
            except OSError:     # rotated & closed concurrently: rotate fsynced it already
                pass
            self._note_fsync(time.perf_counter() - t0)
            self.loop_fsyncs += 1
        with self._lock:
            if target > self._synced_seq:
                self._synced_seq = target
            self._release_waiters_locked()
        for fn in self.on_sync:
            fn(target)

    def _sync_loop(self) -> None:
        while True:
            with self._lock:
                if self.sync == "always":
                    while not self._closed and self._synced_seq >= self._last_seq:
                        self._cond.wait()
                else:
                    self._cond.wait(self.interval)
                if self._closed:
                    return
                target = self._last_seq
                fd = self._fd
            if target > self._synced_seq and fd is not None:
                t0 = time.perf_counter()
                try:
                    os.fsync(fd)
                except OSError:   # rotated & closed concurrently: rotate fsynced it already
                    pass
                self._note_fsync(time.perf_counter() - t0)
            with self._lock:
                if target > self._synced_seq:
                    self._synced_seq = target
                self._release_waiters_locked()
            for fn in self.on_sync:
                fn(target)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._fd is not None:
                if self.sync != "none":
                    os.fsync(self._fd)
                self._synced_seq = self._last_seq
                self._release_waiters_locked()
                os.close(self._fd)
                self._fd = None
            self._closed = True
            self._cond.notify_all()
            self._durable.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
