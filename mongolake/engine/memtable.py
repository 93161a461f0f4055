"""The in-memory table of recent writes: the latest version (or a tombstone) per ``_key``.

One active memtable per collection takes writes; a flush freezes it (it becomes
read-only and is written to Parquet) while a new active one takes over. Readers
see active over frozen over files.

While transactions are open, an entry keeps the versions older transactions may
still need (``prev`` chain, newest first): a transaction that started at sequence
``S`` sees, per key, the newest version with ``seq <= S``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Entry:
    doc: bytes | None      # raw BSON; None = deleted
    seq: int
    prev: "Entry | None" = None
    tomb: bytes | None = None      # soft delete: the deleted document (doc is None)
    deleted_ms: int = 0            # soft delete: when (ms since the epoch)

    def at(self, upto: int) -> "Entry | None":
        """The newest version with ``seq <= upto`` in this chain (None: none here)."""
        e = self
        while e is not None and e.seq > upto:
            e = e.prev
        return e


@dataclass
class Memtable:
    entries: dict[bytes, Entry] = field(default_factory=dict)
    nbytes: int = 0
    first_seq: int = 0
    last_seq: int = 0
    frozen: bool = False

    def put(self, key: bytes, doc: bytes | None, seq: int, horizon: int = 0, tomb: bytes | None = None,
            deleted_ms: int = 0) -> None:
        """Store a new version. ``horizon``: the oldest open transaction's start
        sequence (0 = none): versions it may still read are kept, older ones dropped.
        ``tomb``/``deleted_ms``: a soft delete (``doc`` None) keeps the document."""
        entries = self.entries
        old = entries.get(key)
        if old is None:
            self.nbytes += len(key) + 64
        else:
            held = old.doc if old.doc is not None else old.tomb
            if held is not None:
                self.nbytes -= len(held)
        prev = None
        if horizon and old is not None:
            prev = old
            e = old
            while e is not None and e.seq > horizon:    # keep down to the first version <= horizon
                e = e.prev
            if e is not None:
                e.prev = None
        if tomb is None:
            entries[key] = Entry(doc, seq, prev)
        else:
            entries[key] = Entry(None, seq, prev, tomb, deleted_ms)
            self.nbytes += len(tomb)
        if doc is not None:
            self.nbytes += len(doc)
        if not self.first_seq:
            self.first_seq = seq
        self.last_seq = seq

    def get(self, key: bytes) -> Entry | None:
        return self.entries.get(key)

    def __len__(self) -> int:
        return len(self.entries)
