"""Pipelines the server runs in the engine instead of document by document give the
same answers as the document-at-a-time path."""
import random


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
