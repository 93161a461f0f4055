"""Text indexes (placeholder: creating one answers NotImplemented)."""
from __future__ import annotations

from mongolake.errors import ErrorCode, MongoError


class TextIndex:
    kind = "text"

    @classmethod
    def validate_spec(cls, spec: dict) -> dict:
        raise MongoError(ErrorCode.NotImplemented, "text indexes are not supported yet by MongoLake")
