"""Runtime state of one open collection: its table, snapshot, column specs, memtables."""
from __future__ import annotations

from dataclasses import dataclass, field

from mongolake.formats.base import Snapshot, Table
from mongolake.query import columns

from .catalog import CollectionMeta
from .memtable import Entry, Memtable

WAL_APP_ID = "mongolake"


@dataclass
class Collection:
    meta: CollectionMeta
    table: Table
    snapshot: Snapshot
    specs: dict = field(default_factory=dict)
    active: Memtable = field(default_factory=Memtable)
    frozen: list[Memtable] = field(default_factory=list)     # oldest first
    dropped: bool = False

    @property
    def uuid(self) -> str:
        return self.meta.uuid

    @property
    def ns(self) -> str:
        return self.meta.ns

    @property
    def flushed_seq(self) -> int:
        return self.snapshot.app_versions.get(WAL_APP_ID, 0)

    def refresh_specs(self) -> None:
        self.specs = columns.specs_from_schema(self.snapshot.schema)

    def mem_get(self, key: bytes) -> Entry | None:
        e = self.active.entries.get(key)
        if e is not None:
            return e
        for mt in reversed(self.frozen):
            e = mt.entries.get(key)
            if e is not None:
                return e
        return None

    def mem_view(self) -> dict[bytes, Entry]:
        """The newest memtable entry per key (a copy: stable while writes go on)."""
        if not self.frozen:
            return dict(self.active.entries)
        out: dict[bytes, Entry] = {}
        for mt in self.frozen:
            out.update(mt.entries)
        out.update(self.active.entries)
        return out

    def mem_bytes(self) -> int:
        return self.active.nbytes + sum(m.nbytes for m in self.frozen)

    def memtables(self) -> list[Memtable]:
        """Oldest first: the frozen ones, then the active one."""
        return [*self.frozen, self.active]


def view_at(memtables: list[Memtable], upto: int) -> dict[bytes, Entry]:
    """Per key, the newest version with ``seq <= upto`` across ``memtables`` (oldest first)."""
    out: dict[bytes, Entry] = {}
    for mt in memtables:
        for k, e in list(mt.entries.items()):
            v = e.at(upto)
            if v is not None:
                out[k] = v
    return out


def get_at(memtables: list[Memtable], key: bytes, upto: int) -> Entry | None:
    for mt in reversed(memtables):
        e = mt.entries.get(key)
        if e is not None:
            v = e.at(upto)
            if v is not None:
                return v
    return None
