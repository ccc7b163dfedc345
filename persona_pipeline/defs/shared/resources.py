"""The warehouse as a Dagster resource: the same engine the CLI uses."""

from dagster import ConfigurableResource
from sqlalchemy.engine import Engine

from persona_pipeline.warehouse.engine import describe, get_engine


class WarehouseResource(ConfigurableResource):
    """A SQLAlchemy URL; empty means PERSONA_WAREHOUSE_URL or the embedded SQLite file."""

    url: str = ""

    def engine(self) -> Engine:
        return get_engine(self.url or None)

    def describe(self) -> str:
        return describe(self.engine())
