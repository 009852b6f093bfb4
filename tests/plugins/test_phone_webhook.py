"""The phone channel's CRM webhook against a local HTTP server, and its idempotent task list."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from datetime import UTC, datetime, timedelta

import pytest

from dispatch.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from dispatch_phone.webhook import verify_signature

SECRET = "crm-shared-secret-åäö"
SCRIPT = "Hei, soitan Pohjolan Energiasta sopimuksenne uusimisesta."


def phone_settings(url: str, **extra) -> dict:
    return {"webhook_url": f"{url}/hooks/call-tasks", "webhook_secret": SECRET, "webhook_timeout": 5.0, **extra}


def call(outgoing, **fields):
    values = {
        "message_type": "renewal_offer",
        "category": "service",
        "send_after": datetime(2027, 3, 2, 7, tzinfo=UTC),
        "deadline": datetime(2027, 3, 3, 18, tzinfo=UTC),
    }
    values.update(fields)
    return outgoing("phone", "+358401234567", {"script": SCRIPT}, **values)


def task_lines(tmp_path) -> list[dict]:
    path = tmp_path / "outbox" / "phone" / "tasks.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_task_is_posted_as_signed_json(http_stub, make_dispatcher, outgoing, run_delivery, tmp_path):
    d = make_dispatcher({"phone": phone_settings(http_stub.url)})
    message = call(outgoing)

    result = run_delivery(d, "phone", message)

    [request] = http_stub.requests
    assert request.path == "/hooks/call-tasks"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["Idempotency-Key"] == message.id
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Dispatch-Signature"] == expected
    assert verify_signature(request.body, request.headers["X-Dispatch-Signature"], SECRET)
    assert not verify_signature(request.body + b" ", request.headers["X-Dispatch-Signature"], SECRET)
    assert not verify_signature(request.body, expected, "another secret")

    task = request.json()
    assert task == task_lines(tmp_path)[0]
    assert task["id"] == message.id and task["phone"] == "+358401234567"
    assert task["script"] == SCRIPT and task["reason"] == "renewal"
    assert task["send_after"] == "2027-03-02T07:00:00+00:00"
    assert task["due"] == "2027-03-03T18:00:00+00:00"  # the deadline comes before send_after + 72 h
    assert result.detail["webhook_status"] == 200
    assert result.provider_id == f"tasks.jsonl:{message.id}"


def test_without_a_secret_there_is_no_signature(http_stub, make_dispatcher, outgoing, run_delivery):
    d = make_dispatcher({"phone": phone_settings(http_stub.url, webhook_secret=None)})
    run_delivery(d, "phone", call(outgoing))
    assert "X-Dispatch-Signature" not in http_stub.requests[0].headers


def test_retry_after_a_500_posts_again_without_a_second_task_line(
    http_stub, make_dispatcher, outgoing, run_delivery, tmp_path
):
    http_stub.reply(500, {"error": "database is down"})
    d = make_dispatcher({"phone": phone_settings(http_stub.url)})
    message = call(outgoing)

    with pytest.raises(TransientDeliveryError) as caught:
        run_delivery(d, "phone", message)
    assert type(caught.value) is TransientDeliveryError and caught.value.code == "500"
    assert "database is down" in str(caught.value)

    result = run_delivery(d, "phone", message)  # the queue's retry, with the same message id
    assert result.detail["webhook_status"] == 200
    assert result.detail["added"] is False
    assert [t["id"] for t in task_lines(tmp_path)] == [message.id]
    first, second = http_stub.requests
    assert first.body == second.body  # the same task, so the same signature
    assert first.headers["X-Dispatch-Signature"] == second.headers["X-Dispatch-Signature"]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, PermanentDeliveryError),
        (404, PermanentDeliveryError),
        (422, PermanentDeliveryError),
        (302, PermanentDeliveryError),
        (429, TransientDeliveryError),
        (502, TransientDeliveryError),
        (503, TransientDeliveryError),
    ],
)
def test_answers_map_to_permanent_or_transient(http_stub, make_dispatcher, outgoing, run_delivery, status, error):
    http_stub.reply(status, {"error": "no"})
    d = make_dispatcher({"phone": phone_settings(http_stub.url)})
    with pytest.raises(error) as caught:
        run_delivery(d, "phone", call(outgoing))
    assert type(caught.value) is error
    assert caught.value.code == str(status)
    assert len(http_stub.requests) == 1  # a redirect is not followed


def test_timeout_is_transient(http_stub, make_dispatcher, outgoing, run_delivery):
    http_stub.reply(200, {}, delay=1.5)
    d = make_dispatcher({"phone": phone_settings(http_stub.url, webhook_timeout=0.2)})
    with pytest.raises(TransientDeliveryError) as caught:
        run_delivery(d, "phone", call(outgoing))
    assert type(caught.value) is TransientDeliveryError and caught.value.code == "timeout"


def test_connection_refused_is_transient(make_dispatcher, outgoing, run_delivery):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    d = make_dispatcher({"phone": phone_settings(f"http://127.0.0.1:{port}")})
    with pytest.raises(TransientDeliveryError) as caught:
        run_delivery(d, "phone", call(outgoing))
    assert type(caught.value) is TransientDeliveryError and caught.value.code == "connection"


def test_redelivery_by_another_worker_process_adds_no_second_line(
    http_stub, make_dispatcher, outgoing, run_delivery, tmp_path
):
    # Two dispatchers sharing the outbox stand for two worker processes.
    first, second = make_dispatcher({"phone": {}}), make_dispatcher({"phone": {}})
    messages = [call(outgoing) for _ in range(3)]
    run_delivery(first, "phone", messages[0])
    run_delivery(second, "phone", messages[1])
    run_delivery(first, "phone", messages[1])  # a redelivery after the other worker crashed
    run_delivery(second, "phone", messages[0])
    run_delivery(first, "phone", messages[2])
    run_delivery(second, "phone", messages[2])
    assert [t["id"] for t in task_lines(tmp_path)] == [m.id for m in messages]


def test_due_time_is_the_window_plus_due_hours_without_a_deadline(make_dispatcher, outgoing, run_delivery, tmp_path):
    d = make_dispatcher({"phone": {"due_hours": 48}})
    opens = datetime(2027, 3, 2, 7, tzinfo=UTC)
    run_delivery(d, "phone", call(outgoing, send_after=opens, deadline=None))
    assert task_lines(tmp_path)[0]["due"] == (opens + timedelta(hours=48)).isoformat()


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://crm.example.fi/tasks", "crm.example.fi/tasks"])
def test_webhook_url_must_be_http(make_dispatcher, url):
    with pytest.raises(ConfigError, match="webhook_url"):
        make_dispatcher({"phone": {"webhook_url": url}})


def test_a_call_task_carries_its_calling_window(make_dispatcher, tmp_path):
    import json
    from datetime import UTC, datetime

    from dispatch.samples import sample_data, sample_recipient

    d = make_dispatcher()
    # An active Swedish customer: exempt from NIX-Telefon, so no register needs to be loaded.
    person = sample_recipient("sv", "SE") | {
        "id": "CALL-1",
        "status": "active",
        "preferred_channels": {"marketing": "phone"},
        "consents": [{"purpose": "marketing", "channel": "phone", "granted": True, "at": "2026-01-01"}],
    }
    friday_evening = datetime(2026, 3, 6, 19, 30, tzinfo=UTC)  # 20:30 in Stockholm: after calling hours
    receipt = d.dispatch("marketing", person, sample_data("marketing", "SE"), now=friday_evening)
    assert receipt.allowed and receipt.channel == "phone", receipt.reasons
    start, end = receipt.calling_window
    assert start == receipt.send_after and start.weekday() == 0 and start < end  # Monday morning
    d.join(30)
    [task] = [json.loads(line) for line in (tmp_path / "outbox" / "phone" / "tasks.jsonl").read_text().splitlines()]
    assert task["calling_window"]["start"] == receipt.calling_window[0].isoformat()
    assert task["calling_window"]["end"] == receipt.calling_window[1].isoformat()
