"""Sort specifications: ``parse_sort(spec) -> Sort`` with MongoDB's sort semantics.

* Compound keys ``{a: 1, "b.c": -1}``; values must be numbers that truncate to
  1 or -1 (15975), other values are illegal keys (15974).
* A field holding an array sorts by its smallest element ascending and its largest
  element descending; ``"a.b"`` over an array of documents considers every ``b``
  (a document without ``b`` contributes null). Missing sorts as null. An empty
  array sorts below null (MongoDB: "an empty array is less than null or missing").
* Values compare by BSON order (:mod:`mongolake.query.bsonorder`); strings honour
  the collation given to :func:`parse_sort`.
* ``{$natural: 1|-1}`` is kept as :attr:`Sort.natural` (storage order; the key is
  then constant). ``{field: {$meta: "textScore"}}`` sorts by the document's
  metadata (highest first; the field name is only a label); a document without it
  is error 40218 (no ``$text`` in the query). Other ``$meta`` sort keys answer
  NotImplemented unless the documents carry them (``vectorSearchScore``,
  ``searchScore``).

:meth:`Sort.key` returns a tuple usable as ``key=`` for ``sorted``/``heapq`` (values
mapped by :func:`native_key` to tuples Python orders like BSON; descending fields
wrapped to invert their order);
:meth:`Sort.top_k` keeps the ``k`` first documents with a bounded heap.
"""
from __future__ import annotations

import heapq
import itertools
from typing import Any, Iterable

from mongolake.errors import ErrorCode, MongoError
from mongolake.query import bsonorder
from mongolake.query.collation import Collation
from mongolake.query.docpath import fmt_elem, parse_index

__all__ = ["Sort", "parse_sort", "sort_value", "native_key", "EMPTY_ARRAY"]


class _EmptyArray:
    """Sort value of an empty array: below null/missing, above MinKey."""

    def __repr__(self) -> str:
        return "EMPTY_ARRAY"


EMPTY_ARRAY: Any = _EmptyArray()


def _cmp(a: Any, b: Any) -> int:
    ea, eb = a is EMPTY_ARRAY, b is EMPTY_ARRAY
    if ea or eb:
        if ea and eb:
            return 0
        other = b if ea else a
        rank = bsonorder.canonical_rank(other)
        r = 1 if rank == bsonorder.MINKEY else -1
        return r if ea else -r
    return bsonorder.compare(a, b)


def _candidates(value: Any, parts: tuple[str, ...], i: int, out: list) -> None:
    """Collect the values a sort path produces (arrays expanded one level at each step)."""
    if i == len(parts):
        if isinstance(value, list):
            if not value:
                out.append(EMPTY_ARRAY)
            else:
                out.extend(value)
        else:
            out.append(value)
        return
    part = parts[i]
    if isinstance(value, dict):
        _candidates(value.get(part, None), parts, i + 1, out)
    elif isinstance(value, list):
        idx = parse_index(part)
        if idx is not None:
            if idx < len(value):
                _candidates(value[idx], parts, i + 1, out)
            else:
                out.append(None)
            return
        if not value:
            out.append(None)
            return
        for el in value:
            if isinstance(el, dict):
                _candidates(el.get(part, None), parts, i + 1, out)
            elif isinstance(el, list):
                # arrays directly nested in arrays are not traversed by name
                out.append(None)
            else:
                out.append(None)
    else:
        out.append(None)


def sort_value(doc: dict, parts: tuple[str, ...], direction: int, collation: Collation | None = None) -> Any:
    """The single value a document sorts by for one sort path and direction."""
    if len(parts) == 1 and isinstance(doc, dict):
        v = doc.get(parts[0], None)
        if not isinstance(v, list):
            return v if collation is None else collation.transform(v)
    vals: list = []
    _candidates(doc, parts, 0, vals)
    if collation is not None:
        vals = [v if v is EMPTY_ARRAY else collation.transform(v) for v in vals]
    best = vals[0]
    for v in vals[1:]:
        c = _cmp(v, best)
        if (c < 0 and direction > 0) or (c > 0 and direction < 0):
            best = v
    return best


class _Cmp:
    """Fallback key for values Python cannot order natively (documents, arrays, ...)."""

    __slots__ = ("v",)

    def __init__(self, v: Any):
        self.v = v

    def __lt__(self, other: "_Cmp") -> bool:
        return bsonorder.compare(self.v, other.v) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Cmp) and bsonorder.compare(self.v, other.v) == 0

    __hash__ = None  # type: ignore[assignment]


class _Desc:
    """Inverts the order of a key (one descending field of a mixed-direction sort)."""

    __slots__ = ("k",)

    def __init__(self, k: Any):
        self.k = k

    def __lt__(self, other: "_Desc") -> bool:
        return other.k < self.k

    def __gt__(self, other: "_Desc") -> bool:
        return self.k < other.k

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.k == other.k

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Desc({self.k!r})"


_EMPTY_KEY = (bsonorder.MISSING_RANK,)


def native_key(v: Any) -> tuple:
    """A tuple whose Python order is the BSON order of ``v`` (EMPTY_ARRAY allowed)."""
    if v is EMPTY_ARRAY:
        return _EMPTY_KEY
    rank = bsonorder.canonical_rank(v)
    if rank == bsonorder.NUMBER:
        if bsonorder.is_nan(v):
            return (rank, 0)
        return (rank, 1, bsonorder.to_number(v))
    if rank == bsonorder.STRING:
        return (rank, v)
    if rank in (bsonorder.NULL, bsonorder.MINKEY, bsonorder.MAXKEY):
        return (rank,)
    if rank == bsonorder.OBJECTID:
        return (rank, v.binary)
    if rank == bsonorder.BOOL:
        return (rank, bool(v))
    if rank == bsonorder.DATE:
        return (rank, bsonorder.date_ms(v))
    if rank == bsonorder.TIMESTAMP:
        return (rank, v.time, v.inc)
    return (rank, _Cmp(v))


class Sort:
    """A parsed sort: ``fields`` is a tuple of ``(path, direction)``."""

    def __init__(self, fields: list[tuple[str, int]], *, natural: int | None = None,
                 collation: Collation | None = None, meta: str | None = None,
                 metas: list[str | None] | None = None):
        self.fields = tuple(fields)
        self.natural = natural
        self.collation = collation
        self.meta = meta
        #: per field: the $meta name it sorts by, or None
        self._metas = tuple(metas) if metas is not None else (None,) * len(self.fields)
        self._parts = tuple(tuple(p.split(".")) for p, _ in fields)
        self._dirs = tuple(d for _, d in fields)

    def __bool__(self) -> bool:
        return bool(self.fields)

    def __repr__(self) -> str:
        return f"Sort({self.fields!r}, natural={self.natural!r})"

    @property
    def spec(self) -> dict:
        if self.natural is not None:
            return {"$natural": self.natural}
        return dict(self.fields)

    @property
    def fields_needed(self) -> set[str]:
        """Top-level field names the sort reads."""
        return {parts[0] for parts in self._parts}

    def _check_usable(self) -> None:
        if self.meta is not None and self.meta not in _META_SORTABLE:
            raise MongoError(ErrorCode.NotImplemented, f"sorting by {{$meta: \"{self.meta}\"}} is not supported")

    def _values(self, doc: dict) -> tuple:
        if self.meta is not None:
            return tuple(native_key(_meta_value(doc, m) if m is not None else sort_value(doc, parts, d, self.collation))
                         for parts, d, m in zip(self._parts, self._dirs, self._metas))
        return tuple(native_key(sort_value(doc, parts, d, self.collation)) for parts, d in zip(self._parts, self._dirs))

    def key(self, doc: dict) -> tuple:
        """A comparable key: ``sorted(docs, key=sort.key)`` sorts as MongoDB does."""
        self._check_usable()
        vals = self._values(doc)
        return tuple(v if d > 0 else _Desc(v) for v, d in zip(vals, self._dirs))

    def compare(self, a: dict, b: dict) -> int:
        ka, kb = self.key(a), self.key(b)
        return -1 if ka < kb else (1 if kb < ka else 0)

    def _uniform(self) -> int | None:
        """1 or -1 when every field sorts in that direction (fast path), else None."""
        if all(d > 0 for d in self._dirs):
            return 1
        if all(d < 0 for d in self._dirs):
            return -1
        return None

    def sort(self, docs: Iterable[dict]) -> list[dict]:
        """A new sorted list (stable: ties keep their input order)."""
        if not self.fields:
            return list(docs)
        self._check_usable()
        uniform = self._uniform()
        if uniform is not None:
            return sorted(docs, key=self._values, reverse=uniform < 0)
        return sorted(docs, key=self.key)

    def top_k(self, docs: Iterable[dict], k: int) -> list[dict]:
        """The ``k`` first documents in sort order (stable), using a bounded heap."""
        if k <= 0:
            return []
        if not self.fields:
            return list(itertools.islice(docs, k))
        self._check_usable()
        if self._metas == ("textScore",):
            docs = iter(docs)
            first = next(docs, None)
            if first is None:
                return []
            if _meta_value(first, "$textOrdered") is True:
                # the text reader streams documents best score first: the first k are the top k
                return [first] + list(itertools.islice(docs, k - 1))
            docs = itertools.chain([first], docs)
        uniform = self._uniform()
        if uniform == 1:
            return heapq.nsmallest(k, docs, key=self._values)
        if uniform == -1:
            return heapq.nlargest(k, docs, key=self._values)
        return heapq.nsmallest(k, docs, key=self.key)


def _direction(path: str, v: Any) -> int:
    if isinstance(v, bool) or not bsonorder.is_number(v):
        raise MongoError(15974, f"Illegal key in $sort specification: {fmt_elem(path, v)}")
    n = bsonorder.to_number(v)
    try:
        d = int(n)
    except (ValueError, OverflowError):  # NaN / infinity
        d = 0
    if d not in (1, -1):
        raise MongoError(15975, "$sort key ordering must be 1 (for ascending) or -1 (for descending)")
    return d


def parse_sort(spec: Any, *, collation: Collation | None = None, require_keys: bool = False) -> Sort:
    """Parse a sort document (``find``'s ``sort`` or a ``$sort`` stage with ``require_keys``)."""
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise MongoError(15973, "the $sort key specification must be an object")
    fields: list[tuple[str, int]] = []
    metas: list[str | None] = []
    natural = None
    meta = None
    for path, v in spec.items():
        if path == "$natural":
            natural = _direction(path, v)
            continue
        if not path:
            raise MongoError(40352, "FieldPath cannot be constructed with empty string")
        if path.startswith("$"):
            raise MongoError(16410, "FieldPath field names may not start with '$'. "
                                    "Consider using $getField or $setField.")
        if any(not p for p in path.split(".")):
            raise MongoError(15998, "FieldPath field names may not be empty strings.")
        if isinstance(v, dict):
            if len(v) == 1 and "$meta" in v:
                kind = v["$meta"]
                if kind not in ("textScore", "searchScore", "randVal", "searchHighlights", "geoNearDistance",
                                "indexKey", "recordId", "sortKey", "vectorSearchScore", "score"):
                    raise MongoError(17312, f"$meta for sort must be one of ... unsupported argument: {kind}")
                meta = kind
                fields.append((path, -1))
                metas.append(kind)
                continue
            raise MongoError(15974, f"Illegal key in $sort specification: {fmt_elem(path, v)}")
        fields.append((path, _direction(path, v)))
        metas.append(None)
    if natural is not None and fields:
        raise MongoError(ErrorCode.BadValue, "$natural cannot be combined with other sort keys")
    if require_keys and not fields and natural is None:
        raise MongoError(15976, "$sort stage must have at least one sort key")
    return Sort(fields, natural=natural, collation=collation, meta=meta, metas=metas)


# -- {$meta: ...} sort keys ---------------------------------------------------------------
_META_SORTABLE = ("textScore", "vectorSearchScore", "searchScore")


def _meta_value(doc: Any, name: str) -> Any:
    """The metadata a document sorts by (sorting highest first: the field is descending)."""
    from mongolake.query.meta import get_meta
    v = get_meta(doc, name)
    if v is None and name == "$textOrdered":
        return None
    if v is None:
        if name == "textScore" and get_meta(doc, "$textMatched") is not None:
            return 0.0                          # an $or branch other than $text matched it
        if name == "textScore":
            raise MongoError(40218, "query requires text score metadata, but it is not available")
        raise MongoError(ErrorCode.BadValue, f"query requires {name} metadata, but it is not available")
    return v
