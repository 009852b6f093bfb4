"""A statutory email that bounces at a real SMTP server goes out again as a letter."""

from __future__ import annotations

import email
from email import policy

from dispatch.samples import sample_data, sample_recipient


def test_a_statutory_bounce_becomes_a_letter_and_a_marketing_bounce_does_not(make_dispatcher, smtp_server, tmp_path):
    d = make_dispatcher(
        {"email": {"host": "127.0.0.1", "port": smtp_server.port, "pool_size": 1}},
        links={"secret": "t", "base_url": "https://energia.example.fi/d"},
    )
    notice = {**sample_recipient("fi", "FI"), "id": "B-1", "email": "rcpt550.matti@example.fi"}
    # Its own rejected address: with B-1's, the embedded worker could list it (B-1 bounced) before B-2 is decided.
    offer = {**notice, "id": "B-2", "email": "rcpt550.anna@example.fi"}
    ok = {**notice, "id": "B-3", "email": "matti@example.fi"}
    d.dispatch("price_change", notice, sample_data("price_change"))
    d.dispatch("marketing", offer, sample_data("marketing"))
    d.dispatch("price_change", ok, sample_data("price_change"))
    assert d.join(60) and d.join(60)
    bounced = {m["channel"]: m for m in d.store.messages_for("B-1")}
    assert bounced["email"]["status"] == "fallback" and "550" in bounced["email"]["error"]
    assert bounced["letter"]["status"] == "sent" and bounced["letter"]["fallback_of"] == bounced["email"]["id"]
    assert (tmp_path / "outbox" / "letter" / f"{bounced['letter']['id']}.pdf").is_file()
    [attempt] = d.store.attempts_for([bounced["email"]["id"]])[bounced["email"]["id"]]
    assert attempt["outcome"] == "permanent" and attempt["detail"]["code"] == "550"
    assert [m["channel"] for m in d.store.messages_for("B-2")] == ["email"]  # marketing is not chased by letter
    assert d.store.messages_for("B-2")[0]["status"] == "failed"
    [received] = smtp_server.handler.messages
    parsed = email.message_from_bytes(received.data, policy=policy.default)
    assert parsed["To"] == "matti@example.fi" and parsed["Content-Language"] == "fi"
