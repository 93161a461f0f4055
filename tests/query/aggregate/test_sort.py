"""$sort semantics: BSON order across types, arrays, missing fields, mixed directions."""
from __future__ import annotations

import datetime as dt
import random

from bson.decimal128 import Decimal128
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId

from mongolake.query.bsonorder import sort_key

from tests.query.aggregate._util import fails, run


def test_sort_across_types_follows_bson_order():
    values = [MaxKey(), True, "b", 3, {"a": 1}, [5], None, 1.5, ObjectId("0" * 24), "a", Decimal128("2"),
              dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), MinKey(), float("nan"), False]
    docs = [{"_id": i, "v": v} for i, v in enumerate(values)]
    out = run([{"$sort": {"v": 1}}], docs)
    got = [d["_id"] for d in out]
    # arrays sort by their smallest element ([5] -> 5); everything else by BSON order
    want = sorted(range(len(values)), key=lambda i: sort_key(values[i] if not isinstance(values[i], list)
                                                              else values[i][0]))
    assert got == want
    desc = [d["v"] for d in run([{"$sort": {"v": -1}}], docs)]
    assert isinstance(desc[0], MaxKey) and isinstance(desc[-1], MinKey)


def test_arrays_missing_null_and_empty():
    docs = [{"_id": 1, "a": [1, 9]}, {"_id": 2, "a": [5]}, {"_id": 3}, {"_id": 4, "a": None}, {"_id": 5, "a": []},
            {"_id": 6, "a": 3}]
    assert [d["_id"] for d in run([{"$sort": {"a": 1, "_id": 1}}], docs)] == [5, 3, 4, 1, 6, 2]
    assert [d["_id"] for d in run([{"$sort": {"a": -1, "_id": 1}}], docs)] == [1, 2, 6, 3, 4, 5]
    nested = [{"_id": 1, "x": [{"y": 4}, {"y": 1}]}, {"_id": 2, "x": [{"y": 2}]}, {"_id": 3, "x": {"y": 3}}]
    assert [d["_id"] for d in run([{"$sort": {"x.y": 1}}], nested)] == [1, 2, 3]
    assert [d["_id"] for d in run([{"$sort": {"x.y": -1}}], nested)] == [1, 3, 2]


def test_mixed_directions_and_stability_match_reference():
    rnd = random.Random(7)
    docs = [{"_id": i, "a": rnd.choice([1, 2, 2.0, "x", None]), "b": rnd.randint(0, 3)} for i in range(300)]
    out = run([{"$sort": {"a": 1, "b": -1}}], docs)
    # reference: stable sort by b descending, then by a ascending with BSON order
    ref = sorted(docs, key=lambda d: -d["b"])
    ref = sorted(ref, key=lambda d: sort_key(d["a"]))
    assert out == ref
    top = run([{"$sort": {"a": 1, "b": -1}}, {"$limit": 17}], docs)
    assert top == ref[:17]
    assert run([{"$sort": {"a": -1, "b": -1}}, {"$skip": 5}, {"$limit": 5}], docs) == \
        run([{"$sort": {"a": -1, "b": -1}}], docs)[5:10]


def test_sort_errors():
    fails([{"$sort": {}}], 15976)
    fails([{"$sort": {"a": 2}}], 15975)
    fails([{"$sort": 1}], 15973)
    fails([{"$sort": {"a": {"$meta": "textScore"}}}], 40218, [{"_id": 1}])     # no $text: no text score
    fails([{"$sort": {"a": {"$meta": "randVal"}}}], 238)
