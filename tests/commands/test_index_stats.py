"""$indexStats: one document per index, counting the reads the planner answered with it."""
import pytest
from pymongo.errors import OperationFailure


def test_index_stats_counts_index_use(db):
    db.c.insert_many([{"_id": i, "a": i % 10, "b": i} for i in range(200)])
    db.c.create_index("a", name="by_a")
    db.c.create_index([("b", -1)], name="by_b", unique=True)
    for i in range(3):
        assert len(list(db.c.find({"a": i}))) == 20
    stats = {d["name"]: d for d in db.c.aggregate([{"$indexStats": {}}])}
    assert set(stats) == {"_id_", "by_a", "by_b"}
    assert stats["by_a"]["accesses"]["ops"] >= 3
    assert stats["by_b"]["accesses"]["ops"] == 0
    assert stats["by_b"]["key"] == {"b": -1} and stats["by_b"]["spec"]["unique"] is True
    assert stats["by_a"]["host"] and stats["by_a"]["accesses"]["since"] is not None
    # the rest of the pipeline runs over these documents
    assert list(db.c.aggregate([{"$indexStats": {}}, {"$match": {"name": "by_a"}}, {"$project": {"_id": 0, "name": 1}}])) \
        == [{"name": "by_a"}]


def test_index_stats_errors(db):
    with pytest.raises(OperationFailure) as ei:
        list(db.c.aggregate([{"$indexStats": {"x": 1}}]))
    assert ei.value.code == 28803
    with pytest.raises(OperationFailure) as ei:
        db.command("aggregate", 1, pipeline=[{"$indexStats": {}}], cursor={})
    assert ei.value.code == 73
    assert list(db.missing.aggregate([{"$indexStats": {}}])) == []
