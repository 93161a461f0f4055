"""Collation parsing and the ICU-like ordering approximation."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from mongolake.errors import MongoError
from mongolake.query.collation import compare, parse_collation, values_equal
from mongolake.query.update import parse_update


def test_simple_and_none():
    assert parse_collation(None) is None
    assert parse_collation({"locale": "simple"}) is None


@pytest.mark.parametrize("spec,code", [
    ({}, 40414), ({"strength": 1}, 40414), ({"locale": "en", "bogus": 1}, 40415),
    ({"locale": 5}, 14), ({"locale": "en", "strength": "1"}, 14), ({"locale": "en", "caseLevel": 1}, 14),
    ({"locale": "en", "strength": 6}, 2), ({"locale": "en", "caseFirst": "middle"}, 2),
    ({"locale": "en", "alternate": "x"}, 2), ({"locale": "en", "maxVariable": "x"}, 2),
    ({"locale": "simple", "strength": 1}, 2), ({"locale": "bad locale!"}, 2), ("en", 14),
])
def test_invalid_specs(spec, code):
    with pytest.raises(MongoError) as ei:
        parse_collation(spec)
    assert ei.value.code == code


def test_normalized_spec():
    c = parse_collation({"locale": "fr", "strength": 2})
    assert c.spec["locale"] == "fr" and c.spec["strength"] == 2 and c.spec["caseFirst"] == "off"
    assert c == parse_collation({"locale": "fr", "strength": 2})


def test_strength_levels():
    s1 = parse_collation({"locale": "en", "strength": 1})
    s2 = parse_collation({"locale": "en", "strength": 2})
    s3 = parse_collation({"locale": "en"})
    assert s1.key("Résumé") == s1.key("resume")
    assert s2.key("RESUME") == s2.key("resume") and s2.key("résumé") != s2.key("resume")
    assert s3.key("Resume") != s3.key("resume")
    assert s1.key("a") < s1.key("B") < s1.key("c")  # alphabetical, unlike binary order
    assert s2.key("resume") < s2.key("résumé") < s2.key("resumes")
    assert s3.key("a") < s3.key("A") < s3.key("b")  # lower case first at the tertiary level
    upper = parse_collation({"locale": "en", "caseFirst": "upper"})
    assert upper.key("A") < upper.key("a")
    cl = parse_collation({"locale": "en", "strength": 1, "caseLevel": True})
    assert cl.key("a") != cl.key("A") and cl.key("á") == cl.key("a")


def test_numeric_ordering_and_shifted():
    n = parse_collation({"locale": "en", "numericOrdering": True})
    assert n.key("item2") < n.key("item10") < n.key("item100")
    plain = parse_collation({"locale": "en"})
    assert plain.key("item10") < plain.key("item2")
    sh = parse_collation({"locale": "en", "alternate": "shifted", "strength": 1})
    assert sh.key("black-bird") == sh.key("blackbird") == sh.key("black bird")
    sp = parse_collation({"locale": "en", "alternate": "shifted", "maxVariable": "space", "strength": 1})
    assert sp.key("black bird") == sp.key("blackbird") != sp.key("black-bird")


def test_space_punct_digits_letters_order():
    c = parse_collation({"locale": "en"})
    assert c.key(" ") < c.key("_") < c.key("1") < c.key("a")


def test_compare_values_inside_documents():
    c = parse_collation({"locale": "en", "strength": 2})
    assert compare({"a": "X"}, {"a": "x"}, c) == 0
    assert compare(["B"], ["a"], c) > 0
    assert compare("B", "a") < 0  # no collation: binary
    assert values_equal("Ä", "ä", parse_collation({"locale": "de", "strength": 1}))
    assert not values_equal("a", "A")
    assert compare({"A": 1}, {"a": 1}, c) != 0  # field names are not collated


def test_update_operators_use_collation():
    c = parse_collation({"locale": "en", "strength": 2})
    doc = {"_id": 1, "tags": ["Apple", "pear"], "m": "b"}
    assert not parse_update({"$addToSet": {"tags": "APPLE"}}, collation=c).apply(doc).modified
    assert parse_update({"$pull": {"tags": "PEAR"}}, collation=c).apply(doc).document["tags"] == ["Apple"]
    assert parse_update({"$pullAll": {"tags": ["apple"]}}, collation=c).apply(doc).document["tags"] == ["pear"]
    assert parse_update({"$max": {"m": "C"}}, collation=c).apply(doc).document["m"] == "C"
    assert parse_update({"$max": {"m": "C"}}).apply(doc).document["m"] == "b"  # binary: "C" < "b"
    res = parse_update({"$push": {"tags": {"$each": ["banana"], "$sort": 1}}}, collation=c).apply(doc)
    assert res.document["tags"] == ["Apple", "banana", "pear"]


TEXT = st.text(alphabet="aAbBéÉ -1", max_size=5)


@settings(max_examples=300, deadline=None)
@given(TEXT, TEXT, TEXT, st.sampled_from([1, 2, 3]))
def test_key_order_is_a_total_order(a, b, c, strength):
    coll = parse_collation({"locale": "en", "strength": strength})
    ka, kb, kc = coll.key(a), coll.key(b), coll.key(c)
    if ka <= kb and kb <= kc:
        assert ka <= kc
    if strength == 3:
        # no ignorable characters in this alphabet: tertiary keys tie only for equal strings
        assert (ka == kb) == (a == b)
    # case/accents only matter from strength 3/2 on
    if strength == 1:
        assert coll.key(a.upper()) == coll.key(a.lower())
