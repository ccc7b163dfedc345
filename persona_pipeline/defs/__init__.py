"""Dagster wiring only: each asset reads inputs, calls the core, writes outputs and reports metadata."""
