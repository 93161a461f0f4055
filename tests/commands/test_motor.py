"""The async driver (motor) against the real server: CRUD, cursors, bulk, errors, concurrency."""
import asyncio

import pytest
from motor.motor_asyncio import AsyncIOMotorClient
from pymongo import InsertOne, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure
from tests.both_formats import client, server  # noqa: F401  (both table formats)


def run(server, dbname, fn):
    async def main():
        client = AsyncIOMotorClient(server.url, serverSelectionTimeoutMS=10000)
        try:
            await client.drop_database(dbname)
            return await fn(client[dbname])
        finally:
            client.close()
    return asyncio.run(main())


def test_motor_crud_and_options(server):
    async def body(db):
        r = await db.c.insert_many([{"_id": i, "k": i % 4, "s": f"v{i}"} for i in range(40)])
        assert len(r.inserted_ids) == 40
        docs = await db.c.find({"k": 1}, {"_id": 1}).sort("_id", -1).skip(1).limit(3).to_list(None)
        assert [d["_id"] for d in docs] == [33, 29, 25]
        assert await db.c.count_documents({"k": {"$in": [0, 1]}}) == 20
        r = await db.c.update_many({"k": 2}, {"$set": {"two": True}})
        assert (r.matched_count, r.modified_count) == (10, 10)
        r = await db.c.update_one({"_id": 100}, {"$setOnInsert": {"new": 1}}, upsert=True)
        assert r.upserted_id == 100
        doc = await db.c.find_one_and_update({"_id": 0}, {"$inc": {"k": 10}}, return_document=ReturnDocument.AFTER)
        assert doc["k"] == 10
        assert (await db.c.delete_many({"two": True})).deleted_count == 10
        assert await db.c.distinct("k") == [0, 1, 3, 10]
        agg = await db.c.aggregate([{"$group": {"_id": "$k", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]).to_list(None)
        assert agg[0] == {"_id": None, "n": 1} and {"_id": 1, "n": 10} in agg
        with pytest.raises(DuplicateKeyError):
            await db.c.insert_one({"_id": 1})
        with pytest.raises(BulkWriteError) as ei:
            await db.c.bulk_write([InsertOne({"_id": 1}), UpdateOne({"_id": 3}, {"$set": {"b": 1}})], ordered=False)
        assert ei.value.details["nModified"] == 1
        with pytest.raises(OperationFailure) as ei:
            await db.command("nosuchcommand")
        assert ei.value.code == 59
        await db.c.create_index("s", unique=True)
        assert "s_1" in await db.c.index_information()
        assert sorted(await db.list_collection_names()) == ["c"]
        return True
    assert run(server, "motor_crud", body)


def test_motor_cursor_many_getmores(server):
    async def body(db):
        await db.c.insert_many([{"_id": i} for i in range(1200)])
        n = 0
        async for d in db.c.find({}, batch_size=25).sort("_id", 1):
            assert d["_id"] == n
            n += 1
        return n
    assert run(server, "motor_cursor", body) == 1200


def test_motor_concurrent_tasks(server):
    async def body(db):
        await db.c.insert_one({"_id": "ctr", "n": 0})

        async def worker(w):
            for i in range(25):
                await db.c.update_one({"_id": "ctr"}, {"$inc": {"n": 1}})
                await db.c.insert_one({"w": w, "i": i})
                await db.c.find_one({"w": w})
        await asyncio.gather(*(worker(w) for w in range(16)))
        return (await db.c.find_one({"_id": "ctr"}))["n"], await db.c.count_documents({"w": {"$exists": True}})
    assert run(server, "motor_conc", body) == (400, 400)


def test_motor_sessions_and_client_bulk_write(server):
    async def body(db):
        client = db.client
        async with await client.start_session() as s:
            await db.c.insert_one({"_id": 1}, session=s)
            assert await db.c.find_one({"_id": 1}, session=s) == {"_id": 1}
        r = await client.bulk_write([InsertOne({"_id": 2}, namespace=f"{db.name}.c"),
                                     UpdateOne({"_id": 2}, {"$set": {"a": 1}}, namespace=f"{db.name}.d",
                                               upsert=True)])
        assert (r.inserted_count, r.upserted_count) == (1, 1)
        return await db.c.count_documents({}) + await db.d.count_documents({})
    assert run(server, "motor_bulk", body) == 3
