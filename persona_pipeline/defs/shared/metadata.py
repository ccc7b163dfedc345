"""Metadata helpers shared by the assets: tables shown as Markdown (every cell escaped), warehouse tables."""

import pandas as pd
from dagster import MetadataValue, TableColumn, TableSchema
from sqlalchemy.engine import Engine

from persona_pipeline.core.render.markdown import table
from persona_pipeline.warehouse.tables import column_types


def markdown_table(frame: pd.DataFrame) -> MetadataValue:
    """A small frame as a Markdown table; every cell and header escaped (names come from users)."""
    return MetadataValue.md(table(list(frame.columns), frame.itertuples(index=False)))


def table_metadata(engine: Engine, table: str) -> dict[str, MetadataValue]:
    """The warehouse table an asset writes, as the UI shows tables: its name and its columns' types."""
    columns = [TableColumn(name, kind) for name, kind in column_types(engine, table)]
    return {
        "dagster/table_name": MetadataValue.text(table),
        "dagster/column_schema": MetadataValue.table_schema(TableSchema(columns=columns)),
    }
