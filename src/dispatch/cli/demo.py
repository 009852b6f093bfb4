"""Command: demo (in progress)."""
