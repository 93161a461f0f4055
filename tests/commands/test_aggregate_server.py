"""Aggregation through the server, on a Delta and an Iceberg server.

The pipeline stages themselves are unit-tested in tests/query/aggregate/ over in-memory
collections; here the same kinds of pipeline read real tables: part of each collection
is in table files (flushed with ``fsync``), part still in the memtable, and some of the
flushed documents were updated or deleted after the flush, so every read merges files
and memtable. Expected answers are computed in Python from the documents written.
``$out``/``$merge`` targets are new tables of the server's format (checked in collStats).
"""
from datetime import datetime, timedelta, timezone

import pytest
from pymongo.errors import OperationFailure
from tests.both_formats import client, server  # noqa: F401  (both table formats)

ITEMS = ("apple", "pear", "fig")


def _order(i: int) -> dict:
    return {"_id": i, "cust": f"c{i % 6}", "item": ITEMS[i % 3], "qty": i % 7 + 1, "price": 1.5 * (i % 4 + 1),
            "day": datetime(2024, 1, 1) + timedelta(days=i), "tags": ["t%d" % (i % 2), "t%d" % (i % 5)][:1 + i % 2],
            "meta": {"src": "web" if i % 2 else "shop", "rank": i % 10}}


@pytest.fixture
def orders(db, client):
    """60 orders: 40 flushed to table files, then 20 more in the memtable, 5 flushed ones
    updated and 3 deleted after the flush. Returns (collection, the documents as stored)."""
    docs = {i: _order(i) for i in range(60)}
    db.orders.insert_many([docs[i] for i in range(40)])
    db.customers.insert_many([{"_id": f"c{k}", "name": f"cust{k}", "region": "north" if k < 3 else "south"}
                              for k in range(6)])
    client.admin.command("fsync")
    db.orders.insert_many([docs[i] for i in range(40, 60)])
    for i in range(5):
        db.orders.update_one({"_id": i}, {"$inc": {"qty": 100}})
        docs[i]["qty"] += 100
    for i in (10, 11, 12):
        db.orders.delete_one({"_id": i})
        del docs[i]
    return db.orders, [docs[k] for k in sorted(docs)]


def _utc(d: datetime) -> datetime:
    return d.replace(tzinfo=None)


def test_group_accumulators(orders):
    coll, docs = orders
    got = {g["_id"]: g for g in coll.aggregate([
        {"$sort": {"_id": 1}},
        {"$group": {"_id": "$item", "n": {"$sum": 1}, "qty": {"$sum": "$qty"}, "avg": {"$avg": "$price"},
                    "lo": {"$min": "$qty"}, "hi": {"$max": "$qty"}, "ids": {"$push": "$_id"},
                    "custs": {"$addToSet": "$cust"}, "first": {"$first": "$_id"}, "last": {"$last": "$_id"}}}])}
    assert set(got) == set(ITEMS)
    for item in ITEMS:
        mine = [d for d in docs if d["item"] == item]
        g = got[item]
        assert g["n"] == len(mine) and g["qty"] == sum(d["qty"] for d in mine)
        assert g["avg"] == pytest.approx(sum(d["price"] for d in mine) / len(mine))
        assert (g["lo"], g["hi"]) == (min(d["qty"] for d in mine), max(d["qty"] for d in mine))
        assert g["ids"] == [d["_id"] for d in mine]
        assert sorted(g["custs"]) == sorted({d["cust"] for d in mine})
        assert (g["first"], g["last"]) == (mine[0]["_id"], mine[-1]["_id"])
    total = list(coll.aggregate([{"$group": {"_id": None, "n": {"$count": {}}, "s": {"$sum": "$meta.rank"}}}]))
    assert total == [{"_id": None, "n": len(docs), "s": sum(d["meta"]["rank"] for d in docs)}]


def test_match_project_sort_skip_limit_and_expressions(orders):
    coll, docs = orders
    got = list(coll.aggregate([
        {"$match": {"qty": {"$gte": 3}, "item": {"$in": ["apple", "fig"]}, "meta.src": "web"}},
        {"$project": {"_id": 1, "total": {"$multiply": ["$qty", "$price"]},
                      "label": {"$concat": [{"$toUpper": "$item"}, "-", "$cust"]},
                      "big": {"$cond": [{"$gte": ["$qty", 100]}, True, False]},
                      "when": {"$dateToString": {"format": "%Y-%m-%d", "date": "$day"}},
                      "month": {"$month": "$day"}}},
        {"$sort": {"total": -1, "_id": 1}}, {"$skip": 2}, {"$limit": 7}]))
    want = [{"_id": d["_id"], "total": d["qty"] * d["price"], "label": f"{d['item'].upper()}-{d['cust']}",
             "big": d["qty"] >= 100, "when": d["day"].strftime("%Y-%m-%d"), "month": d["day"].month}
            for d in docs if d["qty"] >= 3 and d["item"] in ("apple", "fig") and d["meta"]["src"] == "web"]
    want.sort(key=lambda d: (-d["total"], d["_id"]))
    assert got == want[2:9]
    assert list(coll.aggregate([{"$match": {"_id": {"$in": [0, 10, 45]}}}, {"$project": {"qty": 1}},
                                {"$sort": {"_id": 1}}])) == [{"_id": 0, "qty": 101}, {"_id": 45, "qty": _order(45)["qty"]}]
    n = list(coll.aggregate([{"$match": {"$expr": {"$gt": ["$qty", "$meta.rank"]}}}, {"$count": "n"}]))
    assert n == [{"n": sum(1 for d in docs if d["qty"] > d["meta"]["rank"])}]


def test_unwind_sort_by_count_bucket_and_facet(orders):
    coll, docs = orders
    counts: dict[str, int] = {}
    for d in docs:
        for t in d["tags"]:
            counts[t] = counts.get(t, 0) + 1
    got = list(coll.aggregate([{"$unwind": "$tags"}, {"$sortByCount": "$tags"}]))
    assert {g["_id"]: g["count"] for g in got} == counts
    assert [g["count"] for g in got] == sorted(counts.values(), reverse=True)
    bounds = [1, 3, 5, 8]
    buckets = list(coll.aggregate([{"$bucket": {"groupBy": "$qty", "boundaries": bounds, "default": "other",
                                                "output": {"n": {"$sum": 1}}}}]))
    want = [{"_id": lo, "n": sum(1 for d in docs if lo <= d["qty"] < hi)} for lo, hi in zip(bounds, bounds[1:])]
    want = [b for b in want if b["n"]] + [{"_id": "other", "n": sum(1 for d in docs if d["qty"] >= 8)}]
    assert buckets == want
    facet = list(coll.aggregate([{"$facet": {
        "perSrc": [{"$group": {"_id": "$meta.src", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}],
        "top": [{"$sort": {"qty": -1, "_id": 1}}, {"$limit": 2}, {"$project": {"_id": 1}}],
        "count": [{"$count": "n"}]}}]))
    assert facet == [{"perSrc": [{"_id": s, "n": sum(1 for d in docs if d["meta"]["src"] == s)}
                                 for s in ("shop", "web")],
                      "top": [{"_id": d["_id"]} for d in sorted(docs, key=lambda d: (-d["qty"], d["_id"]))[:2]],
                      "count": [{"n": len(docs)}]}]


def test_lookup_graph_lookup_and_union_with(orders, db, client):
    coll, docs = orders
    got = list(coll.aggregate([{"$match": {"_id": {"$lt": 8}}},
                               {"$lookup": {"from": "customers", "localField": "cust", "foreignField": "_id",
                                            "as": "c"}},
                               {"$project": {"name": {"$first": "$c.name"}}}, {"$sort": {"_id": 1}}]))
    assert got == [{"_id": d["_id"], "name": f"cust{d['_id'] % 6}"} for d in docs if d["_id"] < 8]
    per_region = list(db.customers.aggregate([
        {"$lookup": {"from": "orders", "let": {"c": "$_id"}, "as": "o",
                     "pipeline": [{"$match": {"$expr": {"$eq": ["$cust", "$$c"]}}},
                                  {"$group": {"_id": None, "q": {"$sum": "$qty"}}}]}},
        {"$group": {"_id": "$region", "q": {"$sum": {"$first": "$o.q"}}}}, {"$sort": {"_id": 1}}]))
    north = {f"c{k}" for k in range(3)}
    assert per_region == [{"_id": "north", "q": sum(d["qty"] for d in docs if d["cust"] in north)},
                          {"_id": "south", "q": sum(d["qty"] for d in docs if d["cust"] not in north)}]
    db.staff.insert_many([{"_id": 1, "name": "ceo"}, {"_id": 2, "boss": 1}, {"_id": 3, "boss": 2},
                          {"_id": 4, "boss": 2}, {"_id": 5, "boss": 4}])
    client.admin.command("fsync")
    db.staff.insert_one({"_id": 6, "boss": 5})
    chain = list(db.staff.aggregate([{"$match": {"_id": 6}},
                                     {"$graphLookup": {"from": "staff", "startWith": "$boss", "connectFromField":
                                                       "boss", "connectToField": "_id", "as": "up",
                                                       "depthField": "d"}},
                                     {"$project": {"up": {"$sortArray": {"input": "$up._id", "sortBy": 1}}}}]))
    assert chain == [{"_id": 6, "up": [1, 2, 4, 5]}]
    union = list(db.customers.aggregate([{"$project": {"_id": 1}},
                                         {"$unionWith": {"coll": "staff", "pipeline": [{"$project": {"_id": 1}}]}},
                                         {"$group": {"_id": {"$type": "$_id"}, "n": {"$sum": 1}}},
                                         {"$sort": {"_id": 1}}]))
    assert union == [{"_id": "int", "n": 6}, {"_id": "string", "n": 6}]


def _stats(db, name: str) -> dict:
    return db.command("collStats", name)["mongolake"]


def test_out_writes_a_table_of_the_server_format(orders, db, client, table_format):
    coll, docs = orders
    pipeline = [{"$group": {"_id": "$cust", "qty": {"$sum": "$qty"}}}, {"$sort": {"_id": 1}}]
    assert list(coll.aggregate(pipeline + [{"$out": "per_cust"}])) == []
    want = {}
    for d in docs:
        want[d["cust"]] = want.get(d["cust"], 0) + d["qty"]
    assert {d["_id"]: d["qty"] for d in db.per_cust.find()} == want
    client.admin.command("fsync")
    st = _stats(db, "per_cust")
    assert st["format"] == table_format and st["files"] >= 1 and st["memtableDocuments"] == 0
    assert {d["_id"]: d["qty"] for d in db.per_cust.find({"qty": {"$gte": 0}})} == want
    # $out again replaces the whole collection, keeping its indexes (as MongoDB does)
    db.per_cust.create_index("qty", name="by_qty")
    coll.aggregate([{"$match": {"item": "fig"}}, {"$project": {"qty": 1}}, {"$out": "per_cust"}])
    assert sorted(d["_id"] for d in db.per_cust.find()) == [d["_id"] for d in docs if d["item"] == "fig"]
    assert "by_qty" in db.per_cust.index_information()
    other = client[db.name + "_o"]
    client.drop_database(other.name)
    coll.aggregate([{"$match": {"_id": {"$lt": 3}}}, {"$out": {"db": other.name, "coll": "copy"}}])
    client.admin.command("fsync")
    assert [d["_id"] for d in other.copy.find().sort("_id", 1)] == [0, 1, 2]
    assert _stats(other, "copy")["format"] == table_format
    client.drop_database(other.name)


def test_merge_modes_into_a_flushed_target(orders, db, client, table_format):
    coll, docs = orders
    db.target.insert_many([{"_id": "c0", "qty": -1, "keep": True}, {"_id": "zz", "qty": 0}])
    client.admin.command("fsync")
    want = {}
    for d in docs:
        want[d["cust"]] = want.get(d["cust"], 0) + d["qty"]
    per_cust = [{"$group": {"_id": "$cust", "qty": {"$sum": "$qty"}}}]
    coll.aggregate(per_cust + [{"$merge": {"into": "target", "whenMatched": "merge", "whenNotMatched": "insert"}}])
    got = {d["_id"]: d for d in db.target.find()}
    assert got["c0"] == {"_id": "c0", "qty": want["c0"], "keep": True}          # merged: "keep" stays
    assert got["zz"] == {"_id": "zz", "qty": 0} and {k: got[k]["qty"] for k in want} == want
    coll.aggregate([{"$match": {"_id": 0}}, {"$project": {"_id": "$cust", "qty": {"$literal": 7}}},
                    {"$merge": {"into": "target", "whenMatched": "replace"}}])
    assert db.target.find_one({"_id": "c0"}) == {"_id": "c0", "qty": 7}
    coll.aggregate(per_cust + [{"$merge": {"into": "target", "whenMatched": "keepExisting",
                                           "whenNotMatched": "discard"}}])
    assert db.target.find_one({"_id": "c0"})["qty"] == 7 and db.target.count_documents({}) == 7
    coll.aggregate(per_cust + [{"$merge": {"into": "target", "whenMatched": [
        {"$set": {"qty": {"$add": ["$qty", "$$new.qty"]}}}], "whenNotMatched": "discard"}}])
    assert db.target.find_one({"_id": "c1"})["qty"] == 2 * want["c1"]
    with pytest.raises(OperationFailure) as ei:
        coll.aggregate(per_cust + [{"$merge": {"into": "target", "whenMatched": "fail"}}])
    assert ei.value.code == 11000
    client.admin.command("fsync")
    assert _stats(db, "target")["format"] == table_format
    # a new target gets the server's format too; "on" a unique-indexed field
    db.by_item.create_index("item", unique=True)
    coll.aggregate([{"$group": {"_id": None, "n": {"$sum": 1}}}, {"$project": {"_id": 0, "item": "all", "n": 1}},
                    {"$merge": {"into": "by_item", "on": "item"}}])
    client.admin.command("fsync")
    assert db.by_item.find_one({}, {"_id": 0}) == {"item": "all", "n": len(docs)}
    assert _stats(db, "by_item")["format"] == table_format


def test_set_window_fields(orders):
    coll, docs = orders
    got = list(coll.aggregate([
        {"$match": {"cust": "c1"}},
        {"$setWindowFields": {"partitionBy": "$cust", "sortBy": {"_id": 1}, "output": {
            "running": {"$sum": "$qty", "window": {"documents": ["unbounded", "current"]}},
            "rank": {"$rank": {}}}}},
        {"$project": {"running": 1, "rank": 1}}]))
    mine = [d for d in docs if d["cust"] == "c1"]
    run = 0
    want = []
    for k, d in enumerate(mine):
        run += d["qty"]
        want.append({"_id": d["_id"], "running": run, "rank": k + 1})
    assert got == want


def test_cursor_batches_sample_documents_and_explain(orders, db):
    coll, docs = orders
    r = db.command("aggregate", "orders", pipeline=[{"$sort": {"_id": 1}}, {"$project": {"_id": 1}}],
                   cursor={"batchSize": 7})
    ids = [d["_id"] for d in r["cursor"]["firstBatch"]]
    cid = r["cursor"]["id"]
    assert len(ids) == 7 and cid != 0
    while cid:
        r = db.command("getMore", cid, collection="orders", batchSize=20)
        ids += [d["_id"] for d in r["cursor"]["nextBatch"]]
        cid = r["cursor"]["id"]
    assert ids == [d["_id"] for d in docs]
    sample = list(coll.aggregate([{"$sample": {"size": 10}}]))
    assert len(sample) == 10 and len({d["_id"] for d in sample}) == 10
    assert all(d in docs for d in sample)
    assert list(db.aggregate([{"$documents": [{"x": 1}, {"x": 2}]}, {"$match": {"x": 2}}])) == [{"x": 2}]
    ex = db.command("aggregate", "orders", pipeline=[{"$match": {"qty": {"$gt": 5}}}, {"$count": "n"}], explain=True)
    assert ex["ok"] == 1.0
    out = list(coll.aggregate([{"$match": {"day": {"$gte": datetime(2024, 2, 1, tzinfo=timezone.utc)}}},
                               {"$group": {"_id": None, "first": {"$min": "$day"}}}]))
    assert [_utc(o["first"]) for o in out] == [min(d["day"] for d in docs if d["day"] >= datetime(2024, 2, 1))]


def test_out_keeps_the_target_format_options_and_is_all_or_nothing(orders, db, table_format):
    coll, docs = orders
    other_fmt = "iceberg" if table_format == "delta" else "delta"
    db.drop_collection("kept")
    db.create_collection("kept", tableFormat=other_fmt, validator={"qty": {"$gte": 0}})
    db.kept.create_index("item", unique=True, name="one_per_item")
    db.kept.insert_one({"_id": "old", "item": "old", "qty": 1})
    items = sorted({d["item"] for d in docs})
    coll.aggregate([{"$group": {"_id": "$item", "item": {"$first": "$item"}, "qty": {"$sum": "$qty"}}},
                    {"$out": "kept"}])
    assert sorted(d["item"] for d in db.kept.find()) == items
    assert _stats(db, "kept")["format"] == other_fmt
    info = db.command("listCollections", filter={"name": "kept"})["cursor"]["firstBatch"][0]
    assert info["options"].get("validator") == {"qty": {"$gte": 0}}
    assert db.kept.index_information()["one_per_item"]["unique"] is True
    # a duplicate in the unique index fails the $out and leaves the target untouched
    with pytest.raises(OperationFailure) as ei:
        coll.aggregate([{"$project": {"item": 1}}, {"$out": "kept"}])
    assert ei.value.code == 11000
    assert sorted(d["item"] for d in db.kept.find()) == items
    assert not [n for n in db.list_collection_names() if n.startswith("tmp.agg_out")]
