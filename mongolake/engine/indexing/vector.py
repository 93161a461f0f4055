"""Vector search indexes (Atlas ``vectorSearch`` search indexes).

A definition (``createSearchIndexes`` with ``type: "vectorSearch"``) lists
``vector`` fields (``path``, ``numDimensions``, ``similarity``) and ``filter``
fields (paths a ``$vectorSearch`` ``filter`` may use). The catalog keeps it in
``CollectionMeta.search_indexes`` as ``{name, type: "vectorSearch", id,
definition, ...}``; the index manager builds a :class:`VectorIndex` from it and
feeds it every committed change like any other index.

Per vector path the vectors sit in a :class:`~.vector_store.VectorStore`
(numpy float32, IVF lists trained by k-means, exact search for small stores or
``exact: true``). Per document the index also keeps a small projection of its
``filter`` paths, so a pre-filter is evaluated without fetching documents.
Documents whose value at a vector path is missing, not numeric, not finite or of
the wrong length are left out, as Atlas does (cosine also skips zero vectors).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
from bson.binary import Binary
from bson.int64 import Int64

from mongolake.errors import ErrorCode, MongoError

from .vector_store import VectorStore

SIMILARITIES = ("euclidean", "cosine", "dotProduct")
MAX_DIMENSIONS = 8192
_VECTOR_FIELD_KEYS = {"type", "path", "numDimensions", "similarity", "quantization", "hnswOptions"}
_QUANTIZATIONS = ("none", "scalar", "binary")
_NUMBER_TYPES = {int, float, Int64}


def _bad(msg: str) -> MongoError:
    return MongoError(ErrorCode.BadValue, msg)


def validate_definition(definition: Any) -> dict:
    """Check a ``vectorSearch`` index definition; returns it normalised (a copy)."""
    if not isinstance(definition, dict):
        raise _bad("Invalid index definition: \"definition\" must be a document")
    for k in definition:
        if k != "fields":
            raise _bad(f"Invalid index definition: \"{k}\" is not allowed")
    fields = definition.get("fields")
    if not isinstance(fields, list) or not fields:
        raise _bad("Invalid index definition: \"fields\" must be a non-empty array")
    out: list[dict] = []
    paths: set[str] = set()
    for i, f in enumerate(fields):
        where = f"fields[{i}]"
        if not isinstance(f, dict):
            raise _bad(f"Invalid index definition: \"{where}\" must be a document")
        typ = f.get("type")
        path = f.get("path")
        if typ not in ("vector", "filter"):
            raise _bad(f"Invalid index definition: \"{where}.type\" must be one of [vector, filter]")
        if not isinstance(path, str) or not path or path.startswith("$") or ".." in path or \
                path.startswith(".") or path.endswith("."):
            raise _bad(f"Invalid index definition: \"{where}.path\" must be a non-empty field path")
        if path in paths:
            raise _bad(f"Invalid index definition: path \"{path}\" is indexed more than once")
        paths.add(path)
        if typ == "filter":
            extra = set(f) - {"type", "path"}
            if extra:
                raise _bad(f"Invalid index definition: \"{where}.{sorted(extra)[0]}\" is not allowed")
            out.append({"type": "filter", "path": path})
            continue
        extra = set(f) - _VECTOR_FIELD_KEYS
        if extra:
            raise _bad(f"Invalid index definition: \"{where}.{sorted(extra)[0]}\" is not allowed")
        nd = f.get("numDimensions")
        if isinstance(nd, bool) or not isinstance(nd, (int, float)) or nd != int(nd) or \
                not 1 <= nd <= MAX_DIMENSIONS:
            raise _bad(f"Invalid index definition: \"{where}.numDimensions\" must be an integer between 1 and "
                       f"{MAX_DIMENSIONS}")
        sim = f.get("similarity")
        if sim not in SIMILARITIES:
            raise _bad(f"Invalid index definition: \"{where}.similarity\" must be one of "
                       f"[{', '.join(SIMILARITIES)}]")
        vf: dict[str, Any] = {"type": "vector", "path": path, "numDimensions": int(nd), "similarity": sim}
        if "quantization" in f:
            if f["quantization"] not in _QUANTIZATIONS:
                raise _bad(f"Invalid index definition: \"{where}.quantization\" must be one of "
                           f"[{', '.join(_QUANTIZATIONS)}]")
            vf["quantization"] = f["quantization"]
        if "hnswOptions" in f:
            if not isinstance(f["hnswOptions"], dict):
                raise _bad(f"Invalid index definition: \"{where}.hnswOptions\" must be a document")
            vf["hnswOptions"] = dict(f["hnswOptions"])
        out.append(vf)
    if not any(f["type"] == "vector" for f in out):
        raise _bad("Invalid index definition: at least one field of type \"vector\" is required")
    return {"fields": out}


def get_path(doc: Any, path: str) -> Any:
    """The value at a dotted path through embedded documents (None when missing)."""
    cur = doc
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def as_vector(value: Any, dims: int | None = None) -> np.ndarray | None:
    """``value`` as a float32 vector: an array of numbers or a BSON binary vector
    (subtype 9, float32 or int8); None when it is neither (or of another length,
    or holds a non-finite number)."""
    if isinstance(value, Binary):
        if value.subtype != 9:
            return None
        try:
            bv = value.as_vector()
        except Exception:            # noqa: BLE001 - malformed or packed-bit vectors are not indexed
            return None
        if getattr(bv.dtype, "name", "") not in ("FLOAT32", "INT8"):
            return None
        value = bv.data
    elif not isinstance(value, list):
        return None
    if dims is not None and len(value) != dims:
        return None
    if not value:
        return None
    if not set(map(type, value)) <= _NUMBER_TYPES:   # no bools, strings, documents, nulls
        return None
    try:
        v = np.asarray(value, dtype=np.float32)
    except (OverflowError, ValueError, TypeError):
        return None
    if not np.isfinite(v).all():
        return None
    return v


def _project(doc: dict, paths: list[str]) -> dict:
    """A small document holding only the values at ``paths`` (enough for a filter
    on those paths to evaluate as on the whole document)."""
    out: dict = {}
    for path in paths:
        parts = path.split(".")
        src: Any = doc
        dst = out
        for i, part in enumerate(parts):
            if not isinstance(src, dict) or part not in src:
                break
            val = src[part]
            if i == len(parts) - 1 or not isinstance(val, dict):
                dst[part] = val          # leaf, or an array / scalar on the way: keep it whole
                break
            nxt = dst.get(part)
            if not isinstance(nxt, dict):
                nxt = dst[part] = {}
            dst, src = nxt, val
    return out


class VectorIndex:
    """One ``vectorSearch`` search index (see the module docstring)."""

    kind = "vectorSearch"

    def __init__(self, spec: dict):
        self.spec = spec
        self.name = spec["name"]
        fields = spec["definition"]["fields"]
        self.vector_fields = {f["path"]: f for f in fields if f["type"] == "vector"}
        self.filter_paths = [f["path"] for f in fields if f["type"] == "filter"]
        self.stores = {p: VectorStore(f["numDimensions"], f["similarity"]) for p, f in self.vector_fields.items()}
        self._filt: dict[bytes, dict] = {}
        self.skipped = 0

    @classmethod
    def validate_spec(cls, spec: dict) -> dict:
        return {**spec, "type": "vectorSearch", "definition": validate_definition(spec.get("definition"))}

    # -- maintenance (called by the index manager under engine.lock) ---------------------
    def add(self, doc: dict, key: bytes) -> None:
        added = False
        for path, st in self.stores.items():
            f = self.vector_fields[path]
            v = as_vector(get_path(doc, path), f["numDimensions"])
            if v is not None and f["similarity"] == "cosine":
                norm = float(np.linalg.norm(v))
                v = v / norm if norm > 0 and math.isfinite(norm) else None
            if v is None:
                st.remove(key)
                self.skipped += 1
                continue
            st.add(key, v)
            added = True
        if added and self.filter_paths:
            self._filt[key] = _project(doc, self.filter_paths)
        elif not added:
            self._filt.pop(key, None)

    def remove(self, doc: dict, key: bytes) -> None:
        for st in self.stores.values():
            st.remove(key)
        self._filt.pop(key, None)

    def finish_build(self) -> None:
        for st in self.stores.values():
            st.maybe_train()

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind,
                "fields": {p: {"numDimensions": st.dims, "similarity": st.similarity, "vectors": len(st),
                               "lists": len(st.lists), "trainings": st.trainings}
                           for p, st in self.stores.items()}}

    def entry_count(self) -> int:
        return sum(len(st) for st in self.stores.values())

    # -- search --------------------------------------------------------------------------
    def search(self, path: str, query: np.ndarray, limit: int, *, num_candidates: int, exact: bool,
               matcher: Callable[[dict], bool] | None = None) -> tuple[list[tuple[bytes, float]], int]:
        """``[(key, vectorSearchScore)]``, best first, and the number of vectors
        scored. ``matcher`` (the compiled ``filter``) is evaluated on each
        candidate's projection of the filter paths. Call with ``engine.lock`` held."""
        st = self.stores.get(path)
        if st is None:
            raise _bad(f"Path '{path}' needs to be indexed as vector")
        f = self.vector_fields[path]
        q = np.asarray(query, dtype=np.float32)
        if len(q) != st.dims:
            raise _bad(f"vector field is indexed with {st.dims} dimensions but queried with {len(q)}")
        if f["similarity"] == "cosine":
            n = float(np.linalg.norm(q))
            if n == 0:
                return [], 0
            q = q / n
        accept = None
        if matcher is not None:
            keys, filt = st.keys, self._filt

            def accept(vid: int) -> bool:
                return matcher(filt.get(keys[vid]) or {})
        best, examined = st.search(q, limit, num_candidates=num_candidates, exact=exact, accept=accept)
        sim = f["similarity"]
        out = []
        for vid, raw in best:
            if sim == "euclidean":
                score = 1.0 / (1.0 + raw)
            else:
                score = (1.0 + raw) / 2.0
            out.append((st.keys[vid], score))
        return out, examined
