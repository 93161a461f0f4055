"""Upsert documents and aggregation-pipeline updates."""
from __future__ import annotations

import datetime as dt

import pytest
from bson.objectid import ObjectId
from bson.timestamp import Timestamp

from mongolake.errors import MongoError
from mongolake.query.update import parse_update, upsert_document

NOW = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def test_upsert_seeds_from_equalities():
    doc = upsert_document({"a": 1, "b.c": 2, "$and": [{"d": 3}], "e": {"$gt": 5}}, {"$set": {"z": 1}})
    assert isinstance(doc["_id"], ObjectId)
    assert list(doc) == ["_id", "a", "b", "d", "z"]
    assert {k: v for k, v in doc.items() if k != "_id"} == {"a": 1, "b": {"c": 2}, "d": 3, "z": 1}


def test_upsert_id_from_filter_first_and_operators():
    doc = upsert_document({"x": {"$eq": 2}, "_id": 7, "y": {"$in": [4]}}, {"$inc": {"n": 1}})
    assert doc == {"_id": 7, "x": 2, "y": 4, "n": 1}
    assert list(doc) == ["_id", "x", "y", "n"]


def test_upsert_set_on_insert_and_current_date():
    doc = upsert_document({"_id": 1}, {"$setOnInsert": {"created": True}, "$currentDate": {"t": True}}, now=NOW)
    assert doc == {"_id": 1, "created": True, "t": NOW}


def test_upsert_set_id_in_update():
    assert upsert_document({"a": 1}, {"$set": {"_id": 5}}) == {"_id": 5, "a": 1}
    with pytest.raises(MongoError) as ei:
        upsert_document({"_id": 1}, {"$set": {"_id": 5}})
    assert ei.value.code == 66


def test_upsert_replacement_uses_only_id():
    assert upsert_document({"_id": 3, "a": 1}, {"b": 2}) == {"_id": 3, "b": 2}
    doc = upsert_document({"a": 1}, {"b": 2})
    assert list(doc) == ["_id", "b"] and isinstance(doc["_id"], ObjectId)
    with pytest.raises(MongoError) as ei:
        upsert_document({"_id": 3}, {"_id": 4, "b": 2})
    assert ei.value.code == 66
    with pytest.raises(MongoError) as ei:
        upsert_document({"_id.x": 3}, {"b": 2})
    assert ei.value.code == 111


def test_upsert_conflicting_equalities():
    with pytest.raises(MongoError) as ei:
        upsert_document({"a": 1, "a.b": 2}, {"$set": {"c": 1}})
    assert ei.value.code == 54
    assert "cannot infer query fields to set, both paths 'a.b' and 'a' are matched" in ei.value.message
    with pytest.raises(MongoError) as ei:
        upsert_document({"$and": [{"a": 1}, {"a": 2}]}, {"$set": {"c": 1}})
    assert ei.value.code == 54 and "path 'a' is matched twice" in ei.value.message


def test_upsert_ignores_non_equalities_and_regexes():
    doc = upsert_document({"a": {"$gt": 1}, "b": {"$regex": "x"}, "c": {"$in": [1, 2]}, "$or": [{"d": 1}, {"e": 1}]},
                          {"$set": {"z": 0}})
    assert set(doc) == {"_id", "z"}


def test_upsert_positional_fails_like_mongod():
    with pytest.raises(MongoError) as ei:
        upsert_document({"a": 1}, {"$set": {"arr.$": 1}})
    assert ei.value.code == 2 and "positional operator did not find the match" in ei.value.message


def test_upsert_array_id_is_invalid():
    with pytest.raises(MongoError) as ei:
        upsert_document({"a": 1}, {"$set": {"_id": [1, 2]}})
    assert ei.value.code == 53


def test_upsert_pipeline():
    doc = upsert_document({"_id": 1, "a": 2}, [{"$set": {"b": {"$add": ["$a", 1]}}}])
    assert doc == {"_id": 1, "a": 2, "b": 3}


def test_pipeline_set_unset_and_description():
    u = parse_update([{"$set": {"total": {"$add": ["$a", "$b"]}, "info.seen": True}}, {"$unset": ["a", "tmp"]}])
    res = u.apply({"_id": 1, "a": 1, "b": 2, "info": {"x": 1}, "tmp": 0})
    assert res.document == {"_id": 1, "b": 2, "info": {"x": 1, "seen": True}, "total": 3}
    assert res.description == {"updatedFields": {"info.seen": True, "total": 3}, "removedFields": ["a", "tmp"],
                               "truncatedArrays": []}


def test_pipeline_truncated_arrays_and_noop():
    u = parse_update([{"$set": {"arr": {"$slice": ["$arr", 2]}}}])
    res = u.apply({"_id": 1, "arr": [1, 2, 3]})
    assert res.document == {"_id": 1, "arr": [1, 2]}
    assert res.description["truncatedArrays"] == [{"field": "arr", "newSize": 2}]
    res = u.apply({"_id": 1, "arr": [1]})
    assert not res.modified


def test_pipeline_project_replace_and_variables():
    res = parse_update([{"$project": {"a": 1}}]).apply({"_id": 1, "a": 1, "b": 2})
    assert res.document == {"_id": 1, "a": 1}
    res = parse_update([{"$replaceWith": {"x": "$a.y"}}]).apply({"_id": 1, "a": {"y": 5}})
    assert res.document == {"_id": 1, "x": 5}  # _id kept when the result has none
    res = parse_update([{"$replaceRoot": {"newRoot": "$a"}}]).apply({"_id": 1, "a": {"y": 5}})
    assert res.document == {"_id": 1, "y": 5}
    res = parse_update([{"$set": {"t": "$$NOW", "c": "$$CLUSTER_TIME", "k": "$$k"}}], let={"k": 9}).apply(
        {"_id": 1}, now=NOW, timestamp=Timestamp(5, 1))
    assert res.document == {"_id": 1, "t": NOW, "c": Timestamp(5, 1), "k": 9}


def test_pipeline_add_fields_into_arrays_of_documents():
    res = parse_update([{"$addFields": {"a.b": 1}}]).apply({"_id": 1, "a": [{"c": 1}, {"c": 2}]})
    assert res.document == {"_id": 1, "a": [{"c": 1, "b": 1}, {"c": 2, "b": 1}]}
