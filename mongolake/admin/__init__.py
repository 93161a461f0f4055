"""The admin commands: ``inspect``, ``check``, ``compact``, ``vacuum``, ``import``,
``export``, ``user`` (on a stopped server's store; they refuse a store a running server
holds) and ``ping`` (is a server answering?).

``COMMANDS`` maps each name to ``(help, add_arguments)``; :func:`run` dispatches a
parsed command line and turns failures into messages and exit statuses (1
failure, 2 configuration, 3 store in use).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from . import check, inspect, maintain, ping, transfer, users
from .common import AdminError

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "inspect": ("show a store's collections, or one collection's versions, files, schema and statistics",
                inspect.add_args),
    "check": ("verify tables against their logs (files exist, sizes match) and the WAL's checksums",
              check.add_args),
    "compact": ("rewrite small data files into larger ones", maintain.add_compact_args),
    "vacuum": ("delete data files no recent table version references", maintain.add_vacuum_args),
    "import": ("load JSON Lines (Extended JSON) or CSV into a collection", transfer.add_import_args),
    "export": ("write a collection as JSON Lines (canonical Extended JSON: lossless) or CSV",
               transfer.add_export_args),
    "ping": ("check that a MongoLake (or MongoDB) server answers; exit 0 if it does", ping.add_args),
    "user": ("add, list or remove users (SCRAM credentials, built-in roles) of a stopped server's store",
             users.add_args),
}

_RUN: dict[str, Callable[[argparse.Namespace, Any], int]] = {
    "inspect": inspect.run, "check": check.run, "compact": maintain.run_compact, "vacuum": maintain.run_vacuum,
    "import": transfer.run_import, "export": transfer.run_export, "user": users.run,
}


def run(args: argparse.Namespace) -> int:
    from mongolake.cli import EXIT_CONFIG, EXIT_FAILURE, EXIT_LOCKED, load_config
    from mongolake.config import ConfigError
    from mongolake.lock import StoreInUseError
    from mongolake.storage import StorageError

    if args.cmd == "ping":
        return ping.run(args)
    try:
        cfg = load_config(args, admin=True)
        return _RUN[args.cmd](args, cfg)
    except ConfigError as e:
        print(f"mongolake {args.cmd}: configuration error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreInUseError as e:
        print(f"mongolake {args.cmd}: refusing to run: {e}", file=sys.stderr)
        return EXIT_LOCKED
    except (AdminError, StorageError, OSError) as e:
        print(f"mongolake {args.cmd}: {e}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"mongolake {args.cmd}: interrupted", file=sys.stderr)
        return EXIT_FAILURE
