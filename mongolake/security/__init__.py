"""Security: SCRAM authentication, users and built-in roles, TLS, resource limits.

* :mod:`.scram` — SCRAM-SHA-1/SHA-256 credentials and the server side of a conversation;
* :mod:`.users` — the credential store (``_mongolake/users.json`` in the store);
* :mod:`.roles` — built-in roles and the privilege every command needs;
* :mod:`.manager` — :class:`Security`, the per-server state (``ServerState.security``);
* :mod:`.limits` — ``maxTimeMS`` budgets, concurrent expensive operations, idle timeout;
* :mod:`.tls` — the server's ``ssl.SSLContext`` and TLS ``allow`` mode.

The command layer sees security only through the dispatcher's hooks
(:func:`before_command`, :func:`after_command`, installed once per process) and the
commands of :mod:`mongolake.commands.auth`. A server without ``state.security``
(unit tests of the command layer) runs with no checks at all.
"""
from __future__ import annotations

import ipaddress
import logging
import socket
from typing import Any

from mongolake.commands.registry import AFTER_HOOKS, BEFORE_HOOKS

from . import roles
from .limits import Limits
from .manager import Security
from .users import UserStore

__all__ = ["Security", "UserStore", "Limits", "setup", "install_hooks", "before_command", "after_command"]

log = logging.getLogger("mongolake.security")
_HELLO = frozenset({"hello", "isMaster", "ismaster"})


def security_of(state: Any) -> Security | None:
    return getattr(state, "security", None)


async def before_command(ctx: Any, cmd: Any) -> Any:
    sec = security_of(ctx.state)
    if sec is None:
        return None
    sec.authorize(ctx, cmd)
    await sec.limits.before(ctx, ctx.name)
    return None


async def after_command(ctx: Any, cmd: Any, result: Any) -> Any:
    sec = security_of(ctx.state)
    if sec is None:
        return result
    if ctx.name in _HELLO and isinstance(result, dict):
        _hello_extras(sec, ctx, result)
    elif ctx.name == "listDatabases" and isinstance(result, dict) and sec.auth:
        _filter_databases(sec, ctx, result)
    elif ctx.name == "serverStatus" and isinstance(result, dict):
        result["security"] = _status(sec)
    sec.limits.after(ctx, ctx.name, result)
    return result


def _hello_extras(sec: Security, ctx: Any, result: dict) -> None:
    mechs = sec.supported_mechs(ctx.body.get("saslSupportedMechs"))
    if mechs is not None:
        result["saslSupportedMechs"] = mechs
    spec = ctx.body.get("speculativeAuthenticate")
    if isinstance(spec, dict) and spec.get("saslStart") and isinstance(spec.get("db"), str):
        from .scram import payload_bytes

        try:
            opts = spec.get("options") if isinstance(spec.get("options"), dict) else {}
            result["speculativeAuthenticate"] = sec.sasl_start(
                ctx.conn, spec["db"], spec.get("mechanism"), payload_bytes(spec.get("payload")),
                skip_empty=bool(opts.get("skipEmptyExchange")))
        except Exception:   # noqa: BLE001 - a failed speculation is simply not answered
            pass


def _status(sec: Security) -> dict:
    """serverStatus' ``security`` section: authentication and limit counters."""
    import asyncio

    lim = sec.limits
    return {"auth": sec.auth, "users": len(sec.users), "authentications": dict(sec.stats),
            "limits": {"maxConcurrentOps": lim.max_concurrent_ops, "idleTimeoutSecs": lim.idle_timeout,
                       **{k: v for k, v in lim.stats.items()}},
            "asyncioTasks": len(asyncio.all_tasks())}


def _filter_databases(sec: Security, ctx: Any, result: dict) -> None:
    user = sec.current_user(ctx.conn)
    priv = sec.privileges(user) if user is not None else roles.Privileges()
    if roles.LIST_DBS in priv.cluster:
        return
    allowed = priv.databases()
    if allowed is None:
        return
    result["databases"] = [d for d in result.get("databases", []) if d.get("name") in allowed]


def install_hooks() -> None:
    """Register the hooks with the dispatcher (once per process)."""
    if before_command not in BEFORE_HOOKS:
        BEFORE_HOOKS.insert(0, before_command)
    if after_command not in AFTER_HOOKS:
        AFTER_HOOKS.append(after_command)


def _binds_beyond_loopback(host: Any) -> bool:
    hosts = [host] if isinstance(host, str) or host is None else list(host)
    for h in hosts:
        if h in (None, "", "0.0.0.0", "::", "*"):
            return True
        try:
            if not ipaddress.ip_address(h).is_loopback:
                return True
        except ValueError:
            try:
                if not ipaddress.ip_address(socket.gethostbyname(h)).is_loopback:
                    return True
            except (OSError, ValueError):
                return True
    return False


def setup(server: Any) -> Security:
    """Build ``server.state.security`` from ``server.config`` (users, root user,
    limits, warnings) and install the hooks. Raises ``ConfigError`` for a bad
    root user configuration."""
    from mongolake.config import ConfigError
    from mongolake.query.saferegex import bounded_engine_available, set_time_limit

    opt = server._opt
    users = UserStore(server.engine.storage)
    root_user, root_pwd = opt("root_username", None), opt("root_password", None)
    if bool(root_user) != bool(root_pwd):
        raise ConfigError("root_username and root_password must be given together")
    if root_user and users.get("admin", root_user) is None:
        users.create("admin", root_user, root_pwd, [{"role": "root", "db": "admin"}])
        log.info("created the root user %s@admin", root_user)
    sec = Security(users, auth=bool(opt("auth", False)),
                   limits=Limits(max_concurrent_ops=opt("max_concurrent_ops", 16),
                                 idle_timeout=opt("idle_timeout", 0.0)))
    set_time_limit(opt("regex_time_limit_ms", 1000) / 1000.0)
    if not bounded_engine_available():
        log.warning("the 'regex' package is missing: complex regular expressions run without a time limit")
    server.state.security = sec
    install_hooks()
    warnings = server.state.startup_warnings
    if not sec.auth and _binds_beyond_loopback(server.options.host):
        msg = (f"Access control is not enabled and the server listens on {server.options.host}: anyone who can "
               "reach this address can read and write all data. Start with --auth (and create users) or bind "
               "to 127.0.0.1.")
        log.warning("%s\n%s\n%s", "*" * 78, "** WARNING: " + msg, "*" * 78)
        warnings.append(msg)
    if sec.auth and len(users) == 0:
        msg = ("Access control is enabled but no user exists: only a client on this machine may create the "
               "first user (MONGOLAKE_ROOT_USERNAME/MONGOLAKE_ROOT_PASSWORD or `mongolake user add` do it too).")
        log.warning("%s", msg)
        warnings.append(msg)
    return sec
