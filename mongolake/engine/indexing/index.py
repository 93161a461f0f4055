"""One secondary index: which keys a document contributes, and lookups by key range.

Index keys are built so that a scan of the right key ranges returns a *superset*
of the documents a filter on the indexed fields matches (the caller always
re-checks each candidate with the full matcher):

* per field, every value :func:`iter_path` yields for the document — exactly the
  values the matcher compares against (array elements *and* the array itself, the
  elements of arrays of documents met on the way); a missing value indexes as
  null, as in MongoDB;
* ``encode_key`` gives order-preserving, prefix-free bytes, so a compound key is
  the concatenation of its fields' keys; a descending field's bytes are
  complemented;
* a multikey compound index holds the cross product of the fields' values;
* a sparse index leaves out documents where every indexed field is missing; a
  partial index leaves out documents its ``partialFilterExpression`` rejects;
* ``hashed`` fields are stored like ascending ones and used for equality only.
"""
from __future__ import annotations

from itertools import islice, product
from typing import Any, Iterator

from mongolake.query import keystring
from mongolake.query.bsonorder import MISSING
from mongolake.query.paths import iter_path, split_path

from .sortedkeys import SortedKeys, sort_items

NULL_KEY = keystring.encode_key(None)
MAX_KEYS_PER_DOC = 10_000
_COMPLEMENT = bytes(255 - i for i in range(256))


def desc_key(k: bytes) -> bytes:
    """A descending field's key: the complemented bytes plus 0xFF, which keeps the
    order reversed and the keys prefix-free (a key that is a proper prefix of
    another continues with 0xFF, whose complement is 0x00)."""
    return k.translate(_COMPLEMENT) + b"\xff"


class SecondaryIndex:
    """The in-memory structure of one catalog index spec."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.name: str = spec["name"]
        self.fields: list[str] = list(spec["key"])
        self.parts = [split_path(f) for f in self.fields]
        self.desc = [(isinstance(v, (int, float)) and v < 0) for v in spec["key"].values()]
        self.hashed = any(v == "hashed" for v in spec["key"].values())
        self.unique = bool(spec.get("unique"))
        self.sparse = bool(spec.get("sparse"))
        pfe = spec.get("partialFilterExpression")
        self.partial = None
        if pfe:
            from mongolake.query.filter import parse_filter
            from mongolake.query.matcher import compile_matcher
            self.partial = compile_matcher(parse_filter(pfe))
        self.keys = SortedKeys()
        self.multikey = False

    # -- keys of a document ----------------------------------------------------
    def field_keys(self, doc: dict, i: int) -> tuple[set[bytes], bool]:
        """(keys of field ``i`` in ``doc``, whether the field is present)."""
        out: set[bytes] = set()
        present = False
        for v, _ in iter_path(doc, self.parts[i], traverse_leaf_arrays=True):
            if v is MISSING:
                out.add(NULL_KEY)
            else:
                present = True
                out.add(keystring.encode_key(v))
        if not out:
            out.add(NULL_KEY)
        if self.desc[i]:
            out = {desc_key(k) for k in out}
        return out, present

    def doc_keys(self, doc: dict) -> list[bytes]:
        """The index keys ``doc`` contributes (empty when sparse/partial leave it out)."""
        if self.partial is not None and not self.partial(doc):
            return []
        per_field = []
        any_present = False
        for i in range(len(self.parts)):
            ks, present = self.field_keys(doc, i)
            any_present |= present
            per_field.append(ks)
        if self.sparse and not any_present:
            return []
        if len(per_field) == 1:
            keys = list(per_field[0])
        else:
            n = 1
            for ks in per_field:
                n *= len(ks)
            if n > MAX_KEYS_PER_DOC:
                raise ValueError(f"a document would add {n} keys to index {self.name}")
            keys = [b"".join(t) for t in product(*per_field)]
        if len(keys) > 1:
            self.multikey = True
        return keys

    # -- maintenance -----------------------------------------------------------
    def add(self, doc: dict, key: bytes) -> None:
        for k in self.doc_keys(doc):
            self.keys.add((k, key))

    def remove(self, doc: dict, key: bytes) -> None:
        for k in self.doc_keys(doc):
            self.keys.discard((k, key))

    def bulk_load(self, items: list[tuple[bytes, bytes]]) -> None:
        """Replace the entries by ``items`` (distinct: a document's keys are)."""
        self.keys = SortedKeys.from_sorted(sort_items(items))

    # -- lookups -----------------------------------------------------------------
    def scan(self, ranges: list[tuple[bytes | None, bool, bytes | None, bool]], reverse: bool = False
             ) -> Iterator[tuple[bytes, bytes]]:
        """Entries whose key starts with a prefix in one of ``ranges``
        (``(lo, lo_inclusive, hi, hi_inclusive)`` over key *prefixes*, None: open),
        given sorted and non-overlapping, in index order.

        Field keys never continue with 0xFF after a complete key of a leading field
        (bracket bytes and terminators are below it), so "starts with ``hi``" is
        ``< hi + 0xFF`` and "after every key starting with ``lo``" is ``>= lo + 0xFF``.
        """
        seq = reversed(ranges) if reverse else ranges
        for lo, lo_incl, hi, hi_incl in seq:
            a = lo if lo is None or lo_incl else lo + b"\xff"
            b = hi if hi is None or not hi_incl else hi + b"\xff"
            yield from self.keys.irange(a, b, reverse=reverse)

    def cursor(self, ranges: list[tuple[bytes | None, bool, bytes | None, bool]], reverse: bool = False
               ) -> "IndexCursor":
        return IndexCursor(self, ranges, reverse)

    def entries_equal(self, k: bytes) -> Iterator[bytes]:
        """The ``_key`` of every entry whose full index key is exactly ``k``."""
        for ik, key in self.keys.irange(k, k + b"\xff"):
            if ik == k:
                yield key

    def describe(self) -> dict[str, Any]:
        return {"indexName": self.name, "keyPattern": dict(self.spec["key"]), "isMultiKey": self.multikey,
                "isUnique": self.unique, "isSparse": self.sparse, "isPartial": self.partial is not None}


class IndexCursor:
    """A resumable walk over an index's ranges, taken in batches.

    The caller takes each batch under ``engine.lock`` and works on it without the
    lock; the next batch resumes strictly after the last entry returned, so the
    set may change in between (a moved document may be met twice or not at all,
    as with any index scan that yields; readers re-check what they get).
    """

    def __init__(self, ix: SecondaryIndex, ranges: list[tuple[bytes | None, bool, bytes | None, bool]],
                 reverse: bool = False):
        self.ix = ix
        self.reverse = reverse
        self.bounds = [(lo if lo is None or lo_incl else lo + b"\xff", hi if hi is None or not hi_incl else hi + b"\xff")
                       for lo, lo_incl, hi, hi_incl in ranges]
        if reverse:
            self.bounds.reverse()
        self.r = 0
        self.after: tuple[bytes, bytes] | None = None
        self.examined = 0

    def next_batch(self, n: int) -> list[tuple[bytes, bytes]]:
        """Up to ``n`` more entries in walk order (empty: the walk is over)."""
        out: list[tuple[bytes, bytes]] = []
        while self.r < len(self.bounds) and len(out) < n:
            a, b = self.bounds[self.r]
            got = list(islice(self.ix.keys.irange(a, b, self.reverse, self.after), n - len(out)))
            if got:
                out += got
                self.after = got[-1]
            if len(out) < n:
                self.r += 1
        self.examined += len(out)
        return out
