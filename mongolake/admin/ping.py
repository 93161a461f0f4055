"""``mongolake ping [--host H] [--port P]``: does a server answer ``ping``? (Health checks.)"""
from __future__ import annotations

import argparse
import sys


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=27017, help="server port (default 27017)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default 5)")


def run(args: argparse.Namespace) -> int:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    ms = int(args.timeout * 1000)
    client = MongoClient(args.host, args.port, directConnection=True, serverSelectionTimeoutMS=ms,
                         connectTimeoutMS=ms, socketTimeoutMS=ms)
    try:
        client.admin.command("ping")
    except PyMongoError as e:
        print(f"mongolake ping: {args.host}:{args.port} does not answer: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(f"{args.host}:{args.port} ok")
    return 0
