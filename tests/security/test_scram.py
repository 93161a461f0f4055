"""SCRAM server side (RFC 5802/7677 vectors), the credential store, roles, regex bounds."""
import base64
import hashlib
import hmac
import time

import pytest

from mongolake.errors import MongoError
from mongolake.security import roles, scram
from mongolake.security.users import UserStore
from mongolake.storage import open_storage

# RFC 7677 section 3
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CNONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_NONCE = RFC_CNONCE + "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SERVER_FIRST = f"r={RFC_NONCE},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".encode()
RFC_FINAL = f"c=biws,r={RFC_NONCE},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=".encode()


def _rfc_conversation(cred, known=True):
    conv = scram.ScramServer(scram.SHA256, "user", "admin", cred, known=known)
    user, nonce, bare = scram.parse_client_first(b"n,,n=user,r=" + RFC_CNONCE.encode())
    assert (user, nonce) == ("user", RFC_CNONCE)
    first = conv.first(bare, nonce)
    assert first.startswith(f"r={RFC_CNONCE}".encode()) and b",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096" in first
    conv.nonce, conv.server_first = RFC_NONCE, RFC_SERVER_FIRST      # the RFC's server nonce
    return conv


def test_sha256_rfc7677_vector():
    cred = scram.derive(scram.SHA256, "user", "pencil", salt=RFC_SALT, iterations=4096)
    assert _rfc_conversation(cred).final(RFC_FINAL) == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_wrong_password_and_decoy_fail_alike():
    wrong = scram.derive(scram.SHA256, "user", "pencil2", salt=RFC_SALT, iterations=4096)
    with pytest.raises(MongoError) as e1:
        _rfc_conversation(wrong).final(RFC_FINAL)
    right = scram.derive(scram.SHA256, "user", "pencil", salt=RFC_SALT, iterations=4096)
    with pytest.raises(MongoError) as e2:
        _rfc_conversation(right, known=False).final(RFC_FINAL)     # even a matching proof fails if unknown
    assert (e1.value.code, e1.value.message) == (e2.value.code, e2.value.message) == (18, "Authentication failed.")


def _client_proof(mech, salted, auth_message):
    d = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mech]
    ck = hmac.new(salted, b"Client Key", d).digest()
    sig = hmac.new(hashlib.new(d, ck).digest(), auth_message, d).digest()
    return base64.b64encode(bytes(a ^ b for a, b in zip(ck, sig)))


@pytest.mark.parametrize("mech", scram.MECHANISMS)
def test_conversation_with_mongodb_password_conventions(mech):
    cred = scram.derive(mech, "alice", "s3cret")
    assert cred.iterations == scram.DEFAULT_ITERATIONS[mech] >= (15000 if mech == scram.SHA256 else 10000)
    conv = scram.ScramServer(mech, "alice", "admin", cred, known=True)
    _, nonce, bare = scram.parse_client_first(b"n,,n=alice,r=abc")
    first = conv.first(bare, nonce)
    attrs = dict(p.split("=", 1) for p in first.decode().split(","))
    pwd = (hashlib.md5(b"alice:mongo:s3cret").hexdigest() if mech == scram.SHA1 else "s3cret").encode()
    salted = hashlib.pbkdf2_hmac("sha1" if mech == scram.SHA1 else "sha256", pwd, base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    head = f"c=biws,r={attrs['r']}".encode()
    proof = _client_proof(mech, salted, b",".join((bare, first, head)))
    assert conv.final(head + b",p=" + proof).startswith(b"v=")
    assert conv.done


@pytest.mark.parametrize("payload", [b"", b"y,,n=a,r=x", b"p=tls,,n=a,r=x", b"n,a=bob,n=a,r=x", b"n,,r=x",
                                     b"n,,n=a", b"n,,n=a=ZZ,r=x", b"\xff\xfe", b"n,,m=ext,n=a,r=x"])
def test_bad_client_first_is_authentication_failed(payload):
    with pytest.raises(MongoError) as e:
        scram.parse_client_first(payload)
    assert e.value.code == 18


def test_escaped_user_names():
    user, _, _ = scram.parse_client_first(b"n,,n=a=2Cb=3Dc,r=x")
    assert user == "a,b=c"


def test_client_final_tampering_fails():
    cred = scram.derive(scram.SHA256, "user", "pencil", salt=RFC_SALT, iterations=4096)
    for bad in (RFC_FINAL.replace(b"c=biws", b"c=eSws"), RFC_FINAL.replace(b"r=rOpr", b"r=XOpr"),
                RFC_FINAL[:-4] + b"AAA=", RFC_FINAL.split(b",p=")[0], RFC_FINAL + b"x"):
        with pytest.raises(MongoError) as e:
            _rfc_conversation(cred).final(bad)
        assert e.value.code == 18
    conv = _rfc_conversation(cred)
    conv.final(RFC_FINAL)
    with pytest.raises(MongoError):            # no replay on a finished conversation
        conv.final(RFC_FINAL)


def test_decoy_salt_is_stable_per_user_and_secret():
    a1 = scram.decoy(scram.SHA256, b"k" * 32, "admin", "ghost")
    a2 = scram.decoy(scram.SHA256, b"k" * 32, "admin", "ghost")
    b = scram.decoy(scram.SHA256, b"k" * 32, "admin", "ghost2")
    assert a1 == a2 and a1.salt != b.salt and len(a1.salt) == 28 and a1.iterations == 15000


def test_user_store_persists_without_passwords():
    st = open_storage("memory://users-test")
    us = UserStore(st)
    us.create("app", "bob", "hunter2-password", [{"role": "read", "db": "app"}])
    raw = st.read("_mongolake/users.json")
    assert b"hunter2" not in raw and b"storedKey" in raw
    again = UserStore(st)
    assert again.get("app", "bob")["roles"] == [{"role": "read", "db": "app"}]
    assert again.secret == us.secret
    assert sorted(again.mechanisms("app", "bob")) == sorted(scram.MECHANISMS)
    with pytest.raises(MongoError) as e:
        again.create("app", "bob", "x", [])
    assert e.value.code == 51003
    us.update("app", "bob", roles=[])          # the other handle's stale version: reload and retry
    again.update("app", "bob", roles=[{"role": "readWrite", "db": "app"}])
    assert UserStore(st).get("app", "bob")["roles"] == [{"role": "readWrite", "db": "app"}]
    again.drop("app", "bob")
    assert UserStore(st).get("app", "bob") is None


def test_role_privileges():
    read = roles.Privileges.of([{"role": "read", "db": "a"}])
    assert roles.check(read, "find", "a", {"find": "c"})
    assert not roles.check(read, "insert", "a", {"insert": "c"})
    assert not roles.check(read, "find", "b", {"find": "c"})
    assert not roles.check(read, "serverStatus", "admin", {})
    rw = roles.Privileges.of([{"role": "readWrite", "db": "a"}])
    assert roles.check(rw, "insert", "a", {}) and roles.check(rw, "createIndexes", "a", {})
    assert not roles.check(rw, "dropDatabase", "a", {}) and not roles.check(rw, "createUser", "a", {})
    # aggregate: $out needs write on its target, $lookup read on its source
    assert not roles.check(read, "aggregate", "a", {"aggregate": "c", "pipeline": [{"$out": "d"}]})
    assert roles.check(rw, "aggregate", "a", {"aggregate": "c", "pipeline": [{"$merge": {"into": "d"}}]})
    assert not roles.check(rw, "aggregate", "a", {"aggregate": "c", "pipeline": [
        {"$lookup": {"from": {"db": "b", "coll": "x"}, "as": "y", "pipeline": []}}]})
    assert not roles.check(rw, "renameCollection", "admin", {"renameCollection": "a.x", "to": "b.x"})
    anyr = roles.Privileges.of([{"role": "readAnyDatabase", "db": "admin"}])
    assert roles.check(anyr, "find", "zzz", {}) and not roles.check(anyr, "insert", "zzz", {})
    root = roles.Privileges.of([{"role": "root", "db": "admin"}])
    assert root.is_root() and roles.check(root, "someFutureCommand", "x", {})
    assert not roles.check(rw, "someFutureCommand", "a", {})     # unclassified: root only
    with pytest.raises(MongoError) as e:
        roles.validate_role("readAnyDatabase", "app")
    assert e.value.code == 31


def test_every_registered_command_is_classified():
    from mongolake.commands.registry import load_all

    missing = sorted(n for n, c in load_all().items()
                     if c.needs_auth and n not in roles.COMMAND_ACTIONS
                     and n not in ("aggregate", "explain", "bulkWrite", "renameCollection"))
    assert not missing, f"commands without a privilege in mongolake/security/roles.py: {missing}"


def test_pathological_regex_is_bounded():
    from mongolake.query.regex import compile_regex
    from mongolake.query.saferegex import set_time_limit

    set_time_limit(0.05)
    try:
        rx = compile_regex("^(a|aa)+$")
        assert not rx.simple
        t0 = time.perf_counter()
        with pytest.raises(MongoError) as e:
            rx.search("a" * 40 + "b")
        assert e.value.code == 51156 and time.perf_counter() - t0 < 2.0
        assert rx.search("aaaa") is not None                   # same answers as re otherwise
        simple = compile_regex("^abc.*d", "i")
        assert simple.simple and simple.search("ABCxxd") and not simple.search("xabc")
    finally:
        set_time_limit(1.0)


def test_deadline():
    from mongolake import deadline

    token = deadline.DEADLINE.set(time.monotonic() - 1)
    try:
        with pytest.raises(MongoError) as e:
            deadline.check()
        assert e.value.code == 50
    finally:
        deadline.DEADLINE.reset(token)
    deadline.check()
