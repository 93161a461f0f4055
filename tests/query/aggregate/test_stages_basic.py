"""$match, $project, $addFields/$set, $unset, $limit, $skip, $count, $unwind, $replaceRoot, $sample,
$documents, $redact — mostly the MongoDB manual's examples."""
from __future__ import annotations


from tests.query.aggregate._util import fails, run

BOOK = {"_id": 1, "title": "abc123", "isbn": "0001122223334", "author": {"last": "zzz", "first": "aaa"},
        "copies": 5, "lastModified": "2016-07-28"}


def test_match():
    docs = [{"_id": 1, "author": "dave", "score": 80, "views": 100},
            {"_id": 2, "author": "dave", "score": 85, "views": 521},
            {"_id": 3, "author": "ahn", "score": 60, "views": 1000},
            {"_id": 4, "author": "li", "score": 55, "views": 5000}]
    assert [d["_id"] for d in run([{"$match": {"author": "dave"}}], docs)] == [1, 2]
    assert [d["_id"] for d in run([{"$match": {"$or": [{"score": {"$gt": 70, "$lt": 90}},
                                                       {"views": {"$gte": 1000}}]}}], docs)] == [1, 2, 3, 4]
    assert [d["_id"] for d in run([{"$match": {"$expr": {"$gt": ["$views", {"$multiply": ["$score", 10]}]}}}],
                                  docs)] == [3, 4]
    fails([{"$match": 5}], 15959)


def test_project_inclusion_exclusion():
    assert run([{"$project": {"title": 1, "author": 1}}], [BOOK]) == \
        [{"_id": 1, "title": "abc123", "author": {"last": "zzz", "first": "aaa"}}]
    assert run([{"$project": {"_id": 0, "title": 1, "author": 1}}], [BOOK]) == \
        [{"title": "abc123", "author": {"last": "zzz", "first": "aaa"}}]
    assert run([{"$project": {"lastModified": 0}}], [BOOK]) == \
        [{k: v for k, v in BOOK.items() if k != "lastModified"}]
    assert run([{"$project": {"author.first": 0, "lastModified": 0}}], [BOOK])[0]["author"] == {"last": "zzz"}
    assert run([{"$project": {"title": 1, "author.last": 1}}], [BOOK]) == \
        [{"_id": 1, "title": "abc123", "author": {"last": "zzz"}}]
    assert run([{"$project": {"title": 1, "author": {"first": 1}}}], [BOOK]) == \
        [{"_id": 1, "title": "abc123", "author": {"first": "aaa"}}]
    assert run([{"$project": {"_id": 0}}], [{"_id": 1, "a": 2}]) == [{"a": 2}]
    assert run([{"$project": {"_id": 1}}], [{"_id": 1, "a": 2}]) == [{"_id": 1}]


def test_project_computed_fields():
    spec = {"title": 1, "isbn": {"prefix": {"$substr": ["$isbn", 0, 3]}, "group": {"$substr": ["$isbn", 3, 2]},
                                  "publisher": {"$substr": ["$isbn", 5, 4]}, "title": {"$substr": ["$isbn", 9, 3]},
                                  "checkDigit": {"$substr": ["$isbn", 12, 1]}},
            "lastName": "$author.last", "copiesSold": "$copies"}
    assert run([{"$project": spec}], [BOOK]) == [{
        "_id": 1, "title": "abc123",
        "isbn": {"prefix": "000", "group": "11", "publisher": "2222", "title": "333", "checkDigit": "4"},
        "lastName": "zzz", "copiesSold": 5}]
    books = [{"_id": 1, "title": "abc123", "author": {"last": "zzz", "first": "aaa", "middle": ""}},
             {"_id": 2, "title": "Baked Goods", "author": {"last": "xyz", "first": "abc", "middle": "mmm"}}]
    spec = {"title": 1, "author.first": 1, "author.last": 1,
            "author.middle": {"$cond": {"if": {"$eq": ["", "$author.middle"]}, "then": "$$REMOVE",
                                        "else": "$author.middle"}}}
    assert run([{"$project": spec}], books) == [
        {"_id": 1, "title": "abc123", "author": {"last": "zzz", "first": "aaa"}},
        {"_id": 2, "title": "Baked Goods", "author": {"last": "xyz", "first": "abc", "middle": "mmm"}}]
    assert run([{"$project": {"myArray": ["$x", "$y"]}}], [{"_id": 1, "x": 1}]) == [{"_id": 1, "myArray": [1, None]}]
    assert run([{"$project": {"a": {"$literal": 1}, "b": "lit"}}], [{"_id": 1}]) == [{"_id": 1, "a": 1, "b": "lit"}]


def test_project_arrays_of_documents():
    doc = {"_id": 1, "stop": [{"title": "a", "x": 1}, {"title": "b", "x": 2}, 5, [{"title": "c", "x": 3}]]}
    assert run([{"$project": {"stop.title": 1}}], [doc]) == [{"_id": 1, "stop": [{"title": "a"}, {"title": "b"},
                                                                               [{"title": "c"}]]}]
    assert run([{"$project": {"stop.x": 0}}], [doc]) == [{"_id": 1, "stop": [{"title": "a"}, {"title": "b"}, 5,
                                                                           [{"title": "c"}]]}]
    # the inclusion phase drops scalars inside arrays, then the computed field applies to what is left
    assert run([{"$project": {"a.b": {"$literal": 1}}}], [{"_id": 1, "a": [{"c": 1}, 2]}]) == \
        [{"_id": 1, "a": [{"b": 1}]}]
    assert run([{"$project": {"a.b": {"$literal": 1}}}], [{"_id": 1, "a": 5}]) == [{"_id": 1, "a": {"b": 1}}]


def test_project_errors():
    fails([{"$project": {}}], 51272)
    fails([{"$project": {"a": 1, "b": 0}}], 31254)
    fails([{"$project": {"b": 0, "a": 1}}], 31253)
    fails([{"$project": {"a": 0, "b": "$x"}}], 31252)
    fails([{"$project": {"a": 1, "a.b": 1}}], 31250)
    fails([{"$project": {"a": {}}}], 51270)
    fails([{"$project": {"$a": 1}}], 16410)
    fails([{"$project": "a"}], 15969)


def test_add_fields_and_set():
    scores = [{"_id": 1, "student": "Maya", "homework": [10, 5, 10], "quiz": [10, 8], "extraCredit": 0},
              {"_id": 2, "student": "Ryan", "homework": [5, 6, 5], "quiz": [8, 8], "extraCredit": 8}]
    out = run([{"$addFields": {"totalHomework": {"$sum": "$homework"}, "totalQuiz": {"$sum": "$quiz"}}},
               {"$addFields": {"totalScore": {"$add": ["$totalHomework", "$totalQuiz", "$extraCredit"]}}}], scores)
    assert [(d["totalHomework"], d["totalQuiz"], d["totalScore"]) for d in out] == [(25, 18, 43), (16, 16, 40)]
    assert list(out[0]) == ["_id", "student", "homework", "quiz", "extraCredit", "totalHomework", "totalQuiz",
                            "totalScore"]
    vehicles = [{"_id": 1, "type": "car", "specs": {"doors": 4, "wheels": 4}},
                {"_id": 3, "type": "jet ski"}]
    assert run([{"$set": {"specs.fuel_type": "unleaded"}}], vehicles) == [
        {"_id": 1, "type": "car", "specs": {"doors": 4, "wheels": 4, "fuel_type": "unleaded"}},
        {"_id": 3, "type": "jet ski", "specs": {"fuel_type": "unleaded"}}]
    assert run([{"$addFields": {"specs": {"fuel_type": "diesel"}}}], vehicles[:1])[0]["specs"] == \
        {"doors": 4, "wheels": 4, "fuel_type": "diesel"}
    animals = [{"_id": 1, "dogs": 10, "cats": 15}]
    assert run([{"$addFields": {"cats": 20}}], animals) == [{"_id": 1, "dogs": 10, "cats": 20}]
    assert run([{"$addFields": {"_id": "$dogs", "dogs": "$$REMOVE"}}], animals) == [{"_id": 10, "cats": 15}]
    assert run([{"$addFields": {"homework": {"$concatArrays": ["$homework", [7]]}}}], scores[:1])[0]["homework"] == \
        [10, 5, 10, 7]
    assert run([{"$set": {"e": {}}}], [{"_id": 1}]) == [{"_id": 1, "e": {}}]
    assert run([{"$addFields": {"a.b": 1}}], [{"a": [{"x": 1}, {"x": 2}]}]) == [{"a": [{"x": 1, "b": 1},
                                                                                    {"x": 2, "b": 1}]}]


def test_unset():
    assert run([{"$unset": "copies"}], [BOOK])[0].keys() == {"_id", "title", "isbn", "author", "lastModified"}
    assert run([{"$unset": ["isbn", "author.first", "copies"]}], [BOOK])[0] == \
        {"_id": 1, "title": "abc123", "author": {"last": "zzz"}, "lastModified": "2016-07-28"}
    fails([{"$unset": 1}], 31002)
    fails([{"$unset": [1]}], 31120)


def test_limit_skip_count():
    docs = [{"i": i} for i in range(10)]
    assert run([{"$skip": 3}, {"$limit": 2}], docs) == [{"i": 3}, {"i": 4}]
    assert run([{"$count": "passing_scores"}], docs) == [{"passing_scores": 10}]
    assert run([{"$match": {"i": {"$gt": 100}}}, {"$count": "n"}], docs) == []
    fails([{"$limit": 0}], 15958)
    fails([{"$limit": "a"}], 15957)
    fails([{"$skip": -1}], 15956)
    fails([{"$limit": 1.5}], 5107201)
    fails([{"$count": ""}], 40156)
    fails([{"$count": "$a"}], 40158)
    fails([{"$count": "a.b"}], 40160)


CLOTHING = [{"_id": 1, "item": "Shirt", "sizes": ["S", "M", "L"]},
            {"_id": 2, "item": "Shorts", "sizes": []},
            {"_id": 3, "item": "Hat", "sizes": "M"},
            {"_id": 4, "item": "Gloves"},
            {"_id": 5, "item": "Scarf", "sizes": None}]


def test_unwind():
    assert [(d["_id"], d["sizes"]) for d in run([{"$unwind": "$sizes"}], CLOTHING)] == \
        [(1, "S"), (1, "M"), (1, "L"), (3, "M")]
    out = run([{"$unwind": {"path": "$sizes", "includeArrayIndex": "arrayIndex"}}], CLOTHING)
    assert [(d["_id"], d["sizes"], d["arrayIndex"]) for d in out] == \
        [(1, "S", 0), (1, "M", 1), (1, "L", 2), (3, "M", None)]
    out = run([{"$unwind": {"path": "$sizes", "preserveNullAndEmptyArrays": True}}], CLOTHING)
    assert out == [{"_id": 1, "item": "Shirt", "sizes": "S"}, {"_id": 1, "item": "Shirt", "sizes": "M"},
                   {"_id": 1, "item": "Shirt", "sizes": "L"}, {"_id": 2, "item": "Shorts"},
                   {"_id": 3, "item": "Hat", "sizes": "M"}, {"_id": 4, "item": "Gloves"},
                   {"_id": 5, "item": "Scarf", "sizes": None}]
    nested = [{"_id": 1, "a": {"b": [1, 2]}}]
    assert run([{"$unwind": "$a.b"}], nested) == [{"_id": 1, "a": {"b": 1}}, {"_id": 1, "a": {"b": 2}}]
    fails([{"$unwind": "sizes"}], 28818)
    fails([{"$unwind": {"path": "$a", "foo": 1}}], 28811)
    fails([{"$unwind": {"path": "$a", "preserveNullAndEmptyArrays": 1}}], 28809)
    fails([{"$unwind": 5}], 15981)


def test_replace_root_and_with():
    docs = [{"_id": 1, "name": "Arlene", "age": 34, "pets": {"dogs": 2, "cats": 1}},
            {"_id": 2, "name": "Sam", "age": 41, "pets": {"cats": 1, "fish": 3}}]
    assert run([{"$replaceRoot": {"newRoot": "$pets"}}], docs) == [{"dogs": 2, "cats": 1}, {"cats": 1, "fish": 3}]
    assert run([{"$replaceWith": {"$mergeObjects": [{"dogs": 0, "cats": 0, "birds": 0, "fish": 0}, "$pets"]}}],
               docs)[0] == {"dogs": 2, "cats": 1, "birds": 0, "fish": 0}
    assert run([{"$replaceWith": {"name": "$name", "n": 1}}], docs[:1]) == [{"name": "Arlene", "n": 1}]
    fails([{"$replaceRoot": {"newRoot": "$nope"}}], 40228, [{"a": 1}])
    fails([{"$replaceRoot": {"root": "$a"}}], 40415)


def test_sample_and_documents():
    docs = [{"i": i} for i in range(100)]
    out = run([{"$sample": {"size": 10}}], docs)
    assert len(out) == 10 and len({d["i"] for d in out}) == 10 and all(d in docs for d in out)
    assert len(run([{"$sample": {"size": 500}}], docs)) == 100
    fails([{"$sample": {"size": -1}}], 28747)
    fails([{"$sample": {}}], 28749)
    assert run([{"$documents": [{"x": 10}, {"x": 2}, {"x": 5}]}, {"$sort": {"x": 1}}], [{"ignored": 1}]) == \
        [{"x": 2}, {"x": 5}, {"x": 10}]
    assert run([{"$documents": {"$map": {"input": {"$range": [0, 3]}, "in": {"n": "$$this"}}}}], []) == \
        [{"n": 0}, {"n": 1}, {"n": 2}]
    fails([{"$documents": 5}], 5858203)


def test_redact():
    doc = {"_id": 1, "title": "123 Department Report", "tags": ["G", "STLW"], "year": 2014,
           "subsections": [{"subtitle": "Section 1: Overview", "tags": ["SI", "G"], "content": "Section 1"},
                           {"subtitle": "Section 2: Analysis", "tags": ["STLW"], "content": "Section 2"},
                           {"subtitle": "Section 3: Budgeting", "tags": ["TK"],
                            "content": {"text": "Section 3", "tags": ["HCS"]}}]}
    user_access = ["STLW", "G"]
    pipeline = [{"$match": {"year": 2014}},
                {"$redact": {"$cond": {"if": {"$gt": [{"$size": {"$setIntersection": ["$tags", user_access]}}, 0]},
                                       "then": "$$DESCEND", "else": "$$PRUNE"}}}]
    out = run(pipeline, [doc])
    assert [s["subtitle"] for s in out[0]["subsections"]] == ["Section 1: Overview", "Section 2: Analysis"]
    assert run([{"$redact": "$$KEEP"}], [doc]) == [doc]
    assert run([{"$redact": "$$PRUNE"}], [doc]) == []
    fails([{"$redact": "x"}], 17053, [doc])
