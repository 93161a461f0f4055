"""TLS with a certificate made in the test: require (with client certificates) and allow modes."""
import socket
import ssl
import struct

import bson
import pytest
from pymongo import MongoClient
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from tests.security.certs import make_certs
from tests.serverutil import ServerProcess


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(str(tmp_path_factory.mktemp("certs")))


def _hello_frame() -> bytes:
    body = b"\x00\x00\x00\x00" + b"\x00" + bson.encode({"hello": 1, "$db": "admin"})
    return struct.pack("<iiii", 16 + len(body), 1, 0, 2013) + body


def _client(srv, **kw):
    return MongoClient(srv.url, directConnection=True, serverSelectionTimeoutMS=4000, connectTimeoutMS=4000, **kw)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certs):
    """tls_mode require (implied by the certificate) and client certificates from the CA."""
    srv = ServerProcess(str(tmp_path_factory.mktemp("tlslake")), extra=[
        "--sync", "none", "--tls-cert-file", certs["cert"], "--tls-key-file", certs["key"],
        "--tls-ca-file", certs["ca"]]).start()
    yield srv
    srv.stop()


def test_pymongo_connects_with_tls_and_the_ca_file(tls_server, certs):
    with _client(tls_server, tls=True, tlsCAFile=certs["ca"], tlsCertificateKeyFile=certs["client"]) as c:
        c.t.c.insert_one({"_id": 1, "x": "over tls"})
        assert c.t.c.find_one()["x"] == "over tls"


def test_client_without_certificate_is_refused(tls_server, certs):
    with _client(tls_server, tls=True, tlsCAFile=certs["ca"]) as c, pytest.raises(ConnectionFailure):
        c.admin.command("ping")


def test_untrusted_server_certificate_is_refused_by_the_driver(tls_server, certs):
    with _client(tls_server, tls=True, tlsCertificateKeyFile=certs["client"]) as c, \
            pytest.raises(ConnectionFailure):
        c.admin.command("ping")          # the system CAs do not know the test CA


def test_plain_connection_to_tls_server_fails_cleanly(tls_server, certs):
    with _client(tls_server) as c, pytest.raises(ServerSelectionTimeoutError):
        c.admin.command("ping")
    # raw: a plain hello gets no MongoDB reply, the connection is closed, the server lives on
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as s:
        s.sendall(_hello_frame())
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        assert not data.startswith(struct.pack("<i", len(data))) or len(data) < 16
    assert tls_server.alive()
    with _client(tls_server, tls=True, tlsCAFile=certs["ca"], tlsCertificateKeyFile=certs["client"]) as c:
        assert c.admin.command("ping")["ok"] == 1.0


def test_allow_mode_serves_tls_and_plain_on_one_port(tmp_path, certs):
    srv = ServerProcess(str(tmp_path / "allowlake"), extra=[
        "--sync", "none", "--tls-mode", "allow", "--tls-cert-file", certs["cert"], "--tls-key-file",
        certs["key"]]).start()
    try:
        with _client(srv, tls=True, tlsCAFile=certs["ca"]) as c:
            c.t.c.insert_one({"_id": "tls"})
        with _client(srv) as c:
            c.t.c.insert_one({"_id": "plain"})
            assert sorted(d["_id"] for d in c.t.c.find()) == ["plain", "tls"]
        # a client that connects and sends nothing does not block the others
        idle = socket.create_connection(("127.0.0.1", srv.port))
        ctx = ssl.create_default_context(cafile=certs["ca"])
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(_hello_frame())
            head = s.recv(16)
            assert len(head) == 16 and struct.unpack("<iiii", head)[3] == 2013
        idle.close()
    finally:
        srv.stop()


def test_tls_mode_without_certificate_is_a_configuration_error(tmp_path):
    srv = ServerProcess(str(tmp_path / "badtls"), extra=["--tls-mode", "require"])
    with pytest.raises(RuntimeError) as e:
        srv.start(timeout=20)
    assert "exited with 2" in str(e.value) and "needs tls_cert_file" in str(e.value)
    srv2 = ServerProcess(str(tmp_path / "badtls2"), extra=["--tls-cert-file", str(tmp_path / "missing.pem")])
    with pytest.raises(RuntimeError) as e:
        srv2.start(timeout=20)
    assert "exited with 2" in str(e.value) and "does not exist" in str(e.value)
