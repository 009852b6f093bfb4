"""Sandboxed, autoescaping, strict rendering with language fallback (SPEC §5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.errors import TemplateError, TemplateNotFound
from dispatch.render import Renderer

PARTS = {"subject": "email.subject.txt", "html": "email.html", "text": "email.txt"}


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "templates"
    write(base, "_shared/base.html", "<p>{% block body %}{% endblock %}</p>")
    write(base, "en/note/email.subject.txt", "Hello\n{{ name }}\n")
    write(base, "en/note/email.html", '{% extends "base.html" %}{% block body %}{{ name }}{% endblock %}')
    write(base, "en/note/email.txt", "Hi {{ name }}")
    write(base, "fi/note/email.subject.txt", "Hei {{ name }}")
    write(base, "fi/note/email.html", "<b>{{ name }}</b>")
    write(base, "fi/note/email.txt", "Hei {{ name }}")
    return base


def test_html_parts_autoescape_and_text_parts_do_not(root):
    parts = Renderer([root]).render_parts("note", PARTS, "en", "FI", {"name": "<script>x</script> & Co"})
    assert parts["html"] == "<p>&lt;script&gt;x&lt;/script&gt; &amp; Co</p>\n"
    assert parts["text"] == "Hi <script>x</script> & Co"
    assert parts["subject"] == "Hello <script>x</script> & Co"  # one line: no header injection via newlines


def test_the_sandbox_refuses_unsafe_attribute_access(root):
    write(root, "en/evil/email.txt", "{{ name.__class__.__mro__ }}")
    with pytest.raises(TemplateError, match=r"en/evil/email\.txt"):
        Renderer([root]).render_parts("evil", {"text": "email.txt"}, "en", "FI", {"name": "x"})


def test_an_unknown_variable_fails_loudly_naming_the_file(root):
    with pytest.raises(TemplateError, match=r"template en/note/email\.subject\.txt: 'name' is undefined"):
        Renderer([root]).render_parts("note", PARTS, "en", "FI", {})


def test_a_syntax_error_names_file_and_line(root):
    write(root, "en/broken/email.txt", "line one\n{% if x %}never closed\n")
    with pytest.raises(TemplateError, match=r"en/broken/email.txt line \d+"):
        Renderer([root]).render_parts("broken", {"text": "email.txt"}, "en", "FI", {"x": 1})


def test_language_falls_back_along_the_chain_whole_message_at_once(root):
    renderer = Renderer([root])
    write(root, "sv/note/email.txt", "Hej {{ name }}")  # sv has only one of the three parts
    assert renderer.resolve_language("note", "email", PARTS, ("sv", "en")) == "en"
    assert renderer.resolve_language("note", "email", PARTS, ("fi", "en")) == "fi"
    with pytest.raises(TemplateNotFound, match=r"no email template for 'note' in any allowed language \(sv\)"):
        renderer.resolve_language("note", "email", PARTS, ("sv",))


def test_earlier_roots_override_single_files(root, tmp_path):
    override = tmp_path / "custom"
    write(override, "en/note/email.txt", "Custom {{ name }}")
    parts = Renderer([override, root]).render_parts("note", PARTS, "en", "FI", {"name": "A"})
    assert parts["text"] == "Custom A"
    assert parts["html"] == "<p>A</p>\n"


def test_filters_use_the_message_locale(root):
    write(root, "fi/when/email.txt", "{{ day | date }}")
    write(root, "en/when/email.txt", "{{ day | date }}")
    from datetime import date

    renderer = Renderer([root])
    assert renderer.render_parts("when", {"t": "email.txt"}, "fi", "FI", {"day": date(2027, 5, 1)}) == {"t": "1.5.2027"}
    assert renderer.render_parts("when", {"t": "email.txt"}, "en", "NO", {"day": date(2027, 5, 1)}) == {
        "t": "1 May 2027"
    }


def test_undeclared_variables_follow_extends_and_includes(root):
    write(root, "en/_layout/foot.txt", "{{ company.name }}")
    write(root, "en/inc/email.txt", '{{ a }}{% include "_layout/foot.txt" %}{% for x in items %}{{ x }}{% endfor %}')
    assert Renderer([root]).undeclared_variables("en", "inc/email.txt") == {"a", "company", "items"}
