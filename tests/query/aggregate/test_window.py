"""$setWindowFields (documents and range windows, rank functions, $shift, ...), $densify and $fill."""
from __future__ import annotations

import datetime as dt

from tests.query.aggregate._util import fails, run

UTC = dt.timezone.utc


def _d(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


CAKES = [{"_id": 0, "type": "chocolate", "orderDate": _d("2020-05-18T14:10:30"), "state": "CA", "price": 13,
          "quantity": 120},
         {"_id": 1, "type": "chocolate", "orderDate": _d("2021-03-20T11:30:05"), "state": "WA", "price": 14,
          "quantity": 140},
         {"_id": 2, "type": "vanilla", "orderDate": _d("2021-01-11T06:31:15"), "state": "CA", "price": 12,
          "quantity": 145},
         {"_id": 3, "type": "vanilla", "orderDate": _d("2020-02-08T13:13:23"), "state": "WA", "price": 13,
          "quantity": 104},
         {"_id": 4, "type": "strawberry", "orderDate": _d("2019-05-18T16:09:01"), "state": "CA", "price": 41,
          "quantity": 162},
         {"_id": 5, "type": "strawberry", "orderDate": _d("2019-01-08T06:12:03"), "state": "WA", "price": 43,
          "quantity": 134}]


def _pairs(out, field):
    return [(d["_id"], d[field]) for d in out]


def test_running_sum_by_state():
    out = run([{"$setWindowFields": {"partitionBy": "$state", "sortBy": {"orderDate": 1},
                                     "output": {"cum": {"$sum": "$quantity",
                                                        "window": {"documents": ["unbounded", "current"]}}}}}], CAKES)
    assert _pairs(out, "cum") == [(4, 162), (0, 282), (2, 427), (5, 134), (3, 238), (1, 378)]


def test_partition_by_expression_and_moving_average():
    out = run([{"$setWindowFields": {"partitionBy": {"$year": "$orderDate"}, "sortBy": {"orderDate": 1},
                                     "output": {"cum": {"$sum": "$quantity",
                                                        "window": {"documents": ["unbounded", "current"]}},
                                                "avg": {"$avg": "$quantity", "window": {"documents": [-1, 0]}}}}}],
              CAKES)
    assert _pairs(out, "cum") == [(5, 134), (4, 296), (3, 104), (0, 224), (2, 145), (1, 285)]
    assert _pairs(out, "avg") == [(5, 134.0), (4, 148.0), (3, 104.0), (0, 112.0), (2, 145.0), (1, 142.5)]


def test_whole_partition_default_window_and_push():
    out = run([{"$setWindowFields": {"partitionBy": "$state",
                                     "output": {"total": {"$sum": "$quantity"}, "n": {"$count": {}},
                                                "types": {"$push": "$type"}, "mx": {"$max": "$price"}}}}], CAKES)
    ca = [d for d in out if d["state"] == "CA"]
    assert {d["total"] for d in ca} == {427} and {d["n"] for d in ca} == {3} and {d["mx"] for d in ca} == {41}
    assert sorted(ca[0]["types"]) == ["chocolate", "strawberry", "vanilla"]


def test_range_window():
    out = run([{"$setWindowFields": {"partitionBy": "$state", "sortBy": {"price": 1},
                                     "output": {"s": {"$sum": "$price", "window": {"range": [-10, 10]}}}}}], CAKES)
    assert _pairs(out, "s") == [(2, 25), (0, 25), (4, 41), (3, 27), (1, 27), (5, 43)]
    # "current" in a range window is the current document's position, not its value
    out = run([{"$setWindowFields": {"sortBy": {"price": 1},
                                     "output": {"s": {"$sum": "$price", "window": {"range": ["unbounded", "current"]}}}}}],
              CAKES)
    assert [d["s"] for d in out] == [12, 25, 38, 52, 93, 136]
    fails([{"$setWindowFields": {"sortBy": {"price": -1},
                                 "output": {"s": {"$sum": "$price", "window": {"range": [0, 1]}}}}}], 5339902)


def test_time_range_window():
    docs = [{"_id": i, "t": _d(t), "v": 1} for i, t in enumerate(
        ["2021-01-01T00:00:00", "2021-01-01T00:30:00", "2021-01-01T01:10:00", "2021-01-01T03:00:00"])]
    out = run([{"$setWindowFields": {"sortBy": {"t": 1}, "output": {
        "n": {"$sum": "$v", "window": {"range": [-1, 0], "unit": "hour"}}}}}], docs)
    assert _pairs(out, "n") == [(0, 1), (1, 2), (2, 2), (3, 1)]
    fails([{"$setWindowFields": {"sortBy": {"t": 1}, "output": {
        "n": {"$sum": "$v", "window": {"range": [-1, 0], "unit": "hour"}}}}}], 5429513, [{"t": 5, "v": 1}])


def test_rank_functions_and_shift():
    docs = [{"_id": i, "s": s} for i, s in enumerate([10, 20, 20, 30, 40, 40, 40])]
    out = run([{"$setWindowFields": {"sortBy": {"s": -1}, "output": {
        "rank": {"$rank": {}}, "dense": {"$denseRank": {}}, "num": {"$documentNumber": {}},
        "prev": {"$shift": {"output": "$s", "by": -1, "default": "none"}}}}}], docs)
    assert [d["rank"] for d in out] == [1, 1, 1, 4, 5, 5, 7]
    assert [d["dense"] for d in out] == [1, 1, 1, 2, 3, 3, 4]
    assert [d["num"] for d in out] == [1, 2, 3, 4, 5, 6, 7]
    assert [d["prev"] for d in out] == ["none", 40, 40, 40, 30, 20, 20]
    out = run([{"$setWindowFields": {"partitionBy": "$state", "sortBy": {"quantity": -1}, "output": {
        "next": {"$shift": {"output": "$quantity", "by": 1, "default": "Not available"}}}}}], CAKES)
    assert _pairs(out, "next") == [(4, 145), (2, 120), (0, "Not available"), (1, 134), (5, 104),
                                   (3, "Not available")]
    fails([{"$setWindowFields": {"output": {"r": {"$rank": {}}}}}], 5371602)
    fails([{"$setWindowFields": {"sortBy": {"a": 1}, "output": {"r": {"$rank": {},
                                                                       "window": {"documents": [0, 1]}}}}}], 5371601)


def test_exp_moving_avg_derivative_integral_locf():
    docs = [{"_id": i, "t": i, "p": p} for i, p in enumerate([13, 14, 11, None, 15])]
    out = run([{"$setWindowFields": {"sortBy": {"t": 1}, "output": {
        "ema": {"$expMovingAvg": {"input": "$p", "N": 2}},
        "locf": {"$locf": "$p"},
        "d": {"$derivative": {"input": "$t"}, "window": {"documents": [-1, 0]}},
        "area": {"$integral": {"input": "$t"}, "window": {"documents": ["unbounded", "current"]}}}}}], docs)
    emas = [d["ema"] for d in out]
    assert emas[0] == 13 and abs(emas[1] - (2 / 3 * 14 + 1 / 3 * 13)) < 1e-12 and emas[3] is None
    assert [d["locf"] for d in out] == [13, 14, 11, 11, 15]
    assert [d["d"] for d in out] == [None, 1.0, 1.0, 1.0, 1.0]
    assert [d["area"] for d in out] == [0.0, 0.5, 2.0, 4.5, 8.0]


def test_window_parse_errors():
    fails([{"$setWindowFields": {"output": {"x": {"$sum": 1, "window": {"documents": [1, 0]}}},
                                 "sortBy": {"a": 1}}}], 5339900)
    fails([{"$setWindowFields": {"output": {"x": {"$sum": 1, "window": {"documents": [0, 1]}}}}}], 5339901)
    fails([{"$setWindowFields": {"output": {"x": {"$sum": 1, "window": {"range": [0, 1]}}}}}], 5339902)
    fails([{"$setWindowFields": {"sortBy": {"a": 1}}}], 40414)
    fails([{"$setWindowFields": {"output": {}, "bogus": 1}}], 40415)
    fails([{"$setWindowFields": {"output": {"x": {"$nope": 1}}}}], 15952)


COFFEE = [{"altitude": 600, "variety": "Arabica Typica"}, {"altitude": 750, "variety": "Arabica Typica"},
          {"altitude": 950, "variety": "Arabica Typica"}, {"altitude": 1250, "variety": "Gesha"},
          {"altitude": 1700, "variety": "Gesha"}]


def test_densify_numeric_full_and_partition():
    out = run([{"$densify": {"field": "altitude", "partitionByFields": ["variety"],
                             "range": {"bounds": "full", "step": 200}}}], COFFEE)
    by = {}
    for d in out:
        by.setdefault(d["variety"], []).append(d["altitude"])
    assert by["Arabica Typica"] == [600, 750, 800, 950, 1000, 1200, 1400, 1600]
    assert by["Gesha"] == [600, 800, 1000, 1200, 1250, 1400, 1600, 1700]
    out = run([{"$densify": {"field": "altitude", "partitionByFields": ["variety"],
                             "range": {"bounds": "partition", "step": 200}}}], COFFEE)
    by = {}
    for d in out:
        by.setdefault(d["variety"], []).append(d["altitude"])
    assert by == {"Arabica Typica": [600, 750, 800, 950], "Gesha": [1250, 1450, 1650, 1700]}
    out = run([{"$densify": {"field": "n", "range": {"step": 1, "bounds": [4, 8]}}}],
              [{"n": 2}, {"n": 4}, {"n": 6}])
    assert [d["n"] for d in out] == [2, 4, 5, 6, 7]
    assert {"n": 5} in out


def test_densify_dates():
    docs = [{"ts": _d("2021-05-18T00:00:00"), "v": 1}, {"ts": _d("2021-05-18T04:00:00"), "v": 2}]
    out = run([{"$densify": {"field": "ts", "range": {"step": 1, "unit": "hour",
                                                      "bounds": [_d("2021-05-18T00:00:00"), _d("2021-05-18T03:00:00")]}}}],
              docs)
    assert [d["ts"].hour for d in out] == [0, 1, 2, 4]
    out = run([{"$densify": {"field": "ts", "range": {"step": 2, "unit": "hour", "bounds": "full"}}}], docs)
    assert [d["ts"].hour for d in out] == [0, 2, 4]
    fails([{"$densify": {"field": "ts", "range": {"step": 1, "bounds": "full"}}}], 5733201, docs)
    fails([{"$densify": {"field": "n", "range": {"step": 0, "bounds": "full"}}}], 5733401)


def test_fill():
    sales = [{"date": _d("2022-02-02T00:00:00"), "bootsSold": 10, "sandalsSold": 20, "sneakersSold": 12},
             {"date": _d("2022-02-03T00:00:00"), "bootsSold": 7, "sneakersSold": 18},
             {"date": _d("2022-02-04T00:00:00"), "sneakersSold": 5}]
    out = run([{"$fill": {"output": {"bootsSold": {"value": 0}, "sandalsSold": {"value": 0},
                                     "sneakersSold": {"value": 0}}}}], sales)
    assert [(d["bootsSold"], d["sandalsSold"]) for d in out] == [(10, 20), (7, 0), (0, 0)]
    stock = [{"time": _d("2021-03-08T09:00:00"), "price": 500}, {"time": _d("2021-03-08T09:05:00")},
             {"time": _d("2021-03-08T09:10:00"), "price": None}, {"time": _d("2021-03-08T09:15:00"), "price": 515}]
    out = run([{"$fill": {"sortBy": {"time": 1}, "output": {"price": {"method": "linear"}}}}], stock)
    assert [d["price"] for d in out] == [500, 505.0, 510.0, 515]
    scores = [{"g": "a", "t": 1, "s": 5}, {"g": "a", "t": 2}, {"g": "b", "t": 1}, {"g": "b", "t": 2, "s": 7},
              {"g": "b", "t": 3}]
    out = run([{"$fill": {"partitionByFields": ["g"], "sortBy": {"t": 1}, "output": {"s": {"method": "locf"}}}}],
              scores)
    assert [(d["g"], d["s"]) for d in out] == [("a", 5), ("a", 5), ("b", None), ("b", 7), ("b", 7)]
    fails([{"$fill": {"output": {"s": {"method": "locf"}}}}], 6050201)
    fails([{"$fill": {"output": {"s": {"method": "cubic"}}, "sortBy": {"t": 1}}}], 6050202)
