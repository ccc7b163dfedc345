"""The persona set lifecycle: the queued-set sensor, the build outcome sensors, and notifications."""

from __future__ import annotations

import smtplib
import socket
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from dagster import (
    DagsterEventType,
    DagsterInstance,
    build_run_status_sensor_context,
)
from dagster._daemon.types import DaemonHeartbeat
from sqlalchemy.engine import Engine

from persona_pipeline import notify
from persona_pipeline.config import smtp_settings
from persona_pipeline.core.domain import names_by_id
from persona_pipeline.definitions import make_definitions
from persona_pipeline.defs.persona_sets.partitions import partition_key
from persona_pipeline.defs.shared.resources import WarehouseResource
from persona_pipeline.errors import ConfigError, PersonaSetError
from persona_pipeline.persona_sets import catalog, lifecycle
from persona_pipeline.runtime.instance import instance
from persona_pipeline.runtime.jobs import build_persona_set
from persona_pipeline.studies.report import default_report_path
from persona_pipeline.warehouse import persona_sets as store
from persona_pipeline.warehouse.memberships import read_memberships
from persona_pipeline_tests.helpers import sensor_tick

HOSTILE = "Q4\r\nBcc: everyone@example.com <b>bold</b>"


class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802 - aiosmtpd's hook
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("PERSONA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PERSONA_SMTP_PORT", str(port))
    monkeypatch.setenv("PERSONA_SMTP_SENDER", "personas@example.test")
    monkeypatch.setenv("PERSONA_SMTP_RECIPIENTS", "a@example.test, b@example.test")
    yield inbox
    controller.stop()


def test_queued_sets_are_launched_once_per_queueing(seeded: Engine) -> None:
    assert sensor_tick("queued_persona_sets").skip_reason.skip_message == "no queued persona set"
    record = catalog.create(seeded, "Customers", "customers")
    first, second = sensor_tick("queued_persona_sets"), sensor_tick("queued_persona_sets")
    assert [r.partition_key for r in first.run_requests] == [partition_key(record.id)]
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]  # deduplicated
    assert first.dynamic_partitions_requests[0].partition_keys == [partition_key(record.id)]
    instance().add_dynamic_partitions("persona_sets", [partition_key(record.id)])
    assert not sensor_tick("queued_persona_sets").dynamic_partitions_requests
    assert build_persona_set("Customers", lambda _: None, study=False).success
    assert sensor_tick("queued_persona_sets").skip_reason.skip_message == "no queued persona set"
    time.sleep(1.1)  # queued again later: a new run key, so a new run
    lifecycle.queue(seeded, record)
    again = sensor_tick("queued_persona_sets").run_requests
    assert len(again) == 1 and again[0].run_key != first.run_requests[0].run_key


def _run_event(run_id: str, event_type: DagsterEventType):  # noqa: ANN202
    records = DagsterInstance.get().fetch_run_status_changes(event_type, limit=50).records
    return next(r.event_log_entry.dagster_event for r in records if r.run_id == run_id)


def _run_status_sensor(name: str, run_id: str, event_type: DagsterEventType) -> None:
    """Evaluate a run-status sensor on a finished run, as the daemon does when it sees the run's status."""
    dagster = instance()
    context = build_run_status_sensor_context(
        sensor_name=name,
        dagster_event=_run_event(run_id, event_type),
        dagster_instance=dagster,
        dagster_run=dagster.get_run_by_id(run_id),
        resources={"warehouse": WarehouseResource()},
    )
    if event_type == DagsterEventType.RUN_FAILURE:
        context = context.for_run_failure()
    make_definitions().resolve_sensor_def(name)(context)


def test_build_outcomes_notify_by_smtp(seeded: Engine, smtp_server: _Inbox) -> None:
    with pytest.raises(PersonaSetError, match="control characters"):  # refused as a name today
        catalog.create(seeded, HOSTILE, "customers")
    record = catalog.create(seeded, "Q4", "customers")
    with seeded.begin() as conn:  # a name stored by an older version, or written into the catalog by hand
        conn.execute(
            sa.text("UPDATE persona_sets SET name = :n WHERE id = :i"), {"n": HOSTILE, "i": record.id}
        )
    report = build_persona_set(HOSTILE, lambda _: None, study=False)
    assert report.success
    _run_status_sensor("persona_set_built", report.run_id, DagsterEventType.RUN_SUCCESS)
    recipients, message = smtp_server.messages[-1]
    assert recipients == ["a@example.test", "b@example.test"]
    assert "is ready" in message["Subject"] and "\n" not in message["Subject"] and message["Bcc"] is None
    assert "Bcc: everyone" in message["Subject"]  # shown as text, not a header
    personas = store.read_personas(seeded, store.get(seeded, HOSTILE).id)
    assert all(p.name in message.get_content() for p in personas)
    # it says where the report is, or how to write it (this build ran without its study)
    where = str(default_report_path(store.get(seeded, HOSTILE)))
    assert (
        "No report yet: persona-pipeline report" in message.get_content() and where in message.get_content()
    )


def test_failures_mark_the_set_errored_and_notify(seeded: Engine, smtp_server: _Inbox) -> None:
    record = catalog.create(seeded, "Tiny", "customers", n_personas=2)
    lifecycle.start_building(seeded, record)
    subject, body = lifecycle.build_finished(seeded, record.id, False, "the run was killed")
    assert (
        store.get(seeded, "Tiny").status == "errored"
        and store.get(seeded, "Tiny").error == "the run was killed"
    )
    notify.send(subject, body)
    _, message = smtp_server.messages[-1]
    assert "failed to build" in message["Subject"] and "the run was killed" in message.get_content()


def test_without_smtp_notifications_go_to_the_outbox(
    warehouse: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERSONA_SMTP_HOST", raising=False)
    where = notify.send("Persona set 'x' is ready", "body text")
    assert Path(where).suffix == ".eml" and notify.outbox_messages() == [Path(where)]
    message = message_from_bytes(Path(where).read_bytes(), policy=policy.default)
    assert message["Subject"] == "Persona set 'x' is ready" and "body text" in message.get_content()


def test_rename_update_and_rebuild(seeded: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    from persona_pipeline.cli import main

    catalog.create(seeded, "Customers", "customers")
    assert build_persona_set("Customers", lambda _: None, study=False).success
    record = store.get(seeded, "Customers")
    first = store.read_personas(seeded, record.id)
    assert (
        main(["persona-set", "rename-persona", "Customers", "--persona", "1", "--to", "Our Core Families"])
        == 0
    )
    assert (
        main(["persona-set", "rename-persona", "Customers", "--persona", "2", "--to", "our core families"])
        == 2
    )
    assert "persona 1 of 'Customers' is already named 'Our Core Families'" in capsys.readouterr().err
    assert main(["persona-set", "rename-persona", "Customers", "--persona", "99", "--to", "x"]) == 2
    assert "no persona 99" in capsys.readouterr().err

    capsys.readouterr()
    assert main(["persona-set", "rebuild", "Customers"]) == 0
    assert store.get(seeded, "Customers").status == "queued"
    assert "no Dagster daemon is running" in capsys.readouterr().out  # nothing would launch it
    # a daemon's sensor heartbeat, as `dagster-daemon run` writes it: the queue will be served, nothing said
    instance().add_daemon_heartbeat(DaemonHeartbeat(time.time(), "SENSOR", "test-daemon"))
    assert main(["persona-set", "rebuild", "Customers"]) == 0
    assert "daemon" not in capsys.readouterr().out
    assert build_persona_set("Customers", lambda _: None, study=False).success
    names = names_by_id(store.read_personas(seeded, record.id))
    assert names[1] == "Our Core Families"
    # beside the user's name, the one its traits give it now: a change of meaning shows there
    renamed = next(p for p in store.read_personas(seeded, record.id) if p.persona_id == 1)
    assert renamed.named_by_user and renamed.data_name == first[0].name
    assert main(["persona-set", "show", "Customers"]) == 0
    assert f"a name you gave; its traits alone name it {first[0].name!r} now" in capsys.readouterr().out
    assert {pid: n for pid, n in names.items() if pid != 1} == {p.persona_id: p.name for p in first[1:]}

    assert main(["persona-set", "update", "Customers", "--personas", "3"]) == 0
    assert "queued for a rebuild" in capsys.readouterr().out
    assert (
        store.get(seeded, "Customers").status == "queued" and store.get(seeded, "Customers").n_personas == 3
    )
    assert main(["persona-set", "update", "Customers", "--personas", "3"]) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert main(["persona-set", "update", "Customers", "--cohort", "nope"]) == 2
    assert main(["persona-set", "update", "Customers", "--traits", "age,shoe_size"]) == 2
    assert main(["persona-set", "update", "Customers", "--personas", "13"]) == 2
    assert "between 2 and 12" in capsys.readouterr().err
    assert main(["persona-set", "update", "Customers", "--traits", "age,urbanicity,dog_owner"]) == 0
    assert store.get(seeded, "Customers").traits == ["age", "urbanicity", "dog_owner"]
    assert build_persona_set("Customers", lambda _: None, study=False).success
    assert len(store.read_personas(seeded, record.id)) == 3


def test_deletion_goes_through_the_lineage_guard(
    seeded: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    import sqlalchemy as sa

    from persona_pipeline.cli import main
    from persona_pipeline.sql_models import default_models_dir
    from persona_pipeline_tests.helpers import table_rows

    root = tmp_path / "models"
    shutil.copytree(default_models_dir(), root)
    (root / "cohorts" / "dog_leads.sql").write_text(
        "SELECT contact_id FROM {{ ref('leads') }} WHERE 1 = 1", "utf-8"
    )
    monkeypatch.setenv("PERSONA_SQL_DIR", str(root))
    for name in ("Keep", "Drop"):
        catalog.create(seeded, name, "customers")
        assert build_persona_set(name, lambda _: None).success
    keep, drop = store.get(seeded, "Keep"), store.get(seeded, "Drop")
    assert main(["models", "run"]) == 0

    assert main(["models", "delete", "--only", "customers"]) == 2
    err = capsys.readouterr().err
    assert "persona set 'Keep'" in err and "persona set 'Drop'" in err and "Nothing was deleted" in err
    assert main(["models", "delete", "--only", "leads"]) == 2
    assert "SQL model 'dog_leads'" in capsys.readouterr().err
    assert (root / "cohorts" / "customers.sql").exists() and sa.inspect(seeded).has_table("customers")

    assert main(["persona-set", "delete", "Drop"]) == 0
    assert store.list_all(seeded)[0].name == "Keep" and len(store.list_all(seeded)) == 1
    for table in ("persona_memberships", "personas", "persona_builds", "persona_analysis"):
        with seeded.connect() as conn:
            left = conn.execute(
                sa.text(f"SELECT COUNT(*) FROM {table} WHERE persona_set_id = :i"), {"i": drop.id}
            ).scalar()
        assert left == 0, table
    assert table_rows(seeded, "persona_memberships") == len(read_memberships(seeded, keep.id))
    assert partition_key(drop.id) not in instance().get_dynamic_partitions("persona_sets")

    assert main(["models", "delete", "--only", "dog_leads"]) == 0
    assert (
        not sa.inspect(seeded).has_table("dog_leads")
        and (root / "cohorts" / "dog_leads.sql.deleted").exists()
    )

    instance().delete_dynamic_partition("persona_sets", partition_key(keep.id))  # behind the guard's back
    tick = sensor_tick("queued_persona_sets")
    assert tick.dynamic_partitions_requests[0].partition_keys == [partition_key(keep.id)]


def test_a_failed_analysis_leaves_the_built_set_ready(seeded: Engine, smtp_server: _Inbox) -> None:
    import sqlalchemy as sa

    catalog.create(seeded, "Everyone", "all_contacts")
    with seeded.begin() as conn:  # the Analysis reads orders; the personas do not
        conn.execute(sa.text("ALTER TABLE orders RENAME TO orders_elsewhere"))
    lines: list[str] = []
    report = build_persona_set("Everyone", lines.append)
    assert report.success and store.get(seeded, "Everyone").status == "ready"
    assert any("analysis or report failed" in line for line in lines)
    run = instance().get_run_by_id(report.run_id)
    assert run.status.value == "FAILURE"  # the one run built the personas, then its Analysis failed
    _run_status_sensor("persona_set_failed", report.run_id, DagsterEventType.RUN_FAILURE)
    _, message = smtp_server.messages[-1]
    assert "is ready, but its Analysis or report failed" in message["Subject"]
    assert store.get(seeded, "Everyone").status == "ready"  # not marked errored


def test_a_password_never_goes_to_a_server_in_clear(
    smtp_server: _Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a login and no TLS setting, STARTTLS is required: this test server offers none, so nothing is sent."""
    monkeypatch.setenv("PERSONA_SMTP_USER", "personas")
    monkeypatch.setenv("PERSONA_SMTP_PASSWORD", "s3cret")
    settings = smtp_settings()
    assert settings.tls == "starttls" and "s3cret" not in repr(settings)
    with pytest.raises(smtplib.SMTPNotSupportedError, match="STARTTLS"):
        notify.send("subject", "body")
    assert smtp_server.messages == []
    monkeypatch.setenv("PERSONA_SMTP_TLS", "none")  # said explicitly: the user's choice
    monkeypatch.delenv("PERSONA_SMTP_USER")
    notify.send("subject", "body")
    assert len(smtp_server.messages) == 1
    monkeypatch.setenv("PERSONA_SMTP_TLS", "sometimes")
    with pytest.raises(ConfigError, match="PERSONA_SMTP_TLS must be one of starttls, ssl, none"):
        smtp_settings()
