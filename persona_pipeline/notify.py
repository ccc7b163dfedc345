"""Notifications when a persona set is ready or has failed: email over SMTP, or .eml files in an outbox.

Configured by environment: PERSONA_SMTP_HOST (unset: write to PERSONA_HOME/outbox), PERSONA_SMTP_PORT (25),
PERSONA_SMTP_SENDER, PERSONA_SMTP_RECIPIENTS (comma separated), PERSONA_SMTP_USER and PERSONA_SMTP_PASSWORD
(optional login, after STARTTLS when PERSONA_SMTP_STARTTLS=1).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from persona_pipeline.settings import persona_home


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int
    sender: str
    recipients: tuple[str, ...]
    user: str | None = None
    password: str | None = None
    starttls: bool = False

    @staticmethod
    def from_env() -> SmtpSettings:
        recipients = tuple(
            r.strip() for r in os.environ.get("PERSONA_SMTP_RECIPIENTS", "").split(",") if r.strip()
        )
        return SmtpSettings(
            host=os.environ.get("PERSONA_SMTP_HOST") or None,
            port=int(os.environ.get("PERSONA_SMTP_PORT", "25")),
            sender=os.environ.get("PERSONA_SMTP_SENDER", "persona-pipeline@localhost"),
            recipients=recipients or ("marketing@localhost",),
            user=os.environ.get("PERSONA_SMTP_USER") or None,
            password=os.environ.get("PERSONA_SMTP_PASSWORD") or None,
            starttls=os.environ.get("PERSONA_SMTP_STARTTLS") == "1",
        )


def _one_line(text: str, limit: int = 150) -> str:
    """Header-safe: user text never adds a header line."""
    return re.sub(r"[\r\n\t]+", " ", text)[:limit]


def build_message(settings: SmtpSettings, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = _one_line(subject)
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    message["Message-ID"] = make_msgid(domain="persona-pipeline")
    message.set_content(body)
    return message


def send(subject: str, body: str, settings: SmtpSettings | None = None) -> str:
    """Send (or, with no SMTP host, file) one notification; returns where it went."""
    settings = settings or SmtpSettings.from_env()
    message = build_message(settings, subject, body)
    if settings.host is None:
        outbox = persona_home() / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        path = outbox / f"{stamp}.eml"
        path.write_bytes(bytes(message))
        return str(path)
    with smtplib.SMTP(settings.host, settings.port, timeout=30) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        smtp.send_message(message)
    return f"smtp://{settings.host}:{settings.port}"


def outbox_messages() -> list[Path]:
    folder = persona_home() / "outbox"
    return sorted(folder.glob("*.eml")) if folder.exists() else []
