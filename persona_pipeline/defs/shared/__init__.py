"""Dagster wiring shared by every domain: resources, IO, the step executor, progress logging, metadata."""
