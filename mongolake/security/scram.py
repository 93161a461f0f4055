"""SCRAM-SHA-1 and SCRAM-SHA-256, server side (RFC 5802, RFC 7677), as MongoDB speaks it.

Credentials are derived once, when a password is set: a random salt, an iteration
count, ``StoredKey = H(HMAC(SaltedPassword, "Client Key"))`` and
``ServerKey = HMAC(SaltedPassword, "Server Key")``. The password itself is never kept.
MongoDB's two password conventions are followed:

* SCRAM-SHA-1 salts ``hex(md5("<user>:mongo:<password>"))`` (the "MongoDB hashed
  password"), 10,000 iterations by default, 16-byte salt;
* SCRAM-SHA-256 salts ``SASLprep(password)``, 15,000 iterations, 28-byte salt.

:class:`ScramServer` runs one conversation: ``first(client_first) -> server_first``
then ``final(client_final) -> server_final``. A conversation for an unknown user runs
against a *decoy* credential (salt derived from a server secret and the user name, so
it is stable between attempts) and fails at the proof check, exactly like a wrong
password: same message, same work, no way to tell which users exist.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any

from pymongo.saslprep import saslprep

from mongolake.errors import ErrorCode, MongoError

SHA1 = "SCRAM-SHA-1"
SHA256 = "SCRAM-SHA-256"
MECHANISMS = (SHA1, SHA256)
_DIGEST = {SHA1: "sha1", SHA256: "sha256"}
DEFAULT_ITERATIONS = {SHA1: 10_000, SHA256: 15_000}
SALT_BYTES = {SHA1: 16, SHA256: 28}
MIN_ITERATIONS = {SHA1: 5_000, SHA256: 5_000}
AUTH_FAILED = "Authentication failed."
GS2_HEADER = b"n,,"


def auth_failed() -> MongoError:
    """The one answer to every failed authentication (AuthenticationFailed, 18)."""
    return MongoError(ErrorCode.AuthenticationFailed, AUTH_FAILED)


def mongo_password_digest(user: str, password: str) -> str:
    """MongoDB's SCRAM-SHA-1 password: ``hex(md5("<user>:mongo:<password>"))``."""
    return hashlib.md5(f"{user}:mongo:{password}".encode("utf-8")).hexdigest()


def _b64(b: bytes) -> str:
    return base64.standard_b64encode(b).decode("ascii")


def _unb64(s: str | bytes) -> bytes:
    return base64.b64decode(s, validate=True)


@dataclass(frozen=True)
class Credential:
    """What the server keeps for one mechanism of one user (MongoDB's field names)."""

    mechanism: str
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def to_json(self) -> dict:
        return {"iterationCount": self.iterations, "salt": _b64(self.salt), "storedKey": _b64(self.stored_key),
                "serverKey": _b64(self.server_key)}

    @classmethod
    def from_json(cls, mechanism: str, d: dict) -> "Credential":
        return cls(mechanism, int(d["iterationCount"]), _unb64(d["salt"]), _unb64(d["storedKey"]),
                   _unb64(d["serverKey"]))


def _hmac(key: bytes, msg: bytes, mech: str) -> bytes:
    return hmac.new(key, msg, _DIGEST[mech]).digest()


def _h(data: bytes, mech: str) -> bytes:
    return hashlib.new(_DIGEST[mech], data).digest()


def prepared_password(mech: str, user: str, password: str) -> bytes:
    """The bytes SCRAM salts for ``mech`` (see the module doc)."""
    if mech == SHA1:
        return mongo_password_digest(user, password).encode("utf-8")
    try:
        return saslprep(password).encode("utf-8")
    except ValueError as e:
        raise MongoError(ErrorCode.BadValue, f"password is not valid for SCRAM-SHA-256: {e}") from None


def derive(mech: str, user: str, password: str, *, salt: bytes | None = None,
           iterations: int | None = None) -> Credential:
    """A new credential for ``password`` (random salt unless given). Costs one PBKDF2."""
    if mech not in MECHANISMS:
        raise MongoError(ErrorCode.BadValue, f"Unknown SCRAM mechanism {mech}")
    iterations = iterations or DEFAULT_ITERATIONS[mech]
    salt = salt if salt is not None else os.urandom(SALT_BYTES[mech])
    salted = hashlib.pbkdf2_hmac(_DIGEST[mech], prepared_password(mech, user, password), salt, iterations)
    client_key = _hmac(salted, b"Client Key", mech)
    return Credential(mech, iterations, salt, _h(client_key, mech), _hmac(salted, b"Server Key", mech))


def decoy(mech: str, secret: bytes, db: str, user: str) -> Credential:
    """A credential no password matches, with a salt that is a stable function of
    the user name (a repeated attempt sees the same salt, as for a real user)."""
    tag = f"{mech}\x00{db}\x00{user}".encode("utf-8")
    salt = hmac.new(secret, b"salt\x00" + tag, "sha256").digest()[:SALT_BYTES[mech]]
    junk = hmac.new(secret, b"keys\x00" + tag, "sha512").digest()
    n = len(_h(b"", mech))
    return Credential(mech, DEFAULT_ITERATIONS[mech], salt, junk[:n], junk[n:2 * n])


def _parse(msg: bytes) -> dict[str, str]:
    """``a=1,b=2`` attributes of a SCRAM message (values may contain '=')."""
    try:
        text = msg.decode("utf-8")
    except UnicodeDecodeError:
        raise auth_failed() from None
    out: dict[str, str] = {}
    for part in text.split(","):
        if len(part) < 2 or part[1] != "=":
            raise auth_failed()
        out.setdefault(part[0], part[2:])
    return out


def _unescape_name(s: str) -> str:
    """SCRAM ``saslname``: ``=2C`` is ',' and ``=3D`` is '='; any other '=' is invalid."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "=":
            code = s[i + 1:i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                raise auth_failed()
            i += 3
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def parse_client_first(payload: bytes) -> tuple[str, str, bytes]:
    """``(user, client_nonce, client_first_bare)`` of ``n,,n=<user>,r=<nonce>``."""
    if not payload.startswith(GS2_HEADER):
        # 'y'/'p' (channel binding) and authorization identities are not supported
        raise auth_failed()
    bare = payload[len(GS2_HEADER):]
    attrs = _parse(bare)
    if "m" in attrs or "n" not in attrs or not attrs.get("r"):
        raise auth_failed()
    return _unescape_name(attrs["n"]), attrs["r"], bare


class ScramServer:
    """One SCRAM conversation on the server side."""

    def __init__(self, mechanism: str, user: str, db: str, credential: Credential, *, known: bool):
        self.mechanism = mechanism
        self.user = user
        self.db = db
        self.cred = credential
        self.known = known
        self.nonce = ""
        self.client_first_bare = b""
        self.server_first = b""
        self.step = 0
        self.done = False
        self.skip_empty = True          # saslStart options.skipEmptyExchange

    def first(self, client_first_bare: bytes, client_nonce: str) -> bytes:
        self.client_first_bare = client_first_bare
        self.nonce = client_nonce + _b64(os.urandom(24))
        self.server_first = f"r={self.nonce},s={_b64(self.cred.salt)},i={self.cred.iterations}".encode("ascii")
        self.step = 1
        return self.server_first

    def final(self, client_final: bytes) -> bytes:
        """Check the client's proof; return ``v=<server signature>`` or raise 18."""
        if self.step != 1:
            raise auth_failed()
        self.step = 2
        head, sep, proof_part = client_final.rpartition(b",p=")
        if not sep:
            raise auth_failed()
        attrs = _parse(head)
        if attrs.get("c") != _b64(GS2_HEADER) or attrs.get("r") != self.nonce:
            raise auth_failed()
        try:
            proof = _unb64(proof_part)
        except (ValueError, TypeError):
            raise auth_failed() from None
        auth_message = b",".join((self.client_first_bare, self.server_first, head))
        mech = self.mechanism
        client_sig = _hmac(self.cred.stored_key, auth_message, mech)
        ok = len(proof) == len(client_sig)
        client_key = bytes(a ^ b for a, b in zip(proof.ljust(len(client_sig), b"\0"), client_sig))
        # constant-time comparison; a decoy credential never matches
        ok = hmac.compare_digest(_h(client_key, mech), self.cred.stored_key) and ok and self.known
        if not ok:
            raise auth_failed()
        self.done = True
        return b"v=" + _b64(_hmac(self.cred.server_key, auth_message, mech)).encode("ascii")


def payload_bytes(value: Any) -> bytes:
    """A saslStart/saslContinue ``payload`` (BinData, or a base64 string as mongosh
    may send) as bytes."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return _unb64(value)
        except ValueError:
            raise MongoError(ErrorCode.BadValue, "payload is not valid base64") from None
    raise MongoError(ErrorCode.TypeMismatch, "payload must be BinData or a base64 string")
