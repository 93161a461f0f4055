"""VectorIndex / VectorStore: definition checks, vector extraction, exact search equal
to a numpy brute force for every similarity, IVF recall against exact search,
maintenance (updates, deletes, compaction, retraining) and pre-filtering."""
import math

import numpy as np
import pytest
from bson.binary import Binary, BinaryVectorDtype

from mongolake.engine.indexing.vector import VectorIndex, as_vector, validate_definition
from mongolake.engine.indexing.vector_store import VectorStore
from mongolake.errors import MongoError
from mongolake.query.filter import parse_filter
from mongolake.query.matcher import compile_matcher


def _key(i: int) -> bytes:
    return i.to_bytes(4, "big")


def _spec(dims, sim="cosine", filters=(), name="vi"):
    fields = [{"type": "vector", "path": "v", "numDimensions": dims, "similarity": sim}]
    fields += [{"type": "filter", "path": p} for p in filters]
    return VectorIndex.validate_spec({"name": name, "definition": {"fields": fields}})


def _structured(n, d, seed=0):
    """Vectors on a low-dimensional manifold (like embeddings), not isotropic noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 8))
    w = rng.standard_normal((8, d))
    return (z @ w + 0.1 * rng.standard_normal((n, d))).astype(np.float32)


def _brute(X, q, sim):
    if sim == "cosine":
        Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
        s = Xn @ (q / np.linalg.norm(q))
        return s, (1 + s) / 2
    if sim == "dotProduct":
        s = X @ q
        return s, (1 + s) / 2
    d = np.linalg.norm(X - q, axis=1)
    return -d, 1 / (1 + d)


# -- definitions ---------------------------------------------------------------------------

def test_definition_is_validated_and_normalised():
    d = validate_definition({"fields": [{"type": "vector", "path": "a.b", "numDimensions": 3.0,
                                         "similarity": "dotProduct"}, {"type": "filter", "path": "g"}]})
    assert d == {"fields": [{"type": "vector", "path": "a.b", "numDimensions": 3, "similarity": "dotProduct"},
                            {"type": "filter", "path": "g"}]}
    bad = [None, {}, {"fields": []}, {"fields": [{"type": "filter", "path": "g"}]},
           {"fields": [{"type": "vector", "path": "v", "numDimensions": 0, "similarity": "cosine"}]},
           {"fields": [{"type": "vector", "path": "v", "numDimensions": 9000, "similarity": "cosine"}]},
           {"fields": [{"type": "vector", "path": "v", "numDimensions": 4, "similarity": "manhattan"}]},
           {"fields": [{"type": "vector", "path": "", "numDimensions": 4, "similarity": "cosine"}]},
           {"fields": [{"type": "vector", "path": "v", "numDimensions": 4, "similarity": "cosine", "x": 1}]},
           {"fields": [{"type": "vector", "path": "v", "numDimensions": 4, "similarity": "cosine"},
                       {"type": "filter", "path": "v"}]},
           {"fields": [{"type": "text", "path": "v"}]}, {"fields": [], "mappings": {}}]
    for b in bad:
        with pytest.raises(MongoError) as e:
            validate_definition(b)
        assert e.value.code == 2, b


def test_as_vector_accepts_number_arrays_and_binary_vectors_only():
    assert as_vector([1, 2.5, 3]).tolist() == [1.0, 2.5, 3.0]
    assert as_vector([1, 2], 3) is None
    assert as_vector([1, True, 3]) is None
    assert as_vector([1, "x"]) is None
    assert as_vector([1, float("nan")]) is None
    assert as_vector("abc") is None and as_vector(None) is None and as_vector([]) is None
    f32 = Binary.from_vector([0.5, -1.0], BinaryVectorDtype.FLOAT32)
    assert as_vector(f32, 2).tolist() == [0.5, -1.0]
    i8 = Binary.from_vector([1, -2, 3], BinaryVectorDtype.INT8)
    assert as_vector(i8).tolist() == [1.0, -2.0, 3.0]
    assert as_vector(Binary(b"\x01\x02", 0)) is None


# -- exact search ----------------------------------------------------------------------------

@pytest.mark.parametrize("sim", ["cosine", "dotProduct", "euclidean"])
def test_exact_search_matches_brute_force_and_atlas_scores(sim):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((500, 16)).astype(np.float32)
    if sim == "dotProduct":
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    ix = VectorIndex(_spec(16, sim))
    for i, x in enumerate(X):
        ix.add({"_id": i, "v": x.tolist()}, _key(i))
    assert ix.entry_count() == 500
    for _ in range(5):
        q = rng.standard_normal(16).astype(np.float32)
        hits, examined = ix.search("v", q, 10, num_candidates=100, exact=True)
        rank, score = _brute(X, q, sim)
        want = np.argsort(-rank, kind="stable")[:10]
        assert [int.from_bytes(k, "big") for k, _ in hits] == want.tolist()
        for (k, s), j in zip(hits, want):
            assert s == pytest.approx(float(score[j]), abs=1e-5)
        assert examined == 500
        assert all(a[1] >= b[1] for a, b in zip(hits, hits[1:]))


def test_documents_without_a_valid_vector_are_skipped():
    ix = VectorIndex(_spec(3, "cosine"))
    docs = [{"v": [1, 0, 0]}, {"v": [1, 2]}, {"v": "x"}, {}, {"v": [0, 0, 0]}, {"v": [0, 1, 0]},
            {"v": {"a": 1}}, {"v": [1, None, 2]}]
    for i, d in enumerate(docs):
        ix.add(d, _key(i))
    assert ix.entry_count() == 2                     # zero vector: no cosine
    hits, _ = ix.search("v", [1, 0.1, 0], 10, num_candidates=10, exact=False)
    assert [k for k, _ in hits] == [_key(0), _key(5)]
    with pytest.raises(MongoError):
        ix.search("v", [1, 0], 10, num_candidates=10, exact=False)   # wrong dimensions
    with pytest.raises(MongoError):
        ix.search("w", [1, 0, 0], 10, num_candidates=10, exact=False)  # path not indexed


def test_updates_and_deletes_keep_the_index_exact():
    rng = np.random.default_rng(2)
    ix = VectorIndex(_spec(8, "euclidean"))
    live = {}
    for step in range(3000):
        i = int(rng.integers(0, 400))
        if rng.random() < 0.3 and i in live:
            ix.remove({"v": live.pop(i)}, _key(i))
        else:
            v = rng.standard_normal(8).tolist()
            if i in live:
                ix.remove({"v": live[i]}, _key(i))
            ix.add({"v": v}, _key(i))
            live[i] = v
    assert ix.entry_count() == len(live)
    ids = sorted(live)
    X = np.array([live[i] for i in ids], np.float32)
    q = rng.standard_normal(8).astype(np.float32)
    hits, _ = ix.search("v", q, 20, num_candidates=100, exact=True)
    want = [ids[j] for j in np.argsort(np.linalg.norm(X - q, axis=1), kind="stable")[:20]]
    assert [int.from_bytes(k, "big") for k, _ in hits] == want
    st = ix.stores["v"]
    for key, vid in st.ids.items():                  # locations stay consistent after compactions
        lst = st.lists[int(st.loc_l[vid])]
        assert lst.ids[int(st.loc_s[vid])] == vid and st.keys[vid] == key


# -- approximate search -------------------------------------------------------------------

@pytest.mark.parametrize("sim", ["cosine", "dotProduct", "euclidean"])
def test_ivf_recall_against_exact(sim, monkeypatch):
    monkeypatch.setattr(VectorStore, "ivf_min", 1000)
    X = _structured(6000, 32, seed=3)
    if sim == "dotProduct":
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    ix = VectorIndex(_spec(32, sim))
    for i, x in enumerate(X):
        ix.add({"v": x.tolist()}, _key(i))
    ix.finish_build()
    st = ix.stores["v"]
    assert st.centroids is not None and len(st.lists) > 16
    rng = np.random.default_rng(4)
    recalls, scanned = [], []
    for _ in range(30):
        q = _structured(1, 32, seed=int(rng.integers(1 << 30)))[0]
        got, examined = ix.search("v", q, 10, num_candidates=50, exact=False)
        want, _ = ix.search("v", q, 10, num_candidates=50, exact=True)
        recalls.append(len({k for k, _ in got} & {k for k, _ in want}) / 10)
        scanned.append(examined)
    assert np.mean(recalls) >= 0.9
    assert np.mean(scanned) < 6000                   # approximate: not everything scanned


def test_retraining_follows_growth_and_shrinking(monkeypatch):
    monkeypatch.setattr(VectorStore, "ivf_min", 500)
    X = _structured(2400, 16, seed=5)
    st = VectorStore(16, "euclidean")
    for i in range(499):
        st.add(_key(i), X[i])
    assert not st.maybe_train() and st.centroids is None
    st.add(_key(499), X[499])
    q = X[7]
    st.search(q, 5, num_candidates=20, exact=False)  # trains lazily
    assert st.trainings == 1 and st.trained_at == 500
    for i in range(500, 2400):
        st.add(_key(i), X[i])
    st.search(q, 5, num_candidates=20, exact=False)
    assert st.trainings == 2 and st.trained_at == 2400
    best, _ = st.search(q, 1, num_candidates=20, exact=False)
    assert st.keys[best[0][0]] == _key(7) and best[0][1] == pytest.approx(0, abs=1e-3)
    for i in range(2400 - 200):
        st.remove(_key(i))
    st.search(q, 5, num_candidates=20, exact=False)  # 200 left: back to one exact list
    assert st.centroids is None and len(st.lists) == 1 and len(st) == 200


# -- pre-filter ------------------------------------------------------------------------------

@pytest.mark.parametrize("exact", [True, False])
def test_filter_returns_the_best_among_matching_documents(exact, monkeypatch):
    monkeypatch.setattr(VectorStore, "ivf_min", 1000)
    X = _structured(5000, 24, seed=6)
    ix = VectorIndex(_spec(24, "cosine", filters=("meta.g", "n")))
    for i, x in enumerate(X):
        ix.add({"v": x.tolist(), "meta": {"g": i % 7, "big": list(range(50))}, "n": i}, _key(i))
    ix.finish_build()
    assert ix._filt[_key(3)] == {"meta": {"g": 3}, "n": 3}      # only the filter paths are kept
    flt = {"$or": [{"meta.g": 2}, {"n": {"$lt": 100}}]}
    matcher = compile_matcher(parse_filter(flt))
    ok = np.array([(i % 7 == 2) or i < 100 for i in range(5000)])
    recalls = []
    rng = np.random.default_rng(7)
    for _ in range(10):
        q = _structured(1, 24, seed=int(rng.integers(1 << 30)))[0]
        hits, _ = ix.search("v", q, 10, num_candidates=100, exact=exact, matcher=matcher)
        got = [int.from_bytes(k, "big") for k, _ in hits]
        assert len(got) == 10 and all(ok[g] for g in got)
        rank, _ = _brute(X, q, "cosine")
        rank[~ok] = -np.inf
        want = np.argsort(-rank, kind="stable")[:10].tolist()
        if exact:
            assert got == want
        recalls.append(len(set(got) & set(want)) / 10)
    assert np.mean(recalls) >= 0.9


def test_selective_filter_finds_rare_matches():
    ix = VectorIndex(_spec(4, "euclidean", filters=("tag",)))
    rng = np.random.default_rng(8)
    for i in range(3000):
        ix.add({"v": rng.standard_normal(4).tolist(), "tag": "rare" if i % 1000 == 0 else "common"}, _key(i))
    m = compile_matcher(parse_filter({"tag": "rare"}))
    hits, _ = ix.search("v", [0, 0, 0, 0], 10, num_candidates=10, exact=False, matcher=m)
    assert sorted(int.from_bytes(k, "big") for k, _ in hits) == [0, 1000, 2000]
    assert all(0 < s <= 1 and not math.isnan(s) for _, s in hits)
