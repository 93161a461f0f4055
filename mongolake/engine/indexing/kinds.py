"""Special index kinds (text, 2dsphere, vector search) and the reads that need them.

B-tree style indexes (:mod:`.index`) are the planner's business. The other kinds
live in their own modules and plug in here by name, resolved lazily so that a
kind's module (and its dependencies) load only when a collection uses it:

* :data:`INDEX_KINDS` maps a kind to ``"module:Class"``. The class is built from
  the catalog spec (``cls(spec)``), has attributes ``kind`` (the key of this
  table), ``name`` and ``spec``, and implements ``add(doc, key)``,
  ``remove(doc, key)``, ``finish_build()`` (called once after the initial bulk
  build), ``describe() -> dict`` and ``entry_count() -> int``. The manager keeps
  it in sync with every committed change under ``engine.lock``, exactly like a
  B-tree index; it never enforces uniqueness and the planner never picks it.
* :data:`SPECIAL_READS` maps a filter node's ``needs_index`` (see
  :class:`~mongolake.query.filter.CustomNode`) to ``"module:function"``, called as
  ``fn(engine, collection, plan, node, stats)`` and returning an iterator of
  ``(raw_or_None, decoded_doc)`` in the order results must come back (e.g. nearest
  first), with metadata attached as :class:`~mongolake.query.meta.MetaDoc`.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

INDEX_KINDS: dict[str, str] = {
    "text": "mongolake.engine.indexing.text:TextIndex",
    "2dsphere": "mongolake.engine.indexing.geo:GeoIndex",
    "vectorSearch": "mongolake.engine.indexing.vector:VectorIndex",
}

SPECIAL_READS: dict[str, str] = {
    "text": "mongolake.engine.indexing.text:iter_text",
    "2dsphere": "mongolake.engine.indexing.geo:iter_near",
}


def special_kind(spec: dict) -> str | None:
    """The special kind of a catalog index spec, or None for B-tree style specs."""
    if spec.get("type") == "vectorSearch":
        return "vectorSearch"
    for v in (spec.get("key") or {}).values():
        if isinstance(v, str) and v in INDEX_KINDS:
            return v
    return None


def _resolve(ref: str) -> Any:
    mod, _, attr = ref.partition(":")
    return getattr(importlib.import_module(mod), attr)


def index_class(kind: str) -> Callable[[dict], Any]:
    return _resolve(INDEX_KINDS[kind])


def special_reader(kind: str) -> Callable[..., Any]:
    return _resolve(SPECIAL_READS[kind])
