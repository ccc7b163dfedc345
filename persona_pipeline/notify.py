"""Notifications when a persona set is ready or has failed: email over SMTP, or .eml files in an outbox.

Configured by environment (config.smtp_settings): PERSONA_SMTP_HOST (unset: write to PERSONA_HOME/outbox),
PERSONA_SMTP_PORT, PERSONA_SMTP_SENDER, PERSONA_SMTP_RECIPIENTS, PERSONA_SMTP_USER and PERSONA_SMTP_PASSWORD
(optional login). With a login, the connection is encrypted (STARTTLS, or SMTPS with PERSONA_SMTP_TLS=ssl)
unless PERSONA_SMTP_TLS=none says otherwise: a password never goes out in clear by default.
"""

from __future__ import annotations

import datetime as dt
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from persona_pipeline import files
from persona_pipeline.config import SmtpSettings, outbox_dir, smtp_settings


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
    settings = settings or smtp_settings()
    message = build_message(settings, subject, body)
    if settings.host is None:
        outbox = outbox_dir()
        outbox.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        path = outbox / f"{stamp}.eml"
        files.write_bytes(path, bytes(message))
        return str(path)
    secure = ssl.create_default_context()
    if settings.tls == "ssl":
        connection = smtplib.SMTP_SSL(settings.host, settings.port, timeout=30, context=secure)
    else:
        connection = smtplib.SMTP(settings.host, settings.port, timeout=30)
    with connection as smtp:
        if settings.tls == "starttls":
            smtp.starttls(context=secure)
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        smtp.send_message(message)
    return f"{'smtps' if settings.tls == 'ssl' else 'smtp'}://{settings.host}:{settings.port}"


def outbox_messages() -> list[Path]:
    folder = outbox_dir()
    return sorted(folder.glob("*.eml")) if folder.exists() else []
