"""A template runs with limits on time and output size, and going over names the file (issue 12.6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.errors import TemplateError, TemplateLimitExceeded
from dispatch.render import Renderer


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def render(tmp_path: Path, source: str, context: dict | None = None, **limits) -> str:
    write(tmp_path, "en/probe/email.txt", source)
    renderer = Renderer([tmp_path], **limits)
    return renderer.render_parts("probe", {"text": "email.txt"}, "en", "FI", context or {})["text"]


@pytest.mark.parametrize(
    "source",
    [
        # loops that never print: only the clock can stop them
        "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
        "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in [1] %}{% endfor %}{% endfor %}{% endfor %}",
        # exponential recursion through a macro, no loop at all
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    ],
)
def test_a_template_that_runs_too_long_is_stopped_naming_the_file(tmp_path, source):
    with pytest.raises(TemplateLimitExceeded, match=r"template en/probe/email\.txt: took longer than 0\.3 seconds"):
        render(tmp_path, source, max_seconds=0.3)


@pytest.mark.parametrize(
    "source",
    [
        '{{ "x" * 100000000 }}',
        '{{ ["x"] * 100000000 }}',
        '{% for i in range(1000) %}{{ "x" * 100000 }}{% endfor %}',
        '{% set ns = namespace(s="xx") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}',
        '{% set ns = namespace(s="xx") %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}',
        '{{ "x".ljust(100000000) }}',
        '{{ "x".center(100000000) }}',
        '{{ ("x" * 1000).replace("x", "y" * 100000) }}',
        '{{ "{:>100000000}".format(1) }}',
        '{{ "%100000000s" % "x" }}',
        '{{ "x"|center(100000000) }}',
        '{{ "a\nb"|indent(100000000) }}',
        '{{ "%100000000s"|format("x") }}',
        '{{ ("x" * 1000)|replace("x", "y" * 100000) }}',
        '{{ range(10000)|join("x" * 100000) }}',
        "{{ big }}",
        "{% set s %}{% for i in range(10000) %}{{ big[:1000] }}{% endfor %}{% endset %}{{ s|length }}",
        "{% macro m() %}{% for i in range(10000) %}{{ big[:1000] }}{% endfor %}{% endmacro %}{{ m()|length }}",
    ],
)
def test_a_template_that_makes_too_much_text_is_stopped_naming_the_file(tmp_path, source):
    with pytest.raises(TemplateLimitExceeded, match=r"template en/probe/email\.txt: makes more than 1,000,000"):
        render(tmp_path, source, {"big": "x" * 2_000_000}, max_output=1_000_000)


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{% for i in range(100001) %}{% endfor %}", "range() of more than 10,000 items"),
        ("{{ 2 ** 100000000 }}", "a power with more than"),
        ("{{ (2 ** 1000) ** 1000 }}", "a power with more than"),
        ("{{ [1]|batch(100000000, 0)|list|length }}", "batch() of more than"),
        ("{{ [1]|slice(100000000)|list|length }}", "slice() into more than"),
        ("{{ {'a': 1}|tojson(indent=100000000) }}", "tojson() with an indent"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nest too deeply"),
    ],
)
def test_amplifiers_are_refused_before_they_run(tmp_path, source, fragment):
    with pytest.raises(TemplateLimitExceeded, match=r"template en/probe/email\.txt: ") as caught:
        render(tmp_path, source)
    assert fragment in str(caught.value)


def test_lipsum_is_not_available(tmp_path):
    with pytest.raises(TemplateError, match="lipsum"):
        render(tmp_path, "{{ lipsum(n=1000000000) }}")


def test_ordinary_templates_still_work_within_the_limits(tmp_path):
    source = (
        "{% for row in rows %}{{ loop.index }}/{{ loop.length }} {{ row|center(9) }}{% if not loop.last %}, {% endif %}"
        '{% else %}none{% endfor %}|{{ "ab" * 3 }}|{{ 2 ** 10 }}|{{ "%5s" % "x" }}|{{ "{:>4}".format(7) }}'
        "|{{ range(3)|join('-') }}|{{ 7 % 3 }}|{{ 'a' + 'b' }}|{{ [1, 2] + [3] }}"
    )
    text = render(tmp_path, source, {"rows": ["a", "b"]})
    assert text == "1/2     a    , 2/2     b    |ababab|1024|    x|   7|0-1-2|1|ab|[1, 2, 3]"
    assert render(tmp_path, "{% for x in [] %}x{% else %}empty{% endfor %}") == "empty"


def test_the_limits_come_from_the_configuration(make_dispatcher):
    from dispatch.samples import sample_data, sample_recipient

    d = make_dispatcher({"templates": {"max_output_chars": 50}})
    assert (d.renderer.max_seconds, d.renderer.max_output) == (5.0, 50)
    with pytest.raises(TemplateLimitExceeded, match=r"template fi/price_change/email\.\w+: makes more than 50 "):
        d.preview("price_change", sample_recipient("fi", "FI"), sample_data("price_change"), channel="email")


def test_a_single_template_such_as_a_web_page_renders_within_the_budget(tmp_path):
    write(tmp_path, "en/_web/page.html", "<p>{{ who }}</p>{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}")
    write(tmp_path, "en/_web/ok.html", "<p>{{ who }}</p>")
    renderer = Renderer([tmp_path], max_output=100_000)
    assert renderer.render_template("en", "FI", "_web/ok.html", {"who": "<b>"}) == "<p>&lt;b&gt;</p>"
    with pytest.raises(TemplateLimitExceeded, match=r"template en/_web/page\.html: makes more than 100,000"):
        renderer.render_template("en", "FI", "_web/page.html", {"who": "x"})
