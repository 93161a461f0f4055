"""allowDiskUse through a real server: a small ``--agg-memory-limit`` makes $sort and $group
spill under ``--spill-dir`` (files gone once the cursor ends or is killed), give the in-memory
answer, and fail with 292 with ``allowDiskUse: false``; setParameter changes the $sort limit."""
import os

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from tests.serverutil import ServerProcess


@pytest.fixture(scope="module")
def spill_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("spill")
    spill = base / "spill"
    srv = ServerProcess(str(base / "lake"), extra=["--agg-memory-limit", "50000", "--spill-dir", str(spill),
                                                   "--sync", "none"]).start()
    client = MongoClient(srv.url)
    coll = client.t.c
    coll.insert_many([{"_id": i, "k": (i * 37) % 101, "g": i % 250, "pad": "p" * 100} for i in range(3000)])
    try:
        yield client, coll, spill
    finally:
        client.close()
        srv.stop()


def _files(spill):
    return os.listdir(spill) if os.path.isdir(spill) else []


def test_sort_and_group_spill_and_match_the_expected_answer(spill_server):
    client, coll, spill = spill_server
    docs = list(coll.aggregate([{"$sort": {"k": -1, "_id": 1}}, {"$project": {"pad": 0}}]))
    assert [(d["k"], d["_id"]) for d in docs] == sorted(((d["k"], d["_id"]) for d in docs),
                                                       key=lambda t: (-t[0], t[1]))
    assert len(docs) == 3000
    groups = list(coll.aggregate([{"$group": {"_id": "$g", "ids": {"$push": "$_id"}, "n": {"$sum": 1}}}]))
    assert sorted((g["_id"], g["ids"], g["n"]) for g in groups) == \
        [(g, list(range(g, 3000, 250)), 12) for g in range(250)]
    assert _files(spill) == []


def test_explain_reports_used_disk(spill_server):
    client, coll, spill = spill_server
    ex = client.t.command("explain", {"aggregate": "c", "pipeline": [{"$addFields": {"z": 1}},
                                                                      {"$sort": {"k": 1}}], "cursor": {}},
                          verbosity="executionStats")
    sort = next(s for s in ex["stages"] if "$sort" in s)
    assert sort["usedDisk"] is True and sort["spills"] >= 1 and sort["nReturned"] == 3000
    ex = client.t.command("explain", {"aggregate": "c", "pipeline": [{"$sort": {"k": 1}}, {"$limit": 3}],
                                      "cursor": {}}, verbosity="executionStats")
    assert next(s for s in ex["stages"] if "$sort" in s).get("usedDisk", False) is False


def test_without_allow_disk_use_292(spill_server):
    client, coll, spill = spill_server
    with pytest.raises(OperationFailure) as ei:
        list(coll.aggregate([{"$sort": {"k": 1}}], allowDiskUse=False))
    assert ei.value.code == 292 and "Sort exceeded memory limit of 50000 bytes" in str(ei.value)
    with pytest.raises(OperationFailure) as ei:
        list(coll.aggregate([{"$group": {"_id": "$_id", "p": {"$first": "$pad"}}}], allowDiskUse=False))
    assert ei.value.code == 292 and "$group" in str(ei.value)


def test_killed_cursor_deletes_its_files(spill_server):
    client, coll, spill = spill_server
    cur = coll.aggregate([{"$addFields": {"z": 1}}, {"$sort": {"k": 1}}], batchSize=5)
    first = next(cur)
    assert first["k"] == 0
    assert any(n.startswith("mongolake-spill-") for n in _files(spill))
    cur.close()                                          # killCursors
    client.admin.command("ping")
    assert _files(spill) == []


def test_set_parameter_changes_the_sort_limit(spill_server):
    client, coll, spill = spill_server
    client.admin.command("setParameter", 1, internalQueryMaxBlockingSortMemoryUsageBytes=10 << 20)
    try:
        assert len(list(coll.aggregate([{"$sort": {"k": 1}}], allowDiskUse=False))) == 3000
    finally:
        client.admin.command("setParameter", 1, internalQueryMaxBlockingSortMemoryUsageBytes=100 << 20)
    with pytest.raises(OperationFailure):
        list(coll.aggregate([{"$sort": {"k": 1}}], allowDiskUse=False))


def test_set_parameter_changes_the_group_limit(spill_server):
    client, coll, spill = spill_server
    pipeline = [{"$group": {"_id": "$_id", "pads": {"$push": "$pad"}}}]
    with pytest.raises(OperationFailure) as ei:
        list(coll.aggregate(pipeline, allowDiskUse=False))
    assert ei.value.code == 292
    client.admin.command("setParameter", 1, internalDocumentSourceGroupMaxMemoryBytes=10 << 20)
    try:
        assert len(list(coll.aggregate(pipeline, allowDiskUse=False))) == 3000
    finally:
        client.admin.command("setParameter", 1, internalDocumentSourceGroupMaxMemoryBytes=100 * 1024 * 1024)
