"""Per-server security state: the user store, who is logged in on each connection,
SASL conversations, authorization, limits. Set as ``ServerState.security``.

Authentication works whether or not ``--auth`` is on (as in mongod: a client with
credentials is checked either way); ``--auth`` makes authorization mandatory.
"""
from __future__ import annotations

import ipaddress
import logging
from typing import Any

from bson.binary import Binary

from mongolake.errors import ErrorCode, MongoError

from . import roles, scram
from .limits import Limits
from .users import UserStore

log = logging.getLogger("mongolake.security")

AUTH_KEY = "_mongolake_auth"          # conn.state: {"user": ..., "db": ...}
SASL_KEY = "_mongolake_sasl"          # conn.state: {conversationId: ScramServer}
MAX_CONVERSATIONS = 4                 # per connection


def _is_loopback(peer: str) -> bool:
    host = peer.rsplit(":", 1)[0].strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class Security:
    def __init__(self, users: UserStore, *, auth: bool = False, limits: Limits | None = None):
        self.users = users
        self.auth = auth
        self.limits = limits or Limits()
        self._priv_cache: dict[str, tuple[int, roles.Privileges]] = {}
        self.stats = {"auth_ok": 0, "auth_failed": 0, "unauthorized": 0}

    # -- who is logged in ------------------------------------------------------------
    def current_user(self, conn: Any) -> dict | None:
        """The user document of ``conn``'s authenticated user (None if not logged in
        or the user has been dropped since)."""
        who = conn.state.get(AUTH_KEY)
        if who is None:
            return None
        return self.users.get(who["db"], who["user"])

    def privileges(self, user: dict) -> roles.Privileges:
        key = user["_id"]
        hit = self._priv_cache.get(key)
        if hit is not None and hit[0] == self.users.generation:
            return hit[1]
        p = roles.Privileges.of(user.get("roles", []))
        self._priv_cache[key] = (self.users.generation, p)
        return p

    def localhost_exception(self, conn: Any) -> bool:
        """No user exists yet and the client is on this machine: it may create the
        first user (MongoDB's localhost exception)."""
        return len(self.users) == 0 and _is_loopback(conn.peer)

    def authorize(self, ctx: Any, cmd: Any) -> None:
        """Raise Unauthorized (13) unless ``ctx``'s user may run ``cmd`` here."""
        if not self.auth or not cmd.needs_auth:
            return
        user = self.current_user(ctx.conn)
        if user is None:
            if ctx.name == "createUser" and ctx.db == "admin" and self.localhost_exception(ctx.conn):
                return
            self.stats["unauthorized"] += 1
            raise MongoError(ErrorCode.Unauthorized, f"Command {ctx.name} requires authentication")
        if not roles.check(self.privileges(user), ctx.name, ctx.db, ctx.body):
            self.stats["unauthorized"] += 1
            raise MongoError(ErrorCode.Unauthorized,
                             f"not authorized on {ctx.db} to execute command {{ {ctx.name}: ... }}")

    def may(self, conn: Any, db: str, action: str) -> bool:
        """Whether ``conn``'s user holds ``action`` on ``db`` (always, with auth off)."""
        if not self.auth:
            return True
        user = self.current_user(conn)
        if user is None:        # only the first createUser gets here without a user
            return self.localhost_exception(conn)
        return self.privileges(user).allows(db, action)

    # -- SASL ------------------------------------------------------------------------
    def sasl_start(self, conn: Any, db: str, mechanism: Any, payload: bytes, *, skip_empty: bool = False) -> dict:
        if mechanism not in scram.MECHANISMS:
            raise MongoError(334, f"Received authentication for mechanism {mechanism} which is not enabled")
        user, nonce, bare = scram.parse_client_first(payload)
        cred = self.users.credential(db, user, mechanism)
        known = cred is not None
        if cred is None:
            cred = scram.decoy(mechanism, self.users.secret, db, user)
        conv = scram.ScramServer(mechanism, user, db, cred, known=known)
        conv.skip_empty = skip_empty
        server_first = conv.first(bare, nonce)
        convs = conn.state.setdefault(SASL_KEY, {})
        while len(convs) >= MAX_CONVERSATIONS:
            convs.pop(next(iter(convs)))
        cid = conn.state.get("_mongolake_sasl_ids", 0) + 1
        conn.state["_mongolake_sasl_ids"] = cid
        convs[cid] = conv
        return {"conversationId": cid, "done": False, "payload": Binary(server_first)}

    def sasl_continue(self, conn: Any, db: str, cid: Any, payload: bytes) -> dict:
        convs = conn.state.get(SASL_KEY) or {}
        conv = convs.get(cid) if isinstance(cid, int) and not isinstance(cid, bool) else None
        if conv is None or conv.db != db:
            raise MongoError(ErrorCode.ProtocolError, "No SASL session state found")
        if conv.done:                      # the empty last step (no skipEmptyExchange)
            del convs[cid]
            return {"conversationId": cid, "done": True, "payload": Binary(b"")}
        try:
            server_final = conv.final(payload)
        except MongoError:
            del convs[cid]
            self.stats["auth_failed"] += 1
            log.info("authentication failed for %s@%s (%s) from %s", conv.user, conv.db, conv.mechanism, conn.peer)
            raise
        conn.state[AUTH_KEY] = {"user": conv.user, "db": conv.db, "mechanism": conv.mechanism}
        self.stats["auth_ok"] += 1
        log.info("authenticated %s@%s (%s) from %s", conv.user, conv.db, conv.mechanism, conn.peer)
        skip_empty = conv.skip_empty
        if skip_empty:
            del convs[cid]
        return {"conversationId": cid, "done": skip_empty, "payload": Binary(server_final)}

    def logout(self, conn: Any) -> None:
        conn.state.pop(AUTH_KEY, None)
        conn.state.pop(SASL_KEY, None)

    def supported_mechs(self, spec: Any) -> list[str] | None:
        """hello's ``saslSupportedMechs: "<db>.<user>"``: the user's mechanisms; both
        SCRAM mechanisms for an unknown user (existence is not revealed)."""
        if not isinstance(spec, str) or "." not in spec:
            return None
        db, user = spec.split(".", 1)
        return self.users.mechanisms(db, user) or list(scram.MECHANISMS)
