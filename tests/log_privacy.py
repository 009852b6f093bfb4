"""A pytest plugin: no email address or phone number in dispatch's logs, in any test (issue 12.7).

Logs carry ids, never addresses or numbers. Every log record of dispatch's own loggers
(``dispatch``, ``dispatch.*``, which the plugins use too) at every level, and of Dramatiq
(which logs the messages it fails on) at its usual level, is read while the whole suite
runs. One that holds an email address or an E.164 phone number fails the test it was
logged in (an error in its teardown naming the logger and the record); one logged
outside any test fails the session. The test peers' loggers (aiosmtpd, servers) are
not ours and are not read.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator

import pytest

#: An email address, and a phone number in E.164 (how dispatch stores every number).
PERSONAL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}|\+[1-9][0-9]{7,14}\b")
WATCHED = ("dispatch", "dramatiq")


class PersonalDataInLogs(logging.Handler):
    """Collects (test, logger, text) for every watched record that holds personal data."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.current: str | None = None
        self.found: list[tuple[str | None, str, str]] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(WATCHED):
            return
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot format is another test's problem
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += f" | {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        if PERSONAL.search(text):
            with self._guard:
                self.found.append((self.current, record.name, text))

    def take(self, nodeid: str | None) -> list[tuple[str, str]]:
        """The findings logged during ``nodeid`` (removed from the list)."""
        with self._guard:
            mine = [(name, text) for test, name, text in self.found if test == nodeid]
            self.found = [entry for entry in self.found if entry[0] != nodeid]
        return mine


_handler = PersonalDataInLogs()


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(_handler)
    # Every level of ours, not only what the root logger would pass on. (Dramatiq's debug
    # records are one per message handled, and they hold ids; its warnings and errors,
    # where an exception's text would show, are read at its usual level.)
    logger = logging.getLogger("dispatch")
    if logger.level == logging.NOTSET or logger.level > logging.DEBUG:
        logger.setLevel(logging.DEBUG)


def pytest_unconfigure(config: pytest.Config) -> None:
    logging.getLogger().removeHandler(_handler)


@pytest.fixture(autouse=True)
def _no_personal_data_in_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test when something it made dispatch log holds an email address or phone number."""
    _handler.current = request.node.nodeid
    yield
    _handler.current = None
    found = _handler.take(request.node.nodeid)
    if found:
        lines = "\n".join(f"  {name}: {text[:300]}" for name, text in found)
        pytest.fail(f"personal data (email address or phone number) in the logs:\n{lines}", pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stray = _handler.take(None)
    if stray:
        lines = "\n".join(f"  {name}: {text[:300]}" for name, text in stray)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"personal data in logs written outside any test:\n{lines}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
