"""The learner register (학적부, ENR-5, REC-2).

A learner's register is created with their first registration (and, as a safety net, by
the ``create_due_registers`` job for any registration of a course that has started —
always well inside the 3 weeks ENR-5 allows). It is never deleted: no code path deletes
its rows, and a mapper guard refuses any attempt. Its personal fields are kept as
append-only ``register_value`` rows (the newest per field is current); a correction goes
through an application with evidence files (``lms.uploads``) that an administrator
approves or rejects, and an approval appends a new value naming the application — the
earlier values stay as the history.
"""
from __future__ import annotations

from sqlalchemy import event, select

from lms import clock
from lms.auth.models import User
from lms.content.models import Course
from lms.db import db, lock_row
from lms.enrolment import rules
from lms.enrolment.models import (Enrollment, LearnerRegister, RegisterCorrection, RegisterEntry,
                                  RegisterEvidence, RegisterValue)
from lms.errors import ApiError, forbidden, not_found
from lms.uploads import Upload, check_count, evidence_transaction, max_file_bytes

FIELDS = ("name", "birth_date", "phone", "email")
FIELD_LABELS = {"name": "성명", "birth_date": "생년월일", "phone": "연락처", "email": "전자우편"}
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
MAX_EVIDENCE_FILES = 5
MAX_REASON_CHARS = 2000
MAX_VALUE_CHARS = 200

__all__ = ["Upload"]


@event.listens_for(LearnerRegister, "before_delete")
@event.listens_for(RegisterEntry, "before_delete")
@event.listens_for(RegisterValue, "before_delete")
def _never_delete(_mapper, _conn, _target):  # REC-2: kept permanently
    raise RuntimeError("the learner register is kept permanently (REC-2): rows are never deleted")


def get_register(user_id: int) -> LearnerRegister | None:
    return db.session.scalar(select(LearnerRegister).where(LearnerRegister.user_id == user_id))


def ensure_register(user: User) -> LearnerRegister:
    reg = get_register(user.id)
    if reg is not None:
        return reg
    now = clock.now()
    reg = LearnerRegister(user_id=user.id, number=f"R{clock.to_kst(now).year}-{user.id:07d}", created_at=now)
    db.session.add(reg)
    db.session.flush()
    for field in FIELDS:
        db.session.add(RegisterValue(register_id=reg.id, field=field, value=getattr(user, field), source="created",
                                     created_at=now))
    db.session.flush()
    return reg


def ensure_entry(enrollment: Enrollment) -> RegisterEntry:
    entry = db.session.scalar(select(RegisterEntry).where(RegisterEntry.enrollment_id == enrollment.id))
    if entry is not None:
        return entry
    reg = ensure_register(db.session.get(User, enrollment.user_id))
    entry = RegisterEntry(register_id=reg.id, enrollment_id=enrollment.id, course_id=enrollment.course_id,
                          created_at=clock.now())
    db.session.add(entry)
    db.session.flush()
    return entry


def create_due_registers() -> int:
    """ENR-5 job: a register entry for every registration of a started course lacking one."""
    now = clock.now()
    today = clock.to_kst(now).date()
    rows = list(db.session.scalars(
        select(Enrollment).join(Course, Course.id == Enrollment.course_id)
        .outerjoin(RegisterEntry, RegisterEntry.enrollment_id == Enrollment.id)
        .where(RegisterEntry.id.is_(None), Course.starts_on <= today)))
    for e in rows:
        ensure_entry(e)
    db.session.commit()
    return len(rows)


def current_values(reg: LearnerRegister) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for row in db.session.scalars(select(RegisterValue).where(RegisterValue.register_id == reg.id)
                                  .order_by(RegisterValue.id)):
        out[row.field] = row.value
    return out


def history(reg: LearnerRegister) -> list[RegisterValue]:
    return list(db.session.scalars(select(RegisterValue).where(RegisterValue.register_id == reg.id)
                                   .order_by(RegisterValue.id)))


def entries(reg: LearnerRegister) -> list[dict]:
    from lms.enrolment.service import registration_kind

    out = []
    for entry, e, c in db.session.execute(
            select(RegisterEntry, Enrollment, Course).join(Enrollment, Enrollment.id == RegisterEntry.enrollment_id)
            .join(Course, Course.id == RegisterEntry.course_id).where(RegisterEntry.register_id == reg.id)
            .order_by(Course.starts_on, Course.id)).tuples():
        out.append({"course_id": c.id, "code": c.code, "title": c.title, "credits": c.credits,
                    "starts_on": c.starts_on.isoformat(),
                    "ends_on": rules.course_ends_on(c.starts_on, c.weeks).isoformat(),
                    "status": e.status, "registered_at": clock.iso(e.created_at),
                    "registration_kind": registration_kind(e.id),
                    "cancelled_at": clock.iso(e.cancelled_at), "cancel_reason": e.cancel_reason,
                    "entered_at": clock.iso(entry.created_at)})
    return out


def register_dict(reg: LearnerRegister) -> dict:
    return {"number": reg.number, "user_id": reg.user_id, "created_at": clock.iso(reg.created_at),
            "fields": current_values(reg), "courses": entries(reg),
            "history": [{"field": v.field, "value": v.value, "source": v.source, "correction_id": v.correction_id,
                         "at": clock.iso(v.created_at)} for v in history(reg)],
            "corrections": [correction_dict(c) for c in corrections(register_id=reg.id)]}


def register_for(user_id: int, viewer: User) -> LearnerRegister:
    """The register if ``viewer`` may read it: its learner, or an admin/inspector of the
    learner's institution."""
    learner = db.session.get(User, user_id)
    if learner is None or learner.institution_id != viewer.institution_id:
        raise not_found("learner register")
    if viewer.id != user_id and viewer.role not in ("admin", "inspector"):
        raise forbidden("not your register")
    reg = get_register(user_id)
    if reg is None:
        raise not_found("learner register")
    return reg


# --- corrections -------------------------------------------------------------------------

def apply_correction(learner: User, *, field: str, value: str, reason: str, files: list[Upload]) -> RegisterCorrection:
    """The learner applies with evidence (commits: files and rows together or not at all)."""
    if field not in FIELDS:
        raise ApiError(400, "invalid_request", f"field: one of {', '.join(FIELDS)}")
    value = (value or "").strip()
    reason = (reason or "").strip()
    if not value or len(value) > MAX_VALUE_CHARS:
        raise ApiError(400, "invalid_request", f"value: 1–{MAX_VALUE_CHARS} characters")
    if not reason or len(reason) > MAX_REASON_CHARS:
        raise ApiError(400, "invalid_request", f"reason: 1–{MAX_REASON_CHARS} characters")
    reg = get_register(learner.id)
    if reg is None:
        raise not_found("learner register")
    check_count(files, MAX_EVIDENCE_FILES, "REC-2")
    now = clock.now()
    with evidence_transaction("registers", files, max_file_bytes("REGISTER_MAX_FILE_BYTES")) as batch:
        row = RegisterCorrection(register_id=reg.id, learner_id=learner.id, field=field, requested_value=value,
                                 reason=reason, status=PENDING, created_at=now)
        db.session.add(row)
        db.session.flush()
        for columns in batch.place(row.id, now):
            db.session.add(RegisterEvidence(correction_id=row.id, **columns))
    return row


def get_correction(correction_id: int, user: User) -> RegisterCorrection:
    row = db.session.get(RegisterCorrection, correction_id)
    if row is None:
        raise not_found("correction")
    learner = db.session.get(User, row.learner_id)
    if learner.institution_id != user.institution_id:
        raise not_found("correction")
    if user.id != row.learner_id and user.role not in ("admin", "inspector"):
        raise forbidden("not your application")
    return row


def decide(row: RegisterCorrection, *, approve: bool, comment: str | None, actor: User) -> RegisterCorrection:
    """An administrator approves (a new register value is appended) or rejects."""
    if actor.role != "admin":
        raise forbidden("only an administrator decides register corrections")
    lock_row(RegisterCorrection, row.id)
    if row.status != PENDING:
        raise ApiError(409, "already_decided", "the application was already decided")
    now = clock.now()
    row.status = APPROVED if approve else REJECTED
    row.decided_by = actor.id
    row.decided_at = now
    row.decision_comment = comment
    if approve:
        db.session.add(RegisterValue(register_id=row.register_id, field=row.field, value=row.requested_value,
                                     source="correction", correction_id=row.id, actor_id=actor.id, created_at=now))
    db.session.flush()
    return row


def corrections(*, register_id: int | None = None, institution_id: int | None = None,
                status: str | None = None) -> list[RegisterCorrection]:
    stmt = select(RegisterCorrection)
    if register_id is not None:
        stmt = stmt.where(RegisterCorrection.register_id == register_id)
    if institution_id is not None:
        stmt = stmt.join(User, User.id == RegisterCorrection.learner_id).where(User.institution_id == institution_id)
    if status is not None:
        stmt = stmt.where(RegisterCorrection.status == status)
    return list(db.session.scalars(stmt.order_by(RegisterCorrection.id.desc())))


def evidence(correction_id: int) -> list[RegisterEvidence]:
    return list(db.session.scalars(select(RegisterEvidence).where(RegisterEvidence.correction_id == correction_id)
                                   .order_by(RegisterEvidence.id)))


def correction_dict(c: RegisterCorrection) -> dict:
    return {"id": c.id, "learner_id": c.learner_id, "field": c.field, "requested_value": c.requested_value,
            "reason": c.reason, "status": c.status, "created_at": clock.iso(c.created_at),
            "decided_at": clock.iso(c.decided_at), "decision_comment": c.decision_comment,
            "evidence": [{"id": f.id, "filename": f.filename, "size": f.size, "sha256": f.sha256}
                         for f in evidence(c.id)]}
