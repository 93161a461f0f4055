"""Text search: the ``$text`` query operator and the language machinery behind
text indexes (tokenizer, stop words, Snowball stemming, scoring).

* :func:`parse_text_filter` — ``{$text: spec}`` -> :class:`TextNode` (a
  :class:`~mongolake.query.filter.CustomNode` with ``needs_index = "text"``; the
  engine answers it with :func:`mongolake.engine.indexing.text.iter_text`).
* :class:`TextSpec` / :func:`fix_spec` — a text index's normalised spec, the
  strings it covers in a document and their term scores.
* :class:`CompiledQuery` — a search resolved against a language: index terms,
  the per-document checks (phrases, negations, case/diacritic sensitivity),
  and :meth:`CompiledQuery.evaluate` (the scan equivalent of an index search).
"""
from __future__ import annotations

from typing import Any

from .query import TEXT_MATCHED, TEXT_ORDERED, CompiledQuery, TextNode, TextQuery, parse_text
from .spec import TextSpec, fix_spec

__all__ = ["parse_text_filter", "TextNode", "TextQuery", "CompiledQuery", "TextSpec", "fix_spec", "TEXT_MATCHED", "TEXT_ORDERED"]


def parse_text_filter(spec: Any) -> TextNode:
    """The filter node of ``{$text: spec}``."""
    return parse_text(spec)
