"""Text search language layer: tokenizer, query grammar, spec normalisation, scoring,
and the ``$meta`` parts of find projections and sorts (unit tests)."""
from __future__ import annotations

import math

import pytest

from mongolake.errors import MongoError
from mongolake.query.meta import attach
from mongolake.query.projection import parse_projection
from mongolake.query.sort import parse_sort
from mongolake.query.text import CompiledQuery, TextQuery, TextSpec, fix_spec, parse_text_filter
from mongolake.query.text.languages import canonical, resolve
from mongolake.query.text.tokenizer import phrase_matches, tokens


def test_tokenizer_english():
    assert tokens("The Quick brown foxes don't JUMP; e-mail foo_bar", "english") == \
        ["quick", "brown", "fox", "jump", "e", "mail", "foo_bar"]
    assert tokens("The Quick foxes", "english", case_sensitive=True) == ["Quick", "fox"]
    assert tokens("The Quick foxes", "english", filter_stop_words=False) == ["the", "quick", "fox"]
    assert tokens("Crème brûlée", "english") == ["creme", "brulee"]
    assert tokens("Crème brûlée", "english", diacritic_sensitive=True) == ["crème", "brûlée"]
    assert tokens("it's «quoted» 日本語", "english") == ["quot", "日本語"]


def test_tokenizer_other_languages():
    assert tokens("the running dogs", "none") == ["the", "running", "dogs"]
    assert tokens("corriendo rápido", "spanish") == ["corr", "rap"]
    assert tokens("s'il", "french") == ["s", "il"]           # the apostrophe delimits outside English
    assert tokens("ISTANBUL", "turkish", filter_stop_words=False) == tokens("ıstanbul", "turkish")


def test_languages():
    assert canonical("EN") == "english" and canonical("nb") == "norwegian" and canonical("xx") is None
    with pytest.raises(MongoError) as ei:
        resolve("klingon")
    assert ei.value.code == 2 and 'unsupported language: "klingon"' in str(ei.value)


def test_phrase_matching():
    assert phrase_matches("Green Tea", "a green tea cup", "english", False, False)
    assert not phrase_matches("Green Tea", "a green tea cup", "english", True, False)
    assert phrase_matches("creme", "Crème", "english", False, False)
    assert not phrase_matches("creme", "Crème", "english", False, True)


@pytest.mark.parametrize("search, parts", [
    ("coffee shop", ("coffee shop", "", [], [])),
    ('"ssl certificate" -authority key', ("ssl certificate key", "authority", ["ssl certificate"], [])),
    ("-foo-bar baz", ("baz", "foo bar", [], [])),
    ("a - b", ("a b", "", [], [])),
    ('-"x y"-"z w" q', ("q", "", [], ["x y", "z w"])),
    ('a-"b c"', ("a b c", "", ["b c"], [])),
])
def test_search_grammar(search, parts):
    assert TextQuery(search, None).split() == parts


@pytest.mark.parametrize("spec, code", [
    ("x", 2), ({}, 4), ({"$search": 1}, 14), ({"$search": "a", "$language": 1}, 14),
    ({"$search": "a", "$diacriticSensitive": "yes"}, 14), ({"$search": "a", "$x": 1}, 2),
    ({"$search": "a", "$language": "xx"}, 2),
])
def test_text_operator_errors(spec, code):
    with pytest.raises(MongoError) as ei:
        parse_text_filter(spec)
    assert ei.value.code == code


def test_text_node_outside_its_reader_is_refused():
    from mongolake.query.matcher import compile_matcher
    m = compile_matcher(parse_text_filter({"$search": "a"}))
    with pytest.raises(MongoError) as ei:
        m({"a": 1})
    assert ei.value.code == 17313
    assert m(attach({"a": 1}, **{"$textMatched": True})) is True


def _spec(**kw):
    return fix_spec({"v": 2, "name": "n", **kw})


def test_fix_spec():
    s = _spec(key={"a": 1, "t": "text", "u": "text", "z": -1}, weights={"t": 3.9})
    assert s["key"] == {"a": 1, "_fts": "text", "_ftsx": 1, "z": -1}
    assert s["weights"] == {"t": 3, "u": 1}                   # integers, as MongoDB stores them
    assert (s["default_language"], s["language_override"], s["textIndexVersion"]) == ("english", "language", 3)
    assert fix_spec(dict(s)) == s                              # idempotent (listIndexes output re-created)
    assert _spec(key={"$**": "text"})["weights"] == {"$**": 1}
    for bad in [dict(key={"t": "text"}, weights={"t": 100000}), dict(key={"t": "text", "a": 1, "u": "text"}),
                dict(key={"_fts": "text", "a": 1}), dict(key={"t": "text"}, language_override="$x"),
                dict(key={"t": "text"}, default_language=5), dict(key={"t": "text"}, weights={"a..b": 1})]:
        with pytest.raises(MongoError) as ei:
            _spec(**bad)
        assert ei.value.code == 67, bad


def test_scores_follow_mongodb_formula():
    ts = TextSpec(_spec(key={"t": "text", "b": "text"}, weights={"t": 2}))
    s = ts.term_scores({"t": "Tea", "b": ["coffee coffee tea", "x"], "c": "coffee"})
    # t: 2 * 1 * (0.5*1/1 + 0.5) * 1.1 (the whole string is the term);  b[0]: coffe 1.5 * (0.5*2/3 + 0.5),
    # tea 1 * (0.5*1/3 + 0.5);  b[1]: x;  c is not indexed
    assert math.isclose(s["tea"], 2 * 1.1 + (0.5 / 3 + 0.5))
    assert math.isclose(s["coffe"], 1.5 * (1 / 3 + 0.5)) and set(s) == {"coffe", "tea", "x"}
    assert ts.term_scores({"t": "Coffee"}) == {"coffe": 2.0}   # the stem differs from the string: no boost


def test_nested_fields_and_language_override():
    ts = TextSpec(_spec(key={"a.b": "text"}))
    doc = {"a": [{"b": "swimming"}, {"b": ["dogs", ["nested arrays are skipped"]]}, {"c": "no"}],
           "language": "none"}
    assert sorted(t for t, _l, _w in ts.strings(doc)) == ["dogs", "swimming"]
    assert {lang for _t, lang, _w in ts.strings(doc)} == {"none"}
    assert set(ts.term_scores(doc)) == {"swimming", "dogs"}    # "none": no stemming
    wild = TextSpec(_spec(key={"$**": "text"}))
    assert sorted(t for t, _l, _w in wild.strings({"x": "a", "language": "en", "y": {"z": ["b"]}})) == ["a", "b"]


def test_compiled_query_matching():
    ts = TextSpec(_spec(key={"t": "text"}))
    doc = {"t": "The Green tea and coffee"}
    def ev(s, **kw):
        return CompiledQuery(TextQuery(s, kw.get("lang"), kw.get("cs", False), kw.get("ds", False)), "english") \
            .evaluate(ts, doc)
    assert ev("tea") and ev("teas coffee") > ev("tea")
    assert ev("tea -coffee") is None and ev('tea -"green tea"') is None and ev('"green tea"') is not None
    assert ev("green", cs=True) is None and ev("Green", cs=True) is not None
    assert ev("the") is None and ev("-tea") is None


def test_find_projection_meta():
    p = parse_projection({"s": {"$meta": "textScore"}}, filter_spec={"$text": {"$search": "x"}})
    doc = attach({"_id": 1, "a": 2}, textScore=1.5)
    assert p.apply(doc) == {"_id": 1, "a": 2, "s": 1.5}
    p = parse_projection({"a": 1, "s": {"$meta": "textScore"}}, filter_spec={"$text": {"$search": "x"}})
    assert p.apply(doc) == {"_id": 1, "a": 2, "s": 1.5}
    p = parse_projection({"a": 0, "s": {"$meta": "textScore"}}, filter_spec={"$and": [{"$text": {"$search": "x"}}]})
    assert p.apply(doc) == {"_id": 1, "s": 1.5}
    with pytest.raises(MongoError) as ei:
        parse_projection({"s": {"$meta": "textScore"}}, filter_spec={"a": 1})
    assert ei.value.code == 40218
    with pytest.raises(MongoError) as ei:
        parse_projection({"s": {"$meta": "bogus"}})
    assert ei.value.code == 17308


def test_find_sort_meta():
    docs = [attach({"_id": i, "n": -i}, textScore=s) for i, s in enumerate([1.0, 3.0, 2.0, 3.0])]
    srt = parse_sort({"x": {"$meta": "textScore"}, "n": 1})
    assert [d["_id"] for d in srt.sort(docs)] == [3, 1, 2, 0]
    assert [d["_id"] for d in srt.top_k(docs, 2)] == [3, 1]
    with pytest.raises(MongoError) as ei:
        parse_sort({"x": {"$meta": "textScore"}}).sort([{"_id": 1}, {"_id": 2}])
    assert ei.value.code == 40218


def test_aggregation_sort_key_meta():
    from mongolake.query.meta_sort import make_key, parse_fields
    docs = [attach({"_id": i, "n": -i}, textScore=s) for i, s in enumerate([1.0, 3.0, 2.0])]
    assert [d["_id"] for d in sorted(docs, key=make_key(parse_fields({"s": {"$meta": "textScore"}})))] == [1, 2, 0]
    assert [d["_id"] for d in sorted(docs, key=make_key(parse_fields({"n": 1})))] == [2, 1, 0]
    with pytest.raises(MongoError) as ei:
        make_key(parse_fields({"s": {"$meta": "textScore"}}))({"_id": 1})
    assert ei.value.code == 40218


def test_sort_top_k_takes_the_text_readers_order():
    consumed = []

    def gen():
        for i, s in enumerate([5.0, 4.0, 4.0, 1.0]):
            consumed.append(i)
            yield attach({"_id": i}, textScore=s, **{"$textOrdered": True})
    srt = parse_sort({"s": {"$meta": "textScore"}})
    assert [d["_id"] for d in srt.top_k(gen(), 2)] == [0, 1] and consumed == [0, 1]
    unordered = [attach({"_id": i}, textScore=s) for i, s in enumerate([1.0, 5.0, 4.0])]
    assert [d["_id"] for d in srt.top_k(iter(unordered), 2)] == [1, 2]
