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


@dataclass(slots=True)
class Change:
    uuid: str                 # collection incarnation
    op: str                   # INSERT / UPDATE / REPLACE / DELETE
    key: bytes                # order-preserving encoding of _id
    doc: bytes | None         # after-image (raw BSON); None for deletes
    before: bytes | None = None        # before-image (kept in memory only)
    desc: dict | None = None           # update description for UPDATE


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
            row: list[Any] = [c.uuid, c.op, c.key, c.doc]
            if c.desc is not None:
                row.append(c.desc)
            rows.append(row)
        body: dict[str, Any] = {"t": self.cluster_time, "w": self.wall_ms, "c": rows}
        if self.txn:
            body["x"] = self.txn
        return bson.encode(body)

    @classmethod
    def decode(cls, payload: bytes, seq: int) -> "ChangeBatch":
        body = bson.decode(payload, CODEC_OPTIONS)
        changes = [Change(r[0], r[1], r[2], r[3], None, r[4] if len(r) > 4 else None) for r in body["c"]]
        return cls(changes, body.get("t"), body.get("w", 0), seq, body.get("x"))
