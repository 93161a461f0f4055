"""Through the driver: sorts provided by an index (explain without a SORT stage,
the walk stopping at the limit), createIndexes building while writes go on, and
unique builds refusing existing duplicates."""
import random
import threading

import pytest
from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError
from tests.both_formats import client, server  # noqa: F401  (both table formats)


def _stages(plan: dict) -> list[str]:
    out, p = [], plan
    while p:
        out.append(p["stage"])
        p = p.get("inputStage")
    return out


def test_sort_and_limit_walk_the_index(db):
    rnd = random.Random(4)
    db.c.insert_many([{"_id": i, "a": rnd.randint(0, 10_000), "g": i % 3} for i in range(3000)])
    db.c.create_index([("a", ASCENDING)])
    want = sorted(db.c.find({}, {"a": 1}).hint({"$natural": 1}), key=lambda d: (-d["a"], -d["_id"]))[:7]
    got = list(db.c.find({}, {"a": 1}).sort([("a", DESCENDING), ("_id", DESCENDING)]).limit(7))
    assert got == want
    plan = db.c.find({}).sort("a", DESCENDING).limit(7).explain()
    win = plan["queryPlanner"]["winningPlan"]
    assert _stages(win) == ["LIMIT", "FETCH", "IXSCAN"]
    assert win["inputStage"]["inputStage"]["direction"] == "backward"
    assert plan["executionStats"]["totalDocsExamined"] <= 64 and plan["executionStats"]["nReturned"] == 7
    # a sort no index provides is done in memory: SORT stage on top
    plan = db.c.find({"a": {"$gte": 5000}}).sort("g", ASCENDING).limit(3).explain()
    assert _stages(plan["queryPlanner"]["winningPlan"]) == ["SORT", "FETCH", "IXSCAN"]
    plan = db.c.find({"g": 1}).sort("g", ASCENDING).explain()
    assert _stages(plan["queryPlanner"]["winningPlan"]) == ["SORT", "COLLSCAN"]
    # range + sort on the same field: ascending walk, results in order, skip applied
    got = [d["a"] for d in db.c.find({"a": {"$gt": 2000, "$lte": 4000}}).sort("a", ASCENDING).skip(5).limit(20)]
    want = sorted(d["a"] for d in db.c.find({"a": {"$gt": 2000, "$lte": 4000}}).hint({"$natural": 1}))[5:25]
    assert got == want


def test_create_index_while_writes_go_on(db, client):
    db.w.insert_many([{"_id": i, "k": i % 100} for i in range(20_000)])
    stop = threading.Event()
    errors = []

    def writer():
        r = random.Random(9)
        coll = client[db.name].w
        try:
            while not stop.is_set():
                i = r.randrange(25_000)
                coll.update_one({"_id": i}, {"$set": {"k": r.randrange(200)}}, upsert=True)
        except Exception as e:          # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert db.w.create_index("k") == "k_1"
    finally:
        stop.set()
        t.join()
    assert not errors
    for k in (0, 7, 150):
        plan = db.w.find({"k": k}).explain()
        assert plan["queryPlanner"]["winningPlan"]["inputStage"]["indexName"] == "k_1"
        got = sorted(d["_id"] for d in db.w.find({"k": k}))
        assert got == sorted(d["_id"] for d in db.w.find({"k": k}).hint({"$natural": 1}))


def test_unique_build_refuses_duplicates(db):
    db.d.insert_many([{"_id": 1, "k": "x"}, {"_id": 2, "k": "y"}, {"_id": 3, "k": "x"}])
    with pytest.raises(DuplicateKeyError) as ei:
        db.d.create_index("k", unique=True)
    assert ei.value.code == 11000 and ei.value.details["keyValue"] == {"k": "x"}
    assert list(db.d.index_information()) == ["_id_"]
    db.d.delete_one({"_id": 3})
    db.d.create_index("k", unique=True)
    with pytest.raises(DuplicateKeyError):
        db.d.insert_one({"_id": 4, "k": "y"})
