"""$out, $merge (all whenMatched / whenNotMatched modes) and $collStats through the context."""
from __future__ import annotations

import pytest

from mongolake.errors import MongoError
from mongolake.query.aggregate import InMemoryPipelineContext, parse_pipeline

from tests.query.aggregate._util import fails, run


def test_out_replaces_collection():
    ctx = InMemoryPipelineContext({"books": [{"_id": 8751, "title": "The Banquet", "author": "Dante", "copies": 2},
                                             {"_id": 8752, "title": "Divine Comedy", "author": "Dante", "copies": 1},
                                             {"_id": 8645, "title": "Eclogues", "author": "Dante", "copies": 2},
                                             {"_id": 7000, "title": "The Odyssey", "author": "Homer", "copies": 10}],
                                   "authors": [{"_id": "old"}]})
    out = run([{"$group": {"_id": "$author", "books": {"$push": "$title"}}}, {"$out": "authors"}],
              ctx.coll("books"), ctx)
    assert out == []
    assert ctx.coll("authors") == [{"_id": "Dante", "books": ["The Banquet", "Divine Comedy", "Eclogues"]},
                                   {"_id": "Homer", "books": ["The Odyssey"]}]
    run([{"$project": {"title": 1, "_id": 0}}, {"$out": {"db": "other", "coll": "titles"}}], ctx.coll("books"), ctx)
    titles = ctx.coll("titles", db="other")
    assert len(titles) == 4 and all("_id" in d for d in titles)
    with pytest.raises(MongoError) as ei:
        run([{"$project": {"_id": 0, "author": 1}}, {"$set": {"_id": "$author"}}, {"$out": "dups"}],
            ctx.coll("books"), ctx)
    assert ei.value.code == 11000
    fails([{"$out": "system.x"}], 17385)
    fails([{"$out": 5}], 16990)


def _merge_ctx():
    return InMemoryPipelineContext({"target": [{"_id": 1, "a": 1, "b": 1}, {"_id": 2, "a": 2, "b": 2}]})


def test_merge_defaults_merge_and_insert():
    ctx = _merge_ctx()
    run([{"$merge": {"into": "target"}}], [{"_id": 1, "b": 10, "c": 10}, {"_id": 3, "a": 3}], ctx)
    assert ctx.coll("target") == [{"_id": 1, "a": 1, "b": 10, "c": 10}, {"_id": 2, "a": 2, "b": 2},
                                  {"_id": 3, "a": 3}]


def test_merge_modes():
    src = [{"_id": 1, "b": 10}, {"_id": 3, "a": 3}]
    ctx = _merge_ctx()
    run([{"$merge": {"into": "target", "whenMatched": "replace", "whenNotMatched": "discard"}}], src, ctx)
    assert ctx.coll("target") == [{"_id": 1, "b": 10}, {"_id": 2, "a": 2, "b": 2}]
    ctx = _merge_ctx()
    run([{"$merge": {"into": "target", "whenMatched": "keepExisting"}}], src, ctx)
    assert ctx.coll("target") == [{"_id": 1, "a": 1, "b": 1}, {"_id": 2, "a": 2, "b": 2}, {"_id": 3, "a": 3}]
    ctx = _merge_ctx()
    fails([{"$merge": {"into": "target", "whenMatched": "fail"}}], 11000, src, ctx)
    ctx = _merge_ctx()
    fails([{"$merge": {"into": "target", "whenNotMatched": "fail"}}], 13113, src, ctx)
    ctx = _merge_ctx()
    run([{"$merge": {"into": "target", "whenMatched": [{"$set": {"b": {"$add": ["$b", "$$new.b"]}}}]}}], src, ctx)
    assert ctx.coll("target")[0] == {"_id": 1, "a": 1, "b": 11}
    ctx = _merge_ctx()
    run([{"$merge": {"into": "target", "let": {"inc": "$b"},
                     "whenMatched": [{"$set": {"b": {"$add": ["$b", "$$inc"]}}}], "whenNotMatched": "discard"}}],
        src, ctx)
    assert ctx.coll("target") == [{"_id": 1, "a": 1, "b": 11}, {"_id": 2, "a": 2, "b": 2}]


def test_merge_on_other_fields():
    ctx = InMemoryPipelineContext({"t": [{"_id": 1, "k": "x", "v": 1}]})
    run([{"$merge": {"into": "t", "on": "k", "whenMatched": "merge"}}],
        [{"k": "x", "v": 2}, {"k": "y", "v": 3}, {"k": "y", "v": 4}], ctx)
    docs = ctx.coll("t")
    assert docs[0] == {"_id": 1, "k": "x", "v": 2}
    assert [d["v"] for d in docs if d["k"] == "y"] == [4]  # the second "y" merged into the pending insert
    fails([{"$merge": {"into": "t", "on": "k"}}], 51132, [{"v": 1}], ctx)


def test_merge_parse_errors():
    fails([{"$merge": {"into": "t", "whenMatched": "explode"}}], 2)
    fails([{"$merge": {"into": "t", "whenNotMatched": "maybe"}}], 2)
    fails([{"$merge": {"coll": "t"}}], 40415)
    fails([{"$merge": {"into": "t", "whenMatched": [{"$group": {"_id": 1}}]}}], 72)
    fails([{"$merge": {"into": "t", "on": []}}], 51186)
    assert parse_pipeline([{"$merge": "t"}]).writes_output


def test_coll_stats():
    ctx = InMemoryPipelineContext({"c": [{"_id": 1}, {"_id": 2}]}, collection="c")
    out = run([{"$collStats": {"count": {}, "storageStats": {}}}], [], ctx)
    assert out[0]["ns"] == "test.c" and out[0]["count"] == 2 and out[0]["storageStats"]["count"] == 2
    fails([{"$limit": 1}, {"$collStats": {}}], 40602)
    fails([{"$collStats": {"bogus": {}}}], 40415)
