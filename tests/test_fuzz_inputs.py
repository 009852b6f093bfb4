"""Property-based: whatever shape of recipient and data comes in, only a DispatchError comes out.

Recipients and data are the valid samples with some keys replaced by values of any
JSON shape — huge strings, deep nesting, odd numbers, strings made to look like
dispatch's own markers — so most examples get past the first checks and reach the
deeper ones. ``decide()`` and ``dispatch()`` either succeed or raise a
:class:`~dispatch.errors.DispatchError`, and a refused ``dispatch()`` writes no message.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dispatch.errors import DispatchError
from dispatch.messages import BUILTIN_TYPES
from dispatch.samples import sample_data, sample_recipient

NOW = datetime(2027, 1, 11, 9, 30, tzinfo=UTC)
TYPES = [t.name for t in BUILTIN_TYPES]
RECIPIENT_KEYS = [
    "id",
    "country",
    "language",
    "kind",
    "status",
    "birth_date",
    "last_invoice_paid_on",
    "data_verified_on",
    "email",
    "phone",
    "address",
    "preferred_channels",
    "consents",
    "marketing_blocked",
    "newsletter",
]
#: Data fields templates read when given (not required, so not checked by kind).
OPTIONAL_DATA = sorted(
    {name for t in BUILTIN_TYPES for name in t.optional}
    | {"duration", "ends_on", "terms_url", "if_no_action", "current_product", "offer_url"}
)
ADDRESS_KEYS = ["name", "street", "postal_code", "city", "country"]
CONSENT_KEYS = ["purpose", "channel", "granted", "at", "source", "wording_version"]

#: Strings that broke something once, or look like dispatch's own syntax.
NASTY = [
    "",
    " ",
    "²",
    "٣",
    "1" * 5000,
    "9" * 30,
    "P99999999999M",
    "abc\n@example.fi",
    "abc@example.fi\r\nBcc: x@example.org",
    "\ue000qa\ue001",
    "\ue000qXa\ue001\ue000za\ue001",
    "{{ 7*7 }}",
    "{% for x in range(10) %}x{% endfor %}",
    '=HYPERLINK("http://evil.example")',
    "+358401234567",
    "2027-02-30",
    "2027-01-11T25:00",
    "NaN",
    "-Infinity",
    "1e999",
    "\x00\x1b[2J",
    "\u2028\u2029\x85",
    "email",
    "all",
    "marketing",
    "https://example.fi/\n",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**4000), max_value=10**4000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(NASTY),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@dataclass(frozen=True)
class Deep:
    """Stands for a value nested ``depth`` levels deep (built in the test: Hypothesis cannot print one)."""

    depth: int
    as_list: bool

    def build(self) -> Any:
        value: Any = "deep"
        for _ in range(self.depth):
            value = [value] if self.as_list else {"a": value}
        return value


def built(value: Any) -> Any:
    """``value`` with every :class:`Deep` and :class:`Huge` replaced by the value it stands for."""
    if isinstance(value, Deep | Huge):
        return value.build()
    if isinstance(value, dict):
        return {k: built(v) for k, v in value.items()}
    if isinstance(value, list):
        return [built(v) for v in value]
    return value


@dataclass(frozen=True)
class Huge:
    """Stands for a string of ``size`` characters (built in the test, so reports stay short)."""

    size: int
    char: str

    def build(self) -> str:
        return self.char * self.size


deep_values = st.builds(Deep, st.integers(min_value=30, max_value=3000), st.booleans())
huge_values = st.builds(Huge, st.integers(min_value=1000, max_value=2_000_000), st.sampled_from(["x", "9", "é", "\n"]))
any_value = st.one_of(json_values, deep_values, huge_values, st.sampled_from(NASTY))


def mutated(base: dict[str, Any], keys: list[str], extra: st.SearchStrategy) -> st.SearchStrategy:
    """``base`` with a few of ``keys`` (or new keys) set to anything."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=8), extra, max_size=3).map(
        lambda changes: {**base, **changes}
    )


@st.composite
def recipients(draw) -> Any:
    base = sample_recipient("fi", "FI")
    kind = draw(st.sampled_from(["top", "address", "consent", "anything"]))
    if kind == "anything":
        return draw(any_value)
    if kind == "address":
        address = draw(mutated(base["address"], ADDRESS_KEYS, any_value))
        return {**base, "address": address}
    if kind == "consent":
        consent = {"purpose": "marketing", "channel": "email", "granted": True, "at": "2026-01-01"}
        entries = draw(st.lists(mutated(consent, CONSENT_KEYS, any_value), min_size=1, max_size=3))
        return {**base, "consents": entries}
    return draw(mutated(base, RECIPIENT_KEYS, any_value))


@st.composite
def inputs(draw) -> tuple[str, Any, Any]:
    message_type = draw(st.sampled_from(TYPES))
    data = sample_data(message_type, "FI")
    if draw(st.booleans()):
        data = draw(st.one_of(mutated(data, [*data, *OPTIONAL_DATA], any_value), any_value))
    recipient = draw(recipients())
    return message_type, recipient, data


@pytest.fixture(scope="module")
def fuzz_dispatcher(tmp_path_factory):
    from dispatch import Dispatcher

    folder = tmp_path_factory.mktemp("fuzz")
    d = Dispatcher.from_config(
        overrides={
            "store": {"url": f"sqlite:///{folder / 'fuzz.db'}"},
            "outbox": str(folder / "outbox"),
            "links": {"base_url": "https://energia.example.fi/dispatch", "secret": "fuzz-secret"},
            "channels": {"letter": {"render_threads": 1}},
        }
    )
    yield d
    d.close()


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
@given(inputs())
def test_only_dispatch_errors_escape_and_a_refusal_writes_nothing(fuzz_dispatcher, case):
    message_type, recipient, data = case
    recipient, data = built(recipient), built(data)
    d = fuzz_dispatcher
    with contextlib.suppress(DispatchError):
        d.decide(message_type, recipient, data, now=NOW)
    key = f"fuzz-{uuid.uuid4().hex}"  # finds this call's message row, whatever the worker does meanwhile
    try:
        d.dispatch(message_type, recipient, data, now=NOW, idempotency_key=key)
    except DispatchError as exc:
        event(f"refused: {type(exc).__name__}")
        assert d.store.find_by_key(key) is None
    else:
        assert d.store.find_by_key(key) is not None
        event("accepted")
