"""The persona set partition: the only place that knows how a set's Dagster partition key is spelled."""

from dagster import DynamicPartitionsDefinition

from persona_pipeline.errors import PersonaSetError

persona_set_partitions = DynamicPartitionsDefinition(name="persona_sets")
PREFIX = "set-"


def partition_key(persona_set_id: int) -> str:
    """A persona set's partition: by id, so a rename never orphans its runs."""
    return f"{PREFIX}{persona_set_id}"


def persona_set_id(key: str) -> int:
    if not key.startswith(PREFIX) or not key[len(PREFIX) :].isdigit():
        raise PersonaSetError(f"{key!r} is not a persona set partition (expected '{PREFIX}<id>')")
    return int(key[len(PREFIX) :])
