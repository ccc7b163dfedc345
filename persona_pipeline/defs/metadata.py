"""Metadata helpers shared by the assets."""

import pandas as pd
from dagster import MetadataValue

from persona_pipeline.persona_build import markdown_escape


def markdown_table(frame: pd.DataFrame) -> MetadataValue:
    """A small frame as a Markdown table; every cell and header escaped (names come from users)."""
    head = "| " + " | ".join(markdown_escape(str(c)) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = [
        "| " + " | ".join(markdown_escape(str(v)) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return MetadataValue.md("\n".join([head, rule, *body]))
