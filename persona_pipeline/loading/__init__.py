"""Bring your own data: contacts (and orders) from CSV or Parquet, typed and mapped by a traits file.

`reading` opens files and streams their chunks, `cells` types each chunk's cells, `load` runs one load in one
transaction (see its docstring).
"""

from persona_pipeline.core.dates import BLANK_WORDS
from persona_pipeline.loading.cells import INT64_MAX, REJECT_COLUMNS, whole_ids
from persona_pipeline.loading.load import DEFAULT_MAX_REJECT_SHARE, LoadOptions, LoadReport, load_files

__all__ = [
    "BLANK_WORDS",
    "DEFAULT_MAX_REJECT_SHARE",
    "INT64_MAX",
    "REJECT_COLUMNS",
    "LoadOptions",
    "LoadReport",
    "load_files",
    "whole_ids",
]
