"""Authentication and user management: saslStart/saslContinue (SCRAM-SHA-1 and
SCRAM-SHA-256), logout, connectionStatus, createUser, updateUser, dropUser,
dropAllUsersFromDatabase, usersInfo, grantRolesToUser, revokeRolesFromUser and
rolesInfo (built-in roles only). The mechanics live in :mod:`mongolake.security`;
whether the caller may run each command is checked by its before-command hook,
what depends on the arguments (the databases of the roles granted, whose users
are listed) is checked here.
"""
from __future__ import annotations

import asyncio
import uuid as _uuid
from typing import Any

from bson.binary import Binary, UuidRepresentation

from mongolake.errors import ErrorCode, MongoError
from mongolake.security import Security, UserStore, roles, scram
from mongolake.security.manager import AUTH_KEY
from mongolake.security.users import public_doc, user_not_found

from .context import Ctx
from .registry import command

_MISSING_FIELD = 40414


def security(ctx: Ctx) -> Security:
    """The server's security state (created on first use, auth off, for a command
    layer running without :func:`mongolake.security.setup`)."""
    sec = getattr(ctx.state, "security", None)
    if sec is None:
        sec = ctx.state.security = Security(UserStore(ctx.engine.storage), auth=False)
    return sec


# -- SASL ------------------------------------------------------------------------------

@command("saslStart", help="Begin a SCRAM-SHA-1 / SCRAM-SHA-256 conversation.", needs_auth=False)
async def sasl_start(ctx: Ctx) -> dict:
    if ctx.db == "$external":
        raise MongoError(334, f"Received authentication for mechanism {ctx.body.get('mechanism')} which is not "
                         "enabled")
    opts = ctx.body.get("options") if isinstance(ctx.body.get("options"), dict) else {}
    reply = security(ctx).sasl_start(ctx.conn, ctx.db, ctx.body.get("mechanism"),
                                     scram.payload_bytes(ctx.body.get("payload")),
                                     skip_empty=bool(opts.get("skipEmptyExchange")))
    reply["ok"] = 1.0
    return reply


@command("saslContinue", help="Continue a SASL conversation.", needs_auth=False)
async def sasl_continue(ctx: Ctx) -> dict:
    reply = security(ctx).sasl_continue(ctx.conn, ctx.db, ctx.body.get("conversationId"),
                                        scram.payload_bytes(ctx.body.get("payload", b"")))
    reply["ok"] = 1.0
    return reply


@command("logout", help="End authentication on this connection.", needs_auth=False)
async def logout(ctx: Ctx) -> dict:
    security(ctx).logout(ctx.conn)
    return {"ok": 1.0}


@command("connectionStatus", help="Authenticated users and roles of this connection.", needs_auth=False)
async def connection_status(ctx: Ctx) -> dict:
    sec = security(ctx)
    user = sec.current_user(ctx.conn)
    info: dict = {"authenticatedUsers": [], "authenticatedUserRoles": []}
    if user is not None:
        info["authenticatedUsers"] = [{"user": user["user"], "db": user["db"]}]
        info["authenticatedUserRoles"] = [dict(r) for r in user.get("roles", [])]
    if ctx.body.get("showPrivileges"):
        privs: list = []
        for r in info["authenticatedUserRoles"]:
            privs += roles.role_doc(r["role"], r["db"], show_privileges=True)["privileges"]
        info["authenticatedUserPrivileges"] = privs
    return {"authInfo": info, "ok": 1.0}


# -- arguments ---------------------------------------------------------------------------

def _name(ctx: Ctx) -> str:
    v = ctx.arg
    if not isinstance(v, str) or not v:
        raise MongoError(ErrorCode.BadValue, f"{ctx.name} needs a user name (a non-empty string)")
    return v


def _roles(ctx: Ctx, *, required: bool) -> list[dict] | None:
    v = ctx.body.get("roles")
    if v is None:
        if required:
            raise MongoError(_MISSING_FIELD, f"BSON field '{ctx.name}.roles' is missing but a required field")
        return None
    if not isinstance(v, list):
        raise MongoError(ErrorCode.TypeMismatch, f"BSON field '{ctx.name}.roles' is the wrong type, expected array")
    out: list[dict] = []
    for r in v:
        rd = roles.validate_role(r, ctx.db)
        if rd not in out:
            out.append(rd)
    sec = security(ctx)
    for rd in out:      # granting a role needs userAdmin on the role's database
        if not sec.may(ctx.conn, rd["db"], roles.USERADMIN):
            raise MongoError(ErrorCode.Unauthorized, f"not authorized to grant role {rd['role']}@{rd['db']}")
    return out


def _password(ctx: Ctx, *, required: bool) -> str | None:
    pwd = ctx.body.get("pwd")
    if pwd is None:
        if required:
            raise MongoError(ErrorCode.BadValue, "Must provide a 'pwd' field for all user documents, except those "
                             "with '$external' as the user's source db")
        return None
    if not isinstance(pwd, str) or not pwd:
        raise MongoError(ErrorCode.BadValue, "pwd must be a non-empty string")
    if ctx.body.get("digestPassword") is False:
        raise MongoError(ErrorCode.BadValue, "Use of SCRAM-SHA-256 requires undigested passwords")
    return pwd


def _mechanisms(ctx: Ctx) -> list[str] | None:
    v = ctx.body.get("mechanisms")
    if v is None:
        return None
    if not isinstance(v, list) or not v or any(m not in scram.MECHANISMS for m in v):
        raise MongoError(ErrorCode.BadValue, f"mechanisms must be a non-empty subset of {list(scram.MECHANISMS)}")
    return list(dict.fromkeys(v))


def _custom_data(ctx: Ctx) -> tuple[bool, Any]:
    if "customData" not in ctx.body:
        return False, None
    v = ctx.body["customData"]
    if not isinstance(v, dict):
        raise MongoError(ErrorCode.TypeMismatch, "customData must be an object")
    return True, v


def _external(ctx: Ctx) -> None:
    if ctx.db == "$external":
        raise MongoError(ErrorCode.NotImplemented, f"{ctx.name}: users of $external (x.509, LDAP, Kerberos) are not "
                         "supported by MongoLake")


# -- user management ----------------------------------------------------------------------

@command("createUser", help="Create a user with SCRAM credentials and built-in roles.")
async def create_user(ctx: Ctx) -> dict:
    _external(ctx)
    user = _name(ctx)
    pwd = _password(ctx, required=True)
    role_list = _roles(ctx, required=True)
    mechs = _mechanisms(ctx)
    _, custom = _custom_data(ctx)
    await asyncio.to_thread(security(ctx).users.create, ctx.db, user, pwd, role_list, mechanisms=mechs,
                            custom_data=custom)
    return {"ok": 1.0}


@command("updateUser", help="Change a user's password, roles, mechanisms or customData.")
async def update_user(ctx: Ctx) -> dict:
    _external(ctx)
    user = _name(ctx)
    pwd = _password(ctx, required=False)
    role_list = _roles(ctx, required=False)
    mechs = _mechanisms(ctx)
    set_custom, custom = _custom_data(ctx)
    if pwd is None and role_list is None and mechs is None and not set_custom:
        raise MongoError(ErrorCode.BadValue, "Must specify at least one field to update in updateUser")
    await asyncio.to_thread(security(ctx).users.update, ctx.db, user, password=pwd, roles=role_list,
                            mechanisms=mechs, custom_data=custom, set_custom=set_custom)
    return {"ok": 1.0}


@command("dropUser", help="Remove a user.")
async def drop_user(ctx: Ctx) -> dict:
    await asyncio.to_thread(security(ctx).users.drop, ctx.db, _name(ctx))
    return {"ok": 1.0}


@command("dropAllUsersFromDatabase", help="Remove every user of this database.")
async def drop_all_users(ctx: Ctx) -> dict:
    n = await asyncio.to_thread(security(ctx).users.drop_all, ctx.db)
    return {"n": n, "ok": 1.0}


async def _change_roles(ctx: Ctx, grant: bool) -> dict:
    user = _name(ctx)
    given = _roles(ctx, required=True) or []
    sec = security(ctx)
    current = sec.users.get(ctx.db, user)
    if current is None:
        raise user_not_found(ctx.db, user)
    now = list(current.get("roles", []))
    if grant:
        now += [r for r in given if r not in now]
    else:
        now = [r for r in now if r not in given]
    await asyncio.to_thread(sec.users.update, ctx.db, user, roles=now)
    return {"ok": 1.0}


@command("grantRolesToUser", help="Add built-in roles to a user.")
async def grant_roles(ctx: Ctx) -> dict:
    return await _change_roles(ctx, True)


@command("revokeRolesFromUser", help="Remove roles from a user.")
async def revoke_roles(ctx: Ctx) -> dict:
    return await _change_roles(ctx, False)


def _user_doc(sec: Security, u: dict, *, creds: bool, privs: bool, custom: bool) -> dict:
    d = public_doc(u, show_credentials=creds)
    try:
        d["userId"] = Binary.from_uuid(_uuid.UUID(d["userId"]), UuidRepresentation.STANDARD)
    except (TypeError, ValueError):
        d.pop("userId", None)
    if not custom:
        d.pop("customData", None)
    d["inheritedRoles"] = [dict(r) for r in u.get("roles", [])]
    if privs:
        p: list = []
        for r in u.get("roles", []):
            p += roles.role_doc(r["role"], r["db"], show_privileges=True)["privileges"]
        d["inheritedPrivileges"] = p
    return d


@command("usersInfo", help="Describe users (yourself, or any user of a database you administer).")
async def users_info(ctx: Ctx) -> dict:
    sec = security(ctx)
    arg = ctx.arg
    wanted: list[tuple[str, str]] | None = None         # None: every user of the database(s)
    all_dbs = False
    if isinstance(arg, dict) and arg.get("forAllDBs"):
        if ctx.db != "admin":
            raise MongoError(ErrorCode.BadValue, "forAllDBs is only allowed on the admin database")
        all_dbs = True
    elif arg in (1, 1.0, True):
        pass
    else:
        items = arg if isinstance(arg, list) else [arg]
        wanted = []
        for it in items:
            if isinstance(it, str):
                wanted.append((ctx.db, it))
            elif isinstance(it, dict) and isinstance(it.get("user"), str) and isinstance(it.get("db"), str):
                wanted.append((it["db"], it["user"]))
            else:
                raise MongoError(ErrorCode.BadValue, "usersInfo needs 1, a user name, {user, db} or a list of them")
    me = ctx.conn.state.get(AUTH_KEY)
    self_key = (me["db"], me["user"]) if me else None

    def allowed(db: str, user: str) -> bool:
        return sec.may(ctx.conn, db, roles.USERADMIN) or (db, user) == self_key

    if wanted is None:
        if all_dbs:
            if sec.auth and not (sec.current_user(ctx.conn) and roles.USERADMIN in
                                 sec.privileges(sec.current_user(ctx.conn)).any_db):
                raise MongoError(ErrorCode.Unauthorized, "not authorized to list the users of every database")
            found = sec.users.in_db(None)
        else:
            if not sec.may(ctx.conn, ctx.db, roles.USERADMIN):
                raise MongoError(ErrorCode.Unauthorized, f"not authorized on {ctx.db} to list its users")
            found = sec.users.in_db(ctx.db)
    else:
        found = []
        for db, user in wanted:
            if not allowed(db, user):
                raise MongoError(ErrorCode.Unauthorized, f"not authorized to view user {user}@{db}")
            u = sec.users.get(db, user)
            if u is not None:
                found.append(u)
    flt = ctx.body.get("filter")
    docs = [_user_doc(sec, u, creds=bool(ctx.body.get("showCredentials")),
                      privs=bool(ctx.body.get("showPrivileges")), custom=ctx.body.get("showCustomData", True)
                      is not False) for u in found]
    if isinstance(flt, dict) and flt:
        from mongolake.query.filter import parse_filter
        from mongolake.query.matcher import compile_matcher

        match = compile_matcher(parse_filter(flt))
        docs = [d for d in docs if match(d)]
    return {"users": docs, "ok": 1.0}


@command("rolesInfo", help="Describe the built-in roles (MongoLake has no user-defined roles).")
async def roles_info(ctx: Ctx) -> dict:
    arg = ctx.arg
    privs = bool(ctx.body.get("showPrivileges"))
    names: list[tuple[str, str]] = []
    if arg in (1, 1.0, True) or (isinstance(arg, dict) and "role" not in arg):
        if ctx.body.get("showBuiltinRoles"):
            names = [(n, ctx.db) for n, rd in roles.BUILTIN_ROLES.items() if not rd.admin_only or ctx.db == "admin"]
    else:
        for it in (arg if isinstance(arg, list) else [arg]):
            if isinstance(it, str):
                names.append((it, ctx.db))
            elif isinstance(it, dict) and isinstance(it.get("role"), str) and isinstance(it.get("db"), str):
                names.append((it["role"], it["db"]))
            else:
                raise MongoError(ErrorCode.BadValue, "rolesInfo needs 1, a role name, {role, db} or a list of them")
    out = []
    for name, db in names:
        rd = roles.BUILTIN_ROLES.get(name)
        if rd is None or (rd.admin_only and db != "admin"):
            continue
        out.append(roles.role_doc(name, db, show_privileges=privs))
    return {"roles": out, "ok": 1.0}
