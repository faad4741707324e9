"""Proctoring transactions (EXM-8, EXM-9): the duplicate IP/device check, documented
exceptions, Safe Exam Browser, incidents.

**Race-free duplicate check.** Every check of an address takes a transaction-scoped lock
on that address first (``lms.db.advisory_lock``: PostgreSQL advisory locks, shared by every
web process; SQLite's single writer), then reads ``attempt_address`` and writes its own row
before the transaction commits. Two learners starting at the same instant from one IP are
serialised on the IP's lock: the second sees the first's row and is refused.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select

from lms import clock
from lms.auth.models import User
from lms.db import advisory_lock, db
from lms.errors import ApiError, not_found
from lms.exams.models import Attempt, AttemptEvent, Exam
from lms.proctoring import rules
from lms.proctoring.models import DEVICE, IP, AttemptAddress, ProctorException

_CODES = {IP: "duplicate_ip", DEVICE: "duplicate_device"}


def addresses(ip: str | None, device: str | None) -> list[tuple[str, str]]:
    out = []
    if ip:
        out.append((IP, ip))
    if device:
        out.append((DEVICE, device))
    return out


def lock_addresses(pairs: list[tuple[str, str]]) -> None:
    advisory_lock(*(f"exam-address:{kind}:{value}" for kind, value in pairs))


def active_exception(exam_id: int, kind: str, value: str) -> ProctorException | None:
    return db.session.scalar(select(ProctorException).where(
        ProctorException.exam_id == exam_id, ProctorException.kind == kind, ProctorException.value == value,
        ProctorException.revoked_at.is_(None)).limit(1))


def address_uses(exam_id: int, learner_id: int, kind: str, value: str, now: datetime) -> list[rules.AddressUse]:
    """Other learners' attempts that used ``value``: in this exam (ever), or running now."""
    rows = db.session.execute(
        select(AttemptAddress.learner_id, AttemptAddress.exam_id, Attempt.submitted_at, Attempt.deadline)
        .join(Attempt, Attempt.id == AttemptAddress.attempt_id)
        .where(AttemptAddress.kind == kind, AttemptAddress.value == value,
               AttemptAddress.learner_id != learner_id,
               or_(AttemptAddress.exam_id == exam_id,
                   and_(Attempt.submitted_at.is_(None), Attempt.deadline > now)))
        .limit(20))
    return [rules.AddressUse(learner_id=lid, exam_id=eid, same_exam=eid == exam_id,
                             running=sub is None and deadline > now)
            for lid, eid, sub, deadline in rows]


def check_addresses(exam: Exam, learner: User, pairs: list[tuple[str, str]], now: datetime) -> dict:
    """EXM-9: raise 403 ``duplicate_ip`` / ``duplicate_device`` when an address is taken by
    another learner (see ``rules.address_conflict``). Call with the addresses locked
    (``lock_addresses``). Returns {(kind, value): exception id or None} for the rows to write."""
    allowed = {}
    for kind, value in pairs:
        exc = active_exception(exam.id, kind, value)
        conflict = rules.address_conflict(learner.id, address_uses(exam.id, learner.id, kind, value, now),
                                          excepted=exc is not None)
        if conflict is not None:
            where = "in this exam" if conflict.same_exam else "in a running exam"
            raise ApiError(403, _CODES[kind],
                           f"another learner's attempt {where} uses this {'IP address' if kind == IP else 'device'} "
                           "(EXM-9)", rules=["EXM-9"])
        allowed[(kind, value)] = exc.id if exc is not None else None
    return allowed


def record_addresses(attempt: Attempt, allowed: dict, now: datetime, *, fresh: bool = False) -> list[tuple[str, str]]:
    """Append the attempt's new addresses; returns those that were new to it. ``fresh``:
    the attempt was created in this transaction (it has none yet)."""
    have = set() if fresh else attempt_addresses(attempt.id)
    new = []
    for (kind, value), exc_id in allowed.items():
        if (kind, value) in have:
            continue
        db.session.add(AttemptAddress(attempt_id=attempt.id, exam_id=attempt.exam_id, learner_id=attempt.learner_id,
                                      kind=kind, value=value, seen_at=now, exception_id=exc_id))
        new.append((kind, value))
    db.session.flush()
    return new


def attempt_addresses(attempt_id: int) -> set[tuple[str, str]]:
    return set(db.session.execute(select(AttemptAddress.kind, AttemptAddress.value)
                                  .where(AttemptAddress.attempt_id == attempt_id)).all())


# --- exceptions (admin) -----------------------------------------------------------------------

def grant_exception(exam: Exam, admin: User, *, kind: str, value: str, reason: str) -> ProctorException:
    if kind not in (IP, DEVICE):
        raise ApiError(400, "invalid_request", "kind must be ip or device")
    value = value.strip().lower() if kind == DEVICE else value.strip()
    if not value:
        raise ApiError(400, "invalid_request", "value is required")
    if kind == IP:
        import ipaddress

        try:
            value = str(ipaddress.ip_address(value))
        except ValueError as exc:
            raise ApiError(400, "invalid_request", "value is not an IP address") from exc
    row = ProctorException(exam_id=exam.id, kind=kind, value=value, reason=reason.strip(), granted_by=admin.id,
                           granted_at=clock.now())
    db.session.add(row)
    db.session.flush()
    from lms.audit.service import log_access

    log_access("proctor_exception_granted", user=admin, commit=False,
               detail=f"exam {exam.id} {kind} {value}: {reason.strip()}"[:500])
    from lms.audit.service import record_admin_action

    record_admin_action("proctor_exception", row.id, "grant", actor=admin,
                        after={"exam_id": exam.id, "kind": kind, "value": value, "reason": reason.strip()})
    return row


def revoke_exception(exam: Exam, admin: User, exception_id: int) -> ProctorException:
    row = db.session.get(ProctorException, exception_id)
    if row is None or row.exam_id != exam.id:
        raise not_found("exception")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        row.revoked_by = admin.id
        from lms.audit.service import log_access

        log_access("proctor_exception_revoked", user=admin, commit=False,
                   detail=f"exam {exam.id} exception {row.id} {row.kind} {row.value}")
        from lms.audit.service import record_admin_action

        record_admin_action("proctor_exception", row.id, "revoke", actor=admin,
                            before={"exam_id": exam.id, "kind": row.kind, "value": row.value})
    return row


def exception_dict(row: ProctorException) -> dict:
    return {"id": row.id, "exam_id": row.exam_id, "kind": row.kind, "value": row.value, "reason": row.reason,
            "granted_by": row.granted_by, "granted_at": clock.iso(row.granted_at),
            "revoked_by": row.revoked_by, "revoked_at": clock.iso(row.revoked_at)}


def list_exceptions(exam_id: int) -> list[ProctorException]:
    return list(db.session.scalars(select(ProctorException).where(ProctorException.exam_id == exam_id)
                                   .order_by(ProctorException.id)))


# --- Safe Exam Browser --------------------------------------------------------------------------

def check_seb(exam: Exam, url: str, header: str | None) -> None:
    """An exam that requires Safe Exam Browser refuses other browsers (403 ``seb_required``)."""
    if exam.requires_seb and not rules.seb_header_ok(url, exam.seb_config_key, header):
        raise ApiError(403, "seb_required", "this exam must be taken in Safe Exam Browser "
                                            "with the institution's configuration (EXM-9)", rules=["EXM-9"])


# --- incidents ----------------------------------------------------------------------------------

def incident_count(attempt_id: int) -> int:
    from sqlalchemy import func

    return db.session.scalar(select(func.count(AttemptEvent.id)).where(
        AttemptEvent.attempt_id == attempt_id, AttemptEvent.kind == "incident")) or 0
