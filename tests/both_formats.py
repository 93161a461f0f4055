"""Run a test module on the Delta and the Iceberg server: import these two
fixtures into the module (``from tests.both_formats import client, server``).

They override conftest's ``server``/``client`` with the session's shared server of
each table format (``format_server``/``format_client``), so every test of the
module runs once per format (``table_format`` is parametrised)."""
import pytest


@pytest.fixture
def server(table_format, format_server):
    """The session's shared server storing new collections as ``table_format``."""
    return format_server(table_format)


@pytest.fixture
def client(table_format, format_client):
    return format_client(table_format)
