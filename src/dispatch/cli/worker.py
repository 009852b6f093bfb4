"""Command: worker (in progress)."""
