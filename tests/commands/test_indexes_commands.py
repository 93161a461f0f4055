"""Secondary indexes through the driver: plans in explain, hint, unique errors."""
import pytest
from pymongo.errors import DuplicateKeyError
from tests.both_formats import client, server  # noqa: F401  (both table formats)


def test_explain_shows_ixscan_and_counts(db):
    db.c.insert_many([{"_id": i, "a": i % 50, "b": i} for i in range(500)])
    plan = db.c.find({"a": 7}).explain()
    assert plan["queryPlanner"]["winningPlan"]["stage"] == "COLLSCAN"
    db.c.create_index("a")
    plan = db.c.find({"a": 7}).explain()
    win = plan["queryPlanner"]["winningPlan"]
    assert win["stage"] == "FETCH" and win["inputStage"]["stage"] == "IXSCAN"
    assert win["inputStage"]["indexName"] == "a_1"
    ex = plan["executionStats"]
    assert ex["nReturned"] == 10 and ex["totalKeysExamined"] == 10 and ex["totalDocsExamined"] == 10
    assert sorted(d["_id"] for d in db.c.find({"a": 7})) == list(range(7, 500, 50))
    assert db.c.count_documents({"a": {"$in": [1, 2]}}) == 20


def test_hint_forces_index_or_collscan(db):
    db.c.insert_many([{"_id": i, "a": i % 5, "b": -i} for i in range(100)])
    db.c.create_index([("b", -1)])
    db.c.create_index("a")
    plan = db.c.find({"a": 1, "b": {"$lt": -50}}).hint("b_-1").explain()
    assert plan["queryPlanner"]["winningPlan"]["inputStage"]["indexName"] == "b_-1"
    assert plan["executionStats"]["totalKeysExamined"] == 100          # full index scan: no bounds on b desc
    got = sorted(d["_id"] for d in db.c.find({"a": 1, "b": {"$lt": -50}}).hint("b_-1"))
    assert got == [i for i in range(51, 100) if i % 5 == 1]
    plan = db.c.find({"a": 1}).hint({"$natural": 1}).explain()
    assert plan["queryPlanner"]["winningPlan"]["stage"] == "COLLSCAN"


def test_unique_index_errors(db):
    db.u.create_index("email", unique=True)
    db.u.insert_one({"_id": 1, "email": "a@x"})
    with pytest.raises(DuplicateKeyError) as ei:
        db.u.insert_one({"_id": 2, "email": "a@x"})
    assert ei.value.details["keyPattern"] == {"email": 1}
    assert ei.value.details["keyValue"] == {"email": "a@x"}
    db.u.update_one({"_id": 1}, {"$set": {"email": "b@x"}})
    db.u.insert_one({"_id": 2, "email": "a@x"})
    assert db.u.count_documents({"email": {"$gte": "a", "$lt": "c"}}) == 2
