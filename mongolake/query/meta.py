"""Per-document metadata (``{$meta: ...}``): text scores, vector-search scores,
geoNear distances.

MongoDB attaches metadata to a document as it flows through a query or a
pipeline; ``{$meta: "textScore"}`` in a projection, a sort or an expression
reads it. MongoLake carries it on the document object itself: a
:class:`MetaDoc` is a plain ``dict`` subclass with one extra slot, so every
code path that reads documents keeps working, BSON encoding ignores the slot,
and nothing is ever written to storage.

Stages that build a *new* document from an input (``$project``,
``$addFields``/``$set``, ``$unset``) call :func:`carry` so the metadata follows
the document, as in MongoDB; stages that pass documents through (``$match``,
``$sort``, ``$limit``, ``$skip``) keep it for free; ``$group`` drops it.

Names are MongoDB's: ``textScore``, ``vectorSearchScore``, ``searchScore``,
``geoNearDistance``, ``geoNearPoint``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["MetaDoc", "attach", "carry", "get_meta", "meta_of"]


class MetaDoc(dict):
    """A document (dict) with a ``meta`` mapping of metadata name → value."""

    __slots__ = ("meta",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.meta: dict[str, Any] = {}


def meta_of(doc: Any) -> dict[str, Any] | None:
    """The metadata of ``doc`` (None when it carries none)."""
    return doc.meta if type(doc) is MetaDoc else None


def get_meta(doc: Any, name: str, default: Any = None) -> Any:
    m = doc.meta if type(doc) is MetaDoc else None
    if m is None:
        return default
    return m.get(name, default)


def attach(doc: dict, **values: Any) -> MetaDoc:
    """``doc`` as a :class:`MetaDoc` with ``values`` added to its metadata
    (``doc`` itself when it already is one)."""
    new = doc if type(doc) is MetaDoc else MetaDoc(doc)
    new.meta.update(values)
    return new


def carry(src: Any, dst: dict) -> dict:
    """``dst`` with the metadata of ``src`` (``dst`` unchanged when ``src`` has none)."""
    if type(src) is not MetaDoc or not src.meta:
        return dst
    if type(dst) is MetaDoc:
        for k, v in src.meta.items():
            dst.meta.setdefault(k, v)
        return dst
    out = MetaDoc(dst)
    out.meta.update(src.meta)
    return out
