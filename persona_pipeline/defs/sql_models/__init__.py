"""Dagster wiring of one domain; see definitions.py."""
