"""``mongolake user add|list|remove STORAGE ...``: manage users on a stopped server's store.

``add`` creates a user with SCRAM-SHA-256 and SCRAM-SHA-1 credentials (salted keys;
the password itself is never written) and built-in roles (``--role root``,
``--role readWrite@app``; default ``root`` in ``admin``). The password comes from
``--password-stdin`` (first line of standard input), an interactive prompt, or
``--password`` (visible to other local users in the process list: avoid it).
A running server holds the store's lock: use ``createUser`` through a client then.
"""
from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from .common import AdminError, emit, open_store


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("add", "list", "remove"), help="what to do")
    p.add_argument("storage_url", metavar="STORAGE", help="the store: a path, file://, s3://bucket/prefix")
    p.add_argument("username", nargs="?", help="the user (add, remove)")
    p.add_argument("--db", default="admin", help="the user's database, its authSource (default admin)")
    p.add_argument("--role", action="append", default=None, metavar="ROLE[@DB]",
                   help="a built-in role, repeatable (default: root@admin)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.add_argument("--password", default=None, help="the password (prefer --password-stdin or the prompt)")
    p.add_argument("--mechanism", action="append", default=None, choices=("SCRAM-SHA-256", "SCRAM-SHA-1"),
                   help="credentials to create (default: both)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        pwd = sys.stdin.readline().rstrip("\r\n")
    elif args.password is not None:
        pwd = args.password
    elif sys.stdin.isatty():
        pwd = getpass.getpass(f"password for {args.username}@{args.db}: ")
        if getpass.getpass("again: ") != pwd:
            raise AdminError("the passwords differ")
    else:
        raise AdminError("no password: use --password-stdin (or a terminal for the prompt)")
    if not pwd:
        raise AdminError("the password is empty")
    return pwd


def _roles(args: argparse.Namespace) -> list[dict]:
    from mongolake.errors import MongoError
    from mongolake.security.roles import validate_role

    out = []
    for spec in args.role or ["root@admin"]:
        name, _, db = spec.partition("@")
        try:
            out.append(validate_role({"role": name, "db": db or args.db}, args.db))
        except MongoError as e:
            raise AdminError(e.message) from None
    return out


def run(args: argparse.Namespace, cfg: Any) -> int:
    from mongolake.errors import MongoError
    from mongolake.security.users import UserStore, public_doc

    if args.action in ("add", "remove") and not args.username:
        raise AdminError(f"user {args.action}: name the user")
    pwd = _password(args) if args.action == "add" else None
    roles = _roles(args) if args.action == "add" else None
    with open_store(cfg, f"user {args.action}", create=args.action == "add") as st:
        users = UserStore(st.storage)
        try:
            if args.action == "add":
                users.create(args.db, args.username, pwd, roles, mechanisms=args.mechanism)
                emit({"created": f"{args.username}@{args.db}", "roles": roles}, args.json,
                     f"created {args.username}@{args.db} with roles "
                     + ", ".join(f"{r['role']}@{r['db']}" for r in roles))
            elif args.action == "remove":
                users.drop(args.db, args.username)
                emit({"removed": f"{args.username}@{args.db}"}, args.json, f"removed {args.username}@{args.db}")
            else:
                docs = [public_doc(u) for u in users.in_db(None)]
                emit(docs, args.json, "\n".join(
                    f"{d['user']}@{d['db']}: " + ", ".join(f"{r['role']}@{r['db']}" for r in d["roles"])
                    + f" ({', '.join(d['mechanisms'])})" for d in docs) or "(no users)")
        except MongoError as e:
            raise AdminError(e.message) from None
    return 0
