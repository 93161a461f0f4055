"""``$regexMatch``, ``$regexFind`` and ``$regexFindAll`` with PCRE-to-Python translation."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from bson.regex import Regex

from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import Node, ParseState, compile_node, err, fold, register
from mongolake.query.expr.values import type_name
from mongolake.query.saferegex import BoundedPattern

_FLAG_BITS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "u": 0}
_POSIX = {
    "[:alpha:]": "a-zA-Z", "[:digit:]": "0-9", "[:alnum:]": "a-zA-Z0-9", "[:upper:]": "A-Z",
    "[:lower:]": "a-z", "[:space:]": r" \t\n\r\f\v", "[:xdigit:]": "0-9A-Fa-f",
    "[:punct:]": r"!-/:-@\[-`{-~", "[:word:]": r"\w", "[:blank:]": r" \t", "[:cntrl:]": r"\x00-\x1f\x7f",
}


def translate_pcre(pattern: str) -> str:
    """Rewrite the PCRE constructs Python spells differently (named groups, POSIX classes)."""
    out = pattern.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!")
    out = re.sub(r"\\k<(\w+)>", r"(?P=\1)", out)
    if "[:" in out:
        for k, v in _POSIX.items():
            out = out.replace(k, v)
    return out


@lru_cache(maxsize=512)
def compile_regex(pattern: str, options: str, op: str = "$regexMatch") -> BoundedPattern:
    """Compile a MongoDB regex (pattern + option letters) into a Python pattern."""
    flags = 0
    for ch in options:
        if ch not in _FLAG_BITS:
            raise err(51108, f"{op} invalid flag in regex options: {ch}")
        flags |= _FLAG_BITS[ch]
    if "\0" in pattern:
        raise err(51109, f"{op}: regular expression cannot contain an embedded null byte")
    try:
        return BoundedPattern(re.compile(translate_pcre(pattern), flags), pattern)
    except re.error as e:
        raise err(51111, f"Invalid Regular Expression in {op}: {e}") from None


def _regex_parts(regex: Any, options: Any, op: str) -> tuple[str, str] | None:
    """(pattern, options) or None when regex/options are null."""
    if regex is None or regex is MISSING:
        return None
    if isinstance(regex, Regex):
        pat, flags = str(regex.pattern), regex.flags
        rflags = flags if isinstance(flags, str) else _flag_letters(flags)
    elif isinstance(regex, re.Pattern):
        pat, rflags = regex.pattern, _flag_letters(regex.flags)
    elif isinstance(regex, str):
        pat, rflags = regex, ""
    else:
        raise err(51105, f"{op} needs 'regex' to be of type string or regex")
    if options is None or options is MISSING:
        opts = ""
    elif isinstance(options, str):
        opts = options
    else:
        raise err(51106, f"{op} needs 'options' to be of type string")
    if rflags and opts:
        raise err(51107, f"{op} found regex option(s) specified in both 'regex' and 'options' fields")
    return pat, rflags or opts


def _flag_letters(flags: int) -> str:
    out = ""
    for ch, bit in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL), ("x", re.VERBOSE)):
        if flags & bit:
            out += ch
    return out


def _match_doc(m: re.Match) -> dict:
    return {"match": m.group(0), "idx": m.start(), "captures": list(m.groups())}


def _regex_parser(name: str) -> None:
    @register(name)
    def parser(args: Any, ps: ParseState, opname: str) -> Node:
        if not isinstance(args, dict):
            raise err(51103, f"{name} expects an object of named arguments but found: {type_name(args)}")
        for k in args:
            if k not in ("input", "regex", "options"):
                raise err(31024, f"{name} found an unknown argument: {k}")
        if "input" not in args:
            raise err(31022, f"{name} requires 'input' parameter")
        if "regex" not in args:
            raise err(31023, f"{name} requires 'regex' parameter")
        inp = compile_node(args["input"], ps)
        rx = compile_node(args["regex"], ps)
        opt = compile_node(args["options"], ps) if "options" in args else (lambda s: MISSING)

        def node(s: dict) -> Any:
            text = inp(s)
            parts = _regex_parts(rx(s), opt(s), name)
            if text is None or text is MISSING:
                text = None
            elif not isinstance(text, str):
                raise err(51104, f"{name} needs 'input' to be of type string")
            if parts is None or text is None:
                return False if name == "$regexMatch" else (None if name == "$regexFind" else [])
            pat = compile_regex(parts[0], parts[1], name)
            if name == "$regexMatch":
                return pat.search(text) is not None
            if name == "$regexFind":
                m = pat.search(text)
                return _match_doc(m) if m else None
            return [_match_doc(m) for m in pat.finditer(text)]

        nodes = [inp, rx] + ([opt] if "options" in args else [])
        return fold(node, nodes)


for _n in ("$regexMatch", "$regexFind", "$regexFindAll"):
    _regex_parser(_n)
