"""String and regular-expression operators."""
from __future__ import annotations

import datetime as dt

from tests.query._exprutil import ev, fails


def test_concat():
    assert ev({"$concat": ["$item", " - ", "$description"]}, {"item": "abc", "description": "product 1"}) == \
        "abc - product 1"
    assert ev({"$concat": ["a", None]}) is None
    assert ev({"$concat": ["a", "$missing"]}) is None
    assert ev({"$concat": []}) == ""
    e = fails({"$concat": ["a", 1]}, 16702)
    assert e.message == "$concat only supports strings, not int"


def test_substr_family():
    doc = {"quarter": "13Q1", "name": "caf\u00e9s"}
    assert ev({"$substr": ["$quarter", 0, 2]}, doc) == "13"
    assert ev({"$substrBytes": ["$quarter", 2, -1]}, doc) == "Q1"
    assert ev({"$substrCP": ["$name", 3, 2]}, doc) == "\u00e9s"
    assert ev({"$substrBytes": ["$name", 3, 2]}, doc) == "\u00e9"
    fails({"$substrBytes": ["$name", 4, 1]}, 28656, doc)
    fails({"$substrCP": ["abc", -1, 1]}, 34455)
    fails({"$substrCP": ["abc", 0, "x"]}, 34452)
    assert ev({"$substrCP": [None, 0, 1]}) == ""
    assert ev({"$substrBytes": [12345, 1, 2]}) == "23"


def test_case_and_compare():
    assert ev({"$toUpper": "abc\u00e9"}) == "ABC\u00e9"
    assert ev({"$toLower": "ABC"}) == "abc"
    assert ev({"$toLower": None}) == ""
    assert ev({"$toUpper": 1.5}) == "1.5"
    fails({"$toLower": [[1]]}, 16007)
    assert ev({"$strcasecmp": ["13Q4", "13q4"]}) == 0
    assert ev({"$strcasecmp": ["13Q1", "13q4"]}) == -1
    assert ev({"$strcasecmp": ["b", "A"]}) == 1


def test_split_trim_len_index():
    assert ev({"$split": ["June-15-2013", "-"]}) == ["June", "15", "2013"]
    assert ev({"$split": [None, "-"]}) is None
    fails({"$split": ["a", ""]}, 40087)
    fails({"$split": [1, "-"]}, 40085)
    assert ev({"$trim": {"input": "  \n good  bye \t "}}) == "good  bye"
    assert ev({"$ltrim": {"input": "xxaxx", "chars": "x"}}) == "axx"
    assert ev({"$rtrim": {"input": "xxaxx", "chars": "x"}}) == "xxa"
    assert ev({"$trim": {"input": None}}) is None
    fails({"$trim": {"input": 1}}, 50699)
    fails({"$trim": {"chars": "a"}}, 50695)
    assert ev({"$strLenCP": "caf\u00e9"}) == 4
    assert ev({"$strLenBytes": "caf\u00e9"}) == 5
    fails({"$strLenCP": None}, 34471)
    assert ev({"$indexOfCP": ["cafeteria", "e"]}) == 3
    assert ev({"$indexOfCP": ["cafeteria", "e", 5]}) == 5
    assert ev({"$indexOfCP": ["cafeteria", "e", 6, 8]}) == -1
    assert ev({"$indexOfCP": ["foo", ""]}) == 0
    assert ev({"$indexOfCP": [None, "a"]}) is None
    assert ev({"$indexOfBytes": ["caf\u00e9teria", "t"]}) == 5
    fails({"$indexOfCP": ["abc", "a", -1]}, 40097)


def test_replace():
    assert ev({"$replaceOne": {"input": "blue paint blue", "find": "blue", "replacement": "red"}}) == \
        "red paint blue"
    assert ev({"$replaceAll": {"input": "blue paint blue", "find": "blue", "replacement": "red"}}) == \
        "red paint red"
    assert ev({"$replaceAll": {"input": None, "find": "a", "replacement": "b"}}) is None
    fails({"$replaceOne": {"input": 1, "find": "a", "replacement": "b"}}, 51746)
    fails({"$replaceOne": {"input": "a", "find": "a"}}, 51747)


def test_regex_ops():
    doc = {"description": "Single LINE description.\nSecond line"}
    assert ev({"$regexMatch": {"input": "$description", "regex": "line"}}, doc) is True
    assert ev({"$regexMatch": {"input": "$description", "regex": "LINE$"}}, doc) is False
    assert ev({"$regexMatch": {"input": "$description", "regex": "^second", "options": "im"}}, doc) is True
    assert ev({"$regexFind": {"input": "$description", "regex": "l(in)e", "options": "i"}}, doc) == \
        {"match": "LINE", "idx": 7, "captures": ["IN"]}
    assert ev({"$regexFind": {"input": "abc", "regex": "z"}}) is None
    all_ = ev({"$regexFindAll": {"input": "a1b22c333", "regex": r"(\d)(x)?"}})
    assert [m["match"] for m in all_] == ["1", "2", "2", "3", "3", "3"]
    assert all_[0] == {"match": "1", "idx": 1, "captures": ["1", None]}
    assert ev({"$regexFindAll": {"input": None, "regex": "a"}}) == []
    assert ev({"$regexMatch": {"input": "$nope", "regex": "a"}}) is False
    assert ev({"$regexFind": {"input": "Ab", "regex": "(?<first>a)", "options": "i"}})["match"] == "A"
    fails({"$regexMatch": {"input": 1, "regex": "a"}}, 51104)
    fails({"$regexMatch": {"input": "a", "regex": "("}}, 51111)
    fails({"$regexMatch": {"input": "a", "regex": "a", "options": "q"}}, 51108)
    from bson.regex import Regex
    assert ev({"$regexMatch": {"input": "ABC", "regex": Regex("abc", "i")}}) is True
    fails({"$regexMatch": {"input": "ABC", "regex": Regex("abc", "i"), "options": "m"}}, 51107)


def test_coerce_to_string_of_date():
    d = dt.datetime(2020, 5, 6, 7, 8, 9, 123000, tzinfo=dt.timezone.utc)
    assert ev({"$toLower": "$d"}, {"d": d}) == "2020-05-06t07:08:09.123z"
