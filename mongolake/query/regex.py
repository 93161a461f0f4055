"""MongoDB (PCRE) regular expressions evaluated with Python's ``re``.

MongoDB uses PCRE2 in UTF mode without Unicode properties for ``\\d \\w \\s``.
:func:`compile_regex` translates the PCRE constructs Python spells differently
(``(?<name>…)``, ``\\k<name>``, ``\\z``, ``\\Z``, ``\\Q…\\E``, ``\\x{hh}``, ``\\h``,
POSIX classes such as ``[[:alpha:]]``) and makes ``\\d \\w \\s`` ASCII-only like
PCRE. Options: ``i m s x`` (``u`` is accepted and ignored: UTF is always on).
Known differences: ``\\b``/``\\D``/``\\W``/``\\S`` use Python's Unicode classes;
inline flags such as ``(?i)`` are only accepted at the start of the pattern.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from bson.regex import Regex

from mongolake.errors import MongoError
from mongolake.query.saferegex import BoundedPattern

__all__ = ["compile_regex", "regex_parts", "validate_options", "literal_prefix", "VALID_OPTIONS"]

VALID_OPTIONS = frozenset("imsxu")
_FLAG_BITS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}

_POSIX = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": "\\t\\n\\x0b\\f\\r ", "blank": " \\t", "xdigit": "0-9A-Fa-f", "word": "A-Za-z0-9_",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~").replace("\\ ", " "),
    "cntrl": "\\x00-\\x1f\\x7f", "print": "\\x20-\\x7e", "graph": "\\x21-\\x7e", "ascii": "\\x00-\\x7f",
}
_CLASS_ESC = {"d": "0-9", "w": "A-Za-z0-9_", "s": "\\t\\n\\x0b\\f\\r ", "h": "\\t "}
_META = set(".^$*+?()[]{}|\\")


def regex_parts(value: Any) -> tuple[str, str]:
    """(pattern, options) of a ``bson.Regex`` or ``re.Pattern``."""
    if isinstance(value, Regex):
        flags = value.flags
        if isinstance(flags, str):
            return str(value.pattern), flags
        return str(value.pattern), _flag_letters(flags)
    return str(value.pattern), _flag_letters(value.flags)


def _flag_letters(bits: int) -> str:
    out = ""
    for ch, bit in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL), ("x", re.VERBOSE)):
        if bits & bit:
            out += ch
    return out


def validate_options(options: str) -> None:
    for ch in options:
        if ch not in VALID_OPTIONS:
            raise MongoError(51108, f"invalid flag in regex options: {ch}")


def compile_regex(pattern: str, options: str = "") -> BoundedPattern:
    """Compile a MongoDB regex; raises MongoError 51091/51108/51109 like MongoDB. The
    result evaluates with a time bound (see :mod:`mongolake.query.saferegex`)."""
    validate_options(options)
    if "\x00" in pattern:
        raise MongoError(51109, "Regular expression cannot contain an embedded null byte")
    return _compile(pattern, "".join(sorted(set(options) - {"u"})))


@lru_cache(maxsize=2048)
def _compile(pattern: str, options: str) -> BoundedPattern:
    flags = 0
    for ch in options:
        flags |= _FLAG_BITS[ch]
    try:
        return BoundedPattern(re.compile(_translate(pattern), flags), pattern)
    except (re.error, OverflowError, ValueError) as exc:
        raise MongoError(51091, f"Regular expression is invalid: {exc}") from None


def _translate(p: str) -> str:
    out: list[str] = []
    i, n = 0, len(p)
    in_class = False
    class_start = -1
    while i < n:
        c = p[i]
        if c == "\\" and i + 1 < n:
            d = p[i + 1]
            if d == "Q":                                   # \Q...\E literal run
                end = p.find("\\E", i + 2)
                lit = p[i + 2:] if end < 0 else p[i + 2:end]
                out.append("".join("\\" + ch if ch in _META or ch in "-]" else ch for ch in lit))
                i = n if end < 0 else end + 2
                continue
            if d == "E":
                i += 2
                continue
            if d == "x" and i + 2 < n and p[i + 2] == "{":
                end = p.find("}", i + 3)
                if end > 0:
                    try:
                        out.append(re.escape(chr(int(p[i + 3:end], 16))))
                        i = end + 1
                        continue
                    except ValueError:
                        pass
            if d in _CLASS_ESC:
                out.append(_CLASS_ESC[d] if in_class else "[" + _CLASS_ESC[d] + "]")
                i += 2
                continue
            if not in_class:
                if d == "z":
                    out.append("\\Z")
                    i += 2
                    continue
                if d == "Z":
                    out.append("(?=\\n?\\Z)")
                    i += 2
                    continue
                if d == "k" and i + 2 < n and p[i + 2] in "<{'":
                    close = {"<": ">", "{": "}", "'": "'"}[p[i + 2]]
                    end = p.find(close, i + 3)
                    if end > 0:
                        out.append(f"(?P={p[i + 3:end]})")
                        i = end + 1
                        continue
            out.append(p[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "[" and p.startswith("[:", i):
                end = p.find(":]", i + 2)
                name = p[i + 2:end] if end > 0 else ""
                neg = name.startswith("^")
                if end > 0 and name.lstrip("^") in _POSIX and not neg:
                    out.append(_POSIX[name])
                    i = end + 2
                    continue
            if c == "[":
                out.append("\\[")
                i += 1
                continue
            if c == "]" and i > class_start:
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and p[i] == "^":
                out.append("^")
                i += 1
            class_start = i + 1                            # a leading ']' is literal
            if i < n and p[i] == "]":
                out.append("\\]")
                i += 1
            continue
        if c == "(" and p.startswith("(?<", i) and i + 3 < n and p[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        if c == "(" and p.startswith("(?'", i):
            end = p.find("'", i + 3)
            if end > 0:
                out.append(f"(?P<{p[i + 3:end]}>")
                i = end + 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


def literal_prefix(pattern: str, options: str) -> tuple[str, bool] | None:
    """For ``^literal…`` patterns usable as a string range: ``(prefix, whole)``
    where ``whole`` says the regex is exactly "starts with prefix". None when the
    pattern is not anchored at the start of the string or flags forbid it."""
    if set(options) - {"s", "u"} or not pattern.startswith("^") or "|" in pattern:
        return None
    out = []
    i, n = 1, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n and not pattern[i + 1].isalnum():
            out.append(pattern[i + 1])
            i += 2
            continue
        if c in _META:
            break
        out.append(c)
        i += 1
    rest = pattern[i:]
    if i < n and rest[0] in "*?{":                         # quantifier applies to the last char
        if out:
            out.pop()
        return ("".join(out), False) if out else None
    prefix = "".join(out)
    whole = rest in ("", ".*")
    if not prefix:
        return None
    return prefix, whole
