"""When the Arrow group path applies, and when it must step aside."""
from mongolake.engine import Engine
from mongolake.engine import columnar


def test_group_runs_in_arrow_only_when_exact(tmp_path):
    e = Engine(str(tmp_path / "lake"), flush_interval=3600).open()
    try:
        e.insert("db", "c", [{"_id": i, "k": ["a", "b"][i % 2], "n": i, "f": i / 2} for i in range(100)])
        e.flush()
        e.insert("db", "c", [{"_id": 100, "k": "a", "n": 1000, "f": 0.5}])
        got = columnar.group(e, "db", "c", {"n": {"$gte": 10}}, {"_id": "$k", "s": {"$sum": "$n"},
                                                                 "m": {"$max": "$f"}})
        assert sorted(got, key=lambda d: d["_id"]) == [
            {"_id": "a", "s": sum(range(10, 100, 2)) + 1000, "m": 49.0},
            {"_id": "b", "s": sum(range(11, 100, 2)), "m": 49.5}]
        # double sums depend on the order of additions: not columnar
        assert columnar.group(e, "db", "c", {}, {"_id": None, "s": {"$sum": "$f"}}) is None
        # a value that does not fit its column (an array) makes the column inexact
        e.insert("db", "c", [{"_id": 101, "k": ["x"], "n": 1}])
        assert columnar.group(e, "db", "c", {}, {"_id": "$k", "s": {"$sum": "$n"}}) is None
        # computed keys and unknown accumulators stay on the document path
        assert columnar.group(e, "db", "c", {}, {"_id": {"$toUpper": "$k"}}) is None
        assert columnar.group(e, "db", "c", {}, {"_id": None, "p": {"$push": "$n"}}) is None
    finally:
        e.close()


def test_top_k_on_a_shredded_column(tmp_path):
    import bson

    e = Engine(str(tmp_path / "lake"), flush_interval=3600).open()
    try:
        e.insert("db", "c", [{"_id": i, "n": (i * 37) % 101} for i in range(100)])
        e.flush()
        e.insert("db", "c", [{"_id": 100}, {"_id": 101, "n": 500}])
        asc = columnar.top_k(e, "db", "c", {}, {"n": 1}, 3)
        assert [bson.decode(r).get("n") for r in asc] == [None, 0, 1]      # missing sorts first
        desc = columnar.top_k(e, "db", "c", {"n": {"$lt": 100}}, {"n": -1}, 2)
        assert [bson.decode(r)["n"] for r in desc] == [99, 98]
        e.insert("db", "c", [{"_id": 102, "n": float("nan")}])
        assert columnar.top_k(e, "db", "c", {}, {"n": 1}, 3) is None        # not exact any more
    finally:
        e.close()
