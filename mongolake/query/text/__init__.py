"""``$text`` search: parsing of the query operator (placeholder until text indexes land)."""
from __future__ import annotations

from typing import Any

from mongolake.errors import ErrorCode, MongoError


def parse_text_filter(spec: Any):
    """The filter node of ``{$text: spec}`` (a :class:`~mongolake.query.filter.CustomNode`)."""
    raise MongoError(ErrorCode.NotImplemented, "$text is not supported yet (needs a text index)")
