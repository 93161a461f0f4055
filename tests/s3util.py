"""Test helpers for S3: a local moto S3 server and a fault-injecting HTTP proxy.

Reusable by every test package::

    from tests.s3util import moto_s3_server, s3_options

    with moto_s3_server() as (endpoint_url, bucket):
        storage = open_storage(f"s3://{bucket}/my-test", **s3_options(endpoint_url))

Notes:

* The server is moto's ``ThreadedMotoServer`` on 127.0.0.1 with a free port,
  running in a thread of the test process. Do not use ``moto.mock_aws`` in the same
  process while it runs: ``mock_aws`` resets moto's in-memory state and patches
  botocore globally.
* moto checks a conditional PUT's precondition and then stores the object in two
  separate steps; with its threaded server two concurrent PUTs could both pass the
  check. Real S3 evaluates the condition atomically, so the server here serialises
  requests (one lock around moto's WSGI app) to behave like S3.
* :class:`FaultProxy` is a real HTTP proxy in front of an endpoint that answers with
  S3 errors, drops connections, or cuts response bodies for chosen requests, so the
  client's retry logic is tested over real sockets.
"""
from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator
from urllib.parse import urlparse

DEFAULT_BUCKET = "mongolake-test"
TEST_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing", "region": "us-east-1"}


def s3_options(endpoint_url: str, **extra) -> dict:
    """Options for ``open_storage``/``S3Storage.from_url`` against a local test endpoint."""
    return {"endpoint_url": endpoint_url, **TEST_CREDENTIALS, **extra}


def _locked_app(app):
    lock = threading.Lock()

    def wrapped(environ, start_response):
        with lock:
            return list(app(environ, start_response))
    return wrapped


@contextlib.contextmanager
def moto_s3_server(bucket: str = DEFAULT_BUCKET) -> Iterator[tuple[str, str]]:
    """Start a moto S3 server on 127.0.0.1 (free port), create ``bucket``; yield
    ``(endpoint_url, bucket)``; stop the server on exit."""
    from moto.server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    class _SerialMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:   # port 0: the OS picks a free port, no race
            app = _locked_app(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, 0, app, threaded=True)
            self._server_ready_event.set()
            self._server.serve_forever()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # no line per request
    server = _SerialMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        client = make_client(endpoint)
        client.create_bucket(Bucket=bucket)
        client.close()
        yield endpoint, bucket
    finally:
        server.stop()


def make_client(endpoint_url: str):
    """A plain boto3 S3 client for test set-up and inspection (path-style, test credentials)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint_url, aws_access_key_id="testing",
                        aws_secret_access_key="testing", region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))


# -- fault injection --------------------------------------------------------------

@dataclass
class Fault:
    """What to do with the next ``count`` requests that ``match``.

    kind: ``"error"`` (answer ``status``/``code`` without forwarding), ``"drop"``
    (close the connection without an answer), ``"after"`` (forward, then answer
    ``status``/``code``: the server applied the request but the client sees a
    failure), ``"truncate"`` (forward, then send only half of the response body
    and close).
    """
    kind: str = "error"
    count: int = 1
    status: int = 503
    code: str = "SlowDown"
    match: Callable[[str, str], bool] = field(default=lambda method, path: True)


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"}


class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 that forwards to ``upstream`` and injects
    :class:`Fault`\\ s. ``requests`` records ``(method, path, outcome)`` of each request."""

    def __init__(self, upstream: str):
        up = urlparse(upstream)
        self._up_host, self._up_port = up.hostname, up.port or 80
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):   # quiet
                pass

            def _handle(self):
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    # -- control --
    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail(self, count: int = 1, *, status: int = 503, code: str = "SlowDown", kind: str = "error",
             match: Callable[[str, str], bool] | None = None) -> Fault:
        return self.add(Fault(kind, count, status, code, match or (lambda m, p: True)))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def outcomes(self, method: str | None = None) -> list[str]:
        return [o for m, _p, o in self.requests if method is None or m == method]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- serving --
    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.count > 0 and f.match(method, path):
                    f.count -= 1
                    return f
        return None

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        method, path = h.command, h.path
        length = int(h.headers.get("Content-Length") or 0)
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise RuntimeError("FaultProxy does not support chunked request bodies")
        body = h.rfile.read(length) if length else b""
        fault = self._pick(method, path)
        kind = fault.kind if fault else "forward"
        with self._lock:
            self.requests.append((method, path, kind))
        if kind == "drop":
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind == "error":
            self._send_error(h, fault)
            return
        status, headers, payload = self._forward(method, path, h.headers, body)
        if kind == "after":
            self._send_error(h, fault)
            return
        h.send_response(status)
        for k, v in headers:
            if k.lower() not in _HOP_BY_HOP:
                h.send_header(k, v)
        if kind == "truncate":
            h.end_headers()
            h.wfile.write(payload[: len(payload) // 2])
            h.wfile.flush()
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(payload)

    def _forward(self, method, path, headers, body):
        conn = http.client.HTTPConnection(self._up_host, self._up_port, timeout=30)
        try:
            fwd = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(method, path, body=body if body or method in ("PUT", "POST") else None, headers=fwd)
            resp = conn.getresponse()
            payload = resp.read()
            return resp.status, resp.getheaders(), payload
        finally:
            conn.close()

    @staticmethod
    def _send_error(h: BaseHTTPRequestHandler, fault: Fault) -> None:
        xml = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.code}</Code>'
               f"<Message>injected fault</Message><RequestId>fault</RequestId></Error>").encode()
        h.send_response(fault.status)
        h.send_header("Content-Type", "application/xml")
        h.send_header("Content-Length", str(0 if h.command == "HEAD" else len(xml)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(xml)
