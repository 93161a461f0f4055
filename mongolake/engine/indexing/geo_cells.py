"""The cell structure behind a 2dsphere index: points sorted by a Z-order
(Morton) code over a longitude/latitude grid, i.e. an implicit quad-tree.

**Choice.** Longitude and latitude are each quantised to ``BITS`` (26) bits and
their bits interleaved into one 52-bit code. Every quad-tree cell at level
``L`` (a ``360/2^L`` × ``180/2^L`` degree rectangle) is then one contiguous
range of codes, so with the codes in a sorted numpy array a cell's points are
found with two binary searches and no tree is stored at all. This is simpler
than S2's cube-face Hilbert cells and accurate enough here because every
candidate's distance is computed exactly (haversine) before it is reported;
cells only bound distances from below (exact point-to-rectangle distance on
the sphere).

Recent additions go to a small unsorted tail (scanned with numpy on every
query) and are merged when it grows; removals mark entries dead and the
arrays are compacted when a quarter of them are.

Nearest-neighbour search is the classic incremental best-first traversal
(Hjaltason & Samet): a heap holds cells keyed by their lower-bound distance
and points keyed by their exact distance; a point popped from the heap is
closer than anything still unexplored, so results stream out nearest first
and the search stops as soon as the caller has enough.
"""
from __future__ import annotations

import heapq
import math
from typing import Iterator

import numpy as np

from mongolake.query.geo.sphere import haversine, haversine_np

BITS = 26
SIDE = 1 << BITS
LEAF = 48                # cells with at most this many points are scanned exactly
TAIL_MAX = 8192


def _spread(v: np.ndarray) -> np.ndarray:
    """Insert a zero bit between the bits of 32-bit integers (uint64)."""
    v = v.astype(np.uint64) & np.uint64(0xFFFFFFFF)
    v = (v | (v << np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x3333333333333333)
    v = (v | (v << np.uint64(1))) & np.uint64(0x5555555555555555)
    return v


def _spread1(v: int) -> int:
    out = 0
    for i in range(BITS):
        out |= ((v >> i) & 1) << (2 * i)
    return out


def morton(lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    x = np.clip(((lng + 180.0) / 360.0 * SIDE).astype(np.int64), 0, SIDE - 1)
    y = np.clip(((lat + 90.0) / 180.0 * SIDE).astype(np.int64), 0, SIDE - 1)
    return _spread(x) | (_spread(y) << np.uint64(1))


def rect_distance(qlng: float, qlat: float, lng0: float, lng1: float, lat0: float, lat1: float) -> float:
    """Smallest great-circle distance (radians) from a point to a lng/lat rectangle."""
    dl = (qlng - lng0) % 360.0
    if dl <= lng1 - lng0:                       # within the rectangle's longitudes
        if lat0 <= qlat <= lat1:
            return 0.0
        return math.radians(lat0 - qlat if qlat < lat0 else qlat - lat1)
    # nearest edge meridian (the closest point of a rectangle outside its longitudes
    # lies on one of its two bounding meridians)
    d0 = _meridian_distance(qlng, qlat, lng0, lat0, lat1)
    d1 = _meridian_distance(qlng, qlat, lng1, lat0, lat1)
    return min(d0, d1)


def _meridian_distance(qlng: float, qlat: float, mlng: float, lat0: float, lat1: float) -> float:
    dl = math.radians(qlng - mlng)
    cdl = math.cos(dl)
    if cdl > 0:
        # latitude on the meridian closest to the point (where the great circle
        # through the point perpendicular to the meridian meets it)
        best = math.degrees(math.atan2(math.tan(math.radians(qlat)), cdl)) if abs(qlat) < 90 else qlat
        best = min(max(best, lat0), lat1)
    else:                                        # 90° or more away: distance grows monotonically toward one end
        return min(haversine(qlng, qlat, mlng, lat0), haversine(qlng, qlat, mlng, lat1))
    return haversine(qlng, qlat, mlng, best)


class PointStore:
    """Points (lng, lat) with an integer payload ``eid``; nearest-first search."""

    def __init__(self) -> None:
        self.codes = np.empty(0, np.uint64)
        self.lng = np.empty(0, np.float64)
        self.lat = np.empty(0, np.float64)
        self.eid = np.empty(0, np.int64)
        self.dead = np.empty(0, bool)
        self.pos: dict[int, int] = {}           # eid -> row in the sorted arrays
        self.tail: dict[int, tuple[float, float]] = {}
        self.n_dead = 0

    def __len__(self) -> int:
        return len(self.codes) - self.n_dead + len(self.tail)

    # -- maintenance -----------------------------------------------------------------
    def add(self, eid: int, lng: float, lat: float) -> None:
        self.tail[eid] = (lng, lat)
        if len(self.tail) > TAIL_MAX:
            self.merge()

    def remove(self, eid: int) -> None:
        if self.tail.pop(eid, None) is not None:
            return
        row = self.pos.pop(eid, None)
        if row is not None and not self.dead[row]:
            self.dead[row] = True
            self.n_dead += 1
            if self.n_dead > 1024 and self.n_dead * 4 > len(self.codes):
                self.merge()

    def bulk(self, eids: list[int], lngs: list[float], lats: list[float]) -> None:
        for e, x, y in zip(eids, lngs, lats):
            self.tail[e] = (x, y)
        self.merge()

    def merge(self) -> None:
        """Fold the tail into the sorted arrays and drop dead rows."""
        keep = ~self.dead
        lng, lat, eid = self.lng[keep], self.lat[keep], self.eid[keep]
        if self.tail:
            te = np.fromiter(self.tail.keys(), np.int64, len(self.tail))
            tv = np.array(list(self.tail.values()), np.float64).reshape(-1, 2)
            lng = np.concatenate([lng, tv[:, 0]])
            lat = np.concatenate([lat, tv[:, 1]])
            eid = np.concatenate([eid, te])
        codes = morton(lng, lat)
        order = np.argsort(codes, kind="stable")
        self.codes, self.lng, self.lat, self.eid = codes[order], lng[order], lat[order], eid[order]
        self.dead = np.zeros(len(self.codes), bool)
        self.pos = dict(zip(self.eid.tolist(), range(len(self.eid))))
        self.tail = {}
        self.n_dead = 0

    # -- search ------------------------------------------------------------------------
    def nearest(self, qlng: float, qlat: float, min_rad: float = 0.0, max_rad: float = math.inf,
                stats: dict | None = None) -> Iterator[tuple[float, int]]:
        """``(distance in radians, eid)`` in increasing distance, within the band."""
        heap: list[tuple[float, int, int, int, int]] = []
        # heap entries: (distance, kind, a, b, c) — kind 0: point eid=a; kind 1: cell level=a, x=b, y=c
        stats = stats if stats is not None else {}
        stats.setdefault("examined", 0)
        if self.tail:
            te = np.fromiter(self.tail.keys(), np.int64, len(self.tail))
            tv = np.array(list(self.tail.values()), np.float64).reshape(-1, 2)
            d = haversine_np(tv[:, 0], tv[:, 1], qlng, qlat)
            stats["examined"] += len(te)
            ok = (d >= min_rad) & (d <= max_rad)
            for dist, e in zip(d[ok].tolist(), te[ok].tolist()):
                heap.append((dist, 0, e, 0, 0))
        if len(self.codes):
            heap.append((0.0, 1, 0, 0, 0))
        heapq.heapify(heap)
        # a consistent view: merges replace these arrays, removals only flip ``dead``
        codes, lngs, lats, eids, dead = self.codes, self.lng, self.lat, self.eid, self.dead
        while heap:
            dist, kind, a, b, c = heapq.heappop(heap)
            if dist > max_rad:
                return
            if kind == 0:
                yield dist, a
                continue
            level, x, y = a, b, c
            shift = np.uint64(2 * (BITS - level))
            prefix = _spread1(x) | (_spread1(y) << 1)
            lo = int(np.searchsorted(codes, np.uint64(prefix) << shift, "left"))
            hi = int(np.searchsorted(codes, np.uint64(prefix + 1) << shift, "left")) \
                if level else len(codes)
            if lo >= hi:
                continue
            if hi - lo <= LEAF or level >= BITS:
                d = haversine_np(lngs[lo:hi], lats[lo:hi], qlng, qlat)
                stats["examined"] += hi - lo
                ok = (d >= min_rad) & (d <= max_rad) & ~dead[lo:hi]
                for dist2, e in zip(d[ok].tolist(), eids[lo:hi][ok].tolist()):
                    heapq.heappush(heap, (dist2, 0, e, 0, 0))
                continue
            nl = level + 1
            w = 360.0 / (1 << nl)
            h = 180.0 / (1 << nl)
            for cx in (2 * x, 2 * x + 1):
                lng0 = -180.0 + cx * w
                for cy in (2 * y, 2 * y + 1):
                    lat0 = -90.0 + cy * h
                    cd = rect_distance(qlng, qlat, lng0, lng0 + w, lat0, lat0 + h)
                    if cd <= max_rad:
                        heapq.heappush(heap, (cd, 1, nl, cx, cy))
