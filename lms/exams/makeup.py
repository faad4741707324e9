"""Make-up exams (추가시험, EXM-11): the learner's application with evidence, the
instructor's decision, the 5-day window and the B+ cap.

- **Applying.** A learner enrolled in the course applies for a *regular* exam (midterm or
  final; a quiz is refused with 422 naming EXM-11) whose window has closed (409
  ``exam_not_closed`` before) and which they did not sit (409 ``attempt_exists``); one
  application per exam (409 ``already_requested``). The application names a reason of
  ``REASONS``, a free-text detail and one to five evidence files (PDF, JPEG, PNG, checked by
  content; kept under ``LMS_MEDIA_ROOT/makeup/<request_id>/`` with SHA-256 and size, REC-1:
  make-up applications are kept 5 years). Everything is checked before anything is
  written; the row, the evidence rows and the files are committed together.
- **Deciding.** An instructor of the course or an administrator of the institution
  approves or rejects with a comment (409 ``already_decided`` the second time). An approval
  opens the make-up window ``rules.makeup_window(now)``: from the approval until 5 days
  after it. The learner gets an in-app notice and an e-mail.
- **Sitting.** The make-up attempt is started through the ordinary
  ``POST /api/v1/exams/{id}/attempts`` (``lms.exams.service.start_attempt``): inside the
  window it draws a fresh set of items under the same rules and marks the attempt
  ``is_makeup`` with ``makeup_request_id``; outside it, 409 ``exam_not_open``.
- **Grading.** ``grade_cap(course_id, learner_id)`` gives ``rules.MAKEUP_GRADE_CAP`` ("B+")
  when the learner sat a make-up exam of the course: course grading (issue 5) caps the
  learner's grade at it.

The transactions of this module commit themselves.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lms import clock, uploads
from lms.auth.models import User
from lms.content.models import Course, StaffAssignment
from lms.content.service import get_course, is_enrolled
from lms.db import db, lock_row
from lms.errors import ApiError, RuleViolation, forbidden, not_found
from lms.exams import access, rules
from lms.exams.models import Attempt, Exam, MakeupEvidence, MakeupRequest
from lms.exams.service import get_exam

PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
STATUSES = (PENDING, APPROVED, REJECTED)
# Who decides (EXM-11: the instructor approves), besides administrators of the institution.
DECIDER_STAFF_ROLES = access.INSTRUCTOR

# Excused reasons for missing a regular exam (Guide IV-1-가-4); Korean labels, translated
# where shown.
REASONS = ("illness", "bereavement", "military", "disaster", "work", "other")
REASON_LABELS = {
    "illness": "질병·부상 (입원·치료)",
    "bereavement": "본인·배우자 또는 직계가족의 사망",
    "military": "병역법 등 관계 법령에 의한 동원·소집",
    "disaster": "천재지변·사고",
    "work": "직장 업무 (출장·근무)",
    "other": "그 밖의 부득이한 사유",
}

MAX_EVIDENCE_FILES = 5
MAX_DETAIL_CHARS = 2000
MAX_COMMENT_CHARS = 2000
FOLDER = "makeup"  # under LMS_MEDIA_ROOT


def max_evidence_bytes() -> int:
    """Per evidence file: app config ``MAKEUP_MAX_FILE_BYTES`` (10 MB by default)."""
    return uploads.max_file_bytes("MAKEUP_MAX_FILE_BYTES")


def max_request_bytes() -> int:
    """The largest body an application may have: every file at its limit plus the form."""
    return MAX_EVIDENCE_FILES * max_evidence_bytes() + 256 * 1024


# --- access ----------------------------------------------------------------------------

def can_decide(course: Course, user: User) -> bool:
    return access.can_act(course, user, DECIDER_STAFF_ROLES)


def can_view_all(course: Course, user: User) -> bool:
    """Staff of the course, admins and inspectors of the institution see every application."""
    return access.can_read(course, user)


def get_request(request_id: int, user: User) -> MakeupRequest:
    """The application if ``user`` may see it: its learner, staff of its course, admins and
    inspectors of the institution (404 for unknown ids and other institutions)."""
    req = db.session.get(MakeupRequest, request_id)
    if req is None:
        raise not_found("make-up request")
    course = get_course(req.course_id, user)
    if req.learner_id != user.id and not access.can_read(course, user):
        raise forbidden("not your application")
    return req


# --- applying --------------------------------------------------------------------------

def eligibility_problem(exam: Exam, learner_id: int, now) -> ApiError | None:
    """Why the learner may not apply for a make-up of ``exam`` now (None: they may)."""
    if exam.kind not in rules.REGULAR_KINDS:
        return RuleViolation(["EXM-11"], "make-up exams are held for regular exams (midterm, final) only")
    if now < exam.closes_at:
        return ApiError(409, "exam_not_closed", "the exam's window has not closed yet: sit the exam instead",
                        extra={"closes_at": clock.iso(exam.closes_at)})
    if db.session.scalar(select(Attempt.id).where(Attempt.exam_id == exam.id,
                                                  Attempt.learner_id == learner_id)) is not None:
        return ApiError(409, "attempt_exists", "you sat this exam: a make-up exam is for learners who missed it")
    if db.session.scalar(select(MakeupRequest.id).where(MakeupRequest.exam_id == exam.id,
                                                        MakeupRequest.learner_id == learner_id)) is not None:
        return ApiError(409, "already_requested", "you already applied for a make-up of this exam")
    return None


def apply(exam_id: int, learner: User, *, reason: str, detail: str | None,
          files: list[uploads.Upload], ip: str | None = None) -> MakeupRequest:
    """File an application (EXM-11). 403 for anyone but a learner enrolled in the course;
    400 for a bad reason, detail or evidence; 409/422 when the exam is not eligible."""
    exam, course = get_exam(exam_id, learner)
    if learner.role != "learner" or not is_enrolled(course.id, learner.id):
        raise forbidden("only a learner enrolled in the course may apply for a make-up exam")
    if exam.announced_at is None:
        raise not_found("exam")
    if reason not in REASONS:
        raise ApiError(400, "invalid_request", f"reason must be one of {', '.join(REASONS)}")
    detail = (detail or "").strip() or None
    if detail is not None and (len(detail) > MAX_DETAIL_CHARS or "\x00" in detail):
        raise ApiError(400, "invalid_request", f"detail: at most {MAX_DETAIL_CHARS} characters of text")
    uploads.check_count(files, MAX_EVIDENCE_FILES, "EXM-11")
    problem = eligibility_problem(exam, learner.id, clock.now())
    if problem is not None:
        raise problem
    try:
        with uploads.evidence_transaction(FOLDER, files, max_evidence_bytes()) as batch:
            now = clock.now()
            req = MakeupRequest(exam_id=exam.id, course_id=course.id, learner_id=learner.id, reason=reason,
                                detail=detail, status=PENDING, created_at=now, created_ip=ip)
            db.session.add(req)
            db.session.flush()
            for columns in batch.place(req.id, now):
                db.session.add(MakeupEvidence(request_id=req.id, **columns))
            db.session.flush()
            _notify_deciders(course, exam, req, learner)
    except IntegrityError:  # the same learner applied twice at once: the other one won
        raise ApiError(409, "already_requested", "you already applied for a make-up of this exam") from None
    return req


def _notify_deciders(course: Course, exam: Exam, req: MakeupRequest, learner: User) -> None:
    from lms.notify.service import notify_users

    instructors = db.session.scalars(select(StaffAssignment.user_id).where(
        StaffAssignment.course_id == course.id, StaffAssignment.role.in_(DECIDER_STAFF_ROLES)))
    notify_users(list(instructors), kind="makeup_request", email=False,
                 subject=f"[{course.code}] 추가시험 신청: {exam.title}",
                 body=f"{learner.name or learner.username} 학습자의 추가시험 신청 #{req.id}을 심사해 주세요.",
                 link=f"/courses/{course.id}/makeup-requests")


# --- deciding --------------------------------------------------------------------------

def decide(request_id: int, actor: User, *, approve: bool, comment: str | None) -> MakeupRequest:
    """Approve or reject (an instructor of the course or an admin). An approval opens the
    make-up window: from now until 5 days later (EXM-11)."""
    req = get_request(request_id, actor)
    course = db.session.get(Course, req.course_id)
    if not can_decide(course, actor):
        raise forbidden("only an instructor of the course or an administrator decides")
    comment = (comment or "").strip() or None
    if comment is not None and (len(comment) > MAX_COMMENT_CHARS or "\x00" in comment):
        raise ApiError(400, "invalid_request", f"comment: at most {MAX_COMMENT_CHARS} characters of text")
    req = lock_row(MakeupRequest, req.id)  # two deciders at once: the second sees the first's decision
    if req.status != PENDING:
        raise ApiError(409, "already_decided", f"this application was already {req.status}")
    now = clock.now()
    req.status = APPROVED if approve else REJECTED
    req.decided_by = actor.id
    req.decided_at = now
    req.decision_comment = comment
    if approve:
        req.window_opens_at, req.window_closes_at = rules.makeup_window(now)
    from lms.audit.service import record_admin_action

    record_admin_action("makeup_request", req.id, "approve" if approve else "reject", actor=actor,
                        before={"status": PENDING}, after={"status": req.status, "comment": comment,
                                                           "window_closes_at": req.window_closes_at})
    _notify_learner(course, req)
    db.session.commit()
    return req


def _notify_learner(course: Course, req: MakeupRequest) -> None:
    from lms.notify.service import notify_users

    exam = db.session.get(Exam, req.exam_id)
    if req.status == APPROVED:
        subject = f"[{course.code}] 추가시험 신청 승인: {exam.title}"
        body = (f"추가시험 신청 #{req.id}이 승인되었습니다.\n응시 기간: {clock.to_kst(req.window_opens_at):%Y-%m-%d %H:%M}"
                f" – {clock.to_kst(req.window_closes_at):%Y-%m-%d %H:%M} (KST)\n"
                f"추가시험 성적은 {rules.MAKEUP_GRADE_CAP}까지만 인정됩니다.")
    else:
        subject = f"[{course.code}] 추가시험 신청 반려: {exam.title}"
        body = f"추가시험 신청 #{req.id}이 반려되었습니다."
    if req.decision_comment:
        body += f"\n의견: {req.decision_comment}"
    notify_users([req.learner_id], kind="makeup_decision", subject=subject, body=body, link="/makeup")


# --- reading ---------------------------------------------------------------------------

def list_requests(course: Course, user: User, *, exam_id: int | None = None,
                  status: str | None = None) -> list[MakeupRequest]:
    """The course's (or one exam's) applications ``user`` may see (learners: their own),
    newest first."""
    stmt = select(MakeupRequest).where(MakeupRequest.course_id == course.id)
    if not can_view_all(course, user):
        if user.role != "learner":
            raise forbidden("not a member of this course")
        stmt = stmt.where(MakeupRequest.learner_id == user.id)
    if exam_id is not None:
        stmt = stmt.where(MakeupRequest.exam_id == exam_id)
    if status is not None:
        stmt = stmt.where(MakeupRequest.status == status)
    return list(db.session.scalars(stmt.order_by(MakeupRequest.id.desc())))


def my_requests(learner: User) -> list[MakeupRequest]:
    """A learner's own applications in every course, newest first."""
    return list(db.session.scalars(select(MakeupRequest).where(MakeupRequest.learner_id == learner.id)
                                   .order_by(MakeupRequest.id.desc())))


def eligible_exams(learner: User) -> list[tuple[Exam, Course]]:
    """Regular exams of the learner's courses that closed without their attempt and
    without an application: what they may still apply for."""
    from lms.enrolment.models import Enrollment

    rows = db.session.execute(
        select(Exam, Course).join(Course, Course.id == Exam.course_id)
        .join(Enrollment, (Enrollment.course_id == Course.id) & (Enrollment.user_id == learner.id))
        .where(Enrollment.status == "active", Exam.kind.in_(rules.REGULAR_KINDS), Exam.announced_at.is_not(None),
               Exam.closes_at <= clock.now(),
               ~select(Attempt.id).where(Attempt.exam_id == Exam.id, Attempt.learner_id == learner.id).exists(),
               ~select(MakeupRequest.id).where(MakeupRequest.exam_id == Exam.id,
                                               MakeupRequest.learner_id == learner.id).exists())
        .order_by(Exam.closes_at.desc(), Exam.id)).all()
    return [(e, c) for e, c in rows]


def request_evidence(req: MakeupRequest) -> list[MakeupEvidence]:
    return list(db.session.scalars(select(MakeupEvidence).where(MakeupEvidence.request_id == req.id)
                                   .order_by(MakeupEvidence.id)))


def evidence_row(req: MakeupRequest, evidence_id: int) -> MakeupEvidence:
    ev = db.session.get(MakeupEvidence, evidence_id)
    if ev is None or ev.request_id != req.id:
        raise not_found("evidence")
    return ev


def makeup_attempt(req: MakeupRequest) -> Attempt | None:
    return db.session.scalar(select(Attempt).where(Attempt.makeup_request_id == req.id))


def window_state(req: MakeupRequest, now=None) -> str | None:
    """``open``/``upcoming``/``closed`` for an approved application (None otherwise)."""
    if req.status != APPROVED or req.window_opens_at is None:
        return None
    now = now or clock.now()
    if now < req.window_opens_at:
        return "upcoming"
    return "open" if now < req.window_closes_at else "closed"


def request_dict(req: MakeupRequest) -> dict:
    exam = db.session.get(Exam, req.exam_id)
    attempt = makeup_attempt(req)
    return {
        "id": req.id, "exam_id": req.exam_id, "exam_title": exam.title, "exam_kind": exam.kind,
        "course_id": req.course_id, "learner_id": req.learner_id, "reason": req.reason,
        "reason_label": REASON_LABELS.get(req.reason, req.reason), "detail": req.detail, "status": req.status,
        "created_at": clock.iso(req.created_at),
        "evidence": [{"id": e.id, "filename": e.filename, "content_type": e.content_type, "size": e.size,
                      "sha256": e.sha256, "uploaded_at": clock.iso(e.uploaded_at)} for e in request_evidence(req)],
        "decided_by": req.decided_by, "decided_at": clock.iso(req.decided_at),
        "decision_comment": req.decision_comment,
        "window_opens_at": clock.iso(req.window_opens_at), "window_closes_at": clock.iso(req.window_closes_at),
        "window": window_state(req), "attempt_id": attempt.id if attempt else None,
        "grade_cap": rules.MAKEUP_GRADE_CAP if req.status == APPROVED else None,
    }


# --- for grading (issue 5) -------------------------------------------------------------

def grade_cap(course_id: int, learner_id: int) -> str | None:
    """EXM-11: ``rules.MAKEUP_GRADE_CAP`` ("B+") when the learner sat a make-up exam of a
    regular exam of the course (an attempt with ``is_makeup``); None otherwise. Course
    grading gives such a learner at most this grade."""
    sat = db.session.scalar(select(Attempt.id).join(Exam, Exam.id == Attempt.exam_id)
                            .where(Exam.course_id == course_id, Attempt.learner_id == learner_id,
                                   Attempt.is_makeup.is_(True)).limit(1))
    return rules.MAKEUP_GRADE_CAP if sat is not None else None

