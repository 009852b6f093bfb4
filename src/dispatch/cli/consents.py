"""Command: consents (in progress)."""
