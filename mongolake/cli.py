"""The ``mongolake`` command line: ``serve`` (the default) and the admin commands.

Every option comes from :mod:`mongolake.config` (flag > ``MONGOLAKE_*`` > the
``--config`` TOML file > default). Exit status: 0 success, 1 failure, 2 invalid
configuration or usage (unknown option, bad value, bad URL, unwritable folder,
unreachable S3), 3 the store is in use by another process.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from mongolake import config as _config
from mongolake.config import OPTIONS, ConfigError

log = logging.getLogger("mongolake")

EXIT_FAILURE, EXIT_CONFIG, EXIT_LOCKED = 1, 2, 3


def _add_options(p: argparse.ArgumentParser, *, admin: bool) -> None:
    p.add_argument("--config", default=None, metavar="FILE",
                   help=f"TOML config file (env {_config.CONFIG_ENV}); flags > env > file > defaults")
    groups: dict[str, Any] = {}
    for opt in OPTIONS:
        if admin and (not opt.admin or opt.name == "storage"):
            continue
        g = groups.get(opt.group)
        if g is None:
            g = groups[opt.group] = p.add_argument_group(_config.GROUPS[opt.group])
        hlp = f"{opt.help} [env {opt.env}]".replace("%", "%%")
        if opt.kind == "bool":
            g.add_argument(opt.flag, dest=opt.name, action=argparse.BooleanOptionalAction,
                           default=argparse.SUPPRESS, help=hlp)
        else:
            metavar = "{" + ",".join(opt.choices) + "}" if opt.kind == "choice" else opt.kind.upper()
            g.add_argument(opt.flag, dest=opt.name, default=argparse.SUPPRESS, metavar=metavar, help=hlp)


def build_parser() -> argparse.ArgumentParser:
    from mongolake import admin

    p = argparse.ArgumentParser(prog="mongolake",
                                description="MongoDB-wire-compatible server over Delta Lake / Iceberg tables")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    s = sub.add_parser("serve", help="run the server (the default command)")
    _add_options(s, admin=False)
    for name, (hlp, add_args) in admin.COMMANDS.items():
        a = sub.add_parser(name, help=hlp, description=hlp)
        add_args(a)
        if name != "ping":
            _add_options(a, admin=True)
    return p


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    return {o.name: getattr(args, o.name) for o in OPTIONS if hasattr(args, o.name)}


_SECRET_FLAGS = tuple(o.flag for o in OPTIONS if o.secret)


def _mask_argv(argv: list[str]) -> list[str]:
    """The command line with secret option values replaced by ``***`` (getCmdLineOpts)."""
    out, hide = [], False
    for a in argv:
        if hide:
            out.append("***")
            hide = False
        elif a in _SECRET_FLAGS:
            out.append(a)
            hide = True
        elif a.startswith(tuple(f + "=" for f in _SECRET_FLAGS)):
            out.append(a.split("=", 1)[0] + "=***")
        else:
            out.append(a)
    return out


def _fail(code: int, msg: str) -> int:
    print(f"mongolake: {msg}", file=sys.stderr)
    return code


def load_config(args: argparse.Namespace, *, admin: bool) -> _config.Config:
    """Resolve the configuration of a parsed command line and set up logging."""
    from mongolake import logs

    flags = _flags(args)
    if admin and getattr(args, "storage_url", None) is not None:
        flags["storage"] = args.storage_url
    cfg = _config.load(flags, config_file=args.config)
    try:
        logs.setup(cfg.log_level, cfg.log_format, cfg.log_file)
    except OSError as e:
        raise ConfigError(f"log_file {cfg.log_file!r} is not writable: {e.strerror or e}") from None
    for name in _config.unknown_env():
        log.warning("%s", _config.unknown_env_message(name))
    return cfg


def open_store(cfg: _config.Config, *, role: str):
    """Check the environment, open the storage and take the store lock.
    Returns ``(storage, wal_dir, lock)``."""
    from mongolake.lock import StoreLock
    from mongolake.storage import open_storage

    _config.check_environment(cfg)
    try:
        storage = open_storage(cfg.storage, **cfg.storage_options())
    except ValueError as e:
        raise ConfigError(f"storage {cfg.storage!r}: {e}") from None
    wal_dir = cfg.wal_dir or _config.default_wal_dir(cfg.storage)
    lock = StoreLock(storage, wal_dir, role=role).acquire()
    return storage, wal_dir, lock


def make_engine(cfg: _config.Config, storage: Any, wal_dir: str, **overrides: Any):
    from mongolake.engine import Engine

    kw = dict(wal_dir=wal_dir, table_format=cfg.format, sync=cfg.get("sync", "always"),
              flush_interval=cfg.get("flush_interval", 30.0), memtable_bytes=cfg.get("memtable_size", 64) << 20,
              cache_bytes=cfg.cache_size << 20, compression=cfg.compression, row_group_rows=cfg.row_group_rows,
              file_rows=cfg.file_rows)
    kw.update(overrides)
    return Engine(storage, **kw)


def _serve(args: argparse.Namespace, argv: list[str]) -> int:
    from mongolake.commands.context import ServerOptions
    from mongolake.lock import StoreInUseError
    from mongolake.server import ListenError, serve

    try:
        cfg = load_config(args, admin=False)
        storage, wal_dir, lock = open_store(cfg, role="server")
    except ConfigError as e:
        return _fail(EXIT_CONFIG, f"configuration error: {e}")
    except StoreInUseError as e:
        return _fail(EXIT_LOCKED, str(e))
    try:
        engine = make_engine(cfg, storage, wal_dir)
    except (ValueError, OSError) as e:
        lock.release()
        return _fail(EXIT_CONFIG, f"configuration error: {e}")
    parsed = {k: v for k, v in cfg.as_dict().items() if v is not None}
    opts = ServerOptions(host=cfg.host, port=cfg.port, replset=None if cfg.standalone else cfg.replset,
                         advertise=cfg.advertise, argv=["mongolake", *_mask_argv(argv)], parsed=parsed)
    chosen = {k: v for k, v in sorted(parsed.items()) if cfg.sources.get(k) != "default"}
    log.info("configuration: %s", ", ".join(f"{k}={v}" for k, v in chosen.items()) or "defaults",
             extra={"attr": {"options": chosen, "sources": {k: cfg.sources[k] for k in chosen},
                             "configFile": cfg.config_file}})
    try:
        asyncio.run(serve(engine, opts, config=cfg, lock=lock))
    except KeyboardInterrupt:
        pass
    except ListenError as e:    # e.g. the port is taken
        lock.release()
        return _fail(EXIT_FAILURE, str(e))
    except ConfigError as e:    # found while starting: TLS files, the root user
        lock.release()
        return _fail(EXIT_CONFIG, f"configuration error: {e}")
    except Exception as e:      # noqa: BLE001 - e.g. storage failures while opening
        lock.release()
        log.exception("server failed")
        return _fail(EXIT_FAILURE, f"server failed: {type(e).__name__}: {e}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["serve", *argv]
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        return _serve(args, argv)
    from mongolake import admin

    return admin.run(args)
