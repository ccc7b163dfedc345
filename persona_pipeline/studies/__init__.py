"""Studying built persona sets: Analysis, Flow over time, the report, Explore and exports."""
