"""Fixtures for the policy tests; the helpers themselves live in ``policykit``."""

from __future__ import annotations

import pytest
from policykit import Kit


@pytest.fixture(scope="session")
def kit() -> Kit:
    """``decide()`` with the default PolicyConfig, LanguagesConfig and the built-in registers."""
    return Kit()
