"""The in-memory table of recent writes: the latest version (or a tombstone) per ``_key``.

One active memtable per collection takes writes; a flush freezes it (it becomes
read-only and is written to Parquet) while a new active one takes over. Readers
see active over frozen over files.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Entry:
    doc: bytes | None      # raw BSON; None = deleted
    seq: int


@dataclass
class Memtable:
    entries: dict[bytes, Entry] = field(default_factory=dict)
    nbytes: int = 0
    first_seq: int = 0
    last_seq: int = 0
    frozen: bool = False

    def put(self, key: bytes, doc: bytes | None, seq: int) -> None:
        old = self.entries.get(key)
        if old is not None and old.doc is not None:
            self.nbytes -= len(old.doc)
        else:
            self.nbytes += len(key) + 64
        self.entries[key] = Entry(doc, seq)
        if doc is not None:
            self.nbytes += len(doc)
        if not self.first_seq:
            self.first_seq = seq
        self.last_seq = seq

    def get(self, key: bytes) -> Entry | None:
        return self.entries.get(key)

    def __len__(self) -> int:
        return len(self.entries)
