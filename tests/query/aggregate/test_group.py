"""$group with every accumulator, $bucket, $bucketAuto and $sortByCount."""
from __future__ import annotations

import datetime as dt
import math

from bson.decimal128 import Decimal128

from tests.query.aggregate._util import fails, run

UTC = dt.timezone.utc
D = Decimal128


def _sales():
    rows = [(1, "abc", "10", 2, "2014-03-01T08:00:00"), (2, "jkl", "20", 1, "2014-03-01T09:00:00"),
            (3, "xyz", "5", 10, "2014-03-15T09:00:00"), (4, "xyz", "5", 20, "2014-04-04T11:21:39.736"),
            (5, "abc", "10", 10, "2014-04-04T21:23:13.331"), (6, "def", "7.5", 5, "2015-06-04T05:08:13"),
            (7, "def", "7.5", 10, "2015-09-10T08:43:00"), (8, "abc", "10", 5, "2016-02-06T20:20:13")]
    return [{"_id": i, "item": it, "price": D(p), "quantity": q,
             "date": dt.datetime.fromisoformat(d).replace(tzinfo=UTC)} for i, it, p, q, d in rows]


def test_group_by_item_with_having():
    out = run([{"$group": {"_id": "$item", "totalSaleAmount": {"$sum": {"$multiply": ["$price", "$quantity"]}}}},
               {"$match": {"totalSaleAmount": {"$gte": 100}}}, {"$sort": {"totalSaleAmount": -1}}], _sales())
    assert out == [{"_id": "abc", "totalSaleAmount": D("170")}, {"_id": "xyz", "totalSaleAmount": D("150")},
                   {"_id": "def", "totalSaleAmount": D("112.5")}]


def test_group_by_day_and_null():
    out = run([{"$match": {"date": {"$gte": dt.datetime(2014, 1, 1, tzinfo=UTC),
                                    "$lt": dt.datetime(2015, 1, 1, tzinfo=UTC)}}},
               {"$group": {"_id": {"$dateToString": {"format": "%Y-%m-%d", "date": "$date"}},
                           "totalSaleAmount": {"$sum": {"$multiply": ["$price", "$quantity"]}},
                           "averageQuantity": {"$avg": "$quantity"}, "count": {"$sum": 1}}},
               {"$sort": {"totalSaleAmount": -1}}], _sales())
    assert out == [
        {"_id": "2014-04-04", "totalSaleAmount": D("200"), "averageQuantity": 15.0, "count": 2},
        {"_id": "2014-03-15", "totalSaleAmount": D("50"), "averageQuantity": 10.0, "count": 1},
        {"_id": "2014-03-01", "totalSaleAmount": D("40"), "averageQuantity": 1.5, "count": 2}]
    out = run([{"$group": {"_id": None, "totalSaleAmount": {"$sum": {"$multiply": ["$price", "$quantity"]}},
                           "averageQuantity": {"$avg": "$quantity"}, "count": {"$count": {}}}}], _sales())
    assert out == [{"_id": None, "totalSaleAmount": D("452.5"), "averageQuantity": 7.875, "count": 8}]
    assert run([{"$group": {"_id": "$item"}}, {"$sort": {"_id": 1}}], _sales()) == \
        [{"_id": "abc"}, {"_id": "def"}, {"_id": "jkl"}, {"_id": "xyz"}]
    assert run([{"$group": {"_id": None, "n": {"$sum": 1}}}], []) == []


def test_group_keys_use_value_equality():
    docs = [{"k": 1}, {"k": 1.0}, {"k": D("1")}, {"k": None}, {}, {"k": {"a": 1}}, {"k": {"a": 1.0}}]
    out = run([{"$group": {"_id": "$k", "n": {"$sum": 1}}}], docs)
    assert [(o["_id"], o["n"]) for o in out] == [(1, 3), (None, 2), ({"a": 1}, 2)]
    out = run([{"$group": {"_id": {"a": "$a", "b": "$b"}, "n": {"$sum": 1}}}], [{"a": 1}, {"a": 1, "b": None}])
    assert out == [{"_id": {"a": 1}, "n": 1}, {"_id": {"a": 1, "b": None}, "n": 1}]


def test_simple_accumulators():
    docs = [{"g": 1, "v": 3, "s": "b"}, {"g": 1, "v": None, "s": "a"}, {"g": 1, "v": 5, "s": "c"},
            {"g": 1, "s": "a"}]
    out = run([{"$group": {"_id": "$g", "min": {"$min": "$v"}, "max": {"$max": "$v"}, "first": {"$first": "$v"},
                           "last": {"$last": "$v"}, "push": {"$push": "$v"}, "set": {"$addToSet": "$s"},
                           "avg": {"$avg": "$v"}, "sum": {"$sum": "$v"}, "cnt": {"$count": {}}}}], docs)[0]
    assert out["min"] == 3 and out["max"] == 5
    assert out["first"] == 3 and out["last"] is None  # the last document has no v: null
    assert out["push"] == [3, None, 5]  # missing values are not pushed, nulls are
    assert sorted(out["set"]) == ["a", "b", "c"]
    assert out["avg"] == 4.0 and out["sum"] == 8 and out["cnt"] == 4
    assert run([{"$group": {"_id": None, "m": {"$min": "$x"}, "a": {"$avg": "$x"}}}], [{}]) == \
        [{"_id": None, "m": None, "a": None}]
    out = run([{"$group": {"_id": None, "m": {"$mergeObjects": "$q"}}}],
              [{"q": {"a": 1, "b": 1}}, {"q": None}, {"q": {"b": 2, "c": 3}}])
    assert out == [{"_id": None, "m": {"a": 1, "b": 2, "c": 3}}]
    fails([{"$group": {"_id": None, "m": {"$mergeObjects": "$q"}}}], 40400, [{"q": 1}])


def test_sum_widening_and_overflow():
    out = run([{"$group": {"_id": None, "s": {"$sum": "$v"}}}], [{"v": 2 ** 31 - 1}, {"v": 1}])
    assert out[0]["s"] == 2 ** 31
    out = run([{"$group": {"_id": None, "s": {"$sum": "$v"}}}], [{"v": 2 ** 62}, {"v": 2 ** 62}])
    assert isinstance(out[0]["s"], float)
    out = run([{"$group": {"_id": None, "s": {"$sum": "$v"}}}], [{"v": 0.1}] * 10)
    assert out[0]["s"] == 1.0  # compensated summation


def test_std_dev():
    users = [{"quiz": 1, "score": 85}, {"quiz": 1, "score": 90}, {"quiz": 1, "score": 71},
             {"quiz": 2, "score": 96}, {"quiz": 2, "score": 77}, {"quiz": 2, "score": 82}]
    out = run([{"$group": {"_id": "$quiz", "stdDev": {"$stdDevPop": "$score"}}}], users)
    assert [o["_id"] for o in out] == [1, 2]
    assert all(math.isclose(o["stdDev"], 8.04155872120988) for o in out)
    out = run([{"$group": {"_id": None, "s": {"$stdDevSamp": "$score"}}}], users[:1])
    assert out == [{"_id": None, "s": None}]


GAMES = [{"playerId": "PlayerA", "gameId": "G1", "score": 31}, {"playerId": "PlayerB", "gameId": "G1", "score": 33},
         {"playerId": "PlayerC", "gameId": "G1", "score": 99}, {"playerId": "PlayerD", "gameId": "G1", "score": 1},
         {"playerId": "PlayerA", "gameId": "G2", "score": 10}, {"playerId": "PlayerB", "gameId": "G2", "score": 14},
         {"playerId": "PlayerC", "gameId": "G2", "score": 66}, {"playerId": "PlayerD", "gameId": "G2", "score": 80}]


def test_top_bottom_and_n_accumulators():
    out = run([{"$match": {"gameId": "G1"}},
               {"$group": {"_id": "$gameId", "playerId": {"$top": {"output": ["$playerId", "$score"],
                                                                    "sortBy": {"score": -1}}}}}], GAMES)
    assert out == [{"_id": "G1", "playerId": ["PlayerC", 99]}]
    out = run([{"$group": {"_id": "$gameId", "p": {"$bottom": {"output": "$playerId", "sortBy": {"score": -1}}}}}],
              GAMES)
    assert out == [{"_id": "G1", "p": "PlayerD"}, {"_id": "G2", "p": "PlayerA"}]
    out = run([{"$group": {"_id": "$gameId", "p": {"$topN": {"output": "$score", "sortBy": {"score": -1},
                                                              "n": 3}}}}], GAMES)
    assert out == [{"_id": "G1", "p": [99, 33, 31]}, {"_id": "G2", "p": [80, 66, 14]}]
    out = run([{"$group": {"_id": "$gameId", "p": {"$bottomN": {"output": "$score", "sortBy": {"score": -1},
                                                                 "n": 2}}}}], GAMES)
    assert out == [{"_id": "G1", "p": [31, 1]}, {"_id": "G2", "p": [14, 10]}]
    out = run([{"$group": {"_id": {"gameId": "$gameId"},
                           "s": {"$firstN": {"input": "$score",
                                             "n": {"$cond": {"if": {"$eq": ["$gameId", "G2"]}, "then": 1,
                                                             "else": 3}}}}}}], GAMES)
    assert out == [{"_id": {"gameId": "G1"}, "s": [31, 33, 99]}, {"_id": {"gameId": "G2"}, "s": [10]}]
    out = run([{"$group": {"_id": "$gameId", "l": {"$lastN": {"input": "$score", "n": 2}},
                           "mx": {"$maxN": {"input": "$score", "n": 2}}, "mn": {"$minN": {"input": "$score", "n": 2}}}}],
              GAMES)
    assert out[0] == {"_id": "G1", "l": [99, 1], "mx": [99, 33], "mn": [1, 31]}
    fails([{"$group": {"_id": None, "x": {"$firstN": {"input": "$a", "n": 0}}}}], 5787908, [{"a": 1}])
    fails([{"$group": {"_id": None, "x": {"$topN": {"output": "$a", "n": 1}}}}], 5787907)


def test_median_percentile():
    scores = [{"test01": 62}, {"test01": 60}, {"test01": 67}, {"test01": 64}, {"test01": 60}, {"test01": "x"}]
    out = run([{"$group": {"_id": None, "median": {"$median": {"input": "$test01", "method": "approximate"}},
                           "p": {"$percentile": {"input": "$test01", "p": [0.5, 0.95], "method": "approximate"}}}}],
              scores)
    assert out == [{"_id": None, "median": 62.0, "p": [62.0, 67.0]}]
    fails([{"$group": {"_id": None, "m": {"$median": {"input": "$a"}}}}], 40414)


def test_group_errors():
    fails([{"$group": {"n": {"$sum": 1}}}], 15955)
    fails([{"$group": {"_id": None, "n": {"$foo": 1}}}], 15952)
    fails([{"$group": {"_id": None, "n": 1}}], 40234)
    fails([{"$group": {"_id": None, "n": {"$sum": 1, "$avg": 1}}}], 40238)
    fails([{"$group": {"_id": None, "a.b": {"$sum": 1}}}], 40235)
    fails([{"$group": {"_id": None, "n": {"$push": [1, 2]}}}], 40237)
    fails([{"$group": {"_id": None, "n": {"$accumulator": {}}}}], 238)
    fails([{"$group": 1}], 15947)


ARTISTS = [(1, "Bernard", 1868), (2, "Rippl-Ronai", 1861), (3, "Ostroumova", 1871), (4, "Van Gogh", 1853),
           (5, "Maurer", 1868), (6, "Munch", 1863), (7, "Redon", 1840), (8, "Diriks", 1855)]


def test_bucket():
    docs = [{"_id": i, "last_name": n, "year_born": y} for i, n, y in ARTISTS]
    out = run([{"$bucket": {"groupBy": "$year_born", "boundaries": [1840, 1850, 1860, 1870, 1880], "default": "Other",
                            "output": {"count": {"$sum": 1}, "artists": {"$push": "$last_name"}}}}], docs)
    assert out == [{"_id": 1840, "count": 1, "artists": ["Redon"]},
                   {"_id": 1850, "count": 2, "artists": ["Van Gogh", "Diriks"]},
                   {"_id": 1860, "count": 4, "artists": ["Bernard", "Rippl-Ronai", "Maurer", "Munch"]},
                   {"_id": 1870, "count": 1, "artists": ["Ostroumova"]}]
    out = run([{"$bucket": {"groupBy": "$year_born", "boundaries": [1850, 1860], "default": "Other"}}], docs)
    assert out == [{"_id": 1850, "count": 2}, {"_id": "Other", "count": 6}]
    fails([{"$bucket": {"groupBy": "$year_born", "boundaries": [1850, 1860]}}], 40066, docs)
    fails([{"$bucket": {"groupBy": "$a", "boundaries": [1]}}], 40192)
    fails([{"$bucket": {"groupBy": "$a", "boundaries": [2, 1]}}], 40194)
    fails([{"$bucket": {"groupBy": "$a", "boundaries": [1, "a"]}}], 40193)
    fails([{"$bucket": {"groupBy": "$a", "boundaries": [1, 5], "default": 3}}], 40199)
    fails([{"$bucket": {"groupBy": "a", "boundaries": [1, 5]}}], 40202)


def test_bucket_auto():
    docs = [{"v": i} for i in range(1, 11)]
    out = run([{"$bucketAuto": {"groupBy": "$v", "buckets": 3}}], docs)
    assert out == [{"_id": {"min": 1, "max": 4}, "count": 3}, {"_id": {"min": 4, "max": 7}, "count": 3},
                   {"_id": {"min": 7, "max": 10}, "count": 4}]
    # equal values stay in one bucket
    out = run([{"$bucketAuto": {"groupBy": "$v", "buckets": 2, "output": {"vals": {"$push": "$v"}}}}],
              [{"v": 1}, {"v": 1}, {"v": 1}, {"v": 2}])
    assert out == [{"_id": {"min": 1, "max": 2}, "vals": [1, 1, 1]}, {"_id": {"min": 2, "max": 2}, "vals": [2]}]
    out = run([{"$bucketAuto": {"groupBy": "$v", "buckets": 2, "granularity": "POWERSOF2"}}],
              [{"v": x} for x in (1, 2, 3, 5, 9, 17)])
    assert out == [{"_id": {"min": 0.5, "max": 4.0}, "count": 3}, {"_id": {"min": 4.0, "max": 32.0}, "count": 3}]
    out = run([{"$bucketAuto": {"groupBy": "$v", "buckets": 2, "granularity": "R5"}}],
              [{"v": x} for x in (1, 2, 3, 5, 9, 17)])
    assert out == [{"_id": {"min": 0.63, "max": 4.0}, "count": 3}, {"_id": {"min": 4.0, "max": 25.0}, "count": 3}]
    assert run([{"$bucketAuto": {"groupBy": "$v", "buckets": 5}}], []) == []
    fails([{"$bucketAuto": {"groupBy": "$v", "buckets": 0}}], 40243)
    fails([{"$bucketAuto": {"groupBy": "$v", "buckets": 2, "granularity": "XX"}}], 40257)
    fails([{"$bucketAuto": {"groupBy": "$v", "buckets": 2, "granularity": "R5"}}], 40258, [{"v": "a"}])


def test_sort_by_count():
    docs = [{"tags": ["painting", "satire", "Expressionism", "caricature"]},
            {"tags": ["woodcut", "Expressionism"]}, {"tags": ["oil", "Surrealism", "painting"]},
            {"tags": ["woodblock", "ukiyo-e"]}, {"tags": ["Surrealism", "painting", "oil"]},
            {"tags": ["oil", "painting", "abstract"]}, {"tags": ["Expressionism", "painting", "oil"]},
            {"tags": ["abstract", "painting", "oil"]}]
    out = run([{"$unwind": "$tags"}, {"$sortByCount": "$tags"}], docs)
    assert out[:2] == [{"_id": "painting", "count": 6}, {"_id": "oil", "count": 5}]
    assert {o["_id"]: o["count"] for o in out}["Expressionism"] == 3
    assert [o["count"] for o in out] == sorted((o["count"] for o in out), reverse=True)
    fails([{"$sortByCount": "tags"}], 40148)
