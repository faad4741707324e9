"""The compliance report of a course (issue 6, item 4; REC-6): gathers the facts of a
course from the database (a bounded number of aggregate queries), runs the pure checks of
``lms.audit.compliance_rules`` over them, and renders the result as a PDF kept as evidence
(``compliance_report`` row, file under ``LMS_MEDIA_ROOT/compliance`` with its SHA-256).

Who: administrators and inspectors of the course's institution.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import and_, func, or_, select

from lms import clock, uploads
from lms.attendance import reports as att_reports
from lms.attendance import rules as att
from lms.attendance.models import AttendanceSubmission, LessonProgress, LessonView, ViewEvent
from lms.audit import compliance_rules as cr
from lms.audit.models import AccessLog
from lms.audit.models_compliance import Complaint, ComplianceReport
from lms.auth.models import User
from lms.content import rules as crs
from lms.content.models import Course, Lesson, Section, StaffAssignment, Syllabus
from lms.content.service import get_course, lesson_facts
from lms.db import EncryptedText, db
from lms.enrolment.models import Enrollment
from lms.errors import forbidden, not_found
from lms.exams import items as bank
from lms.exams.models import Attempt, AttemptEvent, AttemptItem, CheatingFinding, Exam, Item, ItemVersion, MakeupRequest
from lms.proctoring.models import AttemptAddress

REPORT_ROLES = ("admin", "inspector")
FOLDER = "compliance"
# EXM-10: the submit_overdue job closes an attempt within a minute of its deadline; one
# still without an end this long after it is missing evidence.
SUBMIT_GRACE = timedelta(minutes=5)


def course_for_report(course_id: int, user: User) -> Course:
    """The course for an administrator or inspector of its institution (404 elsewhere)."""
    course = get_course(course_id, user)
    if user.role not in REPORT_ROLES:
        raise forbidden("only administrators and inspectors see compliance reports")
    return course


def institution_courses(user: User, term: str | None = None) -> list[tuple[Course, str]]:
    """The institution's courses with their term (``YYYY-1``/``YYYY-2`` by start date)."""
    out = [(c, cr.term_of(c.starts_on)) for c in att_reports.institution_courses(user)]
    return [(c, t) for c, t in out if term is None or t == term]


def valid_term(term: str) -> bool:
    year, _, half = term.partition("-")
    return len(year) == 4 and year.isdigit() and half in ("1", "2")


# --- facts ---------------------------------------------------------------------------------------

def gather(course: Course, now: datetime) -> cr.CourseFacts:
    lessons = list(db.session.scalars(select(Lesson).where(Lesson.course_id == course.id)
                                      .order_by(Lesson.week, Lesson.position, Lesson.id)))
    f = cr.CourseFacts(course_id=course.id, code=course.code, title=course.title, credits=course.credits,
                       weeks=course.weeks, starts_on=course.starts_on, capacity=course.capacity,
                       accredited_capacity=course.accredited_capacity, practice=course.practice,
                       status=course.status, published_at=course.published_at)
    f.lessons = [lesson_facts(l) for l in lessons]
    f.unhosted_video_lessons = [l.id for l in lessons if l.kind == crs.VIDEO and not l.media_path]
    _staffing(course, f, now)
    learners, enlisted = _enrolments(course, f)
    _syllabus(course, f)
    f.board_available = "attendance_pages.board_page" in current_app.view_functions  # CRS-11
    _attendance(course, lessons, f, now, learners, enlisted)
    _views(course, f, now)
    _exams(course, f, now)
    _complaints(course, f)
    f.inspectors = db.session.scalar(select(func.count(User.id)).where(
        User.institution_id == course.institution_id, User.role == "inspector")) or 0
    f.encrypted_columns = [c.name for c in User.__table__.columns if isinstance(c.type, EncryptedText)]
    _registrations(course, f)
    _grading(course, f)
    return f


def _staffing(course: Course, f: cr.CourseFacts, now: datetime) -> None:
    people: dict[int, tuple[str, set]] = {}
    for uid, role, username in db.session.execute(
            select(StaffAssignment.user_id, StaffAssignment.role, User.username)
            .join(User, User.id == StaffAssignment.user_id).where(StaffAssignment.course_id == course.id)):
        people.setdefault(uid, (username, set()))[1].add(role)
    f.staff = [(uid, name, sorted(roles)) for uid, (name, roles) in people.items()]
    # CRS-10: every finished week, from the staff access report of lms.attendance.
    for week in range(1, course.weeks + 1):
        _start, end = att_reports.week_bounds(course, week)
        if end > now:
            break
        report = att_reports.staff_access_report(course, week)
        f.weeks_checked.append(week)
        f.staff_missing[week] = [m["username"] for m in report["missing"]]
    if people:
        f.staff_access_rows = db.session.scalar(select(func.count(AccessLog.id)).where(
            AccessLog.course_id == course.id, AccessLog.user_id.in_(list(people)))) or 0
    # CRS-8: TAs of the institution against the total capacity of its courses.
    f.institution_tas = db.session.scalar(select(func.count(User.id)).where(
        User.institution_id == course.institution_id, User.role == "ta", User.locked.is_(False))) or 0
    f.institution_capacity = db.session.scalar(select(func.coalesce(func.sum(Course.capacity), 0)).where(
        Course.institution_id == course.institution_id, Course.status != "cancelled")) or 0


def _enrolments(course: Course, f: cr.CourseFacts) -> tuple[dict[int, str], dict]:
    """Enrolment facts; returns the learners (id → username) and their enlistment days."""
    rows = list(db.session.execute(
        select(Enrollment, User.username).join(User, User.id == Enrollment.user_id)
        .where(Enrollment.course_id == course.id, Enrollment.status != "cancelled")))
    f.enrolled = len(rows)
    by_section: dict[int | None, int] = defaultdict(int)
    for e, _name in rows:
        by_section[e.section_id] += 1
    f.sections = [(s.id, s.name, s.capacity, by_section.get(s.id, 0)) for s in db.session.scalars(
        select(Section).where(Section.course_id == course.id).order_by(Section.id))]
    # CRS-7: a running instructor of a section handles its learners; one of the whole course all.
    loads: dict[str, int] = defaultdict(int)
    for sa, username in db.session.execute(
            select(StaffAssignment, User.username).join(User, User.id == StaffAssignment.user_id)
            .where(StaffAssignment.course_id == course.id, StaffAssignment.role == "instructor")):
        loads[username] += f.enrolled if sa.section_id is None else by_section.get(sa.section_id, 0)
    f.instructor_loads = dict(loads)
    f.consents_missing = [name for e, name in rows if e.syllabus_consent_at is None]  # ENR-2
    # ENR-1: registration by the day before the start; late ones within 2 weeks of it.
    start = att.lesson_opens_at(course.starts_on, 1)
    for e, name in rows:
        if e.created_at >= start + cr.LATE_REGISTRATION:
            f.enrolments_after_late_limit.append(name)
        elif e.created_at >= start:
            f.enrolments_late.append(name)
    # ENR-3: every course of these learners, by end date.
    learner_ids = [e.user_id for e, _n in rows]
    names = {e.user_id: n for e, n in rows}
    per_learner: dict[int, list] = defaultdict(list)
    if learner_ids:
        for uid, starts_on, weeks, credits in db.session.execute(
                select(Enrollment.user_id, Course.starts_on, Course.weeks, Course.credits)
                .join(Course, Course.id == Enrollment.course_id)
                .where(Enrollment.user_id.in_(learner_ids), Enrollment.status != "cancelled")):
            per_learner[uid].append((att.course_ends_on(starts_on, weeks), credits))
    f.credit_over_cap = [(names[uid], p, n, cap) for uid, courses in sorted(per_learner.items())
                         for p, n, cap in cr.credit_cap_excess(courses)]
    return names, {e.user_id: e.enlisted_on for e, _n in rows if e.enlisted_on}  # ATT-8


def _registrations(course: Course, f: cr.CourseFacts) -> None:
    """ENR-1, ENR-4, ENR-5: every registration of the course (kind, reason, payments up to
    its payment deadline, waiver, register entry) and its refunds — a fixed number of
    queries per course."""
    from lms.enrolment import rules as enr
    from lms.enrolment.fees import current_fee
    from lms.enrolment.models import EnrollmentEvent, Payment, Refund, RegisterEntry

    rows = list(db.session.execute(select(Enrollment, User.username).join(User, User.id == Enrollment.user_id)
                                   .where(Enrollment.course_id == course.id).order_by(Enrollment.id)).tuples())
    fee_row = current_fee(course.id)
    fee = None if fee_row is None else fee_row.amount + fee_row.lab_fee
    ids = [e.id for e, _n in rows]
    enrolled, waived = {}, set()
    payments: dict[int, list] = defaultdict(list)
    refunds_by: dict[int, list] = defaultdict(list)
    entries = {}
    refunds = []
    if ids:
        for ev in db.session.scalars(select(EnrollmentEvent).where(
                EnrollmentEvent.enrollment_id.in_(ids), EnrollmentEvent.kind.in_(("enrolled", "fee_waived")))
                .order_by(EnrollmentEvent.id)):
            if ev.kind == "enrolled":
                enrolled[ev.enrollment_id] = ev
                waived.discard(ev.enrollment_id)
            else:
                waived.add(ev.enrollment_id)
        for eid, amount, at in db.session.execute(select(Payment.enrollment_id, Payment.amount, Payment.paid_at)
                                                  .where(Payment.enrollment_id.in_(ids))):
            payments[eid].append((amount, at))
        names = {e.id: n for e, n in rows}
        for r in db.session.scalars(select(Refund).where(Refund.enrollment_id.in_(ids)).order_by(Refund.id)):
            refunds_by[r.enrollment_id].append(r)
            refunds.append(cr.RefundFact(id=r.id, learner=names[r.enrollment_id], cause=r.cause, amount=r.amount,
                                         due_on=r.due_on, refunded_at=r.refunded_at))
        entries = dict(db.session.execute(select(RegisterEntry.enrollment_id, RegisterEntry.created_at)
                                          .where(RegisterEntry.enrollment_id.in_(ids))).all())
    out = []
    for e, name in rows:
        ev = enrolled.get(e.id)
        kind = ev.registration_kind if ev else None
        at = ev.at if ev else e.created_at
        deadline = enr.payment_deadline(course.starts_on, kind, at)
        # ENR-4 refunds decided before the deadline reduce what was paid, except an
        # overpayment's (money never owed: the fee stays paid).
        if deadline is None:
            paid = sum(a for a, _t in payments[e.id]) - sum(r.amount for r in refunds_by[e.id]
                                                            if r.cause != enr.OVERPAYMENT)
        else:
            paid = sum(a for a, t in payments[e.id] if t < deadline) \
                - sum(r.amount for r in refunds_by[e.id] if r.created_at < deadline and r.cause != enr.OVERPAYMENT)
        out.append(cr.RegistrationFact(learner=name, status=e.status, kind=kind, registered_at=at,
                                       reason=ev.reason if ev else None, fee=fee, paid_by_deadline=paid,
                                       waived=e.id in waived, cancelled_at=e.cancelled_at,
                                       register_entry_at=entries.get(e.id)))
    f.registrations = out
    f.refunds = refunds


def _grading(course: Course, f: cr.CourseFacts) -> None:
    """GRD-1…6 (and ATT-6): the weights, the stored grade sheet and grades, objections, and
    the learners who sat no regular exam — a fixed number of queries per course."""
    from lms.exams.rules import REGULAR_KINDS
    from lms.grading import service as grading
    from lms.grading.models import CourseGrade, GradeObjection, GradeSheet

    f.grade_weights = grading.weights_of(course)
    regular = list(db.session.scalars(select(Exam.id).where(Exam.course_id == course.id,
                                                            Exam.kind.in_(REGULAR_KINDS))))
    f.regular_exams = len(regular)
    learners = dict(db.session.execute(
        select(Enrollment.user_id, User.username).join(User, User.id == Enrollment.user_id)
        .where(Enrollment.course_id == course.id, Enrollment.status != "cancelled")).all())
    if regular and learners:
        sat = set(db.session.scalars(select(Attempt.learner_id).where(
            Attempt.exam_id.in_(regular), Attempt.submitted_at.is_not(None)).distinct()))
        f.missing_regular_exams = sorted(n for uid, n in learners.items() if uid not in sat)
    sheet = db.session.scalar(select(GradeSheet).where(GradeSheet.course_id == course.id))
    statuses = dict(db.session.execute(select(Enrollment.user_id, Enrollment.status)
                                       .where(Enrollment.course_id == course.id)).all())
    rows = [cr.GradeRow(learner=name, score=g.score, grade=g.grade, fixed_by=tuple(g.fixed_by or ()), cap=g.cap,
                        enrollment_status=statuses.get(g.learner_id, "active"))
            for g, name in db.session.execute(
                select(CourseGrade, User.username).join(User, User.id == CourseGrade.learner_id)
                .where(CourseGrade.course_id == course.id).order_by(User.username)).tuples()]
    objections = [(o.id, name, o.created_at, o.answered_at) for o, name in db.session.execute(
        select(GradeObjection, User.username).join(User, User.id == GradeObjection.learner_id)
        .where(GradeObjection.course_id == course.id).order_by(GradeObjection.id)).tuples()]
    if sheet is None and not rows and not objections:
        f.grading = None
        f.grades = None
        return
    f.grading = cr.GradingFacts(scheme=sheet.scheme if sheet else "relative",
                                proposed_at=sheet.proposed_at if sheet else None,
                                finalized_at=sheet.finalized_at if sheet else None, rows=rows,
                                objections=objections)
    f.grades = rows


def _syllabus(course: Course, f: cr.CourseFacts) -> None:
    s = db.session.scalar(select(Syllabus).where(Syllabus.course_id == course.id))
    if s is not None:
        f.syllabus = {k: getattr(s, k) for k in cr.SYLLABUS_FIELDS}
        f.syllabus_updated_at = s.updated_at


def _attendance(course: Course, lessons: list[Lesson], f: cr.CourseFacts, now: datetime,
                names: dict[int, str], enlisted: dict) -> None:
    by_id = {l.id: l for l in lessons}
    units = {l.id: crs.lesson_units(l.kind, l.duration_seconds, l.frames) for l in lessons}
    per_learner: dict[int, dict[int, LessonProgress]] = defaultdict(dict)
    for p in db.session.scalars(select(LessonProgress).where(LessonProgress.course_id == course.id)):
        per_learner[p.learner_id][p.lesson_id] = p
        f.progress_counts[p.status] = f.progress_counts.get(p.status, 0) + 1
        lesson = by_id.get(p.lesson_id)
        if lesson is None:
            continue
        if p.status == att.ATTENDED:
            if p.completed_at is None or p.completed_at > lesson.attendance_deadline:
                f.attended_late.append(p.id)
            length = att.timeline_length(lesson.kind, lesson.duration_seconds, lesson.frames)
            if p.covered_seconds < length:
                f.attended_incomplete.append(p.id)
        elif p.status == att.PENDING and now > lesson.attendance_deadline:
            f.unsettled_past_deadline.append(p.id)
    total_units = sum(units.values())
    for uid, name in sorted(names.items(), key=lambda kv: kv[1]):
        rows = per_learner.get(uid, {})
        records = [att.LessonRecord(units=units[l.id],
                                    status=rows[l.id].status if l.id in rows else att.PENDING,
                                    deadline=l.attendance_deadline,
                                    completed_at=rows[l.id].completed_at if l.id in rows else None)
                   for l in lessons]
        excused = sum(r.units for r in records if r.status == att.EXCUSED)
        if total_units and cr.excused_over(excused, total_units):
            f.excused_over_cap.append((name, excused, total_units))
        result = att.course_attendance(records, scale=course.attendance_scale, enlisted_on=enlisted.get(uid))
        if _course_settled(course, now) and result.f:
            f.learners_below_minimum.append((name, cr.rate_percent(result.rate)))
        if uid in enlisted:
            f.enlisted.append((name, bool(result.enlistment and result.enlistment.applies),
                               cr.rate_percent(result.rate)))
    scale = course.attendance_scale or att.DEFAULT_ATTENDANCE_SCALE
    f.scale_problems = [msg for _rule, msg in att.attendance_scale_problems(scale)]
    sub = db.session.scalar(select(AttendanceSubmission).where(AttendanceSubmission.course_id == course.id)
                            .order_by(AttendanceSubmission.submitted_at).limit(1))
    f.record_submitted_at = sub.submitted_at if sub else None
    f.record_state = att.attendance_record_state(starts_on=course.starts_on, weeks=course.weeks,
                                                 submitted_at=f.record_submitted_at, now=now)
    # ATT-3: learners' logins (a `login` row is written only after a valid TOTP code).
    if names:
        f.logins = db.session.scalar(select(func.count(AccessLog.id)).where(
            AccessLog.event == "login", AccessLog.user_id.in_(list(names)))) or 0
        f.learners_without_otp = list(db.session.scalars(select(User.username).where(
            User.id.in_(list(names)), User.otp_confirmed.is_(False), User.last_login_at.is_not(None))))


def _course_settled(course: Course, now: datetime) -> bool:
    return now > att.attendance_deadline(course.starts_on, course.weeks, course.weeks)


def _views(course: Course, f: cr.CourseFacts, now: datetime) -> None:
    f.views = db.session.scalar(select(func.count(LessonView.id)).where(LessonView.course_id == course.id)) or 0
    f.views_missing_ip = list(db.session.scalars(select(LessonView.id).where(
        LessonView.course_id == course.id, LessonView.ip.is_(None)).limit(100)))
    stale = now - att.VIEW_IDLE_TIMEOUT * 2  # the expire job ends idle views; twice its timeout is a miss
    f.views_without_end = list(db.session.scalars(select(LessonView.id).where(
        LessonView.course_id == course.id, LessonView.ended_at.is_(None),
        func.coalesce(LessonView.last_heartbeat_at, LessonView.started_at) < stale).limit(100)))
    for kind, n, excess in db.session.execute(
            select(ViewEvent.kind, func.count(ViewEvent.id), func.coalesce(func.sum(ViewEvent.excess_seconds), 0.0))
            .where(ViewEvent.course_id == course.id).group_by(ViewEvent.kind)):
        if kind == "heartbeat":
            f.heartbeats, f.excess_seconds = n, float(excess or 0)
        elif kind == "challenge":
            f.challenges = n
        elif kind == "challenge_ok":
            f.challenges_passed = n


def bank_at(course_id: int, when: datetime) -> dict[str, int]:
    """EXM-5: items of the course's bank per level at ``when``: created before it and not
    retired before it."""
    rows = db.session.execute(
        select(Item.difficulty, func.count(Item.id))
        .where(Item.course_id == course_id, Item.created_at < when,
               or_(Item.retired_at.is_(None), Item.retired_at >= when))
        .group_by(Item.difficulty))
    return {level: n for level, n in rows}


def _exams(course: Course, f: cr.CourseFacts, now: datetime) -> None:
    from lms.exams.service import syllabus_period

    levels = bank.levels_for(course.institution_id)
    exams = list(db.session.scalars(select(Exam).where(Exam.course_id == course.id).order_by(Exam.opens_at)))
    for e in exams:
        fact = cr.ExamFact(id=e.id, title=e.title, kind=e.kind, opens_at=e.opens_at, closes_at=e.closes_at,
                           duration_minutes=e.duration_minutes, items_per_difficulty=dict(e.items_per_difficulty),
                           announced_at=e.announced_at, levels=levels, bank_at_open=bank_at(course.id, e.opens_at),
                           period=syllabus_period(course.id, e.kind))
        attempts = list(db.session.scalars(select(Attempt).where(Attempt.exam_id == e.id)))
        fact.attempts = len(attempts)
        started = set(db.session.scalars(select(AttemptEvent.attempt_id).where(
            AttemptEvent.exam_id == e.id, AttemptEvent.kind == "started")))
        fact.attempts_with_start = sum(1 for a in attempts if a.id in started)
        fact.attempts_missing_evidence = [a.id for a in attempts if not a.ip or a.started_at is None
                                          or (a.submitted_at is None and a.deadline <= now - SUBMIT_GRACE)]
        fact.blocked_events = db.session.scalar(select(func.count(AttemptEvent.id)).where(
            AttemptEvent.exam_id == e.id, AttemptEvent.kind == "blocked")) or 0
        a1, a2 = AttemptAddress.__table__.alias("a1"), AttemptAddress.__table__.alias("a2")
        fact.shared_addresses = [tuple(r) for r in db.session.execute(
            select(a1.c.attempt_id, a2.c.attempt_id, a1.c.kind, a1.c.value)
            .join(a2, and_(a2.c.exam_id == a1.c.exam_id, a2.c.kind == a1.c.kind, a2.c.value == a1.c.value,
                           a2.c.learner_id != a1.c.learner_id, a2.c.attempt_id > a1.c.attempt_id))
            .where(a1.c.exam_id == e.id, a1.c.exception_id.is_(None), a2.c.exception_id.is_(None))
            .distinct())]
        fact.keyless_versions = list(db.session.scalars(
            select(ItemVersion.id).join(AttemptItem, AttemptItem.item_version_id == ItemVersion.id)
            .join(Attempt, Attempt.id == AttemptItem.attempt_id)
            .where(Attempt.exam_id == e.id,
                   or_(and_(ItemVersion.kind == "essay", ItemVersion.model_answer.is_(None)),
                       and_(ItemVersion.kind != "essay", ItemVersion.answer.is_(None))))
            .distinct()))
        f.exams.append(fact)
    for m in db.session.scalars(select(MakeupRequest).where(MakeupRequest.course_id == course.id)):
        started = db.session.scalar(select(func.min(Attempt.started_at)).where(Attempt.makeup_request_id == m.id))
        f.makeups.append(cr.MakeupFact(id=m.id, learner_id=m.learner_id, status=m.status, decided_at=m.decided_at,
                                       window_opens_at=m.window_opens_at, window_closes_at=m.window_closes_at,
                                       attempt_started_at=started))
    for fd, flagged, username in db.session.execute(
            select(CheatingFinding, Attempt.cheating_found, User.username)
            .join(Attempt, Attempt.id == CheatingFinding.attempt_id)
            .join(User, User.id == CheatingFinding.learner_id)
            .where(CheatingFinding.course_id == course.id).order_by(CheatingFinding.id)):
        f.findings.append((fd.id, username, fd.kind, fd.attempt_id, bool(flagged)))


def _complaints(course: Course, f: cr.CourseFacts) -> None:
    rows = dict(db.session.execute(select(Complaint.status, func.count(Complaint.id))
                                   .where(Complaint.course_id == course.id).group_by(Complaint.status)).all())
    oldest = db.session.scalar(select(func.min(Complaint.created_at)).where(
        Complaint.course_id == course.id, Complaint.status == "open"))
    f.complaints = {"total": sum(rows.values()), "open": rows.get("open", 0), "answered": rows.get("answered", 0),
                    "closed": rows.get("closed", 0), "unanswered_oldest": clock.iso(oldest)}


# --- the report -----------------------------------------------------------------------------------

def build(course: Course, now: datetime | None = None) -> dict:
    now = now or clock.now()
    facts = gather(course, now)
    verdicts = cr.evaluate(facts, now)
    return {"course": {"id": course.id, "code": course.code, "title": course.title, "credits": course.credits,
                       "starts_on": course.starts_on.isoformat(), "ends_on": facts.ends_on.isoformat(),
                       "weeks": course.weeks, "status": course.status},
            "term": cr.term_of(course.starts_on), "generated_at": now,
            "verdicts": [v.as_dict() for v in verdicts], "counts": cr.counts(verdicts)}


def report_json(report: dict) -> dict:
    return {**report, "generated_at": clock.iso(report["generated_at"])}


def store_pdf(course: Course, user: User) -> ComplianceReport:
    """Generate the report now, render its PDF, keep the file and a row with its SHA-256."""
    from lms.audit.compliance_pdf import render_pdf

    report = build(course)
    institution = course_institution_name(course)
    pdf = render_pdf(report, institution=institution, generated_by=user.username)
    digest = hashlib.sha256(pdf).hexdigest()
    stamp = clock.to_kst(report["generated_at"]).strftime("%Y%m%d-%H%M%S")
    rel = f"{FOLDER}/course-{course.id}/{stamp}-{digest[:12]}.pdf"
    path = uploads.media_root() / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(pdf)
    tmp.replace(path)
    row = ComplianceReport(institution_id=course.institution_id, course_id=course.id, term=report["term"],
                           generated_at=report["generated_at"], generated_by=user.id,
                           verdicts=[{k: v[k] for k in ("rule", "status", "summary")} for v in report["verdicts"]],
                           counts=report["counts"], pdf_path=rel, pdf_size=len(pdf), pdf_sha256=digest)
    db.session.add(row)
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        path.unlink(missing_ok=True)
        raise
    return row


def course_institution_name(course: Course) -> str:
    from lms.auth.models import Institution

    return db.session.scalar(select(Institution.name).where(Institution.id == course.institution_id)) or ""


def stored_reports(course: Course) -> list[ComplianceReport]:
    return list(db.session.scalars(select(ComplianceReport).where(ComplianceReport.course_id == course.id)
                                   .order_by(ComplianceReport.id.desc())))


def stored_report(report_id: int, user: User) -> ComplianceReport:
    row = db.session.get(ComplianceReport, report_id)
    if row is None or row.institution_id != user.institution_id:
        raise not_found("compliance report")
    if user.role not in REPORT_ROLES:
        raise forbidden("only administrators and inspectors see compliance reports")
    return row


def stored_dict(row: ComplianceReport) -> dict:
    return {"id": row.id, "course_id": row.course_id, "term": row.term, "generated_at": clock.iso(row.generated_at),
            "generated_by": row.generated_by, "counts": row.counts, "pdf_sha256": row.pdf_sha256,
            "pdf_size": row.pdf_size}


def pdf_bytes(row: ComplianceReport) -> bytes:
    return uploads.stored_file(row.pdf_path).read_bytes()
