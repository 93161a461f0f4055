"""Update operators applied to documents: table-driven from MongoDB's documented behaviour."""
from __future__ import annotations

import datetime as dt

import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.timestamp import Timestamp

from mongolake.query.docpath import identical
from mongolake.query.update import parse_update

NOW = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.timezone.utc)

# (update, input document, expected document); the expected document is compared
# with BSON type and field-order sensitivity (identical()).
CASES = [
    # $set
    ({"$set": {"a": 2}}, {"_id": 1, "a": 1, "b": 1}, {"_id": 1, "a": 2, "b": 1}),
    ({"$set": {"b": 1, "a": 2}}, {"_id": 1, "z": 0}, {"_id": 1, "z": 0, "a": 2, "b": 1}),  # new fields sorted
    ({"$set": {"a.b": 1, "a.c": 2}}, {"_id": 1}, {"_id": 1, "a": {"b": 1, "c": 2}}),
    ({"$set": {"a.b.c": 1}}, {"_id": 1, "a": {"x": 1}}, {"_id": 1, "a": {"x": 1, "b": {"c": 1}}}),
    ({"$set": {"a.2": 5}}, {"_id": 1, "a": [1]}, {"_id": 1, "a": [1, None, 5]}),
    ({"$set": {"a.1.b": 5}}, {"_id": 1, "a": [1]}, {"_id": 1, "a": [1, {"b": 5}]}),
    ({"$set": {"a.0": 9}}, {"_id": 1, "a": [1, 2]}, {"_id": 1, "a": [9, 2]}),
    ({"$set": {"a.0.b": 9}}, {"_id": 1, "a": [{"b": 1}, {"b": 2}]}, {"_id": 1, "a": [{"b": 9}, {"b": 2}]}),
    ({"$set": {"a.x": 1}}, {"_id": 1, "a": {}}, {"_id": 1, "a": {"x": 1}}),
    ({"$set": {"a": {"b": [1, {"c": 2}]}}}, {"_id": 1}, {"_id": 1, "a": {"b": [1, {"c": 2}]}}),
    ({"$set": {"a.b": 1}}, {"_id": 1, "a": None}, None),  # error case handled elsewhere; marker
    # $setOnInsert is a no-op for updates
    ({"$setOnInsert": {"a": 1}}, {"_id": 1}, {"_id": 1}),
    # $unset
    ({"$unset": {"a": ""}}, {"_id": 1, "a": 1, "b": 2}, {"_id": 1, "b": 2}),
    ({"$unset": {"a.b": 1}}, {"_id": 1, "a": {"b": 1, "c": 2}}, {"_id": 1, "a": {"c": 2}}),
    ({"$unset": {"a.1": 1}}, {"_id": 1, "a": [1, 2, 3]}, {"_id": 1, "a": [1, None, 3]}),
    ({"$unset": {"x": 1, "a.b.c": 1}}, {"_id": 1, "a": 5}, {"_id": 1, "a": 5}),  # missing / non-viable: no-op
    # $inc / $mul
    ({"$inc": {"a": 1}}, {"_id": 1, "a": 1}, {"_id": 1, "a": 2}),
    ({"$inc": {"a": -2.5}}, {"_id": 1, "a": 1}, {"_id": 1, "a": -1.5}),
    ({"$inc": {"a": 1}}, {"_id": 1}, {"_id": 1, "a": 1}),
    ({"$inc": {"a": Int64(1)}}, {"_id": 1}, {"_id": 1, "a": Int64(1)}),
    ({"$inc": {"a": 1}}, {"_id": 1, "a": 2147483647}, {"_id": 1, "a": Int64(2147483648)}),
    ({"$inc": {"a": 1}}, {"_id": 1, "a": Int64(5)}, {"_id": 1, "a": Int64(6)}),
    ({"$inc": {"a": Decimal128("1.5")}}, {"_id": 1, "a": 1}, {"_id": 1, "a": Decimal128("2.5")}),
    ({"$inc": {"a.b": 1}}, {"_id": 1, "a": {"b": 1}}, {"_id": 1, "a": {"b": 2}}),
    ({"$mul": {"a": 2}}, {"_id": 1, "a": 3}, {"_id": 1, "a": 6}),
    ({"$mul": {"a": 1.5}}, {"_id": 1, "a": 2}, {"_id": 1, "a": 3.0}),
    ({"$mul": {"a": 2}}, {"_id": 1}, {"_id": 1, "a": 0}),
    ({"$mul": {"a": Int64(2)}}, {"_id": 1}, {"_id": 1, "a": Int64(0)}),
    ({"$mul": {"a": 2.0}}, {"_id": 1}, {"_id": 1, "a": 0.0}),
    ({"$mul": {"a": 65536}}, {"_id": 1, "a": 65536}, {"_id": 1, "a": Int64(2**32)}),
    # $min / $max
    ({"$min": {"a": 1}}, {"_id": 1, "a": 5}, {"_id": 1, "a": 1}),
    ({"$min": {"a": 9}}, {"_id": 1, "a": 5}, {"_id": 1, "a": 5}),
    ({"$max": {"a": 9}}, {"_id": 1, "a": 5}, {"_id": 1, "a": 9}),
    ({"$max": {"a": "x"}}, {"_id": 1, "a": 5}, {"_id": 1, "a": "x"}),  # strings sort after numbers
    ({"$min": {"a": None}}, {"_id": 1, "a": 5}, {"_id": 1, "a": None}),
    ({"$max": {"a": 3}}, {"_id": 1}, {"_id": 1, "a": 3}),
    ({"$min": {"a": 5.0}}, {"_id": 1, "a": 5}, {"_id": 1, "a": 5}),  # equal value: unchanged
    # $currentDate
    ({"$currentDate": {"a": True}}, {"_id": 1}, {"_id": 1, "a": NOW}),
    ({"$currentDate": {"a": {"$type": "date"}}}, {"_id": 1, "a": 1}, {"_id": 1, "a": NOW}),
    ({"$currentDate": {"a": {"$type": "timestamp"}}}, {"_id": 1}, {"_id": 1, "a": Timestamp(77, 3)}),
    # $rename
    ({"$rename": {"a": "b"}}, {"_id": 1, "a": 1, "c": 2}, {"_id": 1, "c": 2, "b": 1}),
    ({"$rename": {"a": "c"}}, {"_id": 1, "a": 1, "c": 2}, {"_id": 1, "c": 1}),
    ({"$rename": {"a.b": "x.y"}}, {"_id": 1, "a": {"b": 1, "c": 2}}, {"_id": 1, "a": {"c": 2}, "x": {"y": 1}}),
    ({"$rename": {"missing": "b"}}, {"_id": 1, "a": 1}, {"_id": 1, "a": 1}),
    ({"$rename": {"a": "b"}}, {"_id": 1, "a": [1, 2]}, {"_id": 1, "b": [1, 2]}),
    # $bit
    ({"$bit": {"a": {"and": 10}}}, {"_id": 1, "a": 13}, {"_id": 1, "a": 8}),
    ({"$bit": {"a": {"or": 5}}}, {"_id": 1, "a": 1}, {"_id": 1, "a": 5}),
    ({"$bit": {"a": {"xor": 5}}}, {"_id": 1, "a": 1}, {"_id": 1, "a": 4}),
    ({"$bit": {"a": {"or": Int64(1)}}}, {"_id": 1, "a": 2}, {"_id": 1, "a": Int64(3)}),
    ({"$bit": {"a": {"or": 6, "and": 3}}}, {"_id": 1}, {"_id": 1, "a": 2}),
    # $push
    ({"$push": {"a": 3}}, {"_id": 1, "a": [1, 2]}, {"_id": 1, "a": [1, 2, 3]}),
    ({"$push": {"a": 3}}, {"_id": 1}, {"_id": 1, "a": [3]}),
    ({"$push": {"a": [3]}}, {"_id": 1, "a": []}, {"_id": 1, "a": [[3]]}),
    ({"$push": {"a": {"$each": [3, 4]}}}, {"_id": 1, "a": [1]}, {"_id": 1, "a": [1, 3, 4]}),
    ({"$push": {"a": {"$each": [3, 4], "$position": 0}}}, {"_id": 1, "a": [1, 2]}, {"_id": 1, "a": [3, 4, 1, 2]}),
    ({"$push": {"a": {"$each": [9], "$position": -1}}}, {"_id": 1, "a": [1, 2]}, {"_id": 1, "a": [1, 9, 2]}),
    ({"$push": {"a": {"$each": [9], "$position": -5}}}, {"_id": 1, "a": [1, 2]}, {"_id": 1, "a": [9, 1, 2]}),
    ({"$push": {"a": {"$each": [9], "$position": 7}}}, {"_id": 1, "a": [1, 2]}, {"_id": 1, "a": [1, 2, 9]}),
    ({"$push": {"a": {"$each": [5, 1], "$sort": 1}}}, {"_id": 1, "a": [3]}, {"_id": 1, "a": [1, 3, 5]}),
    ({"$push": {"a": {"$each": [5, 1], "$sort": -1}}}, {"_id": 1, "a": [3]}, {"_id": 1, "a": [5, 3, 1]}),
    ({"$push": {"a": {"$each": [5, 1, 4], "$slice": 2}}}, {"_id": 1, "a": [3]}, {"_id": 1, "a": [3, 5]}),
    ({"$push": {"a": {"$each": [5, 1, 4], "$slice": -2}}}, {"_id": 1, "a": [3]}, {"_id": 1, "a": [1, 4]}),
    ({"$push": {"a": {"$each": [], "$slice": 0}}}, {"_id": 1, "a": [3]}, {"_id": 1, "a": []}),
    # the manual's quizzes example: sort by score descending, keep 3
    ({"$push": {"q": {"$each": [{"wk": 5, "score": 8}, {"wk": 6, "score": 7}, {"wk": 7, "score": 6}],
                      "$sort": {"score": -1}, "$slice": 3}}},
     {"_id": 5, "q": [{"wk": 1, "score": 10}, {"wk": 2, "score": 8}, {"wk": 3, "score": 5}, {"wk": 4, "score": 6}]},
     {"_id": 5, "q": [{"wk": 1, "score": 10}, {"wk": 2, "score": 8}, {"wk": 5, "score": 8}]}),
    ({"$push": {"a": {"$each": [{"b": {"c": 2}}, 7], "$sort": {"b.c": 1}}}}, {"_id": 1, "a": [{"b": {"c": 1}}]},
     {"_id": 1, "a": [7, {"b": {"c": 1}}, {"b": {"c": 2}}]}),  # non-documents sort as {} (null key)
    # $addToSet
    ({"$addToSet": {"a": 2}}, {"_id": 1, "a": [1, 2]}, {"_id": 1, "a": [1, 2]}),
    ({"$addToSet": {"a": 3}}, {"_id": 1, "a": [1, 2]}, {"_id": 1, "a": [1, 2, 3]}),
    ({"$addToSet": {"a": 2.0}}, {"_id": 1, "a": [1, 2]}, {"_id": 1, "a": [1, 2]}),  # 2 == 2.0
    ({"$addToSet": {"a": {"$each": [3, 3, 1, 4]}}}, {"_id": 1, "a": [1]}, {"_id": 1, "a": [1, 3, 4]}),
    ({"$addToSet": {"a": [1, 2]}}, {"_id": 1, "a": [1, 2]}, {"_id": 1, "a": [1, 2, [1, 2]]}),
    ({"$addToSet": {"a": {"$each": [1, 1]}}}, {"_id": 1}, {"_id": 1, "a": [1]}),
    # $pop
    ({"$pop": {"a": 1}}, {"_id": 1, "a": [1, 2, 3]}, {"_id": 1, "a": [1, 2]}),
    ({"$pop": {"a": -1}}, {"_id": 1, "a": [1, 2, 3]}, {"_id": 1, "a": [2, 3]}),
    ({"$pop": {"a": 1}}, {"_id": 1, "a": []}, {"_id": 1, "a": []}),
    ({"$pop": {"a": 1}}, {"_id": 1}, {"_id": 1}),
    # $pull
    ({"$pull": {"a": 2}}, {"_id": 1, "a": [1, 2, 3, 2]}, {"_id": 1, "a": [1, 3]}),
    ({"$pull": {"a": {"$gte": 6}}}, {"_id": 1, "a": [3, 6, 9, 1]}, {"_id": 1, "a": [3, 1]}),
    ({"$pull": {"a": {"$in": ["x", 1]}}}, {"_id": 1, "a": ["x", 1, 2]}, {"_id": 1, "a": [2]}),
    ({"$pull": {"r": {"score": 8, "item": "B"}}},
     {"_id": 1, "r": [{"item": "A", "score": 5}, {"item": "B", "score": 8, "x": 1}]},
     {"_id": 1, "r": [{"item": "A", "score": 5}]}),  # a query on the elements, not exact equality
    ({"$pull": {"r": {"answers": {"$elemMatch": {"q": 2, "a": {"$gte": 8}}}}}},
     {"_id": 1, "r": [{"answers": [{"q": 2, "a": 9}]}, {"answers": [{"q": 2, "a": 1}]}]},
     {"_id": 1, "r": [{"answers": [{"q": 2, "a": 1}]}]}),
    ({"$pull": {"a": [1, 2]}}, {"_id": 1, "a": [[1, 2], [2, 1], 1]}, {"_id": 1, "a": [[2, 1], 1]}),
    ({"$pull": {"a": {}}}, {"_id": 1, "a": [{"x": 1}, 2]}, {"_id": 1, "a": [2]}),
    # $pullAll
    ({"$pullAll": {"a": [0, 5]}}, {"_id": 1, "a": [0, 2, 5, 5, 1, 0]}, {"_id": 1, "a": [2, 1]}),
    ({"$pullAll": {"a": [1]}}, {"_id": 1}, {"_id": 1}),
    # several operators in one update, applied in path order
    ({"$inc": {"n": 1}, "$set": {"s": "x"}, "$unset": {"old": ""}}, {"_id": 1, "old": 1, "n": 1},
     {"_id": 1, "n": 2, "s": "x"}),
    # empty operator documents are allowed (MongoDB 5.0+)
    ({"$set": {}}, {"_id": 1, "a": 1}, {"_id": 1, "a": 1}),
]


@pytest.mark.parametrize("spec,doc,expected", [c for c in CASES if c[2] is not None])
def test_operator_cases(spec, doc, expected):
    before = repr(doc)
    res = parse_update(spec).apply(doc, now=NOW, timestamp=Timestamp(77, 3))
    assert identical(res.document, expected), res.document
    assert res.modified == (not identical(doc, expected))
    assert repr(doc) == before  # the input is never mutated
    assert res.document is not doc


def test_inc_by_zero_is_a_noop_but_changing_type_is_not():
    doc = {"_id": 1, "a": 5}
    assert not parse_update({"$inc": {"a": 0}}).apply(doc).modified
    res = parse_update({"$inc": {"a": 0.0}}).apply(doc)
    assert res.modified and identical(res.document, {"_id": 1, "a": 5.0})


def test_set_same_value_different_type_is_a_modification():
    assert parse_update({"$set": {"a": 1.0}}).apply({"_id": 1, "a": 1}).modified
    assert not parse_update({"$set": {"a": 1}}).apply({"_id": 1, "a": 1}).modified
    assert not parse_update({"$set": {"a": {"b": 1, "c": 2}}}).apply({"_id": 1, "a": {"b": 1, "c": 2}}).modified
    assert parse_update({"$set": {"a": {"c": 2, "b": 1}}}).apply({"_id": 1, "a": {"b": 1, "c": 2}}).modified


def test_push_sort_always_counts_as_modified():
    # mongod reports a modification whenever $sort is given, even if nothing moved
    assert parse_update({"$push": {"a": {"$each": [], "$sort": 1}}}).apply({"_id": 1, "a": [1, 2]}).modified
    assert not parse_update({"$push": {"a": {"$each": []}}}).apply({"_id": 1, "a": [1, 2]}).modified


def test_set_on_insert_applies_on_insert():
    res = parse_update({"$setOnInsert": {"a": 1}, "$set": {"b": 2}}).apply({"_id": 1}, is_insert=True)
    assert res.document == {"_id": 1, "a": 1, "b": 2}


def test_positional_operator():
    doc = {"_id": 1, "grades": [80, 85, 90]}
    res = parse_update({"$set": {"grades.$": 82}}).apply(doc, position=1)
    assert res.document == {"_id": 1, "grades": [80, 82, 90]}
    doc2 = {"_id": 4, "grades": [{"grade": 80, "mean": 75}, {"grade": 85, "mean": 90}]}
    res = parse_update({"$set": {"grades.$.std": 6}}).apply(doc2, position=1)
    assert res.document["grades"][1] == {"grade": 85, "mean": 90, "std": 6}
    assert parse_update({"$set": {"grades.$.std": 6}}).positional
    assert not parse_update({"$set": {"grades.0.std": 6}}).positional


def test_all_positional_and_array_filters():
    doc = {"_id": 1, "grades": [95, 102, 90, 150]}
    res = parse_update({"$set": {"grades.$[element]": 100}},
                       array_filters=[{"element": {"$gte": 100}}]).apply(doc)
    assert res.document == {"_id": 1, "grades": [95, 100, 90, 100]}
    res = parse_update({"$inc": {"grades.$[]": 10}}).apply(doc)
    assert res.document == {"_id": 1, "grades": [105, 112, 100, 160]}
    doc = {"_id": 1, "g": [{"grade": 80, "mean": 75}, {"grade": 85, "mean": 100}, {"grade": 85, "mean": 100}]}
    res = parse_update({"$set": {"g.$[elem].mean": 100}},
                       array_filters=[{"elem.grade": {"$gte": 85}}]).apply(doc)
    assert not res.modified  # means were already 100
    res = parse_update({"$inc": {"g.$[e].mean": 1}}, array_filters=[{"e.grade": {"$gte": 85}, "e.mean": 100}]).apply(doc)
    assert [x["mean"] for x in res.document["g"]] == [75, 101, 101]


def test_nested_array_filters():
    doc = {"_id": 1, "a": [{"b": [1, 5, 9]}, {"b": [7]}]}
    res = parse_update({"$set": {"a.$[].b.$[x]": 0}}, array_filters=[{"x": {"$gt": 4}}]).apply(doc)
    assert res.document == {"_id": 1, "a": [{"b": [1, 0, 0]}, {"b": [0]}]}


def test_all_positional_and_identifier_on_same_element_merge():
    doc = {"_id": 1, "a": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}
    res = parse_update({"$set": {"a.$[].x": 10, "a.$[i].y": 20}}, array_filters=[{"i.x": 2}]).apply(doc)
    assert res.document == {"_id": 1, "a": [{"x": 10, "y": 1}, {"x": 10, "y": 20}]}
    assert res.description["updatedFields"] == {"a": res.document["a"]}  # several elements: whole array


def test_arithmetic_int64_and_decimal_promotion():
    res = parse_update({"$inc": {"a": Int64(1)}}).apply({"_id": 1, "a": 1})
    assert identical(res.document["a"], Int64(2))
    res = parse_update({"$mul": {"a": Decimal128("2")}}).apply({"_id": 1, "a": 1.5})
    assert identical(res.document["a"], Decimal128("3.00000000000000"))
    res = parse_update({"$inc": {"a": 0.5}}).apply({"_id": 1, "a": Int64(1)})
    assert identical(res.document["a"], 1.5)


def test_replacement_keeps_id_and_order():
    res = parse_update({"b": 2, "a": 1}).apply({"_id": 7, "x": 1})
    assert list(res.document.items()) == [("_id", 7), ("b", 2), ("a", 1)]
    assert res.modified and res.description is None
    res = parse_update({"b": 2, "_id": 7}).apply({"_id": 7, "b": 2})
    assert list(res.document) == ["_id", "b"] and not res.modified
    res = parse_update({"_id": 7.0, "a": 1}).apply({"_id": 7})  # 7 == 7.0: allowed
    assert res.document["a"] == 1
    res = parse_update({}).apply({"_id": 7, "a": 1})
    assert res.document == {"_id": 7}


def test_replacement_fills_empty_timestamps():
    res = parse_update({"t": Timestamp(0, 0)}).apply({"_id": 1}, timestamp=Timestamp(10, 1))
    assert res.document["t"] == Timestamp(10, 1)


def test_update_description_like_change_streams():
    doc = {"_id": 1, "a": {"b": 1}, "arr": [1, 2], "gone": 1}
    res = parse_update({"$set": {"a.b": 2, "new.x": 1}, "$push": {"arr": 3}, "$unset": {"gone": 1}}).apply(doc)
    assert res.description == {"updatedFields": {"a.b": 2, "new": {"x": 1}, "arr.2": 3},
                               "removedFields": ["gone"], "truncatedArrays": []}
    res = parse_update({"$pull": {"arr": 1}}).apply(doc)
    assert res.description["updatedFields"] == {"arr": [2]}
    res = parse_update({"$set": {"a.b": 1}}).apply(doc)
    assert not res.modified and res.description == {"updatedFields": {}, "removedFields": [], "truncatedArrays": []}
    res = parse_update({"$rename": {"gone": "here"}}).apply(doc)
    assert res.description["updatedFields"] == {"here": 1} and res.description["removedFields"] == ["gone"]


def test_description_values_are_detached_from_the_document():
    res = parse_update({"$set": {"a.b": 1, "a.c": 2}}).apply({"_id": 1})
    assert res.description["updatedFields"] == {"a": {"b": 1, "c": 2}}
    res.document["a"]["b"] = 99
    assert res.description["updatedFields"]["a"]["b"] == 1


def test_parse_once_apply_many():
    u = parse_update({"$inc": {"n": 1}, "$push": {"log": "x"}})
    docs = [{"_id": i, "n": i} for i in range(3)]
    outs = [u.apply(d).document for d in docs]
    assert outs == [{"_id": i, "n": i + 1, "log": ["x"]} for i in range(3)]
    # the pushed value is copied: changing one output does not change another
    outs[0]["log"].append("y")
    assert outs[1]["log"] == ["x"]
