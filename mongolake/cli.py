"""The ``mongolake`` command line."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

OPTIONS = [
    # (flag, dest, type, default, help)
    ("--host", "host", str, "127.0.0.1", "address to listen on"),
    ("--port", "port", int, 27017, "TCP port (0 = any free port)"),
    ("--storage", "storage", str, "./.mongolake", "where tables live: a path, file://, memory:// or s3://bucket/prefix"),
    ("--format", "format", str, "delta", "table format of new collections: delta or iceberg"),
    ("--wal-dir", "wal_dir", str, None, "local folder of the write-ahead log (default: <storage>/_mongolake/wal)"),
    ("--replset", "replset", str, "rs0", "replica-set name reported by hello"),
    ("--advertise", "advertise", str, None, "host:port reported in hello's hosts (default: host:port)"),
    ("--sync", "sync", str, "always", "WAL durability: always (fsync before ack), interval, none"),
    ("--flush-interval", "flush_interval", float, 30.0, "seconds between background flushes"),
    ("--memtable-size", "memtable_mb", int, 64, "MB of memtable before a flush"),
    ("--cache-size", "cache_mb", int, 256, "MB of the row-group / key cache"),
    ("--compression", "compression", str, "zstd", "Parquet codec: zstd, snappy, gzip, lz4, none"),
    ("--log-level", "log_level", str, "info", "debug, info, warning, error"),
]


def _env_default(dest: str, typ: type, default):
    v = os.environ.get("MONGOLAKE_" + dest.upper())
    if v is None:
        return default
    try:
        return typ(v)
    except ValueError:
        raise SystemExit(f"mongolake: bad value for MONGOLAKE_{dest.upper()}: {v!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mongolake", description="MongoDB-wire-compatible server over Delta/Iceberg tables")
    sub = p.add_subparsers(dest="cmd")
    s = sub.add_parser("serve", help="run the server")
    for flag, dest, typ, default, hlp in OPTIONS:
        s.add_argument(flag, dest=dest, type=typ, default=_env_default(dest, typ, default),
                       help=f"{hlp} (env MONGOLAKE_{dest.upper()}; default {default})")
    s.add_argument("--standalone", action="store_true", help="report a standalone server instead of a replica set")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["serve"]
    args = build_parser().parse_args(argv)
    if args.cmd != "serve":
        build_parser().print_help()
        return 2
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from mongolake.commands.context import ServerOptions
    from mongolake.engine import Engine
    from mongolake.server import serve

    if args.format not in ("delta", "iceberg"):
        print(f"mongolake: --format must be delta or iceberg, not {args.format!r}", file=sys.stderr)
        return 2
    try:
        engine = Engine(args.storage, wal_dir=args.wal_dir, table_format=args.format, sync=args.sync,
                        flush_interval=args.flush_interval, memtable_bytes=args.memtable_mb << 20,
                        cache_bytes=args.cache_mb << 20, compression=args.compression)
    except (ValueError, OSError) as e:
        print(f"mongolake: {e}", file=sys.stderr)
        return 2
    opts = ServerOptions(host=args.host, port=args.port, replset=None if args.standalone else args.replset,
                         advertise=args.advertise, argv=["mongolake", *argv],
                         parsed={k: v for k, v in vars(args).items() if v is not None and k != "cmd"})
    try:
        asyncio.run(serve(engine, opts))
    except KeyboardInterrupt:
        pass
    return 0
