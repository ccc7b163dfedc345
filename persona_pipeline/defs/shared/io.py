"""Where steps hand data to each other: a folder or URL every step can reach, or the warehouse.

Step outputs move as data, never as pickles (a pickle from shared storage would run code in the next step's
process): DataFrames as Arrow IPC, uncompressed (a 1M-row cohort writes in about 0.1 s and is read back
memory-mapped from a local file, types intact; Parquet took 0.5 s to write); a build's outcome as Arrow too,
its arrays as columns and its description as JSON in the schema's metadata; anything else as JSON.

Where is PERSONA_STEP_STORAGE (config.step_storage), resolved per run, not at import: a local folder (the
default, in the persona home), an fsspec URL that workers on other hosts share (`s3://…`), or `warehouse`
(the step_outputs table: under Celery nothing else needs to be shared).
"""

from __future__ import annotations

import io
import json
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
from dagster import ConfigurableIOManager, InputContext, OutputContext, UPathIOManager
from upath import UPath

from persona_pipeline import files
from persona_pipeline.config import WAREHOUSE_STEP_STORAGE, step_storage
from persona_pipeline.core.model import BuildOutcome
from persona_pipeline.warehouse import step_outputs
from persona_pipeline.warehouse.engine import get_engine

ARROW_MAGIC = b"ARROW1"
OUTCOME_KEY = b"persona_pipeline.build_outcome"
LOCAL_PROTOCOLS = ("", "file", "local")


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, for JSON."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(
        f"a step output of type {type(value).__name__} cannot be handed on as data: return a DataFrame, a "
        "BuildOutcome or JSON-able values"
    )


def _arrow_table(obj: Any) -> pa.Table | None:
    """A frame or a build outcome as one Arrow table (None for anything else)."""
    if isinstance(obj, pd.DataFrame):
        return pa.Table.from_pandas(obj, preserve_index=False)
    if isinstance(obj, BuildOutcome):
        meta, arrays = obj.to_parts()
        return pa.table(arrays).replace_schema_metadata({OUTCOME_KEY: json.dumps(meta, default=_plain)})
    return None


def encode(obj: Any) -> bytes:
    """A step output as Arrow IPC file bytes (frames, build outcomes) or JSON text."""
    buffer = io.BytesIO()
    write_output(obj, buffer)
    return buffer.getvalue()


def write_output(obj: Any, handle: IO[bytes]) -> None:
    """What `encode` returns, streamed into an open binary file: a 10M-contact cohort (about 2 GB) is never
    held twice in memory nor copied into one bytes object (3.5 s of a 10M build's handoffs; BENCHMARKS.md)."""
    table = _arrow_table(obj)
    if table is None:
        handle.write(json.dumps(obj, default=_plain).encode("utf-8"))
        return
    with ipc.new_file(pa.PythonFile(handle, mode="w"), table.schema) as writer:
        writer.write_table(table)


def _from_arrow(source: pa.NativeFile | pa.Buffer) -> Any:
    reader = ipc.open_file(source)
    table = reader.read_all()
    meta = (reader.schema.metadata or {}).get(OUTCOME_KEY)
    if meta is None:
        return table.to_pandas()
    arrays = {name: table.column(name).to_numpy() for name in table.column_names}
    return BuildOutcome.from_parts(json.loads(meta), arrays)


def decode(payload: bytes) -> Any:
    """What `encode` wrote."""
    if payload[:6] == ARROW_MAGIC:
        return _from_arrow(pa.py_buffer(payload))
    return json.loads(payload.decode("utf-8"))


class _ArrowOrJson(UPathIOManager):
    extension = ""

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.protocol not in LOCAL_PROTOCOLS:
            path.write_bytes(encode(obj))  # an object store puts an object whole or not at all
            return
        with files.atomic_output(str(path)) as handle:  # a killed step never leaves half a file to read
            write_output(obj, handle)

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        if path.protocol not in LOCAL_PROTOCOLS:
            return decode(path.read_bytes())
        with open(str(path), "rb") as handle:
            is_arrow = handle.read(6) == ARROW_MAGIC
        if not is_arrow:
            return json.loads(path.read_text(encoding="utf-8"))
        # memory-mapped and not closed here: the arrays read from the map keep it open while they live
        return _from_arrow(pa.memory_map(str(path)))


def output_key(context: OutputContext | InputContext) -> str:
    """An asset's output by its path and partition (a later run reads it), an op's by run, step and name.

    For an input, the key of the upstream output it reads.
    """
    if context.has_asset_key:
        parts = list(context.asset_key.path)
        if context.has_asset_partitions:
            parts.append(context.asset_partition_key)
        return "assets/" + "/".join(parts)
    identified = context.upstream_output if isinstance(context, InputContext) else context
    return "runs/" + "/".join(identified.get_identifier())


class BuildsIOManager(ConfigurableIOManager):
    """Step outputs where PERSONA_STEP_STORAGE says (or `base_dir`, when set): files or the warehouse."""

    base_dir: str = ""

    def _where(self) -> str:
        return self.base_dir or step_storage()

    def handle_output(self, context: OutputContext, obj: object) -> None:
        where = self._where()
        if where == WAREHOUSE_STEP_STORAGE:
            step_outputs.save(get_engine(), output_key(context), encode(obj))
        else:
            _ArrowOrJson(base_path=UPath(where)).handle_output(context, obj)

    def load_input(self, context: InputContext) -> object:
        where = self._where()
        if where == WAREHOUSE_STEP_STORAGE:
            return decode(step_outputs.load(get_engine(), output_key(context)))
        return _ArrowOrJson(base_path=UPath(where)).load_input(context)
