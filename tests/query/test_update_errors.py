"""Update errors: codes and messages as mongod reports them, at parse time and at apply time."""
from __future__ import annotations

import pytest
from bson.int64 import Int64

from mongolake.errors import MongoError
from mongolake.query.update import parse_update

# (spec, kwargs for parse_update, code, message fragment)
PARSE_ERRORS = [
    ({"$inc": {"a": "x"}}, {}, 14, 'Cannot increment with non-numeric argument: {a: "x"}'),
    ({"$mul": {"a": True}}, {}, 14, "Cannot multiply with non-numeric argument: {a: true}"),
    ({"$foo": {"a": 1}}, {}, 9, "Unknown modifier: $foo. Expected a valid update modifier or pipeline-style update"),
    ({"$set": {"a": 1}, "b": 2}, {}, 9, "Unknown modifier: b"),
    ({"$set": 1}, {}, 9, "Modifiers operate on fields but we found type int instead. For example: "
                         "{$mod: {<field>: ...}} not {$set: 1}"),
    ({"$set": {"a": 1}, "$inc": {"a": 1}}, {}, 40, "Updating the path 'a' would create a conflict at 'a'"),
    ({"$set": {"a.b": 1}, "$inc": {"a": 1}}, {}, 40, "Updating the path 'a' would create a conflict at 'a'"),
    ({"$set": {"a": 1}, "$inc": {"a.b": 1}}, {}, 40, "Updating the path 'a.b' would create a conflict at 'a'"),
    ({"$set": {"a.$[].b": 1, "a.c": 1}}, {}, 40, "Updating the path 'a.c' would create a conflict at 'a'"),
    ({"$rename": {"a": "b"}, "$set": {"b": 1}}, {}, 40, "Updating the path 'b' would create a conflict at 'b'"),
    ({"$rename": {"a": "b"}, "$set": {"a": 1}}, {}, 40, "Updating the path 'a' would create a conflict at 'a'"),
    ({"a": 1, "$set": {"b": 1}}, {}, 52, "The dollar ($) prefixed field '$set' in '$set' is not allowed in the "
                                         "context of an update's replacement document"),
    ({"$set": {"": 1}}, {}, 56, "An empty update path is not valid."),
    ({"$set": {"a..b": 1}}, {}, 56, "The update path 'a..b' contains an empty field name, which is not allowed."),
    ({"$set": {"a.$.b.$": 1}}, {}, 2, "Too many positional (i.e. '$') elements found in path 'a.$.b.$'"),
    ({"$set": {"$.a": 1}}, {}, 2, "Cannot have positional (i.e. '$') element in the first position in path '$.a'"),
    ({"$set": {"$[].a": 1}}, {}, 2, "Cannot have array filter identifier (i.e. '$[<id>]') element in the first "
                                    "position in path '$[].a'"),
    ({"$set": {"a.$[x]": 1}}, {}, 2, "No array filter found for identifier 'x' in path 'a.$[x]'"),
    ({"$set": {"a": 1}}, {"array_filters": [{"x": 1}]}, 9, "The array filter for identifier 'x' was not used in "
                                                           "the update { $set: { a: 1 } }"),
    ({"$set": {"a.$[x]": 1}}, {"array_filters": [{"x": 1}, {"x": 2}]}, 9,
     "Found multiple array filters with the same top-level field name x"),
    ({"$set": {"a.$[x]": 1}}, {"array_filters": [{"x": 1, "y": 2}]}, 9, "Expected a single top-level field name"),
    ({"$set": {"a.$[X]": 1}}, {"array_filters": [{"X": 1}]}, 2,
     "must be an alphanumeric string beginning with a lowercase letter, found 'X'"),
    ({"$set": {"a.$[x]": 1}}, {"array_filters": [{}]}, 9, "Cannot use an expression without a top-level field name"),
    ([{"$set": {"a": 1}}], {"array_filters": [{"x": 1}]}, 9, "arrayFilters may not be specified for pipeline-style"),
    ([{"$match": {"a": 1}}], {}, 72, "$match is not allowed to be used within an update"),
    ([{"$bogus": {}}], {}, 40324, "Unrecognized pipeline stage name: '$bogus'"),
    ({"a": 1}, {"multi": True}, 9, "multi update is not supported for replacement-style update"),
    (5, {}, 9, "Update argument must be either an object or an array"),
    # $rename
    ({"$rename": {"a": 1}}, {}, 2, "The 'to' field for $rename must be a string: a: 1"),
    ({"$rename": {"a": "a"}}, {}, 2, 'The source and target field for $rename must differ: a: "a"'),
    ({"$rename": {"a": "a.b"}}, {}, 2, 'The source and target field for $rename must not be on the same path: a: "a.b"'),
    ({"$rename": {"a.b": "a"}}, {}, 2, "must not be on the same path"),
    ({"$rename": {"a.$": "b"}}, {}, 2, "The source field for $rename may not be dynamic: a.$"),
    ({"$rename": {"a": "b.$[]"}}, {}, 2, "The destination field for $rename may not be dynamic: b.$[]"),
    # $push / $addToSet / $pop / $pullAll / $bit / $currentDate
    ({"$push": {"a": {"$each": 1}}}, {}, 2, "The argument to $each in $push must be an array but it was of type: int"),
    ({"$push": {"a": {"$each": [], "$foo": 1}}}, {}, 2, "Unrecognized clause in $push: $foo"),
    ({"$push": {"a": {"$each": [], "$slice": "x"}}}, {}, 2, "The value for $slice must be an integer value but was "
                                                            "given type: string"),
    ({"$push": {"a": {"$each": [], "$slice": 1.5}}}, {}, 2, "The value for $slice must be an integer value"),
    ({"$push": {"a": {"$each": [], "$position": "x"}}}, {}, 2, "The value for $position must be an integer value, "
                                                               "not of type: string"),
    ({"$push": {"a": {"$each": [], "$sort": 2}}}, {}, 2, "The $sort element value must be either 1 or -1"),
    ({"$push": {"a": {"$each": [], "$sort": {}}}}, {}, 2, "The $sort pattern is empty when it should be a set of fields."),
    ({"$push": {"a": {"$each": [], "$sort": "x"}}}, {}, 2, "The $sort is invalid: use 1/-1 to sort the whole element"),
    ({"$push": {"a": {"$each": [], "$sort": {"b..c": 1}}}}, {}, 2, "The $sort field is a dotted field but has an "
                                                                   "empty part: b..c"),
    ({"$addToSet": {"a": {"$each": 1}}}, {}, 14, "The argument to $each in $addToSet must be an array but it was of "
                                                 "type int"),
    ({"$addToSet": {"a": {"$each": [1], "b": 1}}}, {}, 2, "Found unexpected fields after $each in $addToSet: "
                                                          "{ $each: [ 1 ], b: 1 }"),
    ({"$pop": {"a": 2}}, {}, 9, "$pop expects 1 or -1, found: 2"),
    ({"$pop": {"a": "x"}}, {}, 9, 'Expected a number in: a: "x"'),
    ({"$pullAll": {"a": 1}}, {}, 2, "$pullAll requires an array argument but was given a int"),
    ({"$bit": {"a": 5}}, {}, 2, "The $bit modifier is not compatible with a int. You must pass in an embedded "
                                "document: {$bit: {field: {and/or/xor: #}}."),
    ({"$bit": {"a": {"not": 5}}}, {}, 2, "The $bit modifier only supports 'and', 'or', and 'xor', not 'not' which "
                                         "is an unknown operator: {not: 5}"),
    ({"$bit": {"a": {"and": 1.5}}}, {}, 2, "The $bit modifier field must be an Integer(32/64 bit); a 'double' is not "
                                           "supported here: {and: 1.5}"),
    ({"$bit": {"a": {}}}, {}, 2, "You must pass in at least one bitwise operation."),
    ({"$currentDate": {"a": 1}}, {}, 2, "int is not valid type for $currentDate. Please use a boolean ('true') or a "
                                        "$type expression ({$type: 'timestamp/date'})."),
    ({"$currentDate": {"a": {"$type": "x"}}}, {}, 2, "The '$type' string field is required to be 'date' or "
                                                     "'timestamp'"),
    ({"$currentDate": {"a": {"x": "date"}}}, {}, 2, "Unrecognized $currentDate option: x"),
    ({"_id": [1], "a": 1}, {}, 53, "The '_id' value cannot be of type array"),
]


@pytest.mark.parametrize("spec,kwargs,code,message", PARSE_ERRORS)
def test_parse_errors(spec, kwargs, code, message):
    with pytest.raises(MongoError) as ei:
        parse_update(spec, **kwargs)
    assert ei.value.code == code
    assert message in ei.value.message


# (spec, document, kwargs for apply, code, message fragment)
APPLY_ERRORS = [
    ({"$inc": {"a": 1}}, {"_id": 1, "a": "x"}, {}, 14,
     "Cannot apply $inc to a value of non-numeric type. {_id: 1} has the field 'a' of non-numeric type string"),
    ({"$mul": {"a.b": 1}}, {"_id": "k", "a": {"b": None}}, {}, 14,
     "Cannot apply $mul to a value of non-numeric type. {_id: \"k\"} has the field 'b' of non-numeric type null"),
    ({"$inc": {"a": 1}}, {"_id": 1, "a": Int64(2**63 - 1)}, {}, 2,
     "Failed to apply $inc operations to current value ((NumberLong)9223372036854775807) for document {_id: 1}"),
    ({"$mul": {"a": Int64(2)}}, {"_id": 1, "a": Int64(2**62)}, {}, 2, "Failed to apply $mul operations"),
    ({"$inc": {"a": Int64(2**63 - 1)}}, {"_id": 1, "a": 42}, {}, 2,
     "Failed to apply $inc operations to current value ((NumberInt)42) for document {_id: 1}"),
    ({"$push": {"a": 1}}, {"_id": 1, "a": 1}, {}, 2,
     "The field 'a' must be an array but is of type int in document {_id: 1}"),
    ({"$push": {"x.a": 1}}, {"_id": 1, "x": {"a": {}}}, {}, 2,
     "The field 'x.a' must be an array but is of type object in document {_id: 1}"),
    ({"$addToSet": {"a": 1}}, {"_id": 1, "a": "s"}, {}, 2,
     "Cannot apply $addToSet to non-array field. Field named 'a' has non-array type string"),
    ({"$pop": {"a": 1}}, {"_id": 1, "a": 1}, {}, 14, "Path 'a' contains an element of non-array type 'int'"),
    ({"$pull": {"a": 1}}, {"_id": 1, "a": 1}, {}, 2, "Cannot apply $pull to a non-array value"),
    ({"$pullAll": {"a": [1]}}, {"_id": 1, "a": {}}, {}, 2, "Cannot apply $pull to a non-array value"),
    ({"$pop": {"a.b": 1}}, {"_id": 1, "a": 1}, {}, 28,
     "Cannot use the part (b) of (a.b) to traverse the element ({a: 1})"),
    ({"$bit": {"a": {"and": 1}}}, {"_id": 1, "a": 1.5}, {}, 2, "Cannot apply $bit to a value of non-integral type."),
    ({"$set": {"a.b": 1}}, {"_id": 1, "a": 1}, {}, 28, "Cannot create field 'b' in element {a: 1}"),
    ({"$set": {"a.b.c": 1}}, {"_id": 1, "a": {"b": "x"}}, {}, 28, 'Cannot create field \'c\' in element {b: "x"}'),
    ({"$set": {"a.x": 1}}, {"_id": 1, "a": [1]}, {}, 28, "Cannot create field 'x' in element {a: [ 1 ]}"),
    ({"$inc": {"a.b": 1}}, {"_id": 1, "a": None}, {}, 28, "Cannot create field 'b' in element {a: null}"),
    ({"$set": {"_id": 2}}, {"_id": 1}, {}, 66,
     "Performing an update on the path '_id' would modify the immutable field '_id'"),
    ({"$unset": {"_id": 1}}, {"_id": 1}, {}, 66, "would modify the immutable field '_id'"),
    ({"$inc": {"_id.x": 1}}, {"_id": {"x": 1}}, {}, 66, "would modify the immutable field '_id'"),
    ({"$set": {"_id.y": 1}}, {"_id": {"x": 1}}, {}, 66, "Updating the path '_id' to _id: { x: 1, y: 1 } would "
                                                        "modify the immutable field '_id'"),
    ({"$rename": {"_id": "b"}}, {"_id": 1}, {}, 66, "Unsetting the path '_id' using $rename would modify the "
                                                    "immutable field '_id'"),
    ({"$rename": {"a": "_id"}}, {"_id": 1, "a": 2}, {}, 66, "Performing an update on the path '_id'"),
    ({"_id": 2, "a": 1}, {"_id": 1}, {}, 66, "After applying the update, the (immutable) field '_id' was found to "
                                             "have been altered to _id: 2"),
    ({"$set": {"$x": 1}}, {"_id": 1}, {}, 52, "The dollar ($) prefixed field '$x' in '$x' is not allowed"),
    ({"$set": {"a.$": 1}}, {"_id": 1, "a": [1]}, {}, 2,
     "The positional operator did not find the match needed from the query."),
    ({"$set": {"a.$[]": 1}}, {"_id": 1, "a": 5}, {}, 2, "Cannot apply array updates to non-array element a: 5"),
    ({"$set": {"x.$[].b": 1}}, {"_id": 1}, {}, 2,
     "The path 'x' must exist in the document in order to apply array updates."),
    ({"$rename": {"a.0.b": "c"}}, {"_id": 1, "a": [{"b": 1}]}, {}, 2,
     "The source field cannot be an array element, 'a.0.b' in doc with _id: 1 has an array field called 'a'"),
    ({"$rename": {"c": "a.0.b"}}, {"_id": 1, "c": 1, "a": [{"b": 1}]}, {}, 2,
     "The destination field cannot be an array element, 'a.0.b' in doc with _id: 1 has an array field called 'a'"),
    ({"$rename": {"a.b": "c"}}, {"_id": 1, "a": 1}, {}, 28, "to traverse the element"),
    ({"$set": {"a.2000000": 1}}, {"_id": 1, "a": []}, {}, 34, "can't backfill more than 1500000 elements"),
    ([{"$replaceWith": "$a"}], {"_id": 1, "a": 5}, {}, 40228, "must evaluate to an object, but resulting value was: 5"),
    ([{"$set": {"_id": 2}}], {"_id": 1}, {}, 66, "the (immutable) field '_id' was found to have been altered"),
]


@pytest.mark.parametrize("spec,doc,kwargs,code,message", APPLY_ERRORS)
def test_apply_errors(spec, doc, kwargs, code, message):
    u = parse_update(spec)
    with pytest.raises(MongoError) as ei:
        u.apply(doc, **kwargs)
    assert ei.value.code == code, ei.value
    assert message in ei.value.message, ei.value.message


def test_array_filters_conflict_when_two_filters_match_one_element():
    u = parse_update({"$set": {"a.$[x]": 1, "a.$[y]": 2}}, array_filters=[{"x": {"$gt": 0}}, {"y": {"$gt": 1}}])
    res = u.apply({"_id": 1, "a": [1]})  # only x matches 1: no conflict, and 1 -> 1 is a no-op
    assert res.document == {"_id": 1, "a": [1]} and not res.modified
    with pytest.raises(MongoError) as ei:
        u.apply({"_id": 1, "a": [5]})
    assert ei.value.code == 40 and "Update created a conflict at 'a.0'" in ei.value.message


def test_noop_update_on_id_is_allowed():
    assert not parse_update({"$set": {"_id": 1}}).apply({"_id": 1}).modified
    assert not parse_update({"$min": {"_id": 5}}).apply({"_id": 1}).modified
