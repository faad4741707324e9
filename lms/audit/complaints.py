"""Complaint (신문고) and 1:1 counselling channels (REC-5; issue 6, item 6).

A learner files an attendance or grade complaint, or a 1:1 counselling request, optionally
naming a course, lesson or exam of theirs. Who answers: the instructors and TAs of the named
course, and the institution's administrators (for everything, and alone for requests that
name no course). Inspectors of the institution read every thread (read-only, REC-6).

The thread is evidence: every message — and every status change, itself a message row —
is appended with its author, role, time and IP and never edited or deleted. The
complaint's ``status`` (open → answered → closed; a learner's reply re-opens an answered
one) is a summary of its messages. New complaints and replies are notified in the app and
by e-mail (``lms.notify``).
"""
from __future__ import annotations

from sqlalchemy import select

from lms import clock
from lms.audit.models_compliance import COMPLAINT_KINDS, Complaint, ComplaintMessage
from lms.auth.models import User
from lms.content.models import Course, Lesson, StaffAssignment
from lms.content.service import staff_roles
from lms.db import db, lock_row
from lms.enrolment.models import Enrollment
from lms.errors import ApiError, forbidden, not_found
from lms.exams.models import Exam
from lms.notify.service import notify_users

OPEN, ANSWERED, CLOSED = "open", "answered", "closed"
MAX_SUBJECT_CHARS = 200
MAX_BODY_CHARS = 5000
STAFF = ("instructor", "ta")
READ_ALL_ROLES = ("admin", "inspector")
KIND_LABELS = {"attendance": "출석 이의", "grade": "성적 이의", "counselling": "1:1 상담"}


def _text(name: str, value, limit: int, *, required: bool = True) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ApiError(400, "invalid_request", f"{name}: required")
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_request", f"{name}: text")
    value = value.strip()
    if len(value) > limit:
        raise ApiError(400, "invalid_request", f"{name}: at most {limit} characters")
    if "\x00" in value:
        raise ApiError(400, "invalid_request", f"{name}: control characters are not allowed")
    return value


def _course_of(learner: User, course_id, lesson_id, exam_id) -> tuple[int | None, int | None, int | None]:
    """The course a complaint concerns (from the course, lesson or exam named), checked to
    be the learner's: another institution's → 404, not enrolled → 403, mismatched → 400."""
    named = set()
    if lesson_id is not None:
        lesson = db.session.get(Lesson, lesson_id)
        if lesson is None:
            raise not_found("lesson")
        named.add(lesson.course_id)
    if exam_id is not None:
        exam = db.session.get(Exam, exam_id)
        if exam is None:
            raise not_found("exam")
        named.add(exam.course_id)
    if course_id is not None:
        named.add(course_id)
    if len(named) > 1:
        raise ApiError(400, "invalid_request", "course_id, lesson_id and exam_id name different courses")
    if not named:
        return None, None, None
    cid = named.pop()
    course = db.session.get(Course, cid)
    if course is None or course.institution_id != learner.institution_id:
        raise not_found("course")
    if db.session.scalar(select(Enrollment.id).where(Enrollment.course_id == cid,
                                                     Enrollment.user_id == learner.id)) is None:
        raise forbidden("you are not enrolled in this course")
    return cid, lesson_id, exam_id


def handler_ids(c: Complaint) -> list[int]:
    """Who is told of a new complaint or a learner's reply: the course's staff, or the
    institution's administrators when it names no course (or the course has no staff)."""
    ids: list[int] = []
    if c.course_id is not None:
        ids = list(db.session.scalars(select(StaffAssignment.user_id).where(
            StaffAssignment.course_id == c.course_id, StaffAssignment.role.in_(STAFF))))
    if not ids:
        ids = list(db.session.scalars(select(User.id).where(User.institution_id == c.institution_id,
                                                            User.role == "admin", User.locked.is_(False))))
    return sorted(set(ids))


def _message(c: Complaint, user: User, body: str | None, ip: str | None, action: str, now) -> ComplaintMessage:
    m = ComplaintMessage(complaint_id=c.id, author_id=user.id, author_role=user.role, action=action, body=body,
                         created_at=now, ip=ip)
    db.session.add(m)
    c.last_message_at = now
    return m


def _link(c: Complaint) -> str:
    return f"/complaints/{c.id}"


def file_complaint(learner: User, *, kind: str, subject, body, course_id=None, lesson_id=None, exam_id=None,
                   ip: str | None = None) -> Complaint:
    if kind not in COMPLAINT_KINDS:
        raise ApiError(400, "invalid_request", f"kind must be one of {', '.join(COMPLAINT_KINDS)}")
    subject = _text("subject", subject, MAX_SUBJECT_CHARS)
    body = _text("body", body, MAX_BODY_CHARS)
    cid, lid, eid = _course_of(learner, course_id, lesson_id, exam_id)
    now = clock.now()
    c = Complaint(institution_id=learner.institution_id, learner_id=learner.id, kind=kind, course_id=cid,
                  lesson_id=lid, exam_id=eid, subject=subject, status=OPEN, created_at=now, created_ip=ip,
                  last_message_at=now)
    db.session.add(c)
    db.session.flush()
    _message(c, learner, body, ip, "message", now)
    notify_users(handler_ids(c), kind="complaint_filed",
                 subject=f"[{KIND_LABELS[kind]}] {subject}",
                 body=f"{learner.name or learner.username}님이 {KIND_LABELS[kind]}을(를) 접수했습니다: {subject}",
                 link=_link(c))
    db.session.commit()
    return c


# --- access -------------------------------------------------------------------------------------

def can_answer(c: Complaint, user: User) -> bool:
    if user.institution_id != c.institution_id:
        return False
    if user.role == "admin":
        return True
    return c.course_id is not None and bool(staff_roles(c.course_id, user.id) & set(STAFF))


def can_read(c: Complaint, user: User) -> bool:
    if user.institution_id != c.institution_id:
        return False
    return user.id == c.learner_id or user.role in READ_ALL_ROLES or can_answer(c, user)


def get_complaint(complaint_id: int, user: User, *, lock: bool = False) -> Complaint:
    c = lock_row(Complaint, complaint_id) if lock else db.session.get(Complaint, complaint_id)
    if c is None or c.institution_id != user.institution_id:
        raise not_found("complaint")
    if not can_read(c, user):
        raise forbidden("not your complaint, nor one of your courses")
    return c


def visible(user: User, *, status: str | None = None, course_id: int | None = None,
            kind: str | None = None) -> list[Complaint]:
    stmt = select(Complaint).where(Complaint.institution_id == user.institution_id)
    if user.role == "learner":
        stmt = stmt.where(Complaint.learner_id == user.id)
    elif user.role in STAFF:
        mine = select(StaffAssignment.course_id).where(StaffAssignment.user_id == user.id,
                                                       StaffAssignment.role.in_(STAFF))
        stmt = stmt.where(Complaint.course_id.in_(mine))
    elif user.role not in READ_ALL_ROLES:
        return []
    if status is not None:
        stmt = stmt.where(Complaint.status == status)
    if course_id is not None:
        stmt = stmt.where(Complaint.course_id == course_id)
    if kind is not None:
        stmt = stmt.where(Complaint.kind == kind)
    return list(db.session.scalars(stmt.order_by(Complaint.last_message_at.desc(), Complaint.id.desc()).limit(500)))


# --- replies and closing ----------------------------------------------------------------------------

def reply(complaint_id: int, user: User, body, ip: str | None) -> ComplaintMessage:
    """Append a message. The learner's reply re-opens an answered thread; a staff or
    administrator's reply answers it. A closed thread takes no more messages (409)."""
    body = _text("body", body, MAX_BODY_CHARS)
    c = get_complaint(complaint_id, user, lock=True)
    is_owner = user.id == c.learner_id
    if not (is_owner or can_answer(c, user)):
        db.session.rollback()
        raise forbidden("inspectors read complaints; they do not answer them")
    if c.status == CLOSED:
        db.session.rollback()
        raise ApiError(409, "complaint_closed", "this complaint is closed; file a new one")
    now = clock.now()
    m = _message(c, user, body, ip, "message", now)
    if is_owner:
        c.status = OPEN
        notify_users(handler_ids(c), kind="complaint_reply", subject=f"[{KIND_LABELS[c.kind]}] {c.subject}",
                     body=f"학습자가 추가 의견을 남겼습니다: {c.subject}", link=_link(c))
    else:
        c.status = ANSWERED
        if c.first_answer_at is None:
            c.first_answer_at = now
        notify_users([c.learner_id], kind="complaint_answered", subject=f"[{KIND_LABELS[c.kind]}] 답변: {c.subject}",
                     body=f"접수하신 「{c.subject}」에 답변이 등록되었습니다.", link=_link(c))
    db.session.commit()
    return m


def close(complaint_id: int, user: User, body, ip: str | None) -> Complaint:
    body = _text("body", body, MAX_BODY_CHARS, required=False)
    c = get_complaint(complaint_id, user, lock=True)
    if not (user.id == c.learner_id or can_answer(c, user)):
        db.session.rollback()
        raise forbidden("inspectors read complaints; they do not close them")
    if c.status == CLOSED:
        db.session.rollback()
        raise ApiError(409, "complaint_closed", "this complaint is already closed")
    now = clock.now()
    _message(c, user, body, ip, "close", now)
    c.status, c.closed_at = CLOSED, now
    others = [c.learner_id] if user.id != c.learner_id else handler_ids(c)
    notify_users(others, kind="complaint_closed", subject=f"[{KIND_LABELS[c.kind]}] 종결: {c.subject}",
                 body=f"「{c.subject}」이(가) 종결되었습니다.", link=_link(c), email=False)
    db.session.commit()
    return c


# --- output --------------------------------------------------------------------------------------------

def messages(c: Complaint) -> list[ComplaintMessage]:
    return list(db.session.scalars(select(ComplaintMessage).where(ComplaintMessage.complaint_id == c.id)
                                   .order_by(ComplaintMessage.id)))


def _users(ids) -> dict[int, User]:
    ids = list(set(ids))
    return {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}


def complaint_dict(c: Complaint, *, with_messages: bool = False, viewer: User | None = None) -> dict:
    out = {"id": c.id, "kind": c.kind, "status": c.status, "subject": c.subject, "learner_id": c.learner_id,
           "course_id": c.course_id, "lesson_id": c.lesson_id, "exam_id": c.exam_id,
           "created_at": clock.iso(c.created_at), "last_message_at": clock.iso(c.last_message_at),
           "first_answer_at": clock.iso(c.first_answer_at), "closed_at": clock.iso(c.closed_at)}
    if viewer is not None:
        out["can_reply"] = c.status != CLOSED and (viewer.id == c.learner_id or can_answer(c, viewer))
    if with_messages:
        msgs = messages(c)
        users = _users([m.author_id for m in msgs])
        out["messages"] = [{"id": m.id, "author_id": m.author_id,
                            "author": (users[m.author_id].name or users[m.author_id].username)
                            if m.author_id in users else None,
                            "author_role": m.author_role, "action": m.action, "body": m.body,
                            "created_at": clock.iso(m.created_at),
                            # Addresses are evidence for administrators and inspectors only.
                            **({"ip": m.ip} if viewer is None or viewer.role in READ_ALL_ROLES else {})}
                           for m in msgs]
    return out


def learner_courses(learner: User) -> list[Course]:
    return list(db.session.scalars(select(Course).join(Enrollment, Enrollment.course_id == Course.id)
                                   .where(Enrollment.user_id == learner.id).order_by(Course.starts_on.desc())))
