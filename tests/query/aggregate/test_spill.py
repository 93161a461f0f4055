"""allowDiskUse: $sort, $group, $bucket and $sortByCount past their memory limit spill to
temporary files and give exactly the in-memory answer; without allowDiskUse they fail (292)."""
import datetime as dt
import os
import random

import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId

from mongolake.errors import MongoError
from mongolake.query.aggregate import InMemoryPipelineContext, parse_pipeline
from mongolake.query.aggregate.base import RunEnv
from mongolake.query.aggregate.spill import PREFIX
from mongolake.query.meta import attach, get_meta


class Ctx(InMemoryPipelineContext):
    def __init__(self, tmp, limit, **kw):
        super().__init__(memory_limit_bytes=limit, **kw)
        self.spill_dir = str(tmp)


def _docs(n, seed=1):
    rnd = random.Random(seed)
    vals = [1, 2.5, "s", None, Int64(7), Decimal128("1.5"), dt.datetime(2020, 1, 2, tzinfo=dt.timezone.utc),
            ObjectId("5f0000000000000000000001"), [3, 1], {"x": 1}, True]
    return [{"_id": i, "k": rnd.randint(0, 60), "v": rnd.choice(vals), "n": rnd.randint(-5, 5), "pad": "p" * 50}
            for i in range(n)]


def _run(pipeline, docs, ctx):
    env = RunEnv(ctx)
    out = list(parse_pipeline(pipeline).run_env(iter(docs), env))
    return out, env


def _spilled(env):
    return [s for s in env.stats.values() if s.get("usedDisk")]


@pytest.mark.parametrize("sort", [{"k": 1}, {"k": -1}, {"k": 1, "n": -1}, {"v": 1, "_id": -1}, {"n": -1, "k": -1}])
def test_external_sort_equals_in_memory_sort(tmp_path, sort):
    docs = _docs(3000)
    big = Ctx(tmp_path, 1 << 30)
    small = Ctx(tmp_path, 20_000)
    expected, env0 = _run([{"$sort": sort}], docs, big)
    got, env = _run([{"$sort": sort}], docs, small)
    assert got == expected                       # same order, ties in input order (stable)
    assert not _spilled(env0)
    (st,) = _spilled(env)
    assert st["spills"] >= 5 and st["spilledRecords"] >= 2000 and st["spilledDataStorageSize"] > 100_000
    assert os.listdir(tmp_path) == []            # runs deleted once the sort is done


def test_external_sort_keeps_metadata(tmp_path):
    docs = [attach({"_id": i, "k": i % 7}, textScore=float(i)) for i in range(500)]
    got, env = _run([{"$sort": {"k": 1}}], docs, Ctx(tmp_path, 2_000))
    expected, _ = _run([{"$sort": {"k": 1}}], docs, Ctx(tmp_path, 1 << 30))
    assert _spilled(env)
    assert [d["_id"] for d in got] == [d["_id"] for d in expected] and len(got) == 500
    assert all(get_meta(d, "textScore") == float(d["_id"]) for d in got)


GROUP = {"_id": "$k", "first": {"$first": "$v"}, "last": {"$last": "$_id"}, "all": {"$push": "$_id"},
         "set": {"$addToSet": "$n"}, "s": {"$sum": "$n"}, "avg": {"$avg": "$n"}, "mx": {"$max": "$v"},
         "top": {"$topN": {"n": 2, "sortBy": {"n": -1, "_id": 1}, "output": "$_id"}}, "c": {"$count": {}}}


def _by_id(rows):
    return sorted(rows, key=lambda d: repr(d["_id"]))


@pytest.mark.parametrize("limit", [3_000, 30_000])
def test_group_spill_equals_in_memory_group(tmp_path, limit):
    docs = _docs(4000, seed=3)
    expected, _ = _run([{"$group": GROUP}], docs, Ctx(tmp_path, 1 << 30))
    got, env = _run([{"$group": GROUP}], docs, Ctx(tmp_path, limit))
    assert _by_id(got) == _by_id(expected)
    assert len(got) == 61
    (st,) = _spilled(env)
    assert st["spills"] >= 1 and st["spilledRecords"] > 0
    assert os.listdir(tmp_path) == []


def test_group_by_many_keys_spills_recursively(tmp_path):
    docs = [{"_id": i, "k": i % 5000, "v": i} for i in range(15000)]
    pl = [{"$group": {"_id": "$k", "s": {"$sum": "$v"}, "f": {"$first": "$v"}}}]
    got, env = _run(pl, docs, Ctx(tmp_path, 5_000))
    assert _by_id(got) == _by_id([{"_id": k, "s": 3 * k + 15000, "f": k} for k in range(5000)])
    (st,) = _spilled(env)
    assert st["spills"] > 1                      # partitions were too big again
    assert os.listdir(tmp_path) == []


def test_bucket_and_sort_by_count_spill(tmp_path):
    docs = _docs(3000, seed=5)
    for pl in ([{"$sortByCount": "$k"}, {"$sort": {"count": -1, "_id": 1}}],
               [{"$bucket": {"groupBy": "$k", "boundaries": [0, 10, 30, 61], "output": {"ids": {"$push": "$_id"}}}}]):
        expected, _ = _run(pl, docs, Ctx(tmp_path, 1 << 30))
        got, env = _run(pl, docs, Ctx(tmp_path, 3_000))
        assert got == expected and _spilled(env)


def test_without_allow_disk_use_the_stages_fail(tmp_path):
    docs = _docs(500)
    for pl, msg in (([{"$sort": {"k": 1}}], "Sort exceeded memory limit of 2000 bytes"),
                    ([{"$group": {"_id": "$_id"}}], "Exceeded memory limit for $group"),
                    ([{"$sortByCount": "$_id"}], "Exceeded memory limit for $sortByCount")):
        with pytest.raises(MongoError) as ei:
            _run(pl, docs, Ctx(tmp_path, 2_000, allow_disk_use=False))
        assert ei.value.code == 292 and msg in str(ei.value)
    assert os.listdir(tmp_path) == []


def test_closing_the_output_early_deletes_the_files(tmp_path):
    docs = _docs(2000)
    env = RunEnv(Ctx(tmp_path, 10_000))
    it = parse_pipeline([{"$sort": {"k": 1}}]).run_env(iter(docs), env)
    first = next(it)
    assert first["k"] == 0
    names = os.listdir(tmp_path)
    assert names and all(n.startswith(PREFIX) for n in names)
    it.close()
    assert os.listdir(tmp_path) == []
    it = parse_pipeline([{"$group": {"_id": "$_id"}}]).run_env(iter(docs), RunEnv(Ctx(tmp_path, 10_000)))
    next(it)
    it.close()
    assert os.listdir(tmp_path) == []


def test_sort_inside_facet_spills(tmp_path):
    docs = _docs(2000)
    pl = [{"$facet": {"a": [{"$sort": {"n": 1, "_id": 1}}, {"$project": {"_id": 1}}]}}]
    got, _env = _run(pl, docs, Ctx(tmp_path, 10_000))
    assert [d["_id"] for d in got[0]["a"]] == [d["_id"] for d in sorted(docs, key=lambda d: (d["n"], d["_id"]))]
