"""Metadata helpers shared by the assets: tables shown as Markdown, every cell escaped."""

import pandas as pd
from dagster import MetadataValue

from persona_pipeline.core.render.markdown import table


def markdown_table(frame: pd.DataFrame) -> MetadataValue:
    """A small frame as a Markdown table; every cell and header escaped (names come from users)."""
    return MetadataValue.md(table(list(frame.columns), frame.itertuples(index=False)))
