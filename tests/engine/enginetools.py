"""Shared pieces of the embedded-engine tests: an engine on each table format,
reopening it, and sorted ids."""
import pytest

from mongolake.engine import Engine


@pytest.fixture(params=["delta", "iceberg"])
def eng(tmp_path, request):
    """An open engine storing new collections as Delta, then as Iceberg."""
    e = Engine(str(tmp_path / "lake"), sync="always", flush_interval=3600, table_format=request.param).open()
    yield e
    e.close()


def reopen(e: Engine, tmp_path) -> Engine:
    """Close ``e`` and open the same store again (recovery replays the WAL)."""
    e.close()
    return Engine(str(tmp_path / "lake"), flush_interval=3600, table_format=e.table_format).open()


def ids(docs):
    return sorted(d["_id"] for d in docs)
