"""Notify users: an in-app notice each, and an e-mail through the outbox."""
from __future__ import annotations

import smtplib
from email.message import EmailMessage

from flask import current_app
from sqlalchemy import select

from lms import clock
from lms.auth.models import User
from lms.db import db
from lms.notify.models import Notice, OutboxEmail

MAX_ATTEMPTS = 5


def notify_users(user_ids, *, kind: str, subject: str, body: str, link: str | None = None,
                 email: bool = True, commit: bool = False) -> int:
    """Queue a notice (and optionally an e-mail) for each user. Returns how many."""
    now = clock.now()
    ids = sorted(set(user_ids))
    for uid in ids:
        db.session.add(Notice(user_id=uid, created_at=now, kind=kind, subject=subject[:200], body=body,
                              link=link))
        if email:
            db.session.add(OutboxEmail(user_id=uid, created_at=now, subject=subject[:200], body=body))
    if commit:
        db.session.commit()
    return len(ids)


def unread_notices(user_id: int, limit: int = 20) -> list[Notice]:
    return list(db.session.scalars(
        select(Notice).where(Notice.user_id == user_id, Notice.read_at.is_(None))
        .order_by(Notice.id.desc()).limit(limit)))


def deliver_outbox(batch: int = 200) -> dict:
    """Send pending e-mails through SMTP (``LMS_SMTP_HOST``); without SMTP settings the
    mails stay pending. Users without an address are marked ``no_address``."""
    host = current_app.config.get("SMTP_HOST")
    rows = list(db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.status == "pending").order_by(OutboxEmail.id).limit(batch)))
    result = {"sent": 0, "failed": 0, "no_address": 0, "pending": 0}
    if not host:
        result["pending"] = len(rows)
        return result
    sender = current_app.config.get("SMTP_FROM", "lms@localhost")
    with smtplib.SMTP(host, int(current_app.config.get("SMTP_PORT", 25)), timeout=10) as smtp:
        for row in rows:
            user = db.session.get(User, row.user_id)
            if not user or not user.email:
                row.status = "no_address"
                result["no_address"] += 1
                continue
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = sender, user.email, row.subject
            msg.set_content(row.body)
            row.attempts += 1
            try:
                smtp.send_message(msg)
            except smtplib.SMTPException as exc:
                row.last_error = str(exc)[:500]
                if row.attempts >= MAX_ATTEMPTS:
                    row.status = "failed"
                result["failed"] += 1
            else:
                row.status, row.sent_at = "sent", clock.now()
                result["sent"] += 1
    db.session.commit()
    return result
