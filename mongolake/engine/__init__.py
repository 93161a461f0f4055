"""The collection engine (EntityBackend): WAL, memtables, flush, reads, recovery."""
from .engine import Engine  # noqa: F401
from .writes import WriteResult  # noqa: F401
