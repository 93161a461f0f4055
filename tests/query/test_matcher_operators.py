"""Matcher semantics of the element, evaluation and array operators
($regex, $type, $mod, $size, $all, $elemMatch, $bits*, $jsonSchema, $expr)."""
from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from bson.binary import Binary
from bson.code import Code
from bson.dbref import DBRef
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.objectid import ObjectId
from bson.regex import Regex
from bson.timestamp import Timestamp

from mongolake.query.filter import parse_filter
from mongolake.query.matcher import compile_matcher

UTC = dt.timezone.utc


def m(f, doc) -> bool:
    return compile_matcher(parse_filter(f))(doc)


CASES = [
    # $regex
    ({"a": Regex("^ab")}, {"a": "abc"}, True),
    ({"a": Regex("^ab")}, {"a": "xab"}, False),
    ({"a": re.compile("b")}, {"a": "abc"}, True),
    ({"a": {"$regex": "^AB", "$options": "i"}}, {"a": "abc"}, True),
    ({"a": {"$regex": "^b", "$options": "m"}}, {"a": "a\nb"}, True),
    ({"a": {"$regex": "^b"}}, {"a": "a\nb"}, False),
    ({"a": {"$regex": "a.c", "$options": "s"}}, {"a": "a\nc"}, True),
    ({"a": {"$regex": "a.c"}}, {"a": "a\nc"}, False),
    ({"a": {"$regex": "a b # comment", "$options": "x"}}, {"a": "ab"}, True),
    ({"a": {"$regex": "^a"}}, {"a": ["x", "ay"]}, True),
    ({"a": {"$regex": "^1"}}, {"a": 1}, False),
    ({"a": {"$regex": "x"}}, {"a": Regex("x")}, True),          # stored regex: same pattern/flags
    ({"a": {"$regex": "x"}}, {"a": Regex("x", "i")}, False),
    ({"a": {"$regex": r"\d+$"}}, {"a": "ab12"}, True),
    ({"a": {"$regex": r"^\d"}}, {"a": "٣"}, False),              # \d is ASCII in PCRE
    ({"a": {"$regex": r"(?<y>\d{4})-\k<y>"}}, {"a": "2020-2020"}, True),
    ({"a": {"$regex": r"a\z"}}, {"a": "a\n"}, False),
    ({"a": {"$regex": r"a\Z"}}, {"a": "a\n"}, True),
    ({"a": {"$regex": "[[:digit:]]+"}}, {"a": "x42"}, True),
    ({"a": {"$regex": r"\Q.*\E"}}, {"a": "a.*"}, True),
    ({"a": {"$regex": r"\Q.*\E"}}, {"a": "ab"}, False),
    ({"a": {"$regex": "é", "$options": "i"}}, {"a": "É"}, True),
    ({"a": {"$not": Regex("^a")}}, {"a": "b"}, True),
    ({"a": {"$not": Regex("^a")}}, {}, True),
    ({"a": {"$not": {"$regex": "^a"}}}, {"a": ["b", "ab"]}, False),
    ({"a": {"$regex": ""}}, {"a": ""}, True),
    # $type
    ({"a": {"$type": "number"}}, {"a": 1}, True),
    ({"a": {"$type": "number"}}, {"a": Decimal128("1")}, True),
    ({"a": {"$type": "number"}}, {"a": "1"}, False),
    ({"a": {"$type": "int"}}, {"a": 1}, True),
    ({"a": {"$type": "int"}}, {"a": Int64(1)}, False),
    ({"a": {"$type": "long"}}, {"a": Int64(1)}, True),
    ({"a": {"$type": "long"}}, {"a": 2 ** 40}, True),
    ({"a": {"$type": 1}}, {"a": 1.0}, True),
    ({"a": {"$type": "double"}}, {"a": 1}, False),
    ({"a": {"$type": "decimal"}}, {"a": Decimal128("1")}, True),
    ({"a": {"$type": "string"}}, {"a": ["x", 1]}, True),
    ({"a": {"$type": "array"}}, {"a": []}, True),
    ({"a": {"$type": "array"}}, {"a": [[1]]}, True),
    ({"a": {"$type": "array"}}, {"a": 1}, False),
    ({"a": {"$type": "object"}}, {"a": {"b": 1}}, True),
    ({"a": {"$type": "object"}}, {"a": DBRef("c", 1)}, True),
    ({"a": {"$type": "null"}}, {"a": None}, True),
    ({"a": {"$type": "null"}}, {}, False),
    ({"a": {"$type": "bool"}}, {"a": False}, True),
    ({"a": {"$type": "date"}}, {"a": dt.datetime(2020, 1, 1, tzinfo=UTC)}, True),
    ({"a": {"$type": "objectId"}}, {"a": ObjectId()}, True),
    ({"a": {"$type": "binData"}}, {"a": Binary(b"x", 5)}, True),
    ({"a": {"$type": "binData"}}, {"a": uuid.UUID(int=1)}, True),
    ({"a": {"$type": "regex"}}, {"a": Regex("x")}, True),
    ({"a": {"$type": "timestamp"}}, {"a": Timestamp(1, 1)}, True),
    ({"a": {"$type": "javascript"}}, {"a": Code("x")}, True),
    ({"a": {"$type": "javascriptWithScope"}}, {"a": Code("x", {"y": 1})}, True),
    ({"a": {"$type": "minKey"}}, {"a": MinKey()}, True),
    ({"a": {"$type": "maxKey"}}, {"a": MaxKey()}, True),
    ({"a": {"$type": ["string", "int"]}}, {"a": 3}, True),
    ({"a.b": {"$type": "int"}}, {"a": [{"b": "x"}, {"b": 2}]}, True),
    # $mod (truncation like C, both signs)
    ({"a": {"$mod": [4, 0]}}, {"a": 8}, True),
    ({"a": {"$mod": [4, 1]}}, {"a": 9.9}, True),
    ({"a": {"$mod": [4, -1]}}, {"a": -5}, True),
    ({"a": {"$mod": [-4, 1]}}, {"a": 5}, True),
    ({"a": {"$mod": [4, 3]}}, {"a": -5}, False),
    ({"a": {"$mod": [4, 0]}}, {"a": "8"}, False),
    ({"a": {"$mod": [4, 0]}}, {"a": float("nan")}, False),
    ({"a": {"$mod": [4, 0]}}, {"a": float("inf")}, False),
    ({"a": {"$mod": [4, 2]}}, {"a": Decimal128("6.5")}, True),
    ({"a": {"$mod": [2, 1]}}, {"a": [2, 3]}, True),
    # $size (only arrays)
    ({"a": {"$size": 0}}, {"a": []}, True),
    ({"a": {"$size": 2}}, {"a": [1, [2, 3]]}, True),
    ({"a": {"$size": 1}}, {"a": [[1, 2]]}, True),
    ({"a": {"$size": 1}}, {"a": "x"}, False),
    ({"a": {"$size": 0}}, {}, False),
    ({"a": {"$size": 0}}, {"a": None}, False),
    ({"a.b": {"$size": 1}}, {"a": [{"b": [1]}, {"b": 2}]}, True),
    ({"a": {"$not": {"$size": 1}}}, {"a": 5}, True),
    # $all
    ({"a": {"$all": [1, 2]}}, {"a": [2, 3, 1]}, True),
    ({"a": {"$all": [1, 2]}}, {"a": [1]}, False),
    ({"a": {"$all": [1]}}, {"a": 1}, True),
    ({"a": {"$all": []}}, {"a": []}, False),
    ({"a": {"$all": [[1, 2]]}}, {"a": [1, 2]}, True),
    ({"a": {"$all": [[1, 2]]}}, {"a": [[1, 2], 3]}, True),
    ({"a": {"$all": [Regex("^a"), "bb"]}}, {"a": ["ax", "bb"]}, True),
    ({"a": {"$all": [{"$elemMatch": {"$gt": 5}}, {"$elemMatch": {"$lt": 2}}]}}, {"a": [1, 6]}, True),
    ({"a": {"$all": [{"$elemMatch": {"$gt": 5, "$lt": 7}}]}}, {"a": [1, 8]}, False),
    # $elemMatch (object and value forms)
    ({"a": {"$elemMatch": {"b": 1, "c": 2}}}, {"a": [{"b": 1}, {"c": 2}]}, False),
    ({"a": {"$elemMatch": {"b": 1, "c": 2}}}, {"a": [{"b": 1, "c": 2}]}, True),
    ({"a": {"$elemMatch": {"b": {"$gt": 1}}}}, {"a": {"b": 5}}, False),       # not an array
    ({"a": {"$elemMatch": {"0": 1}}}, {"a": [[1, 2]]}, True),                 # arrays as documents
    ({"a": {"$elemMatch": {}}}, {"a": [1, {}]}, True),
    ({"a": {"$elemMatch": {}}}, {"a": [1, 2]}, False),
    ({"a": {"$elemMatch": {"$or": [{"b": 1}, {"c": 1}]}}}, {"a": [{"c": 1}]}, True),
    ({"a": {"$elemMatch": {"$gte": 80, "$lt": 85}}}, {"a": [82, 90]}, True),
    ({"a": {"$elemMatch": {"$gte": 80, "$lt": 85}}}, {"a": [79, 90]}, False),
    ({"a": {"$elemMatch": {"$ne": 1}}}, {"a": [1, 1]}, False),
    ({"a": {"$elemMatch": {"$ne": 1}}}, {"a": [1, 2]}, True),
    ({"a": {"$elemMatch": {"$not": {"$gt": 1}}}}, {"a": [5, 0]}, True),
    ({"a": {"$elemMatch": {"$size": 1}}}, {"a": [[1], 2]}, True),
    ({"a": {"$elemMatch": {"$elemMatch": {"$gt": 2}}}}, {"a": [[1], [3]]}, True),
    ({"a": {"$elemMatch": {"$exists": True}}}, {"a": [None]}, True),
    ({"a": {"$elemMatch": {"$in": [1, 2]}}}, {"a": [3, 2]}, True),
    ({"a": {"$elemMatch": {"$regex": "^x"}}}, {"a": ["y", "xa"]}, True),
    ({"a": {"$elemMatch": {"$type": "string", "$regex": "b"}}}, {"a": [1, "ab"]}, True),
    ({"a.b": {"$elemMatch": {"$gt": 1}}}, {"a": [{"b": [0]}, {"b": [2]}]}, True),
    ({"a": {"$elemMatch": {"$gt": 1}}}, {"a": [[2]]}, False),                # type bracketing
    # bit tests
    ({"a": {"$bitsAllSet": [1, 5]}}, {"a": 54}, True),
    ({"a": {"$bitsAllSet": 35}}, {"a": 54}, False),
    ({"a": {"$bitsAnySet": [1, 0]}}, {"a": 54}, True),
    ({"a": {"$bitsAllClear": [0, 3]}}, {"a": 54}, True),
    ({"a": {"$bitsAnyClear": [1, 2]}}, {"a": 54}, False),
    ({"a": {"$bitsAllSet": [63, 100]}}, {"a": -1}, True),                    # sign extension
    ({"a": {"$bitsAllSet": [100]}}, {"a": 1}, False),
    ({"a": {"$bitsAllSet": [100000]}}, {"a": -5}, True),
    ({"a": {"$bitsAllClear": [100000]}}, {"a": 5}, True),
    ({"a": {"$bitsAllSet": [0]}}, {"a": 1.0}, True),
    ({"a": {"$bitsAllSet": [0]}}, {"a": 1.5}, False),
    ({"a": {"$bitsAllSet": [0]}}, {"a": Decimal128("3")}, True),
    ({"a": {"$bitsAllSet": [0]}}, {"a": "1"}, False),
    ({"a": {"$bitsAnySet": [9]}}, {"a": Binary(b"\x00\x02")}, True),         # BinData, little-endian bits
    ({"a": {"$bitsAllClear": [20]}}, {"a": Binary(b"\x00\x02")}, True),
    ({"a": {"$bitsAllSet": Binary(b"\x03")}}, {"a": 7}, True),
    ({"a": {"$bitsAnySet": 0}}, {"a": 7}, False),
    # DBRef fields
    ({"a.$id": 1}, {"a": DBRef("c", 1)}, True),
    ({"a.$ref": "c"}, {"a": DBRef("c", 1)}, True),
    ({"a": {"$ref": "c", "$id": 1}}, {"a": DBRef("c", 1)}, True),
    ({"$comment": "ignored", "a": 1}, {"a": 1}, True),
    ({"$alwaysTrue": 1}, {}, True),
]


@pytest.mark.parametrize("f,doc,expected", CASES, ids=[f"{i}:{c[0]}"[:70] for i, c in enumerate(CASES)])
def test_operator_cases(f, doc, expected):
    assert m(f, doc) is expected


SCHEMA = {
    "bsonType": "object",
    "required": ["name", "age"],
    "properties": {
        "name": {"bsonType": "string", "minLength": 2, "maxLength": 5, "pattern": "^[A-Z]"},
        "age": {"bsonType": ["int", "long"], "minimum": 0, "maximum": 150, "exclusiveMaximum": True},
        "tags": {"bsonType": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3,
                 "uniqueItems": True},
        "kind": {"enum": ["a", "b", None]},
        "score": {"type": "number", "multipleOf": 0.5},
        "meta": {"bsonType": "object", "additionalProperties": False, "properties": {"x": {}}},
    },
}
SCHEMA_CASES = [
    ({"name": "Ann", "age": 3}, True),
    ({"name": "Ann"}, False),
    ({"name": "ann", "age": 3}, False),
    ({"name": "A", "age": 3}, False),
    ({"name": "Ann", "age": 150}, False),
    ({"name": "Ann", "age": Int64(149)}, True),
    ({"name": "Ann", "age": 3.0}, False),
    ({"name": "Ann", "age": 3, "tags": ["x", "y"]}, True),
    ({"name": "Ann", "age": 3, "tags": []}, False),
    ({"name": "Ann", "age": 3, "tags": ["x", "x"]}, False),
    ({"name": "Ann", "age": 3, "tags": [1]}, False),
    ({"name": "Ann", "age": 3, "kind": None}, True),
    ({"name": "Ann", "age": 3, "kind": "c"}, False),
    ({"name": "Ann", "age": 3, "score": 2.5}, True),
    ({"name": "Ann", "age": 3, "score": 2.4}, False),
    ({"name": "Ann", "age": 3, "meta": {"x": 1}}, True),
    ({"name": "Ann", "age": 3, "meta": {"y": 1}}, False),
]


@pytest.mark.parametrize("doc,expected", SCHEMA_CASES)
def test_json_schema(doc, expected):
    assert m({"$jsonSchema": SCHEMA}, doc) is expected


def test_json_schema_combinators():
    s = {"anyOf": [{"required": ["a"]}, {"required": ["b"]}], "not": {"required": ["c"]},
         "dependencies": {"d": ["e"]}, "minProperties": 1}
    one = {"oneOf": [{"properties": {"a": {"type": "string"}}}, {"properties": {"a": {"type": "number"}}}]}
    assert m({"$jsonSchema": one}, {"a": "x"}) and m({"$jsonSchema": one}, {"a": 1})
    assert not m({"$jsonSchema": one}, {})                      # both branches accept a missing 'a'
    assert m({"$jsonSchema": s}, {"a": "x"})
    assert not m({"$jsonSchema": s}, {"a": "x", "c": 1})
    assert not m({"$jsonSchema": s}, {"z": 1})
    assert not m({"$jsonSchema": s}, {"b": 1, "d": 1})
    assert m({"$jsonSchema": s}, {"b": 1, "d": 1, "e": 2})
    assert m({"$jsonSchema": {"items": [{"type": "number"}], "additionalItems": False}}, {})
    assert m({"$jsonSchema": {"properties": {"a": {"items": [{"type": "number"}],
                                                    "additionalItems": False}}}}, {"a": [1]})
    assert not m({"$jsonSchema": {"properties": {"a": {"items": [{"type": "number"}],
                                                        "additionalItems": False}}}}, {"a": [1, 2]})
    assert m({"$jsonSchema": {"patternProperties": {"^x": {"type": "string"}}}}, {"xa": "s", "y": 1})
    assert not m({"$jsonSchema": {"patternProperties": {"^x": {"type": "string"}}}}, {"xa": 1})


def _expressions_available() -> bool:
    try:
        from mongolake.query import expressions  # noqa: F401
        return hasattr(expressions, "compile_expression") and hasattr(expressions, "truthy")
    except ImportError:
        return False


def test_expr_uses_the_aggregation_expression_compiler():
    if not _expressions_available():
        from mongolake.errors import MongoError
        with pytest.raises(MongoError) as info:
            parse_filter({"$expr": {"$gt": ["$a", "$b"]}})
        assert info.value.code == 238
        return
    fn = compile_matcher(parse_filter({"$expr": {"$gt": ["$a", "$b"]}}))
    assert fn({"a": 2, "b": 1}) and not fn({"a": 1, "b": 2})
    fn = compile_matcher(parse_filter({"$expr": {"$eq": ["$$ROOT.a", "$$CURRENT.a"]}, "a": 1}))
    assert fn({"a": 1}) and not fn({"a": 2})
