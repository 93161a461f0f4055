"""2dsphere indexes (placeholder: creating one answers NotImplemented)."""
from __future__ import annotations

from mongolake.errors import ErrorCode, MongoError


class GeoIndex:
    kind = "2dsphere"

    @classmethod
    def validate_spec(cls, spec: dict) -> dict:
        raise MongoError(ErrorCode.NotImplemented, "2dsphere indexes are not supported yet by MongoLake")
