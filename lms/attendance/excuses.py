"""Excused absence (공결, ATT-5): the learner's application with evidence, the decision of
a TA or instructor of the course, and the 20% cap.

An application names lessons of a course the learner is enrolled in, a reason from
``EXCUSE_REASONS`` and one or more evidence files (PDF, JPEG, PNG; kept under
``LMS_MEDIA_ROOT/excuses/<request_id>/`` with their SHA-256 and size, REC-1). A TA or an
instructor of the course, or an administrator, approves or rejects it with a comment. An
approval that would take the learner's excused class time above 20% of the course's total
(in CRS-2 units) is refused with 422 naming ATT-5. After an approval the learner's
statuses are settled again (``lms.attendance.service.settle_learner``), so the approved
lessons read *excused*.

The transactions of this module commit themselves (evidence files and rows are written
together or not at all).
"""
from __future__ import annotations

from sqlalchemy import select

from lms import clock
from lms.attendance import rules
from lms.attendance.models import (EXCUSE_REASONS, ExcuseEvidence, ExcuseLesson, ExcuseRequest,
                                   LessonProgress)
from lms.auth.models import User
from lms.content import rules as crs
from lms.content.models import Course, Lesson
from lms.content.service import course_lessons, get_course, is_enrolled, staff_roles
from lms.db import db
from lms.enrolment.models import Enrollment
from lms.errors import ApiError, RuleViolation, forbidden, not_found
from lms.schemas import MAX_DECISION_COMMENT as MAX_COMMENT_CHARS
# Upload: excuse_api builds the uploads as excuses.Upload.
from lms.uploads import Upload, check_count, evidence_transaction, max_file_bytes, stored_file

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
STATUSES = (PENDING, APPROVED, REJECTED)
# Who decides (ATT-5; CRS-8: TAs manage attendance including excused absences).
DECIDER_STAFF_ROLES = ("instructor", "ta")

MAX_EVIDENCE_FILES = 5
# Per file: LMS config EXCUSE_MAX_FILE_BYTES (10 MB by default, lms.uploads).
MAX_STATEMENT_CHARS = 2000
MAX_LESSONS_PER_REQUEST = 200
# Evidence files (PDF, JPEG, PNG, checked by content): lms.uploads.

# Korean labels of the reasons (ATT-5, Guide III-3); translated where shown.
REASON_LABELS = {
    "bereavement": "배우자, 본인 또는 배우자의 직계가족의 사망",
    "military": "병역법 등 관계 법령에 의한 동원 소집",
    "wedding": "본인의 결혼",
    "hospitalisation": "질병 등으로 인한 입원",
    "disaster": "천재지변으로 인한 사고",
    "institution_rule": "그 밖에 교육훈련기관의 규정으로 정하는 사항",
}


def max_evidence_bytes() -> int:
    return max_file_bytes("EXCUSE_MAX_FILE_BYTES")


def max_request_bytes() -> int:
    """The largest body an application may have: every file at its limit plus the form."""
    return MAX_EVIDENCE_FILES * max_evidence_bytes() + 256 * 1024


# --- access ----------------------------------------------------------------------------

def can_decide(course: Course, user: User) -> bool:
    if user.role == "admin":
        return user.institution_id == course.institution_id
    return bool(staff_roles(course.id, user.id) & set(DECIDER_STAFF_ROLES))


def can_view_all(course: Course, user: User) -> bool:
    """Staff of the course, admins and inspectors see every application of the course."""
    if user.role in ("admin", "inspector"):
        return user.institution_id == course.institution_id
    return bool(staff_roles(course.id, user.id))


def get_request(request_id: int, user: User) -> ExcuseRequest:
    """The application if ``user`` may see it: its learner, staff of its course, admins and
    inspectors of the institution (404 for unknown ids and other institutions)."""
    req = db.session.get(ExcuseRequest, request_id)
    if req is None:
        raise not_found("excuse request")
    course = get_course(req.course_id, user)
    if req.learner_id == user.id or can_view_all(course, user):
        return req
    raise forbidden("not your application")


# --- the 20% cap (ATT-5) ---------------------------------------------------------------

def lesson_units_map(course_id: int) -> dict[int, int]:
    return {l.id: crs.lesson_units(l.kind, l.duration_seconds, l.frames) for l in course_lessons(course_id)}


def excused_lesson_ids(course_id: int, learner_id: int) -> set[int]:
    """Lessons of the course covered by the learner's approved applications (ATT-5)."""
    return set(db.session.scalars(
        select(ExcuseLesson.lesson_id).join(ExcuseRequest, ExcuseRequest.id == ExcuseLesson.request_id)
        .where(ExcuseRequest.course_id == course_id, ExcuseRequest.learner_id == learner_id,
               ExcuseRequest.status == APPROVED)))


def attended_lesson_ids(course_id: int, learner_id: int) -> set[int]:
    return set(db.session.scalars(select(LessonProgress.lesson_id).where(
        LessonProgress.course_id == course_id, LessonProgress.learner_id == learner_id,
        LessonProgress.status == rules.ATTENDED)))


def excused_units(course_id: int, learner_id: int, extra_lesson_ids=()) -> tuple[int, int]:
    """(units the learner holds excused, with ``extra_lesson_ids`` added; the course's total
    units). A lesson counts once however many approvals cover it, and not at all when the
    learner attended it anyway (it is *attended*, not *excused*)."""
    units = lesson_units_map(course_id)
    lesson_ids = (excused_lesson_ids(course_id, learner_id) | set(extra_lesson_ids)) \
        - attended_lesson_ids(course_id, learner_id)
    return sum(units.get(l, 0) for l in lesson_ids), sum(units.values())


def _percent_text(units: int, total: int) -> str:
    if not total:
        return "—"
    return f"{float(rules.Fraction(units * 100, total)):.1f}%"


# --- applying --------------------------------------------------------------------------

def _check_lessons(course: Course, learner_id: int, lesson_ids) -> list[Lesson]:
    ids = list(dict.fromkeys(int(i) for i in lesson_ids))
    if not ids:
        raise ApiError(400, "invalid_request", "lesson_ids: name at least one lesson of the course")
    if len(ids) > MAX_LESSONS_PER_REQUEST:
        raise ApiError(400, "invalid_request", f"lesson_ids: at most {MAX_LESSONS_PER_REQUEST} lessons")
    lessons = {l.id: l for l in course_lessons(course.id)}
    unknown = [i for i in ids if i not in lessons]
    if unknown:
        raise ApiError(400, "invalid_request",
                       f"lesson_ids: not lessons of this course: {', '.join(map(str, unknown))}")
    attended = sorted(set(ids) & attended_lesson_ids(course.id, learner_id))
    if attended:
        raise ApiError(409, "already_attended",
                       f"lessons already attended need no excuse: {', '.join(map(str, attended))}",
                       extra={"lesson_ids": attended})
    open_ids = set(db.session.scalars(
        select(ExcuseLesson.lesson_id).join(ExcuseRequest, ExcuseRequest.id == ExcuseLesson.request_id)
        .where(ExcuseRequest.course_id == course.id, ExcuseRequest.learner_id == learner_id,
               ExcuseRequest.status.in_((PENDING, APPROVED)))))
    taken = sorted(set(ids) & open_ids)
    if taken:
        raise ApiError(409, "already_requested",
                       "lessons already in a pending or approved application: "
                       f"{', '.join(map(str, taken))}", extra={"lesson_ids": taken})
    return [lessons[i] for i in ids]


def apply(course: Course, learner: User, *, reason: str, statement: str | None, lesson_ids,
          uploads: list[Upload]) -> ExcuseRequest:
    """File an application (ATT-5). Everything is checked before anything is written; the
    evidence files and the rows are committed together."""
    if learner.role != "learner" or not is_enrolled(course.id, learner.id):
        raise forbidden("only a learner enrolled in the course may apply for an excused absence")
    if reason not in EXCUSE_REASONS:
        raise ApiError(400, "invalid_request", f"reason must be one of {', '.join(EXCUSE_REASONS)}")
    statement = (statement or "").strip() or None
    if statement is not None and len(statement) > MAX_STATEMENT_CHARS:
        raise ApiError(400, "invalid_request", f"statement: at most {MAX_STATEMENT_CHARS} characters")
    check_count(uploads, MAX_EVIDENCE_FILES, "ATT-5")
    lessons = _check_lessons(course, learner.id, lesson_ids)
    with evidence_transaction("excuses", uploads, max_evidence_bytes()) as batch:
        now = clock.now()
        req = ExcuseRequest(learner_id=learner.id, course_id=course.id, reason=reason, statement=statement,
                            status=PENDING, created_at=now)
        db.session.add(req)
        db.session.flush()
        for lesson in lessons:
            db.session.add(ExcuseLesson(request_id=req.id, lesson_id=lesson.id))
        for columns in batch.place(req.id, now):
            db.session.add(ExcuseEvidence(request_id=req.id, **columns))
        db.session.flush()
        _notify_staff(course, req, learner)
    return req


def _notify_staff(course: Course, req: ExcuseRequest, learner: User) -> None:
    from lms.content.models import StaffAssignment
    from lms.notify.service import notify_users

    staff = set(db.session.scalars(select(StaffAssignment.user_id).where(
        StaffAssignment.course_id == course.id, StaffAssignment.role.in_(DECIDER_STAFF_ROLES))))
    if staff:
        notify_users(staff, kind="excuse_request", email=False,
                     subject=f"[{course.code}] 공결 신청이 접수되었습니다",
                     body=f"{learner.name or learner.username} 학습자의 공결 신청 #{req.id}을 검토해 주세요.",
                     link=f"/courses/{course.id}/excuses/review")


# --- deciding --------------------------------------------------------------------------

def decide(request_id: int, actor: User, *, approve: bool, comment: str | None) -> ExcuseRequest:
    """Approve or reject an application (a TA or instructor of the course, or an admin).
    An approval beyond ATT-5's 20% is refused (422) and changes nothing."""
    req = get_request(request_id, actor)
    course = db.session.get(Course, req.course_id)
    if not can_decide(course, actor):
        raise forbidden("only a TA or instructor of the course, or an administrator, decides")
    comment = (comment or "").strip() or None
    if comment is not None and len(comment) > MAX_COMMENT_CHARS:
        raise ApiError(400, "invalid_request", f"comment: at most {MAX_COMMENT_CHARS} characters")
    # Serialise decisions about one learner in one course (the cap reads their approvals).
    db.session.scalar(select(Enrollment.id).where(Enrollment.course_id == req.course_id,
                                                  Enrollment.user_id == req.learner_id).with_for_update())
    req = db.session.scalar(select(ExcuseRequest).where(ExcuseRequest.id == request_id)
                            .with_for_update().execution_options(populate_existing=True))
    if req.status != PENDING:
        raise ApiError(409, "already_decided", f"this application was already {req.status}")
    if approve:
        lesson_ids = set(db.session.scalars(select(ExcuseLesson.lesson_id)
                                            .where(ExcuseLesson.request_id == req.id)))
        units, total = excused_units(req.course_id, req.learner_id, lesson_ids)
        if not rules.excuse_within_cap(units, total):
            cap = rules.excused_cap_units(total)
            raise RuleViolation(
                ["ATT-5"],
                f"excused absences may cover at most 20% of the course's class time ({float(cap):g} of "
                f"{total} units); approving this would make {units} units ({_percent_text(units, total)})",
                details=[{"rule": "ATT-5", "excused_units": units, "total_units": total,
                          "cap_units": float(cap)}])
    req.status = APPROVED if approve else REJECTED
    req.decided_by = actor.id
    req.decided_at = clock.now()
    req.decision_comment = comment
    from lms.audit.service import record_admin_action

    record_admin_action("excuse_request", req.id, "approve" if approve else "reject", actor=actor,
                        before={"status": PENDING}, after={"status": req.status, "comment": comment})
    _notify_learner(course, req)
    db.session.flush()
    if approve:
        from lms.attendance.service import settle_learner

        # Stores the approved lessons as *excused* (ATT-5) — and commits the decision with it.
        settle_learner(req.course_id, req.learner_id)
    db.session.commit()
    return req


def _notify_learner(course: Course, req: ExcuseRequest) -> None:
    from lms.notify.service import notify_users

    verdict = "승인" if req.status == APPROVED else "반려"
    body = f"공결 신청 #{req.id}이 {verdict}되었습니다."
    if req.decision_comment:
        body += f"\n의견: {req.decision_comment}"
    notify_users([req.learner_id], kind="excuse_decision", subject=f"[{course.code}] 공결 신청 {verdict}",
                 body=body, link=f"/courses/{course.id}/excuses")


# --- reading ---------------------------------------------------------------------------

def list_requests(course: Course, user: User, *, learner_id: int | None = None,
                  status: str | None = None) -> list[ExcuseRequest]:
    """The course's applications ``user`` may see (learners: their own), newest first."""
    stmt = select(ExcuseRequest).where(ExcuseRequest.course_id == course.id)
    if can_view_all(course, user):
        if learner_id is not None:
            stmt = stmt.where(ExcuseRequest.learner_id == learner_id)
    elif user.role == "learner" and (is_enrolled(course.id, user.id) or _has_requests(course.id, user.id)):
        if learner_id is not None and learner_id != user.id:
            raise forbidden("a learner sees only their own applications")
        stmt = stmt.where(ExcuseRequest.learner_id == user.id)
    else:
        raise forbidden("not a member of this course")
    if status is not None:
        stmt = stmt.where(ExcuseRequest.status == status)
    return list(db.session.scalars(stmt.order_by(ExcuseRequest.id.desc())))


def _has_requests(course_id: int, user_id: int) -> bool:
    return db.session.scalar(select(ExcuseRequest.id).where(
        ExcuseRequest.course_id == course_id, ExcuseRequest.learner_id == user_id).limit(1)) is not None


def request_lessons(req: ExcuseRequest) -> list[Lesson]:
    return list(db.session.scalars(
        select(Lesson).join(ExcuseLesson, ExcuseLesson.lesson_id == Lesson.id)
        .where(ExcuseLesson.request_id == req.id).order_by(Lesson.week, Lesson.position, Lesson.id)))


def request_evidence(req: ExcuseRequest) -> list[ExcuseEvidence]:
    return list(db.session.scalars(select(ExcuseEvidence).where(ExcuseEvidence.request_id == req.id)
                                   .order_by(ExcuseEvidence.id)))


def evidence_file(req: ExcuseRequest, evidence_id: int) -> tuple[ExcuseEvidence, Path]:
    ev = db.session.get(ExcuseEvidence, evidence_id)
    if ev is None or ev.request_id != req.id:
        raise not_found("evidence")
    return ev, stored_file(ev.stored_path)


def request_dict(req: ExcuseRequest) -> dict:
    lessons = request_lessons(req)
    return {
        "id": req.id, "course_id": req.course_id, "learner_id": req.learner_id, "reason": req.reason,
        "statement": req.statement, "status": req.status, "created_at": clock.iso(req.created_at),
        "lessons": [{"lesson_id": l.id, "week": l.week, "title": l.title,
                     "units": crs.lesson_units(l.kind, l.duration_seconds, l.frames)} for l in lessons],
        "units": sum(crs.lesson_units(l.kind, l.duration_seconds, l.frames) for l in lessons),
        "evidence": [{"id": e.id, "filename": e.filename, "content_type": e.content_type, "size": e.size,
                      "sha256": e.sha256, "uploaded_at": clock.iso(e.uploaded_at)} for e in request_evidence(req)],
        "decided_by": req.decided_by, "decided_at": clock.iso(req.decided_at),
        "decision_comment": req.decision_comment,
    }
