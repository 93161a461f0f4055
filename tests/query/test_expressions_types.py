"""$type, $convert and the $toX shorthands."""
from __future__ import annotations

import datetime as dt

from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId

from mongolake.query.expressions import type_name

from tests.query._exprutil import ev, fails

UTC = dt.timezone.utc


def test_type():
    cases = [("a", "string"), (1, "int"), (2 ** 40, "long"), (1.5, "double"), (True, "bool"), (None, "null")]
    for v, want in cases:
        assert ev({"$type": {"$literal": v}}) == want
    assert ev({"$type": "$nope"}) == "missing"
    assert ev({"$type": [[1]]}) == "array"
    assert ev({"$type": {"$literal": {}}}) == "object"
    assert ev({"$type": Int64(1)}) == "long"
    assert ev({"$type": Decimal128("1")}) == "decimal"
    assert ev({"$type": ObjectId()}) == "objectId"
    assert ev({"$isNumber": "$a"}, {"a": 1.5}) is True
    assert ev({"$isNumber": "$a"}, {"a": "1"}) is False


def test_to_int_long_double_decimal():
    assert ev({"$toInt": "5"}) == 5
    assert ev({"$toInt": 5.9}) == 5
    assert ev({"$toInt": True}) == 1
    assert ev({"$toInt": None}) is None
    fails({"$toInt": "5.5"}, 241)
    fails({"$toInt": 2 ** 40}, 241)
    r = ev({"$toLong": "123"})
    assert r == 123 and type_name(r) == "long"
    assert ev({"$toLong": dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)}) == 1000
    assert ev({"$toDouble": "1.5e3"}) == 1500.0
    assert ev({"$toDouble": True}) == 1.0
    fails({"$toDouble": "abc"}, 241)
    assert ev({"$toDecimal": "1.10"}) == Decimal128("1.10")
    assert ev({"$toDecimal": 5}) == Decimal128("5")
    assert ev({"$toDecimal": True}) == Decimal128("1")


def test_to_string_bool_date_objectid():
    assert ev({"$toString": 2.5}) == "2.5"
    assert ev({"$toString": 2.0}) == "2"
    assert ev({"$toString": True}) == "true"
    oid = ObjectId("5ab9cbfa31c2ab715d42129e")
    assert ev({"$toString": oid}) == "5ab9cbfa31c2ab715d42129e"
    assert ev({"$toString": dt.datetime(2018, 3, 27, 16, 58, 51, 538000, tzinfo=UTC)}) == "2018-03-27T16:58:51.538Z"
    assert ev({"$toBool": 0}) is False and ev({"$toBool": "false"}) is True and ev({"$toBool": ""}) is True
    assert ev({"$toDate": "2018-03-03"}) == dt.datetime(2018, 3, 3, tzinfo=UTC)
    assert ev({"$toDate": Int64(120000000000)}) == dt.datetime(1973, 10, 20, 21, 20, tzinfo=UTC)
    assert ev({"$toDate": oid}) == oid.generation_time
    assert ev({"$toObjectId": "5ab9cbfa31c2ab715d42129e"}) == oid
    fails({"$toObjectId": "xyz"}, 241)
    fails({"$toString": [[1]]}, 241)


def test_convert_options():
    assert ev({"$convert": {"input": "5", "to": "int"}}) == 5
    assert ev({"$convert": {"input": "5", "to": 16}}) == 5
    assert ev({"$convert": {"input": "x", "to": "int", "onError": -1}}) == -1
    assert ev({"$convert": {"input": None, "to": "int", "onNull": 0}}) == 0
    assert ev({"$convert": {"input": "$nope", "to": "int"}}) is None
    assert ev({"$convert": {"input": 1, "to": None}}) is None
    fails({"$convert": {"input": 1, "to": "nonsense"}}, 2)
    fails({"$convert": {"input": 1}}, 2)
    e = fails({"$convert": {"input": "abc", "to": "double"}}, 241)
    assert "Failed to parse number 'abc' in $convert with no onError value" in e.message


def test_to_uuid_and_unsupported_operators():
    from bson.binary import Binary

    u = ev({"$toUUID": "a9b8e0f3-6d6d-4b6f-9a1e-3f2c1d0e9b8a"})
    assert isinstance(u, Binary) and u.subtype == 4 and len(u) == 16
    fails({"$toUUID": "nope"}, 241)
    fails({"$function": {"body": "x", "args": [], "lang": "js"}}, 238)
