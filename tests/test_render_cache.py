"""Rendering once per variant gives exactly what rendering every message would."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest

from dispatch import hookimpl
from dispatch.checks import CHECK_COUNTRIES
from dispatch.links import SignedAsOf
from dispatch.render_cache import Placeholder, Uncacheable
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
ODD_PEOPLE = [
    {},
    {
        "address": {
            "name": 'Åsa O\'Brien <b>&"x"</b>',
            "street": "Tie 1 & 2",
            "postal_code": "POSTAL",
            "city": "Helsinki",
        }
    },
    {"address": None, "kind": "business"},
    {"email": "first.last+tag@example.fi", "status": "former", "last_invoice_paid_on": "2020-01-01"},
]


def render_both(d, message_type, recipient, data, channel, language):
    inputs = d.pipeline.inputs(message_type, recipient, data, NOW)
    decision = d.pipeline.decide(inputs)
    from dataclasses import replace

    decision = replace(decision, channel=channel, language=language, allowed=True, reasons=[])
    links = SignedAsOf(d.links, NOW)  # preference links carry their expiry: sign both renders at one moment
    d.config.templates.render_cache = True
    cached = d.pipeline.render(inputs, decision, "01JABCDEFGHJKMNPQRSTVWXYZ0", links=links).parts
    d.config.templates.render_cache = False
    plain = d.pipeline.render(inputs, decision, "01JABCDEFGHJKMNPQRSTVWXYZ0", links=links).parts
    d.config.templates.render_cache = True
    return cached, plain


def same_message(cached: dict[str, str], plain: dict[str, str]) -> bool:
    """Equal parts; HTML may spell an escaped character differently (&#34; or "), never unescaped."""
    if cached.keys() != plain.keys():
        return False
    for part, text in cached.items():
        if part == "html":
            if html.unescape(text) != html.unescape(plain[part]) or "<b>&" in text:
                return False
        elif text != plain[part]:
            return False
    return True


def test_every_shipped_template_renders_the_same_from_the_cache(dispatcher):
    compared = 0
    for mtype in dispatcher.types:
        for channel in mtype.channels:
            for language, countries in CHECK_COUNTRIES.items():
                for country in countries:
                    for extra in ODD_PEOPLE:
                        recipient = {**sample_recipient(language, country), "language": language, **extra}
                        if recipient.get("address") and recipient["address"]["postal_code"] == "POSTAL":
                            own = sample_recipient(language, country)["address"]["postal_code"]
                            recipient["address"] = {**recipient["address"], "postal_code": own}
                        if recipient.get("address") is None and channel == "letter":
                            continue
                        data = sample_data(mtype.name, country)
                        cached, plain = render_both(dispatcher, mtype.name, recipient, data, channel, language)
                        assert same_message(cached, plain), (mtype.name, channel, language, country, extra)
                        compared += 1
    assert compared > 200
    assert dispatcher.pipeline.variants.refused == set(), "a shipped template fell back to plain rendering"


def test_the_cache_is_actually_used_and_fills_in_each_person(dispatcher):
    data = dispatcher.validate_data("price_change", sample_data("price_change"))
    first = dispatcher.dispatch("price_change", {**sample_recipient("fi", "FI"), "id": "A"}, data, now=NOW)
    second = dispatcher.dispatch(
        "price_change",
        {
            **sample_recipient("fi", "FI"),
            "id": "B",
            "address": {"name": "Liisa <Laine>", "street": "Katu 2", "postal_code": "00100", "city": "Helsinki"},
        },
        data,
        now=NOW,
    )
    assert len(data.render_cache) == 1  # one variant: the two people differ only in per-person text
    texts = [dispatcher.store.message(r.message_id)["content"]["parts"] for r in (first, second)]
    assert "Hei Matti Meikäläinen" in texts[0]["text"]
    assert "Hei Liisa <Laine>" in texts[1]["text"] and "Liisa &lt;Laine&gt;" in texts[1]["html"]


@pytest.mark.parametrize(
    "expression",
    [
        "{{ recipient.name | upper }}",
        "{{ recipient.name | replace('ä', 'a') }}",
        "{{ recipient.name | length }}",
        "{% if recipient.name == 'Matti Meikäläinen' %}VIP{% endif %}",
        "{{ recipient.name[:3] }}",
        "{{ ('Hei ' ~ recipient.name) | title }}",
        "{{ '%s!' % recipient.name }}",
        "{{ recipient.name.split()[0] }}",
    ],
)
def test_a_template_that_transforms_a_persons_text_falls_back_to_plain_rendering(make_dispatcher, tmp_path, expression):
    folder = tmp_path / "tpl" / "fi" / "survey"
    folder.mkdir(parents=True)
    (folder / "sms.txt").write_text(expression + " {{ survey_url }} {{ message.unsubscribe_url }}")
    d = make_dispatcher({"templates": {"paths": [str(tmp_path / "tpl")]}})
    people = [
        {**sample_recipient("fi", "FI"), "id": "A"},
        {
            **sample_recipient("fi", "FI"),
            "id": "B",
            "address": {"name": "Ärjä Öljynen", "street": "Katu 2", "postal_code": "00100", "city": "Oulu"},
        },
    ]
    for person in people:
        cached, plain = render_both(
            d, "survey", {**person, "preferred_channels": {"survey": "sms"}}, sample_data("survey"), "sms", "fi"
        )
        assert cached == plain


def test_a_refused_template_is_not_tried_from_the_cache_again(make_dispatcher, tmp_path):
    folder = tmp_path / "tpl" / "fi" / "survey"
    folder.mkdir(parents=True)
    (folder / "sms.txt").write_text("{{ recipient.name | upper }} {{ survey_url }} {{ message.unsubscribe_url }}")
    d = make_dispatcher({"templates": {"paths": [str(tmp_path / "tpl")]}})
    cached, plain = render_both(
        d,
        "survey",
        {**sample_recipient("fi", "FI"), "preferred_channels": {"survey": "sms"}},
        sample_data("survey"),
        "sms",
        "fi",
    )
    assert cached == plain and cached["text"].startswith("MATTI MEIKÄLÄINEN")
    assert ("fi", "survey/sms.txt") in d.pipeline.variants.refused


def test_placeholders_refuse_everything_but_printing():
    p = Placeholder("\ue000qa\ue001")
    for attempt in (
        lambda: p.upper(),
        lambda: len(p),
        lambda: p == "x",
        lambda: str(p),
        lambda: p[0],
        lambda: f"{p}",
        lambda: "x" in p,
        lambda: p.encode(),
    ):
        with pytest.raises(Uncacheable):
            attempt()
    assert isinstance("Hei " + p, Placeholder) and isinstance(p + "!", Placeholder)
    assert bool(p) is True


def test_templates_using_plugin_filters_are_never_cached(make_dispatcher, tmp_path):
    calls = []

    class Counter:
        @hookimpl
        def dispatch_template_filters(self, register):
            register("tally", lambda value: calls.append(value) or "")

    folder = tmp_path / "tpl" / "fi" / "survey"
    folder.mkdir(parents=True)
    (folder / "sms.txt").write_text("{{ recipient.id | tally }}{{ survey_url }} {{ message.unsubscribe_url }}")
    d = make_dispatcher({"templates": {"paths": [str(tmp_path / "tpl")]}}, plugins=[Counter()])
    data = d.validate_data("survey", sample_data("survey"))
    for n in range(3):
        d.dispatch(
            "survey",
            {**sample_recipient("fi", "FI"), "id": f"P{n}", "preferred_channels": {"survey": "sms"}},
            data,
            now=NOW,
        )
    assert [str(c) for c in calls] == ["P0", "P1", "P2"]  # the filter saw every real value
