"""Text indexes and ``$text`` over the wire (real server, pymongo)."""
from __future__ import annotations

import math

import pytest
from pymongo.errors import OperationFailure

DOCS = [
    {"_id": 1, "title": "Coffee shop", "body": "the best coffee in town", "n": 1},
    {"_id": 2, "title": "Tea", "body": "green tea and coffee beans", "n": 2},
    {"_id": 3, "title": "Nothing", "body": "just words", "n": 3},
    {"_id": 4, "title": "Café Crème", "body": "Un café, s'il vous plaît", "language": "french", "n": 4},
    {"_id": 5, "title": "running shoes", "body": "Runners run; the runner ran", "n": 5},
    {"_id": 6, "title": "A naïve résumé", "n": 6},
]


def _code(fn) -> OperationFailure:
    with pytest.raises(OperationFailure) as ei:
        fn()
    return ei.value


@pytest.fixture
def coll(db):
    c = db.articles
    c.insert_many(DOCS)
    c.create_index([("title", "text"), ("body", "text")], weights={"title": 10})
    return c


def _ids(cur) -> list:
    return sorted(d["_id"] for d in cur)


def test_create_and_list_normalised_spec(coll):
    ix = next(i for i in coll.list_indexes() if i["name"] == "title_text_body_text")
    assert dict(ix["key"]) == {"_fts": "text", "_ftsx": 1}
    assert dict(ix["weights"]) == {"body": 1, "title": 10}
    assert ix["default_language"] == "english" and ix["language_override"] == "language"
    assert ix["textIndexVersion"] == 3


def test_second_text_index_conflicts(coll):
    e = _code(lambda: coll.create_index([("other", "text")]))
    assert e.code == 85
    e = _code(lambda: coll.create_index([("n", 1), ("other", "text")]))          # compound: still a second one
    assert e.code == 85
    # the same name with other weights or another language is a conflict, not "already exists"
    for opts in ({"weights": {"title": 3}}, {"default_language": "french"}):
        e = _code(lambda: coll.create_index([("title", "text"), ("body", "text")], name="title_text_body_text",
                                            **opts))
        assert e.code == 85
    coll.create_index([("title", "text"), ("body", "text")], weights={"title": 10})     # identical: a no-op


@pytest.mark.parametrize("key, opts, code, msg", [
    ([("a", "text")], {"weights": {"a": 0}}, 67, "exclusive interval"),
    ([("a", "text")], {"weights": {"a": "x"}}, 67, "numeric type"),
    ([("a", "text")], {"weights": 5}, 67, "must be an object"),
    ([("a", "text")], {"weights": {"$x": 1}}, 67, "$ prefix"),
    ([("a", "text")], {"default_language": "klingon"}, 67, "default_language is not valid"),
    ([("a", "text")], {"language_override": "a.b"}, 67, "language_override is not valid"),
    ([("a", "text")], {"textIndexVersion": 9}, 67, "bad textIndexVersion"),
    ([("a", "text"), ("b", 1), ("c", "text")], {}, 67, "adjacent"),
    ([("a", "text"), ("b", 2)], {}, 67, "expected value 1 or -1"),
    ([("a", "text")], {"unique": True}, 238, "unique"),
])
def test_create_errors(db, key, opts, code, msg):
    e = _code(lambda: db.x.create_index(key, **opts))
    assert e.code == code and msg in str(e)


def test_scores_projection_and_sort(coll):
    docs = list(coll.find({"$text": {"$search": "coffee"}}, {"score": {"$meta": "textScore"}})
                .sort([("score", {"$meta": "textScore"})]))
    assert [d["_id"] for d in docs] == [1, 2]
    # MongoDB's formula: title "Coffee shop" 10 * (0.5*1/2 + 0.5); body [best coffe town] 1 * (0.5/3 + 0.5)
    assert math.isclose(docs[0]["score"], 10 * 0.75 + (0.5 / 3 + 0.5))
    assert math.isclose(docs[1]["score"], 0.5 / 4 + 0.5)
    assert set(docs[0]) == {"_id", "title", "body", "n", "score"}          # $meta alone keeps every field
    inc = coll.find_one({"$text": {"$search": "tea"}}, {"title": 1, "s": {"$meta": "textScore"}})
    assert set(inc) == {"_id", "title", "s"} and math.isclose(inc["s"], 10 * 1.1 + 0.625)
    exc = coll.find_one({"$text": {"$search": "tea"}}, {"body": 0, "s": {"$meta": "textScore"}})
    assert "body" not in exc and "title" in exc and exc["s"] > 11
    mixed = list(coll.find({"$text": {"$search": "coffee tea"}}).sort([("s", {"$meta": "textScore"}), ("n", 1)]))
    assert [d["_id"] for d in mixed] == [2, 1]


def test_terms_phrases_negations(coll):
    assert _ids(coll.find({"$text": {"$search": "coffee tea"}})) == [1, 2]
    assert _ids(coll.find({"$text": {"$search": "coffee -tea"}})) == [1]
    assert _ids(coll.find({"$text": {"$search": '"green tea" coffee'}})) == [2]
    assert _ids(coll.find({"$text": {"$search": 'coffee -"coffee beans"'}})) == [1]
    assert _ids(coll.find({"$text": {"$search": "runs"}})) == [5]                  # stemming
    assert _ids(coll.find({"$text": {"$search": "the and in"}})) == []            # stop words only
    assert _ids(coll.find({"$text": {"$search": "-coffee"}})) == []               # negations only
    assert _ids(coll.find({"$text": {"$search": "coffee"}, "n": {"$gt": 1}})) == [2]


def test_case_diacritics_languages(coll):
    assert _ids(coll.find({"$text": {"$search": "NAIVE"}})) == [6]                # case and diacritics folded
    assert _ids(coll.find({"$text": {"$search": "naïve", "$diacriticSensitive": True}})) == [6]
    assert _ids(coll.find({"$text": {"$search": "naive", "$diacriticSensitive": True}})) == []
    assert _ids(coll.find({"$text": {"$search": "résumé"}})) == [6]
    assert _ids(coll.find({"$text": {"$search": "CAFE", "$language": "fr"}})) == [4]   # French stems
    assert _ids(coll.find({"$text": {"$search": "cafe"}})) == []                  # English "cafe" is not "caf"
    assert _ids(coll.find({"$text": {"$search": "coffee", "$caseSensitive": True}})) == [1, 2]
    assert _ids(coll.find({"$text": {"$search": "Coffee", "$caseSensitive": True}})) == [1]
    assert _ids(coll.find({"$text": {"$search": "runs", "$language": "none"}})) == []   # no stemming
    assert _ids(coll.find({"$text": {"$search": "run", "$language": "none"}})) == [5]


@pytest.mark.parametrize("flt, code, msg", [
    ({"$text": "x"}, 2, "$text expects an object"),
    ({"$text": {}}, 4, "$search"),
    ({"$text": {"$search": 1}}, 14, "Expected string"),
    ({"$text": {"$search": "x", "$caseSensitive": 1}}, 14, "Expected bool"),
    ({"$text": {"$search": "x", "$foo": 1}}, 2, "extra fields in $text"),
    ({"$text": {"$search": "x", "$language": "klingon"}}, 2, "unsupported language"),
    ({"a": {"$elemMatch": {"$text": {"$search": "x"}}}}, 2, "top-level"),
    ({"$or": [{"$text": {"$search": "x"}}, {"n": 1}]}, 291, "TEXT under OR"),
])
def test_query_errors(coll, flt, code, msg):
    e = _code(lambda: list(coll.find(flt)))
    assert e.code == code and msg in str(e)


def test_no_index_and_missing_metadata(db):
    db.plain.insert_one({"_id": 1, "t": "coffee"})
    e = _code(lambda: list(db.plain.find({"$text": {"$search": "coffee"}})))
    assert e.code == 27 and "text index required for $text query" in str(e)
    e = _code(lambda: list(db.plain.find({}, {"s": {"$meta": "textScore"}})))
    assert e.code == 40218
    e = _code(lambda: list(db.plain.find({}).sort([("s", {"$meta": "textScore"})])))
    assert e.code == 40218


def test_or_with_indexed_branch(coll):
    coll.create_index("n")
    docs = list(coll.find({"$or": [{"$text": {"$search": "coffee"}}, {"n": 5}]}, {"s": {"$meta": "textScore"}}))
    assert sorted(d["_id"] for d in docs) == [1, 2, 5]
    assert all(d["s"] > 0 for d in docs if d["_id"] != 5)


def test_aggregation(coll):
    out = list(coll.aggregate([{"$match": {"$text": {"$search": "coffee tea"}}},
                               {"$project": {"title": 1, "score": {"$meta": "textScore"}}},
                               {"$sort": {"score": {"$meta": "textScore"}, "title": 1}}]))
    assert [d["_id"] for d in out] == [2, 1] and out[0]["score"] > out[1]["score"]
    out = list(coll.aggregate([{"$match": {"$text": {"$search": "coffee tea"}}}, {"$sort": {"n": -1}}]))
    assert [d["_id"] for d in out] == [2, 1]                        # plain sorts read MetaDoc documents
    out = list(coll.aggregate([{"$match": {"$text": {"$search": "coffee"}}},
                               {"$addFields": {"s": {"$meta": "textScore"}}}, {"$match": {"s": {"$gt": 5}}}]))
    assert [d["_id"] for d in out] == [1]
    e = _code(lambda: list(coll.aggregate([{"$match": {"n": 1}}, {"$addFields": {"m": 1}},
                                           {"$match": {"$text": {"$search": "x"}}}])))
    assert e.code == 17313
    e = _code(lambda: list(coll.aggregate([{"$match": {"$text": {"$search": "coffee"}}},
                                           {"$group": {"_id": "$n"}}, {"$sort": {"s": {"$meta": "textScore"}}}])))
    assert e.code == 40218


def test_writes_count_explain(coll):
    assert coll.count_documents({"$text": {"$search": "coffee"}}) == 2
    r = coll.update_many({"$text": {"$search": "coffee"}}, {"$set": {"hit": True}})
    assert r.modified_count == 2
    coll.update_one({"_id": 3}, {"$set": {"body": "instant coffee"}})            # the index follows updates
    assert _ids(coll.find({"$text": {"$search": "coffee"}})) == [1, 2, 3]
    plan = coll.find({"$text": {"$search": "coffee"}}).explain()
    assert "title_text_body_text" in str(plan)
    assert coll.delete_many({"$text": {"$search": "instant"}}).deleted_count == 1
    assert _ids(coll.find({"$text": {"$search": "coffee"}})) == [1, 2]


def test_wildcard_and_language_override(db):
    c = db.wild
    c.insert_many([{"_id": 1, "a": {"b": "swimming pools"}, "tags": ["blue", "sky"]},
                   {"_id": 2, "idioma": "spanish", "x": "corriendo rápido"},
                   {"_id": 3, "x": 5, "language": "should not be indexed by the wildcard"}])
    c.create_index([("$**", "text")], language_override="idioma")
    assert _ids(c.find({"$text": {"$search": "swim"}})) == [1]
    assert _ids(c.find({"$text": {"$search": "sky"}})) == [1]
    assert _ids(c.find({"$text": {"$search": "corr", "$language": "spanish"}})) == [2]   # Spanish stems
    assert _ids(c.find({"$text": {"$search": "spanish"}})) == []      # the override field is not text
    assert _ids(c.find({"$text": {"$search": "indexed"}})) == [3]     # "language" is a plain field here


def test_flush_and_restart(tmp_path):
    from pymongo import MongoClient

    from tests.serverutil import ServerProcess
    srv = ServerProcess(str(tmp_path / "lake")).start()
    try:
        cl = MongoClient(srv.url, serverSelectionTimeoutMS=10000)
        c = cl.t.docs
        c.insert_many([{"_id": i, "t": f"word{i % 7} common"} for i in range(200)])
        c.create_index([("t", "text")])
        before = {d["_id"]: d["s"] for d in c.find({"$text": {"$search": "word3"}}, {"s": {"$meta": "textScore"}})}
        cl.admin.command("fsync")
        c.insert_one({"_id": 1000, "t": "word3 again"})
        cl.close()
        srv.stop()
        srv.start()
        cl = MongoClient(srv.url, serverSelectionTimeoutMS=10000)
        after = {d["_id"]: d["s"] for d in cl.t.docs.find({"$text": {"$search": "word3"}},
                                                          {"s": {"$meta": "textScore"}})}
        assert len(before) == 29 and set(after) == set(before) | {1000}
        assert all(math.isclose(after[k], v) for k, v in before.items())
        cl.close()
    finally:
        srv.stop()


def test_language_override_values_are_checked_on_write(coll):
    e = _code(lambda: coll.insert_one({"_id": 50, "title": "x", "language": "klingon"}))
    assert e.code == 17262 and "language override unsupported: klingon" in str(e)
    e = _code(lambda: coll.update_one({"_id": 1}, {"$set": {"language": 5}}))
    assert e.code == 17261
    coll.insert_one({"_id": 51, "title": "corriendo", "language": "es"})
    assert _ids(coll.find({"$text": {"$search": "corr", "$language": "spanish"}})) == [51]


def test_compound_suffix_and_nested_and(db):
    c = db.comp
    c.insert_many([{"_id": 1, "t": "apple pie", "z": 1}, {"_id": 2, "t": "apple tart", "z": 2}])
    c.create_index([("t", "text"), ("z", 1)])
    ix = next(i for i in c.list_indexes() if i["name"] == "t_text_z_1")
    assert list(ix["key"].items()) == [("_fts", "text"), ("_ftsx", 1), ("z", 1)]
    assert _ids(c.find({"$text": {"$search": "apple"}})) == [1, 2]
    assert _ids(c.find({"$and": [{"$text": {"$search": "apple"}}, {"z": 2}], "t": {"$exists": True}})) == [2]
    assert _ids(c.find({"$text": {"$search": "apple -tart"}, "z": {"$in": [1, 2]}})) == [1]
