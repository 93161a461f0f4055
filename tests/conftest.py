import pytest
from pymongo import MongoClient

from tests.serverutil import ServerProcess


@pytest.fixture(scope="session")
def delta_server(tmp_path_factory):
    """One MongoLake server process shared by the session's driver tests."""
    storage = str(tmp_path_factory.mktemp("lake"))
    srv = ServerProcess(storage).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server(delta_server):
    """The shared (Delta) server; a module may override ``server`` (see ``table_format``)."""
    return delta_server


FORMATS = ("delta", "iceberg")


@pytest.fixture(scope="session")
def format_server(tmp_path_factory, delta_server):
    """``format_server(fmt)``: the session's one server storing new collections as ``fmt``
    (the Delta one is the shared ``server``; an Iceberg one starts on first use)."""
    servers: dict[str, ServerProcess] = {"delta": delta_server}

    def get(fmt: str) -> ServerProcess:
        if fmt not in servers:
            storage = str(tmp_path_factory.mktemp(f"lake-{fmt}"))
            servers[fmt] = ServerProcess(storage, extra=["--format", fmt]).start()
        return servers[fmt]
    yield get
    for fmt, srv in servers.items():
        if fmt != "delta":
            srv.stop()


@pytest.fixture(scope="session")
def format_client(format_server):
    """``format_client(fmt)``: a client of ``format_server(fmt)``."""
    clients: dict[str, MongoClient] = {}

    def get(fmt: str) -> MongoClient:
        if fmt not in clients:
            clients[fmt] = MongoClient(format_server(fmt).url, serverSelectionTimeoutMS=10000)
        return clients[fmt]
    yield get
    for c in clients.values():
        c.close()


@pytest.fixture(params=FORMATS)
def table_format(request):
    """Runs the test once per table format. A module whose tests should run on both
    overrides ``server``/``client`` with ``format_server(table_format)`` /
    ``format_client(table_format)`` (the servers stay shared by the session)."""
    return request.param


@pytest.fixture(scope="session")
def client(server):
    c = MongoClient(server.url, serverSelectionTimeoutMS=10000)
    yield c
    c.close()


@pytest.fixture
def db(client, request):
    """A fresh database per test."""
    name = "t_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:50]
    client.drop_database(name)
    yield client[name]


@pytest.fixture
def restore_logging():
    """Undo logging handlers/levels a test (e.g. one calling the CLI) installs."""
    import logging
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
