"""The time limit of the operation running now (``maxTimeMS``), for long loops to check.

The command layer sets :data:`DEADLINE` (a :class:`contextvars.ContextVar`, so each
connection's task and the worker threads it starts see their own) before a command
runs; scans, cursors and pipelines call :func:`check` every so often and stop with
``MaxTimeMSExpired`` (50) once it has passed. Nothing else is needed from a loop:
no argument threading, no cost when no limit is set (one ``ContextVar.get``).
"""
from __future__ import annotations

import time
from contextvars import ContextVar

from mongolake.errors import ErrorCode, MongoError

#: ``time.monotonic()`` after which the current operation must stop, or None.
DEADLINE: ContextVar[float | None] = ContextVar("mongolake_deadline", default=None)


def expired_error() -> MongoError:
    return MongoError(ErrorCode.MaxTimeMSExpired, "operation exceeded time limit")


def check() -> None:
    """Raise MaxTimeMSExpired (50) when the current operation's time is up."""
    d = DEADLINE.get()
    if d is not None and time.monotonic() > d:
        raise expired_error()


def remaining() -> float | None:
    """Seconds left for the current operation (None: no limit)."""
    d = DEADLINE.get()
    return None if d is None else d - time.monotonic()
