"""The credential store: users, their roles and SCRAM credentials.

Kept in ``_mongolake/users.json`` in the store (next to the catalog), replaced
with conditional writes (a lost race reloads and retries), so it lives wherever
the tables live (local disk, S3) and survives restarts. The document of a user
has MongoDB's ``system.users`` shape::

    {"_id": "admin.alice", "userId": "<uuid>", "user": "alice", "db": "admin",
     "roles": [{"role": "root", "db": "admin"}], "customData": {...},
     "mechanisms": ["SCRAM-SHA-1", "SCRAM-SHA-256"],
     "credentials": {"SCRAM-SHA-256": {"iterationCount": 15000, "salt": "...",
                                       "storedKey": "...", "serverKey": "..."}, ...}}

No password is stored, in any form a login could reuse: only salted, iterated
keys (see :mod:`.scram`). The file also holds a random ``decoySecret`` from which
the decoy salts of unknown users derive (:func:`.scram.decoy`).
"""
from __future__ import annotations

import copy
import json
import os
import threading
import uuid
from typing import Any, Callable

from mongolake.errors import ErrorCode, MongoError
from mongolake.storage import NotFoundError, StorageBackend, VersionMismatchError

from . import scram

USERS_PATH = "_mongolake/users.json"
_MAX_RETRIES = 8


def user_key(db: str, user: str) -> str:
    return f"{db}.{user}"


def validate_user_name(user: Any) -> str:
    if not isinstance(user, str) or not user:
        raise MongoError(ErrorCode.BadValue, "User names must be non-empty strings")
    if "\x00" in user or len(user) > 1024:
        raise MongoError(ErrorCode.BadValue, f"Invalid user name: {user!r}")
    return user


class UserStore:
    """Users of one store. Thread-safe; every change is persisted before it is
    visible. ``storage=None`` keeps users in memory only (tests)."""

    def __init__(self, storage: StorageBackend | None):
        self.storage = storage
        self._lock = threading.RLock()
        self._version: str | None = None
        self.users: dict[str, dict] = {}
        self.secret = os.urandom(32)
        self.generation = 0            # bumped on every change (caches of roles key on it)
        self.load()

    # -- persistence -------------------------------------------------------------
    def load(self) -> None:
        with self._lock:
            if self.storage is None:
                return
            try:
                info = self.storage.stat(USERS_PATH)
                data = json.loads(self.storage.read(USERS_PATH))
                self._version = info.version
            except NotFoundError:
                data, self._version = {}, None
            self.users = dict(data.get("users", {}))
            if data.get("decoySecret"):
                self.secret = bytes.fromhex(data["decoySecret"])
            self.generation += 1

    def _payload(self, users: dict[str, dict]) -> bytes:
        return json.dumps({"version": 1, "decoySecret": self.secret.hex(), "users": users},
                          indent=1, sort_keys=True).encode("utf-8")

    def _mutate(self, change: Callable[[dict[str, dict]], Any]) -> Any:
        """Apply ``change`` to a copy of the user map, persist it (reload and retry on a
        concurrent change by another process), then publish it: readers (the event
        loop, while a worker thread runs this) only ever see a complete map."""
        with self._lock:
            for _ in range(_MAX_RETRIES):
                users = copy.deepcopy(self.users)
                result = change(users)
                if self.storage is not None:
                    try:
                        self._version = self.storage.write_conditional(USERS_PATH, self._payload(users),
                                                                       self._version)
                    except VersionMismatchError:
                        self.load()
                        continue
                self.users = users
                self.generation += 1
                return result
            raise MongoError(ErrorCode.WriteConflict, "the user store changed concurrently; try again")

    # -- queries -----------------------------------------------------------------
    def get(self, db: str, user: str) -> dict | None:
        return self.users.get(user_key(db, user))

    def credential(self, db: str, user: str, mech: str) -> scram.Credential | None:
        u = self.get(db, user)
        if u is None:
            return None
        c = u.get("credentials", {}).get(mech)
        return scram.Credential.from_json(mech, c) if c else None

    def mechanisms(self, db: str, user: str) -> list[str]:
        u = self.get(db, user)
        return list(u.get("mechanisms", [])) if u else []

    def in_db(self, db: str | None) -> list[dict]:
        return [u for _k, u in sorted(self.users.items()) if db is None or u["db"] == db]

    def __len__(self) -> int:
        return len(self.users)

    # -- changes -----------------------------------------------------------------
    @staticmethod
    def credentials_for(user: str, password: str, mechanisms: list[str]) -> dict:
        return {m: scram.derive(m, user, password).to_json() for m in mechanisms}

    def create(self, db: str, user: str, password: str, roles: list[dict], *, mechanisms: list[str] | None = None,
               custom_data: dict | None = None) -> dict:
        validate_user_name(user)
        mechs = list(mechanisms or scram.MECHANISMS)
        creds = self.credentials_for(user, password, mechs)      # PBKDF2 outside the lock
        key = user_key(db, user)
        doc = {"_id": key, "userId": str(uuid.uuid4()), "user": user, "db": db, "roles": roles,
               "mechanisms": mechs, "credentials": creds}
        if custom_data is not None:
            doc["customData"] = custom_data

        def change(users: dict) -> dict:
            if key in users:
                raise MongoError(51003, f"User \"{user}@{db}\" already exists")
            users[key] = doc
            return doc
        return self._mutate(change)

    def update(self, db: str, user: str, *, password: str | None = None, roles: list[dict] | None = None,
               mechanisms: list[str] | None = None, custom_data: Any = None, set_custom: bool = False) -> dict:
        key = user_key(db, user)
        current = self.users.get(key)
        if current is None:
            raise user_not_found(db, user)
        mechs = list(mechanisms or current.get("mechanisms") or scram.MECHANISMS)
        creds = self.credentials_for(user, password, mechs) if password is not None else None

        def change(users: dict) -> dict:
            u = users.get(key)
            if u is None:
                raise user_not_found(db, user)
            u = dict(u)
            if creds is not None:
                u["credentials"], u["mechanisms"] = creds, mechs
            elif mechanisms is not None:
                missing = [m for m in mechs if m not in u.get("credentials", {})]
                if missing:
                    raise MongoError(ErrorCode.BadValue, "mechanisms field must be a subset of previously set "
                                     "mechanisms unless a new password is given")
                u["credentials"] = {m: c for m, c in u["credentials"].items() if m in mechs}
                u["mechanisms"] = mechs
            if roles is not None:
                u["roles"] = roles
            if set_custom:
                u["customData"] = custom_data
            users[key] = u
            return u
        return self._mutate(change)

    def drop(self, db: str, user: str) -> None:
        key = user_key(db, user)

        def change(users: dict) -> None:
            if key not in users:
                raise user_not_found(db, user)
            del users[key]
        self._mutate(change)

    def drop_all(self, db: str) -> int:
        def change(users: dict) -> int:
            keys = [k for k, u in users.items() if u["db"] == db]
            for k in keys:
                del users[k]
            return len(keys)
        return self._mutate(change)


def user_not_found(db: str, user: str) -> MongoError:
    return MongoError(ErrorCode.UserNotFound, f"Could not find user \"{user}\" for db \"{db}\"")


def public_doc(u: dict, *, show_credentials: bool = False) -> dict:
    """A user as usersInfo shows it (credentials only on request, and never a password)."""
    out = {"_id": u["_id"], "userId": u.get("userId"), "user": u["user"], "db": u["db"],
           "roles": [dict(r) for r in u.get("roles", [])], "mechanisms": list(u.get("mechanisms", []))}
    if "customData" in u:
        out["customData"] = u["customData"]
    if show_credentials:
        out["credentials"] = copy.deepcopy(u.get("credentials", {}))
    return out
