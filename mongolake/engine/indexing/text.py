"""Text indexes: an in-memory inverted index, and the reader that answers ``$text``.

Structure (per collection, one text index at most, as in MongoDB): every indexed
document version gets a dense integer id; each term has a posting list of
``(id, score)`` in two typed arrays (4 + 8 bytes per entry). Removing a document
marks its id dead; updates remove and re-add. When dead entries outnumber live
ones the postings are compacted (ids renumbered). Term scores are MongoDB's (see
:mod:`mongolake.query.text.spec`); a search sums, per document, the scores of the
query's distinct index terms with numpy (``bincount`` over the concatenated
postings), so a search costs O(postings of its terms), not O(documents).

Like the B-tree indexes it is built lazily from the table and kept in sync by the
:class:`~mongolake.engine.indexing.manager.IndexManager` under ``engine.lock``.
"""
from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Any, Iterator

import bson
import numpy as np

from mongolake import deadline
from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import CODEC_OPTIONS
from mongolake.query.filter import And, Nor, Node, Or, walk
from mongolake.query.meta import attach
from mongolake.query.text import TEXT_MATCHED, TEXT_ORDERED, CompiledQuery, TextNode, TextSpec, fix_spec

if TYPE_CHECKING:
    from ..collection import Collection

_ID = "I" if array("I").itemsize == 4 else "L"
NoQueryExecutionPlans = 291
_spec_cache: dict[str, TextSpec] = {}


class TextIndex:
    kind = "text"
    #: dead postings tolerated before a compaction (and at least as many as live ones)
    compact_min_dead = 65536

    def __init__(self, spec: dict):
        self.spec = spec
        self.name = spec["name"]
        self.text = TextSpec(spec)
        self._ids: dict[bytes, int] = {}
        self._keys: list[bytes | None] = []
        self._nterms = array("I")
        self._alive = bytearray()
        self._post: dict[str, tuple[array, array]] = {}
        self._live = 0
        self._dead = 0

    # -- catalog ---------------------------------------------------------------------
    @classmethod
    def validate_spec(cls, spec: dict) -> dict:
        """createIndexes: MongoDB's text-spec checks, the normalised spec back."""
        if spec.get("unique"):
            raise MongoError(ErrorCode.NotImplemented, "unique text indexes are not supported by MongoLake")
        if spec.get("partialFilterExpression") is not None:
            raise MongoError(ErrorCode.NotImplemented, "partial text indexes are not supported by MongoLake")
        coll = spec.get("collation")
        if coll is not None and not (isinstance(coll, dict) and coll.get("locale") == "simple"):
            raise MongoError(ErrorCode.CannotCreateIndex, f"Index type 'text' does not support collation: {coll}")
        return fix_spec(spec)

    @staticmethod
    def check_document(spec: dict, doc: dict) -> None:
        """Before a write: a language override must be a supported language's name
        (17261 not a string, 17262 unsupported), as MongoDB checks while indexing."""
        ts = _spec_cache.get(spec["name"])
        if ts is None or ts.spec != spec:
            ts = _spec_cache[spec["name"]] = TextSpec(spec)
            if len(_spec_cache) > 256:
                _spec_cache.clear()
        for _ in ts.strings(doc, strict=True):
            pass

    # -- maintenance (engine.lock held) ------------------------------------------------
    def add(self, doc: dict, key: bytes) -> None:
        if key in self._ids:
            self._kill(key)
        scores = self.text.term_scores(doc)
        if not scores:
            return
        i = len(self._keys)
        self._keys.append(key)
        self._ids[key] = i
        self._alive.append(1)
        self._nterms.append(len(scores))
        post = self._post
        for t, s in scores.items():
            p = post.get(t)
            if p is None:
                p = post[t] = (array(_ID), array("d"))
            p[0].append(i)
            p[1].append(s)
        self._live += len(scores)

    def remove(self, doc: dict, key: bytes) -> None:
        self._kill(key)
        if self._dead > self.compact_min_dead and self._dead > self._live:
            self._compact()

    def _kill(self, key: bytes) -> None:
        i = self._ids.pop(key, None)
        if i is None:
            return
        self._alive[i] = 0
        self._keys[i] = None
        n = self._nterms[i]
        self._live -= n
        self._dead += n

    def finish_build(self) -> None:
        if self._dead:
            self._compact()

    def _compact(self) -> None:
        alive = np.frombuffer(bytes(self._alive), dtype=np.uint8).astype(bool)
        new_id = (np.cumsum(alive) - 1).astype(np.uint32)
        post: dict[str, tuple[array, array]] = {}
        for t, (ids, sc) in self._post.items():
            a = np.array(ids, dtype=np.uint32)
            m = alive[a]
            if not m.any():
                continue
            na, ns = array(_ID), array("d")
            na.frombytes(new_id[a[m]].astype(np.uint32).tobytes())
            ns.frombytes(np.array(sc, dtype=np.float64)[m].tobytes())
            post[t] = (na, ns)
        keep = np.flatnonzero(alive).tolist()
        self._keys = [self._keys[i] for i in keep]
        self._ids = {k: i for i, k in enumerate(self._keys)}  # type: ignore[misc]
        self._nterms = array("I", (self._nterms[i] for i in keep))
        self._alive = bytearray(b"\x01") * len(self._keys)
        self._post = post
        self._dead = 0

    def describe(self) -> dict[str, Any]:
        return {"indexName": self.name, "keyPattern": dict(self.spec["key"]), "kind": "text",
                "weights": dict(self.spec["weights"]), "terms": len(self._post), "documents": len(self._ids)}

    def entry_count(self) -> int:
        return self._live

    # -- search (engine.lock held) -------------------------------------------------------
    def search(self, terms: list[str]) -> "Hits":
        """The documents holding any of ``terms``, best textScore first (ties in index
        order), as :class:`Hits`; keys are looked up batch by batch when read."""
        ids_parts, sc_parts = [], []
        for t in terms:
            p = self._post.get(t)
            if p is not None and len(p[0]):
                ids_parts.append(np.frombuffer(p[0], dtype=np.uint32).copy())
                sc_parts.append(np.frombuffer(p[1], dtype=np.float64).copy())
        if not ids_parts:
            return Hits(np.empty(0, np.uint32), np.empty(0), self._keys, 0)
        ids = np.concatenate(ids_parts) if len(ids_parts) > 1 else ids_parts[0]
        sc = np.concatenate(sc_parts) if len(sc_parts) > 1 else sc_parts[0]
        examined = len(ids)
        if self._dead:
            alive = np.frombuffer(bytes(self._alive), dtype=np.uint8)
            m = alive[ids].astype(bool)
            ids, sc = ids[m], sc[m]
        if len(ids_parts) > 1:
            ids, inv = np.unique(ids, return_inverse=True)
            sc = np.bincount(inv.ravel(), weights=sc, minlength=len(ids))
        order = np.argsort(-sc, kind="stable")   # ids ascend: ties stay in index order
        return Hits(ids[order], sc[order], self._keys, examined)


class Hits:
    """A search's result: document ids and scores in result order, and the id -> key
    list they index. A compaction replaces the index's list (this one stays as it
    was); a document removed meanwhile reads as None and is skipped."""

    def __init__(self, ids: np.ndarray, scores: np.ndarray, keys: list, examined: int):
        self.ids, self.scores, self.keys, self.examined = ids, scores, keys, examined

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, start: int, stop: int) -> list[tuple[bytes | None, float | None]]:
        keys = self.keys
        return [(keys[i], s) for i, s in zip(self.ids[start:stop].tolist(), self.scores[start:stop].tolist())]

    def all_keys(self) -> set:
        keys = self.keys
        return {keys[i] for i in self.ids.tolist()}


# -- the $text reader -----------------------------------------------------------------------

def _text_spec(c: "Collection") -> dict:
    from .kinds import special_kind
    for s in c.meta.indexes:
        if special_kind(s) == "text":
            return s
    raise MongoError(ErrorCode.IndexNotFound, "text index required for $text query")


def _check_tree(root: Node) -> None:
    texts = [n for n in walk(root) if isinstance(n, TextNode)]
    if len(texts) > 1:
        raise MongoError(ErrorCode.BadValue, "Too many text expressions")
    if any(getattr(n, "needs_index", None) not in (None, "text") for n in walk(root)):
        raise MongoError(ErrorCode.BadValue, "text and geoNear not allowed in same query")
    for n in walk(root):
        if isinstance(n, Nor) and any(isinstance(x, TextNode) for x in walk(n)):
            raise MongoError(ErrorCode.BadValue, "text expression not allowed in nor")


def _ors_on_path(root: Node, node: Node) -> list[tuple[Or, Node]] | None:
    """The ``$or`` nodes between the root and ``node`` with the child leading to it."""
    if root is node:
        return []
    if isinstance(root, (And, Or)):
        for ch in root.children:
            sub = _ors_on_path(ch, node)
            if sub is not None:
                return ([(root, ch)] if isinstance(root, Or) else []) + sub
    return None


def _conjuncts(root: Node) -> list[Node]:
    """The top-level conjuncts of a filter, nested ``$and`` flattened."""
    if isinstance(root, And):
        return [n for ch in root.children for n in _conjuncts(ch)]
    return [root]


def _check_prefix(ts: TextSpec, root: Node) -> None:
    """A compound text index needs equality conditions on its prefix fields."""
    if not ts.prefix:
        return
    from mongolake.query.filter import Compare, is_regex
    conj = _conjuncts(root)
    eq = {n.path for n in conj if isinstance(n, Compare) and n.op == "$eq" and not is_regex(n.value)
          and not isinstance(n.value, (dict, list))}
    if not all(f in eq for f in ts.prefix):
        raise MongoError(NoQueryExecutionPlans, "failed to use text index to satisfy $text query (if text index is "
                                                "compound, are equality predicates given for all prefix fields?)")


def iter_text(engine: Any, c: "Collection", plan: Any, node: TextNode, stats: Any) -> Iterator[tuple[Any, dict]]:
    """Documents matching a filter that holds ``$text``, best textScore first (those an
    ``$or`` branch matched without the text last), each a MetaDoc carrying ``textScore``
    and the ``TEXT_ORDERED`` mark (a sort on textScore alone can take the first k).
    Validation errors are raised here, before the first document is read."""
    from mongolake.query.matcher import compile_matcher

    from ..txn import CURRENT

    root = plan.expr
    _check_tree(root)
    spec = _text_spec(c)
    ts = TextSpec(spec)
    q = CompiledQuery(node.query, ts.default_language)
    _check_prefix(ts, root)
    ors = _ors_on_path(root, node) or []
    full = False
    if root is node:
        rest = None
    elif not ors:                                 # $text is a conjunct: the others check plain documents
        others = tuple(ch for ch in _conjuncts(root) if ch is not node)
        rest = compile_matcher(others[0] if len(others) == 1 else And(others))
    else:                                         # under $or: the full filter on marked documents
        rest, full = plan.matcher, True
    ix = None
    if CURRENT.get() is None:
        engine.indexes.ensure_special(c, "text")
        with engine.lock:
            found = engine.indexes.special(c, "text")
            ix = found[0] if found else None
            if ix is not None:
                hits = ix.search(q.bounds)
                extra = _or_candidates(engine, c, ors) if ors else []
                if extra:
                    have = hits.all_keys()
                    extra = [k for k in extra if k not in have]
    if ix is None:                                # inside a transaction (its snapshot) or a past view
        return _scan(engine, c, q, ts, plan, stats)
    stats.index_name = ix.name
    stats.index_bounds = {"terms": list(q.bounds), "negatedTerms": sorted(q.negated), "phrases": list(q.phrases),
                          "negatedPhrases": list(q.neg_phrases)}      # MongoDB's parsedTextQuery
    stats.keys_examined = hits.examined
    stats.docs_examined = 0
    return _fetch(engine, c, hits, extra, q, ts, rest, bool(ors), full, stats)


def _or_candidates(engine: Any, c: "Collection", ors: list[tuple[Or, Node]]) -> list[bytes]:
    """Keys of the documents the other branches of each ``$or`` around ``$text`` may
    match, through their B-tree indexes (MongoDB's rule: they must be indexed)."""
    from .planner import choose
    ixs = engine.indexes.for_collection(c)
    out: list[bytes] = []
    seen: set[bytes] = set()
    for or_node, via in ors:
        for ch in or_node.children:
            if ch is via:
                continue
            p = choose(ixs, ch, None) if ixs else None
            if p is None:
                raise MongoError(NoQueryExecutionPlans, "Failed to produce a solution for TEXT under OR - other "
                                                        "non-TEXT clauses under OR have to be indexed as well.")
            for _ik, k in p.index.scan(p.ranges):
                if k not in seen:
                    seen.add(k)
                    out.append(k)
    return out


def _fetch(engine: Any, c: "Collection", hits: Hits, extra: list[bytes], q: CompiledQuery, ts: TextSpec,
           rest: Any, in_or: bool, full: bool, stats: Any) -> Iterator[tuple[bytes, dict]]:
    """Fetch the candidates (the index's hits, then documents only another ``$or``
    branch may match) and keep the matches: ``rest`` is the rest of the filter (a
    plain-document matcher), or with ``full`` the whole filter, which reads the
    ``$text`` verdict marked on the document."""
    from .batch_fetch import fetch_many
    exact = q.index_exact
    pos, n, total = 0, 32, len(hits) + len(extra)
    while pos < total:                            # growing batches: a limit stops early
        stop = min(pos + n, total)
        batch = hits.batch(pos, stop) if pos < len(hits) else []
        if stop > len(hits):
            batch += [(k, None) for k in extra[max(0, pos - len(hits)):stop - len(hits)]]
        pos = stop
        n = min(n * 4, 2048)
        deadline.check()                          # maxTimeMS
        batch = [b for b in batch if b[0] is not None]
        raws = fetch_many(engine, c, [k for k, _s in batch])
        yield from _keep(batch, raws, q, ts, rest, in_or, full, exact, stats)


def _keep(batch: list, raws: list, q: CompiledQuery, ts: TextSpec, rest: Any, in_or: bool, full: bool,
          exact: bool, stats: Any) -> Iterator[tuple[bytes, dict]]:
    for (key, score), raw in zip(batch, raws):
        if raw is None:
            continue
        stats.docs_examined += 1
        d = bson.decode(raw, CODEC_OPTIONS)
        matched = score is not None and (exact or q.matches(ts, d))
        if not matched and not in_or:
            continue
        if not full:
            if rest is not None and not rest(d):
                continue
            yield raw, attach(d, textScore=score, **{TEXT_MATCHED: True, TEXT_ORDERED: True})
            continue
        doc = attach(d, textScore=score, **{TEXT_MATCHED: True, TEXT_ORDERED: True}) if matched \
            else attach(d, **{TEXT_MATCHED: False, TEXT_ORDERED: True})
        if rest(doc):
            yield raw, doc


def _scan(engine: Any, c: "Collection", q: CompiledQuery, ts: TextSpec, plan: Any, stats: Any
          ) -> Iterator[tuple[bytes, dict]]:
    """The scan equivalent: tokenise every document of the reader's view."""
    from ..reader import ScanPlan
    everything = ScanPlan(None, None, c.specs)
    matcher = plan.matcher
    hits = []
    for raw, d in engine._iter_scan(c, everything, True, stats, *engine._state(c)):
        score = q.evaluate(ts, d)
        doc = attach(d, textScore=score, **{TEXT_MATCHED: True, TEXT_ORDERED: True}) if score is not None \
            else attach(d, **{TEXT_MATCHED: False, TEXT_ORDERED: True})
        if matcher(doc):
            hits.append((raw, doc))
    hits.sort(key=lambda h: -(h[1].meta.get("textScore") or 0.0))
    return iter(hits)
