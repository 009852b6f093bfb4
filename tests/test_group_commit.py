"""Group commit: the outcomes of many delivery threads reach the store together, each exactly once."""

from __future__ import annotations

import threading

import pytest

from dispatch.group_commit import GroupCommit


class Recorder:
    def __init__(self, fail_when=None) -> None:
        self.writes: list[list[int]] = []
        self.lock = threading.Lock()
        self.fail_when = fail_when

    def __call__(self, items: list[int]) -> None:
        if self.fail_when and self.fail_when(items):
            raise RuntimeError("the store refused")
        with self.lock:
            self.writes.append(list(items))


def run_threads(count: int, target) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def body(index: int) -> None:
        start.wait()
        try:
            target(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive(), "a writer never returned"
    return errors


def test_concurrent_writers_share_writes_and_every_item_is_written_once():
    recorder = Recorder()
    group = GroupCommit(recorder, wait=0.05, limit=10_000)
    returned: list[int] = []

    def writer(index: int) -> None:
        for round_ in range(20):
            items = [index * 1000 + round_ * 10 + k for k in range(3)]
            group.write(items)
            # Returning means written: each of this caller's items is in a write already.
            with recorder.lock:
                written = {item for write in recorder.writes for item in write}
            assert set(items) <= written
            returned.extend(items)

    assert run_threads(16, writer) == []
    everything = [item for write in recorder.writes for item in write]
    assert sorted(everything) == sorted(returned) and len(everything) == 16 * 20 * 3
    assert len(set(everything)) == len(everything)  # none twice
    assert len(recorder.writes) < 16 * 20  # calls were joined into fewer writes
    assert (group.writes, group.written) == (len(recorder.writes), len(everything))


def test_a_write_never_carries_more_than_the_limit_unless_one_caller_hands_over_more():
    recorder = Recorder()
    group = GroupCommit(recorder, wait=0.05, limit=10)
    assert run_threads(8, lambda i: group.write([i * 100 + k for k in range(4)])) == []
    assert all(len(write) <= 10 for write in recorder.writes)
    group.write(list(range(25)))
    assert recorder.writes[-1] == list(range(25))


def test_every_caller_of_a_failed_write_gets_its_error_and_later_writes_go_on():
    recorder = Recorder(fail_when=lambda items: any(item < 0 for item in items))
    group = GroupCommit(recorder, wait=0.2, limit=10_000)
    errors = run_threads(4, lambda i: group.write([-1] if i == 0 else [i]))
    # Whoever shared the failing write learns of it; nobody returns believing a failed write stored it.
    written = {item for write in recorder.writes for item in write}
    assert len(errors) + len(written) == 4 and errors
    assert all(isinstance(e, RuntimeError) for e in errors)
    group.write([7])
    assert recorder.writes[-1] == [7]


def test_a_lone_writer_does_not_wait_for_company():
    waited = threading.Event()

    def write_all(items):
        waited.set()

    group = GroupCommit(write_all, wait=3600, limit=100)
    done = threading.Thread(target=group.write, args=([1],), kwargs={"gather": False})
    done.start()
    done.join(30)
    assert not done.is_alive() and waited.is_set()


def test_nothing_to_write_is_not_a_write():
    recorder = Recorder()
    group = GroupCommit(recorder)
    group.write([])
    assert recorder.writes == [] and group.writes == 0


@pytest.mark.parametrize("wait", [0.0, 0.01])
def test_the_lead_passes_on_so_no_caller_is_stranded(wait):
    recorder = Recorder()
    group = GroupCommit(recorder, wait=wait, limit=2)  # small limit: many hand-overs
    assert run_threads(12, lambda i: [group.write([i, -i - 100]) for _ in range(10)]) == []
    assert sum(len(w) for w in recorder.writes) == 12 * 10 * 2


def test_a_leader_interrupted_while_gathering_wakes_everyone_and_passes_the_lead_on():
    recorder = Recorder()
    group = GroupCommit(recorder, wait=0.2, limit=10_000)
    calls = {"n": 0}
    real_gather = group._gather

    def interrupted_once():
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # as an asynchronous exception would, mid-wait
        real_gather()

    group._gather = interrupted_once
    errors = run_threads(6, lambda i: group.write([i]))
    assert len(errors) == 1 and isinstance(errors[0], KeyboardInterrupt)  # only the leader's own call
    written = sorted(item for write in recorder.writes for item in write)
    assert len(written) == 5  # everyone else's items were written by the next leader
    group.write([99])
    assert recorder.writes[-1] == [99]
