"""Start a real MongoLake server process for tests (TCP on 127.0.0.1, a free port)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Iterator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, storage: str, *, port: int | None = None, extra: list[str] | None = None,
                 env: dict | None = None, log_path: str | None = None):
        self.storage = storage
        self.port = port or free_port()
        self.extra = list(extra or [])
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log_path = log_path or os.path.join(
            storage if "://" not in storage else "/tmp", f"server-{self.port}.log")

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 30.0) -> "ServerProcess":
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        if self.env:
            env.update(self.env)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mongolake", "serve", "--port", str(self.port), "--storage", self.storage,
             *self.extra], stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start listening:\n{self.log()}")

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM: clean shutdown (flush)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
            self._log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@contextmanager
def running_server(storage: str, **kw) -> Iterator[ServerProcess]:
    srv = ServerProcess(storage, **kw).start()
    try:
        yield srv
    finally:
        if srv.alive():
            srv.stop()
