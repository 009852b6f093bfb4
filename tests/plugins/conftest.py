"""Real peers for the channel plugins' tests, all on 127.0.0.1.

- ``smtp_server``: an aiosmtpd server in a thread that records what it receives
  and answers 421/451/550... when the recipient's local part asks for it;
- ``http_stub``: a stdlib HTTP server in a thread that records requests and
  answers what the test queued (Twilio error bodies, webhook failures, slowness);
- ``prism``: Prism serving Twilio's OpenAPI description (tests/node);
- ``tls_files`` / ``dkim_keys``: a self-signed certificate and a DKIM key pair;
- ``make_dispatcher``: a real :class:`~dispatch.Dispatcher` (temporary store and
  outbox) whose channels and delivery event loop the tests use as the worker does.

A peer that cannot run here skips its tests with a loud reason, and fails them
when ``CI=true``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ulid import ULID

from dispatch import Dispatcher
from dispatch.models import OutgoingMessage

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"


def _twilio_spec() -> Path:
    """Twilio's OpenAPI description (twilio/twilio-oai, MIT): $DISPATCH_TWILIO_SPEC, else a copy in
    tests/node/twilio/, else the team's shared copy."""
    if os.environ.get("DISPATCH_TWILIO_SPEC"):
        return Path(os.environ["DISPATCH_TWILIO_SPEC"])
    candidates = [NODE_DIR / "twilio" / "twilio_api_v2010.json", Path("/work/shared/twilio/twilio_api_v2010.json")]
    return next((p for p in candidates if p.is_file()), candidates[0])


TWILIO_SPEC = _twilio_spec()


def need_peer(reason: str) -> None:
    """Skip (locally) or fail (CI=true) a test whose real peer cannot run here."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and a required test peer is missing: {reason}", pytrace=False)
    pytest.skip(f"!!! PEER MISSING — {reason} (this test FAILS when CI=true)")


# -- SMTP ------------------------------------------------------------------------------


@dataclass
class Received:
    """One message as the SMTP server got it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple[str, int]
    mail_options: list[str]
    #: The session ran over TLS (implicit or STARTTLS).
    tls: bool = False


#: Local-part cues: ``<stage><code>...@`` makes the server answer ``code`` at ``stage``.
CUE_REPLIES = {
    "rcpt421": ("RCPT", "421 4.7.0 Too busy, try again later"),
    "rcpt450": ("RCPT", "450 4.2.1 Mailbox temporarily unavailable"),
    "rcpt550": ("RCPT", "550 5.1.1 No such user here"),
    "data451": ("DATA", "451 4.3.0 Local error in processing, try again"),
    "data552": ("DATA", "552 5.3.4 Message too big"),
    "data554": ("DATA", "554 5.7.1 Message rejected as spam"),
}


def cue(address: str, stage: str) -> str | None:
    local = address.rpartition("@")[0].lower()
    for prefix, (where, reply) in CUE_REPLIES.items():
        if local.startswith(prefix) and where == stage:
            return reply
    return None


class RecordingHandler:
    """aiosmtpd handler: records messages, answers cues, names a queue id for each."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.peers: set[tuple[str, int]] = set()
        self.logins: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self._lock:
            self.peers.add(tuple(session.peer[:2]))
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = cue(address, "RCPT")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = cue(envelope.rcpt_tos[0], "DATA") if envelope.rcpt_tos else None
        if reply:
            return reply
        data = envelope.original_content or envelope.content
        with self._lock:
            self.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    data,
                    tuple(session.peer[:2]),
                    list(envelope.mail_options),
                    tls=server.transport.get_extra_info("ssl_object") is not None,
                )
            )
            number = len(self.messages)
        return f"250 2.0.0 Ok: queued as Q{number:06d}"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        login, password = auth_data.login.decode(), auth_data.password.decode()
        with self._lock:
            self.logins.append((login, password))
        ok = (login, password) == ("dispatch", "s3cret")
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 235 or 535


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1, on a free port, in its own thread and event loop."""

    def __init__(
        self,
        handler: RecordingHandler,
        *,
        implicit_tls: ssl.SSLContext | None = None,
        starttls: ssl.SSLContext | None = None,
        auth: bool = False,
        smtputf8: bool = False,
    ) -> None:
        self.handler = handler
        self.host = "127.0.0.1"
        self.port = 0
        self._implicit_tls = implicit_tls
        self._smtp_kwargs: dict[str, Any] = {"hostname": "mx.test.invalid", "enable_SMTPUTF8": smtputf8}
        if starttls is not None:
            self._smtp_kwargs.update(tls_context=starttls, require_starttls=True)
        if auth:
            self._smtp_kwargs.update(authenticator=handler.authenticate, auth_required=True, auth_require_tls=True)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="smtp-server", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._sessions: list[Any] = []

    def _protocol(self) -> Any:
        from aiosmtpd.smtp import SMTP

        protocol = SMTP(self.handler, loop=self.loop, **self._smtp_kwargs)
        self._sessions.append(protocol)
        return protocol

    def start(self) -> SmtpServer:
        self._thread.start()

        async def serve() -> asyncio.AbstractServer:
            return await self.loop.create_server(self._protocol, self.host, 0, ssl=self._implicit_tls)

        self._server = asyncio.run_coroutine_threadsafe(serve(), self.loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def drop_connections(self) -> None:
        """Close every open client connection from the server side (like an idle timeout)."""

        async def drop() -> None:
            for protocol in self._sessions:
                if protocol.transport is not None:
                    protocol.transport.close()
            await asyncio.sleep(0.05)

        asyncio.run_coroutine_threadsafe(drop(), self.loop).result(10)

    def stop(self) -> None:
        assert self._server is not None
        self.loop.call_soon_threadsafe(self._server.close)
        self.drop_connections()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on 127.0.0.1 (no TLS, no AUTH) that records messages."""
    pytest.importorskip("aiosmtpd")
    server = SmtpServer(RecordingHandler()).start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server_factory() -> Iterator[Callable[..., SmtpServer]]:
    """Start SMTP servers with TLS, STARTTLS, AUTH or SMTPUTF8 (stopped after the test)."""
    pytest.importorskip("aiosmtpd")
    started: list[SmtpServer] = []

    def start(**kwargs: Any) -> SmtpServer:
        server = SmtpServer(RecordingHandler(), **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# -- keys and certificates -------------------------------------------------------------


@dataclass
class TlsFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def _have_cryptography() -> bool:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return False
    return True


def _cert_with_cryptography(folder: Path) -> TlsFiles:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


def _cert_with_openssl(folder: Path) -> TlsFiles:
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(files.key),
            "-out",
            str(files.cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 (cryptography if installed, else the openssl CLI)."""
    folder = tmp_path_factory.mktemp("tls")
    if _have_cryptography():
        return _cert_with_cryptography(folder)
    if shutil.which("openssl"):
        return _cert_with_openssl(folder)
    need_peer("neither the cryptography package nor the openssl CLI is available to make a test certificate")
    raise AssertionError("unreachable")


@dataclass
class DkimKeys:
    private_pem: Path
    #: The TXT record a DNS server would publish at <selector>._domainkey.<domain>.
    txt_record: bytes


@pytest.fixture(scope="session")
def dkim_keys(tmp_path_factory: pytest.TempPathFactory) -> DkimKeys:
    """An RSA-2048 DKIM key pair and its DNS TXT record."""
    folder = tmp_path_factory.mktemp("dkim")
    private = folder / "dkim.pem"
    if _have_cryptography():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    elif shutil.which("openssl"):
        subprocess.run(["openssl", "genrsa", "-out", str(private), "2048"], check=True, capture_output=True, timeout=60)
        der = subprocess.run(
            ["openssl", "rsa", "-in", str(private), "-pubout", "-outform", "DER"],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout
    else:
        need_peer("neither the cryptography package nor the openssl CLI is available to make a DKIM key")
    return DkimKeys(private, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der))


# -- HTTP stub -------------------------------------------------------------------------


@dataclass
class StubRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: The client's (host, port): the same port means the same (kept-alive) connection.
    client: tuple[str, int] = ("", 0)

    def form(self) -> dict[str, list[str]]:
        from urllib.parse import parse_qs

        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class StubReply:
    status: int
    body: Any = None
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class HttpStub:
    """A threaded stdlib HTTP server: records every request, answers queued replies in order.

    With no reply queued it answers ``default(request)``.
    """

    def __init__(self) -> None:
        self.requests: list[StubRequest] = []
        self.replies: collections.deque[StubReply] = collections.deque()
        self.default: Callable[[StubRequest], StubReply] = lambda request: StubReply(200, {"ok": True})
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = StubRequest(
                    "POST",
                    self.path,
                    dict(self.headers.items()),
                    self.rfile.read(length),
                    tuple(self.client_address[:2]),
                )
                with stub._lock:
                    stub.requests.append(request)
                    reply = stub.replies.popleft() if stub.replies else None
                reply = reply or stub.default(request)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout tests)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def answer_by_default(self, status: int, body: Any) -> None:
        """What to answer when no reply is queued."""
        self.default = lambda request: StubReply(status, body)

    def reply(self, status: int, body: Any = None, *, delay: float = 0.0) -> None:
        """Queue the answer to the next request."""
        self.replies.append(StubReply(status, body if body is not None else {}, delay))

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_stub() -> Iterator[HttpStub]:
    """A local HTTP server that records requests and answers what the test queued."""
    stub = HttpStub()
    yield stub
    stub.stop()


# -- Prism -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def prism(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Prism mocking Twilio's API 2010 from its OpenAPI description; yields the base URL."""
    binary = NODE_DIR / "node_modules" / ".bin" / "prism"
    if not shutil.which("node"):
        need_peer("node is not installed, so Prism cannot run")
    if not binary.exists():
        need_peer(f"Prism is not installed: run `npm ci --prefix {NODE_DIR.relative_to(ROOT)}`")
    if not TWILIO_SPEC.is_file():
        need_peer(f"Twilio's OpenAPI description is missing at {TWILIO_SPEC}")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("prism") / "prism.log", "w")  # noqa: SIM115 - closed after the process ends
    process = subprocess.Popen(
        [str(binary), "mock", str(TWILIO_SPEC), "-p", str(port), "-h", "127.0.0.1", "--errors"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"Prism exited with {process.returncode}; see {log.name}", pytrace=False)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"Prism did not listen on {url} within 90 s; see {log.name}", pytrace=False)
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


# -- dispatcher and messages -----------------------------------------------------------


@pytest.fixture
def make_dispatcher(tmp_path: Path) -> Iterator[Callable[..., Dispatcher]]:
    """Build a Dispatcher with ``channels={...}`` settings, a temporary store and outbox; closed after the test."""
    made: list[Dispatcher] = []

    def make(channels: dict[str, dict[str, Any]] | None = None, **overrides: Any) -> Dispatcher:
        config = {
            "store": {"url": f"sqlite:///{tmp_path / f'dispatch-{len(made)}.db'}"},
            "outbox": str(tmp_path / "outbox"),
            "channels": channels or {},
            **overrides,
        }
        dispatcher = Dispatcher.from_config(overrides=config)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close(timeout=30)


@pytest.fixture
def outgoing() -> Callable[..., OutgoingMessage]:
    """Build an OutgoingMessage as the worker hands it to a channel (fresh id each time)."""

    def build(channel: str, address: Any, parts: dict[str, str], **fields: Any) -> OutgoingMessage:
        values: dict[str, Any] = {
            "id": str(ULID()),
            "message_type": "price_change",
            "category": "statutory",
            "channel": channel,
            "language": "fi",
            "locale": "fi_FI",
            "country": "FI",
            "recipient_id": "C-1001",
            "address": address,
            "parts": parts,
        }
        values.update(fields)
        return OutgoingMessage(**values)

    return build


def deliver(dispatcher: Dispatcher, channel_name: str, message: OutgoingMessage, timeout: float = 30) -> Any:
    """Run ``channel.deliver(message)`` on the dispatcher's delivery loop, as a worker thread does."""
    channel = dispatcher.channels[channel_name]
    return dispatcher.runtime.runner.run(channel.deliver(message), timeout=timeout)


@pytest.fixture
def run_delivery() -> Callable[..., Any]:
    """``run_delivery(dispatcher, "email", message)``: deliver on the shared loop, as the worker does."""
    return deliver
