"""Enrolments: a learner in a course's class (분반). ENR-2 consent, CRS-7 capacity.

ENR-1 deadlines and late registration, ENR-3 credit caps, moving between classes, CRS-14
course cancellation; every step is appended to ``enrollment_event``. Fees and refunds
(ENR-4): ``lms.enrolment.fees``; the learner register (ENR-5): ``lms.enrolment.register``.
"""
from __future__ import annotations

from flask import has_request_context
from sqlalchemy import func, select

from lms import clock
from lms.auth.models import User
from lms.content import rules as crs
from lms.content.models import Course, Section
from lms.db import advisory_lock, db, lock_row
from lms.enrolment import rules
from lms.enrolment.models import Enrollment, EnrollmentEvent, LateRight
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


def _learner_credit_rows(learner_id: int, exclude_course_id: int | None = None) -> list[tuple]:
    """(end date, credits) of the learner's live registrations (active or completed), ENR-3."""
    rows = db.session.execute(
        select(Course.starts_on, Course.weeks, Course.credits)
        .join(Enrollment, Enrollment.course_id == Course.id)
        .where(Enrollment.user_id == learner_id, Enrollment.status.in_(("active", "completed")),
               Course.status != "cancelled")
        .where(Course.id != (exclude_course_id or 0))).all()
    return [(rules.course_ends_on(s, w), c) for s, w, c in rows]


def credit_totals(learner_id: int) -> list[dict]:
    """ENR-3: the learner's credits per year (Mar–Feb) and half, by course end date."""
    return rules.credit_totals(_learner_credit_rows(learner_id))


def check_credits(course: Course, learner_id: int) -> rules.CreditCheck:
    """ENR-3: 422 naming the rule and showing the learner's current totals when the course
    would take them over 42 a year or 24 a half."""
    end = rules.course_ends_on(course.starts_on, course.weeks)
    check = rules.credit_check(_learner_credit_rows(learner_id, course.id), end, course.credits)
    if not check.ok:
        y0, y1 = rules.year_bounds(check.year)
        h0, h1 = rules.half_bounds(check.year, check.half)
        parts = []
        if "year" in check.broken:
            parts.append(f"{y0.isoformat()}–{y1.isoformat()}: {check.year_credits} + {course.credits} credits "
                         f"> {rules.YEAR_CREDIT_CAP} a year")
        if "half" in check.broken:
            parts.append(f"{h0.isoformat()}–{h1.isoformat()}: {check.half_credits} + {course.credits} credits "
                         f"> {rules.HALF_CREDIT_CAP} a half")
        raise RuleViolation(["ENR-3"], "credit cap exceeded (counted by course end date " + end.isoformat()
                            + "): " + "; ".join(parts), details={
                                "course_ends_on": end.isoformat(), "course_credits": course.credits,
                                "year": f"{y0.isoformat()}/{y1.isoformat()}", "year_credits": check.year_credits,
                                "year_cap": rules.YEAR_CREDIT_CAP,
                                "half": f"{h0.isoformat()}/{h1.isoformat()}", "half_credits": check.half_credits,
                                "half_cap": rules.HALF_CREDIT_CAP, "broken": list(check.broken),
                                "totals": credit_totals(learner_id)})
    return check


def open_late_right(learner_id: int) -> LateRight | None:
    """ENR-1: the learner's oldest unused late-registration right."""
    return db.session.scalar(select(LateRight).where(LateRight.learner_id == learner_id,
                                                     LateRight.used_enrollment_id.is_(None))
                             .order_by(LateRight.id).limit(1))


def add_event(enrollment: Enrollment, kind: str, *, actor: User | None, reason: str | None = None,
              registration_kind: str | None = None, detail: dict | None = None, ip: bool = True) -> None:
    db.session.add(EnrollmentEvent(enrollment_id=enrollment.id, kind=kind, registration_kind=registration_kind,
                                   actor_id=actor.id if actor else None, at=clock.now(),
                                   ip=client_ip() if ip and has_request_context() else None, reason=reason,
                                   detail=detail))


def enrol(course: Course, *, learner_id: int, actor: User, syllabus_consent: bool = False,
          reason: str | None = None) -> Enrollment:
    """Enrol ``learner_id``.

    - ENR-2: a learner enrolling themself must record syllabus consent; an admin may enrol
      directly and the learner consents on first visit.
    - ENR-1: regular registration closes at 00:00 KST of the start date (the day before is
      the last day). Until start + 14 days a learner holding a late-registration right (a
      registration cancelled for an unavoidable reason, e.g. CRS-14) registers late, into a
      course below capacity; the right is used up. Otherwise a learner is refused (422
      ENR-1). An administrator enrolling after the deadline without a right makes a
      documented administrative override (``admin_override``, with the reason given),
      recorded in the registration's history.
    - ENR-3: credit caps; CRS-7: classes of ≤ 200 and the course's (accredited) capacity.
    """
    if actor.role == "learner":
        if actor.id != learner_id:
            raise forbidden("learners enrol only themselves")
        if course.status != "published":
            raise ApiError(409, "course_not_open", "the course is not open for registration")
        if not syllabus_consent:
            raise RuleViolation(["ENR-2"], "view the syllabus and record consent (syllabus_consent: true)")
    elif actor.role != "admin":
        raise forbidden("only an administrator or the learner may enrol")
    # Serialise enrolments of one course so two requests cannot both take the last seat,
    # and of one learner so two courses cannot both pass the credit cap (ENR-3).
    advisory_lock(f"enrol-course:{course.id}", f"enrol-learner:{learner_id}")
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
    now = clock.now()
    period = rules.registration_period(course.starts_on, now)
    kind, right = rules.REGULAR, None
    if period != "regular":
        right = open_late_right(learner_id) if period == "late" else None
        if right is not None:
            kind = rules.LATE
        elif actor.role == "admin":
            kind = rules.ADMIN_OVERRIDE
        else:
            deadline = clock.iso(rules.registration_deadline(course.starts_on))
            late_until = clock.iso(rules.late_registration_deadline(course.starts_on))
            if period == "late":
                msg = (f"registration closed at {deadline} (the day before the start); late registration until "
                       f"{late_until} is only for a learner whose registration was cancelled for an unavoidable reason")
            else:
                msg = f"registration closed at {deadline}; late registration ended at {late_until}"
            raise RuleViolation(["ENR-1"], msg, details={"registration_deadline": deadline,
                                                         "late_registration_until": late_until,
                                                         "late_right": False})
    capacity = min(course.capacity, course.accredited_capacity or course.capacity, crs.MAX_COURSE_CAPACITY)
    if active_count(course.id) >= capacity:
        raise RuleViolation(["CRS-7"] if kind != rules.LATE else ["ENR-1", "CRS-7"],
                            f"the course is full (capacity {capacity})")
    check_credits(course, learner_id)
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
        existing.syllabus_consent_ip = client_ip() if has_request_context() else None
    db.session.flush()
    why = reason
    if kind == rules.LATE:
        right.used_enrollment_id = existing.id
        right.used_at = now
        why = right.reason if not reason else f"{right.reason} / {reason}"
    elif kind == rules.ADMIN_OVERRIDE and not reason:
        why = "관리자 직권 등록 (등록 마감 후, 사유 미기재)"
    add_event(existing, "enrolled", actor=actor, registration_kind=kind, reason=why,
              detail={"section_id": section.id, "late_right_id": right.id if right else None})
    if syllabus_consent:
        add_event(existing, "consent", actor=actor)
    from lms.enrolment import register

    register.ensure_entry(existing)
    return existing


def registration_kind(enrollment_id: int) -> str | None:
    """regular | late | admin_override (the newest ``enrolled`` event)."""
    return db.session.scalar(select(EnrollmentEvent.registration_kind).where(
        EnrollmentEvent.enrollment_id == enrollment_id, EnrollmentEvent.kind == "enrolled")
        .order_by(EnrollmentEvent.id.desc()).limit(1))


def get_enrollment(enrollment_id: int, user: User) -> Enrollment:
    """An enrolment of the admin's institution (404 otherwise)."""
    e = db.session.get(Enrollment, enrollment_id)
    if e is None:
        raise not_found("enrollment")
    course = db.session.get(Course, e.course_id)
    if user.role != "admin" or course.institution_id != user.institution_id:
        raise not_found("enrollment")
    return e


def move(enrollment: Enrollment, *, section_id: int, actor: User) -> Enrollment:
    """An administrator moves a learner to another class of the same course (CRS-7: the
    target class holds at most 200)."""
    advisory_lock(f"enrol-course:{enrollment.course_id}")
    lock_row(Enrollment, enrollment.id)
    if enrollment.status != "active":
        raise ApiError(409, "not_active", "only an active registration can be moved")
    target = db.session.get(Section, section_id)
    if target is None or target.course_id != enrollment.course_id:
        raise ApiError(400, "invalid_request", "section_id: a class of the same course")
    if target.id == enrollment.section_id:
        raise ApiError(409, "same_section", "the learner is already in this class")
    if active_count(enrollment.course_id, target.id) >= min(target.capacity, crs.MAX_SECTION_SIZE):
        raise RuleViolation(["CRS-7"], f"class {target.name} is full "
                                       f"({min(target.capacity, crs.MAX_SECTION_SIZE)} learners)")
    before = enrollment.section_id
    enrollment.section_id = target.id
    add_event(enrollment, "moved", actor=actor, detail={"from_section_id": before, "to_section_id": target.id})
    db.session.flush()
    return enrollment


def cancel_enrollment(enrollment: Enrollment, *, actor: User | None, reason: str, unavoidable: bool,
                      detail: dict | None = None) -> Enrollment:
    """Cancel a registration with its reason; an unavoidable reason (ENR-1: 폐강 등 부득이한
    사유) opens the learner's late-registration right."""
    lock_row(Enrollment, enrollment.id)
    if enrollment.status != "active":
        raise ApiError(409, "not_active", "the registration is not active")
    now = clock.now()
    enrollment.status = "cancelled"
    enrollment.cancelled_at = now
    enrollment.cancel_reason = reason[:200]
    add_event(enrollment, "cancelled", actor=actor, reason=reason, detail={"late_right": unavoidable, **(detail or {})})
    if unavoidable:
        db.session.add(LateRight(learner_id=enrollment.user_id, source_enrollment_id=enrollment.id,
                                 reason=reason[:500], opened_at=now))
    db.session.flush()
    return enrollment


def cancel_course(course: Course, *, actor: User, reason: str) -> dict:
    """CRS-14: a course with 10 or fewer registrations may be cancelled (폐강). Its
    registrations are cancelled, each learner gets a late-registration right (ENR-1) and a
    full refund of what they paid (ENR-4), and is notified."""
    from lms.enrolment import fees
    from lms.notify.service import notify_users

    advisory_lock(f"enrol-course:{course.id}")
    lock_row(Course, course.id)
    if course.status == "cancelled":
        raise ApiError(409, "course_cancelled", "the course is already cancelled")
    count = active_count(course.id)
    if not rules.may_cancel(count):
        raise RuleViolation(["CRS-14"], f"a course with {count} registrations cannot be cancelled "
                                        f"(only {rules.MAX_REGISTRATIONS_TO_CANCEL} or fewer)",
                            details={"registrations": count, "max": rules.MAX_REGISTRATIONS_TO_CANCEL})
    rows = list(db.session.scalars(select(Enrollment).where(Enrollment.course_id == course.id,
                                                            Enrollment.status == "active")))
    why = f"폐강 (CRS-14): {reason}"
    refunds = []
    for e in rows:
        cancel_enrollment(e, actor=actor, reason=why, unavoidable=True)
        if fees.net_paid(e.id) > 0:
            refunds.append(fees.create_refund(e, cause="course_cancelled", cause_at=clock.now(), actor=actor))
    course.status = "cancelled"
    if rows:
        notify_users([e.user_id for e in rows], kind="course_cancelled",
                     subject=f"[폐강] {course.title}",
                     body=f"{course.title} ({course.code}) 과정이 폐강되었습니다. 사유: {reason}. "
                          "납부하신 학습비는 5일 이내에 전액 반환되며, 다른 과정에 개강일로부터 2주 이내 "
                          "추가 등록할 수 있습니다.")
    db.session.flush()
    return {"course_id": course.id, "cancelled_registrations": len(rows), "refunds": len(refunds)}


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
    """ENR-2: the learner viewed the syllabus and consented (time and IP kept, and an event)."""
    if enrollment.syllabus_consent_at is None:
        enrollment.syllabus_consent_at = clock.now()
        enrollment.syllabus_consent_ip = client_ip()
        db.session.add(EnrollmentEvent(enrollment_id=enrollment.id, kind="consent", actor_id=enrollment.user_id,
                                       at=enrollment.syllabus_consent_at, ip=enrollment.syllabus_consent_ip))
