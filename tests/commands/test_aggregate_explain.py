"""explain of aggregate: a MongoDB-shaped ``stages`` list starting with ``$cursor`` (its
``queryPlanner.winningPlan`` shows what the engine ran), per-stage statistics with
executionStats, and a ``mongolake`` section naming what was pushed down."""
import pytest


@pytest.fixture
def coll(db, client):
    db.e.insert_many([{"_id": i, "city": ["Oslo", "Lima", "Rome"][i % 3], "n": i, "s": "v%d" % (i % 7)}
                      for i in range(2000)])
    client.admin.command("fsync")
    db.e.insert_many([{"_id": i, "city": "Kyiv", "n": i, "s": "w"} for i in range(2000, 2050)])
    return db.e


def _explain(db, pipeline, verbosity="queryPlanner"):
    return db.command("explain", {"aggregate": "e", "pipeline": pipeline, "cursor": {}}, verbosity=verbosity)


def test_count_pushdown(db, coll):
    ex = _explain(db, [{"$match": {"n": {"$gte": 1990}}}, {"$count": "k"}], "executionStats")
    cur = ex["stages"][0]["$cursor"]
    assert cur["queryPlanner"]["winningPlan"]["stage"] == "COUNT"
    assert cur["queryPlanner"]["winningPlan"]["inputStage"]["stage"] == "COLLSCAN"
    assert ex["mongolake"]["execution"] == "countPushdown"
    assert ex["mongolake"]["pushedDown"] == ["$match", "$count"]
    assert len(ex["stages"]) == 1 and ex["stages"][0]["nReturned"] == 1
    assert ex["mongolake"]["scan"]["docsDecoded"] == 0


def test_leading_match_skips_files_and_row_groups(db, coll):
    ex = _explain(db, [{"$match": {"n": {"$gte": 2000}}}, {"$addFields": {"z": 1}}])
    scan = ex["mongolake"]["scan"]
    assert scan["filesTotal"] >= 1 and scan["filesSkipped"] == scan["filesTotal"]      # only memtable rows match
    assert scan["memtableDocs"] == 50
    assert ex["mongolake"]["execution"] == "documents" and ex["mongolake"]["pushedDown"] == ["$match"]
    assert [next(iter(s)) for s in ex["stages"]] == ["$cursor", "$addFields"]


def test_columnar_group_and_top_k(db, coll):
    ex = _explain(db, [{"$match": {"n": {"$lt": 100}}}, {"$group": {"_id": "$city", "t": {"$sum": "$n"}}},
                       {"$sort": {"t": 1}}], "executionStats")
    plan = ex["stages"][0]["$cursor"]["queryPlanner"]["winningPlan"]
    assert plan["stage"] == "GROUP" and plan["groupSpec"] == {"_id": "$city", "t": {"$sum": "$n"}}
    assert ex["mongolake"]["execution"] == "columnarGroup"
    assert [next(iter(s)) for s in ex["stages"]] == ["$cursor", "$sort"]
    assert ex["stages"][1]["nReturned"] == 3 and ex["stages"][1]["usedDisk"] is False
    ex = _explain(db, [{"$sort": {"n": -1}}, {"$limit": 4}])
    plan = ex["stages"][0]["$cursor"]["queryPlanner"]["winningPlan"]
    assert plan["stage"] == "SORT" and plan["limitAmount"] == 4 and plan["sortPattern"] == {"n": -1}
    assert ex["mongolake"]["execution"] == "topK"


def test_pruned_columns(db, coll):
    ex = _explain(db, [{"$group": {"_id": "$city", "first": {"$first": "$s"}}}], "executionStats")
    plan = ex["stages"][0]["$cursor"]["queryPlanner"]["winningPlan"]
    assert plan["stage"] == "PROJECTION_SIMPLE" and plan["transformBy"] == {"city": 1, "s": 1}
    ml = ex["mongolake"]
    assert ml["execution"] == "prunedColumns" and ml["columns"] == ["city", "s"]
    assert ml["scan"]["filesFromColumns"] >= 1 and ml["scan"]["docsDecoded"] == 0
    assert ex["stages"][0]["nReturned"] == 2050 and ex["stages"][1]["nReturned"] == 4


def test_execution_stats_per_stage_and_writes_not_run(db, coll):
    pl = [{"$addFields": {"z": 1}}, {"$sort": {"n": -1}}, {"$skip": 5}, {"$out": "copy"}]
    ex = _explain(db, pl, "executionStats")
    names = [next(iter(s)) for s in ex["stages"]]
    assert names == ["$cursor", "$addFields", "$sort", "$skip", "$out"]
    sort = ex["stages"][2]
    assert sort["$sort"] == {"n": -1} and sort["usedDisk"] is False and sort["nReturned"] == 2050
    assert sort["totalDataSizeSortedBytesEstimate"] > 2050 * 30
    assert ex["stages"][3]["nReturned"] == 2045 and "nReturned" not in ex["stages"][4]
    assert "copy" not in db.list_collection_names()
    qp = _explain(db, pl)
    assert all("nReturned" not in s for s in qp["stages"])


def test_aggregate_with_explain_true(db, coll):
    ex = db.command("aggregate", "e", pipeline=[{"$match": {"city": "Oslo"}}, {"$project": {"_id": 0, "s": 1}}],
                    explain=True)
    assert ex["ok"] == 1.0 and ex["stages"][0]["$cursor"]["queryPlanner"]["parsedQuery"] == {"city": "Oslo"}
    assert ex["mongolake"]["execution"] == "prunedColumns" and ex["mongolake"]["columns"] == ["s"]
    missing = db.command("explain", {"aggregate": "nothere", "pipeline": [], "cursor": {}})
    assert missing["stages"][0]["$cursor"]["queryPlanner"]["winningPlan"]["stage"] == "EOF"
