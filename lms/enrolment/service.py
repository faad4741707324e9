"""Enrolments: a learner in a course's class (분반). ENR-2 consent, CRS-7 capacity.

The registration rules of the credit bank (ENR-1 deadlines, ENR-3 credit caps, ENR-4
refunds) come with the registration capability; this module is what attendance needs.
"""
from __future__ import annotations

from sqlalchemy import func, select

from lms import clock
from lms.auth.models import User
from lms.content import rules as crs
from lms.content.models import Course, Section
from lms.db import db
from lms.enrolment.models import Enrollment
from lms.errors import ApiError, RuleViolation, forbidden, not_found
from lms.net import client_ip


def active_count(course_id: int, section_id: int | None = None) -> int:
    stmt = select(func.count(Enrollment.id)).where(Enrollment.course_id == course_id,
                                                   Enrollment.status == "active")
    if section_id is not None:
        stmt = stmt.where(Enrollment.section_id == section_id)
    return db.session.scalar(stmt) or 0


def _section_with_room(course: Course) -> Section:
    """The first class with room (CRS-7: at most 200), or a new one."""
    sections = list(db.session.scalars(select(Section).where(Section.course_id == course.id).order_by(Section.id)))
    for sec in sections:
        if active_count(course.id, sec.id) < min(sec.capacity, crs.MAX_SECTION_SIZE):
            return sec
    sec = Section(course_id=course.id, name=str(len(sections) + 1), capacity=crs.MAX_SECTION_SIZE)
    db.session.add(sec)
    db.session.flush()
    return sec


def enrol(course: Course, *, learner_id: int, actor: User, syllabus_consent: bool = False) -> Enrollment:
    """Enrol ``learner_id``. A learner enrolling themself must record syllabus consent
    (ENR-2); an admin may enrol directly and the learner consents on first visit."""
    if actor.role == "learner":
        if actor.id != learner_id:
            raise forbidden("learners enrol only themselves")
        if course.status != "published":
            raise ApiError(409, "course_not_open", "the course is not open for registration")
        if not syllabus_consent:
            raise RuleViolation(["ENR-2"], "view the syllabus and record consent (syllabus_consent: true)")
    elif actor.role != "admin":
        raise forbidden("only an administrator or the learner may enrol")
    # Serialise enrolments of one course so two requests cannot both take the last seat.
    db.session.scalar(select(Course.id).where(Course.id == course.id).with_for_update())
    if course.status == "cancelled":
        raise ApiError(409, "course_cancelled", "the course was cancelled")
    learner = db.session.get(User, learner_id)
    if learner is None or learner.institution_id != course.institution_id:
        raise not_found("user")
    if learner.role != "learner":
        raise ApiError(400, "invalid_request", f"user {learner_id} is a {learner.role}, not a learner")
    existing = db.session.scalar(select(Enrollment).where(Enrollment.course_id == course.id,
                                                          Enrollment.user_id == learner_id))
    if existing is not None and existing.status == "active":
        raise ApiError(409, "already_enrolled", "the learner is already enrolled in this course")
    if active_count(course.id) >= course.capacity:
        raise RuleViolation(["CRS-7"], f"the course is full (capacity {course.capacity})")
    now = clock.now()
    section = _section_with_room(course)
    if existing is None:
        existing = Enrollment(course_id=course.id, user_id=learner_id, created_at=now)
        db.session.add(existing)
    existing.status = "active"
    existing.section_id = section.id
    existing.cancelled_at = None
    existing.cancel_reason = None
    if syllabus_consent:
        existing.syllabus_consent_at = now
        existing.syllabus_consent_ip = client_ip()
    db.session.flush()
    return existing


def enrollment_dict(e: Enrollment) -> dict:
    return {"id": e.id, "course_id": e.course_id, "user_id": e.user_id, "section_id": e.section_id,
            "status": e.status, "created_at": clock.iso(e.created_at),
            "syllabus_consent_at": clock.iso(e.syllabus_consent_at)}


def course_learners(course_id: int) -> list[tuple[Enrollment, User]]:
    return list(db.session.execute(
        select(Enrollment, User).join(User, User.id == Enrollment.user_id)
        .where(Enrollment.course_id == course_id, Enrollment.status == "active")
        .order_by(User.username)).tuples())


def record_consent(enrollment: Enrollment) -> None:
    """ENR-2: the learner viewed the syllabus and consented."""
    if enrollment.syllabus_consent_at is None:
        enrollment.syllabus_consent_at = clock.now()
        enrollment.syllabus_consent_ip = client_ip()
