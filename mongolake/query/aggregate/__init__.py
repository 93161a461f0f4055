"""The aggregation pipeline (document-at-a-time).

>>> from mongolake.query.aggregate import parse_pipeline, InMemoryPipelineContext
>>> p = parse_pipeline([{"$match": {"x": {"$gt": 1}}}, {"$count": "n"}])
>>> list(p.run([{"x": 1}, {"x": 2}, {"x": 3}], InMemoryPipelineContext()))
[{'n': 2}]

* :func:`parse_pipeline` validates and optimises a pipeline (MongoError with
  MongoDB's codes on bad input);
* :class:`Pipeline` — ``run(source, ctx)``, ``leading_match()``,
  ``without_leading_match()``, ``pure_count()``, ``writes_output``,
  ``output_namespace``, ``is_collectionless``, ``to_specs()``;
* :class:`PipelineContext` — what stages need from outside (see
  :mod:`.context`), and :class:`InMemoryPipelineContext`.
"""
from mongolake.query.aggregate.context import DEFAULT_MEMORY_LIMIT, InMemoryPipelineContext, PipelineContext
from mongolake.query.aggregate.pipeline import UNSUPPORTED_STAGES, Pipeline, PureCount, parse_pipeline


def supported_stages() -> list[str]:
    """Names of every implemented stage."""
    from mongolake.query.aggregate import stages as _stages  # noqa: F401
    from mongolake.query.aggregate.base import STAGES

    return sorted(STAGES)


__all__ = ["parse_pipeline", "Pipeline", "PureCount", "PipelineContext", "InMemoryPipelineContext",
           "DEFAULT_MEMORY_LIMIT", "UNSUPPORTED_STAGES", "supported_stages"]
