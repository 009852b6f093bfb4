"""IMAP polling of the bounce mailbox against a real Dovecot (Debian's dovecot-imapd) in a temporary folder.

``scripts/test`` installs Dovecot (Debian's dovecot-imapd) when it is missing; without it
these tests are skipped locally and fail in CI.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from servers import missing
from verp_helpers import TEST_KEY, return_path, tagged

from dispatch.errors import StoreError
from dispatch.feedback import FeedbackKind, ProviderEvent
from dispatch_email.imap import ImapPoller, ImapSettings
from dispatch_email.inbound import ReturnedMailProcessor
from dispatch_email.services import start_returned_mail_services

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inbound"
BOUNCES = "bounces@example.fi"
USER, PASSWORD = "bounces", "s3cret"


@dataclass
class Dovecot:
    port: int
    folder: Path

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
        client.login(USER, PASSWORD)
        return client

    def append(self, *names: str, key: bytes = TEST_KEY) -> None:
        """Put fixtures in the mailbox, their VERP addresses tagged under ``key``."""
        client = self.client()
        try:
            for name in names:
                data = tagged((FIXTURES / name).read_bytes(), key).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                status, _ = client.append("INBOX", None, None, data)
                assert status == "OK"
        finally:
            client.logout()

    def unseen(self) -> int:
        client = self.client()
        try:
            client.select("INBOX", readonly=True)
            _, data = client.uid("SEARCH", None, "UNSEEN")
            return len(data[0].split())
        finally:
            client.logout()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
    if binary is None:
        missing("Dovecot (dovecot-imapd)")
    # Not under pytest's tmp_path: Dovecot's unprivileged processes must reach the mail folders.
    folder = Path(tempfile.mkdtemp(prefix="dispatch-dovecot-"))
    folder.chmod(0o755)
    try:
        yield from _run_dovecot(binary, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run_dovecot(binary: str, folder: Path) -> Iterator[Dovecot]:
    for sub in ("run", "state", "home"):
        (folder / sub).mkdir(parents=True)
    (folder / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
    if os.getuid() == 0:
        owner = pwd.getpwnam("nobody")
        os.chown(folder / "home", owner.pw_uid, owner.pw_gid)
        users = f"uid={owner.pw_uid} gid={owner.pw_gid}"
        extra = ""
    else:  # an unprivileged Dovecot runs everything as this user
        me = pwd.getpwuid(os.getuid()).pw_name
        users = f"uid={os.getuid()} gid={os.getgid()}"
        extra = f"default_internal_user = {me}\ndefault_login_user = {me}\n"
    port = _free_port()
    (folder / "dovecot.conf").write_text(
        f"""base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir
{extra}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/passwd
}}
userdb {{
  driver = static
  args = {users} home={folder}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-F", "-c", str(folder / "dovecot.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log = (folder / "dovecot.log").read_text() if (folder / "dovecot.log").exists() else ""
                pytest.fail(f"Dovecot exited with {process.returncode}: {log[-2000:]}", pytrace=False)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("Dovecot did not listen within 60 s", pytrace=False)
                time.sleep(0.1)
        yield Dovecot(port, folder)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


class Collector:
    def __init__(self) -> None:
        self.events: list[ProviderEvent] = []
        self.fail_with: Exception | None = None
        self._lock = threading.Lock()

    def __call__(self, event: ProviderEvent) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        with self._lock:
            self.events.append(event)


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def settings(dovecot: Dovecot, **extra) -> ImapSettings:
    values = {"host": "127.0.0.1", "port": dovecot.port, "tls": False, "username": USER, "password": PASSWORD}
    return ImapSettings(**{**values, **extra})


def test_poll_once_processes_unseen_mail_and_marks_it_seen(dovecot, tmp_path):
    dovecot.append("postfix_bounce.eml", "arf_abuse.eml", "not_a_report.eml")
    collector = Collector()
    processor = ReturnedMailProcessor(return_path(BOUNCES), collector, tmp_path / "kept")
    poller = ImapPoller(settings(dovecot), processor)

    assert poller.poll_once() == 3

    assert [(e.kind, e.message_id) for e in collector.events] == [
        (FeedbackKind.BOUNCED, "01JD8Z6Q3V4X5Y6Z7A8B9C0D1E"),  # VERP address read from the To header
        (FeedbackKind.COMPLAINED, "01JD8ZF1G2H3J4K5M6N7P8Q9R0"),
    ]
    assert processor.stats["kept_aside"] == 1 and len(list((tmp_path / "kept").glob("*.eml"))) == 1
    assert dovecot.unseen() == 0
    assert poller.poll_once() == 0  # nothing is taken twice
    assert len(collector.events) == 2


def test_store_down_leaves_the_mail_unseen_for_the_next_poll(dovecot, tmp_path):
    dovecot.append("exim_dsn.eml")
    collector = Collector()
    collector.fail_with = StoreError("database is locked")
    poller = ImapPoller(settings(dovecot), ReturnedMailProcessor(return_path(BOUNCES), collector, tmp_path))

    assert poller.poll_once() == 0
    assert dovecot.unseen() == 1 and collector.events == []

    collector.fail_with = None
    assert poller.poll_once() == 1
    assert [e.message_id for e in collector.events] == ["01JD8ZB1C2D3E4F5G6H7J8K9M0"]
    assert dovecot.unseen() == 0


def test_a_refused_login_raises_from_poll_once(dovecot, tmp_path):
    poller = ImapPoller(
        settings(dovecot, password="wrong"), ReturnedMailProcessor(return_path(BOUNCES), Collector(), tmp_path)
    )
    with pytest.raises(imaplib.IMAP4.error):
        poller.poll_once()


def test_polling_thread_from_the_channel_settings_survives_a_server_that_is_down(dovecot, make_dispatcher):
    collector = Collector()
    good = {
        "return_path": BOUNCES,
        "imap_host": "127.0.0.1",
        "imap_port": dovecot.port,
        "imap_tls": False,
        "imap_username": USER,
        "imap_password": PASSWORD,
        "imap_interval": 0.2,
        "timeout": 10.0,
    }
    down = make_dispatcher({"email": {**good, "imap_port": _free_port()}})
    services = start_returned_mail_services(down.channels["email"], collector)
    try:
        wait_for(lambda: services.stats["imap_errors"] >= 3)  # refused, logged, retried: the thread goes on
        assert services.poller is not None and services.listener is None
    finally:
        services.stop()

    d = make_dispatcher({"email": good})
    services = start_returned_mail_services(d.channels["email"], collector)
    try:
        dovecot.append("gmail_dsn.eml", "postfix_delayed.eml", key=d.signing_key("verp"))
        wait_for(lambda: len(collector.events) == 2)
    finally:
        services.stop()
    assert {(e.kind, e.message_id) for e in collector.events} == {
        (FeedbackKind.BOUNCED, "01JD8ZE9F0G1H2J3K4M5N6P7Q8"),
        (FeedbackKind.SOFT_BOUNCED, "01JD8Z9K2M3N4P5Q6R7S8T9V0W"),
    }
    assert dovecot.unseen() == 0
