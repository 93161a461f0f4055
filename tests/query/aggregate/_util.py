"""Helpers for pipeline tests: run a pipeline over in-memory collections."""
from __future__ import annotations

from typing import Any

import pytest

from mongolake.errors import MongoError
from mongolake.query.aggregate import InMemoryPipelineContext, parse_pipeline


def run(pipeline: list, docs: list | None = None, ctx: InMemoryPipelineContext | None = None, **kw: Any) -> list:
    """Parse ``pipeline`` and run it over ``docs`` (collection 'c' of ``ctx``) ."""
    ctx = ctx or InMemoryPipelineContext()
    if docs is None:
        docs = ctx.coll("c")
    return list(parse_pipeline(pipeline, **kw).run(docs, ctx))


def fails(pipeline: list, code: int, docs: list | None = None, ctx: Any = None, **kw: Any) -> MongoError:
    with pytest.raises(MongoError) as ei:
        run(pipeline, docs or [], ctx, **kw)
    assert ei.value.code == code, ei.value
    return ei.value
