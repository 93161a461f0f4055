"""A throwaway CA, server and client certificates for TLS tests (``cryptography``)."""
from __future__ import annotations

import datetime as dt
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                                                                       "MongoLake tests")])


def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool, server: bool = False):
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                            critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_certs(folder: str) -> dict[str, str]:
    """Write ca.pem, server.pem + server.key, client.pem (cert and key); return their paths."""
    os.makedirs(folder, exist_ok=True)
    ca_key = _key()
    ca = _cert("MongoLake test CA", ca_key, _name("MongoLake test CA"), ca_key, ca=True)
    srv_key, cli_key = _key(), _key()
    srv = _cert("localhost", srv_key, ca.subject, ca_key, ca=False, server=True)
    cli = _cert("client", cli_key, ca.subject, ca_key, ca=False)
    paths = {k: os.path.join(folder, f) for k, f in (("ca", "ca.pem"), ("cert", "server.pem"),
                                                       ("key", "server.key"), ("client", "client.pem"))}
    pem = serialization.Encoding.PEM
    with open(paths["ca"], "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths["cert"], "wb") as f:
        f.write(srv.public_bytes(pem))
    with open(paths["key"], "wb") as f:
        f.write(_pem_key(srv_key))
    with open(paths["client"], "wb") as f:
        f.write(cli.public_bytes(pem) + _pem_key(cli_key))
    return paths
