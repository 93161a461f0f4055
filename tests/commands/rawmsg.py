"""A raw OP_MSG client for the command tests: sends exactly the command given
(drivers refuse e.g. user-supplied ``txnNumber``) and returns the decoded reply."""
from __future__ import annotations

import uuid
from typing import Any

from bson import Binary, Int64

from tests.wire.rawclient import RawClient
from wire.protocol import decode_reply, encode_op_msg, next_request_id

MORE_TO_COME = 1 << 1


def new_lsid() -> dict:
    return {"id": Binary.from_uuid(uuid.uuid4())}


class RawMsg:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.client = RawClient(port, timeout)

    def send(self, body: dict, *, sequences: dict | None = None, flags: int = 0) -> int:
        rid = next_request_id()
        self.client.send(encode_op_msg(rid, 0, body, flags, sequences=sequences))
        return rid

    def cmd(self, body: dict, *, sequences: dict | None = None) -> dict[str, Any]:
        rid = self.send(body, sequences=sequences)
        reply = decode_reply(self.client.recv_frame())
        assert reply["response_to"] == rid
        return reply["body"]

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "RawMsg":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def txn(n: int) -> Int64:
    return Int64(n)
