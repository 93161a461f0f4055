"""Array, set and object operators."""
from __future__ import annotations

from bson.int64 import Int64

from mongolake.query.bsonorder import MISSING

from tests.query._exprutil import ev, fails


def test_size_elem_first_last_isarray():
    assert ev({"$size": "$colors"}, {"colors": ["blue", "black"]}) == 2
    fails({"$size": "$colors"}, 17124, {})
    assert ev({"$arrayElemAt": [[1, 2, 3], 0]}) == 1
    assert ev({"$arrayElemAt": [[1, 2, 3], -1]}) == 3
    assert ev({"$arrayElemAt": [[1, 2, 3], 15]}) is MISSING
    assert ev({"$arrayElemAt": ["$nope", 0]}) is None
    fails({"$arrayElemAt": ["abc", 0]}, 28689)
    fails({"$arrayElemAt": [[1], 1.5]}, 28691)
    assert ev({"$first": [[1, 2]]}) == 1 and ev({"$last": [[1, 2]]}) == 2
    assert ev({"$first": [[]]}) is MISSING
    assert ev({"$first": "$nope"}) is None
    fails({"$last": "abc"}, 28689)
    assert ev({"$isArray": [[1]]}) is True and ev({"$isArray": ["$a"]}, {"a": 1}) is False


def test_in_slice_concat_reverse():
    assert ev({"$in": ["bananas", "$in_stock"]}, {"in_stock": ["apples", "bananas"]}) is True
    assert ev({"$in": [1, [1.0]]}) is True
    e = fails({"$in": ["x", "$missing"]}, 40081)
    assert "found: missing" in e.message
    assert ev({"$slice": [[1, 2, 3], 1, 1]}) == [2]
    assert ev({"$slice": [[1, 2, 3], -2]}) == [2, 3]
    assert ev({"$slice": [[1, 2, 3], 15, 2]}) == []
    assert ev({"$slice": [[1, 2, 3], -15, 2]}) == [1, 2]
    assert ev({"$slice": [[1, 2, 3], 2]}) == [1, 2]
    fails({"$slice": [[1], 0, 0]}, 28729)
    assert ev({"$concatArrays": [["hello", " "], ["world"]]}) == ["hello", " ", "world"]
    assert ev({"$concatArrays": [[1], "$nope"]}) is None
    fails({"$concatArrays": [[1], 2]}, 28664)
    assert ev({"$reverseArray": [[1, 2, 3]]}) == [3, 2, 1]
    assert ev({"$reverseArray": "$nope"}) is None


def test_range_index_zip():
    assert ev({"$range": [0, 10, 2]}) == [0, 2, 4, 6, 8]
    assert ev({"$range": [10, 0, -2]}) == [10, 8, 6, 4, 2]
    assert ev({"$range": [0, 10, -2]}) == []
    fails({"$range": [0, 1, 0]}, 34449)
    fails({"$range": [0.5, 1]}, 34444)
    assert ev({"$indexOfArray": [["a", "abc", "b"], "b"]}) == 2
    assert ev({"$indexOfArray": [[1, 2, 3, 2], 2, 2]}) == 3
    assert ev({"$indexOfArray": [[1, 2], 5]}) == -1
    assert ev({"$indexOfArray": [None, 5]}) is None
    fails({"$indexOfArray": ["x", 5]}, 40090)
    m = [[1, 2, 3], [4, 5, 6]]
    assert ev({"$zip": {"inputs": [{"$arrayElemAt": [m, 0]}, {"$arrayElemAt": [m, 1]}]}}) == [[1, 4], [2, 5], [3, 6]]
    assert ev({"$zip": {"inputs": [[1, 2], [3]], "useLongestLength": True, "defaults": ["a", "b"]}}) == \
        [[1, 3], [2, "b"]]
    assert ev({"$zip": {"inputs": [[1, 2], [3]]}}) == [[1, 3]]
    assert ev({"$zip": {"inputs": [[1], "$nope"]}}) is None
    fails({"$zip": {"inputs": [[1]], "defaults": [1]}}, 34466)


def test_filter_map_reduce():
    items = [{"item_id": 43, "quantity": 2, "price": 10}, {"item_id": 2, "quantity": 1, "price": 240}]
    doc = {"items": items}
    assert ev({"$filter": {"input": "$items", "as": "item", "cond": {"$gte": ["$$item.price", 100]}}}, doc) == \
        [items[1]]
    assert ev({"$filter": {"input": [1, 2, 3, 4], "cond": {"$gt": ["$$this", 1]}, "limit": 2}}) == [2, 3]
    assert ev({"$filter": {"input": None, "cond": True}}) is None
    fails({"$filter": {"input": 1, "cond": True}}, 28651)
    fails({"$filter": {"input": [1], "cond": True, "limit": 0}}, 327391)
    assert ev({"$map": {"input": "$quizzes", "as": "grade", "in": {"$add": ["$$grade", 2]}}},
              {"quizzes": [5, 6, 7]}) == [7, 8, 9]
    assert ev({"$map": {"input": [1, 2], "in": {"$multiply": ["$$this", "$k"]}}}, {"k": 3}) == [3, 6]
    fails({"$map": {"input": 1, "in": 1}}, 16883)
    assert ev({"$reduce": {"input": ["a", "b", "c"], "initialValue": "",
                           "in": {"$concat": ["$$value", "$$this"]}}}) == "abc"
    assert ev({"$reduce": {"input": [1, 2, 3, 4], "initialValue": {"sum": 5, "product": 2},
                           "in": {"sum": {"$add": ["$$value.sum", "$$this"]},
                                  "product": {"$multiply": ["$$value.product", "$$this"]}}}}) == \
        {"sum": 15, "product": 48}
    assert ev({"$reduce": {"input": [[3, 4], [5, 6]], "initialValue": [1, 2],
                           "in": {"$concatArrays": ["$$value", "$$this"]}}}) == [1, 2, 3, 4, 5, 6]
    fails({"$reduce": {"input": [1], "in": 1}}, 40079)


def test_sort_array_and_n_forms():
    team = [{"name": "pat", "age": 30, "address": {"street": "12 Baker St", "city": "London"}},
            {"name": "dallas", "age": 36, "address": {"street": "12 Cowper St", "city": "Palo Alto"}},
            {"name": "charlie", "age": 42, "address": {"street": "12 French St", "city": "New Brunswick"}}]
    doc = {"team": team}
    assert [t["name"] for t in ev({"$sortArray": {"input": "$team", "sortBy": {"name": 1}}}, doc)] == \
        ["charlie", "dallas", "pat"]
    assert [t["age"] for t in ev({"$sortArray": {"input": "$team", "sortBy": {"age": -1}}}, doc)] == [42, 36, 30]
    assert [t["name"] for t in ev({"$sortArray": {"input": "$team", "sortBy": {"address.city": -1}}}, doc)] == \
        ["dallas", "charlie", "pat"]
    assert ev({"$sortArray": {"input": [1, 4, 1, 6, 12, 5], "sortBy": 1}}) == [1, 1, 4, 5, 6, 12]
    assert ev({"$sortArray": {"input": [20, 4, {"a": "Free"}, 6, 21, 5, "Gratis", {"a": None}, {"a": {"sale": True,
              "price": 19}}, 10.23, {"a": "On sale"}], "sortBy": 1}}) == \
        [4, 5, 6, 10.23, 20, 21, "Gratis", {"a": None}, {"a": "Free"}, {"a": "On sale"},
         {"a": {"sale": True, "price": 19}}]
    assert ev({"$sortArray": {"input": [3, 1], "sortBy": -1}}) == [3, 1]
    assert ev({"$firstN": {"n": 2, "input": [3, 1, 2]}}) == [3, 1]
    assert ev({"$lastN": {"n": 2, "input": [3, 1, 2]}}) == [1, 2]
    assert ev({"$maxN": {"n": 2, "input": [3, None, 1, 2]}}) == [3, 2]
    assert ev({"$minN": {"n": 3, "input": [3, None, 1, 2]}}) == [1, 2, 3]
    assert ev({"$firstN": {"n": 2, "input": None}}) is None
    fails({"$firstN": {"n": 0, "input": [1]}}, 5787908)


def test_sets():
    assert sorted(ev({"$setUnion": [["a", "b"], ["b", "c"]]})) == ["a", "b", "c"]
    assert ev({"$setUnion": [[1, 1.0, 2]]}) == [1, 2]
    assert ev({"$setUnion": [[1], None]}) is None
    fails({"$setUnion": [[1], 2]}, 17043)
    assert ev({"$setIntersection": [["a", "b", "c"], ["b", "c", "d"]]}) == ["b", "c"]
    assert ev({"$setIntersection": [[1], []]}) == []
    assert ev({"$setDifference": [["a", "b", "c"], ["b"]]}) == ["a", "c"]
    fails({"$setDifference": [["a"], 1]}, 17049)
    assert ev({"$setEquals": [["a", "b", "a"], ["b", "a"]]}) is True
    assert ev({"$setEquals": [["a"], ["b"]]}) is False
    fails({"$setEquals": [["a"], None]}, 17044)
    assert ev({"$setIsSubset": [["a"], ["a", "b"]]}) is True
    assert ev({"$setIsSubset": [["a", "c"], ["a", "b"]]}) is False
    assert ev({"$anyElementTrue": [[None, False, 0]]}) is False
    assert ev({"$anyElementTrue": [[None, [False]]]}) is True
    assert ev({"$allElementsTrue": [[]]}) is True
    assert ev({"$allElementsTrue": [[1, "x", 0]]}) is False
    fails({"$allElementsTrue": [1]}, 17040)


def test_objects():
    assert ev({"$objectToArray": {"item": "foo", "qty": 25}}) == [{"k": "item", "v": "foo"}, {"k": "qty", "v": 25}]
    assert ev({"$objectToArray": "$nope"}) is None
    fails({"$objectToArray": [[1]]}, 40390)
    assert ev({"$arrayToObject": [[["item", "abc123"], ["qty", 25]]]}) == {"item": "abc123", "qty": 25}
    assert ev({"$arrayToObject": [[{"k": "item", "v": "abc123"}, {"k": "qty", "v": 25}]]}) == \
        {"item": "abc123", "qty": 25}
    assert ev({"$arrayToObject": [[["a", 1], ["a", 2]]]}) == {"a": 2}
    fails({"$arrayToObject": [[["a", 1], {"k": "b", "v": 2}]]}, 40391)
    fails({"$arrayToObject": [[[1, 2]]]}, 40395)
    assert ev({"$mergeObjects": [{"a": 1}, None, {"a": 2, "b": 3}]}) == {"a": 2, "b": 3}
    fails({"$mergeObjects": [{"a": 1}, 5]}, 40400)
    doc = {"price.usd": 45, "$price": 12, "a": {"b": 1}}
    assert ev({"$getField": "price.usd"}, doc) == 45
    assert ev({"$getField": {"field": {"$literal": "$price"}, "input": "$$CURRENT"}}, doc) == 12
    assert ev({"$getField": {"field": "b", "input": "$a"}}, doc) == 1
    assert ev({"$getField": {"field": "zz", "input": "$a"}}, doc) is MISSING
    assert ev({"$setField": {"field": "price.usd", "input": "$$ROOT", "value": 1}}, doc)["price.usd"] == 1
    assert "a" not in ev({"$setField": {"field": "a", "input": "$$ROOT", "value": "$$REMOVE"}}, doc)
    assert ev({"$unsetField": {"field": "a", "input": {"a": 1, "b": 2}}}) == {"b": 2}
    fails({"$getField": {"field": "$x"}}, 5654601)


def test_accumulator_expression_forms():
    doc = {"quizzes": [10, 6, 7], "labs": [5, 8], "final": 80, "midterm": 75}
    assert ev({"$sum": "$quizzes"}, doc) == 23
    assert ev({"$avg": "$labs"}, doc) == 6.5
    assert ev({"$max": ["$final", "$midterm"]}, doc) == 80
    assert ev({"$min": "$quizzes"}, doc) == 6
    assert ev({"$sum": ["$final", "$midterm", "x"]}, doc) == 155
    assert ev({"$sum": "$nope"}, doc) == 0
    assert ev({"$avg": "$nope"}, doc) is None
    assert ev({"$max": [None, "$nope"]}, doc) is None
    assert ev({"$sum": [Int64(1), 2]}) == 3
    assert abs(ev({"$stdDevPop": [[1, 2, 3, 4]]}) - 1.118033988749895) < 1e-12
    assert ev({"$stdDevSamp": [[1]]}) is None
    assert ev({"$median": {"input": [1, 2, 3, 4, 5], "method": "approximate"}}) == 3.0
    assert ev({"$percentile": {"input": [1, 2, 3, 4], "p": [0.5, 1.0], "method": "approximate"}}) == [2.0, 4.0]
    assert ev({"$percentile": {"input": [], "p": [0.5], "method": "approximate"}}) == [None]
