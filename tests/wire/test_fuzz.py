"""Property tests: the reader never fails with anything but ProtocolError, and lazily
decoded content never fails with anything but InvalidRequestError."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wire.errors import InvalidRequestError, ProtocolError
from wire.protocol import MessageReader

from .helpers import compressed, op_msg, op_query

VALID = [
    op_msg({"ping": 1, "$db": "admin"}),
    op_msg({"insert": "c", "$db": "d"}, sequences=[("documents", [{"_id": 1, "a": [1, {"b": 2}]}, {"_id": 2}])]),
    op_msg({"find": "c", "filter": {"x": {"$gt": 1}}}, checksum=True),
    op_query("admin.$cmd", {"$query": {"isMaster": 1}, "$readPreference": {"mode": "primary"}}, {"a": 1}),
    compressed(op_msg({"ping": 1, "pad": "x" * 100}), 1),
    compressed(op_msg({"ping": 1, "pad": "x" * 100}), 2),
    compressed(op_msg({"ping": 1, "pad": "x" * 100}), 3),
]


def consume(data: bytes, chunks: list[int]) -> list | None:
    """Feed ``data`` in the given chunk sizes; touch every lazily decoded field."""
    reader = MessageReader(max_message_size=1 << 20)
    out = []
    pos = 0
    try:
        for size in chunks + [len(data)]:
            out += reader.feed(data[pos : pos + size])
            pos += size
            if pos >= len(data):
                break
    except ProtocolError:
        return None
    for req in out:
        for attr in ("body", "sequences", "command_name"):
            try:
                getattr(req, attr)
            except InvalidRequestError:
                pass
        req.body_depth_exceeds(3)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.lists(st.integers(1, 64), max_size=8))
def test_random_bytes(data, chunks):
    consume(data, chunks)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(VALID),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    st.lists(st.integers(1, 40), max_size=6),
)
def test_mutated_messages(msg, flips, chunks):
    data = bytearray(msg)
    for pos, value in flips:
        data[pos % len(data)] = value
    consume(bytes(data), chunks)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(VALID), min_size=1, max_size=5), st.lists(st.integers(1, 50), max_size=20))
def test_valid_streams_any_chunking(msgs, chunks):
    out = consume(b"".join(msgs), chunks)
    assert out is not None and len(out) == len(msgs)
    whole = MessageReader().feed(b"".join(msgs))
    assert [r.raw_body for r in out] == [r.raw_body for r in whole]
