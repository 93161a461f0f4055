"""TLS for the wire server: the ``ssl.SSLContext`` and the ``allow`` mode.

``tls_mode``: ``disabled`` (plain TCP), ``require`` (every connection is TLS: the
wire server listens with the context), ``allow`` (TLS and plain TCP on the same
port, like mongod's ``allowTLS``). What a client sends first tells them apart: a
TLS ClientHello record starts with 0x16 0x03 0x0N (handshake, version 3.N); a
MongoDB message starts with its little-endian int32 length, which would then be
0x0N0316 bytes (over 66 KB) — a driver's first message (``hello``) is a few
hundred bytes. :class:`SniffingWireServer` accepts sockets itself, waits (at most
:data:`SNIFF_TIMEOUT`) for those bytes with ``MSG_PEEK`` and hands the socket to
the event loop with or without TLS.

Client certificates: with ``tls_ca_file`` clients must present a certificate
signed by one of those CAs (``tls_allow_no_client_cert`` makes it optional).
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from typing import Any

from wire.server import WireServer, _ConnectionProtocol

log = logging.getLogger("mongolake.security")

TLS_HANDSHAKE = 0x16
SNIFF_TIMEOUT = 10.0          # seconds a new connection has to send its first byte


def resolve_mode(mode: str | None, cert_file: str | None) -> str:
    if mode is None:
        return "require" if cert_file else "disabled"
    return mode


def server_context(cert_file: str, key_file: str | None = None, ca_file: str | None = None, *,
                   allow_no_client_cert: bool = False) -> ssl.SSLContext:
    """A server-side context (TLS 1.2+). Raises ``ConfigError`` naming the bad file."""
    from mongolake.config import ConfigError

    for what, path in (("tls_cert_file", cert_file), ("tls_key_file", key_file), ("tls_ca_file", ca_file)):
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"{what}: {path!r} does not exist")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(f"tls_cert_file/tls_key_file: cannot load the certificate and key: {e}") from None
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (ssl.SSLError, OSError) as e:
            raise ConfigError(f"tls_ca_file: cannot load {ca_file!r}: {e}") from None
        ctx.verify_mode = ssl.CERT_OPTIONAL if allow_no_client_cert else ssl.CERT_REQUIRED
    return ctx


def from_options(opt: Any) -> tuple[str, ssl.SSLContext | None]:
    """``(mode, context)`` from a server's option getter ``opt(name, default)``."""
    cert = opt("tls_cert_file", None)
    mode = resolve_mode(opt("tls_mode", None), cert)
    if mode == "disabled":
        return mode, None
    from mongolake.config import ConfigError

    if not cert:
        raise ConfigError(f"tls_mode {mode}: needs tls_cert_file")
    return mode, server_context(cert, opt("tls_key_file", None), opt("tls_ca_file", None),
                                allow_no_client_cert=bool(opt("tls_allow_no_client_cert", False)))


class _Listener:
    """The part of ``asyncio.Server`` that :class:`WireServer` uses."""

    def __init__(self, socks: list[socket.socket], tasks: list[asyncio.Task]):
        self.sockets = socks
        self._tasks = tasks
        self._closed = asyncio.Event()

    def is_serving(self) -> bool:
        return not self._closed.is_set()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for t in self._tasks:
            t.cancel()
        for s in self.sockets:
            s.close()

    async def wait_closed(self) -> None:
        await self._closed.wait()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1.0)

    async def serve_forever(self) -> None:
        await self._closed.wait()


class SniffingWireServer(WireServer):
    """A :class:`WireServer` that serves TLS and plain clients on one port."""

    def __init__(self, handler: Any, host: Any = "127.0.0.1", port: int = 27017, *, ssl: ssl.SSLContext,
                 **kw: Any) -> None:
        super().__init__(handler, host, port, ssl=None, **kw)
        self.tls_context = ssl
        self._sniffing = 0
        self._sniffers: set[asyncio.Task] = set()
        self.accepted = {"tls": 0, "plain": 0}

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already started")
        self._loop = loop = asyncio.get_running_loop()
        self._stopping = False
        hosts = [self.host] if isinstance(self.host, str) or self.host is None else list(self.host)
        socks: list[socket.socket] = []
        port = self.port
        try:
            for h in hosts:
                for fam, kind, proto, _c, addr in socket.getaddrinfo(h, port, type=socket.SOCK_STREAM,
                                                                     flags=socket.AI_PASSIVE):
                    s = socket.socket(fam, kind, proto)
                    if self.reuse_address:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if fam == socket.AF_INET6:
                        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s.bind(addr)
                    s.listen(self.backlog)
                    s.setblocking(False)
                    socks.append(s)
                    port = s.getsockname()[1]     # port 0: every address on the same free port
        except OSError:
            for s in socks:
                s.close()
            raise
        tasks = [loop.create_task(self._accept_loop(s)) for s in socks]
        self._server = _Listener(socks, tasks)  # type: ignore[assignment]
        self.port = socks[0].getsockname()[1]

    async def _accept_loop(self, lsock: socket.socket) -> None:
        loop = self._loop
        while True:
            try:
                sock, _addr = await loop.sock_accept(lsock)
            except asyncio.CancelledError:
                raise
            except OSError as e:          # e.g. EMFILE: back off instead of spinning
                log.warning("accept failed: %s", e)
                await asyncio.sleep(0.1)
                continue
            if len(self._protocols) + self._sniffing >= self.max_connections or self._stopping:
                log.warning("connection refused: %d connections open (max %d)", len(self._protocols),
                            self.max_connections)
                sock.close()
                continue
            task = loop.create_task(self._sniff(sock))
            self._sniffers.add(task)
            task.add_done_callback(self._sniffers.discard)

    async def stop(self, timeout: float = 5.0) -> None:
        for task in list(self._sniffers):       # connections still silent: not served yet
            task.cancel()
        await super().stop(timeout)

    async def _peek(self, sock: socket.socket) -> bytes:
        """The first (up to 3) bytes the client sent, left in the socket."""
        loop = self._loop
        end = loop.time() + SNIFF_TIMEOUT
        while True:
            await _wait_readable(loop, sock, max(0.0, end - loop.time()))
            head = sock.recv(3, socket.MSG_PEEK)
            if len(head) >= 3 or not head or head[0] != TLS_HANDSHAKE or loop.time() >= end:
                return head
            await asyncio.sleep(0.005)      # a partial TLS record header: wait for the rest

    async def _sniff(self, sock: socket.socket) -> None:
        loop = self._loop
        self._sniffing += 1
        try:
            first = await self._peek(sock)
        except (asyncio.TimeoutError, OSError):
            sock.close()
            return
        except asyncio.CancelledError:
            sock.close()
            raise
        finally:
            self._sniffing -= 1
        if not first:                       # closed before sending anything
            sock.close()
            return
        tls = first[0] == TLS_HANDSHAKE and (len(first) < 3 or (first[1] == 3 and first[2] <= 4))
        self.accepted["tls" if tls else "plain"] += 1
        try:
            await loop.connect_accepted_socket(lambda: _ConnectionProtocol(self), sock,
                                               ssl=self.tls_context if tls else None,
                                               ssl_handshake_timeout=SNIFF_TIMEOUT if tls else None)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
            log.info("TLS handshake failed: %s", e)
            sock.close()


async def _wait_readable(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float) -> None:
    fut = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: fut.done() or fut.set_result(None))
    try:
        await asyncio.wait_for(fut, timeout)
    finally:
        loop.remove_reader(sock.fileno())


def make_wire_server(handler: Any, host: Any, port: int, *, mode: str, context: ssl.SSLContext | None,
                     **kw: Any) -> WireServer:
    if mode == "allow":
        return SniffingWireServer(handler, host, port, ssl=context, **kw)
    return WireServer(handler, host, port, ssl=context if mode == "require" else None, **kw)
