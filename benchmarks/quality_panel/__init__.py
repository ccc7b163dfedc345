"""The quality panel's parts: generated cases with a known truth, public labelled tables, clustering methods.

Used by benchmarks/quality.py (run as a script, so benchmarks/ is on the path) and by the fast test subset.
"""
