"""Sort keys with MongoDB's ``$sort`` semantics.

``compile_sort_spec({"a": 1, "b.c": -1})`` returns a ``key(doc)`` function
usable with ``sorted``, ``list.sort`` and ``heapq.nsmallest``.  For each field
the document contributes, per MongoDB's rules, the smallest (ascending) or the
largest (descending) of the values reachable through arrays; a missing field
sorts as null, and an empty array sorts below null.
"""
from __future__ import annotations

from typing import Any, Callable

from mongolake.errors import MongoError
from mongolake.query.bsonorder import MISSING, compare
from mongolake.query.expr.core import err, split_field_path
from mongolake.query.expr.numeric import kind, to_float


class _Undefined:
    """The sort value of an empty array: below null, above MinKey."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()


def sort_compare(a: Any, b: Any) -> int:
    """BSON order extended with :data:`UNDEFINED` (empty arrays)."""
    if a is UNDEFINED or b is UNDEFINED:
        if a is b:
            return 0
        other = b if a is UNDEFINED else a
        sign = -1 if a is UNDEFINED else 1
        from bson.min_key import MinKey
        return -sign if isinstance(other, MinKey) else sign
    return compare(a, b)


def _collect(value: Any, parts: list[str], i: int, out: list) -> None:
    if i == len(parts):
        if type(value) is list:
            if value:
                out.extend(value)
            else:
                out.append(UNDEFINED)
        else:
            out.append(None if value is MISSING else value)
        return
    if isinstance(value, dict):                 # dict or MetaDoc (a document with metadata)
        v = value.get(parts[i], MISSING)
        if v is MISSING:
            out.append(None)
        else:
            _collect(v, parts, i + 1, out)
    elif type(value) is list:
        before = len(out)
        for el in value:
            if isinstance(el, dict):
                _collect(el, parts, i, out)
        if len(out) == before:
            out.append(None)
    else:
        out.append(None)


def field_sort_value(doc: Any, parts: list[str], descending: bool) -> Any:
    """The value ``doc`` sorts by for one field path."""
    if isinstance(doc, dict) and len(parts) == 1:
        v = doc.get(parts[0], None)
        if type(v) is not list:
            return v
    out: list = []
    _collect(doc, parts, 0, out)
    best = out[0]
    for v in out[1:]:
        c = sort_compare(v, best)
        if (c > 0) if descending else (c < 0):
            best = v
    return best


def parse_direction(v: Any, *, code: int = 15975, allow_meta: bool = True) -> int | str:
    """1, -1, or the ``$meta`` name for a sort direction specification."""
    if isinstance(v, dict):
        if allow_meta and len(v) == 1 and "$meta" in v:
            if v["$meta"] not in ("textScore", "randVal", "searchScore"):
                raise err(31138, f"Illegal $meta sort: {v}")
            return str(v["$meta"])
        raise err(17312, f"$meta is the only expression supported by $sort right now")
    if kind(v) is None:
        raise err(code, "$sort key ordering must be 1 (for ascending) or -1 (for descending)")
    f = to_float(v)
    if f == 1:
        return 1
    if f == -1:
        return -1
    raise err(code, "$sort key ordering must be 1 (for ascending) or -1 (for descending)")


def parse_sort_spec(spec: Any, *, what: str = "$sort") -> list[tuple[list[str], int]]:
    """Validate a sort document into ``[(path_parts, direction)]``."""
    if not isinstance(spec, dict):
        raise err(15973, f"the {what} key specification must be an object")
    if not spec:
        raise err(15976, f"{what} stage must have at least one sort key")
    fields = []
    for k, v in spec.items():
        d = parse_direction(v)
        if isinstance(d, str):
            if d == "randVal":
                raise MongoError(238, "$sort by {$meta: 'randVal'} is not supported")
            raise err(17309, f"query requires {d} metadata, but it is not available")
        fields.append((split_field_path(k), d))
    return fields


class _Cmp:
    """Wraps values Python cannot order natively (documents, arrays, code...) with BSON comparison."""

    __slots__ = ("v",)

    def __init__(self, v: Any):
        self.v = v

    def __lt__(self, other: "_Cmp") -> bool:
        return sort_compare(self.v, other.v) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Cmp) and sort_compare(self.v, other.v) == 0

    def __hash__(self) -> int:  # pragma: no cover - keys are never hashed
        return 0


def encode(v: Any) -> tuple:
    """A tuple whose native Python ordering is MongoDB's sort order for ``v``."""
    t = type(v)
    if t is int or t is float:
        if v != v:
            return (10, 0, 0)
        return (10, 1, v)
    if t is str:
        return (15, 0, v)
    if v is None or v is MISSING:
        return (5, 0, 0)
    if t is bool:
        return (40, 0, v)
    if v is UNDEFINED:
        return (1, 0, 0)
    if t is dict or t is list:
        return (20 if t is dict else 25, 0, _Cmp(v))
    from mongolake.query.bsonorder import canonical_rank, date_ms, is_nan
    from mongolake.query.expr.values import is_date
    r = canonical_rank(v)
    if r == 10:
        if is_nan(v):
            return (10, 0, 0)
        from bson.decimal128 import Decimal128
        return (10, 1, v.to_decimal() if isinstance(v, Decimal128) else v)
    if is_date(v):
        return (45, 0, date_ms(v))
    from bson.objectid import ObjectId
    from bson.timestamp import Timestamp
    if isinstance(v, ObjectId):
        return (35, 0, v.binary)
    if isinstance(v, Timestamp):
        return (47, 0, (v.time, v.inc))
    if r in (-1, 100):
        return (r, 0, 0)
    return (r, 0, _Cmp(v))


class _Desc:
    """Reverses the order of an encoded key (every field descending)."""

    __slots__ = ("t",)

    def __init__(self, t: tuple):
        self.t = t

    def __lt__(self, other: "_Desc") -> bool:
        return other.t < self.t

    def __gt__(self, other: "_Desc") -> bool:
        return self.t < other.t

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.t == other.t


def make_key(fields: list[tuple[list[str], int]]) -> Callable[[Any], Any]:
    """A ``key=`` function ordering documents by the parsed sort fields.

    The returned function has two attributes used by fast paths: ``encode(doc)``
    (a tuple of per-field encodings, natively ordered ascending) and
    ``directions`` (a tuple of 1/-1).
    """
    dirs = tuple(d for _, d in fields)
    paths = [(p, d < 0) for p, d in fields]

    def enc(doc: Any) -> tuple:
        return tuple(encode(field_sort_value(doc, p, desc)) for p, desc in paths)

    if all(d > 0 for d in dirs):
        key: Any = enc
    elif all(d < 0 for d in dirs):
        def key(doc: Any) -> Any:
            return _Desc(enc(doc))
    else:
        class Mixed:
            __slots__ = ("t",)

            def __init__(self, t: tuple):
                self.t = t

            def __lt__(self, other: "Mixed") -> bool:
                for a, b, d in zip(self.t, other.t, dirs):
                    if a != b:
                        return (a < b) if d > 0 else (b < a)
                return False

            def __gt__(self, other: "Mixed") -> bool:
                return other.__lt__(self)

            def __eq__(self, other: object) -> bool:
                return isinstance(other, Mixed) and self.t == other.t

        def key(doc: Any) -> Any:
            return Mixed(enc(doc))

    key.encode = enc  # type: ignore[attr-defined]
    key.directions = dirs  # type: ignore[attr-defined]
    return key


def compile_sort_spec(spec: Any, *, what: str = "$sort") -> Callable[[Any], Any]:
    """Parse a sort document and return its key function."""
    return make_key(parse_sort_spec(spec, what=what))


def value_key(descending: bool = False) -> Callable[[Any], Any]:
    """A key function ordering whole values by BSON order (``$sortArray`` with ``sortBy: 1``)."""

    class VKey:
        __slots__ = ("v",)

        def __init__(self, v: Any):
            self.v = None if v is MISSING else v

        def __lt__(self, other: "VKey") -> bool:
            c = compare(self.v, other.v)
            return c > 0 if descending else c < 0

    return VKey
