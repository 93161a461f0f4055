"""Regular expressions that cannot hang the server (catastrophic backtracking).

Python's ``re`` backtracks without bound and holds the GIL while it does:
``/^(a|aa)+$/`` against forty ``a`` and a ``b`` runs for minutes and freezes every
client of the event loop. :class:`BoundedPattern` wraps a compiled pattern:

* *simple* patterns (no quantified group that itself contains a quantifier or an
  alternation, no back-reference, at most one unbounded quantifier) on subjects
  of at most :data:`SIMPLE_MAX_LEN` characters run on ``re`` — the common case,
  at ``re``'s speed, with work bounded by a small polynomial;
* everything else runs on the ``regex`` package (same syntax in its ``VERSION0``
  mode) with a ``timeout``: past :data:`TIME_LIMIT` seconds of one evaluation the
  query fails with error 51156 instead of stalling the server.

Without the ``regex`` package every pattern runs on ``re`` (unbounded; the server
logs a warning at start, see :func:`bounded_engine_available`).
"""
from __future__ import annotations

import re
from typing import Any, Iterator

from mongolake.errors import MongoError

try:                                         # pragma: no cover - import guard
    import regex as _regex_mod
except ImportError:                          # pragma: no cover
    _regex_mod = None

__all__ = ["BoundedPattern", "set_time_limit", "is_simple", "bounded_engine_available", "TIME_LIMIT"]

#: seconds one regex evaluation may take on the bounded engine
TIME_LIMIT = 1.0
#: subjects up to this length may use ``re`` for simple patterns
SIMPLE_MAX_LEN = 2048
REGEX_TIMEOUT_CODE = 51156
_FLAG_MASK = re.IGNORECASE | re.MULTILINE | re.DOTALL | re.VERBOSE


def set_time_limit(seconds: float) -> None:
    global TIME_LIMIT
    TIME_LIMIT = max(0.001, float(seconds))


def bounded_engine_available() -> bool:
    return _regex_mod is not None


def _quantifier_at(p: str, i: int) -> tuple[int, bool] | None:
    """(length, unbounded) of a quantifier starting at ``p[i]``, else None."""
    c = p[i]
    if c in "*+":
        n = 1
        unbounded = True
    elif c == "?":
        n, unbounded = 1, False
    elif c == "{":
        m = re.match(r"\{(\d*)(,?)(\d*)\}", p[i:])
        if m is None or (not m.group(1) and not m.group(3)):
            return None
        n = m.end()
        hi = m.group(3)
        unbounded = bool(m.group(2)) and (not hi or int(hi) > 16)
        unbounded = unbounded or (not m.group(2) and int(m.group(1) or 0) > 16)
    else:
        return None
    if i + n < len(p) and p[i + n] in "?+":  # lazy / possessive suffix
        n += 1
    return n, unbounded


def is_simple(p: str) -> bool:
    """Whether ``p`` (Python syntax) is safe to run on ``re`` for short subjects."""
    unbounded = 0
    stack: list[bool] = []       # per open group: contains a quantifier or an alternation
    last_group_risky = False     # the previous atom was a group containing quantifier/alternation
    i, n = 0, len(p)
    while i < n:
        c = p[i]
        if c == "\\":
            if i + 1 < n and (p[i + 1].isdigit() and p[i + 1] != "0"):
                return False                             # back-reference
            i += 2
            last_group_risky = False
            continue
        if c == "[":
            j = i + 1
            if j < n and p[j] == "^":
                j += 1
            if j < n and p[j] == "]":
                j += 1
            while j < n and p[j] != "]":
                j += 2 if p[j] == "\\" else 1
            i = j + 1
            last_group_risky = False
            continue
        if c == "(":
            if p.startswith("(?P=", i):
                return False
            stack.append(False)
            i += 1
            last_group_risky = False
            continue
        if c == ")":
            risky = stack.pop() if stack else False
            if stack and risky:
                stack[-1] = True
            last_group_risky = risky
            i += 1
            continue
        if c == "|":
            if stack:
                stack[-1] = True
            i += 1
            last_group_risky = False
            continue
        q = _quantifier_at(p, i)
        if q is not None:
            length, unb = q
            if last_group_risky:
                return False
            if unb:
                unbounded += 1
                if unbounded > 1:
                    return False
            if stack:
                stack[-1] = True
            i += length
            last_group_risky = False
            continue
        i += 1
        last_group_risky = False
    return True


class BoundedPattern:
    """A compiled pattern with ``re.Pattern``'s reading API (``search``, ``match``,
    ``fullmatch``, ``finditer``, ``pattern``, ``flags``, ``groups``, ``groupindex``)
    whose evaluations are time-bounded (module doc)."""

    __slots__ = ("_re", "_rx", "simple", "pattern", "flags", "groups", "groupindex", "source")

    def __init__(self, compiled: re.Pattern, source: str | None = None):
        self._re = compiled
        self._rx: Any = None
        self.simple = is_simple(compiled.pattern)
        self.pattern = compiled.pattern
        self.flags = compiled.flags
        self.groups = compiled.groups
        self.groupindex = compiled.groupindex
        self.source = source if source is not None else compiled.pattern

    def _bounded(self) -> Any:
        if self._rx is None:
            self._rx = _regex_mod.compile(self.pattern, (self.flags & _FLAG_MASK) | _regex_mod.VERSION0)
        return self._rx

    def _timeout(self) -> MongoError:
        return MongoError(REGEX_TIMEOUT_CODE, f"Regular expression evaluation exceeded the time limit of "
                          f"{TIME_LIMIT * 1000:g} ms (catastrophic backtracking?): /{self.source}/")

    def _run(self, method: str, s: Any, *args: Any) -> Any:
        if (self.simple and (not isinstance(s, str) or len(s) <= SIMPLE_MAX_LEN)) or _regex_mod is None:
            return getattr(self._re, method)(s, *args)
        try:
            return getattr(self._bounded(), method)(s, *args, timeout=TIME_LIMIT)
        except TimeoutError:
            raise self._timeout() from None

    def search(self, s: Any, *args: Any) -> Any:
        return self._run("search", s, *args)

    def match(self, s: Any, *args: Any) -> Any:
        return self._run("match", s, *args)

    def fullmatch(self, s: Any, *args: Any) -> Any:
        return self._run("fullmatch", s, *args)

    def finditer(self, s: Any, *args: Any) -> Iterator[Any]:
        if (self.simple and len(s) <= SIMPLE_MAX_LEN) or _regex_mod is None:
            return self._re.finditer(s, *args)
        try:   # materialised so that a timeout surfaces here, as a MongoError
            return iter(list(self._bounded().finditer(s, *args, timeout=TIME_LIMIT)))
        except TimeoutError:
            raise self._timeout() from None

    def findall(self, s: Any, *args: Any) -> list:
        return [m.group(0) if not self.groups else (m.groups() if self.groups > 1 else m.group(1))
                for m in self.finditer(s, *args)]

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, BoundedPattern) and self._re == other._re

    def __hash__(self) -> int:
        return hash(self._re)

    def __repr__(self) -> str:
        return f"BoundedPattern({self._re!r})"

