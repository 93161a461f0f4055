"""Text-search languages: names, stemmers, stop words (MongoDB text index version 3).

The languages and their two-letter aliases are MongoDB's. Stemming uses the
Snowball stemmers (the ``snowballstemmer`` package: the same algorithms as the
libstemmer C library MongoDB links, so stems are identical). ``none`` tokenises
only: no stemming, no stop words.

Stop words: English has MongoDB's list (the Snowball project's English stop
words with contractions). Other languages have no stop-word list in MongoLake
yet (a documented deviation: their stop words are indexed and searchable).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

from mongolake.errors import ErrorCode, MongoError

from .stopwords import ENGLISH_STOP_WORDS

TEXT_INDEX_VERSION = 3

#: lower-cased user spelling -> canonical language name
LANGUAGES: dict[str, str] = {"none": "none"}
for _code, _name in (("da", "danish"), ("nl", "dutch"), ("en", "english"), ("fi", "finnish"), ("fr", "french"),
                     ("de", "german"), ("hu", "hungarian"), ("it", "italian"), ("nb", "norwegian"),
                     ("pt", "portuguese"), ("ro", "romanian"), ("ru", "russian"), ("es", "spanish"),
                     ("sv", "swedish"), ("tr", "turkish")):
    LANGUAGES[_code] = _name
    LANGUAGES[_name] = _name

# Snowball algorithm per language. MongoDB's libstemmer "dutch" is the Porter-based
# algorithm, which snowballstemmer >= 3 calls "dutch_porter".
_STEMMER_NAMES = {"dutch": ("dutch_porter", "dutch")}

_STOP_WORDS: dict[str, frozenset[str]] = {"english": ENGLISH_STOP_WORDS}


def canonical(name: str) -> str | None:
    """The canonical name of a language spelling (``"EN"`` -> ``"english"``), or None."""
    if not isinstance(name, str):
        return None
    return LANGUAGES.get(name.lower())


def resolve(name: str) -> str:
    """:func:`canonical`, raising MongoDB's BadValue for an unsupported language."""
    lang = canonical(name)
    if lang is None:
        raise MongoError(ErrorCode.BadValue,
                         f'unsupported language: "{name}" for text index version {TEXT_INDEX_VERSION}')
    return lang


def stop_words(lang: str) -> frozenset[str]:
    return _STOP_WORDS.get(lang, frozenset())


@lru_cache(maxsize=None)
def stemmer(lang: str) -> Callable[[str], str] | None:
    """``stem(word) -> str`` for a canonical language (None for ``none``)."""
    if lang == "none":
        return None
    import snowballstemmer

    names = _STEMMER_NAMES.get(lang, (lang,))
    algorithms = set(snowballstemmer.algorithms())
    algo = next(n for n in names if n in algorithms)
    st = snowballstemmer.stemmer(algo)
    cache: dict[str, str] = {}
    stem_word = st.stemWord

    def stem(word: str) -> str:
        s = cache.get(word)
        if s is None:
            s = stem_word(word)
            if len(cache) > 200_000:
                cache.clear()
            cache[word] = s
        return s
    return stem
