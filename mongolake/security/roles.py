"""Built-in roles and the privilege each command needs.

MongoDB's privileges are (resource, actions). MongoLake groups MongoDB's ~100
actions into a few coarse ones, enough to express the built-in roles exactly at
the level of commands:

============  =============================================================
action        commands
============  =============================================================
``read``      find, getMore, aggregate, count, distinct, explain, killCursors
``meta``      listCollections, listIndexes, collStats, dbStats, dataSize
``write``     insert, update, delete, findAndModify, bulkWrite
``ddl``       create, drop, createIndexes, dropIndexes, renameCollection (same db)
``dbAdmin``   collMod, compact, validate, profile, dropDatabase
``userAdmin`` createUser, updateUser, dropUser, grant/revoke roles, usersInfo
``monitor``   serverStatus, currentOp, getLog, hostInfo, getParameter, ... (cluster)
``cluster``   setParameter, fsync, killOp, ... (cluster)
============  =============================================================

A role grants actions on its own database (``read@app``), on every database
(the ``…AnyDatabase`` roles, defined in ``admin``) and/or on the cluster.
:data:`COMMAND_ACTIONS` maps every command to what it needs; a command missing
from the table needs ``root`` (so a new command is closed until classified).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from mongolake.errors import ErrorCode, MongoError

READ, META, WRITE, DDL, DBADMIN, USERADMIN = "read", "meta", "write", "ddl", "dbAdmin", "userAdmin"
MONITOR, CLUSTER, LIST_DBS = "monitor", "cluster", "listDatabases"
DB_ACTIONS = frozenset({READ, META, WRITE, DDL, DBADMIN, USERADMIN})
CLUSTER_ACTIONS = frozenset({MONITOR, CLUSTER, LIST_DBS})


@dataclass(frozen=True)
class RoleDef:
    name: str
    db_actions: frozenset = frozenset()          # on the role's own database
    any_db_actions: frozenset = frozenset()      # on every database
    cluster_actions: frozenset = frozenset()
    admin_only: bool = False                     # exists only in the admin database
    inherits: tuple = field(default_factory=tuple)


_R = RoleDef
BUILTIN_ROLES: dict[str, RoleDef] = {r.name: r for r in (
    _R("read", frozenset({READ, META})),
    _R("readWrite", frozenset({READ, META, WRITE, DDL})),
    _R("dbAdmin", frozenset({META, DDL, DBADMIN})),
    _R("userAdmin", frozenset({USERADMIN})),
    _R("dbOwner", frozenset({READ, META, WRITE, DDL, DBADMIN, USERADMIN}), inherits=("readWrite", "dbAdmin",
                                                                                    "userAdmin")),
    _R("readAnyDatabase", any_db_actions=frozenset({READ, META}), cluster_actions=frozenset({LIST_DBS}),
       admin_only=True),
    _R("readWriteAnyDatabase", any_db_actions=frozenset({READ, META, WRITE, DDL}),
       cluster_actions=frozenset({LIST_DBS}), admin_only=True),
    _R("dbAdminAnyDatabase", any_db_actions=frozenset({META, DDL, DBADMIN}), cluster_actions=frozenset({LIST_DBS}),
       admin_only=True),
    _R("userAdminAnyDatabase", any_db_actions=frozenset({USERADMIN}), cluster_actions=frozenset({LIST_DBS}),
       admin_only=True),
    _R("clusterMonitor", cluster_actions=frozenset({MONITOR, LIST_DBS}), admin_only=True),
    _R("clusterAdmin", cluster_actions=frozenset({MONITOR, CLUSTER, LIST_DBS}), admin_only=True,
       inherits=("clusterMonitor",)),
    _R("root", any_db_actions=DB_ACTIONS, cluster_actions=CLUSTER_ACTIONS, admin_only=True,
       inherits=("readWriteAnyDatabase", "dbAdminAnyDatabase", "userAdminAnyDatabase", "clusterAdmin")),
)}
del _R

# command -> (scope, action): scope "db" = the command's database, "cluster" = the
# server; "auth" = any authenticated user; special commands are resolved by
# :func:`required` from their arguments.
COMMAND_ACTIONS: dict[str, tuple[str, str]] = {
    **{c: ("db", READ) for c in ("find", "getMore", "count", "distinct", "killCursors", "aggregate", "explain",
                                 "listSearchIndexes", "mapReduce", "findDeleted")},
    **{c: ("db", META) for c in ("listCollections", "listIndexes", "collStats", "dbStats", "dataSize")},
    **{c: ("db", WRITE) for c in ("insert", "update", "delete", "findAndModify", "findandmodify",
                                  "restoreDeleted")},
    **{c: ("db", DDL) for c in ("create", "drop", "createIndexes", "dropIndexes", "deleteIndexes",
                                "createSearchIndexes", "updateSearchIndex", "dropSearchIndex")},
    **{c: ("db", DBADMIN) for c in ("collMod", "compact", "validate", "profile", "dropDatabase", "reIndex",
                                    "purgeDeleted")},
    **{c: ("db", USERADMIN) for c in ("createUser", "updateUser", "dropUser", "dropAllUsersFromDatabase",
                                      "grantRolesToUser", "revokeRolesFromUser")},
    **{c: ("cluster", MONITOR) for c in ("serverStatus", "currentOp", "getLog", "hostInfo", "getParameter",
                                         "getCmdLineOpts", "getDefaultRWConcern", "getFreeMonitoringStatus",
                                         "top", "connPoolStats", "replSetGetStatus")},
    **{c: ("cluster", CLUSTER) for c in ("setParameter", "fsync", "fsyncUnlock", "killOp", "shutdown",
                                         "logRotate", "configureFailPoint", "waitForFailPoint",
                                         "setDefaultRWConcern")},
    # any authenticated user: sessions (each write inside is checked on its own),
    # listDatabases (answered with the databases the user may see), own identity
    **{c: ("auth", "") for c in ("startSession", "endSessions", "refreshSessions", "killSessions",
                                 "killAllSessions", "commitTransaction", "abortTransaction", "listDatabases",
                                 "usersInfo", "rolesInfo", "connectionStatus", "logout", "whatsmyuri",
                                 "listCommands", "hello", "isMaster", "ismaster", "ping", "buildInfo", "buildinfo",
                                 "saslStart", "saslContinue")},
}
# aggregation stages that write (target: {db, coll} or a name in the same db)
_WRITE_STAGES = ("$out", "$merge")
_READ_STAGES = ("$lookup", "$unionWith", "$graphLookup")


def validate_role(role: Any, default_db: str) -> dict:
    """``"read"`` or ``{role, db}`` -> ``{role, db}`` of a built-in role, else 31."""
    if isinstance(role, str):
        name, db = role, default_db
    elif isinstance(role, dict) and isinstance(role.get("role"), str) and isinstance(role.get("db"), str):
        name, db = role["role"], role["db"]
    else:
        raise MongoError(ErrorCode.BadValue, "role must be a string or an object {role: <name>, db: <db>}")
    rd = BUILTIN_ROLES.get(name)
    if rd is None or (rd.admin_only and db != "admin"):
        raise MongoError(ErrorCode.RoleNotFound, f"Could not find role: {name}@{db}")
    return {"role": name, "db": db}


@dataclass
class Privileges:
    """The union of a user's roles: actions per database, on any database, on the cluster."""

    per_db: dict[str, set] = field(default_factory=dict)
    any_db: set = field(default_factory=set)
    cluster: set = field(default_factory=set)

    @classmethod
    def of(cls, roles: Iterable[dict]) -> "Privileges":
        p = cls()
        for r in roles:
            rd = BUILTIN_ROLES.get(r.get("role"))
            if rd is None:
                continue
            if rd.db_actions:
                p.per_db.setdefault(r["db"], set()).update(rd.db_actions)
            p.any_db |= rd.any_db_actions
            p.cluster |= rd.cluster_actions
        return p

    def allows(self, db: str, action: str) -> bool:
        if action in CLUSTER_ACTIONS:
            return action in self.cluster
        return action in self.any_db or action in self.per_db.get(db, ())

    def databases(self) -> set[str] | None:
        """Databases with any privilege; None = every database."""
        if self.any_db & {READ, META, WRITE}:
            return None
        return set(self.per_db)

    def is_root(self) -> bool:
        return DB_ACTIONS <= self.any_db and CLUSTER_ACTIONS <= self.cluster


def _ns_target(spec: Any, db: str) -> str:
    """The database an ``$out``/``$merge``/``$lookup`` argument names."""
    if isinstance(spec, dict):
        inner = spec.get("into", spec.get("from", spec))
        if isinstance(inner, dict) and isinstance(inner.get("db"), str):
            return inner["db"]
        if isinstance(spec.get("db"), str):
            return spec["db"]
    return db


def _pipeline_needs(pipeline: Any, db: str, out: list[tuple[str, str]], depth: int = 0) -> None:
    if not isinstance(pipeline, list) or depth > 20:
        return
    for stage in pipeline:
        if not isinstance(stage, dict) or len(stage) != 1:
            continue
        name, spec = next(iter(stage.items()))
        if name in _WRITE_STAGES:
            target = _ns_target(spec, db)
            out += [(target, WRITE), (target, DDL)]
        elif name in _READ_STAGES:
            out.append((_ns_target(spec, db), READ))
        elif name == "$currentOp":
            out.append(("", MONITOR))
        elif name == "$changeStream" and isinstance(spec, dict) and spec.get("allChangesForCluster"):
            out.append(("*", READ))
        if isinstance(spec, dict):
            _pipeline_needs(spec.get("pipeline"), db, out, depth + 1)
            if name == "$facet":
                for sub in spec.values():
                    _pipeline_needs(sub, db, out, depth + 1)


def required(name: str, db: str, body: dict) -> list[tuple[str, str]] | None:
    """``[(database, action)]`` the command needs (database ``""`` for the cluster,
    ``"*"`` for every database); ``[]`` for any authenticated user; ``None`` for
    commands only ``root`` may run."""
    if name == "aggregate":
        needs: list[tuple[str, str]] = []
        if body.get("aggregate") != 1 or db != "admin":
            needs.append((db, READ))
        _pipeline_needs(body.get("pipeline"), db, needs)
        if not needs:
            needs.append((db, READ))
        return needs
    if name == "explain":
        inner = body.get("explain")
        if isinstance(inner, dict) and inner:
            inner_name = next(iter(inner))
            if inner_name != "explain":
                sub = required(inner_name, db, inner)
                return [(d, READ if a == WRITE else a) for d, a in sub] if sub is not None else None
        return [(db, READ)]
    if name == "bulkWrite":
        out = []
        for ns in body.get("nsInfo") or []:
            if isinstance(ns, dict) and isinstance(ns.get("ns"), str):
                out.append((ns["ns"].split(".", 1)[0], WRITE))
        return out or [("*", WRITE)]
    if name == "renameCollection":
        src, dst = body.get("renameCollection"), body.get("to")
        sdb = src.split(".", 1)[0] if isinstance(src, str) else db
        ddb = dst.split(".", 1)[0] if isinstance(dst, str) else db
        return [(sdb, READ), (sdb, DDL), (ddb, WRITE), (ddb, DDL)]
    entry = COMMAND_ACTIONS.get(name)
    if entry is None:
        return None
    scope, action = entry
    if scope == "auth":
        return []
    return [("" if scope == "cluster" else db, action)]


def check(priv: Privileges, name: str, db: str, body: dict) -> bool:
    needs = required(name, db, body)
    if needs is None:
        return priv.is_root()
    for ndb, action in needs:
        if ndb == "*":
            if action not in priv.any_db:
                return False
        elif not priv.allows(ndb, action):
            return False
    return True


def role_doc(name: str, db: str, *, show_privileges: bool = False) -> dict:
    """A built-in role as rolesInfo describes it."""
    rd = BUILTIN_ROLES[name]
    doc: dict = {"_id": f"{db}.{name}", "role": name, "db": db, "isBuiltin": True, "roles": [],
                 "inheritedRoles": [{"role": r, "db": db} for r in rd.inherits]}
    if show_privileges:
        privs = []
        if rd.db_actions:
            privs.append({"resource": {"db": db, "collection": ""}, "actions": sorted(rd.db_actions)})
        if rd.any_db_actions:
            privs.append({"resource": {"db": "", "collection": ""}, "actions": sorted(rd.any_db_actions)})
        if rd.cluster_actions:
            privs.append({"resource": {"cluster": True}, "actions": sorted(rd.cluster_actions)})
        doc["privileges"] = privs
        doc["inheritedPrivileges"] = privs
    return doc
