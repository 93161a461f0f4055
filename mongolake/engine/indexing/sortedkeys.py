"""A sorted multiset of ``(index_key, _key)`` byte pairs, chunked for cheap inserts.

A plain sorted Python list costs O(n) per insert (the memmove); here entries live
in chunks of at most ``2 * LOAD`` items with a parallel list of each chunk's last
item, so an insert or removal moves at most one chunk's worth of pointers and a
lookup is two bisections.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Iterator

LOAD = 512
Item = tuple[bytes, bytes]
ARROW_SORT_MIN = 20_000
_SLICE = 1 << 16


def sort_items(items: list[Item]) -> list[Item]:
    """``sorted(items)`` for index entries. Large lists are sorted by Arrow on the
    concatenated bytes (the same order: an index key is prefix-free, so two keys
    that differ do so within both), which is several times faster than sorting
    tuples and releases the GIL while it sorts, so writers are not stalled."""
    if len(items) < ARROW_SORT_MIN:
        return sorted(items)
    import pyarrow as pa
    import pyarrow.compute as pc
    chunks = [pa.array([a + b for a, b in items[i:i + _SLICE]], pa.binary())
              for i in range(0, len(items), _SLICE)]
    order = pc.sort_indices(pa.chunked_array(chunks)).to_numpy()
    out: list[Item] = []
    for i in range(0, len(order), _SLICE):
        out += [items[j] for j in order[i:i + _SLICE].tolist()]
    return out


class SortedKeys:
    __slots__ = ("_lists", "_maxes", "_len")

    def __init__(self, items: list[Item] | None = None):
        self._lists: list[list[Item]] = []
        self._maxes: list[Item] = []
        self._len = 0
        if items:
            items = sorted(set(items))
            self._lists = [items[i:i + LOAD] for i in range(0, len(items), LOAD)]
            self._maxes = [lst[-1] for lst in self._lists]
            self._len = len(items)

    @classmethod
    def from_sorted(cls, items: list[Item]) -> "SortedKeys":
        """From distinct items already in order (see :func:`sort_items`)."""
        sk = cls()
        sk._lists = [items[i:i + LOAD] for i in range(0, len(items), LOAD)]
        sk._maxes = [lst[-1] for lst in sk._lists]
        sk._len = len(items)
        return sk

    def __len__(self) -> int:
        return self._len

    def add(self, item: Item) -> None:
        """Insert ``item`` (a no-op when it is already present)."""
        if not self._lists:
            self._lists.append([item])
            self._maxes.append(item)
            self._len = 1
            return
        i = bisect_left(self._maxes, item)
        if i == len(self._maxes):
            i -= 1
        lst = self._lists[i]
        j = bisect_left(lst, item)
        if j < len(lst) and lst[j] == item:
            return
        lst.insert(j, item)
        self._maxes[i] = lst[-1]
        self._len += 1
        if len(lst) > 2 * LOAD:
            self._lists[i:i + 1] = [lst[:LOAD], lst[LOAD:]]
            self._maxes[i:i + 1] = [lst[LOAD - 1], lst[-1]]

    def discard(self, item: Item) -> None:
        """Remove ``item`` if present."""
        i = bisect_left(self._maxes, item)
        if i == len(self._maxes):
            return
        lst = self._lists[i]
        j = bisect_left(lst, item)
        if j == len(lst) or lst[j] != item:
            return
        del lst[j]
        self._len -= 1
        if not lst:
            del self._lists[i]
            del self._maxes[i]
        else:
            self._maxes[i] = lst[-1]

    def _pos(self, item: tuple, right: bool) -> tuple[int, int]:
        """The (chunk, offset) position where ``item`` would be inserted."""
        bis = bisect_right if right else bisect_left
        i = bis(self._maxes, item)
        if i == len(self._maxes):
            return i, 0
        return i, bis(self._lists[i], item)

    def irange(self, lo: bytes | None, hi: bytes | None, reverse: bool = False,
               after: Item | None = None) -> Iterator[Item]:
        """Entries whose index key ``k`` satisfies ``lo <= k < hi`` (None: open), in
        order (``reverse``: descending). ``after``: resume strictly after this entry
        in the walk's direction (an entry met before; the set may have changed since)."""
        start = (0, 0) if lo is None else self._pos((lo,), False)
        end = (len(self._lists), 0) if hi is None else self._pos((hi,), False)
        if after is not None:
            if reverse:
                end = min(end, self._pos(after, False))
            else:
                start = max(start, self._pos(after, True))
        if start >= end:
            return
        if not reverse:
            i, j = start
            while (i, j) < end:
                lst = self._lists[i]
                stop = end[1] if i == end[0] else len(lst)
                yield from lst[j:stop]
                i, j = i + 1, 0
        else:
            i, j = end
            if j == 0:
                i, j = i - 1, len(self._lists[i - 1]) if i > 0 else 0
            while i >= 0 and (i, j) > start:
                lst = self._lists[i]
                lo_j = start[1] if i == start[0] else 0
                yield from reversed(lst[lo_j:j])
                i -= 1
                j = len(self._lists[i]) if i >= 0 else 0

    def __iter__(self) -> Iterator[Item]:
        for lst in self._lists:
            yield from lst
