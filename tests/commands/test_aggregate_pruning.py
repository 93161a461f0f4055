"""Column pruning: pipelines that read only shredded columns give exactly the answer of the
document path (forced here with a ``$match`` on ``$$ROOT``), over files read from columns,
files that need ``_doc`` (nulls, missing fields, mixed types), memtable rows, updates and deletes."""
import datetime as dt
import random

import pytest
from bson.int64 import Int64
from bson.objectid import ObjectId


@pytest.fixture(params=["delta", "iceberg"])
def client(request, format_client):
    return format_client(request.param)


FORCE_DOCS = {"$match": {"$expr": {"$ne": ["$$ROOT", None]}}}


def _doc(i, rnd, sparse):
    d = {"_id": i, "city": rnd.choice(["Oslo", "Lima", "Rome", "Pune"]), "ok": rnd.random() < 0.5,
         "when": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=rnd.randint(0, 9000)),
         "oid": ObjectId("%024x" % rnd.randint(0, 1 << 90)), "n": rnd.randint(-100, 100),
         "x": rnd.choice([0.5, 1.25, -3.0, 7.75]), "lvl": {"name": rnd.choice(["a", "b", "c"]), "k": i % 5}}
    if sparse and i % 9 == 0:
        del d["city"]                                           # this file needs _doc for city
    if sparse and i % 13 == 0:
        d["n"] = Int64(d["n"])
    return d


@pytest.fixture
def data(db, client):
    rnd = random.Random(17)
    db.p.insert_many([_doc(i, rnd, False) for i in range(0, 700)])
    client.admin.command("fsync")
    db.p.insert_many([_doc(i, rnd, True) for i in range(700, 1200)])
    client.admin.command("fsync")
    db.p.insert_many([_doc(i, rnd, False) for i in range(1200, 1400)])      # memtable rows
    db.p.update_many({"n": {"$gt": 90}}, {"$set": {"city": "Kyiv"}})
    db.p.delete_many({"n": {"$lt": -95}})
    return db.p


PIPELINES = [
    [{"$group": {"_id": "$city", "f": {"$first": "$when"}, "l": {"$last": "$oid"}, "p": {"$push": "$ok"},
                 "s": {"$addToSet": "$lvl.name"}, "a": {"$avg": "$x"}, "an": {"$avg": "$n"}, "c": {"$sum": 1},
                 "mx": {"$max": "$when"}, "mn": {"$min": "$city"}}}],
    [{"$match": {"n": {"$gte": 0}}}, {"$group": {"_id": {"c": "$city", "o": "$ok"}, "ids": {"$push": "$oid"}}}],
    [{"$match": {"ok": True}}, {"$sortByCount": "$lvl.name"}],
    [{"$match": {"x": {"$gt": 0}}}, {"$sort": {"n": 1, "x": -1}}, {"$limit": 50},
     {"$project": {"_id": 0, "city": 1, "y": {"$year": "$when"}, "o": {"$toString": "$oid"}}}],
    [{"$project": {"_id": 0, "lvl.name": 1, "w": {"$dateToString": {"date": "$when", "format": "%Y-%m"}}}}],
    [{"$match": {"city": {"$in": ["Oslo", "Lima"]}}}, {"$count": "k"}],
    [{"$bucket": {"groupBy": "$when", "boundaries": [dt.datetime(2019, 1, 1), dt.datetime(2020, 6, 1),
                                                     dt.datetime(2030, 1, 1)],
                  "output": {"n": {"$sum": 1}, "cities": {"$addToSet": "$city"}}}}],
    [{"$sort": {"x": -1, "n": 1}}, {"$group": {"_id": "$ok", "first": {"$first": "$oid"}}}],
]


def _norm(rows):
    return sorted(rows, key=repr)


@pytest.mark.parametrize("i", range(len(PIPELINES)))
def test_pruned_pipeline_equals_the_document_path(db, data, i):
    pl = PIPELINES[i]
    k = next((j for j, s in enumerate(pl) if "$match" not in s), 0)
    slow = pl[:k] + [FORCE_DOCS] + pl[k:]
    fast = list(data.aggregate(pl))
    assert fast
    if any("$group" in s or "$bucket" in s or "$sortByCount" in s for s in pl):
        assert _norm(fast) == _norm(list(data.aggregate(slow)))
    else:
        assert fast == list(data.aggregate(slow))             # order too
    ex = db.command("explain", {"aggregate": "p", "pipeline": pl, "cursor": {}}, verbosity="executionStats")
    assert ex["mongolake"]["execution"] in ("prunedColumns", "columnarGroup", "countPushdown")
    if ex["mongolake"]["execution"] == "prunedColumns":
        assert ex["mongolake"]["scan"]["filesFromColumns"] >= 1


def test_not_pruned_when_values_could_differ(db, data):
    for pl in ([{"$group": {"_id": "$n", "c": {"$sum": 1}}}],             # int: int32 or int64?
               [{"$group": {"_id": "$city", "s": {"$sum": "$x"}}}],       # double: 5 or 5.0?
               [{"$project": {"city": 1}}],                              # needs _id
               [{"$project": {"_id": 0, "city": 1, "ok": 1}}],           # field order of each document
               [{"$group": {"_id": "$city", "d": {"$first": "$$ROOT"}}}],
               [{"$addFields": {"z": 1}}, {"$group": {"_id": "$city"}}],
               [{"$match": {"city": "Oslo"}}]):
        ex = db.command("explain", {"aggregate": "p", "pipeline": pl, "cursor": {}})
        assert ex["mongolake"]["execution"] != "prunedColumns", pl
