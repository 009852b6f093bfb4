"""Digital mailboxes (SPEC §6): letters go to Kivra / Digipost / OmaPosti first and to paper otherwise.

The providers are real local HTTP servers that behave as their documentation says
(tests/peers/): authentication, status codes, error bodies, request signatures.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from peers.digipost import DigipostState, digipost_app
from peers.kivra import KivraState, kivra_app
from web_helpers import LiveServer

from dispatch import hookimpl
from dispatch.errors import ConfigError
from dispatch.history import person_history
from dispatch.mailboxes import person_key
from dispatch.samples import sample_data

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
SE_ID = "198803200016"
SE_OTHER = "197010632391"  # a samordningsnummer
NO_ID = "15108695088"
NO_D = "41018036736"  # a D-nummer


def _se(pid: str = "C-2001", national_id: str | None = SE_ID, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "country": "SE",
        "language": "sv",
        "status": "active",
        "national_id": national_id,
        "address": {"name": "Sven Svensson", "street": "Storgatan 1", "postal_code": "11122", "city": "Stockholm"},
        "preferred_channels": {"default": "letter"},
        **extra,
    }


def _no(pid: str = "C-3001", national_id: str = NO_ID) -> dict[str, Any]:
    return {
        "id": pid,
        "country": "NO",
        "language": "nb",
        "status": "active",
        "national_id": national_id,
        "address": {"name": "Kari Nordmann", "street": "Storgata 12", "postal_code": "0155", "city": "Oslo"},
        "preferred_channels": {"default": "letter"},
    }


@pytest.fixture
def kivra():
    state = KivraState(accepting={SE_ID})
    server = LiveServer(kivra_app(state)).start()
    yield state, server.base
    server.stop()


@pytest.fixture
def digipost(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "digipost-key.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    state = DigipostState(sender_id=123456, public_key=key.public_key(), mailboxes={NO_ID})
    server = LiveServer(digipost_app(state)).start()
    yield state, server.base, pem
    server.stop()


class Events:
    """Collects every event (SPEC §10) the dispatcher emits."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    @hookimpl
    def dispatch_event(self, event):
        self.seen.append(event)


def _dispatcher(make_dispatcher, kivra=None, digipost=None, order=None, store=None, **extra):
    channels: dict[str, Any] = {"letter": {"digital_first": order or {"SE": ["kivra"], "NO": ["digipost"]}}}
    if kivra is not None:
        state, base = kivra
        channels["kivra"] = {
            "base_url": base,
            "client_id": state.client_id,
            "client_secret": state.client_secret,
            "tenant_key": state.tenant_key,
        }
    if digipost is not None:
        state, base, pem = digipost
        channels["digipost"] = {"base_url": base, "sender_id": state.sender_id, "private_key": str(pem)}
    channels.update(extra.pop("channels", {}))
    return make_dispatcher({"channels": channels, **({"store": store} if store else {})}, **extra)


def _attempt(d, message_id: str) -> dict[str, Any]:
    return d.store.attempts_for([message_id])[message_id][-1]


def _send(d, person, message_type="price_change", now=NOW):
    receipt = d.dispatch(message_type, person, sample_data(message_type, person["country"]), now=now)
    assert receipt.status == "queued", receipt.reasons
    assert d.join(timeout=120)
    return receipt


def _paper_pdfs(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "outbox" / "letter").glob("*.pdf"))


def test_a_letter_goes_to_kivra_when_the_person_accepts_the_sender(make_dispatcher, kivra, tmp_path):
    events = Events()
    d = _dispatcher(make_dispatcher, kivra, plugins=[events])
    receipt = _send(d, _se())
    assert receipt.channel == "letter"
    assert receipt.notes["letter_route"].startswith("digital mailbox first: kivra")
    row = d.store.message(receipt.message_id)
    assert row["status"] == "delivered"  # Kivra's 201 puts it in the mailbox: that is the receipt
    assert _attempt(d, receipt.message_id)["detail"]["route"] == "kivra"
    state, _base = kivra
    assert len(state.received) == 1
    sent = state.received[0]
    assert sent["ssn"] == SE_ID and sent["type"] == "letter"
    assert sent["pdf"].startswith(b"%PDF") and sent["subject"]  # the letter's own PDF, its heading as subject
    assert _paper_pdfs(tmp_path) == []  # nothing printed
    # Events and webhooks carry ids and codes, never the number.
    assert any(e.type == "message.delivered" for e in events.seen)
    assert SE_ID not in json.dumps([e.data for e in events.seen], default=str)
    # History shows where it went but masks the number.
    shown = json.dumps(person_history(d.store, "C-2001"), default=str, ensure_ascii=False)
    assert SE_ID not in shown and "kivra" in shown


def test_no_mailbox_means_paper_in_the_same_message(make_dispatcher, kivra, tmp_path):
    d = _dispatcher(make_dispatcher, kivra)
    receipt = _send(d, _se("C-2002", SE_OTHER))
    assert d.store.message(receipt.message_id)["status"] == "sent"
    detail = _attempt(d, receipt.message_id)["detail"]
    assert detail["route"] == "paper" and detail["tried"] == ["kivra: no mailbox"]
    assert [p.stem for p in _paper_pdfs(tmp_path)] == [receipt.message_id]
    assert kivra[0].received == []


def test_a_providers_refusal_falls_back_to_paper_within_the_message(make_dispatcher, kivra, tmp_path):
    state, _ = kivra
    state.rejecting.add(SE_ID)  # usermatch still lists the person, the send is refused (40105)
    d = _dispatcher(make_dispatcher, kivra)
    receipt = _send(d, _se())
    messages = d.store.messages_for("C-2001")
    assert [m["id"] for m in messages] == [receipt.message_id]  # one message
    assert messages[0]["status"] == "sent"
    steps = [t["target"] for t in d.store.transitions_for([receipt.message_id])[receipt.message_id]]
    assert steps == ["sending", "sent"]
    assert _attempt(d, receipt.message_id)["detail"]["tried"] == ["kivra: refused kivra_40105"]
    assert [p.stem for p in _paper_pdfs(tmp_path)] == [receipt.message_id]
    key = person_key(d.signing_key("mailbox"), "SE", SE_ID)
    assert d.store.mailbox_eligibility("kivra", [key])[key][0] is False  # remembered until the TTL runs out


def test_paper_by_choice_wins_and_no_lookup_is_made(make_dispatcher, kivra, tmp_path):
    d = _dispatcher(make_dispatcher, kivra)
    d.consents.record("C-2001", "paper_letters", True, channel="letter", at=NOW - timedelta(days=1), source="web_form")
    receipt = _send(d, _se())
    assert receipt.notes["letter_route"] == "paper: the customer chose paper letters"
    assert kivra[0].usermatch_calls == 0 and kivra[0].received == []
    assert [p.stem for p in _paper_pdfs(tmp_path)] == [receipt.message_id]


def test_without_a_national_id_or_configuration_letters_stay_on_paper(make_dispatcher, kivra):
    d = _dispatcher(make_dispatcher, kivra)
    decision = d.decide("price_change", _se(national_id=None), sample_data("price_change", "SE"), now=NOW)
    assert decision.notes["letter_route"] == "paper: no national_id to address a digital mailbox"
    plain = make_dispatcher({"channels": {"letter": {"digital_first": {"SE": ["kivra"]}}}})
    decision = plain.decide("price_change", _se(), sample_data("price_change", "SE"), now=NOW)
    assert decision.notes["letter_route"] == "paper: no digital mailbox provider configured for SE"
    off = make_dispatcher()
    assert "letter_route" not in off.decide("price_change", _se(), sample_data("price_change", "SE"), now=NOW).notes


def test_marketing_goes_to_a_mailbox_only_with_consent_for_it(make_dispatcher, kivra):
    d = _dispatcher(make_dispatcher, kivra)
    person = _se(preferred_channels={"marketing": "letter", "default": "letter"})
    data = sample_data("marketing", "SE")
    without = d.decide("marketing", person, data, now=NOW)
    if not without.allowed:
        pytest.skip(f"marketing letters are held here for other reasons: {without.reasons}")
    assert without.notes["letter_route"] == "paper: no marketing consent for a digital mailbox"
    consented = {
        **person,
        "consents": [{"purpose": "marketing", "channel": "kivra", "granted": True, "at": "2026-06-01"}],
    }
    assert (
        d.decide("marketing", consented, data, now=NOW).notes["letter_route"].startswith("digital mailbox first: kivra")
    )


def test_eligibility_is_cached_for_the_ttl_and_looked_up_again_after(make_dispatcher, kivra):
    state, _ = kivra
    d = _dispatcher(make_dispatcher, kivra)
    _send(d, _se())
    _send(d, _se(), now=NOW + timedelta(minutes=5))
    assert state.usermatch_calls == 1  # the second letter used the cached answer
    assert len(state.received) == 2
    # The decision says what the cache knows.
    decision = d.decide("price_change", _se(), sample_data("price_change", "SE"), now=datetime.now(UTC))
    assert decision.notes["letter_route"].endswith("(kivra mailbox: yes, as last looked up)")
    # Once the answer is older than the TTL, the person is looked up again.
    key = person_key(d.signing_key("mailbox"), "SE", SE_ID)
    d.store.record_mailbox_eligibility("kivra", {key: True}, datetime.now(UTC) - timedelta(hours=25))
    _send(d, _se(), now=NOW + timedelta(minutes=10))
    assert state.usermatch_calls == 2


def test_bulk_refresh_looks_many_people_up_in_one_call(make_dispatcher, kivra):
    state, _ = kivra
    d = _dispatcher(make_dispatcher, kivra)
    people = [("SE", SE_ID), ("SE", SE_OTHER)] + [("SE", f"19900101{n:04d}") for n in range(40)]
    calls = asyncio.run(d.digital_first.refresh("kivra", people))
    assert calls == 1 and state.usermatch_calls == 1 and state.usermatch_numbers == 42
    assert asyncio.run(d.digital_first.refresh("kivra", people)) == 0  # all fresh in the cache


def test_a_kivra_outage_keeps_the_letter_waiting_instead_of_printing_it(make_dispatcher, kivra, tmp_path):
    state, _ = kivra
    state.fail_next = [503]
    d = _dispatcher(make_dispatcher, kivra)
    receipt = _send(d, _se())
    assert d.store.message(receipt.message_id)["status"] == "delivered"
    attempts = d.store.attempts_for([receipt.message_id])[receipt.message_id]
    assert [a["detail"].get("code") for a in attempts] == ["kivra_50300", None]  # tried again, then delivered
    assert _paper_pdfs(tmp_path) == []


def test_wrong_kivra_credentials_never_print_nor_deliver(make_dispatcher, kivra, tmp_path):
    state, base = kivra
    d = _dispatcher(make_dispatcher, (KivraState(client_secret="wrong", tenant_key=state.tenant_key), base))
    receipt = d.dispatch("price_change", _se(), sample_data("price_change", "SE"), now=NOW)
    d.join(timeout=120)
    row = d.store.message(receipt.message_id)
    assert row["status"] in ("queued", "dead")
    assert "kivra_40104" in (row.get("error") or json.dumps(d.store.attempts_for([receipt.message_id]), default=str))
    assert state.received == [] and _paper_pdfs(tmp_path) == []


def test_a_letter_goes_to_digipost_signed_and_a_d_number_without_mailbox_to_paper(make_dispatcher, digipost, tmp_path):
    state, _base, _pem = digipost
    d = _dispatcher(make_dispatcher, digipost=digipost)
    first = _send(d, _no())
    assert d.store.message(first.message_id)["status"] == "delivered"
    assert _attempt(d, first.message_id)["detail"]["route"] == "digipost"
    assert state.received[0]["message_id"] == first.message_id and state.received[0]["pdf"].startswith(b"%PDF")
    second = _send(d, _no("C-3002", NO_D))
    assert _attempt(d, second.message_id)["detail"]["tried"] == ["digipost: no mailbox"]
    assert [p.stem for p in _paper_pdfs(tmp_path)] == [second.message_id]
    assert state.identifications == 2
    channel = d.channels["digipost"]
    assert asyncio.run(channel.document_status(first.message_id)) == "DELIVERED"


def test_a_bad_digipost_signature_is_refused_by_the_peer(make_dispatcher, digipost, tmp_path):
    state, base, _pem = digipost
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wrong = tmp_path / "wrong.pem"
    wrong.write_bytes(
        other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    d = _dispatcher(make_dispatcher, digipost=(state, base, wrong))
    receipt = d.dispatch("price_change", _no(), sample_data("price_change", "NO"), now=NOW)
    d.join(timeout=120)
    attempts = d.store.attempts_for([receipt.message_id])[receipt.message_id]
    assert attempts and all(a["detail"].get("code") == "digipost_INVALID_SIGNATURE" for a in attempts)
    assert state.received == [] and _paper_pdfs(tmp_path) == []


def test_omaposti_takes_finnish_letters_kivra_does_not(make_dispatcher, kivra, tmp_path):
    fi = {
        "id": "C-1101",
        "country": "FI",
        "language": "fi",
        "status": "active",
        "national_id": "131052-308T",
        "address": {"name": "Matti Meikäläinen", "street": "Katu 1", "postal_code": "00100", "city": "Helsinki"},
        "preferred_channels": {"default": "letter"},
    }
    d = _dispatcher(
        make_dispatcher,
        kivra,
        order={"FI": ["kivra", "omaposti"]},
        channels={"omaposti": {"dropbox": str(tmp_path / "ipost"), "sender_ovt": "003712345678"}},
    )
    receipt = _send(d, fi)
    detail = _attempt(d, receipt.message_id)["detail"]
    assert detail["route"] == "omaposti" and detail["tried"] == ["kivra: no mailbox"]
    assert (tmp_path / "ipost" / f"{receipt.message_id}.pdf").read_bytes().startswith(b"%PDF")
    meta = (tmp_path / "ipost" / f"{receipt.message_id}.xml").read_text()
    assert "131052-308T" in meta and "003712345678" in meta
    assert _paper_pdfs(tmp_path) == []


def test_digital_first_names_only_installed_providers_for_their_countries(make_dispatcher):
    with pytest.raises(ConfigError, match="not a digital mailbox provider"):
        make_dispatcher({"channels": {"letter": {"digital_first": {"SE": ["email"]}}}})
    with pytest.raises(ConfigError, match="does not serve NO"):
        make_dispatcher({"channels": {"letter": {"digital_first": {"NO": ["kivra"]}}}})


def test_a_campaign_looks_each_person_up_at_most_once_per_ttl(make_dispatcher, kivra):
    """bench_digital's count at test scale: 1,200 letters to 300 people, asked all at once."""
    state, _ = kivra
    numbers = [f"19{n}" for n in _numbers(300)]
    state.accepting = set(numbers[::2])
    d = _dispatcher(make_dispatcher, kivra)
    router = d.digital_first

    async def campaign() -> list[bool | None]:
        try:
            return await asyncio.gather(*(router.eligible("kivra", "SE", numbers[i % 300]) for i in range(1200)))
        finally:
            await d.channels["kivra"].aclose()

    answers = asyncio.run(campaign())
    assert answers[:4] == [True, False, True, False]
    assert router.people_looked_up["kivra"] == 300  # not 1,200: concurrent asks for one person share a look-up
    assert state.usermatch_numbers == 300
    asyncio.run(campaign())  # the same campaign again within the TTL
    assert state.usermatch_numbers == 300


def _numbers(count: int) -> list[str]:
    """``count`` distinct valid personnummer (ten digits), born in 1980."""
    from stdnum import luhn

    out = []
    for i in range(count):
        base = f"80{1 + i // 280 % 12:02d}{1 + i // 10 % 28:02d}{i % 10:03d}"
        out.append(base + luhn.calc_check_digit(base))
    assert len(set(out)) == count
    return out


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_digipost_receipts_move_a_taken_letter_to_delivered(request, make_dispatcher, digipost, backend):
    state, _base, _pem = digipost
    state.pending.add(NO_ID)
    store = {"store": {"url": request.getfixturevalue("postgres_url")}} if backend == "postgres" else {}
    d = _dispatcher(make_dispatcher, digipost=digipost, **store)
    receipt = _send(d, _no())
    assert d.store.message(receipt.message_id)["status"] == "sent"  # taken, not yet in the mailbox

    async def ask() -> int:
        try:
            return await d.digital_first.receipts(d.handle_feedback)
        finally:
            await d.channels["digipost"].aclose()

    assert asyncio.run(ask()) == 0  # NOT_DELIVERED yet: nothing changes
    assert d.store.message(receipt.message_id)["status"] == "sent"
    document = state.received[0]["uuid"]
    state.documents[document] = "DELIVERED"
    assert asyncio.run(ask()) == 1
    assert d.store.message(receipt.message_id)["status"] == "delivered"
    assert asyncio.run(ask()) == 0  # nothing left to ask about


def test_a_returned_postal_address_still_lets_a_mailbox_take_the_letter_but_never_prints(make_dispatcher, kivra):
    d = _dispatcher(make_dispatcher, kivra)
    with_mailbox, without = _se(), _se("C-2002", SE_OTHER, email="sven@example.se")
    for person in (with_mailbox, without):
        address = {**person["address"], "country": "SE"}  # as the letter channel holds it
        d.store.suppress("letter", address, "returned_mail", NOW - timedelta(days=3))
    digital = _send(d, with_mailbox)
    assert d.store.message(digital.message_id)["status"] == "delivered"
    assert _attempt(d, digital.message_id)["detail"]["route"] == "kivra"
    paper = _send(d, without)
    assert d.join(timeout=120)
    row = d.store.message(paper.message_id)
    assert row["status"] == "fallback"  # failed (address_suppressed), then re-sent by email
    assert _attempt(d, paper.message_id)["detail"]["code"] == "address_suppressed"
    assert [m["channel"] for m in d.store.messages_for("C-2002") if m["fallback_of"] == paper.message_id] == ["email"]


def test_the_demo_says_how_many_letters_went_digital_and_what_paper_costs(tmp_path):
    import subprocess
    import sys

    state = KivraState(accept_all=True)
    server = LiveServer(kivra_app(state)).start()
    try:
        (tmp_path / "dispatch.toml").write_text(
            "[channels.letter]\n"
            'digital_first = { SE = ["kivra"] }\n'
            "postage = { FI = 1.95, SE = 22.0, NO = 25.0 }\n"
            "[channels.kivra]\n"
            f'base_url = "{server.base}"\nclient_id = "{state.client_id}"\n'
            f'client_secret = "{state.client_secret}"\ntenant_key = "{state.tenant_key}"\n',
            encoding="utf-8",
        )
        result = subprocess.run(
            [str(Path(sys.executable).with_name("dispatch")), "demo", "--customers", "150"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("Letters:"))
    went = int(line.split()[1])
    assert went == len(state.received) > 0 and "(kivra" in line
    assert f"the {went} digital ones would have cost {went * 22.0:.2f} SEK on paper" in result.stdout


def test_the_preference_centre_records_and_shows_the_paper_letters_choice():
    from dispatch.models import Consent
    from dispatch.recipients import parse_recipient
    from dispatch.web.preferences import changes_from_form, current_preferences

    person = parse_recipient(_se())
    offered = {"usable": lambda c: True, "notice_order": ("email", "letter"), "now": NOW}
    hidden = current_preferences(person, (), **offered)
    assert hidden.paper_letters is None  # not offered without digital mailboxes
    assert changes_from_form(hidden, {"survey": ["on"]}, ()) == changes_from_form(hidden, {"survey": ["on"]}, ())
    with pytest.raises(Exception, match="form"):
        changes_from_form(hidden, {"paper_letters": ["on"]}, ())
    before = current_preferences(person, (), offer_paper=True, **offered)
    assert before.paper_letters is False
    ticked = changes_from_form(before, {"paper_letters": ["on"], "survey": ["on"]}, ())
    paper = [(c.purpose, c.channel, c.granted) for c in ticked if c.purpose == "paper_letters"]
    assert paper == [("paper_letters", "letter", True)]
    chosen = (Consent("paper_letters", "letter", True, NOW - timedelta(days=1), "preference_centre"),)
    after = current_preferences(person, chosen, offer_paper=True, **offered)
    assert after.paper_letters is True
    cleared = changes_from_form(after, {"survey": ["on"]}, ())
    assert [(c.purpose, c.granted) for c in cleared if c.purpose == "paper_letters"] == [("paper_letters", False)]
    with pytest.raises(Exception, match="form"):
        changes_from_form(before, {"paper_letters": ["yes"]}, ())


@pytest.mark.parametrize(
    ("language", "label"),
    [
        ("fi", "Haluan kirjeet paperisina"),
        ("sv", "Jag vill få brev på papper"),
        ("nb", "Jeg vil ha brev på papir"),
        ("en", "I want letters on paper"),
    ],
)
def test_the_preference_page_offers_paper_letters_only_with_digital_mailboxes(make_dispatcher, language, label):
    from servers import free_port
    from web_helpers import request

    from dispatch.samples import sample_recipient
    from dispatch.web import create_app

    for digital, shown in ((True, True), (False, False)):
        port = free_port()
        overrides: dict[str, Any] = {"links": {"base_url": f"http://127.0.0.1:{port}"}}
        if digital:
            overrides["channels"] = {"letter": {"digital_first": {"FI": ["omaposti"]}}}
        d = make_dispatcher(overrides)
        server = LiveServer(create_app(d), port).start()
        try:
            person = {**sample_recipient("fi", "FI"), "language": language, "id": f"C-{language}-{digital}"}
            receipt = d.dispatch("marketing", person, sample_data("marketing", "FI"), now=NOW)
            assert d.join(30)
            status, page, _headers = request(d.links.preferences_url(receipt.message_id))
            assert status == 200, (receipt.status, receipt.reasons, page[:300])
        finally:
            server.stop()
            d.close()
        assert status == 200
        assert ('name="paper_letters"' in page) is shown
        assert (label in page) is shown


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_eligibility_cache_keeps_the_newest_answer_and_never_the_number(request, make_dispatcher, backend):
    overrides = {"store": {"url": request.getfixturevalue("postgres_url")}} if backend == "postgres" else {}
    d = make_dispatcher(overrides)
    key = person_key(d.signing_key("mailbox"), "SE", SE_ID)
    d.store.record_mailbox_eligibility("kivra", {key: True}, NOW)
    d.store.record_mailbox_eligibility("kivra", {key: False, "other": True}, NOW + timedelta(hours=1))
    assert d.store.mailbox_eligibility("kivra", [key, "missing"]) == {key: (False, NOW + timedelta(hours=1))}
    assert d.store.mailbox_eligibility("digipost", [key]) == {}
    from dispatch import schema

    with d.store.engine.connect() as conn:
        stored = [tuple(row) for row in conn.execute(schema.mailbox_eligibility.select())]
    assert SE_ID not in repr(stored) and SE_ID[2:] not in repr(stored)


def test_the_mailbox_cache_is_refreshed_in_bulk_from_a_recipients_file(kivra, tmp_path):
    from click.testing import CliRunner

    from dispatch.cli import cli

    state, base = kivra
    (tmp_path / "dispatch.toml").write_text(
        '[channels.letter]\ndigital_first = { SE = ["kivra"] }\n[channels.kivra]\n'
        f'base_url = "{base}"\nclient_id = "{state.client_id}"\nclient_secret = "{state.client_secret}"\n'
        f'tenant_key = "{state.tenant_key}"\n',
        encoding="utf-8",
    )
    rows = ["id;country;national_id"] + [f"C-{i};SE;{n}" for i, n in enumerate(_numbers(120))] + ["C-x;SE;"]
    (tmp_path / "people.csv").write_bytes("\r\n".join(rows).encode("utf-8-sig"))
    args = ["--config", str(tmp_path / "dispatch.toml"), "letters", "mailboxes", "--recipients"]
    result = CliRunner().invoke(cli, [*args, str(tmp_path / "people.csv")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "kivra: 120 people, 1 look-up calls" in result.output
    assert "1 rows without a usable national_id skipped" in result.output
    assert state.usermatch_calls == 1 and state.usermatch_numbers == 120
    again = CliRunner().invoke(cli, [*args, str(tmp_path / "people.csv")], catch_exceptions=False)
    assert "kivra: 120 people, 0 look-up calls" in again.output  # fresh in the cache
