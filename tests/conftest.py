import pytest
from pymongo import MongoClient

from tests.serverutil import ServerProcess


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One MongoLake server process shared by the session's driver tests."""
    storage = str(tmp_path_factory.mktemp("lake"))
    srv = ServerProcess(storage).start()
    yield srv
    srv.stop()


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
