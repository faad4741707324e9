"""Proctoring transactions (EXM-8, EXM-9): the duplicate IP/device check, documented
exceptions, Safe Exam Browser, incidents.

**Race-free duplicate check.** Every check of an address takes a transaction-scoped lock
on that address first (``lock_addresses``: PostgreSQL advisory locks as ``lms.db.advisory_lock``
takes them, shared by every web process; SQLite's single writer), then reads
``attempt_address`` (one statement for the IP and the device with their exceptions) and
writes its own row before the transaction commits. Two learners starting at the same instant from one IP are
serialised on the IP's lock: the second sees the first's row and is refused.
"""
from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import and_, bindparam, case, func, literal_column, or_, select, union_all

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
    advisory_lock(*{f"exam-address:{kind}:{value}" for kind, value in pairs})


@functools.cache
def _address_facts(n: int):
    """Per (kind, value) of the request's ``n`` addresses (parameters k0, v0, k1, v1, …):
    other learners' attempts that used it — in this exam (ever) or running now (any exam) —
    summarised (a learner, an exam, whether any was in this exam, whether any is running),
    and the lowest unrevoked exception of this exam for it. One statement for every address
    of the request, at most two rows per address. Built once per ``n``."""
    def mine(kind, value):
        return or_(*(and_(kind == bindparam(f"k{i}"), value == bindparam(f"v{i}")) for i in range(n)))

    one, zero = literal_column("1"), literal_column("0")
    running = and_(Attempt.submitted_at.is_(None), Attempt.deadline > bindparam("now"))
    uses = (select(literal_column("'use'").label("what"), AttemptAddress.kind, AttemptAddress.value,
                   func.min(AttemptAddress.learner_id), func.min(AttemptAddress.exam_id),
                   func.max(case((AttemptAddress.exam_id == bindparam("exam_id"), one), else_=zero)),
                   func.max(case((running, one), else_=zero)))
            .join(Attempt, Attempt.id == AttemptAddress.attempt_id)
            .where(mine(AttemptAddress.kind, AttemptAddress.value),
                   AttemptAddress.learner_id != bindparam("learner_id"),
                   or_(AttemptAddress.exam_id == bindparam("exam_id"), running))
            .group_by(AttemptAddress.kind, AttemptAddress.value))
    excepted = (select(literal_column("'exception'"), ProctorException.kind, ProctorException.value,
                       func.min(ProctorException.id), zero, zero, zero)
                .where(mine(ProctorException.kind, ProctorException.value),
                       ProctorException.exam_id == bindparam("exam_id"), ProctorException.revoked_at.is_(None))
                .group_by(ProctorException.kind, ProctorException.value))
    return union_all(uses, excepted)


def check_addresses(exam: Exam, learner: User, pairs: list[tuple[str, str]], now: datetime) -> dict:
    """EXM-9: raise 403 ``duplicate_ip`` / ``duplicate_device`` when an address is taken by
    another learner (see ``rules.address_conflict``). Call with the addresses locked
    (``lock_addresses``). Returns {(kind, value): exception id or None} for the rows to write.
    ``exam`` needs only ``id`` (a row of a query will do)."""
    if not pairs:
        return {}
    uses: dict[tuple[str, str], list[rules.AddressUse]] = {}
    exceptions: dict[tuple[str, str], int] = {}
    params = {"exam_id": exam.id, "learner_id": learner.id, "now": now}
    for i, (kind, value) in enumerate(pairs):
        params[f"k{i}"], params[f"v{i}"] = kind, value
    for what, kind, value, ref, some_exam, same_exam, running in db.session.connection().execute(
            _address_facts(len(pairs)), params):
        if what == "exception":
            exceptions[(kind, value)] = ref
        else:
            uses[(kind, value)] = [rules.AddressUse(learner_id=ref, exam_id=exam.id if same_exam else some_exam,
                                                    same_exam=bool(same_exam), running=bool(running))]
    allowed = {}
    for kind, value in pairs:  # the IP first, then the device, as before
        exc_id = exceptions.get((kind, value))
        conflict = rules.address_conflict(learner.id, uses.get((kind, value), []), excepted=exc_id is not None)
        if conflict is not None:
            where = "in this exam" if conflict.same_exam else "in a running exam"
            raise ApiError(403, _CODES[kind],
                           f"another learner's attempt {where} uses this {'IP address' if kind == IP else 'device'} "
                           "(EXM-9)", rules=["EXM-9"])
        allowed[(kind, value)] = exc_id
    return allowed


def record_addresses(attempt: Attempt, allowed: dict, now: datetime) -> list[tuple[str, str]]:
    """Append the addresses of ``allowed`` the attempt has not used yet; returns them. (A new
    attempt's addresses are written with it: ``lms.exams.service._insert_attempt``.)"""
    have = attempt_addresses(attempt.id)
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
