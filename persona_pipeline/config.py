"""Every environment variable persona-pipeline reads, read here and nowhere else.

`SETTINGS` lists them with their defaults and meaning; the README's settings table is checked against it by
a test, so a variable cannot be added without being documented. Values are read when asked for (not at import),
so tests and runs with different homes stay apart. Imports only the standard library: the CLI reads settings
at start-up.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from persona_pipeline.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    name: str
    default: str  # as the README shows it
    meaning: str


SETTINGS = (
    Setting(
        "PERSONA_HOME", "`./.persona_home`", "embedded warehouse, Dagster storage, step outputs, load rejects"
    ),
    Setting(
        "PERSONA_WAREHOUSE_URL",
        "`sqlite:///$PERSONA_HOME/warehouse.sqlite`",
        "any SQLAlchemy URL; `postgresql://…` uses psycopg2 and COPY",
    ),
    Setting(
        "DAGSTER_HOME",
        "`$PERSONA_HOME/dagster`",
        "Dagster instance (SQLite storage unless its `dagster.yaml` says otherwise)",
    ),
    Setting(
        "PERSONA_SQL_DIR",
        "`dbt_like_sql` beside the package (a clone), else `./dbt_like_sql`",
        "the SQL models",
    ),
    Setting(
        "PERSONA_EXPORT_DIR",
        "`$PERSONA_HOME/exports`",
        "the only folder CSV destinations of pipelines write into",
    ),
    Setting("PERSONA_GEOGRAPHY_TRAIT", "`state`", "the categorical trait Explore maps personas over"),
    Setting("PERSONA_CURRENCY", "`USD`", "the currency order amounts are in, printed beside every amount"),
    Setting(
        "PERSONA_FLOW_START",
        "the first day of data",
        "first day of the daily membership snapshot partitions (YYYY-MM-DD); unset, the first day the trait "
        "history knows",
    ),
    Setting(
        "PERSONA_OWNERS",
        "`team:marketing-analytics`",
        "owners of every asset in the Dagster UI, comma separated (emails or `team:name`)",
    ),
    Setting(
        "PERSONA_SENSOR_INTERVAL",
        "each sensor's own (30 s; 60 s for schedules)",
        "seconds between every sensor's ticks",
    ),
    Setting(
        "PERSONA_SCORE_BUCKETS",
        "one per core (one for a run executed in one process)",
        "buckets a scoring run fans out over (1–1024)",
    ),
    Setting(
        "PERSONA_EXECUTOR",
        "`multiprocess`",
        "how runs execute their steps: `multiprocess` (forked on the machine running the run) or `celery` "
        "(each step a task for Celery workers; see deploy/DISTRIBUTED.md)",
    ),
    Setting(
        "PERSONA_CELERY_BROKER",
        "`pyamqp://guest@127.0.0.1:5672//`",
        "the Celery broker (RabbitMQ `pyamqp://…` or Redis `redis://…`) runs and workers share",
    ),
    Setting(
        "PERSONA_CELERY_BACKEND",
        "`rpc://`",
        "where Celery workers return step results (`rpc://` through the broker, or `redis://…`)",
    ),
    Setting(
        "PERSONA_STEP_STORAGE",
        "`$PERSONA_HOME/builds/dagster_io` (`warehouse` under Celery)",
        "where steps hand data to each other: a folder or fsspec URL every worker shares (`s3://…`), or "
        "`warehouse` (the warehouse's step_outputs table)",
    ),
    Setting(
        "PERSONA_SMTP_HOST",
        "unset: notifications go to `$PERSONA_HOME/outbox`",
        "SMTP server for notifications",
    ),
    Setting("PERSONA_SMTP_PORT", "`25`", "its port"),
    Setting("PERSONA_SMTP_SENDER", "`persona-pipeline@localhost`", "the notifications' sender"),
    Setting("PERSONA_SMTP_RECIPIENTS", "`marketing@localhost`", "their recipients, comma separated"),
    Setting("PERSONA_SMTP_USER", "unset", "SMTP login (optional)"),
    Setting("PERSONA_SMTP_PASSWORD", "unset", "SMTP password (with the login)"),
    Setting(
        "PERSONA_SMTP_TLS",
        "`starttls` when a login is set, else `none`",
        "`starttls`, `ssl` (SMTPS) or `none`; a password never goes out in clear unless this says `none`",
    ),
    Setting(
        "PERSONA_LLM_URL",
        "unset: the templates' text only",
        "an OpenAI-compatible endpoint (`http://host:port/v1`) that retells each persona's summary as prose; "
        "optional, never needed: prose stating a number the figures do not is dropped",
    ),
    Setting("PERSONA_LLM_MODEL", "`default`", "the model the endpoint is asked for"),
    Setting("PERSONA_LLM_API_KEY", "unset", "sent as a bearer token (optional; never logged)"),
)
SETTING_NAMES = frozenset(s.name for s in SETTINGS)


def setting(name: str) -> str:
    """The variable's value, stripped ('' when unset); only registered names may be read."""
    if name not in SETTING_NAMES:
        raise KeyError(f"{name} is not a registered setting: add it to config.SETTINGS and the README")
    return os.environ.get(name, "").strip()


def _folder(variable: str, default: Callable[[], Path | str]) -> Path:
    """The folder a variable names (else `default()`), created if need be; one that cannot be is a user error."""
    folder = Path(setting(variable) or default()).resolve()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"{variable} {folder} cannot be created ({exc.strerror}); point it to a folder you can write"
        ) from exc
    return folder


def persona_home() -> Path:
    return _folder("PERSONA_HOME", lambda: ".persona_home")


def warehouse_url() -> str:
    """PERSONA_WAREHOUSE_URL, or the embedded SQLite file in the home folder."""
    return setting("PERSONA_WAREHOUSE_URL") or f"sqlite:///{persona_home() / 'warehouse.sqlite'}"


def dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to a folder in the home so runs from the CLI show up in `dg dev`."""
    return _folder("DAGSTER_HOME", lambda: persona_home() / "dagster")


def use_dagster_home() -> Path:
    """Point Dagster at our DAGSTER_HOME: Dagster itself reads the variable when it loads its instance."""
    home = dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def builds_dir() -> Path:
    path = persona_home() / "builds"
    path.mkdir(parents=True, exist_ok=True)
    return path


def reports_dir() -> Path:
    folder = persona_home() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def outbox_dir() -> Path:
    return persona_home() / "outbox"


def exports_dir() -> Path:
    """The only folder CSV destinations may write into (PERSONA_EXPORT_DIR, default PERSONA_HOME/exports)."""
    return _folder("PERSONA_EXPORT_DIR", lambda: persona_home() / "exports")


def sql_dir() -> Path | None:
    """PERSONA_SQL_DIR if set; None lets the SQL models' module look beside the package, then here."""
    configured = setting("PERSONA_SQL_DIR")
    return Path(configured).resolve() if configured else None


def geography_trait() -> str:
    return setting("PERSONA_GEOGRAPHY_TRAIT") or "state"


def currency() -> str:
    """The currency of order amounts: a code or symbol people read beside every amount."""
    value = setting("PERSONA_CURRENCY") or "USD"
    if len(value) > 8 or not value.isprintable():
        raise ConfigError(f"PERSONA_CURRENCY must be a short currency code such as EUR, not {value!r}")
    return value


def owners() -> list[str]:
    """Who owns the assets, as the Dagster UI lists and filters them: emails or team:name."""
    value = setting("PERSONA_OWNERS") or "team:marketing-analytics"
    found = [o.strip() for o in value.split(",") if o.strip()]
    wrong = [o for o in found if not (o.startswith("team:") and len(o) > 5) and "@" not in o]
    if wrong or not found:
        raise ConfigError(
            f"PERSONA_OWNERS must list emails or team:name entries, comma separated, not {value!r}"
        )
    return found


def flow_start() -> str | None:
    """The first day of the daily snapshot partitions, as YYYY-MM-DD; None: the first day of data."""
    value = setting("PERSONA_FLOW_START")
    if not value:
        return None
    try:
        dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"PERSONA_FLOW_START must be a day as YYYY-MM-DD, not {value!r}") from exc
    return value


def score_buckets(in_process: bool = False) -> int:
    """Buckets a scoring run fans out over: one per core here (PERSONA_SCORE_BUCKETS: more, for more workers).

    A run whose steps execute one after another in one process (the CLI's) gets one bucket by default: more
    would add steps, and a pause between them, without adding workers (each bucket already uses both cores).
    """
    value = setting("PERSONA_SCORE_BUCKETS")
    if not value:
        return 1 if in_process else max(2, os.cpu_count() or 2)
    if not value.isdigit() or not 1 <= int(value) <= 1024:
        raise ConfigError(f"PERSONA_SCORE_BUCKETS must be a whole number from 1 to 1024, not {value!r}")
    return int(value)


def sensor_interval(default: int) -> int:
    """Seconds between a sensor's ticks: PERSONA_SENSOR_INTERVAL overrides every sensor's default."""
    value = setting("PERSONA_SENSOR_INTERVAL")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"PERSONA_SENSOR_INTERVAL must be a whole number of seconds, not {value!r}")
    return int(value)


EXECUTORS = ("multiprocess", "celery")
WAREHOUSE_STEP_STORAGE = "warehouse"


@dataclass(frozen=True)
class ExecutorSettings:
    """How runs execute their steps: on this machine, or as Celery tasks for workers anywhere."""

    kind: str  # one of EXECUTORS
    broker: str
    backend: str

    @property
    def distributed(self) -> bool:
        return self.kind == "celery"


def executor_settings() -> ExecutorSettings:
    kind = setting("PERSONA_EXECUTOR").lower() or "multiprocess"
    if kind not in EXECUTORS:
        raise ConfigError(f"PERSONA_EXECUTOR must be one of {', '.join(EXECUTORS)}, not {kind!r}")
    return ExecutorSettings(
        kind=kind,
        broker=setting("PERSONA_CELERY_BROKER") or "pyamqp://guest@127.0.0.1:5672//",
        backend=setting("PERSONA_CELERY_BACKEND") or "rpc://",
    )


def step_storage() -> str:
    """Where steps hand data on: `warehouse`, or a folder or fsspec URL (default: in the persona home).

    Under Celery the default is the warehouse: workers on other hosts share it, never the persona home.
    """
    value = setting("PERSONA_STEP_STORAGE")
    if value.lower() == WAREHOUSE_STEP_STORAGE:
        return WAREHOUSE_STEP_STORAGE
    if value:
        return value
    if executor_settings().distributed:
        return WAREHOUSE_STEP_STORAGE
    return str(builds_dir() / "dagster_io")


SMTP_TLS_MODES = ("starttls", "ssl", "none")


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line or a traceback
    tls: str = "none"  # one of SMTP_TLS_MODES


def smtp_settings() -> SmtpSettings:
    """How notifications are sent: SMTP when PERSONA_SMTP_HOST is set, otherwise files in the outbox."""
    recipients = tuple(r.strip() for r in setting("PERSONA_SMTP_RECIPIENTS").split(",") if r.strip())
    port = setting("PERSONA_SMTP_PORT") or "25"
    if not port.isdigit():
        raise ConfigError(f"PERSONA_SMTP_PORT must be a port number, not {port!r}")
    user = setting("PERSONA_SMTP_USER") or None
    tls = setting("PERSONA_SMTP_TLS").lower() or ("starttls" if user else "none")
    if tls not in SMTP_TLS_MODES:
        raise ConfigError(f"PERSONA_SMTP_TLS must be one of {', '.join(SMTP_TLS_MODES)}, not {tls!r}")
    return SmtpSettings(
        host=setting("PERSONA_SMTP_HOST") or None,
        port=int(port),
        sender=setting("PERSONA_SMTP_SENDER") or "persona-pipeline@localhost",
        recipients=recipients or ("marketing@localhost",),
        user=user,
        password=os.environ.get("PERSONA_SMTP_PASSWORD") or None,  # registered above; kept unstripped
        tls=tls,
    )


LLM_TIMEOUT_SECONDS = 60.0  # per persona; a local model writes three sentences well within it


@dataclass(frozen=True)
class LlmSettings:
    """An optional chat-completions endpoint that retells interpretations as prose (studies/prose.py)."""

    url: str  # the API base, without /chat/completions
    model: str
    api_key: str | None = field(default=None, repr=False)  # never in a log line or a traceback
    timeout: float = LLM_TIMEOUT_SECONDS


def llm_settings() -> LlmSettings | None:
    """The endpoint when PERSONA_LLM_URL is set; None keeps the templates' text alone."""
    url = setting("PERSONA_LLM_URL").rstrip("/")
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"PERSONA_LLM_URL must be an http:// or https:// address such as http://127.0.0.1:8080/v1, "
            f"not {url!r}"
        )
    return LlmSettings(
        url=url.removesuffix("/chat/completions"),
        model=setting("PERSONA_LLM_MODEL") or "default",
        api_key=os.environ.get("PERSONA_LLM_API_KEY") or None,  # registered above; kept unstripped
    )
