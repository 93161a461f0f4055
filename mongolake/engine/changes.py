"""The change log behind change streams.

Every committed :class:`ChangeBatch` (data and catalog events) enters an
in-memory ring in sequence order. Events become *visible* only once durable
(at or below the WAL's synced position), so a watcher never sees a change that
a crash could take back. At flush, a collection's changes are written as the
table's change-data file (Delta CDF ``_change_data/``, readable by delta-rs's
``load_cdf``; for Iceberg a change file recorded in the snapshot), and catalog
events to ``_mongolake/ddl/``; a resume point older than the ring is read back
from those files, so resume tokens survive restarts.
"""
from __future__ import annotations

import asyncio
import bisect
import itertools
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import bson
import pyarrow as pa
from bson.timestamp import Timestamp

from mongolake.query.keystring import render_id
from mongolake.query.bsonorder import CODEC_OPTIONS

from .records import DDL_OPS, DELETE, INSERT, REPLACE, UPDATE, ChangeBatch

if TYPE_CHECKING:
    from .collection import Collection
    from .engine import Engine

DDL_PREFIX = "_mongolake/ddl/"
_CDF_TYPE = {INSERT: "insert", DELETE: "delete"}


@dataclass(slots=True)
class ChangeRecord:
    """One event as change streams see it."""
    seq: int
    index: int                     # position within its batch
    cluster_time: Timestamp
    wall_ms: int
    op: str                        # i/u/r/d or a DDL op name
    db: str
    coll: str
    uuid: str
    doc: bytes | None              # after-image
    before: bytes | None           # before-image when known
    desc: dict | None
    txn: dict | None

    @property
    def document_key(self) -> dict | None:
        if self.op in DDL_OPS:
            return None
        if self.op == DELETE:
            if self.desc and "_id" in self.desc:
                return {"_id": self.desc["_id"]}
            if self.before is not None:
                return {"_id": bson.decode(self.before, CODEC_OPTIONS)["_id"]}
            return None
        return {"_id": bson.decode(self.doc, CODEC_OPTIONS)["_id"]} if self.doc else None


def ts_int(ts: Timestamp | None) -> int:
    return (ts.time << 32 | ts.inc) if ts is not None else 0


def records_of(batch: ChangeBatch) -> list[ChangeRecord]:
    out = []
    for i, ch in enumerate(batch.changes):
        db, coll = ch.ns or batch.namespaces.get(ch.uuid, ("", ""))
        out.append(ChangeRecord(batch.seq, i, batch.cluster_time, batch.wall_ms, ch.op, db, coll, ch.uuid, ch.doc,
                                ch.before, ch.desc, batch.txn))
    return out


class ChangeLog:
    def __init__(self, engine: "Engine", max_changes: int = 200_000):
        self.engine = engine
        self.max_changes = max_changes
        self._ring: deque[ChangeBatch] = deque()
        self._count = 0
        self._lock = threading.Lock()
        self.persisted_seq = 0            # changes at or below are in table change files / ddl files
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []

    # -- feeding -------------------------------------------------------------
    def append(self, batch: ChangeBatch) -> None:
        with self._lock:
            self._ring.append(batch)
            self._count += len(batch.changes)
            self._evict_locked()
        if self.engine.wal.sync != "always":
            self.notify()

    def _evict_locked(self) -> None:
        while self._count > self.max_changes and self._ring and self._ring[0].seq <= self.persisted_seq:
            b = self._ring.popleft()
            self._count -= len(b.changes)

    @property
    def durable_seq(self) -> int:
        wal = self.engine.wal
        return wal.synced_seq if wal.sync == "always" else wal.last_seq

    @property
    def oldest_seq(self) -> int:
        """The lowest sequence number the ring still holds (0 when empty)."""
        with self._lock:
            return self._ring[0].seq if self._ring else 0

    # -- waiting -------------------------------------------------------------
    def notify(self, _seq: int = 0) -> None:
        """Wake waiters (any thread)."""
        with self._lock:
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            loop.call_soon_threadsafe(_resolve, fut)

    async def wait(self, after_seq: int, timeout: float) -> bool:
        """Wait until an event after ``after_seq`` is visible, up to ``timeout`` seconds."""
        if self.durable_seq > after_seq:
            return True
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._lock:
            self._waiters.append((loop, fut))
        if self.durable_seq > after_seq:
            return True
        try:
            await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            return False
        return self.durable_seq > after_seq

    # -- reading -------------------------------------------------------------
    def read(self, after_seq: int, limit: int = 1000) -> list[ChangeRecord]:
        """Visible events with ``seq > after_seq``, oldest first, at most about ``limit``
        (whole batches). Older than the ring: read back from the change files."""
        upto = self.durable_seq
        with self._lock:
            oldest = self._ring[0].seq if self._ring else upto + 1
            if after_seq + 1 >= oldest:
                out: list[ChangeRecord] = []
                for b in self._ring_from(after_seq):
                    if b.seq > upto or len(out) >= limit:
                        break
                    out.extend(records_of(b))
                return out
        return self._read_persisted(after_seq, min(upto, oldest - 1), limit) or self.read(oldest - 1, limit)

    def _ring_from(self, after_seq: int) -> Iterable[ChangeBatch]:
        """The ring's batches with ``seq > after_seq`` in order (lock held). Found by
        bisection, and walked from whichever end is nearer: a watcher that keeps up
        reads near the tail, so a read does not cost the whole ring."""
        ring = self._ring
        start = bisect.bisect_right(ring, after_seq, key=_batch_seq)
        n = len(ring)
        if n - start < start:
            tail = list(itertools.islice(reversed(ring), n - start))
            tail.reverse()
            return tail
        return itertools.islice(ring, start, None)

    def seq_before_time(self, ts: Timestamp) -> int | None:
        """The sequence number after which events have a cluster time ``>= ts``, when the
        ring reaches back that far (its oldest batch is older than ``ts``); else None."""
        with self._lock:
            ring = self._ring
            if not ring or ring[0].cluster_time is None or ring[0].cluster_time >= ts:
                return None
            i = bisect.bisect_left(ring, ts, key=_batch_ts)
            return ring[i - 1].seq

    def _read_persisted(self, after_seq: int, upto_seq: int, limit: int) -> list[ChangeRecord]:
        recs: list[ChangeRecord] = []
        eng = self.engine
        for c in list(eng.collections.values()):
            recs.extend(read_change_files(c, after_seq, upto_seq))
        recs.extend(read_ddl_files(eng, after_seq, upto_seq))
        recs.sort(key=lambda r: (r.seq, r.index))
        if len(recs) > limit:                 # keep whole batches
            last = recs[limit - 1].seq
            recs = [r for r in recs if r.seq <= last]
        return recs

    def batches_for_flush(self, after_seq: int, upto_seq: int) -> list[ChangeBatch]:
        with self._lock:
            return [b for b in self._ring if after_seq < b.seq <= upto_seq]

    def mark_persisted(self, seq: int) -> None:
        with self._lock:
            self.persisted_seq = max(self.persisted_seq, seq)
            self._evict_locked()


def _batch_seq(b: ChangeBatch) -> int:
    return b.seq


def _batch_ts(b: ChangeBatch) -> Timestamp:
    return b.cluster_time or Timestamp(0, 0)


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


# -- change files --------------------------------------------------------------------------

CHANGE_COLUMNS = [("_change_type", pa.string()), ("_ml_seq", pa.int64()), ("_ml_index", pa.int32()),
                  ("_ml_ts", pa.int64()), ("_ml_wall", pa.int64()), ("_ml_op", pa.string()),
                  ("_ml_ns", pa.string()), ("_ml_desc", pa.binary()), ("_ml_txn", pa.binary()),
                  ("_ml_before", pa.binary())]


_FIXED_SIZES = {0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x10: 4, 0x11: 8, 0x12: 8}


def first_id(raw: bytes) -> Any:
    """The ``_id`` of a stored document (always its first field) without decoding the rest."""
    end = raw.index(b"\x00", 5)
    if raw[5:end] == b"_id":
        t = raw[4]
        size = _FIXED_SIZES.get(t)
        if size is None and t == 0x02:
            size = 4 + int.from_bytes(raw[end + 1:end + 5], "little")
        if size is not None:
            elem = raw[4:end + 1 + size]
            return bson.decode((len(elem) + 5).to_bytes(4, "little") + elem + b"\x00", CODEC_OPTIONS)["_id"]
    return bson.decode(raw, CODEC_OPTIONS)["_id"]


def change_table(c: "Collection", batches: Iterable[ChangeBatch], specs: dict) -> pa.Table | None:
    """The change-data rows of collection ``c`` in ``batches``: ``_id``, ``_key`` and
    ``_doc`` (the row's image), Delta's ``_change_type`` and MongoLake's ``_ml_*``
    columns. Shredded columns are left out (readers such as delta-rs's ``load_cdf``
    fill them with nulls; ``_doc`` has the whole document): building them again for
    every change would double the cost of a flush."""
    ids: list[str] = []
    keys: list[bytes] = []
    imgs: list[bytes] = []
    metas: list[list] = []
    for b in batches:
        for i, ch in enumerate(b.changes):
            if ch.uuid != c.uuid or ch.op in DDL_OPS:
                continue
            ns = ".".join(ch.ns or (c.meta.db, c.meta.name))
            desc = bson.encode(ch.desc) if ch.desc else None
            txn = bson.encode(b.txn) if b.txn else None
            meta = [b.seq, i, ts_int(b.cluster_time), b.wall_ms, ch.op, ns, desc, txn, None]
            if ch.op in (UPDATE, REPLACE):
                rows = ([(ch.before, "update_preimage")] if ch.before is not None else []) + \
                       [(ch.doc, "update_postimage")]
            elif ch.op == INSERT:
                rows = [(ch.doc, "insert")]
            elif ch.op == DELETE:
                img = ch.before if ch.before is not None else bson.encode({"_id": (ch.desc or {}).get("_id")})
                rows = [(img, "delete")]
            else:
                continue
            for img, kind in rows:
                ids.append(render_id(first_id(img)))
                keys.append(ch.key)
                imgs.append(img)
                metas.append([kind, *meta])
    if not imgs:
        return None
    arrays = [pa.array(ids, pa.string()), pa.array(keys, pa.binary()), pa.array(imgs, pa.binary())]
    names = ["_id", "_key", "_doc"]
    for j, (name, typ) in enumerate(CHANGE_COLUMNS):
        arrays.append(pa.array([m[j] for m in metas], typ))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def read_change_files(c: "Collection", after_seq: int, upto_seq: int) -> list[ChangeRecord]:
    """Events of collection ``c`` with ``after_seq < seq <= upto_seq`` from its change files."""
    table = c.table
    changes = getattr(table, "changes", None)
    if changes is None:
        return []
    # commits record the WAL boundary they cover: find the first commit past after_seq
    since = -1
    for h in table.history():
        v = int(h.info.get("walSeq", -1)) if h.info else -1
        if 0 <= v <= after_seq:
            since = h.version
            break
    out: list[ChangeRecord] = []
    for _version, f in changes(since):
        t = c.table.open_data_file(f).read(columns=["_doc"] + [n for n, _ in CHANGE_COLUMNS])
        pre: dict[tuple[int, int], bytes] = {}     # update pre-images, attached to their post-image row
        for row in t.to_pylist():
            seq = row["_ml_seq"]
            if not (after_seq < seq <= upto_seq):
                continue
            if row["_change_type"] == "update_preimage":
                pre[(seq, row["_ml_index"])] = row["_doc"]
                continue
            ts = row["_ml_ts"]
            db, _, coll = row["_ml_ns"].partition(".")
            desc = bson.decode(row["_ml_desc"], CODEC_OPTIONS) if row["_ml_desc"] else None
            txn = bson.decode(row["_ml_txn"], CODEC_OPTIONS) if row["_ml_txn"] else None
            op = row["_ml_op"]
            doc = row["_doc"] if op != DELETE else None
            before = row["_doc"] if op == DELETE else pre.pop((seq, row["_ml_index"]), None)
            out.append(ChangeRecord(seq, row["_ml_index"], Timestamp(ts >> 32, ts & 0xFFFFFFFF), row["_ml_wall"], op,
                                    db, coll, c.uuid, doc, before, desc, txn))
    return out


def write_ddl_file(eng: "Engine", batches: list[ChangeBatch], boundary: int) -> None:
    events = []
    for b in batches:
        for i, ch in enumerate(b.changes):
            if ch.op in DDL_OPS:
                events.append({"seq": b.seq, "i": i, "t": b.cluster_time, "w": b.wall_ms, "op": ch.op,
                               "uuid": ch.uuid, "ns": list(ch.ns or ("", "")), "desc": ch.desc or {}})
    if events:
        eng.storage.write(f"{DDL_PREFIX}{boundary:020d}.bson", bson.encode({"events": events}))


def last_ddl_boundary(eng: "Engine") -> int:
    """The highest sequence number recorded by catalog-event files (0 if none)."""
    best = 0
    for info in eng.storage.list(DDL_PREFIX):
        try:
            best = max(best, int(info.path.rsplit("/", 1)[1].split(".")[0]))
        except ValueError:
            continue
    return best


def read_ddl_files(eng: "Engine", after_seq: int, upto_seq: int) -> list[ChangeRecord]:
    out = []
    for info in eng.storage.list(DDL_PREFIX):
        try:
            boundary = int(info.path.rsplit("/", 1)[1].split(".")[0])
        except ValueError:
            continue
        if boundary <= after_seq:
            continue
        for e in bson.decode(eng.storage.read(info.path), CODEC_OPTIONS)["events"]:
            if after_seq < e["seq"] <= upto_seq:
                out.append(ChangeRecord(e["seq"], e["i"], e["t"], e["w"], e["op"], e["ns"][0], e["ns"][1],
                                        e["uuid"], None, None, e["desc"] or None, None))
    return out
