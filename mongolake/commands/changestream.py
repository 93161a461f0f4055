"""Change streams: ``aggregate`` pipelines whose first stage is ``$changeStream``.

A stream watches one collection (``aggregate: <coll>``), a database
(``aggregate: 1``) or the whole cluster (``admin``, ``allChangesForCluster: true``).
Its cursor reads the engine's change log (:mod:`mongolake.engine.changes`), which
only exposes durable events, in commit order; each :class:`ChangeRecord` becomes
an event document (:mod:`.changestream_events`), then runs through the user's
stages after ``$changeStream`` ($match, $project, $addFields, $set, $unset,
$replaceRoot, $replaceWith, $redact). The first batch answers at once; ``getMore``
waits up to ``maxTimeMS`` (default 1 s) for an event and otherwise answers an empty
batch. Every reply carries ``postBatchResumeToken``.

Resuming: ``resumeAfter``/``startAfter`` take a token, ``startAtOperationTime`` a
cluster time. Sequence numbers survive restarts and the change log reads events back
from the tables' change-data files when its in-memory ring no longer reaches, so a
token from before a restart resumes without gaps or duplicates. A resume point older
than the retained history (``MONGOLAKE_CHANGE_RETENTION_SECONDS``, default 7 days,
the default vacuum retention — or files already cleaned up) fails with
ChangeStreamHistoryLost (286).

A collection stream ends with ``invalidate`` after a drop or rename of its collection
(or a dropDatabase); a database stream after dropDatabase. The cursor manager's
drop/rename invalidation spares change-stream cursors, so the stream can still
deliver ``drop`` and ``invalidate``.
"""
from __future__ import annotations

import os
import time
from collections import deque
from typing import Any

import bson
from bson.timestamp import Timestamp

from mongolake.engine.changes import ChangeRecord, ts_int
from mongolake.errors import RESUMABLE_CHANGE_STREAM_CODES, ErrorCode, MongoError
from mongolake.formats.base import SnapshotNotFoundError
from mongolake.query import keystring
from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.storage.base import TransientStorageError

from . import bsonreply
from .context import Ctx
from .cursors import MAX_BATCH_BYTES
from .changestream_events import (BASIC_DDL, EXPANDED_DDL, EventOptions, InvalidResumeToken, ResumePoint, Scope,
                                  data_event, ddl_event, decode_token, invalidate_event)

RETENTION_ENV = "MONGOLAKE_CHANGE_RETENTION_SECONDS"
DEFAULT_RETENTION = 7 * 86400.0
DEFAULT_AWAIT_MS = 1000
RESUMABLE_LABEL = "ResumableChangeStreamError"
CHANGE_STREAM_STAGES = frozenset({"$match", "$project", "$addFields", "$set", "$unset", "$replaceRoot",
                                  "$replaceWith", "$redact"})
_SPEC_FIELDS = {"allChangesForCluster", "fullDocument", "fullDocumentBeforeChange", "resumeAfter", "startAfter",
                "startAtOperationTime", "showExpandedEvents", "showSystemEvents", "showRawUpdateDescription",
                "showMigrationEvents", "allowToRunOnConfigDB", "allowToRunOnSystemNS", "version",
                "matchCollectionUUIDForUpdateLookup"}
_FULL_DOCUMENT = ("default", "updateLookup", "whenAvailable", "required")
_BEFORE_CHANGE = ("off", "whenAvailable", "required")
_READ_LIMIT = 1000
_BATCH_BYTES = MAX_BATCH_BYTES - 64 * 1024
_HISTORY_ERRORS = (SnapshotNotFoundError, FileNotFoundError)


def retention_seconds() -> float:
    try:
        return float(os.environ.get(RETENTION_ENV, DEFAULT_RETENTION))
    except ValueError:
        return DEFAULT_RETENTION


def is_change_stream(pipeline: Any) -> bool:
    return (isinstance(pipeline, list) and bool(pipeline) and isinstance(pipeline[0], dict)
            and len(pipeline[0]) == 1 and "$changeStream" in pipeline[0])


# -- options ---------------------------------------------------------------------------

def _enum(spec: dict, name: str, allowed: tuple[str, ...], default: str) -> str:
    v = spec.get(name, default)
    if not isinstance(v, str):
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field '$changeStream.{name}' is the wrong type "
                         f"'{type(v).__name__}', expected type 'string'")
    if v not in allowed:
        raise MongoError(ErrorCode.BadValue, f"Enumeration value '{v}' for field '$changeStream.{name}' is not a "
                         "valid value.")
    return v


def _flag(spec: dict, name: str) -> bool:
    v = spec.get(name, False)
    if not isinstance(v, bool):
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field '$changeStream.{name}' is the wrong type "
                         f"'{type(v).__name__}', expected type 'bool'")
    return v


def parse_scope(ctx: Ctx, spec: dict) -> Scope:
    if not ctx.state.is_replset:
        raise MongoError(40573, "The $changeStream stage is only supported on replica sets")
    target = ctx.arg
    everything = _flag(spec, "allChangesForCluster")
    whole_db = target == 1 and not isinstance(target, bool)
    if everything and not (ctx.db == "admin" and whole_db):
        raise MongoError(ErrorCode.InvalidOptions, "A $changeStream with 'allChangesForCluster:true' may only be "
                         f"opened on the 'admin' database, and with no collection name; found {ctx.db}.{target}")
    if ctx.db == "admin" and not everything or ctx.db == "local" or (
            ctx.db == "config" and not _flag(spec, "allowToRunOnConfigDB")):
        raise MongoError(ErrorCode.InvalidNamespace, f"$changeStream may not be opened on the internal {ctx.db} "
                         "database")
    if everything:
        return Scope("cluster")
    if whole_db:
        return Scope("database", ctx.db)
    if not isinstance(target, str) or not target:
        raise MongoError(ErrorCode.InvalidNamespace, f"Invalid namespace specified '{ctx.db}.{target}'")
    if target.startswith("system.") and not _flag(spec, "allowToRunOnSystemNS"):
        raise MongoError(ErrorCode.InvalidNamespace, f"$changeStream may not be opened on the internal "
                         f"{ctx.db}.{target} collection")
    return Scope("collection", ctx.db, target)


def parse_user_stages(stages: list) -> Any:
    from mongolake.query.aggregate import parse_pipeline
    for st in stages:
        name = next(iter(st), None) if isinstance(st, dict) and len(st) == 1 else None
        if name == "$changeStream":
            raise MongoError(40602, "$changeStream is only valid as the first stage in a pipeline")
        if name is not None and name not in CHANGE_STREAM_STAGES:
            raise MongoError(ErrorCode.IllegalOperation, f"{name} is not permitted in a $changeStream pipeline")
    return parse_pipeline(stages) if stages else None


# -- the cursor --------------------------------------------------------------------------

class ChangeStreamCursor:
    """Iterates the change log for one stream; ``get_more`` is what ``getMore`` awaits."""

    def __init__(self, ctx: Ctx, scope: Scope, opts: EventOptions, pipeline: Any, start: ResumePoint,
                 min_ts: Timestamp | None = None):
        self.engine = ctx.engine
        self.scope = scope
        self.opts = opts
        self.pipeline = pipeline
        self.pctx = None
        if pipeline is not None:
            from .aggregate import EngineContext
            self.pctx = EngineContext(ctx, ctx.body.get("let"), ctx.body.get("collation"))
        self.pos = start                       # resume point: everything up to it is consumed
        self.min_ts = min_ts                   # startAtOperationTime: skip earlier events
        self.ready: deque[tuple[bytes, ResumePoint]] = deque()   # built events not yet returned
        self.last_returned: ResumePoint | None = None
        self.exhausted = False                 # after invalidate
        self.closed = False

    # -- resume tokens ---------------------------------------------------------------------
    @property
    def post_batch_token(self) -> dict:
        if self.ready and self.last_returned is not None:
            return self.last_returned.token()
        return self.pos.token()

    def queue_invalidate(self, rec: ChangeRecord) -> None:
        self.ready.append((self._encode(invalidate_event(rec)), ResumePoint.of(rec, from_invalidate=True)))
        self.exhausted = True

    # -- building events ------------------------------------------------------------------
    def _images_enabled(self, rec: ChangeRecord) -> bool:
        c = self.engine.collections.get(rec.uuid)
        pp = c.meta.options.get("changeStreamPreAndPostImages") if c is not None else None
        return isinstance(pp, dict) and bool(pp.get("enabled"))

    def _lookup(self, rec: ChangeRecord, _id: Any) -> bytes | None:
        c = self.engine.get_collection(rec.db, rec.coll)
        return self.engine.lookup_key(c, keystring.encode_key(_id)) if c is not None else None

    def _encode(self, ev: dict) -> bytes:
        return bson.encode(ev, codec_options=CODEC_OPTIONS)

    def _process(self, rec: ChangeRecord) -> None:
        """Turn one record into zero, one or two (event + invalidate) ready events."""
        point = ResumePoint.of(rec)
        self.pos = point
        if self.min_ts is not None and rec.cluster_time < self.min_ts:
            return
        if not self.scope.sees(rec) and not self.scope.invalidated_by(rec):
            return
        if rec.op in DATA_OPS_SET:
            ev = data_event(rec, self.opts, self._images_enabled(rec) if self._wants_images else False,
                            self._lookup)
        elif rec.op in BASIC_DDL or rec.op in EXPANDED_DDL:
            ev = ddl_event(rec, self.opts) if self.scope.sees(rec) and not (
                self.scope.kind == "collection" and rec.op == "dropDatabase") else None
        else:
            ev = None
        if ev is not None:
            for out in self._apply_pipeline(ev):
                self.ready.append((self._encode(out), point))
        if self.scope.invalidated_by(rec):
            self.queue_invalidate(rec)

    @property
    def _wants_images(self) -> bool:
        return self.opts.full_document in ("whenAvailable", "required") or self.opts.before_change != "off"

    def _apply_pipeline(self, ev: dict) -> list[dict]:
        if self.pipeline is None:
            return [ev]
        outs = list(self.pipeline.run(iter([ev]), self.pctx))
        for out in outs:
            if out.get("_id") != ev["_id"]:
                raise MongoError(ErrorCode.ChangeStreamFatalError,
                                 "Encountered an event whose _id field, which contains the resume token, was "
                                 "modified by the pipeline. Modifying the _id field of an event makes it "
                                 "impossible to resume the stream from that point. Only transformations that "
                                 "retain the unmodified _id field are allowed.")
        return outs

    # -- reading ----------------------------------------------------------------------------
    def _read(self, limit: int) -> tuple[list[ChangeRecord], list[ChangeRecord]]:
        """(what the change log returned, the part after the position). The log answers
        whole batches, so a position inside a batch re-reads that batch's head."""
        log = self.engine.changelog
        try:
            # a position inside a batch (an event token) still has that batch's later events
            after = self.pos.seq if self.pos.is_high_water_mark else self.pos.seq - 1
            recs = log.read(after, limit)
        except _HISTORY_ERRORS as e:
            raise history_lost(f"the change history it needs is no longer available ({e})")
        except TransientStorageError as e:
            raise MongoError(ErrorCode.HostUnreachable, f"reading change history failed: {e}",
                             labels=[RESUMABLE_LABEL])
        key = self.pos.key
        return recs, [r for r in recs if (r.seq, r.index) > key]

    def fill(self, max_docs: int) -> list[bytes]:
        """Events available now (no waiting): at most ``max_docs`` (0: no count limit)."""
        out: list[bytes] = []
        size = 0
        want = max_docs if max_docs > 0 else 1 << 30
        while True:
            while self.ready and len(out) < want:
                raw, point = self.ready[0]
                if out and size + len(raw) > _BATCH_BYTES:
                    return out
                self.ready.popleft()
                out.append(raw)
                size += len(raw) + 8
                self.last_returned = point
            if len(out) >= want or self.exhausted or self.closed:
                return out
            upto = self.engine.changelog.durable_seq
            raw, recs = self._read(max(min(want - len(out), 5000), _READ_LIMIT))
            if raw and not recs:
                # only the consumed head of the position's batch: move past the batch
                self.pos = ResumePoint.high_water_mark(raw[-1].seq, max(self.pos.ts, ts_int(raw[-1].cluster_time)))
                continue
            if not recs:
                if upto > self.pos.seq or (upto == self.pos.seq and not self.pos.is_high_water_mark):
                    # caught up: nothing visible up to ``upto`` is left for this stream
                    ts = self.pos.ts
                    if upto >= self.engine.wal.last_seq:
                        ts = max(ts, ts_int(self.engine.cluster_time))
                    self.pos = ResumePoint.high_water_mark(upto, ts)
                return out
            for r in recs:
                self._process(r)
                if self.exhausted:
                    break

    async def get_more(self, batch_size: int, max_time_ms: Any) -> tuple[list[bytes], dict]:
        try:
            wait_ms = DEFAULT_AWAIT_MS if not max_time_ms else int(max_time_ms)
            deadline = time.monotonic() + wait_ms / 1000.0
            while True:
                batch = self.fill(batch_size)
                left = deadline - time.monotonic()
                if batch or self.exhausted or self.closed or left <= 0:
                    return batch, {"postBatchResumeToken": self.post_batch_token}
                await self.engine.changelog.wait(self.pos.seq, left)
        except MongoError as e:
            if e.code in RESUMABLE_CHANGE_STREAM_CODES and RESUMABLE_LABEL not in e.labels:
                e.labels.append(RESUMABLE_LABEL)
            raise

    @property
    def finished(self) -> bool:
        """True once the invalidate event has been returned: the cursor closes."""
        return self.exhausted and not self.ready

    def close(self) -> None:
        """Called by the cursor manager when it kills the cursor (a waiting getMore then
        answers at once)."""
        self.closed = True

    # the cursor protocol of plain cursors (never used: getMore calls get_more)
    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        raise StopIteration


DATA_OPS_SET = frozenset({"i", "u", "r", "d"})


def history_lost(detail: str) -> MongoError:
    return MongoError(ErrorCode.ChangeStreamHistoryLost, "Resume of change stream was not possible, as the resume "
                      f"point may no longer be in the oplog: {detail}")


# -- opening ---------------------------------------------------------------------------------

def _start_point(ctx: Ctx, spec: dict) -> tuple[ResumePoint, Timestamp | None, bool]:
    """Where the stream starts: (resume point, startAtOperationTime filter, startAfter?)."""
    eng = ctx.engine
    if "resumeAfter" in spec and "startAfter" in spec:
        raise MongoError(50865, "Do not specify both 'resumeAfter' and 'startAfter' in a $changeStream stage")
    field = field_of(spec)
    if field is not None and "startAtOperationTime" in spec:
        raise MongoError(40674, "Only one type of resume option is allowed, but multiple were found")
    if field is not None:
        point = decode_token(spec[field], field)
        if point.from_invalidate and field == "resumeAfter":
            raise MongoError(InvalidResumeToken, "Attempting to resume a change stream using 'resumeAfter' is not "
                             "allowed from an invalidate notification")
        return point, None, field == "startAfter"
    if "startAtOperationTime" in spec:
        ts = spec["startAtOperationTime"]
        if not isinstance(ts, Timestamp):
            raise MongoError(ErrorCode.TypeMismatch, "BSON field '$changeStream.startAtOperationTime' is the wrong "
                             f"type '{type(ts).__name__}', expected type 'timestamp'")
        if ts.time < time.time() - retention_seconds():
            raise history_lost("startAtOperationTime is older than the retained change history "
                               f"({RETENTION_ENV}={retention_seconds():g})")
        seq = eng.changelog.seq_before_time(ts)
        if seq is None:
            seq = eng.changelog.durable_seq if ts > eng.cluster_time else 0
        return ResumePoint.high_water_mark(seq, ts_int(ts)), ts, False
    seq = eng.changelog.durable_seq
    return ResumePoint.high_water_mark(seq, ts_int(eng.cluster_time)), None, False


def field_of(spec: dict) -> str | None:
    return "resumeAfter" if "resumeAfter" in spec else "startAfter" if "startAfter" in spec else None


def _check_retained(cur: ChangeStreamCursor) -> None:
    """ChangeStreamHistoryLost when the batches after the resume point's batch are older
    than the retention period, or can no longer be read (the token's own batch is read
    too: its later events and, when its change file is gone, the loss). A token whose
    stream saw no later batch stays valid however old it is: nothing after it is missing."""
    point = cur.pos
    if not point.is_high_water_mark:
        cur._read(1)
    cur.pos = ResumePoint.high_water_mark(point.seq, point.ts)
    try:
        nxt = cur._read(1)[1]
    finally:
        cur.pos = point
    horizon = time.time() - retention_seconds()
    if nxt and nxt[0].cluster_time.time < horizon:
        raise history_lost("the events after the resume token are older than the retained change history "
                           f"({RETENTION_ENV}={retention_seconds():g})")


def _record_at(cur: ChangeStreamCursor, point: ResumePoint) -> ChangeRecord | None:
    """The event a (non high-water-mark) token points at, if still readable."""
    if point.is_high_water_mark or point.seq < 1:
        return None
    try:
        recs = cur.engine.changelog.read(point.seq - 1, 1)
    except _HISTORY_ERRORS as e:
        raise history_lost(str(e))
    return next((r for r in recs if r.seq == point.seq and r.index == point.index), None)


async def open_change_stream(ctx: Ctx) -> bytes:
    """The ``aggregate`` command for a pipeline starting with ``$changeStream``."""
    body = ctx.body
    pipeline = body["pipeline"]
    spec = pipeline[0]["$changeStream"]
    if not isinstance(spec, dict):
        raise MongoError(50808, "$changeStream stage expects a document as argument")
    for k in spec:
        if k not in _SPEC_FIELDS:
            raise MongoError(ErrorCode.UnrecognizedCommandField, f"BSON field '$changeStream.{k}' is an unknown "
                             "field.")
    if body.get("explain"):
        raise MongoError(ErrorCode.NotImplemented, "explain of a $changeStream pipeline is not supported by "
                         "MongoLake")
    cursor_opt = body.get("cursor")
    if not isinstance(cursor_opt, dict):
        raise MongoError(ErrorCode.FailedToParse,
                         "The 'cursor' option is required, except for aggregate with the explain argument")
    batch_size = cursor_opt.get("batchSize")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, float))
                                   or batch_size < 0):
        raise MongoError(ErrorCode.BadValue, f"batchSize must be a non-negative number, not {batch_size!r}")
    scope = parse_scope(ctx, spec)
    opts = EventOptions(_enum(spec, "fullDocument", _FULL_DOCUMENT, "default"),
                        _enum(spec, "fullDocumentBeforeChange", _BEFORE_CHANGE, "off"),
                        _flag(spec, "showExpandedEvents"))
    user = parse_user_stages(pipeline[1:])
    opts.decode = user is not None
    start, min_ts, _start_after = _start_point(ctx, spec)
    cur = ChangeStreamCursor(ctx, scope, opts, user, start, min_ts)
    if field_of(spec) is not None:
        _check_retained(cur)
    at = _record_at(cur, start)
    if at is not None and not start.from_invalidate and scope.invalidated_by(at):
        cur.queue_invalidate(at)          # resuming right after the event that ended the stream
    n = 101 if batch_size is None else int(batch_size)
    from .sessions import lsid_key
    try:
        batch = cur.fill(n) if n else []
    except MongoError as e:
        if e.code in RESUMABLE_CHANGE_STREAM_CODES and RESUMABLE_LABEL not in e.labels:
            e.labels.append(RESUMABLE_LABEL)
        raise
    ns = scope.ns()
    extra = {"postBatchResumeToken": cur.post_batch_token}
    if cur.exhausted and not cur.ready:
        return bsonreply.cursor_reply(batch, 0, ns, True, extra)
    registered = ctx.state.cursors.register(ns, cur, ctx.conn.id, lsid=lsid_key(body.get("lsid")),
                                            kind="changeStream")
    return bsonreply.cursor_reply(batch, registered.id, ns, True, extra)
