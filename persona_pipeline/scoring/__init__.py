"""Scoring pipelines as a domain: defining them (pipelines), running them (runs), one contact at a time (realtime)."""
