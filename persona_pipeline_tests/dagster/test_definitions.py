"""Every Dagster definition, snapshotted: a change of wiring (an asset, an edge, a check, a job, a schedule, a
sensor) shows up in review as a change of definitions.snapshot.json.

After an intended change: PERSONA_UPDATE_SNAPSHOT=1 pytest persona_pipeline_tests/dagster/test_definitions.py
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import yaml
from dagster import Definitions

from persona_pipeline import config
from persona_pipeline.cli.parser import parser
from persona_pipeline.definitions import make_definitions
from persona_pipeline.defs.persona_sets.assets import persona_memberships
from persona_pipeline.defs.scoring.jobs import SCORING_POOL
from persona_pipeline.defs.shared.executor import DEFINITIONS_MODULE
from persona_pipeline.runtime.origin import CODE_LOCATION
from persona_pipeline_tests.helpers import REPO

SNAPSHOT = Path(__file__).with_name("definitions.snapshot.json")


def wiring(defs: Definitions) -> dict:
    """What the UI shows of the Definitions, in a stable order: assets with their edges, checks and kinds."""
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "upstream": sorted(k.to_user_string() for k in node.parent_keys),
            "partitioned": type(node.partitions_def).__name__ if node.partitions_def else None,
            "kinds": sorted(node.kinds),
            "materializable": node.is_materializable,
            "automation": node.automation_condition is not None,
        }
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    jobs = {}
    for job in sorted(defs.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue  # Dagster's implicit asset job
        jobs[job.name] = {
            "partitioned": type(job.partitions_def).__name__ if job.partitions_def else None,
            "ops": sorted(job.graph.node_dict),
        }
    schedules = {
        s.name: {"cron": s.cron_schedule, "job": s.job_name, "default_status": s.default_status.value}
        for s in defs.get_repository_def().schedule_defs
    }
    sensors = {
        s.name: {"default_status": s.default_status.value, "jobs": sorted(t.job_name for t in s.targets)}
        for s in sorted(defs.sensors or [], key=lambda s: s.name)
    }
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_definitions_match_their_snapshot() -> None:
    current = wiring(make_definitions())
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    if os.environ.get("PERSONA_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert json.loads(SNAPSHOT.read_text("utf-8")) == current, (
        "the Dagster wiring changed; if intended, rerun with PERSONA_UPDATE_SNAPSHOT=1 and review the diff"
    )


def test_the_snapshot_holds_what_the_ui_promises() -> None:
    """Independent of the stored file: the chain's edges, the blocking check, every job and sensor."""
    current = wiring(make_definitions())
    assert current["assets"]["persona_memberships"]["upstream"] == [
        "persona_model",
        "personas",
        "validated_traits",
    ]
    assert "cohorts/customers" in current["assets"]["cohort_traits"]["upstream"]
    assert current["checks"] == [
        "persona_memberships:memberships_match_valid_rows",
        "persona_model:split_half_stability",
        "personas:smallest_persona_share",
        "personas:unchanged_contacts_keep_persona",
        "validated_traits:quarantine_share_within_limit",
    ]
    # what each asset reads is upstream of it (the UI's staleness rests on these edges)
    upstream = {name: set(asset["upstream"]) for name, asset in current["assets"].items()}
    assert "sources/contacts" in upstream["cohort_traits"]
    assert {"persona_memberships", "sources/trait_history"} <= upstream["membership_snapshot"]
    assert {"persona_analysis", "personas", "persona_flow"} <= upstream["persona_report"]
    assert {"personas", "persona_memberships"} <= upstream["persona_explore"]
    assert {"membership_snapshot", "persona_memberships"} <= upstream["persona_flow"]
    assert set(current["jobs"]) == {
        "observe_sources",
        "sql_models",
        "build_persona_set",
        "study_persona_set",
        "snapshot_memberships",
        "score_pipeline",
        "explore_persona_sets",
    }
    assert set(current["sensors"]) == {
        "queued_persona_sets",
        "persona_set_built",
        "persona_set_failed",
        "scheduled_pipelines",
        "changed_contacts",
        "fresh_payloads",
        "explore_refresh",
        "persona_automation",
    }
    # automation the README calls on is on
    assert all(sensor["default_status"] == "RUNNING" for sensor in current["sensors"].values())
    assert current["schedules"]["snapshot_memberships_schedule"]["default_status"] == "RUNNING"


def test_the_cli_files_its_runs_under_the_location_the_ui_loads() -> None:
    """CLI runs carry CODE_LOCATION as their origin; workspace.yaml and `dagster dev` without it must name the
    location the same, or the UI would list those runs under no job."""
    (entry,) = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"]
    assert entry["python_module"] == {"module_name": DEFINITIONS_MODULE, "location_name": CODE_LOCATION}
    dagster = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]
    assert (dagster["module_name"], dagster["code_location_name"]) == (DEFINITIONS_MODULE, CODE_LOCATION)
    (deployment,) = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())[
        "dagster-user-deployments"
    ]["deployments"]
    assert deployment["name"] == CODE_LOCATION  # the chart names the location after the deployment


def test_the_distributed_deployments_name_real_settings_commands_and_pools() -> None:
    """The compose file and the Kubernetes manifests are not started here (no Docker daemon, no cluster): what
    they name must exist, or an operator would meet the mistake only when deploying."""
    deploy = REPO / "deploy"
    compose = yaml.safe_load((deploy / "compose" / "docker-compose.yaml").read_text())
    (worker_config, *_) = [
        d
        for d in yaml.safe_load_all((deploy / "helm" / "celery-workers.yaml").read_text())
        if d["kind"] == "ConfigMap"
    ]
    (worker,) = [
        d
        for d in yaml.safe_load_all((deploy / "helm" / "celery-workers.yaml").read_text())
        if d["kind"] == "Deployment"
    ]
    names = set(compose["x-persona-env"]) | set(worker_config["data"])
    persona_names = {n for n in names if n.startswith("PERSONA_")}
    assert persona_names and persona_names <= config.SETTING_NAMES, persona_names - config.SETTING_NAMES
    assert (
        compose["x-persona-env"]["PERSONA_EXECUTOR"] == worker_config["data"]["PERSONA_EXECUTOR"] == "celery"
    )

    (container,) = worker["spec"]["template"]["spec"]["containers"]
    for command in (compose["services"]["worker"]["command"], container["command"]):
        assert command[:2] == ["persona-pipeline", "worker"]
        parsed = parser().parse_args(command[1:])
        assert parsed.func == "worker:worker" and parsed.concurrency >= 1

    (entry,) = yaml.safe_load((deploy / "compose" / "workspace.yaml").read_text())["load_from"]
    assert entry["grpc_server"]["location_name"] == CODE_LOCATION
    assert entry["grpc_server"]["host"] in compose["services"]
    code = compose["services"]["code"]["command"]
    assert code[code.index("--location-name") + 1] == CODE_LOCATION and DEFINITIONS_MODULE in code
    (deployment,) = yaml.safe_load((deploy / "helm" / "values-celery.yaml").read_text())[
        "dagster-user-deployments"
    ]["deployments"]
    assert deployment["name"] == CODE_LOCATION
    assert {"name": worker_config["metadata"]["name"]} in deployment["envConfigMaps"]
    guide = (deploy / "DISTRIBUTED.md").read_text()
    assert f"dagster instance concurrency set {SCORING_POOL}" in guide


def test_the_memberships_step_keeps_the_cohort_upstream_without_loading_it() -> None:
    """At 10M contacts, loading the validated cohort again only for its contact ids held 2 GB more at the
    build's peak: the model's outcome carries them, and the edge stays for lineage and staleness."""
    loaded = {name: not spec.dagster_type.is_nothing for name, spec in persona_memberships.op.ins.items()}
    assert loaded == {"persona_model": True, "personas": True, "validated_traits": False}
