"""Command: campaign (in progress)."""
