"""Blocking raw-socket client for the server tests."""
from __future__ import annotations

import socket
import struct

from wire.protocol import decode_reply


class RawClient:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by server")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        head = self._recv_exact(4)
        (length,) = struct.unpack("<i", head)
        return head + self._recv_exact(length - 4)

    def recv_reply(self) -> dict:
        return decode_reply(self.recv_frame())

    def is_closed_by_peer(self) -> bool:
        """True if the server closed the socket (EOF or reset) within the timeout."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
