"""Tokenising text as MongoDB's version-3 (Unicode) text tokenizer does.

* **Words** are maximal runs of non-delimiters. Delimiters are the code points
  with the Unicode properties White_Space, Dash, Hyphen, Quotation_Mark,
  Terminal_Punctuation, Sentence_Terminal or Pattern_Syntax; for English the
  apostrophe is not a delimiter (``don't`` is one word, a stop word).
* Each word is **lower-cased** (Turkish: dotted/dotless i rules) and checked
  against the **stop words** (lower case, diacritics kept); then, unless the
  search is case-sensitive, the lower-cased word is used; it is **stemmed**
  (Snowball, diacritic-sensitive); then, unless the search is
  diacritic-sensitive, **diacritics are removed** (canonical decomposition,
  combining marks dropped: ``é`` -> ``e``).

Index keys and scores always use the case- and diacritic-insensitive form with
stop words filtered; the ``$caseSensitive``/``$diacriticSensitive`` checks
re-tokenise the document's strings with those options.
"""
from __future__ import annotations

import unicodedata

import regex

from .languages import stemmer, stop_words

_DELIMS = r"\p{White_Space}\p{Dash}\p{Hyphen}\p{Quotation_Mark}\p{Terminal_Punctuation}" \
          r"\p{Pattern_Syntax}\p{Sentence_Terminal}"
_WORD = regex.compile(rf"[^{_DELIMS}]+")
_WORD_ENGLISH = regex.compile(rf"(?V1)[^{_DELIMS}--[']]+")


def words(text: str, lang: str) -> list[str]:
    """The raw words of ``text`` (no case folding, stemming or stop-word removal)."""
    return (_WORD_ENGLISH if lang == "english" else _WORD).findall(text)


def lower(s: str, lang: str) -> str:
    if lang == "turkish":
        s = s.replace("I", "ı").replace("İ", "i")
    return s.lower()


def strip_diacritics(s: str) -> str:
    if s.isascii():
        return s
    d = unicodedata.normalize("NFD", s)
    return unicodedata.normalize("NFC", "".join(ch for ch in d if not unicodedata.combining(ch)))


_TERMS: dict[str, dict[str, str | None]] = {}      # per language: lower-cased word -> index term (None: stop word)


def index_terms(text: str, lang: str) -> list[str]:
    """``tokens(text, lang)`` with the default options (the index's terms), fast:
    the text is lower-cased once and each distinct word's term is cached."""
    cache = _TERMS.get(lang)
    if cache is None:
        cache = _TERMS[lang] = {}
    out = []
    for w in (_WORD_ENGLISH if lang == "english" else _WORD).findall(lower(text, lang)):
        t = cache.get(w, "")
        if t == "":
            t = _term(w, lang)
            if len(cache) > 500_000:
                cache.clear()
            cache[w] = t
        if t is not None:
            out.append(t)
    return out


def _term(low: str, lang: str) -> str | None:
    if low in stop_words(lang):
        return None
    stem = stemmer(lang)
    return strip_diacritics(stem(low) if stem is not None else low)


def tokens(text: str, lang: str, *, filter_stop_words: bool = True, case_sensitive: bool = False,
           diacritic_sensitive: bool = False) -> list[str]:
    """The terms of ``text`` in language ``lang`` (canonical name), in order."""
    if filter_stop_words and not case_sensitive and not diacritic_sensitive:
        return index_terms(text, lang)
    stops = stop_words(lang) if filter_stop_words else ()
    stem = stemmer(lang)
    out = []
    for w in words(text, lang):
        low = lower(w, lang)
        if stops and low in stops:
            continue
        t = w if case_sensitive else low
        if stem is not None:
            t = stem(t)
        if not diacritic_sensitive:
            t = strip_diacritics(t)
        out.append(t)
    return out


def fold(text: str, lang: str, case_sensitive: bool, diacritic_sensitive: bool) -> str:
    """``text`` as the phrase matcher compares it."""
    if not case_sensitive:
        text = lower(text, lang)
    if not diacritic_sensitive:
        text = strip_diacritics(text)
    return text


def phrase_matches(phrase: str, haystack: str, lang: str, case_sensitive: bool, diacritic_sensitive: bool) -> bool:
    """A phrase matches a string that contains it (after case/diacritic folding)."""
    return fold(phrase, lang, case_sensitive, diacritic_sensitive) in \
        fold(haystack, lang, case_sensitive, diacritic_sensitive)
