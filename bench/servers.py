"""Benchmark servers as child processes on 127.0.0.1: MongoLake and the floor.

Every server is a :class:`BenchServer`: ``start()`` launches it in a fresh temporary
folder on a free port and waits until it accepts connections, ``stop()`` ends it
(SIGTERM, then SIGKILL after a grace period) and removes the folder.  ``flush(client)``
makes written data durable/visible to the read path in the server's own way (MongoLake:
the ``fsync`` command, which writes the memtables to Parquet).  The peer (NX-27017)
lives in :mod:`bench.peers`.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "bench")


class ServerUnavailable(RuntimeError):
    """The server cannot be installed or started here; the message says why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchServer:
    """One server under test, run as a child process; subclasses give the command line."""

    key = "?"  # the name used by --servers and in the JSON output
    label = "?"  # the column title
    supports: frozenset[str] | None = None  # workload names it can run (None = all)

    def __init__(self, extra_args: list[str] | None = None) -> None:
        self.extra_args = list(extra_args or [])
        self.port = free_port()
        self.dir: str | None = None
        self.proc: subprocess.Popen | None = None
        self._log = None

    # -- to override ------------------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def describe(self) -> str:
        """A one-line description of the configuration (for the report)."""
        return " ".join(self.command()[1:])

    def flush(self, client) -> None:
        """Make inserted data reach the server's read path (no-op by default)."""

    def check_available(self) -> None:
        """Raise ServerUnavailable if the server cannot run here."""

    # -- lifecycle --------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir or tempfile.gettempdir(), "server.log")

    def start(self, timeout: float = 60.0) -> "BenchServer":
        self.check_available()
        self.dir = tempfile.mkdtemp(prefix=f"mlbench-{self.key}-")
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self._log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, cwd=self.dir)
        except OSError as e:
            self.stop()
            raise ServerUnavailable(f"cannot start {self.label}: {e}") from e
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.log_tail()
                self.stop()
                raise ServerUnavailable(f"{self.label} exited with {self.proc.returncode}:\n{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        log = self.log_tail()
        self.stop()
        raise ServerUnavailable(f"{self.label} did not listen on port {self.port} within {timeout:.0f} s:\n{log}")

    def log_tail(self, n: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, grace: float = 60.0) -> None:
        """End the process (SIGTERM, SIGKILL after ``grace`` s) and delete its folder."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "BenchServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class MongoLakeServer(BenchServer):
    """``python -m mongolake serve`` with its default (durable) settings unless told otherwise;
    ``table_format`` adds ``--format`` (new collections are Delta or Iceberg tables)."""

    key = "mongolake"
    label = "MongoLake"

    def __init__(self, extra_args: list[str] | None = None, table_format: str | None = None) -> None:
        super().__init__(extra_args)
        self.table_format = table_format
        if table_format:
            self.label = f"ML {table_format}"

    def command(self) -> list[str]:
        fmt = ["--format", self.table_format] if self.table_format else []
        return [sys.executable, "-m", "mongolake", "serve", "--port", str(self.port),
                "--storage", os.path.join(self.dir or ".", "data"), "--log-level", "warning",
                *fmt, *self.extra_args]

    def describe(self) -> str:
        extra = " ".join(self.extra_args) or "defaults (--sync always)"
        fmt = f"{self.table_format} tables, " if self.table_format else ""
        return f"mongolake serve, file storage, {fmt}{extra}"

    def flush(self, client) -> None:
        client.admin.command("fsync")


class FloorServer(BenchServer):
    """bench/floor_server.py: wire framing + BSON and nothing else."""

    key = "floor"
    label = "floor"
    supports = frozenset({"insert_many", "insert_one_1", "insert_one_16", "find_id", "full_scan"})

    def command(self) -> list[str]:
        return [sys.executable, os.path.join(BENCH_DIR, "floor_server.py"), "--port", str(self.port)]

    def describe(self) -> str:
        return "bench/floor_server.py (asyncio OP_MSG, dict of raw BSON, no storage)"
