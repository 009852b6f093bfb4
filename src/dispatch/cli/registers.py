"""Command: registers (in progress)."""
