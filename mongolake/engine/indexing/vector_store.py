"""The numeric side of a vector index: float32 vectors in inverted lists (IVF).

A :class:`VectorStore` holds the vectors of one indexed path. Vectors live in
*lists* (:class:`_List`), each a contiguous float32 matrix with the entry id of
every row, so scoring a list is one matrix-vector product and never copies.

* Until the store holds :attr:`VectorStore.ivf_min` vectors there is a single
  list and every search is exact (brute force).
* From then on, k-means centroids (``≈ √n`` of them, trained on a sample) split
  the vectors into lists; a search scores the centroids, probes the nearest
  lists — how many follows from ``numCandidates`` — and ranks the vectors found
  there exactly. The centroids are retrained when the store has doubled (or
  halved) since the last training; new vectors go to the list of their nearest
  centroid meanwhile.
* Removal leaves a tombstone (id ``-1``); a list is compacted once a quarter of
  its rows are dead.

Similarities (higher is better): ``cosine`` on normalised vectors and
``dotProduct`` rank by ``v·q``; ``euclidean`` ranks by ``2 v·q - |v|²``
(``= |q|² - |v - q|²``), from which the distance is recovered exactly.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

_NEG = np.float32(-np.inf)


class _List:
    __slots__ = ("vecs", "ids", "sq", "n", "dead")

    def __init__(self, dims: int, cap: int = 16):
        self.vecs = np.empty((cap, dims), np.float32)
        self.ids = np.full(cap, -1, np.int64)
        self.sq = np.empty(cap, np.float32)
        self.n = 0
        self.dead = 0

    def append(self, vid: int, v: np.ndarray, sq: float) -> int:
        if self.n == len(self.ids):
            cap = max(16, 2 * self.n)
            vecs = np.empty((cap, self.vecs.shape[1]), np.float32)
            vecs[:self.n] = self.vecs[:self.n]
            ids = np.full(cap, -1, np.int64)
            ids[:self.n] = self.ids[:self.n]
            sq_ = np.empty(cap, np.float32)
            sq_[:self.n] = self.sq[:self.n]
            self.vecs, self.ids, self.sq = vecs, ids, sq_
        s = self.n
        self.vecs[s] = v
        self.ids[s] = vid
        self.sq[s] = sq
        self.n += 1
        return s

    def scores(self, q: np.ndarray, euclid: bool) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the live rows."""
        n = self.n
        if n == 0:
            return np.empty(0, np.float32), np.empty(0, np.int64)
        s = self.vecs[:n] @ q
        if euclid:
            s = 2 * s - self.sq[:n]
        ids = self.ids[:n]
        if self.dead:
            live = ids >= 0
            return s[live], ids[live]
        return s, ids


class VectorStore:
    """The vectors of one path of a vector index (see the module docstring)."""

    ivf_min = 4096            # fewer vectors: one list, exact search
    train_per_list = 32       # k-means sample size per centroid
    train_iters = 10
    scan_factor = 96          # vectors scanned ≈ numCandidates × scan_factor
    lists_factor = 2.0        # number of lists ≈ lists_factor × √n

    def __init__(self, dims: int, similarity: str):
        self.dims = dims
        self.similarity = similarity
        self.euclid = similarity == "euclidean"
        self.keys: list[bytes | None] = []          # id -> key
        self.free: list[int] = []
        self.ids: dict[bytes, int] = {}             # key -> id
        self.loc_l = np.zeros(0, np.int32)          # id -> list
        self.loc_s = np.zeros(0, np.int32)          # id -> row in its list
        self.lists: list[_List] = [_List(dims)]
        self.centroids: np.ndarray | None = None
        self.c_sq: np.ndarray | None = None
        self.trained_at = 0
        self.trainings = 0

    def __len__(self) -> int:
        return len(self.ids)

    # -- maintenance -----------------------------------------------------------------
    def add(self, key: bytes, v: np.ndarray) -> None:
        if key in self.ids:
            self.remove(key)
        if self.free:
            vid = self.free.pop()
            self.keys[vid] = key
        else:
            vid = len(self.keys)
            self.keys.append(key)
            if vid >= len(self.loc_l):
                cap = max(64, 2 * len(self.loc_l))
                self.loc_l = np.resize(self.loc_l, cap)
                self.loc_s = np.resize(self.loc_s, cap)
        self.ids[key] = vid
        li = 0 if self.centroids is None else int(np.argmax(self.centroids @ v - self.c_sq))
        self.loc_l[vid] = li
        self.loc_s[vid] = self.lists[li].append(vid, v, float(v @ v))

    def remove(self, key: bytes) -> bool:
        vid = self.ids.pop(key, None)
        if vid is None:
            return False
        lst = self.lists[int(self.loc_l[vid])]
        lst.ids[int(self.loc_s[vid])] = -1
        lst.dead += 1
        self.keys[vid] = None
        self.free.append(vid)
        if lst.dead > 8 and 4 * lst.dead > lst.n:
            self._compact(lst)
        return True

    def _compact(self, lst: _List) -> None:
        live = np.nonzero(lst.ids[:lst.n] >= 0)[0]
        m = len(live)
        lst.vecs[:m] = lst.vecs[live]
        lst.ids[:m] = lst.ids[live]
        lst.sq[:m] = lst.sq[live]
        lst.ids[m:lst.n] = -1
        lst.n, lst.dead = m, 0
        self.loc_s[lst.ids[:m]] = np.arange(m, dtype=np.int32)

    # -- training ----------------------------------------------------------------------
    def needs_training(self) -> bool:
        n = len(self.ids)
        if self.centroids is None:
            return n >= self.ivf_min
        return n >= 2 * self.trained_at or n < self.trained_at // 4

    def maybe_train(self) -> bool:
        if not self.needs_training():
            return False
        self.train()
        return True

    def _all_live(self) -> tuple[np.ndarray, np.ndarray]:
        vs, ids = [], []
        for lst in self.lists:
            live = lst.ids[:lst.n] >= 0
            vs.append(lst.vecs[:lst.n][live])
            ids.append(lst.ids[:lst.n][live])
        if not vs:
            return np.empty((0, self.dims), np.float32), np.empty(0, np.int64)
        return np.concatenate(vs), np.concatenate(ids)

    def train(self) -> None:
        """(Re)build the lists: k-means centroids over a sample when the store is big
        enough, else one list."""
        V, ids = self._all_live()
        n = len(V)
        if n < self.ivf_min:
            self.centroids = self.c_sq = None
            self._rebuild(V, ids, np.zeros(n, np.int64), 1)
            self.trained_at = 0
            return
        nlist = int(min(4096, max(16, round(self.lists_factor * math.sqrt(n)))))
        rng = np.random.default_rng(0x5EED + n)
        m = min(n, nlist * self.train_per_list)
        sample = V[rng.choice(n, m, replace=False)] if m < n else V
        C = sample[rng.choice(m, nlist, replace=False)].copy()
        for _ in range(self.train_iters):
            assign = _nearest(sample, C)
            counts = np.bincount(assign, minlength=nlist)
            order = np.argsort(assign, kind="stable")
            nonempty = np.nonzero(counts)[0]
            starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[nonempty]
            sums = np.add.reduceat(sample[order], starts, axis=0)
            C[nonempty] = sums / counts[nonempty, None]
            empty = np.nonzero(counts == 0)[0]
            if len(empty):                       # reseed empty clusters
                C[empty] = sample[rng.choice(m, len(empty), replace=False)]
            if self.similarity == "cosine":
                C /= np.maximum(np.linalg.norm(C, axis=1, keepdims=True), 1e-12)
        self.centroids = C.astype(np.float32)
        self.c_sq = 0.5 * np.einsum("ij,ij->i", self.centroids, self.centroids)
        self._rebuild(V, ids, _nearest(V, self.centroids, self.c_sq), nlist)
        self.trained_at = n
        self.trainings += 1

    def _rebuild(self, V: np.ndarray, ids: np.ndarray, assign: np.ndarray, nlist: int) -> None:
        counts = np.bincount(assign, minlength=nlist) if len(assign) else np.zeros(nlist, np.int64)
        order = np.argsort(assign, kind="stable")
        lists = []
        pos = 0
        sq = np.einsum("ij,ij->i", V, V).astype(np.float32) if len(V) else np.empty(0, np.float32)
        for li in range(nlist):
            c = int(counts[li])
            rows = order[pos:pos + c]
            pos += c
            lst = _List(self.dims, cap=max(16, c + c // 8))
            lst.vecs[:c] = V[rows]
            lst.ids[:c] = ids[rows]
            lst.sq[:c] = sq[rows]
            lst.n = c
            if c:
                self.loc_l[ids[rows]] = li
                self.loc_s[ids[rows]] = np.arange(c, dtype=np.int32)
            lists.append(lst)
        self.lists = lists

    # -- search ------------------------------------------------------------------------
    def nprobe(self, num_candidates: int) -> int:
        if self.centroids is None:
            return len(self.lists)
        avg = max(1.0, len(self.ids) / len(self.lists))
        return int(min(len(self.lists), max(4, math.ceil(num_candidates * self.scan_factor / avg))))

    def search(self, q: np.ndarray, k: int, *, num_candidates: int, exact: bool,
               accept: Callable[[int], bool] | None = None) -> tuple[list[tuple[int, float]], int]:
        """The ``k`` best ``(id, raw score)`` (cosine/dot: ``v·q``; euclidean:
        ``|v-q|``), best first, among entries ``accept(id)`` admits; and the number
        of vectors scored. Exact over every list when ``exact`` or untrained, else
        over the lists nearest to ``q`` (more of them when ``accept`` rejects many)."""
        self.maybe_train()
        if k <= 0 or not self.ids:
            return [], 0
        if exact or self.centroids is None:
            order = range(len(self.lists))
            first = len(self.lists)
            target = 0
        else:
            cs = self.centroids @ q - self.c_sq
            order = np.argsort(-cs)
            first = self.nprobe(num_candidates)
            target = first * len(self.ids) / len(self.lists)    # vectors an unfiltered search scans
        scores: list[np.ndarray] = []
        ids: list[np.ndarray] = []
        matched = 0
        examined = 0
        i = 0
        nl = len(order)
        while i < nl:
            stop = min(nl, first if i == 0 else max(i + 1, i * 2))
            for li in order[i:stop]:
                s, d = self.lists[int(li)].scores(q, self.euclid)
                if not len(d):
                    continue
                examined += len(d)
                if accept is not None and target:
                    keep = np.fromiter((accept(int(x)) for x in d), bool, len(d))
                    s, d = s[keep], d[keep]
                    matched += len(d)
                scores.append(s)
                ids.append(d)
            i = stop
            if accept is None or not target or matched >= target:
                break
        if not scores:
            return [], examined
        S = np.concatenate(scores)
        D = np.concatenate(ids)
        if accept is not None and not target:
            best = _lazy_accept(S, D, k, accept)
        else:
            if len(S) > k:
                part = np.argpartition(-S, k - 1)[:k]
                best = part[np.argsort(-S[part], kind="stable")]
            else:
                best = np.argsort(-S, kind="stable")
            best = [(int(D[j]), float(S[j])) for j in best]
        if self.euclid:
            qq = float(q @ q)
            best = [(vid, math.sqrt(max(0.0, qq - s))) for vid, s in best]
        return best, examined


def _lazy_accept(S: np.ndarray, D: np.ndarray, k: int, accept: Callable[[int], bool]) -> list[tuple[int, float]]:
    """The ``k`` best accepted entries, testing ``accept`` in score order only as far
    as needed (exact search with a filter)."""
    out: list[tuple[int, float]] = []
    n = len(S)
    window = min(n, max(4 * k, 256))
    seen: set[int] = set()
    while len(seen) < n and len(out) < k:
        if window >= n:
            idx = np.argsort(-S, kind="stable")
        else:
            part = np.argpartition(-S, window - 1)[:window]
            idx = part[np.argsort(-S[part], kind="stable")]
        for j in idx.tolist():
            if j in seen:
                continue
            seen.add(j)
            vid = int(D[j])
            if accept(vid):
                out.append((vid, float(S[j])))
                if len(out) == k:
                    break
        window = min(n, window * 4)
    return out


def _nearest(X: np.ndarray, C: np.ndarray, c_half_sq: np.ndarray | None = None) -> np.ndarray:
    """Index of the L2-nearest centroid of every row of ``X`` (chunked matmuls)."""
    if c_half_sq is None:
        c_half_sq = 0.5 * np.einsum("ij,ij->i", C, C)
    out = np.empty(len(X), np.int64)
    step = 8192
    for a in range(0, len(X), step):
        out[a:a + step] = np.argmax(X[a:a + step] @ C.T - c_half_sq, axis=1)
    return out
