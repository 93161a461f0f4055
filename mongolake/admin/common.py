"""What the admin commands share: opening a stopped server's store (with its lock),
namespaces, output, progress lines."""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterator, TextIO

from mongolake.config import Config


class AdminError(Exception):
    """A failure to report to the operator (exit status 1)."""


@dataclass
class Store:
    cfg: Config
    storage: Any
    wal_dir: str
    lock: Any
    engine: Any = None


def add_store_args(p: argparse.ArgumentParser, *, ns: str | None = "?") -> None:
    """``STORAGE`` and (``ns="?"``: optional, ``ns="1"``: required) ``DB.COLLECTION``."""
    p.add_argument("storage_url", metavar="STORAGE", help="the store: a path, file://, s3://bucket/prefix")
    if ns == "?":
        p.add_argument("ns", nargs="?", metavar="DB.COLLECTION", help="one collection (default: all)")
    elif ns == "1":
        p.add_argument("ns", metavar="DB.COLLECTION", help="the collection")


def split_ns(ns: str) -> tuple[str, str]:
    db, sep, coll = ns.partition(".")
    if not sep or not db or not coll:
        raise AdminError(f"{ns!r} is not a namespace: use DB.COLLECTION")
    return db, coll


@contextlib.contextmanager
def open_store(cfg: Config, role: str, *, engine: bool = False, create: bool = False,
               **engine_kw: Any) -> Iterator[Store]:
    """Lock the store for ``role`` (refused while a server holds it) and, with
    ``engine``, open an engine on it (the WAL replayed). A local store must exist
    unless ``create``. On exit the engine is closed
    (``flush=engine_kw.pop('flush_on_close', True)``) and the lock released."""
    from mongolake.cli import make_engine, open_store as _open
    from mongolake.config import local_path

    local = local_path(cfg.storage)
    if local is not None and not create and not os.path.isdir(local):
        raise AdminError(f"no store at {local!r} (no such folder)")
    flush_on_close = engine_kw.pop("flush_on_close", True)
    storage, wal_dir, lock = _open(cfg, role=role)
    st = Store(cfg, storage, wal_dir, lock)
    try:
        if engine:
            kw = {"flush_interval": 3600.0, "sync": "none", **engine_kw}
            st.engine = make_engine(cfg, storage, wal_dir, **kw)
            st.engine.open()
        yield st
    finally:
        try:
            if st.engine is not None:
                st.engine.close(flush=flush_on_close)
            else:
                storage.close()
        finally:
            lock.release()


def collections(st: Store, ns: str | None) -> list[Any]:
    """The catalog entries (``CollectionMeta``) of ``ns``, or of every collection."""
    from mongolake.engine.catalog import Catalog

    cat = st.engine.catalog if st.engine is not None else Catalog(st.storage)
    if ns is None:
        return [m for _k, m in sorted(cat.collections.items())]
    db, coll = split_ns(ns)
    meta = cat.get(db, coll)
    if meta is None:
        raise AdminError(f"no collection {ns} in {st.storage.url}")
    return [meta]


def open_table(st: Store, meta: Any) -> Any:
    from mongolake.formats.base import get_format

    return get_format(meta.format).open_table(st.storage, meta.path)


def emit(obj: Any, as_json: bool, text: str, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if as_json:
        out.write(json.dumps(obj, indent=1, default=str) + "\n")
    else:
        out.write(text if text.endswith("\n") else text + "\n")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


class Progress:
    """One progress line on standard error, redrawn at most every ``interval`` s
    (``\\r`` on a terminal; otherwise a new line every 5 s). ``enabled=None``: only
    when standard error is a terminal."""

    def __init__(self, label: str, *, total: int | None = None, unit: str = "docs", enabled: bool | None = None,
                 stream: TextIO | None = None, interval: float = 0.25):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = self.tty if enabled is None else enabled
        self.label, self.total, self.unit = label, total, unit
        self.interval = interval if self.tty else max(interval, 5.0)
        self.t0 = time.monotonic()
        self._last = 0.0
        self.done = 0
        self.fraction: float | None = None
        self._drawn: tuple | None = None

    def update(self, done: int, *, fraction: float | None = None, force: bool = False) -> None:
        self.done, self.fraction = done, fraction
        now = time.monotonic()
        if self.enabled and (force or now - self._last >= self.interval):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        if self._drawn == (self.done, self.fraction) and not self.tty:
            return
        self._drawn = (self.done, self.fraction)
        secs = max(now - self.t0, 1e-6)
        frac = self.fraction if self.fraction is not None else (self.done / self.total if self.total else None)
        pct = f" {100 * min(frac, 1.0):5.1f}%" if frac is not None else ""
        bar = ""
        if frac is not None and self.tty:
            filled = int(24 * min(frac, 1.0))
            bar = " [" + "#" * filled + "." * (24 - filled) + "]"
        line = f"{self.label}:{bar}{pct} {self.done:,} {self.unit} ({self.done / secs:,.0f}/s, {secs:.1f} s)"
        self.stream.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()
