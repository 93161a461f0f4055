"""Server-wide state and the per-command context handed to every handler."""
from __future__ import annotations

import asyncio
import collections
import os
import time
from dataclasses import dataclass, field
from typing import Any

from bson.objectid import ObjectId

from mongolake.engine import Engine
from mongolake.errors import ErrorCode, MongoError

from .concerns import DEFAULT_WRITE_CONCERN, WriteConcern
from .cursors import CursorManager

LOG_LINES_KEPT = 1024


@dataclass
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 27017
    replset: str | None = "rs0"          # None = standalone
    advertise: str | None = None         # host:port in hello's hosts
    argv: list[str] = field(default_factory=list)
    parsed: dict = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.advertise or f"{self.host}:{self.port}"


class ServerState:
    def __init__(self, engine: Engine, options: ServerOptions):
        self.engine = engine
        self.options = options
        self.cursors = CursorManager()
        self.started = time.time()
        self.process_id = ObjectId()
        self.election_id = ObjectId("7fffffff0000000000000001")
        self.opcounters = {k: 0 for k in ("insert", "query", "update", "delete", "getmore", "command")}
        self.connections_total = 0
        self.connections_current = 0
        # lsid id -> (txnNumber, future of the first reply): see crud_write.retryable
        self.retry_results: dict[Any, tuple[int, asyncio.Future]] = {}
        self.sessions: dict[Any, float] = {}                    # lsid id -> last use
        self.log_lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
        self.log_total = 0
        self.startup_warnings: list[str] = []
        self.slow_ms = 100
        self.profile_level = 0
        self.killed_ops: set[int] = set()
        self.parameters: dict[str, Any] = {}
        self.pid = os.getpid()
        self.ops: dict[int, dict] = {}                          # opid -> currentOp entry
        self._opids = 0

    @property
    def is_replset(self) -> bool:
        return self.options.replset is not None

    def next_opid(self) -> int:
        self._opids += 1
        return self._opids


class Ctx:
    """What a command handler sees."""

    __slots__ = ("state", "conn", "db", "body", "name", "request", "opid", "wc")

    def __init__(self, state: ServerState, conn: Any, db: str, body: dict, name: str, request: Any):
        self.state = state
        self.conn = conn
        self.db = db
        self.body = body
        self.name = name
        self.request = request
        self.opid = 0
        self.wc: WriteConcern = DEFAULT_WRITE_CONCERN

    @property
    def engine(self) -> Engine:
        return self.state.engine

    @property
    def arg(self) -> Any:
        return self.body[self.name]

    def coll_name(self) -> str:
        v = self.body[self.name]
        if not isinstance(v, str):
            raise MongoError(ErrorCode.InvalidNamespace,
                             f"collection name has invalid type {type(v).__name__}")
        if not v:
            raise MongoError(ErrorCode.InvalidNamespace, f"Invalid namespace specified '{self.db}.'")
        return v

    def ns(self, coll: str | None = None) -> str:
        return f"{self.db}.{coll if coll is not None else self.coll_name()}"

    async def durable(self, seq: int) -> None:
        """Wait until the write with ``seq`` is durable as the WAL's sync mode defines it
        (``always``: fsynced). With ``j: true`` under the ``interval`` mode, also wait for
        the periodic fsync to cover ``seq``. Waiting even for w:0 keeps a connection's
        writes in order."""
        if not seq:
            return
        fut = self.engine.durable_future(seq, asyncio.get_running_loop())
        if fut is not None:
            await fut
        if self.wc.j:
            wal = self.engine.wal
            if wal.sync == "interval":
                deadline = time.monotonic() + max(5.0, 10 * wal.interval)
                while wal.synced_seq < seq and not self.conn.closed and time.monotonic() < deadline:
                    await asyncio.sleep(min(0.01, wal.interval))

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default)
