"""Change records: the unit of every write, of the WAL and of change streams.

A write command becomes one :class:`ChangeBatch` — an atomic group of
:class:`Change` records with one sequence number and one cluster time (one
visibility point). Transactions reuse the same shape with several collections
in one batch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import bson
from bson.timestamp import Timestamp

from mongolake.query.bsonorder import CODEC_OPTIONS

INSERT, UPDATE, REPLACE, DELETE = "i", "u", "r", "d"
OP_NAMES = {INSERT: "insert", UPDATE: "update", REPLACE: "replace", DELETE: "delete"}
DATA_OPS = frozenset(OP_NAMES)
# catalog events (no document): carried in the WAL and the change log, never in memtables
DDL_OPS = frozenset({"create", "drop", "rename", "dropDatabase", "createIndexes", "dropIndexes", "modify"})


@dataclass(slots=True)
class Change:
    uuid: str                 # collection incarnation ("" for dropDatabase)
    op: str                   # INSERT / UPDATE / REPLACE / DELETE or one of DDL_OPS
    key: bytes                # order-preserving encoding of _id (b"" for DDL)
    doc: bytes | None         # after-image (raw BSON); None for deletes and DDL
    before: bytes | None = None        # before-image (in the WAL only when pre-images are on)
    desc: dict | None = None           # update description (UPDATE), {"_id": v} (DELETE), details (DDL)
    ns: tuple[str, str] | None = None  # (db, coll) at the time of the change
    keep_before: bool = False          # persist the before-image (changeStreamPreAndPostImages)


@dataclass(slots=True)
class ChangeBatch:
    changes: list[Change]
    cluster_time: Timestamp | None = None
    wall_ms: int = 0
    seq: int = 0
    txn: dict | None = None            # {lsid, txnNumber} for transactional batches
    namespaces: dict[str, tuple[str, str]] = field(default_factory=dict)  # uuid -> (db, coll)

    def encode(self) -> bytes:
        rows = []
        for c in self.changes:
            row: list[Any] = [c.uuid, c.op, c.key, c.doc, c.desc, list(c.ns) if c.ns else None]
            if c.before is not None and c.keep_before:
                row.append(c.before)
            rows.append(row)
        body: dict[str, Any] = {"t": self.cluster_time, "w": self.wall_ms, "c": rows}
        if self.txn:
            body["x"] = self.txn
        return bson.encode(body)

    @classmethod
    def decode(cls, payload: bytes, seq: int) -> "ChangeBatch":
        body = bson.decode(payload, CODEC_OPTIONS)
        changes = []
        for r in body["c"]:
            ch = Change(r[0], r[1], r[2], r[3], r[6] if len(r) > 6 else None, r[4] if len(r) > 4 else None,
                        tuple(r[5]) if len(r) > 5 and r[5] else None)
            ch.keep_before = ch.before is not None
            changes.append(ch)
        return cls(changes, body.get("t"), body.get("w", 0), seq, body.get("x"))
