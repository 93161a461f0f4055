"""Zone maps: can the rows of a file / row group match a filter, given statistics?

:func:`might_match` answers ``ROWS_MIGHT_MATCH`` (True) or ``ROWS_CANNOT_MATCH``
(False), conservatively: it says "cannot" only with a proof from statistics.
Statistics come in the shape of :class:`~mongolake.formats.base.DataFile`
(``num_records``, ``min_values``, ``max_values``, ``null_count``, keyed by leaf
path); a shredded column is usable only when it is *exact* in that file, i.e.
present in ``null_count`` (see :mod:`columns`). For an exact column every row's
value is missing/null (counted in ``null_count``) or a scalar of the column's
kind between min and max — no arrays, no other types, no NaN. Filters on
``_id`` use the min/max of the ``_key`` column (bytes of
:func:`~mongolake.query.keystring.encode_key`).

Min/max must be true bounds (a truncated string maximum has to be rounded up by
whoever writes the statistics).

Internally every node is evaluated to a pair ``(some row might match, some row
might not match)`` so that negations (``$ne``, ``$nin``, ``$not``, ``$nor``,
``$exists: false``) can be pruned too.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from bson.max_key import MaxKey
from bson.min_key import MinKey

from mongolake.query import bsonorder as bo
from mongolake.query.columns import KEY_COLUMN, ColumnSpec
from mongolake.query.filter import (
    AlwaysFalse, AlwaysTrue, And, Bits, Compare, ElemMatchObject, ElemMatchValue, Exists, In, Mod,
    Node, Nor, Not, Or, RegexMatch, Size, TypeIs,
)
from mongolake.query.keystring import encode_key, key_range, type_bracket_bounds
from mongolake.query.regex import literal_prefix

__all__ = ["ROWS_MIGHT_MATCH", "ROWS_CANNOT_MATCH", "Stats", "might_match", "rowgroup_stats", "file_stats"]

ROWS_MIGHT_MATCH = True
ROWS_CANNOT_MATCH = False

_KIND_RANK = {"int": bo.NUMBER, "double": bo.NUMBER, "string": bo.STRING, "bool": bo.BOOL,
              "date": bo.DATE, "objectId": bo.OBJECTID}
_KIND_TYPES = {"int": frozenset({16, 18}), "double": frozenset({1, 16, 18}), "string": frozenset({2}),
               "bool": frozenset({8}), "date": frozenset({9}), "objectId": frozenset({7})}
_UNKNOWN = (True, True)


@dataclass(frozen=True)
class Stats:
    """Statistics of a file or row group (same shape as ``DataFile``)."""
    num_records: int | None
    min_values: dict[str, Any] = field(default_factory=dict)
    max_values: dict[str, Any] = field(default_factory=dict)
    null_count: dict[str, int] = field(default_factory=dict)


def might_match(node: Node, stats: Any, specs: Mapping[str, ColumnSpec]) -> bool:
    """ROWS_MIGHT_MATCH unless the statistics prove that no row matches ``node``.

    ``stats`` has ``num_records``, ``min_values``, ``max_values``, ``null_count``
    (a :class:`Stats` or a ``DataFile``); ``specs`` maps leaf paths to column specs.
    """
    n = stats.num_records
    if n is not None and n <= 0:
        return ROWS_CANNOT_MATCH
    return _Eval(stats, specs).eval(node)[0]


class _Col:
    __slots__ = ("kind", "n", "nulls", "nn", "lo", "hi")

    def __init__(self, kind: str, n: int | None, nulls: int, lo: Any, hi: Any):
        self.kind, self.n, self.nulls, self.lo, self.hi = kind, n, nulls, lo, hi
        self.nn = None if n is None else n - nulls          # None: unknown


def _norm(kind: str, v: Any) -> Any:
    """A statistics value in the column's domain (None if unusable)."""
    if v is None:
        return None
    try:
        if kind == "int":
            return int(v)
        if kind == "double":
            return float(v)
        if kind in ("string", "objectId"):
            return v.decode("utf-8") if isinstance(v, (bytes, bytearray)) else str(v)
        if kind == "bool":
            return bool(v)
        if kind == "date":
            return v if isinstance(v, int) else bo.date_ms(v)
    except (TypeError, ValueError, UnicodeDecodeError, AttributeError):
        return None
    return None


def _domain_value(kind: str, v: Any) -> Any:
    """A filter value in the column's domain (same bracket assumed)."""
    if kind == "objectId":
        return str(v)
    if kind == "date":
        return bo.date_ms(v)
    if kind == "bool":
        return bool(v)
    return v


def _cmp(kind: str, a: Any, b: Any) -> int:
    if kind in ("int", "double"):
        return bo.compare(a, b)
    return (a > b) - (a < b)


class _Eval:
    def __init__(self, stats: Any, specs: Mapping[str, ColumnSpec]):
        self.stats, self.specs = stats, specs
        self.n = stats.num_records

    def column(self, path: str) -> _Col | None:
        spec = self.specs.get(path)
        nulls = self.stats.null_count.get(path) if spec is not None else None
        if spec is None or nulls is None:
            return None
        lo = _norm(spec.kind, self.stats.min_values.get(path))
        hi = _norm(spec.kind, self.stats.max_values.get(path))
        return _Col(spec.kind, self.n, int(nulls), lo, hi)

    def eval(self, node: Node) -> tuple[bool, bool]:
        if isinstance(node, And):
            rs = [self.eval(c) for c in node.children]
            return all(r[0] for r in rs), any(r[1] for r in rs)
        if isinstance(node, Or):
            rs = [self.eval(c) for c in node.children]
            return any(r[0] for r in rs), all(r[1] for r in rs)
        if isinstance(node, Nor):
            rs = [self.eval(c) for c in node.children]
            return all(r[1] for r in rs), any(r[0] for r in rs)
        if isinstance(node, Not):
            m, mn = self.eval(node.child)
            return mn, m
        if isinstance(node, AlwaysTrue):
            return True, False
        if isinstance(node, AlwaysFalse):
            return False, True
        path = getattr(node, "path", None)
        if path is None:
            return _UNKNOWN
        if path == "_id":
            return self.eval_id(node)
        col = self.column(path)
        if col is None:
            return _UNKNOWN
        return self.eval_leaf(node, col)

    # -- shredded columns ---------------------------------------------------------
    def eval_leaf(self, node: Node, c: _Col) -> tuple[bool, bool]:
        has_values = c.nn is None or c.nn > 0
        has_nulls = c.nulls > 0
        if isinstance(node, Compare):
            return self.compare(node.op, node.value, c)
        if isinstance(node, In):
            return self.in_(node, c)
        if isinstance(node, RegexMatch):
            if c.kind != "string" or not has_values:
                return False, True
            return self.regex_might(node.pattern, node.options, c), True
        if isinstance(node, Exists):
            return True, has_nulls
        if isinstance(node, TypeIs):
            kt = _KIND_TYPES[c.kind]
            might = (has_values and bool(node.codes & kt)) or (has_nulls and 10 in node.codes)
            all_match = c.nulls == 0 and kt <= node.codes
            return might, not all_match
        if isinstance(node, (Size, ElemMatchObject, ElemMatchValue)):
            return False, True                             # exact columns hold no arrays
        if isinstance(node, (Mod, Bits)):
            if c.kind in ("int", "double"):
                return has_values, True
            return False, True
        return _UNKNOWN

    def compare(self, op: str, v: Any, c: _Col) -> tuple[bool, bool]:
        has_values = c.nn is None or c.nn > 0
        if v is None:
            if op in ("$eq", "$gte", "$lte"):
                return c.nulls > 0, has_values
            return False, True
        if isinstance(v, MinKey):
            return (True, False) if op in ("$gt", "$gte") else (False, True)
        if isinstance(v, MaxKey):
            return (True, False) if op in ("$lt", "$lte") else (False, True)
        if bo.canonical_rank(v) != _KIND_RANK[c.kind] or (bo.is_number(v) and bo.is_nan(v)):
            return False, True
        if not has_values:
            return False, True
        if c.lo is None or c.hi is None:
            return _UNKNOWN
        dv = _domain_value(c.kind, v)
        c_lo, c_hi = _cmp(c.kind, c.lo, dv), _cmp(c.kind, c.hi, dv)
        no_nulls = c.nulls == 0
        if op == "$eq":
            return c_lo <= 0 <= c_hi, not (no_nulls and c_lo == 0 and c_hi == 0)
        if op == "$gt":
            return c_hi > 0, not (no_nulls and c_lo > 0)
        if op == "$gte":
            return c_hi >= 0, not (no_nulls and c_lo >= 0)
        if op == "$lt":
            return c_lo < 0, not (no_nulls and c_hi < 0)
        return c_lo <= 0, not (no_nulls and c_hi <= 0)

    def in_(self, node: In, c: _Col) -> tuple[bool, bool]:
        has_values = c.nn is None or c.nn > 0
        might = any(self.compare("$eq", v, c)[0] for v in node.values)
        if node.regexes and c.kind == "string" and has_values:
            might = might or any(self.regex_might(p, o, c) for p, o in node.regex_sources)
        # every row matches: nulls only if null is listed, values only if all equal a listed one
        values_all = c.nn == 0 or (c.lo is not None and c.lo == c.hi and any(self.equals_bound(v, c) for v in node.values))
        all_match = (c.nulls == 0 or node.has_null) and values_all
        return might, not all_match

    def equals_bound(self, v: Any, c: _Col) -> bool:
        if v is None or bo.canonical_rank(v) != _KIND_RANK[c.kind] or (bo.is_number(v) and bo.is_nan(v)):
            return False
        return _cmp(c.kind, c.lo, _domain_value(c.kind, v)) == 0

    def regex_might(self, pattern: str, options: str, c: _Col) -> bool:
        pre = literal_prefix(pattern, options)
        if pre is None or c.lo is None or c.hi is None:
            return True
        prefix = pre[0]
        return c.hi >= prefix and (c.lo <= prefix or c.lo.startswith(prefix))

    # -- _id through _key ----------------------------------------------------------
    def eval_id(self, node: Node) -> tuple[bool, bool]:
        kmin = self.stats.min_values.get(KEY_COLUMN)
        kmax = self.stats.max_values.get(KEY_COLUMN)
        if isinstance(node, Exists):
            return True, False                             # every stored document has an _id
        if kmin is None or kmax is None:
            return _UNKNOWN
        kmin, kmax = bytes(kmin), bytes(kmax)
        if isinstance(node, Compare):
            rng = key_range(node.op, node.value)
            if rng is None:
                return False, True
            return _intersects(rng, kmin, kmax), not _contains(rng, kmin, kmax)
        if isinstance(node, In):
            ranges = [key_range("$eq", v) for v in node.values]
            if node.regexes:
                for rank in (bo.STRING, bo.REGEX):
                    lo, hi = type_bracket_bounds(rank)
                    ranges.append((lo, True, hi, False))
            might = any(_intersects(r, kmin, kmax) for r in ranges)
            all_match = kmin == kmax and any(encode_key(v) == kmin for v in node.values)
            return might, not all_match
        if isinstance(node, RegexMatch):
            ranges = [(lo, True, hi, False) for lo, hi in
                      (type_bracket_bounds(bo.STRING), type_bracket_bounds(bo.REGEX))]
            return any(_intersects(r, kmin, kmax) for r in ranges), True
        return _UNKNOWN


def _intersects(rng: tuple, a: bytes, b: bytes) -> bool:
    lo, lo_incl, hi, hi_incl = rng
    below_hi = hi is None or a < hi or (hi_incl and a == hi)
    above_lo = lo is None or b > lo or (lo_incl and b == lo)
    return below_hi and above_lo


def _contains(rng: tuple, a: bytes, b: bytes) -> bool:
    lo, lo_incl, hi, hi_incl = rng
    lo_ok = lo is None or lo < a or (lo_incl and lo == a)
    hi_ok = hi is None or b < hi or (hi_incl and b == hi)
    return lo_ok and hi_ok


# -- statistics from Parquet metadata ----------------------------------------------

def _stat_value(v: Any) -> Any:
    if isinstance(v, _dt.datetime) and v.tzinfo is not None:
        return v.astimezone(_dt.timezone.utc)
    return v


def rowgroup_stats(parquet_metadata: Any, i: int, exact_columns: Iterable[str],
                   specs: Mapping[str, ColumnSpec] | None = None) -> Stats:
    """:class:`Stats` of row group ``i`` of a ``pyarrow.parquet.FileMetaData``,
    keeping only ``exact_columns`` (leaf paths, plus ``"_key"``). Timestamps
    come out as UTC datetimes, strings as str, ``_key`` as bytes."""
    exact = set(exact_columns)
    rg = parquet_metadata.row_group(i)
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for j in range(rg.num_columns):
        col = rg.column(j)
        path = col.path_in_schema
        if path not in exact:
            continue
        st = col.statistics
        if st is None or not st.has_null_count:
            continue
        nulls[path] = st.null_count
        if st.has_min_max:
            lo, hi = _stat_value(st.min), _stat_value(st.max)
            if specs is not None and path in specs and specs[path].kind in ("string", "objectId"):
                lo = lo.decode() if isinstance(lo, bytes) else lo
                hi = hi.decode() if isinstance(hi, bytes) else hi
            mins[path], maxs[path] = lo, hi
    return Stats(rg.num_rows, mins, maxs, nulls)


def file_stats(parquet_metadata: Any, exact_columns: Iterable[str],
               specs: Mapping[str, ColumnSpec] | None = None) -> Stats:
    """File-level :class:`Stats` merged from all row groups (a column keeps
    min/max only if every row group with values has them)."""
    exact = set(exact_columns)
    groups = [rowgroup_stats(parquet_metadata, i, exact, specs) for i in range(parquet_metadata.num_row_groups)]
    total = sum(g.num_records or 0 for g in groups)
    nulls: dict[str, int] = {}
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    for path in exact:
        if not all(path in g.null_count for g in groups):
            continue
        nulls[path] = sum(g.null_count[path] for g in groups)
        with_values = [g for g in groups if g.null_count[path] < (g.num_records or 0)]
        if with_values and all(path in g.min_values and path in g.max_values for g in with_values):
            mins[path] = min(g.min_values[path] for g in with_values)
            maxs[path] = max(g.max_values[path] for g in with_values)
    return Stats(total, mins, maxs, nulls)

