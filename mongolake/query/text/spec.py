"""A text index's specification: validation/normalisation (MongoDB's ``fixSpec``),
the strings of a document it covers, and their term scores.

Normalised form (what ``listIndexes`` shows, as MongoDB):
``{key: {<prefix fields>, _fts: "text", _ftsx: 1, <suffix fields>}, weights:
{field: int, ...} (or {"$**": 1}), default_language, language_override,
textIndexVersion: 3}``.

**Scoring** (MongoDB's, per string a document holds in an indexed field): with
``n`` the string's number of terms (stop words removed) and ``c`` the number of
occurrences of a term,

    score(term) += weight * freq * (0.5 * c / n + 0.5) * adjustment
    freq = 1 + 1/2 + 1/4 + ... (c terms)
    adjustment = 1.1 when the whole string equals the term (case-insensitively), else 1

summed over every string of the document (fields, array elements). A query's
``textScore`` is the sum of the document's scores for the query's distinct
positive terms (phrase words included).
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Iterator

from mongolake.errors import ErrorCode, MongoError

from .languages import TEXT_INDEX_VERSION, canonical
from .tokenizer import tokens

WILDCARD = "$**"
DEFAULT_WEIGHT = 1
MAX_WORD_WEIGHT = 100000


def _cannot(msg: str) -> MongoError:
    return MongoError(ErrorCode.CannotCreateIndex, msg)


def _is_text(v: Any) -> bool:
    return isinstance(v, str) and v == "text"


def _is_number(v: Any) -> bool:
    from mongolake.query.bsonorder import is_number
    return is_number(v) and not isinstance(v, bool)


def _int(v: Any) -> int:
    from mongolake.query.bsonorder import to_number
    try:
        return int(to_number(v))
    except (ValueError, OverflowError):
        return 0


def fix_spec(spec: dict) -> dict:
    """Validate a text index spec and return its normalised form (MongoDB's errors)."""
    key = spec["key"]
    if spec.get("textIndexVersion") is not None and not _is_number(spec["textIndexVersion"]):
        raise _cannot("text index option 'textIndexVersion' must be a number")
    version = _int(spec["textIndexVersion"]) if spec.get("textIndexVersion") is not None else TEXT_INDEX_VERSION
    if version == 1:
        raise MongoError(ErrorCode.NotImplemented, "text index version 1 is not supported by MongoLake")
    if version not in (2, 3):
        raise _cannot(f"bad textIndexVersion: {version}")
    fields: dict[str, int] = {}
    new_key: dict[str, Any] = {}
    added = False
    for f, v in key.items():
        if f == "_fts":
            if v != "text":
                raise _cannot('expecting _fts:"text"')
            added = True
            new_key[f] = v
        elif f == "_ftsx":
            if not _is_number(v) or _int(v) != 1:
                raise _cannot("expecting _ftsx:1")
            new_key[f] = 1
        elif _is_text(v):
            if not added:
                new_key["_fts"], new_key["_ftsx"] = "text", 1
                added = True
            fields[f] = 1
        else:
            if isinstance(v, str) or _int(v) not in (1, -1):
                raise _cannot("expected value 1 or -1 for non-text key in compound index")
            new_key[f] = v
    # prefix fields, then the text fields (adjacent), then suffix fields
    items = list(key.items())
    i = 0
    while i < len(items) and not isinstance(items[i][1], str):
        _not_reserved(items[i][0])
        i += 1
    if i == len(items):
        raise _cannot("expected additional fields in text index key pattern")
    if items[i][0] == "_fts":
        if i + 1 >= len(items) or items[i + 1][0] != "_ftsx":
            raise _cannot("expected _ftsx after _fts")
        i += 2
    else:
        while i < len(items) and isinstance(items[i][1], str):
            _not_reserved(items[i][0])
            i += 1
    for f, v in items[i:]:
        if isinstance(v, str):
            raise _cannot("'text' fields in index must all be adjacent")
        _not_reserved(f)
    weights = spec.get("weights")
    if isinstance(weights, dict):
        for f, w in weights.items():
            if not _is_number(w):
                raise _cannot("weight for text index needs numeric type")
            fields[f] = _int(w)
    elif weights == WILDCARD:
        fields[WILDCARD] = 1
    elif weights is not None:
        raise _cannot("text index option 'weights' must be an object")
    if not fields:
        raise _cannot("text index option 'weights' must specify fields or the wildcard")
    out_weights = {}
    for f in sorted(fields):
        w = fields[f]
        if w <= 0 or w >= MAX_WORD_WEIGHT:
            raise _cannot(f"text index weight must be in the exclusive interval (0,{MAX_WORD_WEIGHT}) but found: {w}")
        if f != WILDCARD:
            parts = f.split(".")
            if not f:
                raise _cannot("weight cannot be on an empty field")
            if any(not p for p in parts):
                raise _cannot("weight cannot have empty path component")
            if any(p.startswith("$") for p in parts):
                raise _cannot("weight cannot have path component with $ prefix")
        out_weights[f] = w
    lang = spec.get("default_language", "english")
    if not isinstance(lang, str):
        raise _cannot("default_language needs a string type")
    if canonical(lang) is None:
        raise _cannot("default_language is not valid")
    override = spec.get("language_override", "language")
    if not isinstance(override, str):
        raise _cannot("language_override must be a string")
    if not override or override.startswith("$") or "." in override:
        raise _cannot("language_override is not valid")
    out = {k: v for k, v in spec.items() if k not in ("key", "weights", "default_language", "language_override",
                                                      "textIndexVersion")}
    out["key"] = new_key
    out["weights"] = out_weights
    out["default_language"] = lang
    out["language_override"] = override
    out["textIndexVersion"] = version
    return {"v": out.pop("v", 2), "key": out.pop("key"), "name": out.pop("name"), **out}


def _not_reserved(f: str) -> None:
    if f in ("_fts", "_ftsx"):
        raise _cannot("text index with reserved fields _fts/_ftsx not allowed")


class TextSpec:
    """A normalised text index spec, ready to read documents."""

    def __init__(self, spec: dict):
        self.spec = spec
        w = spec["weights"]
        self.wildcard = WILDCARD in w
        self.weights = {f: float(v) for f, v in w.items() if f != WILDCARD}
        self._sorted = sorted(self.weights)
        self.default_language = canonical(spec.get("default_language", "english")) or "english"
        self.language_override = spec.get("language_override", "language")
        key = list(spec["key"])
        at = key.index("_fts")
        self.prefix = key[:at]
        self.suffix = key[at + 2:]

    # -- the strings a document holds in indexed fields --------------------------------
    def strings(self, doc: dict, strict: bool = False) -> Iterator[tuple[str, str, float]]:
        """``(text, language, weight)`` for every indexed string of ``doc``, in document
        order (MongoDB's FTSElementIterator). ``strict``: a bad language override
        raises MongoDB's 17261/17262 (writes are checked so); otherwise the enclosing
        language is used (index maintenance never fails a committed write)."""
        yield from self._walk(doc, self._language(doc, self.default_language, strict), "", False, strict)

    def _language(self, obj: dict, current: str, strict: bool) -> str:
        if not isinstance(obj, dict) or self.language_override not in obj:
            return current
        v = obj[self.language_override]
        if not isinstance(v, str):
            if strict:
                raise MongoError(17261, "found language override field in document with non-string type")
            return current
        lang = canonical(v)
        if lang is None:
            if strict:
                raise MongoError(17262, f"language override unsupported: {v}")
            return current
        return lang

    def _match_prefix(self, dotted: str) -> tuple[bool, bool]:
        """(some weight equals or lies under ``dotted``, exact match)."""
        w = self.weights
        if dotted in w:
            return True, True
        pre = dotted + "."
        from bisect import bisect_left
        i = bisect_left(self._sorted, pre)
        return i < len(self._sorted) and self._sorted[i].startswith(pre), False

    def _walk(self, obj: Any, lang: str, parent: str, is_array: bool, strict: bool
              ) -> Iterator[tuple[str, str, float]]:
        items = enumerate(obj) if is_array else obj.items()
        for name, elem in items:
            if not is_array and self.wildcard and name == self.language_override:
                continue
            dotted = parent if (is_array and parent) else (f"{parent}.{name}" if parent else str(name))
            possible, exact = self._match_prefix(dotted)
            if not self.wildcard and not possible:
                continue
            weight = self.weights.get(dotted, DEFAULT_WEIGHT) if exact else DEFAULT_WEIGHT
            if isinstance(elem, str):
                if exact or self.wildcard:
                    yield elem, lang, weight
            elif isinstance(elem, dict):
                if not exact or self.wildcard:
                    yield from self._walk(elem, self._language(elem, lang, strict), dotted, False, strict)
            elif isinstance(elem, list):
                if not is_array or self.wildcard:
                    yield from self._walk(elem, lang, dotted, True, strict)

    # -- scores --------------------------------------------------------------------------
    def term_scores(self, doc: dict) -> dict[str, float]:
        """term -> score for one document (empty when it holds no indexed term)."""
        scores: dict[str, float] = {}
        for text, lang, weight in self.strings(doc):
            add_string_scores(scores, text, lang, weight)
        return scores


_FREQ = [2.0 - 2.0 ** (1 - c) for c in range(64)]       # 1 + 1/2 + ... (c terms)


def add_string_scores(scores: dict[str, float], raw: str, lang: str, weight: float) -> None:
    terms = tokens(raw, lang)
    n = len(terms)
    if not n:
        return
    counts = Counter(terms)
    lr = len(raw)
    get = scores.get
    for t, c in counts.items():
        freq = _FREQ[c] if c < 64 else 2.0 - 2.0 ** (1 - c)
        s = weight * freq * (0.5 * c / n + 0.5)
        if len(t) == lr and raw.lower() == t.lower():
            s *= 1.1                            # the whole string is this term
        scores[t] = get(t, 0.0) + s
