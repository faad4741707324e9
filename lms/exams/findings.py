"""Cheating findings (부정행위, EXM-13): an instructor's finding on an attempt, with its
evidence — and no grade for the course.

An instructor of the course or an administrator of the institution records a finding on
an attempt: a kind of ``KINDS`` (EXM-13's list), a description and the evidence (text:
what was seen, where, references to exam evidence, access log rows…). Recording it, in one
transaction: a ``cheating_finding`` row (append-only: findings are never changed or
deleted), ``Attempt.cheating_found = True`` and a ``cheating_finding`` exam-evidence event
on the attempt (``lms.exams.service.event``); the learner gets an in-app notice.

For grading: ``learner_has_cheating_finding(course_id, learner_id)`` — True once any
finding is recorded on any of the learner's attempts in the course. Course grading
(issue 5) gives such a learner **no grade** for the course (EXM-13).
"""
from __future__ import annotations

from sqlalchemy import select

from lms import clock
from lms.auth.models import User
from lms.content.models import Course
from lms.db import db, lock_row
from lms.errors import ApiError
from lms.exams import access, service
from lms.exams.models import Attempt, CheatingFinding, Exam

CHEATING_FINDING = "cheating_finding"  # the AttemptEvent kind

# EXM-13 (Reg. 8; Guide IV-5); Korean labels, translated where shown.
KINDS = ("proxy_attendance", "proxy_exam", "early_view", "answers_outside_time", "forbidden_material",
         "answer_exchange", "other")
KIND_LABELS = {
    "proxy_attendance": "대리출석",
    "proxy_exam": "대리시험",
    "early_view": "시험 시작 전 문항 열람",
    "answers_outside_time": "시험 시작 전 또는 종료 후 답안 작성",
    "forbidden_material": "허용되지 않은 기기·자료 사용",
    "answer_exchange": "답안 교환",
    "other": "그 밖의 부정행위",
}
RECORDER_STAFF_ROLES = access.INSTRUCTOR  # besides administrators
MAX_DESCRIPTION_CHARS = 5000
MAX_EVIDENCE_CHARS = 20000


def can_record(course: Course, user: User) -> bool:
    return access.can_act(course, user, RECORDER_STAFF_ROLES)


# The course's findings: its staff, admins and inspectors of the institution.
course_for_reader = access.course_for_reader


def _text(name: str, value, limit: int, *, required: bool) -> str | None:
    value = (value or "").strip() if isinstance(value, str) or value is None else None
    if value is None:
        raise ApiError(400, "invalid_request", f"{name} must be text")
    if required and not value:
        raise ApiError(400, "invalid_request", f"{name} is required")
    if len(value) > limit or "\x00" in value:
        raise ApiError(400, "invalid_request", f"{name}: at most {limit} characters of text")
    return value or None


def record_finding(attempt_id: int, user: User, *, kind: str, description: str,
                   evidence: str | None) -> CheatingFinding:
    """Record a finding (EXM-13) and commit. 403 unless an instructor of the course or an
    admin; 400 for a kind not of EXM-13's list or a missing description."""
    attempt, exam, course = service.attempt_for(attempt_id, user)
    if not can_record(course, user):
        raise forbidden("only an instructor of the course or an administrator records cheating")
    if kind not in KINDS:
        raise ApiError(400, "invalid_request", f"kind must be one of {', '.join(KINDS)}")
    description = _text("description", description, MAX_DESCRIPTION_CHARS, required=True)
    evidence = _text("evidence", evidence, MAX_EVIDENCE_CHARS, required=False)
    now = clock.now()
    attempt = lock_row(Attempt, attempt.id)
    finding = CheatingFinding(attempt_id=attempt.id, exam_id=exam.id, course_id=course.id,
                              learner_id=attempt.learner_id, kind=kind, description=description,
                              evidence=evidence, found_by=user.id, found_at=now)
    db.session.add(finding)
    db.session.flush()
    attempt.cheating_found = True
    service.event(attempt, CHEATING_FINDING, now, detail=f"finding {finding.id}: {kind} (by user {user.id})")
    from lms.audit.service import record_admin_action

    record_admin_action("cheating_finding", finding.id, "record", actor=user, after={
        "attempt_id": attempt.id, "exam_id": exam.id, "learner_id": attempt.learner_id, "kind": kind})
    _notify_learner(course, exam, finding)
    db.session.commit()
    return finding


def _notify_learner(course: Course, exam: Exam, finding: CheatingFinding) -> None:
    from lms.notify.service import notify_users

    notify_users([finding.learner_id], kind="cheating_finding",
                 subject=f"[{course.code}] 부정행위 확인 통지: {exam.title}",
                 body=(f"{exam.title} 응시에서 부정행위({KIND_LABELS[finding.kind]})가 확인되어 기록되었습니다.\n"
                       "부정행위가 확인된 과목은 성적이 부여되지 않습니다 (EXM-13)."))


def list_findings(course: Course) -> list[CheatingFinding]:
    return list(db.session.scalars(select(CheatingFinding).where(CheatingFinding.course_id == course.id)
                                   .order_by(CheatingFinding.id.desc())))


def finding_dict(f: CheatingFinding, names: dict[int, User] | None = None) -> dict:
    learner = (names or {}).get(f.learner_id)
    return {"id": f.id, "attempt_id": f.attempt_id, "exam_id": f.exam_id, "course_id": f.course_id,
            "learner_id": f.learner_id, "learner_username": learner.username if learner else None,
            "learner_name": learner.name if learner else None, "kind": f.kind,
            "kind_label": KIND_LABELS.get(f.kind, f.kind), "description": f.description, "evidence": f.evidence,
            "found_by": f.found_by, "found_at": clock.iso(f.found_at)}


def findings_dicts(course: Course) -> list[dict]:
    rows = list_findings(course)
    ids = {f.learner_id for f in rows}
    names = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return [finding_dict(f, names) for f in rows]


# --- for grading (issue 5) -------------------------------------------------------------

def learner_has_cheating_finding(course_id: int, learner_id: int) -> bool:
    """EXM-13: True when a cheating finding is recorded on any of the learner's attempts in
    the course (or an attempt is marked ``cheating_found``). Course grading gives such a
    learner no grade for the course."""
    found = db.session.scalar(select(CheatingFinding.id).where(CheatingFinding.course_id == course_id,
                                                               CheatingFinding.learner_id == learner_id).limit(1))
    if found is not None:
        return True
    return db.session.scalar(select(Attempt.id).join(Exam, Exam.id == Attempt.exam_id)
                             .where(Exam.course_id == course_id, Attempt.learner_id == learner_id,
                                    Attempt.cheating_found.is_(True)).limit(1)) is not None
