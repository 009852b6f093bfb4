"""Bounds on rendering: how long a template may run and how much text it may make.

Jinja's sandbox keeps a translator's (or a plugin's) template away from Python's
internals, but not from looping for minutes or building a 100 MB string. Each
render runs inside a :func:`budget` — a deadline and a maximum output size — and
the template environment (see :mod:`dispatch.render`) checks it wherever a template
can spend time or space:

- every iteration of a ``{% for %}`` loop (:func:`bounded_loop`) and every call of a
  function, macro or method (:func:`check_call`) reads the clock;
- every chunk of output, every ``{% set %}`` block and macro result counts towards
  the output size (:func:`check_size`);
- operators and filters that can multiply a size are checked *before* they run
  (:func:`check_binop`, :data:`FILTERS`, :func:`check_call` for ``ljust``,
  ``replace``, ``format``...), and ``range()`` is capped at :data:`MAX_RANGE`.

A check is a counter, a length comparison, and every :data:`CLOCK_EVERY` steps a clock
read: no thread or signal per render, so bulk rendering keeps its speed. Going over raises :class:`RenderLimitExceeded`,
which :meth:`dispatch.render.Renderer.render_parts` turns into a
:class:`~dispatch.errors.TemplateError` naming the file.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import filters as jinja_filters
from jinja2 import pass_environment, pass_eval_context

#: Defaults per rendered part (``[templates] max_render_seconds`` and ``max_output_chars``).
DEFAULT_SECONDS = 5.0
DEFAULT_OUTPUT = 2_000_000
#: The most items ``range()`` may produce (Jinja's sandbox allows 100,000).
MAX_RANGE = 10_000
#: The largest power a template may compute, in bits of the result.
MAX_POWER_BITS = 100_000
#: Loop iterations and calls between two looks at the clock (a power of two).
CLOCK_EVERY = 32

#: Widths and precisions in ``%`` and ``{}`` formats.
_PERCENT_SPEC = re.compile(r"%[-#0 +]*([0-9]*)(?:\.([0-9]*))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*:([^{}]*)\}")


class RenderLimitExceeded(Exception):
    """A template went over its time or size budget (turned into a TemplateError naming the file)."""


@dataclass(slots=True)
class Budget:
    """What one render may spend: a deadline (``time.monotonic()``) and a number of characters."""

    deadline: float
    seconds: float
    max_output: int
    #: Loop iterations and calls so far (the clock is read every CLOCK_EVERY of them).
    steps: int = 0

    def step(self) -> None:
        """Count one loop iteration or call; past the deadline, raise :class:`RenderLimitExceeded`."""
        self.steps += 1
        if not self.steps & (CLOCK_EVERY - 1) and time.monotonic() > self.deadline:
            raise RenderLimitExceeded(f"took longer than {self.seconds:g} seconds (a loop or recursion without end?)")


_current: ContextVar[Budget | None] = ContextVar("dispatch_render_budget", default=None)


@contextmanager
def budget(seconds: float = DEFAULT_SECONDS, max_output: int = DEFAULT_OUTPUT) -> Iterator[Budget]:
    """Run the code inside with a render budget (per thread and task: a ContextVar)."""
    current = Budget(time.monotonic() + seconds, seconds, max_output)
    token = _current.set(current)
    try:
        yield current
    finally:
        _current.reset(token)


def max_output() -> int:
    """The output limit of the render under way (the default outside one)."""
    current = _current.get()
    return current.max_output if current is not None else DEFAULT_OUTPUT


def step() -> None:
    """Count a step of the render under way (see :meth:`Budget.step`)."""
    current = _current.get()
    if current is not None:
        current.step()


def check_size(size: int) -> None:
    """Raise :class:`RenderLimitExceeded` when ``size`` characters would exceed the output limit."""
    limit = max_output()
    if size > limit:
        raise RenderLimitExceeded(f"makes more than {limit:,} characters of text")


def bounded_concat(chunks: Iterable[str]) -> str:
    """``"".join`` for ``{% set %}`` blocks and macro results, within the output limit."""
    text = "".join(chunks)
    check_size(len(text))
    return text


def render_bounded(chunks: Iterable[str]) -> str:
    """Join a template's output chunks, checking the size as they come.

    (Time is checked in loops and calls: output between two of those is bounded by the
    template's own length and the size checks.)
    """
    out: list[str] = []
    size, limit = 0, max_output()
    for chunk in chunks:
        size += str.__len__(chunk)
        if size > limit:
            check_size(size)
        out.append(chunk)
    return "".join(out)


def bounded_loop(iterable: Any) -> Any:
    """The ``iter`` of every ``{% for %}``: each iteration checks the deadline."""
    current = _current.get()
    if current is None:
        return iterable
    return _guarded(iterable, current)


def _guarded(iterable: Any, current: Budget) -> Iterator[Any]:
    for item in iterable:
        current.step()
        yield item


def bounded_range(*args: int) -> range:
    """``range()`` for templates, at most :data:`MAX_RANGE` items."""
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise RenderLimitExceeded(f"range() of more than {MAX_RANGE:,} items")
    return numbers


def length_of(value: Any) -> int | None:
    """The length of a string, bytes, list or tuple (None for anything else).

    Read through the base type, so a render-cache placeholder (which refuses ``len()``)
    is measured without being touched.
    """
    for kind in (str, bytes, list, tuple):
        if isinstance(value, kind):
            return kind.__len__(value)
    return None


def check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse ``*``, ``+``, ``**`` and ``%`` whose result would be too big, before computing it."""
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            size = length_of(seq)
            if size is not None and isinstance(times, int) and size * times > max_output():
                check_size(size * times)
    elif operator == "+":
        a, b = length_of(left), length_of(right)
        if a is not None and b is not None:
            check_size(a + b)
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1:
            if right > 0 and left.bit_length() * right > MAX_POWER_BITS:
                raise RenderLimitExceeded(f"a power with more than {MAX_POWER_BITS:,} bits")
        elif isinstance(right, int) and abs(right) > MAX_POWER_BITS:
            raise RenderLimitExceeded(f"a power with an exponent above {MAX_POWER_BITS:,}")
    elif operator == "%" and isinstance(left, str):
        _check_format(left, right if isinstance(right, tuple) else (right,), {})


def _check_format(template: str, args: Iterable[Any], kwargs: dict[str, Any]) -> None:
    template = str.__str__(template)  # a render-cache placeholder, read without touching it
    numbers = [n for match in _PERCENT_SPEC.finditer(template) for n in match.groups() if n]
    numbers += [n for match in _BRACE_SPEC.finditer(template) for n in re.findall("[0-9]+", match.group(1))]
    if numbers:
        check_size(len(template) + max(int(n) if len(n) <= 12 else 10**12 for n in numbers))
    limit = max_output()
    values = list(args) + list(kwargs.values())
    if any(isinstance(v, int) and v > limit for v in values) and ("*" in template or "{" in template):
        raise RenderLimitExceeded("a format width above the output limit")


def _check_width(width: Any, lines: int = 1, length: int = 0) -> None:
    if isinstance(width, int):
        check_size(length + max(width, 0) * lines)
    elif isinstance(width, str):
        check_size(length + str.__len__(width) * lines)


def check_call(obj: Any, args: tuple, kwargs: dict[str, Any]) -> None:
    """Checks before a template calls ``obj``: the clock, and the result size of a padding,
    ``replace``, ``join`` or ``format`` string method.

    Every function, macro and method call passes through here, so a runaway recursion
    meets the deadline as surely as a loop does.
    """
    step()
    target = getattr(obj, "__wrapped__", obj)  # str.format comes wrapped by the sandbox
    owner = getattr(target, "__self__", None)
    if isinstance(owner, str | bytes):
        check = _STRING_CHECKS.get(getattr(target, "__name__", ""))
        if check is not None:
            check(owner, args, kwargs)


def _pad_check(owner: Any, args: tuple, kwargs: dict) -> None:
    width = args[0] if args else kwargs.get("width", 0)
    _check_width(width, length=len(owner))


def _expandtabs_check(owner: Any, args: tuple, kwargs: dict) -> None:
    size = args[0] if args else kwargs.get("tabsize", 8)
    if isinstance(size, int):
        tab = "\t" if isinstance(owner, str) else b"\t"
        check_size(len(owner) + owner.count(tab) * max(size, 0))


def _replace_check(owner: Any, args: tuple, kwargs: dict) -> None:
    if len(args) >= 2 and length_of(args[0]) is not None and length_of(args[1]) is not None:
        old, new = args[0], args[1]
        count = owner.count(old) if old else len(owner) + 1
        check_size(len(owner) + count * max(len(new) - len(old), 0))


def _join_check(owner: Any, args: tuple, kwargs: dict) -> None:
    if args and hasattr(args[0], "__len__"):
        check_size(len(owner) * len(args[0]))


def _format_check(owner: Any, args: tuple, kwargs: dict) -> None:
    if isinstance(owner, str):
        mapping = args[0] if args and isinstance(args[0], dict) else kwargs
        _check_format(owner, args, dict(mapping))


_STRING_CHECKS: dict[str, Callable[[Any, tuple, dict], None]] = {
    "ljust": _pad_check,
    "rjust": _pad_check,
    "center": _pad_check,
    "zfill": _pad_check,
    "expandtabs": _expandtabs_check,
    "replace": _replace_check,
    "join": _join_check,
    "format": _format_check,
    "format_map": _format_check,
}


# -- filters that can multiply a size, checked first ---------------------------------------


def _center(value: Any, width: int = 80) -> str:
    _check_width(width, length=len(str(value)))
    return jinja_filters.do_center(value, width)


def _indent(s: str, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(s)
    _check_width(width, lines=text.count("\n") + 1, length=len(text))
    return jinja_filters.do_indent(text, width, first, blank)


def _format(value: str, *args: Any, **kwargs: Any) -> str:
    _check_format(str(value), args, kwargs)
    return jinja_filters.do_format(value, *args, **kwargs)


@pass_eval_context
def _replace(eval_ctx: Any, s: str, old: str, new: str, count: int | None = None) -> str:
    text = str(s)
    _replace_check(text, (str(old), str(new)), {})
    return jinja_filters.do_replace(eval_ctx, s, old, new, count)


@pass_environment
def _wordwrap(environment: Any, s: str, width: int = 79, break_long_words: bool = True, *args: Any, **kw: Any) -> str:
    wrapstring = args[0] if args else kw.get("wrapstring") or environment.newline_sequence
    text = str(s)
    if isinstance(width, int) and width > 0:
        _check_width(wrapstring, lines=len(text) // width + text.count("\n") + 1, length=len(text))
    return jinja_filters.do_wordwrap(environment, s, width, break_long_words, *args, **kw)


def _batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
    if fill_with is not None and isinstance(linecount, int) and linecount > MAX_RANGE:
        raise RenderLimitExceeded(f"batch() of more than {MAX_RANGE:,} items")
    return jinja_filters.do_batch(value, linecount, fill_with)


def _slice(value: Any, slices: int, fill_with: Any = None) -> Any:
    if isinstance(slices, int) and slices > MAX_RANGE:
        raise RenderLimitExceeded(f"slice() into more than {MAX_RANGE:,} parts")
    return jinja_filters.sync_do_slice(value, slices, fill_with)


@pass_eval_context
def _tojson(eval_ctx: Any, value: Any, indent: int | None = None) -> Any:
    if isinstance(indent, int) and indent > 16:
        raise RenderLimitExceeded("tojson() with an indent above 16")
    return jinja_filters.do_tojson(eval_ctx, value, indent)


#: Jinja's size-amplifying filters, replaced by checked versions in every template environment.
FILTERS: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "format": _format,
    "replace": _replace,
    "wordwrap": _wordwrap,
    "batch": _batch,
    "slice": _slice,
    "tojson": _tojson,
    "dispatch_loop": bounded_loop,
}
