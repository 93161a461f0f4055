"""Helpers for the expression tests."""
from __future__ import annotations

from typing import Any

import pytest

from mongolake.errors import MongoError
from mongolake.query.expressions import compile_expression


def ev(spec: Any, doc: Any = None, variables: dict | None = None, **kw: Any) -> Any:
    """Compile and evaluate ``spec`` against ``doc``."""
    return compile_expression(spec, **kw)(doc if doc is not None else {}, variables)


def fails(spec: Any, code: int, doc: Any = None, variables: dict | None = None, **kw: Any) -> MongoError:
    """Assert that parsing or evaluating ``spec`` raises MongoError ``code``."""
    with pytest.raises(MongoError) as ei:
        ev(spec, doc, variables, **kw)
    assert ei.value.code == code, ei.value
    return ei.value
