"""Pipelines the server runs in the engine instead of document by document give the
same answers as the document-at-a-time path."""
import random

import pytest


@pytest.fixture(params=["delta", "iceberg"])
def client(request, format_client):
    """Every test here runs against a Delta and an Iceberg server."""
    return format_client(request.param)


def test_count_pipelines_match_the_plain_path(db, client):
    rnd = random.Random(7)
    docs = [{"_id": i, "a": rnd.choice([1, 2, 2.5, "x", None, [1, 2], {"b": 1}]), "n": rnd.randint(0, 100)}
            for i in range(600)]
    db.c.insert_many(docs[:300])
    client.admin.command("fsync")
    db.c.insert_many(docs[300:])
    db.c.delete_many({"n": {"$lt": 5}})
    db.c.update_many({"n": {"$gt": 90}}, {"$set": {"a": 2}})
    for flt in [{}, {"a": 2}, {"n": {"$gte": 50}}, {"a": {"$in": [1, "x"]}}, {"a": None}, {"zzz": 1}]:
        pushed = list(db.c.aggregate([{"$match": flt}, {"$count": "k"}]))
        grouped = list(db.c.aggregate([{"$match": flt}, {"$group": {"_id": None, "k": {"$sum": 1}}}]))
        plain = list(db.c.aggregate([{"$match": flt}, {"$addFields": {"z": 1}}, {"$count": "k"}]))
        expected = sum(1 for _ in db.c.find(flt))
        assert pushed == plain == ([{"k": expected}] if expected else [])
        assert grouped == ([{"_id": None, "k": expected}] if expected else [])


def _norm(docs):
    return sorted(docs, key=lambda d: repr(d["_id"]))


def test_columnar_group_matches_the_document_path(db, client):
    rnd = random.Random(11)
    cities = ["Paris", "Oslo", "Lima", None]
    docs = []
    for i in range(900):
        d = {"_id": i, "n": rnd.randint(-50, 1000), "lvl": {"x": rnd.randint(0, 3)}}
        c = rnd.choice(cities)
        if c is not None:
            d["city"] = c
        if rnd.random() < 0.1:
            del d["n"]
        docs.append(d)
    db.g.insert_many(docs[:500])
    client.admin.command("fsync")
    db.g.insert_many(docs[500:])                       # some rows still in the memtable
    db.g.update_many({"n": {"$gt": 900}}, {"$inc": {"n": 1}})
    group = {"_id": "$city", "s": {"$sum": "$n"}, "a": {"$avg": "$n"}, "lo": {"$min": "$n"}, "hi": {"$max": "$n"},
             "c": {"$sum": 1}, "k": {"$count": {}}}
    for match in [{}, {"n": {"$gte": 100}}, {"city": "Oslo"}, {"lvl.x": 2}]:
        fast = list(db.g.aggregate([{"$match": match}, {"$group": group}, {"$sort": {"s": -1}}]))
        slow = list(db.g.aggregate([{"$match": match}, {"$addFields": {"_z": 1}}, {"$group": group},
                                    {"$sort": {"s": -1}}]))
        assert _norm(fast) == _norm(slow)
        assert sum(d["c"] for d in fast) == db.g.count_documents(match)
    by_level = list(db.g.aggregate([{"$group": {"_id": "$lvl.x", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]))
    assert [d["_id"] for d in by_level] == [0, 1, 2, 3] and sum(d["n"] for d in by_level) == 900
    everything = list(db.g.aggregate([{"$group": {"_id": None, "s": {"$sum": "$n"}, "m": {"$max": "$city"}}}]))
    assert everything == [{"_id": None, "s": sum(d.get("n", 0) for d in db.g.find()), "m": "Paris"}]


def test_sort_limit_top_k_matches_the_document_path(db, client):
    rnd = random.Random(5)
    docs = [{"_id": i, "n": rnd.randint(0, 50), "s": rnd.choice(["b", "a", "c"]) if i % 7 else None}
            for i in range(700)]
    for d in docs[::11]:
        d.pop("n")
    db.t.insert_many(docs[:400])
    client.admin.command("fsync")
    db.t.insert_many(docs[400:])
    db.t.delete_many({"n": 3})
    for match in [{}, {"n": {"$gte": 20}}]:
        for key in ("n", "s"):
            for direction in (1, -1):
                fast = list(db.t.aggregate([{"$match": match}, {"$sort": {key: direction}}, {"$limit": 15},
                                            {"$project": {key: 1, "_id": 0}}]))
                slow = list(db.t.aggregate([{"$match": match}, {"$addFields": {"_z": 1}},
                                            {"$sort": {key: direction}}, {"$limit": 15},
                                            {"$project": {key: 1, "_id": 0}}]))
                assert fast == slow, (match, key, direction)
