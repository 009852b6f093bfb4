"""A webhook receiver for tests: a real HTTP server that checks Standard Webhooks signatures with its own code.

It knows nothing of dispatch: the check below is written from the specification
(HMAC-SHA256 over ``id.timestamp.body`` with the base64-decoded secret after
``whsec_``). It can be stopped (its port closed) and started again on the same port,
and told to answer with a given status.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def genuine(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """True when ``headers`` carry a valid, fresh v1 signature of ``body`` under ``secret``."""
    key = base64.b64decode(secret.split("_", 1)[1])
    webhook_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    if not webhook_id or not stamp or abs(time.time() - int(stamp)) > tolerance:
        return False
    mac = hmac.new(key, webhook_id.encode() + b"." + stamp.encode() + b"." + body, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    return any(hmac.compare_digest(sig, expected) for sig in headers.get("webhook-signature", "").split(" "))


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 512  # many senders' connections at once


class Receiver:
    """Accepts webhooks on 127.0.0.1:``port``; ``received`` holds each genuine one (headers, body, payload)."""

    def __init__(self, secret: str, port: int = 0, status: int = 204) -> None:
        self.secret = secret
        self.status = status
        #: Seconds each request takes (a slow receiver).
        self.delay = 0.0
        self.port = port
        self.received: list[tuple[dict[str, str], bytes, dict[str, Any]]] = []
        self.rejected = 0
        #: The webhook-id of every request, answered 2xx or not, in arrival order.
        self.attempted: list[str] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/dispatch"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with receiver._lock:
                    receiver._connections.add(self.connection)

            def finish(self) -> None:
                with receiver._lock:
                    receiver._connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver._lock:
                    receiver.requests += 1
                    receiver.attempted.append(headers.get("webhook-id", ""))
                    ok = genuine(receiver.secret, headers, body)
                    status = receiver.status if ok else 401
                    if ok and 200 <= status < 300:
                        receiver.received.append((headers, body, json.loads(body)))
                    elif not ok:
                        receiver.rejected += 1
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the port and every kept-alive connection: connections are refused until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def ids(self) -> list[str]:
        with self._lock:
            return [headers["webhook-id"] for headers, _, _ in self.received]

    def payloads(self) -> list[dict[str, Any]]:
        with self._lock:
            return [payload for _, _, payload in self.received]
