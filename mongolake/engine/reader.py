"""Reading documents out of a table snapshot: point lookups and pruned scans.

Files are chosen by their statistics (zone maps), then row groups by Parquet
row-group statistics, then rows by an Arrow filter over shredded columns; the
residual matcher runs on ``_doc`` only where the pushdown was not exact. Keys
shadowed by the memtable are dropped (the memtable holds the newer version).

Hot data lives in the engine's byte-bounded LRU cache: per row group the sorted
``_key`` list (for point lookups by bisection) and the ``_doc`` column.

Position deletes (``DataFile.deletes``, Iceberg merge-on-read): :meth:`FileReader.info`
of such a file hands out a :class:`MaskedParquet`, whose reads drop the deleted rows,
and the cached key lists and ``_doc`` columns of its row groups are masked the same
way (cached under the number of deleted rows: a data file's deleted set only grows
along a table's history, so the count identifies it). Every read path — scans,
counts, point lookups, the flush's key probes, compaction, the columnar paths —
goes through these and never sees a deleted row.
"""
from __future__ import annotations

import bisect
import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import bson
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mongolake import deadline
from mongolake.formats.base import DataFile, Snapshot, Table
from mongolake.query import zonemap
from mongolake.query.filter import referenced_paths
from mongolake.query.pushdown import pushdown
from mongolake.query.bsonorder import CODEC_OPTIONS

from .cache import LRUCache

KEY, DOC, ID = "_key", "_doc", "_id"


@dataclass
class ScanPlan:
    """A parsed filter with everything the read path derives from it."""
    expr: Any                                  # the filter's expression tree (None = match all)
    matcher: Callable[[dict], bool] | None     # None = match all
    specs: dict                                # shredded column specs of the table
    top_columns: frozenset = frozenset()       # top-level columns the filter references

    def __post_init__(self) -> None:
        if self.expr is not None and not self.top_columns:
            self.top_columns = frozenset(p.split(".", 1)[0] for p in referenced_paths(self.expr))

    @property
    def match_all(self) -> bool:
        return self.matcher is None


class SafeParquet:
    """A cached ``ParquetFile`` shared by threads (event loop, flusher, workers):
    pyarrow's reader keeps per-file read state, so reads of one file take turns."""

    __slots__ = ("_pf", "_lock", "metadata", "schema_arrow")

    def __init__(self, pf: pq.ParquetFile):
        self._pf = pf
        self._lock = threading.Lock()
        self.metadata = pf.metadata
        self.schema_arrow = pf.schema_arrow

    def read(self, columns: list[str] | None = None) -> pa.Table:
        with self._lock:
            return self._pf.read(columns=columns)

    def read_row_group(self, i: int, columns: list[str] | None = None) -> pa.Table:
        with self._lock:
            return self._pf.read_row_group(i, columns=columns)


class DeleteMask:
    """The deleted rows of one data file, split by row group."""

    __slots__ = ("count", "_per_rg", "_keep")

    def __init__(self, md: pq.FileMetaData, deletes: tuple[int, ...]):
        self.count = len(deletes)
        sizes = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        pos = np.asarray(deletes, dtype=np.int64)
        self._per_rg: list[np.ndarray] = []
        for i, n in enumerate(sizes):
            lo, hi = np.searchsorted(pos, [offsets[i], offsets[i] + n])
            self._per_rg.append(pos[lo:hi] - offsets[i])
        self._keep: dict[int, pa.Array] = {}

    def keep(self, rg: int, num_rows: int) -> pa.Array | None:
        """Boolean keep-mask of row group ``rg`` (None: nothing deleted there)."""
        dead = self._per_rg[rg]
        if not len(dead):
            return None
        m = self._keep.get(rg)
        if m is None or len(m) != num_rows:
            arr = np.ones(num_rows, dtype=bool)
            arr[dead[dead < num_rows]] = False
            m = self._keep[rg] = pa.array(arr)
        return m


class MaskedParquet:
    """A :class:`SafeParquet` whose reads leave out the deleted rows."""

    __slots__ = ("_pf", "mask", "metadata", "schema_arrow")

    def __init__(self, pf: "SafeParquet", mask: DeleteMask):
        self._pf = pf
        self.mask = mask
        self.metadata = pf.metadata
        self.schema_arrow = pf.schema_arrow

    def read(self, columns: list[str] | None = None) -> pa.Table:
        parts = [self.read_row_group(i, columns) for i in range(self.metadata.num_row_groups)]
        if not parts:
            return self._pf.read(columns=columns)
        return pa.concat_tables(parts) if len(parts) > 1 else parts[0]

    def read_row_group(self, i: int, columns: list[str] | None = None) -> pa.Table:
        t = self._pf.read_row_group(i, columns=columns)
        keep = self.mask.keep(i, t.num_rows)
        return t if keep is None else t.filter(keep)


@dataclass
class FileInfo:
    pf: SafeParquet
    md: pq.FileMetaData
    leaves: frozenset          # leaf column paths in the file
    top: frozenset             # top-level column names in the file
    key_index: int             # column index of _key
    key_ranges: list           # per row group (min _key, max _key) or None
    rg_stats: dict = field(default_factory=dict)    # row group -> zone-map Stats (a file never changes)
    mask: DeleteMask | None = None                  # deleted rows (``pf`` is then a MaskedParquet)

    def rg_key_range(self, rg: int) -> tuple | None:
        return self.key_ranges[rg]

    def file_specs(self, specs: dict) -> dict:
        return {p: s for p, s in specs.items() if p in self.leaves}

    def rowgroup_stats(self, rg: int, exact_cols: set, fspecs: dict) -> Any:
        """Row-group statistics for zone maps, converted once per file and row group
        (a file's exact columns and its columns' kinds never change)."""
        st = self.rg_stats.get(rg)
        if st is None:
            st = self.rg_stats[rg] = zonemap.rowgroup_stats(self.md, rg, exact_cols | {KEY}, fspecs)
        return st


@dataclass
class ScanStats:
    files_total: int = 0
    files_scanned: int = 0
    row_groups_total: int = 0
    row_groups_scanned: int = 0
    rows_read: int = 0
    docs_decoded: int = 0
    pushdown_exact_files: int = 0
    memtable_docs: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _key_range(f: DataFile) -> tuple[bytes | None, bytes | None]:
    return f.min_values.get(KEY), f.max_values.get(KEY)


class FileReader:
    def __init__(self, cache: LRUCache):
        self.cache = cache

    # -- cached pieces -------------------------------------------------------
    def info(self, table: Table, f: DataFile) -> FileInfo:
        """The file's cached reader; with ``f.deletes`` its reads leave the deleted rows out."""
        fi = self.physical(table, f)
        if not f.deletes:
            return fi
        key = ("mask", table.root, f.path, len(f.deletes))
        hit = self.cache.get(key)
        if hit is None:
            mask = DeleteMask(fi.md, f.deletes)
            hit = dataclasses.replace(fi, pf=MaskedParquet(fi.pf, mask), mask=mask)
            self.cache.put(key, hit, 1024 + 9 * len(f.deletes))
        return hit

    def physical(self, table: Table, f: DataFile) -> FileInfo:
        """The file's cached reader over every physical row (deleted ones included)."""
        key = ("pf", table.root, f.path)
        fi = self.cache.get(key)
        if fi is None:
            pf = SafeParquet(table.open_data_file(f))
            md = pf.metadata
            leaves = frozenset(md.schema.column(i).path for i in range(len(md.schema)))
            top = frozenset(pf.schema_arrow.names)
            kidx = _column_index(md, KEY)
            ranges = []
            for rg in range(md.num_row_groups):
                st = md.row_group(rg).column(kidx).statistics
                ranges.append((st.min, st.max) if st is not None and st.has_min_max else None)
            fi = FileInfo(pf, md, leaves, top, kidx, ranges)
            self.cache.put(key, fi, 4096 + md.serialized_size)
        return fi

    def parquet(self, table: Table, f: DataFile) -> SafeParquet:
        return self.info(table, f).pf

    @staticmethod
    def _rg_key(kind: str, table: Table, f: DataFile, rg: int) -> tuple:
        base = (kind, table.root, f.path, rg)
        return base + (len(f.deletes),) if f.deletes else base

    def _rg_keys(self, table: Table, f: DataFile, rg: int) -> list[bytes]:
        """The sorted ``_key`` list of a row group (deleted rows left out)."""
        def load():
            col = self.parquet(table, f).read_row_group(rg, columns=[KEY]).column(0)
            keys = col.to_pylist()
            return keys, sum(len(k) for k in keys) + 40 * len(keys)
        return self.cache.get_or_load(self._rg_key("keys", table, f, rg), load)

    def _rg_docs(self, table: Table, f: DataFile, rg: int) -> pa.ChunkedArray:
        """The ``_doc`` column of a row group, aligned with :meth:`_rg_keys`."""
        def load():
            col = self.parquet(table, f).read_row_group(rg, columns=[DOC]).column(0)
            return col, col.nbytes
        return self.cache.get_or_load(self._rg_key("docs", table, f, rg), load)

    def forget_files(self, table: Table, paths: set[str]) -> None:
        root = table.root
        self.cache.discard_prefix(lambda k: isinstance(k, tuple) and len(k) > 2 and k[1] == root and k[2] in paths)

    # -- point lookups -------------------------------------------------------
    def lookup(self, table: Table, snapshot: Snapshot, key: bytes) -> bytes | None:
        """The stored document with ``_key == key`` in ``snapshot``, or None."""
        for f in reversed(snapshot.files):
            lo, hi = _key_range(f)
            if lo is not None and (key < lo or key > hi):
                continue
            hit = self._lookup_in_file(table, f, key)
            if hit is not None:
                return hit
        return None

    def _lookup_in_file(self, table: Table, f: DataFile, key: bytes) -> bytes | None:
        fi = self.info(table, f)
        for rg, rng in enumerate(fi.key_ranges):
            if rng is not None and (key < rng[0] or key > rng[1]):
                continue
            keys = self._rg_keys(table, f, rg)
            i = bisect.bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                return self._rg_docs(table, f, rg)[i].as_py()
        return None

    def contains_keys(self, table: Table, f: DataFile, keys: list[bytes]) -> set[bytes]:
        """Which of ``keys`` (sorted) are stored in file ``f``."""
        lo, hi = _key_range(f)
        cand = [k for k in keys if lo is None or lo <= k <= hi]
        if not cand:
            return set()
        col = self.parquet(table, f).read(columns=[KEY]).column(0)
        mask = pc.is_in(col, value_set=pa.array(cand, pa.binary()))
        return set(pc.filter(col, mask).to_pylist())

    def key_positions(self, table: Table, f: DataFile, keys: list[bytes]) -> tuple[set[bytes], list[int]]:
        """Which of ``keys`` (sorted) are live in file ``f``, and their physical row
        positions (for position deletes)."""
        lo, hi = _key_range(f)
        cand = [k for k in keys if lo is None or lo <= k <= hi]
        if not cand:
            return set(), []
        col = self.physical(table, f).pf.read(columns=[KEY]).column(0)
        mask = pc.is_in(col, value_set=pa.array(cand, pa.binary()))
        pos = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        if f.deletes and len(pos):
            pos = pos[~np.isin(pos, np.asarray(f.deletes, dtype=np.int64))]
        if not len(pos):
            return set(), []
        return set(col.take(pa.array(pos)).to_pylist()), [int(p) for p in pos]

    # -- scans ---------------------------------------------------------------
    def scan(self, table: Table, snapshot: Snapshot, plan: ScanPlan, shadow: frozenset[bytes] | set[bytes],
             stats: ScanStats | None = None, *, decode: bool = False) -> Iterator[tuple[bytes, dict | None]]:
        """Yield ``(raw_bson, decoded_or_None)`` for every stored document of the
        snapshot that matches and is not shadowed. With ``decode`` every yielded
        document comes decoded."""
        stats = stats or ScanStats()
        shadow_arr = pa.array(list(shadow), pa.binary()) if shadow else None
        for f in snapshot.files:
            stats.files_total += 1
            if plan.expr is not None and not zonemap.might_match(plan.expr, f, plan.specs):
                continue
            stats.files_scanned += 1
            fi = self.info(table, f)
            pf, md = fi.pf, fi.md
            exact_cols = set(f.null_count)
            fspecs = fi.file_specs(plan.specs)
            if plan.expr is not None:
                arrow_expr, exact = pushdown(plan.expr, fspecs, exact_cols)
            else:
                arrow_expr, exact = None, True
            if exact:
                stats.pushdown_exact_files += 1
            needed = [KEY, DOC]
            if arrow_expr is not None:
                needed += sorted(c for c in plan.top_columns & fi.top if c not in needed)
            for rg in range(md.num_row_groups):
                deadline.check()                    # maxTimeMS
                stats.row_groups_total += 1
                if plan.expr is not None and not zonemap.might_match(
                        plan.expr, fi.rowgroup_stats(rg, exact_cols, fspecs), fspecs):
                    continue
                stats.row_groups_scanned += 1
                t = pf.read_row_group(rg, columns=needed)
                stats.rows_read += t.num_rows
                if arrow_expr is not None:
                    t = t.filter(arrow_expr)
                if shadow_arr is not None and t.num_rows:
                    t = t.filter(pc.invert(pc.is_in(t.column(KEY), value_set=shadow_arr)))
                if not t.num_rows:
                    continue
                docs = t.column(DOC).to_pylist()
                if exact or plan.matcher is None:
                    if decode:
                        stats.docs_decoded += len(docs)
                        for raw in docs:
                            yield raw, bson.decode(raw, CODEC_OPTIONS)
                    else:
                        for raw in docs:
                            yield raw, None
                else:
                    m = plan.matcher
                    stats.docs_decoded += len(docs)
                    for i, raw in enumerate(docs):
                        if not i & 1023:
                            deadline.check()
                        d = bson.decode(raw, CODEC_OPTIONS)
                        if m(d):
                            yield raw, d

    def count(self, table: Table, snapshot: Snapshot, plan: ScanPlan, shadow: set[bytes],
              stats: ScanStats | None = None) -> int:
        """Count matching stored documents, decoding only where pushdown is inexact."""
        if plan.expr is None and not shadow:
            return snapshot.num_records
        stats = stats or ScanStats()
        shadow_arr = pa.array(list(shadow), pa.binary()) if shadow else None
        n = 0
        for f in snapshot.files:
            stats.files_total += 1
            if plan.expr is not None and not zonemap.might_match(plan.expr, f, plan.specs):
                continue
            stats.files_scanned += 1
            exact_cols = set(f.null_count)
            fi = self.info(table, f)
            pf, md = fi.pf, fi.md
            fspecs = fi.file_specs(plan.specs)
            arrow_expr, exact = (pushdown(plan.expr, fspecs, exact_cols)
                                 if plan.expr is not None else (None, True))
            if exact and arrow_expr is None and shadow_arr is None:
                n += f.live_records
                continue
            needed = [] if exact else [DOC]
            if shadow_arr is not None or not exact:
                needed.append(KEY)
            if arrow_expr is not None:
                needed += sorted(c for c in plan.top_columns & fi.top if c not in needed)
            if not needed:
                needed = [KEY]
            for rg in range(md.num_row_groups):
                deadline.check()                    # maxTimeMS
                stats.row_groups_total += 1
                if plan.expr is not None and not zonemap.might_match(
                        plan.expr, fi.rowgroup_stats(rg, exact_cols, fspecs), fspecs):
                    continue
                stats.row_groups_scanned += 1
                t = pf.read_row_group(rg, columns=needed)
                if arrow_expr is not None:
                    t = t.filter(arrow_expr)
                if shadow_arr is not None and t.num_rows:
                    t = t.filter(pc.invert(pc.is_in(t.column(KEY), value_set=shadow_arr)))
                if exact or plan.matcher is None:
                    n += t.num_rows
                else:
                    m = plan.matcher
                    for raw in t.column(DOC).to_pylist():
                        if m(bson.decode(raw, CODEC_OPTIONS)):
                            n += 1
        return n


def _column_index(md: pq.FileMetaData, name: str) -> int:
    schema = md.schema
    for i in range(len(schema)):
        if schema.column(i).path == name:
            return i
    raise KeyError(name)
