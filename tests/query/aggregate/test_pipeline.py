"""Pipeline parsing, introspection for the engine, optimisation and memory limits."""
from __future__ import annotations

import pytest

from mongolake.errors import MongoError
from mongolake.query.aggregate import InMemoryPipelineContext, parse_pipeline

from tests.query.aggregate._util import fails, run


def test_stage_shape_errors():
    e = fails([{"$foo": 1}], 40324)
    assert e.message == "Unrecognized pipeline stage name: '$foo'"
    e = fails([{"$match": {}, "$limit": 1}], 40323)
    assert e.message == "A pipeline stage specification object must contain exactly one field."
    fails([{}], 40323)
    fails(["$match"], 40323)
    fails({"$match": {}}, 14)
    fails([{"$search": {}}], 238)
    fails([{"$out": "x"}, {"$limit": 1}], 40601)
    fails([{"$limit": 1}, {"$documents": []}], 40602)
    fails([{"$facet": {"a": [{"$out": "x"}]}}], 40600)
    fails([{"$lookup": {"from": "x", "as": "y", "pipeline": [{"$merge": "z"}]}}], 51047)


def test_leading_match_and_rest():
    p = parse_pipeline([{"$match": {"a": 1}}, {"$match": {"b": 2}}, {"$project": {"a": 1, "c": 1}}, {"$match": {"c": 3}}])
    assert p.leading_match() == {"$and": [{"a": 1}, {"b": 2}]}
    rest = p.without_leading_match()
    assert rest.stage_names == ["$project", "$match"]
    assert rest.leading_match() is None
    assert parse_pipeline([{"$match": {"a": 1}}]).leading_match() == {"a": 1}
    assert parse_pipeline([]).leading_match() is None
    # the rest of a pipeline runs on pre-filtered input
    docs = [{"_id": 1, "a": 1, "b": 2, "c": 3}, {"_id": 2, "a": 1, "b": 2, "c": 4}]
    assert list(rest.run(docs, InMemoryPipelineContext())) == [{"_id": 1, "a": 1, "c": 3}]


def test_pure_count_detection():
    pc = parse_pipeline([{"$match": {"a": 1}}, {"$count": "n"}]).pure_count()
    assert pc is not None and pc.filter == {"a": 1} and pc.field == "n"
    assert pc.result(0) == [] and pc.result(5) == [{"n": 5}]
    pc = parse_pipeline([{"$group": {"_id": None, "total": {"$sum": 1}}}]).pure_count()
    assert pc is not None and pc.filter == {} and pc.result(3) == [{"_id": None, "total": 3}]
    assert parse_pipeline([{"$group": {"_id": None, "n": {"$count": {}}}}]).pure_count() is not None
    assert parse_pipeline([{"$group": {"_id": "$a", "n": {"$sum": 1}}}]).pure_count() is None
    assert parse_pipeline([{"$group": {"_id": None, "n": {"$sum": 2}}}]).pure_count() is None
    assert parse_pipeline([{"$match": {}}, {"$limit": 2}, {"$count": "n"}]).pure_count() is None
    # the detection agrees with actually running the pipeline
    docs = [{"a": 1}, {"a": 2}, {"a": 1}]
    for pl in ([{"$match": {"a": 1}}, {"$count": "n"}], [{"$group": {"_id": None, "n": {"$sum": 1}}}]):
        p = parse_pipeline(pl)
        matcher = [d for d in docs if not p.pure_count().filter or d["a"] == 1]
        assert p.pure_count().result(len(matcher)) == run(pl, docs)


def test_writes_output_and_collectionless():
    assert parse_pipeline([{"$out": "x"}]).writes_output
    assert parse_pipeline([{"$merge": {"into": "x"}}]).output_namespace == (None, "x")
    assert parse_pipeline([{"$out": {"db": "d", "coll": "x"}}]).output_namespace == ("d", "x")
    assert not parse_pipeline([{"$limit": 1}]).writes_output
    assert parse_pipeline([{"$documents": [{"a": 1}]}]).is_collectionless


def test_sort_limit_becomes_top_k():
    p = parse_pipeline([{"$sort": {"a": -1}}, {"$skip": 1}, {"$limit": 2}])
    assert p.to_specs()[0] == {"$sort": {"sortKey": {"a": -1}, "limit": 3}}
    docs = [{"a": i % 7, "i": i} for i in range(50)]
    got = list(p.run(docs, InMemoryPipelineContext()))
    want = sorted(docs, key=lambda d: -d["a"])[1:3]
    assert got == want
    # ties keep input order, like a stable sort
    assert run([{"$sort": {"a": 1}}, {"$limit": 3}], [{"a": 1, "i": 0}, {"a": 0, "i": 1}, {"a": 1, "i": 2},
                                                      {"a": 1, "i": 3}]) == \
        [{"a": 0, "i": 1}, {"a": 1, "i": 0}, {"a": 1, "i": 2}]


def test_memory_limit_without_allow_disk_use():
    docs = [{"_id": i, "pad": "x" * 200} for i in range(200)]
    small = InMemoryPipelineContext(allow_disk_use=False, memory_limit_bytes=10_000)
    for stage in ({"$sort": {"pad": 1}}, {"$group": {"_id": "$_id", "all": {"$push": "$$ROOT"}}},
                  {"$facet": {"a": [{"$limit": 1}]}}):
        with pytest.raises(MongoError) as ei:
            list(parse_pipeline([stage]).run(docs, small))
        assert ei.value.code == 292
    # allowDiskUse (the default since MongoDB 6.0): no limit enforced
    roomy = InMemoryPipelineContext(allow_disk_use=True, memory_limit_bytes=10_000)
    assert len(list(parse_pipeline([{"$sort": {"pad": 1}}]).run(docs, roomy))) == 200
    # a top-k sort only holds k documents
    assert len(list(parse_pipeline([{"$sort": {"pad": 1}}, {"$limit": 5}]).run(docs, small))) == 5


def test_let_variables_checked_and_used():
    ctx = InMemoryPipelineContext(variables={"target": 2})
    docs = [{"a": 1}, {"a": 2}]
    assert run([{"$match": {"$expr": {"$eq": ["$a", "$$target"]}}}], docs, ctx, let_vars=["target"]) == [{"a": 2}]
    fails([{"$project": {"x": "$$nope"}}], 17276, let_vars=["target"])
    now = parse_pipeline([{"$project": {"now": "$$NOW", "_id": 0}}])
    a, b = list(now.run([{}, {}], InMemoryPipelineContext()))
    assert a["now"] == b["now"]  # $$NOW is fixed for the whole run


def test_match_after_sort_moves_first():
    p = parse_pipeline([{"$sort": {"a": 1}}, {"$match": {"a": {"$gt": 1}}}, {"$limit": 2}])
    assert p.stage_names == ["$match", "$sort", "$limit"]
    assert p.leading_match() == {"a": {"$gt": 1}}
    docs = [{"a": 3}, {"a": 1}, {"a": 2}, {"a": 4}]
    assert list(p.run(docs, InMemoryPipelineContext())) == [{"a": 2}, {"a": 3}]
