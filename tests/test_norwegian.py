"""Norwegian bokmål (SPEC §3, §5): Norway's default language, nb_NO formatting, its own fallback chain."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from outbox_readers import email_parts, json_lines, pdf_text, read_eml

from dispatch.checks import check_templates
from dispatch.errors import TemplateNotFound
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)  # a Monday, inside calling hours in Oslo
TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def written(folder: Path, message_id: str, suffix: str) -> Path:
    """The one file a channel wrote for ``message_id`` (its name may carry the type and language too)."""
    [path] = folder.glob(f"*{message_id}{suffix}")
    return path


def norwegian(**extra):
    """A Norwegian household that has not told us its language."""
    person = {**sample_recipient("nb", "NO"), **extra}
    del person["language"]
    return person


def test_a_norwegian_household_gets_its_price_notice_in_norwegian(dispatcher, tmp_path):
    receipt = dispatcher.dispatch("price_change", norwegian(), sample_data("price_change", "NO"), now=NOW)
    assert (receipt.status, receipt.channel, receipt.language) == ("queued", "email", "nb"), receipt.reasons
    assert dispatcher.join(60)
    message = read_eml(written(tmp_path / "outbox" / "email", receipt.message_id, ".eml"))
    assert message["Content-Language"] == "nb"
    assert message["Subject"] == "Varsel om prisendring: nye priser på strømavtalen din fra 1. mai 2027"
    text, html = email_parts(message)
    assert "Hei Kari Nordmann," in text
    assert "fra og med 1. mai 2027. Årsaken er at kostnadene ved å kjøpe inn strøm har økt." in text
    assert "Strømpris: 69,90 øre/kWh -> 79,90 øre/kWh" in text
    assert "Fastbeløp: 39,00 kr/mnd -> 49,00 kr/mnd" in text
    assert "kan du si opp avtalen uten kostnad før 1. mai 2027" in text
    assert "Prisene er inkludert 25 % merverdiavgift." in text
    assert "Kundeservice +47 22 12 34 56 (man.–fre. kl. 8–16)" in text
    assert '<html lang="nb">' in html
    assert "<strong>79,90 øre/kWh</strong>" in html and "Ny pris fra 1. mai 2027" in html
    assert "Energy" not in text and "Standing charge" not in text


def test_a_norwegian_price_notice_on_paper_is_in_norwegian(dispatcher, tmp_path):
    receipt = dispatcher.dispatch("price_change", norwegian(email=None), sample_data("price_change", "NO"), now=NOW)
    assert (receipt.channel, receipt.language) == ("letter", "nb")
    assert dispatcher.join(60)
    text = pdf_text(written(tmp_path / "outbox" / "letter", receipt.message_id, ".pdf"))
    assert "Kari Nordmann" in text and "0155 Oslo" in text
    assert "Kundenummer" in text
    for expected in ("Nye priser på strømavtalen din", "1. mai 2027", "79,90 øre/kWh", "49,00 kr/mnd"):
        assert expected in text


def test_a_norwegian_marketing_sms_is_gsm7_and_names_the_price_after_the_campaign(dispatcher, tmp_path):
    recipient = norwegian(email=None, preferred_channels={"marketing": "sms"})
    receipt = dispatcher.dispatch("marketing", recipient, sample_data("marketing", "NO"), now=NOW)
    assert (receipt.channel, receipt.language) == ("sms", "nb"), receipt.reasons
    assert dispatcher.join(60)
    [line] = json_lines(tmp_path / "outbox" / "sms" / "messages.jsonl")
    assert line["encoding"] == "GSM-7" and line["segments"] <= 3
    body = line["body"]
    # "0 kr/mnd" since issue 20 (a fee of nothing is written without decimals; was "0,00 kr/mnd").
    assert "kampanjepris i 12 måneder: Strømpris 59,90 øre/kWh, Fastbeløp 0 kr/mnd." in body
    assert "Deretter: Strømpris 79,90 øre/kWh, Fastbeløp 49,00 kr/mnd." in body
    assert "Priser inkl. 25 % mva. Tilbudet gjelder til 30. april 2027" in body
    assert "Ingen flere tilbud? Svar STOPP eller gå til https://energia.example.fi/dispatch/u/" in body


def test_household_electricity_in_northern_norway_is_shown_without_vat(dispatcher, tmp_path):
    tromso = {"name": "Kari Nordmann", "street": "Storgata 40", "postal_code": "9008", "city": "Tromsø"}
    north = dispatcher.dispatch("price_change", norwegian(address=tromso), sample_data("price_change", "NO"), now=NOW)
    oslo = dispatcher.dispatch("price_change", norwegian(), sample_data("price_change", "NO"), now=NOW)
    assert dispatcher.join(60)
    north_text, north_html = email_parts(read_eml(written(tmp_path / "outbox" / "email", north.message_id, ".eml")))
    oslo_text, _ = email_parts(read_eml(written(tmp_path / "outbox" / "email", oslo.message_id, ".eml")))
    exempt = "Prisene er uten merverdiavgift, fordi strøm til husholdninger i Nord-Norge er fritatt for merverdiavgift."
    assert exempt in north_text and exempt in north_html
    assert "25 % merverdiavgift" not in north_text
    assert "Prisene er inkludert 25 % merverdiavgift." in oslo_text and exempt not in oslo_text


def test_a_household_contract_confirmation_gives_the_last_day_to_withdraw_and_a_business_one_does_not(
    dispatcher, tmp_path
):
    data = {**sample_data("contract_confirmation", "NO"), "signed_on": "2027-01-08", "starts_on": "2027-02-01"}
    home = dispatcher.dispatch("contract_confirmation", norwegian(), data, now=NOW)
    firm = dispatcher.dispatch("contract_confirmation", norwegian(kind="business"), data, now=NOW)
    assert dispatcher.join(60)
    home_text, _ = email_parts(read_eml(written(tmp_path / "outbox" / "email", home.message_id, ".eml")))
    firm_text, _ = email_parts(read_eml(written(tmp_path / "outbox" / "email", firm.message_id, ".eml")))
    assert "Du har 14 dagers angrerett." in home_text and "Angrefristen går ut 22. januar 2027." in home_text
    assert "Strømleveransen starter før angrefristen" not in home_text  # supply starts after the deadline
    assert "Avtalevilkår: https://energi.example.no/vilkar" in home_text
    assert "Prisene er inkludert 25 % merverdiavgift." in home_text
    assert "angrerett" not in firm_text.lower() and "Angrefristen" not in firm_text
    assert "Prisene er oppgitt uten merverdiavgift." in firm_text


def test_a_renewal_of_another_product_by_sms_carries_stopp_and_the_same_product_does_not(dispatcher, tmp_path):
    same = sample_data("renewal_offer", "NO")
    other = {**same, "product": "Vind 24"}
    for data in (same, other):
        recipient = norwegian(id=f"R-{data['product']}", email=None, preferred_channels={"renewal_offer": "sms"})
        receipt = dispatcher.dispatch("renewal_offer", recipient, data, now=NOW)
        assert (receipt.channel, receipt.language) == ("sms", "nb"), receipt.reasons
    assert dispatcher.join(60)
    lines = json_lines(tmp_path / "outbox" / "sms" / "messages.jsonl")
    same_body, other_body = sorted((line["body"] for line in lines), key=lambda body: "Vind 24" in body)
    for body in (same_body, other_body):
        assert "Gjør du ingenting, får du Spotpris: Strømpris 84,90 øre/kWh, Fastbeløp 49,00 kr/mnd." in body
        assert "Priser inkl. 25 % mva." in body
    assert "Fastpris 24 i 24 måneder" in same_body and "Vind 24 i 24 måneder" in other_body
    assert "STOPP" not in same_body and "/u/" not in same_body
    assert "Svar STOPP" in other_body and "/u/" in other_body
    assert all(line["segments"] <= 3 and line["encoding"] == "GSM-7" for line in lines)


def test_a_norwegian_phone_sale_needs_written_acceptance(dispatcher, tmp_path):
    recipient = norwegian(email=None, preferred_channels={"marketing": "phone"})
    receipt = dispatcher.dispatch("marketing", recipient, sample_data("marketing", "NO"), now=NOW)
    assert (receipt.channel, receipt.language) == ("phone", "nb"), receipt.reasons
    assert dispatcher.join(60)
    [task] = json_lines(tmp_path / "outbox" / "phone" / "tasks.jsonl")
    assert task["language"] == "nb"
    script = task["script"]
    # Wording updated in issue 20 (the written-offer step is shared by every phone script).
    assert "Vi avtaler ikke noe bindende i denne samtalen" in script
    assert "Avtalen gjelder først når du har akseptert det skriftlig" in script
    assert "Registrer ikke avtalen som inngått i samtalen" in script
    assert "Etter 12 måneder gjelder disse prisene:" in script


def test_nb_has_every_template_that_en_has():
    def files(language: str) -> set[str]:
        root = TEMPLATES / language
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "_web" not in p.parts}

    assert files("nb") == files("en")


def test_the_template_check_passes_for_nb(dispatcher):
    report = check_templates(dispatcher, languages=["nb"])
    assert report.ok, "\n".join(map(str, report.problems))
    expected = sum(len([c for c in t.channels if c in dispatcher.channels]) for t in dispatcher.types)
    assert report.checked == expected and report.rendered >= expected


def _notice_with_templates_in(make_dispatcher, tmp_path, languages: tuple[str, ...]):
    """A dispatcher with a statutory type ``notice`` whose email templates exist in ``languages`` only."""
    for language in languages:
        folder = tmp_path / "tpl" / language / "notice"
        folder.mkdir(parents=True)
        (folder / "email.subject.txt").write_text(f"{language} {{{{ day | date }}}}", encoding="utf-8")
        (folder / "email.txt").write_text(f"{language} {{{{ day | date }}}}", encoding="utf-8")
        (folder / "email.html").write_text(f"<p>{language} {{{{ day | date }}}}</p>", encoding="utf-8")
    return make_dispatcher(
        {
            "templates": {"paths": [str(tmp_path / "tpl")]},
            "message_types": {"notice": {"category": "statutory", "fields": {"day": "date"}, "channels": ["email"]}},
        }
    )


def test_an_nb_statutory_notice_falls_back_to_english_only(make_dispatcher, tmp_path):
    d = _notice_with_templates_in(make_dispatcher, tmp_path, ("fi", "sv", "en"))
    receipt = d.dispatch("notice", norwegian(), {"day": "2027-05-01"}, now=NOW)
    assert (receipt.language, receipt.requested_language) == ("en", "nb")
    assert d.join(60)
    text, _ = email_parts(read_eml(written(tmp_path / "outbox" / "email", receipt.message_id, ".eml")))
    assert text.strip() == "en 1 May 2027"


def test_an_nb_statutory_notice_never_goes_out_in_finnish_or_swedish(make_dispatcher, tmp_path):
    d = _notice_with_templates_in(make_dispatcher, tmp_path, ("fi", "sv"))
    with pytest.raises(TemplateNotFound, match=r"notice.*\(nb, en\)"):
        d.dispatch("notice", norwegian(), {"day": "2027-05-01"}, now=NOW)
    assert not (tmp_path / "outbox" / "email").exists()
