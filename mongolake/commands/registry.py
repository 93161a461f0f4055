"""The single command registry: name -> Command(handler, help, flags).

Command families register themselves with the :func:`command` decorator; the
dispatcher looks names up here (case-sensitively, with aliases such as
``isMaster``/``ismaster``). Handlers are ``async def handler(ctx) -> dict | bytes``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

Handler = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help: str
    admin_only: bool = False       # must run against the admin database
    needs_auth: bool = True        # refused before authentication when auth is on
    write: bool = False            # counts as a write (opcounters, retryable writes)
    in_txn: bool = True            # allowed inside a multi-document transaction


REGISTRY: dict[str, Command] = {}

# Hooks around every command, registered by cross-cutting modules (authentication,
# fail points) so that the dispatcher stays the one place commands run through.
# before(ctx, cmd) may raise a MongoError, return CLOSE_CONNECTION (drop the
# connection without a reply) or a reply to answer instead, or None to go on;
# after(ctx, cmd, result) may return a changed result (e.g. a writeConcernError).
CLOSE_CONNECTION = object()
BEFORE_HOOKS: list[Callable[[Any, Command], Awaitable[Any]]] = []
AFTER_HOOKS: list[Callable[[Any, Command, Any], Awaitable[Any]]] = []


def command(name: str, *aliases: str, help: str, admin_only: bool = False, needs_auth: bool = True,
            write: bool = False, in_txn: bool = True) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        cmd = Command(name, fn, help, admin_only, needs_auth, write, in_txn)
        for n in (name, *aliases):
            if n in REGISTRY:
                raise RuntimeError(f"command {n} registered twice")
            REGISTRY[n] = cmd
        return fn
    return deco


def load_all() -> dict[str, Command]:
    """Import every command family (each registers its commands)."""
    from . import (admin, aggregate, auth, bulkwrite, crud_read, crud_write, diagnostics,  # noqa: F401
                   handshake, indexes, search_indexes, sessions)
    from . import failpoints  # noqa: F401  (test commands; its hooks run after those imported before)
    return REGISTRY
