"""Fetching many documents by ``_key`` at once (readers of special indexes).

``engine.lookup_key`` per key walks the snapshot's files and each file's row
groups for every key. For hundreds or thousands of candidates (a ``$text``
search) this module groups the keys: memtable first, then per data file (newest
first) the keys inside its ``_key`` range, per row group a bisection in the
cached key list and one ``take`` from the cached ``_doc`` column. Row groups are
located by bisection over their key ranges when they are ascending and disjoint
(files are written sorted by ``_key``); otherwise each key falls back to
``engine.lookup_key``. Outside transactions only (the latest state).
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..collection import Collection

_LAYOUT: dict[tuple[str, str], tuple[list, list] | None] = {}     # (table root, file) -> (row-group mins, maxes)


def _layout(fi: Any, root: str, path: str) -> tuple[list, list] | None:
    k = (root, path)
    if k in _LAYOUT:
        return _LAYOUT[k]
    rs = fi.key_ranges
    out: tuple[list, list] | None = None
    if rs and all(r is not None for r in rs) and all(rs[i][1] < rs[i + 1][0] for i in range(len(rs) - 1)):
        out = ([r[0] for r in rs], [r[1] for r in rs])
    if len(_LAYOUT) > 4096:
        _LAYOUT.clear()
    _LAYOUT[k] = out
    return out


def fetch_many(engine: Any, c: "Collection", keys: list[bytes]) -> list[bytes | None]:
    """The current raw document of each key (None: no such document), in order."""
    from ..reader import _key_range

    out: dict[bytes, bytes | None] = {}
    pending: list[bytes] = []
    for k in keys:
        e = c.mem_get(k)
        if e is not None:
            out[k] = e.doc
        else:
            pending.append(k)
    if pending:
        reader, table, snap = engine.reader, c.table, c.snapshot
        pending.sort()
        for f in reversed(snap.files):
            if not pending:
                break
            lo, hi = _key_range(f)
            inside = pending if lo is None else pending[bisect_left(pending, lo):bisect_right(pending, hi)]
            if not inside:
                continue
            fi = reader.info(table, f)
            lay = _layout(fi, table.root, f.path)
            found: set[bytes] = set()
            if lay is None:
                for k in inside:
                    raw = reader._lookup_in_file(table, f, k)
                    if raw is not None:
                        out[k] = raw
                        found.add(k)
            else:
                mins, maxes = lay
                by_rg: dict[int, list[bytes]] = {}
                for k in inside:
                    rg = bisect_right(mins, k) - 1
                    if rg >= 0 and k <= maxes[rg]:
                        by_rg.setdefault(rg, []).append(k)
                for rg, ks in by_rg.items():
                    rkeys = reader._rg_keys(table, f, rg)
                    idx, hit = [], []
                    for k in ks:
                        i = bisect_left(rkeys, k)
                        if i < len(rkeys) and rkeys[i] == k:
                            idx.append(i)
                            hit.append(k)
                    if idx:
                        docs = reader._rg_docs(table, f, rg).take(idx).to_pylist()
                        out.update(zip(hit, docs))
                        found.update(hit)
            if found:
                pending = [k for k in pending if k not in found]
    return [out.get(k) for k in keys]
