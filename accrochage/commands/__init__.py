"""CLI commands, grouped by what they touch."""
