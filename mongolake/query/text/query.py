"""``$text: {$search, $language, $caseSensitive, $diacriticSensitive}``: parsing the
operator and the search string, and matching one document (MongoDB's FTSQuery
and FTSMatcher).

Search string: words are OR-ed terms; ``"a phrase"`` must appear (every phrase,
as a substring of one indexed string after case/diacritic folding) and its words
also count as terms; ``-word`` and ``-"a phrase"`` exclude documents. A ``-``
negates only when it follows whitespace (or starts the string); ``-foo-bar``
negates both words. Stop words are dropped from terms; a search with no
positive term matches nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.filter import CustomNode

from .languages import resolve
from .tokenizer import phrase_matches, tokens

_WS = " \n\v\f\r"


def _type_name(v: Any) -> str:
    from mongolake.query.docpath import type_name
    return type_name(v)


@dataclass(frozen=True)
class TextQuery:
    search: str
    language: str | None          # canonical, or None for the index's default
    case_sensitive: bool = False
    diacritic_sensitive: bool = False

    def split(self) -> tuple[str, str, list[str], list[str]]:
        """(positive sentence, negated sentence, phrases, negated phrases) — MongoDB's
        query-string grammar."""
        s = self.search
        pos: list[str] = []
        neg: list[str] = []
        phrases: list[str] = []
        neg_phrases: list[str] = []
        in_neg = in_phrase = False
        quote = 0
        i, n = 0, len(s)
        prev_ws = True
        while i < n and s[i] in _WS:
            i += 1
        while i < n:
            start = i
            c = s[i]
            if c in "-\"":
                i += 1
                if c == "-":
                    if not in_phrase and prev_ws:
                        in_neg = True
                else:
                    if in_phrase:
                        (neg_phrases if in_neg else phrases).append(s[quote + 1:start])
                        in_phrase = False
                    else:
                        in_phrase = True
                        if in_neg and prev_ws:
                            in_neg = False
                        quote = start
            else:
                while i < n and s[i] not in _WS and s[i] not in "-\"":
                    i += 1
                word = s[start:i]
                if not (in_phrase and in_neg):
                    if in_neg and prev_ws:
                        in_neg = False
                    (neg if in_neg else pos).append(word)
            j = i
            while i < n and s[i] in _WS:
                i += 1
            prev_ws = i > j
        return " ".join(pos), " ".join(neg), phrases, neg_phrases


class CompiledQuery:
    """A :class:`TextQuery` resolved against a language: the index terms to look
    up, and the checks a candidate document must pass."""

    def __init__(self, q: TextQuery, default_language: str):
        self.query = q
        lang = q.language or default_language
        self.language = lang
        pos, neg, self.phrases, self.neg_phrases = q.split()
        cs, ds = q.case_sensitive, q.diacritic_sensitive
        #: index terms (lower case, no diacritics, no stop words) — scores sum over these
        self.bounds = sorted(set(tokens(pos, lang)))
        self.positive = frozenset(tokens(pos, lang, case_sensitive=cs, diacritic_sensitive=ds))
        self.negated = frozenset(tokens(neg, lang, case_sensitive=cs, diacritic_sensitive=ds))
        #: candidates from the index are results without reading their text
        self.index_exact = not (cs or ds or self.negated or self.phrases or self.neg_phrases)

    def matches(self, spec, doc: dict) -> bool:
        """MongoDB's FTSMatcher on a document the index found (it holds a bounds term)."""
        q = self.query
        cs, ds = q.case_sensitive, q.diacritic_sensitive
        strings = list(spec.strings(doc))
        if cs or ds:
            if not any(t in self.positive for text, lang, _w in strings
                       for t in tokens(text, lang, filter_stop_words=False, case_sensitive=cs,
                                       diacritic_sensitive=ds)):
                return False
        if self.negated:
            for text, lang, _w in strings:
                for t in tokens(text, lang, filter_stop_words=False, case_sensitive=cs, diacritic_sensitive=ds):
                    if t in self.negated:
                        return False
        for p in self.phrases:
            if not any(phrase_matches(p, text, lang, cs, ds) for text, lang, _w in strings):
                return False
        for p in self.neg_phrases:
            if any(phrase_matches(p, text, lang, cs, ds) for text, lang, _w in strings):
                return False
        return True

    def evaluate(self, spec, doc: dict) -> float | None:
        """The document's textScore, or None when it does not match (the scan
        equivalent of an index search: used inside transactions and by tests)."""
        scores = spec.term_scores(doc)
        found = [scores[t] for t in self.bounds if t in scores]
        if not found or not self.matches(spec, doc):
            return None
        total = 0.0
        for s in found:
            total += s
        return total


# marker set on documents by the text reader: the $text predicate's result for them
TEXT_MATCHED = "$textMatched"
# marker set by the text reader: its documents come in textScore order (highest first)
TEXT_ORDERED = "$textOrdered"


class TextNode(CustomNode):
    """The filter node of ``$text``: answered by the text index (``needs_index``).
    As a predicate it reads the verdict the text reader attached to the document;
    anywhere else (a later ``$match``) it is refused as MongoDB does."""

    __slots__ = ("query",)
    needs_index = "text"

    def __init__(self, query: TextQuery):
        self.query = query

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TextNode) and other.query == self.query

    def __hash__(self) -> int:
        return hash(self.query)

    def __repr__(self) -> str:
        return f"TextNode({self.query!r})"

    def matcher(self, variables: dict) -> Callable[[Any], bool]:
        from mongolake.query.meta import get_meta

        def m(doc: Any) -> bool:
            v = get_meta(doc, TEXT_MATCHED)
            if v is None:
                raise MongoError(17313, "$match with $text is only allowed as the first pipeline stage")
            return v
        return m


def _bool_field(obj: dict, name: str, default: bool) -> bool:
    if name not in obj:
        return default
    v = obj[name]
    if not isinstance(v, bool):
        raise MongoError(ErrorCode.TypeMismatch, f'"{name}" had the wrong type. Expected bool, found {_type_name(v)}')
    return v


def parse_text(spec: Any) -> TextNode:
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.BadValue, "$text expects an object")
    if "$search" not in spec:
        raise MongoError(ErrorCode.NoSuchKey, 'Missing expected field "$search"')
    search = spec["$search"]
    if not isinstance(search, str):
        raise MongoError(ErrorCode.TypeMismatch,
                         f'"$search" had the wrong type. Expected string, found {_type_name(search)}')
    expected = 1
    language = None
    if "$language" in spec:
        lv = spec["$language"]
        if not isinstance(lv, str):
            raise MongoError(ErrorCode.TypeMismatch,
                             f'"$language" had the wrong type. Expected string, found {_type_name(lv)}')
        expected += 1
        language = resolve(lv) if lv else None
    cs = _bool_field(spec, "$caseSensitive", False)
    ds = _bool_field(spec, "$diacriticSensitive", False)
    expected += ("$caseSensitive" in spec) + ("$diacriticSensitive" in spec)
    if len(spec) != expected:
        raise MongoError(ErrorCode.BadValue, "extra fields in $text")
    return TextNode(TextQuery(search, language, cs, ds))
