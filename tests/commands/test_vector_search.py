"""Search-index commands and $vectorSearch through pymongo: index management with
Atlas' replies and errors, results equal to a brute-force search over the
documents (with and without a pre-filter), after writes, flush and restart, and
the approximate index against exact search."""
import numpy as np
import pytest
from bson.binary import Binary, BinaryVectorDtype
from pymongo.errors import OperationFailure
from pymongo.operations import SearchIndexModel

from tests.serverutil import ServerProcess

DIMS = 8


def _definition(sim="cosine", dims=DIMS, filters=("g",)):
    return {"fields": [{"type": "vector", "path": "v", "numDimensions": dims, "similarity": sim}]
            + [{"type": "filter", "path": p} for p in filters]}


def _docs(n, dims=DIMS, seed=0, start=0):
    rng = np.random.default_rng(seed)
    return [{"_id": start + i, "g": int(rng.integers(0, 4)), "v": rng.standard_normal(dims).tolist()}
            for i in range(n)]


def _brute(docs, q, sim, limit, pred=lambda d: True):
    """[(_id, score)] of the best ``limit`` documents, as Atlas scores them."""
    q = np.asarray(q, float)
    out = []
    for d in docs:
        v = d.get("v")
        if not isinstance(v, list) or len(v) != len(q) or not pred(d):
            continue
        v = np.asarray(v, float)
        if sim == "cosine":
            s = (1 + v @ q / (np.linalg.norm(v) * np.linalg.norm(q))) / 2
        elif sim == "dotProduct":
            s = (1 + v @ q) / 2
        else:
            s = 1 / (1 + np.linalg.norm(v - q))
        out.append((d["_id"], s))
    out.sort(key=lambda t: -t[1])
    return out[:limit]


def _search(coll, q, limit=5, nc=50, **kw):
    stage = {"index": kw.pop("index", "vi"), "path": "v", "queryVector": q if isinstance(q, Binary) else list(q), "numCandidates": nc,
             "limit": limit, **kw}
    return [(d["_id"], d["score"]) for d in
            coll.aggregate([{"$vectorSearch": stage}, {"$project": {"score": {"$meta": "vectorSearchScore"}}}])]


def _same(got, want):
    assert [i for i, _ in got] == [i for i, _ in want]
    for (_, a), (_, b) in zip(got, want):
        assert a == pytest.approx(b, abs=1e-5)


def _code(fn):
    with pytest.raises(OperationFailure) as e:
        fn()
    return e.value.code


# -- index management ---------------------------------------------------------------------

def test_create_list_update_drop(db):
    c = db.items
    assert _code(lambda: c.create_search_index(SearchIndexModel(_definition(), name="vi", type="vectorSearch"))) == 26
    c.insert_many(_docs(20))
    assert c.create_search_index(SearchIndexModel(_definition(), name="vi", type="vectorSearch")) == "vi"
    # the same definition again is accepted (idempotent), another one is not
    assert c.create_search_index({"name": "vi", "type": "vectorSearch", "definition": _definition()}) == "vi"
    assert _code(lambda: c.create_search_index(SearchIndexModel(_definition("euclidean"), name="vi",
                                                                type="vectorSearch"))) == 68
    assert c.create_search_indexes([SearchIndexModel(_definition("dotProduct", filters=()), name="v2",
                                                     type="vectorSearch")]) == ["v2"]
    listed = list(c.list_search_indexes())
    assert [ix["name"] for ix in listed] == ["vi", "v2"]
    vi = listed[0]
    assert vi["type"] == "vectorSearch" and vi["status"] == "READY" and vi["queryable"] is True
    assert vi["latestDefinition"] == _definition() and vi["latestDefinitionVersion"]["version"] == 0
    assert [ix["name"] for ix in c.list_search_indexes("v2")] == ["v2"]
    by_id = list(c.aggregate([{"$listSearchIndexes": {"id": vi["id"]}}]))
    assert [ix["name"] for ix in by_id] == ["vi"]
    assert _code(lambda: list(c.aggregate([{"$listSearchIndexes": {"id": vi["id"], "name": "vi"}}]))) == 72
    assert db.command("listSearchIndexes", "items", name="vi")["cursor"]["firstBatch"][0]["id"] == vi["id"]

    c.update_search_index("vi", _definition("euclidean"))
    vi2 = list(c.list_search_indexes("vi"))[0]
    assert vi2["id"] == vi["id"] and vi2["latestDefinitionVersion"]["version"] == 1
    assert vi2["latestDefinition"]["fields"][0]["similarity"] == "euclidean"
    assert _code(lambda: c.update_search_index("nope", _definition())) == 27
    assert _code(lambda: db.command("updateSearchIndex", "items", name="vi", id=vi["id"],
                                    definition=_definition())) == 72
    c.drop_search_index("v2")
    assert [ix["name"] for ix in c.list_search_indexes()] == ["vi"]
    assert _code(lambda: c.drop_search_index("v2")) == 27
    db.missing.drop_search_index("x")                # pymongo ignores NamespaceNotFound
    assert list(db.missing.list_search_indexes()) == []


def test_definition_errors(db):
    c = db.items
    c.insert_one({"_id": 1})
    assert _code(lambda: c.create_search_index({"name": "s", "definition": {"mappings": {"dynamic": True}}})) == 238
    bad = [{"fields": []}, {"fields": [{"type": "vector", "path": "v", "numDimensions": 0, "similarity": "cosine"}]},
           {"fields": [{"type": "vector", "path": "v", "numDimensions": 3, "similarity": "hamming"}]},
           {"fields": [{"type": "filter", "path": "g"}]}]
    for d in bad:
        assert _code(lambda: c.create_search_index(SearchIndexModel(d, name="x", type="vectorSearch"))) == 2
    assert _code(lambda: db.command("createSearchIndexes", "items", indexes=[{"name": "x", "type": "other",
                                                                              "definition": _definition()}])) == 2
    assert list(c.list_search_indexes()) == []


# -- $vectorSearch -----------------------------------------------------------------------------

@pytest.mark.parametrize("sim", ["cosine", "euclidean", "dotProduct"])
def test_vector_search_equals_brute_force(db, sim):
    c = db.items
    docs = _docs(300, seed=1)
    c.insert_many(docs)
    c.create_search_index(SearchIndexModel(_definition(sim), name="vi", type="vectorSearch"))
    rng = np.random.default_rng(2)
    for _ in range(5):
        q = rng.standard_normal(DIMS)
        _same(_search(c, q, limit=7, nc=100), _brute(docs, q, sim, 7))
        _same(_search(c, q, limit=7, nc=100, exact=True), _brute(docs, q, sim, 7))
        flt = {"g": {"$in": [1, 3]}}
        _same(_search(c, q, limit=7, nc=100, filter=flt), _brute(docs, q, sim, 7, lambda d: d["g"] in (1, 3)))
        _same(_search(c, q, limit=4, nc=100, filter={"$or": [{"g": 0}, {"g": {"$gt": 2}}]}),
              _brute(docs, q, sim, 4, lambda d: d["g"] == 0 or d["g"] > 2))


def test_stage_rules_and_errors(db):
    c = db.items
    docs = _docs(50, seed=3)
    c.insert_many(docs)
    c.create_search_index(SearchIndexModel(_definition(), name="vi", type="vectorSearch"))
    q = [0.1] * DIMS
    base = {"index": "vi", "path": "v", "queryVector": q, "numCandidates": 20, "limit": 5}

    def run(pipeline):
        return list(c.aggregate(pipeline))

    assert _code(lambda: run([{"$match": {}}, {"$vectorSearch": base}])) == 40602
    assert _code(lambda: run([{"$facet": {"a": [{"$vectorSearch": base}]}}])) == 40600
    assert _code(lambda: run([{"$vectorSearch": 1}])) == 9
    assert _code(lambda: run([{"$vectorSearch": {**base, "limit": "x"}}])) == 8575100
    assert _code(lambda: run([{"$vectorSearch": {**base, "limit": 0}}])) == 7912700
    assert _code(lambda: run([{"$vectorSearch": {**base, "limit": 30}}])) == 2          # > numCandidates
    assert _code(lambda: run([{"$vectorSearch": {**base, "numCandidates": 10001}}])) == 2
    assert _code(lambda: run([{"$vectorSearch": {k: v for k, v in base.items() if k != "numCandidates"}}])) == 2
    assert _code(lambda: run([{"$vectorSearch": {**base, "bogus": 1}}])) == 40415
    assert _code(lambda: run([{"$vectorSearch": {k: v for k, v in base.items() if k != "path"}}])) == 40414
    assert _code(lambda: run([{"$vectorSearch": {**base, "filter": {"v": 1}}}])) == 2  # not a filter path
    assert _code(lambda: run([{"$vectorSearch": {**base, "filter": {"g": {"$regex": "a"}}}}])) == 2
    assert _code(lambda: run([{"$vectorSearch": {**base, "queryVector": [1, 2]}}])) == 2  # wrong dimensions
    assert run([{"$vectorSearch": {**base, "index": "nope"}}]) == []
    assert list(db.nothing.aggregate([{"$vectorSearch": base}])) == []
    # exact search needs no numCandidates; later stages see the documents and their score
    out = run([{"$vectorSearch": {"index": "vi", "path": "v", "queryVector": q, "exact": True, "limit": 3}},
               {"$addFields": {"s": {"$meta": "vectorSearchScore"}}}, {"$match": {"s": {"$gt": 0}}},
               {"$project": {"_id": 1, "g": 1, "s": 1}}])
    want = _brute(docs, q, "cosine", 3)
    assert [d["_id"] for d in out] == [i for i, _ in want] and all(set(d) == {"_id", "g", "s"} for d in out)
    # a BSON float32 vector as the query
    bq = Binary.from_vector([0.1] * DIMS, BinaryVectorDtype.FLOAT32)
    assert [i for i, _ in _search(c, bq, limit=3)] == [i for i, _ in want]


def test_results_follow_inserts_updates_deletes(db):
    c = db.items
    docs = {d["_id"]: d for d in _docs(200, seed=4)}
    c.insert_many(list(docs.values()))
    c.create_search_index(SearchIndexModel(_definition("euclidean"), name="vi", type="vectorSearch"))
    rng = np.random.default_rng(5)
    q = rng.standard_normal(DIMS)
    _same(_search(c, q, limit=10, nc=100), _brute(docs.values(), q, "euclidean", 10))
    for d in _docs(100, seed=6, start=1000):
        c.insert_one(d)
        docs[d["_id"]] = d
    for i in range(0, 200, 3):                       # new vectors and filter values
        v = rng.standard_normal(DIMS).tolist()
        c.update_one({"_id": i}, {"$set": {"v": v, "g": 9}})
        docs[i] = {**docs[i], "v": v, "g": 9}
    for i in range(1, 200, 5):
        c.delete_one({"_id": i})
        docs.pop(i)
    c.update_one({"_id": 2}, {"$set": {"v": "not a vector"}})    # leaves the index
    docs[2] = {**docs[2], "v": "not a vector"}
    c.update_one({"_id": 4}, {"$unset": {"v": 1}})
    docs[4] = {k: v for k, v in docs[4].items() if k != "v"}
    for _ in range(3):
        q = rng.standard_normal(DIMS)
        _same(_search(c, q, limit=10, nc=100), _brute(docs.values(), q, "euclidean", 10))
        _same(_search(c, q, limit=10, nc=100, filter={"g": 9}),
              _brute(docs.values(), q, "euclidean", 10, lambda d: d["g"] == 9))
        _same(_search(c, q, limit=10, nc=100, filter={"g": {"$ne": 9}}),
              _brute(docs.values(), q, "euclidean", 10, lambda d: d["g"] != 9))


def test_survives_flush_and_restart(tmp_path):
    srv = ServerProcess(str(tmp_path)).start()
    docs = _docs(150, seed=7)
    q = np.random.default_rng(8).standard_normal(DIMS)
    try:
        from pymongo import MongoClient
        with MongoClient(srv.url) as cl:
            c = cl.vs.items
            c.insert_many(docs[:100])
            c.create_search_index(SearchIndexModel(_definition(), name="vi", type="vectorSearch"))
            _same(_search(c, q, limit=10), _brute(docs[:100], q, "cosine", 10))
            cl.admin.command("fsync")                    # flushed to the table
            c.insert_many(docs[100:])                    # and some only in the WAL
            c.delete_one({"_id": 0})
            want = _brute(docs[1:], q, "cosine", 10)
            _same(_search(c, q, limit=10), want)
    finally:
        srv.stop()
    srv = ServerProcess(str(tmp_path)).start()
    try:
        from pymongo import MongoClient
        with MongoClient(srv.url) as cl:
            c = cl.vs.items
            assert [ix["name"] for ix in c.list_search_indexes()] == ["vi"]
            _same(_search(c, q, limit=10), want)
            _same(_search(c, q, limit=10, filter={"g": 2}),
                  _brute(docs[1:], q, "cosine", 10, lambda d: d["g"] == 2))
    finally:
        srv.stop()


def test_approximate_index_against_exact(db):
    """Above 4,096 vectors the server answers from IVF lists: high recall against
    exact: true, and every result is a true match with its true score."""
    c = db.items
    rng = np.random.default_rng(9)
    z = rng.standard_normal((6000, 6))
    w = rng.standard_normal((6, 32))
    X = z @ w + 0.1 * rng.standard_normal((6000, 32))
    c.insert_many([{"_id": i, "g": i % 5, "v": X[i].tolist()} for i in range(6000)])
    c.create_search_index(SearchIndexModel(_definition("cosine", dims=32), name="vi", type="vectorSearch"))
    recalls = []
    for _ in range(20):
        q = rng.standard_normal(6) @ w
        got = _search(c, q, limit=10, nc=100)
        exact = _search(c, q, limit=10, nc=100, exact=True)
        recalls.append(len({i for i, _ in got} & {i for i, _ in exact}) / 10)
        assert all(a >= b for (_, a), (_, b) in zip(got, got[1:]))
        flt = _search(c, q, limit=10, nc=100, filter={"g": 3})
        assert len(flt) == 10 and all(i % 5 == 3 for i, _ in flt)
    assert np.mean(recalls) >= 0.9
    stats = c.database.command("serverStatus")     # the server is alive and answering
    assert stats["ok"] == 1.0
