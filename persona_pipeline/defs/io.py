"""Where build steps hand data to each other: files under the persona home, resolved when a run starts.

DataFrames go to Parquet (a 1M-row cohort writes and reads in well under a second, types intact); anything
else is pickled. Resolving the folder per run (not at import) keeps runs with different PERSONA_HOME apart.
"""

import pickle
from typing import Any

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext
from dagster._core.storage.fs_io_manager import PickledObjectFilesystemIOManager
from upath import UPath

from persona_pipeline.settings import builds_dir

PARQUET_MAGIC = b"PAR1"


class _ParquetOrPickle(PickledObjectFilesystemIOManager):
    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        if isinstance(obj, pd.DataFrame):
            obj.to_parquet(str(path), index=False)
        else:
            super().dump_to_path(context, obj, path)

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        with open(str(path), "rb") as handle:
            if handle.read(4) == PARQUET_MAGIC:
                return pd.read_parquet(str(path))
            handle.seek(0)
            return pickle.load(handle)  # noqa: S301 - our own step outputs, written by this IO manager


class BuildsIOManager(ConfigurableIOManager):
    """Step outputs in `base_dir`, default PERSONA_HOME/builds/dagster_io."""

    base_dir: str = ""

    def _inner(self) -> _ParquetOrPickle:
        return _ParquetOrPickle(base_dir=self.base_dir or str(builds_dir() / "dagster_io"))

    def handle_output(self, context: OutputContext, obj: object) -> None:
        self._inner().handle_output(context, obj)

    def load_input(self, context: InputContext) -> object:
        return self._inner().load_input(context)
