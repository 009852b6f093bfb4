"""Command: history (in progress)."""
