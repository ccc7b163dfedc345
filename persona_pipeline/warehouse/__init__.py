"""The warehouse layer: SQLAlchemy only (engine, tables, bulk IO, catalog rows, scores); no Dagster."""
