"""Micro-benchmark: round trips/s of ``ping`` from one pymongo client against WireServer.

The server runs in a child process (so client and server do not share a GIL) with a
trivial handler.  Usage::

    python bench/bench_wire.py [--seconds 3] [--compressors zlib] [--clients 1] [--raw]

``--raw`` replaces pymongo by a minimal blocking socket client sending a pre-encoded
OP_MSG ping (pymongo's own per-command CPU cost, ~200 us on a slow core, otherwise
dominates).  Not a test; prints one line.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from wire import SUPPORTED_COMPRESSORS, BaseHandler, WireServer  # noqa: E402

HELLO = {
    "ismaster": True,
    "helloOk": True,
    "maxWireVersion": 25,
    "minWireVersion": 0,
    "maxBsonObjectSize": 16 * 1024 * 1024,
    "maxMessageSizeBytes": 48_000_000,
    "maxWriteBatchSize": 100_000,
    "ok": 1.0,
}
PONG = {"ok": 1.0}


class TrivialHandler(BaseHandler):
    async def handle(self, conn, request):
        name = (request.command_name or "").lower()
        if name in ("hello", "ismaster"):
            doc = dict(HELLO, connectionId=conn.id)
            offered = [c for c in request.body.get("compression", ()) if c in SUPPORTED_COMPRESSORS]
            if offered:
                conn.compressor = offered[0]
                doc["compression"] = offered[:1]
            return doc
        return PONG


def _serve(port_queue: mp.Queue, stop_event: mp.Event) -> None:
    async def main() -> None:
        server = WireServer(TrivialHandler(), port=0)
        await server.start()
        port_queue.put(server.port)
        while not stop_event.is_set():
            await asyncio.sleep(0.1)
        await server.stop()

    asyncio.run(main())


def _client_loop(port: int, compressors: str | None, seconds: float, counts: list, idx: int) -> None:
    import pymongo

    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    if compressors:
        uri += f"&compressors={compressors}"
    client = pymongo.MongoClient(uri)
    admin = client.admin
    admin.command("ping")
    n = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            admin.command("ping")
        n += 100
    counts[idx] = n
    client.close()


def _raw_loop(port: int, compressors: str | None, seconds: float, counts: list, idx: int) -> None:
    import socket
    import struct

    from wire.protocol import encode_op_msg

    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ping = encode_op_msg(1, 0, {"ping": 1, "$db": "admin"}, compressor=compressors)

    def round_trip() -> None:
        sock.sendall(ping)
        head = sock.recv(4, socket.MSG_WAITALL)
        (length,) = struct.unpack("<i", head)
        sock.recv(length - 4, socket.MSG_WAITALL)

    n = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            round_trip()
        n += 100
    counts[idx] = n
    sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--compressors", default=None, help="e.g. zlib, snappy, zstd")
    parser.add_argument("--clients", type=int, default=1, help="client threads (share one GIL)")
    parser.add_argument("--raw", action="store_true", help="raw socket client instead of pymongo")
    args = parser.parse_args()

    port_queue: mp.Queue = mp.Queue()
    stop_event = mp.Event()
    proc = mp.Process(target=_serve, args=(port_queue, stop_event), daemon=True)
    proc.start()
    try:
        port = port_queue.get(timeout=10)
        counts = [0] * args.clients
        threads = [
            threading.Thread(target=_raw_loop if args.raw else _client_loop, args=(port, args.compressors, args.seconds, counts, i))
            for i in range(args.clients)
        ]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        total = sum(counts)
        print(
            f"ping round trips: {total / args.seconds:,.0f}/s "
            f"({args.clients} {'raw' if args.raw else 'pymongo'} client(s), compressors={args.compressors or 'none'}, {total} pings, {elapsed:.1f}s)"
        )
    finally:
        stop_event.set()
        proc.join(timeout=10)
        if proc.is_alive():
            proc.terminate()


if __name__ == "__main__":
    main()
