"""The lineage guard's consumers and refusal, without a warehouse."""

from __future__ import annotations

import pytest

from persona_pipeline.core.lineage import (
    LineageError,
    PipelineRef,
    cohort_consumers,
    guard,
    persona_set_consumers,
)

PIPELINES = [
    PipelineRef("nightly", population=("customers",), payload=("Customers",)),
    PipelineRef("leads", population=("leads", "customers"), payload=("Leads", "Customers")),
]


def test_consumers_are_found_for_persona_sets_and_cohorts() -> None:
    assert [c.name for c in persona_set_consumers("Customers", PIPELINES)] == ["nightly", "leads"]
    assert persona_set_consumers("Other", PIPELINES) == []
    found = cohort_consumers(
        "customers",
        [("Customers", "customers"), ("Leads", "leads")],
        PIPELINES,
        {"vip": ["customers"], "customers": []},
    )
    assert [(c.kind, c.name) for c in found] == [
        ("persona set", "Customers"),
        ("pipeline", "nightly"),
        ("pipeline", "leads"),
        ("SQL model", "vip"),
    ]


def test_guard_names_every_consumer_and_what_to_do() -> None:
    guard("cohort 'x'", [], "advice")  # nothing consumes it: no error
    with pytest.raises(
        LineageError, match=r"pipeline 'nightly' \(payload\); pipeline 'leads' \(payload\)\. Stop"
    ) as info:
        guard("persona set 'Customers'", persona_set_consumers("Customers", PIPELINES), "Stop them first.")
    assert len(info.value.consumers) == 2 and str(info.value).endswith("Nothing was deleted.")
