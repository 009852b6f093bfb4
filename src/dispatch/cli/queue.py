"""Command: queue (in progress)."""
