"""Public API of the aggregation expression language.

>>> fn = compile_expression({"$add": ["$a", 1]})
>>> fn({"a": 41}, {})
42

``compile_expression(spec, allowed_vars=None)`` parses ``spec`` once (raising
:class:`~mongolake.errors.MongoError` with MongoDB's codes for invalid
expressions) and returns ``fn(doc, variables)``.  ``variables`` maps variable
names without ``$$`` to values (``NOW``, ``CLUSTER_TIME``, ``let`` variables,
...); ``ROOT`` and ``CURRENT`` default to ``doc``.  A missing result is
:data:`MISSING` (also what ``$$REMOVE`` yields): callers drop such fields.

``allowed_vars`` — when given, the user variables that may be referenced
(``$$name``); any other name fails at parse time with code 17276, as in MongoDB.
When ``None`` variables are only checked when evaluated.

The operators are implemented in :mod:`mongolake.query.expr`.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from mongolake.query import expr as _expr  # noqa: F401  (registers the operators)
from mongolake.query.bsonorder import MISSING
from mongolake.query.expr.core import OPERATORS, UNSUPPORTED_OPERATORS, Node, ParseState, compile_node, is_const, const_value
from mongolake.query.expr.logic import agg_compare
from mongolake.query.expr.sortspec import compile_sort_spec
from mongolake.query.expr.values import hash_key, truthy, type_name

ExpressionFn = Callable[[Any, "dict | None"], Any]

__all__ = [
    "compile_expression", "truthy", "MISSING", "ExpressionFn", "agg_compare", "hash_key", "type_name",
    "is_constant_expression", "supported_operators", "compile_sort_spec", "compile_node", "ParseState",
    "make_scope",
]


def make_scope(doc: Any, variables: dict | None = None) -> dict:
    """The variable scope for evaluating a compiled node against ``doc``."""
    s = dict(variables) if variables else {}
    if "ROOT" not in s:
        s["ROOT"] = doc
    if "CURRENT" not in s:
        s["CURRENT"] = doc
    return s


def compile_expression(spec: Any, *, allowed_vars: Iterable[str] | None = None) -> ExpressionFn:
    """Compile an aggregation expression; see the module docstring."""
    node = compile_node(spec, ParseState(allowed_vars))

    def fn(doc: Any, variables: dict | None = None) -> Any:
        return node(make_scope(doc, variables))

    fn.node = node  # type: ignore[attr-defined]
    return fn


def is_constant_expression(spec: Any) -> tuple[bool, Any]:
    """``(True, value)`` when ``spec`` folds to a constant (no field paths, variables or $rand)."""
    node = compile_node(spec, ParseState(None))
    if is_const(node):
        return True, const_value(node)
    return False, None


def supported_operators() -> list[str]:
    """The names of every implemented expression operator."""
    return sorted(set(OPERATORS) - UNSUPPORTED_OPERATORS)


Node = Node
