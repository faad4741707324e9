"""Writing the access log. A failure to write propagates: the request fails with it."""
from __future__ import annotations

from flask import has_request_context, request

from lms import clock
from lms.audit.models import AccessLog
from lms.db import db
from lms.net import client_ip, device_id, text_safe, user_agent

# Events of the access log (REC-1).
EVENTS = (
    "login_password_ok", "login_failed", "login_rate_limited", "login_locked",
    "otp_failed", "otp_enrolled", "login", "logout", "session_replaced",
    "session_expired", "request", "admin_action",
    # REC-6: every log search and export (inspectors and admins), with the filters in detail.
    "inspector_search", "inspector_export", "log_search", "log_export",
)


_INSERT = AccessLog.__table__.insert()
_COLUMNS = tuple(c.key for c in AccessLog.__table__.columns if c.key != "id")


def log_access(event: str, *, user=None, username: str | None = None, session_id: int | None = None,
               detail: str | None = None, commit: bool = True) -> AccessLog:
    """Append one access-log row (written at once, in the current transaction). With
    ``commit`` the row is durable when this returns; any database error is raised to the
    caller (never swallowed). The returned entry is not attached to the session."""
    entry = AccessLog(
        at=clock.now(),
        user_id=getattr(user, "id", None),
        username=text_safe(getattr(user, "username", None) or username or "")[:64] or None,
        role=getattr(user, "role", None),
        session_id=session_id,
        event=event,
        detail=(text_safe(detail)[:512] if detail else None),
    )
    if has_request_context():
        for key, value in request_fields().items():
            setattr(entry, key, value)
        entry.course_id = request_course_id()
    # A Core INSERT in the session's transaction rather than an ORM flush: the same row,
    # without the unit of work's bookkeeping on every authenticated request.
    db.session.execute(_INSERT, {col: getattr(entry, col) for col in _COLUMNS})
    if commit:
        db.session.commit()
    return entry


REQUEST_FIELDS = ("ip", "device", "user_agent", "method", "path")


def request_fields() -> dict:
    """The current request's part of an access-log row (REC-1): the ``REQUEST_FIELDS``.
    Client-chosen text is made storable: a crafted path or header must not make the log
    row (and so the request) fail."""
    values = (client_ip(), device_id(), user_agent(), request.method[:8], text_safe(request.path)[:512])
    return dict(zip(REQUEST_FIELDS, values))


def request_course_ref() -> tuple[int | None, int | None]:
    """(course id, lesson id) named by the request's URL: the course of the request is the
    first, or else the course of the second (looked up by :func:`request_course_id`, or in
    the statement that writes the row)."""
    args = request.view_args or {}
    if isinstance(args.get("course_id"), int):
        return args["course_id"], None
    if isinstance(args.get("lesson_id"), int):
        return None, args["lesson_id"]
    return None, None


def request_course_id() -> int | None:
    """The course the current request concerns, from its URL (``course_id``, or the course
    of a ``lesson_id``), so the access log can tell who accessed which course (CRS-10)."""
    course_id, lesson_id = request_course_ref()
    if lesson_id is not None:
        from sqlalchemy import select

        from lms.content.models import Lesson

        return db.session.scalar(select(Lesson.course_id).where(Lesson.id == lesson_id))
    return course_id


_ADMIN_INSERT = None


def _summary(value):
    """A JSON-safe, bounded before/after summary (plain values; dates as ISO text)."""
    import json

    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    if len(text) > 4000:
        return {"truncated": text[:4000]}
    return json.loads(text)


def record_admin_action(entity: str, entity_id: int | None, action: str, *, actor=None,
                        before: dict | None = None, after: dict | None = None,
                        detail: str | None = None) -> None:
    """Append one ``admin_action`` row (who, role, what entity and id, what action, a
    before/after summary, IP, time) in the CURRENT transaction: it commits or rolls back
    with the change it records. ``actor`` defaults to the request's user."""
    global _ADMIN_INSERT
    from lms.audit.models import AdminAction

    if _ADMIN_INSERT is None:
        _ADMIN_INSERT = AdminAction.__table__.insert()
    if actor is None and has_request_context():
        from lms.security import current_auth

        actor = current_auth().user
    db.session.execute(_ADMIN_INSERT, {
        "at": clock.now(),
        "actor_id": getattr(actor, "id", None),
        "actor_username": (getattr(actor, "username", None) or None),
        "actor_role": getattr(actor, "role", None),
        "entity": entity[:32],
        "entity_id": entity_id,
        "action": action[:40],
        "before": _summary(before),
        "after": _summary(after),
        "ip": client_ip() if has_request_context() else None,
        "detail": (text_safe(detail)[:500] if detail else None),
    })
