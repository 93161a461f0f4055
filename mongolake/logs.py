"""Structured logging for the server and the admin commands: text or JSON lines.

``setup(level="info", fmt="text", file=None)`` installs one handler on the root
logger. JSON lines follow MongoDB's structured log shape::

    {"t": {"$date": "2026-01-02T03:04:05.678+00:00"}, "s": "I", "c": "COMMAND",
     "ctx": "MainThread", "logger": "mongolake.commands", "msg": "...", "attr": {...}}

``attr`` holds the values passed as ``extra={"attr": {...}}`` (and the exception
text, if any), so a log pipeline can index fields instead of parsing messages.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# logger name prefix -> MongoDB log component
COMPONENTS = (("mongolake.commands", "COMMAND"), ("mongolake.engine", "STORAGE"), ("mongolake.wal", "STORAGE"),
              ("mongolake.storage", "STORAGE"), ("mongolake.formats", "STORAGE"), ("mongolake.admin", "ADMIN"),
              ("mongolake.metrics", "FTDC"), ("wire", "NETWORK"), ("mongolake", "CONTROL"))
_SEVERITY = {"DEBUG": "D1", "INFO": "I", "WARNING": "W", "ERROR": "E", "CRITICAL": "F"}


def component(logger_name: str) -> str:
    for prefix, comp in COMPONENTS:
        if logger_name == prefix or logger_name.startswith(prefix + "."):
            return comp
    return "-"


def _jsonable(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return str(v)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {"t": {"$date": ts}, "s": _SEVERITY.get(record.levelname, record.levelname),
                               "c": component(record.name), "ctx": record.threadName, "logger": record.name,
                               "msg": record.getMessage()}
        attr = getattr(record, "attr", None)
        attr = dict(attr) if isinstance(attr, dict) else {}
        if record.exc_info:
            attr["error"] = self.formatException(record.exc_info)
        if attr:
            out["attr"] = _jsonable(attr)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        attr = getattr(record, "attr", None)
        if isinstance(attr, dict) and attr:
            line += " " + " ".join(f"{k}={_jsonable(v)!r}" if isinstance(v, str) else f"{k}={_jsonable(v)}"
                                   for k, v in attr.items())
        return line


_installed: logging.Handler | None = None


def setup(level: str = "info", fmt: str = "text", file: str | None = None,
          stream: TextIO | None = None) -> logging.Handler:
    """Route every log record at ``level`` or above to ``file`` (appended) or
    ``stream`` (default standard error) as text or JSON lines."""
    global _installed
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
        _installed.close()
    handler: logging.Handler
    handler = logging.FileHandler(file, encoding="utf-8") if file else logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(LEVELS.get(level, logging.INFO))
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _installed = handler
    return handler
