"""The peer: NX-27017, a MongoDB wire server over SQLite written in Python.

Installed with ``pip install nx-27017`` (it brings ``neosqlite``); its console script
``nx-27017`` is ``nx_27017.nx_27017:main``, which runs in the foreground unless ``-d``
is given.  The benchmark runs it as ``python -m nx_27017.nx_27017`` on 127.0.0.1 with a
file database (SQLite, its default WAL journal mode) in a temporary folder.  When the
package is missing, :meth:`NX27017Server.check_available` raises
:class:`~bench.servers.ServerUnavailable` and the suite carries on without it.
"""
from __future__ import annotations

import importlib.util
import os
import sys

from bench.servers import BenchServer, ServerUnavailable


def nx_version() -> str | None:
    """The installed NX-27017 version, or None."""
    if importlib.util.find_spec("nx_27017") is None:
        return None
    try:
        from importlib.metadata import version
        return version("nx-27017")
    except Exception:  # noqa: BLE001 - metadata missing but the module imports
        return "unknown"


class NX27017Server(BenchServer):
    key = "peer"
    label = "NX-27017"

    def check_available(self) -> None:
        if nx_version() is None:
            raise ServerUnavailable("NX-27017 is not installed (pip install nx-27017); peer figures skipped")

    def command(self) -> list[str]:
        d = self.dir or "."
        return [sys.executable, "-m", "nx_27017.nx_27017", "--db", os.path.join(d, "nx.db"),
                "--host", "127.0.0.1", "-p", str(self.port), "--log-file", os.path.join(d, "nx.log"),
                "--pid-file", os.path.join(d, "nx.pid"), *self.extra_args]

    def describe(self) -> str:
        return f"nx-27017 {nx_version()} (SQLite file, WAL journal)"

    def flush(self, client) -> None:
        try:
            client.admin.command("fsync")
        except Exception:  # noqa: BLE001 - SQLite commits per write; fsync is optional here
            pass
