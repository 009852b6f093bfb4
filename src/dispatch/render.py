"""Render message templates: sandboxed Jinja per language, Babel filters, fallback chains.

Templates live in ``templates/<lang>/<message_type>/<part>`` (SPEC §5). A message
is rendered whole in one language: :meth:`Renderer.resolve_language` walks the
fallback chain and picks the first language that has every part the channel
needs, so a subject and its body never come from different languages.

Each (language, country) pair gets its own :class:`ImmutableSandboxedEnvironment`
with ``StrictUndefined`` (an unknown variable fails loudly), autoescaping for
``.html`` parts, and a :class:`~dispatch.formatting.Formatter` bound to the locale.
Every part renders within a time and output-size budget (:mod:`dispatch.render_limits`).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta, nodes, pass_eval_context, select_autoescape
from jinja2.compiler import CodeGenerator
from jinja2.filters import do_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import render_cache, render_limits
from .errors import TemplateError, TemplateLimitExceeded, TemplateNotFound
from .formatting import Formatter, locale_for
from .render_limits import RenderLimitExceeded

#: Language-independent templates (the HTML email skeleton) every language may extend.
SHARED = "_shared"


def builtin_template_dir() -> Path:
    """The templates shipped with dispatch (inside the wheel, or the checkout's ``templates/``)."""
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


class _CodeGenerator(CodeGenerator):
    """Jinja's code generator, with ``~`` routed through :func:`render_cache.concat`."""

    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        autoescape = "context.eval_ctx.autoescape" if frame.eval_ctx.volatile else repr(bool(frame.eval_ctx.autoescape))
        self.write("environment.dispatch_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write(f"), {autoescape})")


def _finalize(value: Any) -> Any:
    """Printing a placeholder prints its token (see :mod:`dispatch.render_cache`)."""
    if type(value) is render_cache.Placeholder:
        return str.__str__(value)
    return value


@pass_eval_context
def _join(eval_ctx, value, d: str = "", attribute=None):
    """Jinja's ``join``, keeping placeholders opaque (and its result within the output limit)."""
    items = list(value)
    render_limits.check_size((render_limits.length_of(d) or 0) * len(items))
    try:
        return render_cache.join(items, d, attribute)
    except render_cache.UseDefault:
        return do_join(eval_ctx, items, d, attribute)


def _concat(values: Iterable[Any], autoescape: bool) -> str:
    """``~``: placeholder-aware (see :func:`render_cache.concat`), within the output limit."""
    text = render_cache.concat(values, autoescape)
    render_limits.check_size(str.__len__(text))
    return text


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, bounded: loops and calls read the clock, size-multiplying operators are checked."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "+", "**", "%"})
    concat = staticmethod(render_limits.bounded_concat)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["range"] = render_limits.bounded_range
        self.globals.pop("lipsum", None)  # lipsum(n=10**9) would run without a check
        self.filters.update(render_limits.FILTERS)
        self.dispatch_concat = _concat

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        render_limits.check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        render_limits.check_call(__obj, args, kwargs)
        return super().call(__context, __obj, *args, **kwargs)

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None, defer_init: bool = False):
        # Every loop iterates through the budget check (done on the tree being compiled,
        # so parse() — used by checks and variable listings — shows the template as written).
        for loop in source.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, "dispatch_loop", [], [], None, None, lineno=loop.iter.lineno)
        return super()._generate(source, name, filename, defer_init)


class Renderer:
    """Finds and renders templates for (message type, channel, language).

    ``roots`` are folders each holding ``fi/``, ``sv/``, ``en/``; earlier roots win,
    so a deployment can override single files of the built-in set.
    """

    def __init__(
        self,
        roots: Iterable[Path],
        *,
        locales: Mapping[str, Mapping[str, str]] | None = None,
        unit_labels: Mapping[str, Mapping[str, str]] | None = None,
        extra_filters: Mapping[str, Callable[..., Any]] | None = None,
        extra_globals: Mapping[str, Any] | None = None,
        max_seconds: float = render_limits.DEFAULT_SECONDS,
        max_output: int = render_limits.DEFAULT_OUTPUT,
    ) -> None:
        self.roots = [Path(r) for r in roots]
        #: Budget of one rendered part: seconds, and characters of output.
        self.max_seconds = max_seconds
        self.max_output = max_output
        self.locales = {k: dict(v) for k, v in (locales or {}).items()}
        self.unit_labels = {k: dict(v) for k, v in (unit_labels or {}).items()}
        self.extra_filters = dict(extra_filters or {})
        self.extra_globals = dict(extra_globals or {})
        self._envs: dict[tuple[str, str], ImmutableSandboxedEnvironment] = {}
        self._formatters: dict[tuple[str, str], Formatter] = {}
        self._lock = threading.Lock()
        self._exists = lru_cache(maxsize=4096)(self._exists_uncached)
        self._plugin_filter_use: dict[tuple[str, str], bool] = {}
        self._versions: dict[tuple[str, str, tuple[str, ...], str], tuple[str, tuple[str, ...]]] = {}

    # -- finding templates -----------------------------------------------------------

    def template_name(self, message_type: str, filename: str) -> str:
        return f"{message_type}/{filename}"

    def _exists_uncached(self, language: str, name: str) -> bool:
        return any((root / language / name).is_file() for root in self.roots)

    def has_parts(self, message_type: str, parts: Mapping[str, str], language: str) -> bool:
        """True when every part file exists for ``language``."""
        return all(self._exists(language, self.template_name(message_type, f)) for f in parts.values())

    def resolve_language(self, message_type: str, channel: str, parts: Mapping[str, str], chain: Iterable[str]) -> str:
        """The first language of ``chain`` with every part; raises :class:`TemplateNotFound`."""
        tried = []
        for language in chain:
            if self.has_parts(message_type, parts, language):
                return language
            tried.append(language)
        files = ", ".join(parts.values())
        raise TemplateNotFound(
            f"no {channel} template for {message_type!r} in any allowed language "
            f"({', '.join(tried) or 'none'}): need {files} under templates/<lang>/{message_type}/"
        )

    def languages(self) -> list[str]:
        found = set()
        for root in self.roots:
            if root.is_dir():
                found.update(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
        return sorted(found)

    # -- environments ----------------------------------------------------------------

    def formatter(self, language: str, country: str) -> Formatter:
        key = (language, country)
        formatter = self._formatters.get(key)
        if formatter is None:
            formatter = Formatter(
                locale_for(language, country, self.locales), country, unit_labels=self.unit_labels.get(language)
            )
            self._formatters[key] = formatter
        return formatter

    def environment(self, language: str, country: str) -> ImmutableSandboxedEnvironment:
        """The sandboxed environment for templates in ``language`` sent to ``country``."""
        key = (language, country)
        env = self._envs.get(key)
        if env is not None:
            return env
        with self._lock:
            env = self._envs.get(key)
            if env is None:
                env = _Environment(
                    loader=jinja2.FileSystemLoader(
                        [str(root / language) for root in self.roots] + [str(root / SHARED) for root in self.roots]
                    ),
                    autoescape=select_autoescape(enabled_extensions=("html", "htm"), default=False),
                    undefined=StrictUndefined,
                    trim_blocks=True,
                    lstrip_blocks=True,
                    keep_trailing_newline=False,
                    auto_reload=False,
                    cache_size=1000,
                    finalize=_finalize,
                )
                env.filters["join"] = _join
                env.filters.update(self.formatter(language, country).filters())
                env.filters.update(self.extra_filters)
                env.globals.update(self.extra_globals)
                self._envs[key] = env
        return env

    # -- rendering -------------------------------------------------------------------

    def render_parts(
        self,
        message_type: str,
        parts: Mapping[str, str],
        language: str,
        country: str,
        context: Mapping[str, Any],
        *,
        tidy: bool = True,
    ) -> dict[str, str]:
        """Render every part; a failure raises :class:`TemplateError` naming the file.

        Each part has :attr:`max_seconds` and :attr:`max_output` characters; going over
        raises :class:`~dispatch.errors.TemplateLimitExceeded`.
        """
        out: dict[str, str] = {}
        for part, filename in parts.items():
            text = self.render_template(language, country, self.template_name(message_type, filename), context)
            out[part] = _tidy(text, filename) if tidy else text
        return out

    def render_template(self, language: str, country: str, name: str, context: Mapping[str, Any]) -> str:
        """Render one template (e.g. a web page under ``_web/``) within the render budget.

        A failure raises :class:`TemplateError` naming the file; going over
        :attr:`max_seconds` or :attr:`max_output` raises :class:`~dispatch.errors.TemplateLimitExceeded`.
        """
        env = self.environment(language, country)
        try:
            template = env.get_template(name)
            with render_limits.budget(self.max_seconds, self.max_output):
                return render_limits.render_bounded(template.generate(context))
        except RenderLimitExceeded as exc:
            raise TemplateLimitExceeded(f"template {language}/{name}: {exc}") from None
        except RecursionError:
            raise TemplateLimitExceeded(f"template {language}/{name}: calls or includes nest too deeply") from None
        except jinja2.TemplateNotFound:
            raise TemplateNotFound(f"template {language}/{name} does not exist") from None
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"template {language}/{exc.name or name} line {exc.lineno}: {exc.message}") from None
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"template {language}/{name}: {exc.message}") from None
        except jinja2.exceptions.SecurityError as exc:
            raise TemplateError(f"template {language}/{name}: not allowed in the sandbox: {exc}") from None
        except render_cache.Uncacheable:
            raise
        except (TypeError, ValueError, AttributeError, ArithmeticError, LookupError) as exc:
            raise TemplateError(f"template {language}/{name}: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def tidy(text: str, filename: str) -> str:
        """The whitespace clean-up every rendered part gets."""
        return _tidy(text, filename)

    def uses_plugin_filters(self, language: str, name: str) -> bool:
        """True when a template (or what it extends or includes) uses a filter a plugin registered."""
        if not self.extra_filters:
            return False
        key = (language, name)
        found = self._plugin_filter_use.get(key)
        if found is None:
            env = self.environment(language, "FI")
            found = False
            for current in self._referenced(language, name):
                try:
                    source, _ = self.source(language, current)
                except jinja2.TemplateNotFound:
                    continue
                used = {f.name for f in env.parse(source).find_all(nodes.Filter)}
                if used & set(self.extra_filters):
                    found = True
                    break
            self._plugin_filter_use[key] = found
        return found

    def _referenced(self, language: str, name: str) -> list[str]:
        env = self.environment(language, "FI")
        seen: list[str] = []
        pending = [name]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.append(current)
            try:
                source, _ = self.source(language, current)
            except jinja2.TemplateNotFound:
                continue
            pending.extend(n for n in meta.find_referenced_templates(env.parse(source)) if n)
        return seen

    # -- versions (SPEC §5) -----------------------------------------------------------

    def template_files(self, message_type: str, channel: str, parts: Mapping[str, str], language: str) -> list[str]:
        """Every template a message of this type, channel and language renders from, sorted.

        The parts, and whatever they extend, include or import (found in the Jinja AST,
        recursively: partials, layouts, shared markup under ``_shared/``), plus the
        channel's own layout templates: ``_layout/<channel>_*`` as the loader lists them
        (e.g. the letter's information block, rendered by the letter plugin itself).
        """
        names = [self.template_name(message_type, f) for f in parts.values()]
        env = self.environment(language, "FI")
        assert env.loader is not None
        prefix = f"_layout/{channel}_"
        names += [n for n in env.loader.list_templates() if n.startswith(prefix)]
        found: set[str] = set()
        for name in names:
            try:
                referenced = self._referenced(language, name)
            except jinja2.TemplateSyntaxError:  # it does not render; its own bytes still count
                referenced = [name]
            for current in referenced:
                try:
                    self.source(language, current)
                except jinja2.TemplateNotFound:
                    continue
                found.add(current)
        return sorted(found)

    def template_version(
        self, message_type: str, channel: str, parts: Mapping[str, str], language: str, *, fresh: bool = False
    ) -> str:
        """The version of a template set: a content hash of every file it renders from.

        SHA-256 over each file's name and the SHA-256 of its bytes (one line per file,
        sorted by name), shortened to 16 hex digits. A change of one byte in any of those
        files — a shared partial or layout included — gives a new version. Cached per
        renderer (its compiled templates are cached too); ``fresh`` reads the files again.
        """
        return self.template_version_files(message_type, channel, parts, language, fresh=fresh)[0]

    def template_version_files(
        self, message_type: str, channel: str, parts: Mapping[str, str], language: str, *, fresh: bool = False
    ) -> tuple[str, tuple[str, ...]]:
        """:meth:`template_version` and the names of the files it covers."""
        key = (message_type, channel, tuple(parts.values()), language)
        found = None if fresh else self._versions.get(key)
        if found is None:
            files = self.template_files(message_type, channel, parts, language)
            digest = hashlib.sha256()
            for name in files:
                source, _ = self.source(language, name)
                digest.update(f"{name}\0{hashlib.sha256(source.encode('utf-8')).hexdigest()}\n".encode())
            found = (digest.hexdigest()[:16], tuple(files))
            self._versions[key] = found
        return found

    def forget_versions(self) -> None:
        """Drop cached versions and compiled templates (after the files changed on disk)."""
        with self._lock:
            self._versions.clear()
            self._envs.clear()
            self._exists.cache_clear()
            self._plugin_filter_use.clear()

    def source(self, language: str, name: str) -> tuple[str, str]:
        """The source and file path of a template (for checks and previews)."""
        env = self.environment(language, "FI")
        assert env.loader is not None
        source, filename, _ = env.loader.get_source(env, name)
        return source, filename or name

    def undeclared_variables(self, language: str, name: str) -> set[str]:
        """Top-level variables a template (and what it extends or includes) reads."""
        env = self.environment(language, "FI")
        names: set[str] = set()
        for current in self._referenced(language, name):
            try:
                source, _ = self.source(language, current)
            except jinja2.TemplateNotFound:
                continue
            names |= meta.find_undeclared_variables(env.parse(source))
        return names - set(env.globals)


def _tidy(text: str, filename: str) -> str:
    """Strip trailing spaces and surplus blank lines from text parts; single-line subjects."""
    if filename.endswith(".html"):
        return text.strip() + "\n"
    lines = [line.rstrip() for line in text.strip().splitlines()]
    if filename.endswith("subject.txt"):
        return " ".join(line for line in lines if line)
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    return "\n".join(out)
