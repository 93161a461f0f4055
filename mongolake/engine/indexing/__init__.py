"""Secondary indexes: in-memory sorted index structures rebuilt on open and kept
in sync with every committed write (see docs/architecture.md, "Secondary indexes")."""
from .manager import IndexManager
from .planner import IndexPlan

__all__ = ["IndexManager", "IndexPlan"]
