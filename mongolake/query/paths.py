"""Dotted-path value resolution with MongoDB's query semantics.

A query path such as ``"a.b.0.c"`` is resolved against a document the way
MongoDB's matcher does it (``ElementPath``/``BSONElementIterator``):

* The path is walked through embedded documents until it ends or meets an
  array. A scalar met before the end of the path means the field is *missing*.
* At an array **in the middle** of the path, each element that is a document is
  searched for the rest of the path (recursively, so arrays deeper down are
  traversed too). If the next path component is a number ``"0"``, ``"1"``...,
  the element at that index is also looked into; an element that is itself an
  array is only entered through such an explicit index. Nothing is produced for
  the array itself, so ``{"a.b": null}`` does *not* match ``{a: [1, 2]}``.
* At an array **at the end** of the path (a *leaf array*), each element is
  produced, then the array itself (unless ``traverse_leaf_arrays`` is false,
  used by ``$size``/``$elemMatch``, which see only the array).

:func:`iter_path` yields ``(value, array_index)`` pairs: ``value`` may be
:data:`MISSING`; ``array_index`` is the index in the *outermost* array that was
implicitly traversed to produce the value (what the positional ``$`` operator
uses), or ``None``.
"""
from __future__ import annotations

from typing import Any, Iterator

from bson.dbref import DBRef

from mongolake.query.bsonorder import MISSING

__all__ = ["split_path", "iter_path", "get_value", "path_crosses_array"]


def split_path(path: str) -> tuple[str, ...]:
    """``"a.b.0"`` -> ``("a", "b", "0")``."""
    return tuple(path.split("."))


def _is_index(part: str) -> bool:
    """True when ``part`` names an array position (all ASCII digits)."""
    return part.isdigit() and part.isascii()


def _child(container: Any, part: str) -> Any:
    """The value of field ``part`` in a document (or of a canonical index in an
    array viewed as a document, e.g. an element handed to ``$elemMatch``)."""
    if isinstance(container, dict):
        return container.get(part, MISSING)
    if isinstance(container, list):
        if _is_index(part) and (part == "0" or part[0] != "0"):
            i = int(part)
            if i < len(container):
                return container[i]
        return MISSING
    if isinstance(container, DBRef):
        return container.as_doc().get(part, MISSING)
    return MISSING


def _dotted_or_array(obj: Any, parts: tuple[str, ...], start: int) -> tuple[Any, int]:
    """Walk ``parts[start:]`` through documents; stop at the first array.

    Returns ``(value, index)`` where ``value`` is the array met at ``parts[index]``,
    the value at the end of the path, or MISSING.
    """
    cur = obj
    last = len(parts) - 1
    i = start
    while True:
        sub = _child(cur, parts[i])
        if sub is MISSING or i == last or type(sub) is list:
            return sub, i
        if isinstance(sub, (dict, DBRef)):
            cur = sub
            i += 1
            continue
        return MISSING, i


def iter_path(doc: Any, parts: tuple[str, ...], traverse_leaf_arrays: bool = True
              ) -> Iterator[tuple[Any, int | None]]:
    """Every value the path designates in ``doc`` (see the module docstring)."""
    if not parts:
        yield doc, None
        return
    yield from _from_object(doc, parts, 0, traverse_leaf_arrays)


def _from_object(obj: Any, parts: tuple[str, ...], start: int, leaf: bool
                 ) -> Iterator[tuple[Any, int | None]]:
    value, idx = _dotted_or_array(obj, parts, start)
    if type(value) is not list:
        yield value, None
        return
    yield from _from_array(value, parts, idx + 1, leaf)


def _from_array(arr: list, parts: tuple[str, ...], start: int, leaf: bool
                ) -> Iterator[tuple[Any, int | None]]:
    n = len(parts)
    if start == n:                                   # the path ends at this array
        if leaf:
            for i, e in enumerate(arr):
                yield e, i
        yield arr, None
        return
    nxt = parts[start]
    numeric = _is_index(nxt)
    for i, e in enumerate(arr):
        offset_match = numeric and nxt == str(i)
        if isinstance(e, (dict, DBRef)):
            for v, _ in _from_object(e, parts, start, leaf):
                yield v, i                           # the outermost offset wins
            if offset_match:
                if start + 1 == n:
                    yield e, None
                else:
                    yield from _from_object(e, parts, start + 1, leaf)
        elif offset_match:
            if start + 1 == n:
                yield e, None                        # explicit index: no expansion
            elif type(e) is list:
                yield from _from_array(e, parts, start + 1, leaf)


def get_value(doc: Any, parts: tuple[str, ...], default: Any = MISSING) -> Any:
    """The single value at a path, following documents and explicit array
    indexes only (no implicit array traversal); ``default`` when absent."""
    cur = doc
    for p in parts:
        cur = _child(cur, p)
        if cur is MISSING:
            return default
    return cur


def path_crosses_array(doc: Any, parts: tuple[str, ...]) -> bool:
    """True when resolving ``parts`` meets an array (in the middle or at the end)."""
    cur = doc
    for p in parts:
        if type(cur) is list:
            return True
        if not isinstance(cur, dict):
            return False
        cur = cur.get(p, MISSING)
    return type(cur) is list
