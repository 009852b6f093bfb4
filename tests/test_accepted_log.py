"""The accepted-outcome log: what a provider took survives a SIGKILL of the worker and is never sent again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dispatch.journal import AcceptedLog, OutcomeJournal, StoreHealth
from dispatch.lifecycle import Lifecycle, Status
from dispatch.samples import sample_data, sample_recipient
from dispatch.store import Outcome

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)


def outcome(message_id: str, target: Status = Status.SENT, attempt: int = 1) -> Outcome:
    return Outcome(message_id, attempt, target, NOW, NOW + timedelta(seconds=1), "provider accepted", channel="email")


def test_a_killed_process_leaves_its_accepted_outcomes_and_a_live_ones_are_left_alone(tmp_path: Path):
    folder = tmp_path / "journal"
    script = (
        "import os, signal, sys\n"
        "from datetime import UTC, datetime\n"
        "from dispatch.journal import AcceptedLog\n"
        "from dispatch.lifecycle import Lifecycle, Status\n"
        "from dispatch.store import Outcome\n"
        "log = AcceptedLog(__import__('pathlib').Path(sys.argv[1]))\n"
        "now = datetime(2027, 1, 11, tzinfo=UTC)\n"
        "log.note('w1', [Outcome(f'M{i}', 1, Status.SENT, now, now, 'ok') for i in range(3)])\n"
        "log.note('w1', [Outcome('F', 1, Status.FAILED, now, now, 'no')])\n"  # not accepted: not logged
        "log.committed([Outcome('M0', 1, Status.SENT, now, now, 'ok')])\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(folder)], timeout=120)
    assert done.returncode == -signal.SIGKILL
    [left] = folder.glob("accepted-*.log")
    lines = [json.loads(line) for line in left.read_text().splitlines()]
    # M0 was committed, but the file is append-only until it rotates: recovery asks the store.
    assert [(e["worker"], e["outcome"]["message_id"]) for e in lines] == [("w1", "M0"), ("w1", "M1"), ("w1", "M2")]

    live = AcceptedLog(folder)
    live.note("w2", [outcome("L1")])  # this process's own file, locked while it lives

    class Store:
        def open_message_ids(self, ids):
            return {i for i in ids if i != "M1"}  # M1 was recorded before the kill

    journal = OutcomeJournal(folder, StoreHealth())
    reader = AcceptedLog(folder)
    assert reader.recover(journal, Store()) == 2
    assert sorted(o.message_id for _w, o in journal._pending) == ["M0", "M2"]
    assert not left.exists()
    assert [p.name for p in folder.glob("accepted-*.log")] == [live._path.name]  # the live one stays
    live.close()
    assert live._path.exists()  # L1 was never committed: kept for the next worker
    assert reader.recover(OutcomeJournal(folder, StoreHealth()), Store()) == 1


def test_the_log_keeps_only_what_is_uncommitted_when_it_rotates(tmp_path: Path):
    log = AcceptedLog(tmp_path)
    log.ROTATE_AT = 2000
    for n in range(40):
        log.note("w", [outcome(f"A{n}")])
        if n != 7:
            log.committed([outcome(f"A{n}")])
    [path] = tmp_path.glob("accepted-*.log")
    kept = [json.loads(line)["outcome"]["message_id"] for line in path.read_text().splitlines()]
    assert "A7" in kept and len(kept) < 20
    log.committed([outcome("A7")])
    log.close()
    assert not tmp_path.exists()  # nothing uncommitted: the file and the empty folder are gone


def test_a_worker_killed_after_the_provider_took_a_message_never_sends_it_again(make_dispatcher, tmp_path, redis_url):
    """End to end on the store: the claim is still the dead worker's; recovery records it as sent."""
    d = make_dispatcher({"broker": {"url": redis_url}})  # no worker in this process
    person = sample_recipient("fi", "FI")
    receipt = d.dispatch("price_change", person, sample_data("price_change"), now=NOW)
    store = d.store
    [claim] = store.claim([receipt.message_id], "dead-worker", datetime.now(UTC), timedelta(seconds=30))
    dead = AcceptedLog(tmp_path / "journal")
    dead.note("dead-worker", [outcome(claim.id, attempt=claim.attempts)])
    os.close(dead._fd)  # as the kernel does for a killed process: the lock goes with it
    dead._fd = None
    journal = OutcomeJournal(tmp_path / "journal", StoreHealth())
    assert AcceptedLog(tmp_path / "journal").recover(journal, store) == 1
    assert journal.flush(store, Lifecycle()) == 1
    assert store.message(receipt.message_id, content=False)["status"] == "sent"
    assert store.open_message_ids([receipt.message_id]) == set()
