"""Attendance reports from stored rows: a learner's attendance rate and score (ATT-5…ATT-8)
and the staff weekly access report (CRS-10).

Nothing here recomputes history: a learner's figures come from the stored
``LessonProgress`` statuses (a lesson without a row is *pending*), weighed by the lessons'
class-time units (CRS-2) through the pure rules of ``lms.attendance.rules``.
"""
from __future__ import annotations

import csv
import io
from datetime import timedelta
from fractions import Fraction

from sqlalchemy import func, select

from lms import clock
from lms.attendance import rules
from lms.attendance.models import LessonProgress
from lms.audit.models import AccessLog
from lms.auth.models import User
from lms.content import rules as crs
from lms.content.models import Course, StaffAssignment
from lms.content.service import course_lessons, get_course, staff_roles
from lms.db import db
from lms.enrolment.models import Enrollment
from lms.errors import ApiError, forbidden, not_found
from lms.spreadsheet import safe_text

SEE_ANY_ROLES = ("admin", "inspector")  # API.md: admins and inspectors see anyone's attendance


def _number(value: Fraction | None):
    """A fraction for JSON: an int when whole, else a float."""
    if value is None:
        return None
    return int(value) if value.denominator == 1 else float(value)


# --- a learner's attendance (ATT-5…ATT-8) -------------------------------------------------

def attendance_course(course_id: int, viewer: User, learner_id: int | None) -> tuple[Course, int]:
    """The course and the learner whose attendance ``viewer`` asks for. A learner sees only
    their own (``learner_id`` defaults to them); staff of the course, admins and inspectors
    see anyone's and must name the learner."""
    course = get_course(course_id, viewer)
    if viewer.role == "learner":
        if learner_id is not None and learner_id != viewer.id:
            raise forbidden("a learner sees only their own attendance")
        if _enrollment(course.id, viewer.id) is None:
            raise forbidden("not enrolled in this course")
        return course, viewer.id
    if viewer.role not in SEE_ANY_ROLES and not staff_roles(course.id, viewer.id):
        raise forbidden("not a member of this course")
    if learner_id is None:
        raise ApiError(400, "invalid_request", "learner_id: give the learner whose attendance to show")
    if _enrollment(course.id, learner_id) is None:
        raise not_found("learner in this course")
    return course, learner_id


def _enrollment(course_id: int, learner_id: int) -> Enrollment | None:
    return db.session.scalar(select(Enrollment).where(Enrollment.course_id == course_id,
                                                      Enrollment.user_id == learner_id))


def learner_records(course: Course, learner_id: int):
    """[(lesson, stored progress row or None, LessonRecord)] in course order."""
    rows = {p.lesson_id: p for p in db.session.scalars(select(LessonProgress).where(
        LessonProgress.course_id == course.id, LessonProgress.learner_id == learner_id))}
    out = []
    for lesson in course_lessons(course.id):
        row = rows.get(lesson.id)
        record = rules.LessonRecord(
            units=crs.lesson_units(lesson.kind, lesson.duration_seconds, lesson.frames),
            status=row.status if row is not None else rules.PENDING,
            deadline=lesson.attendance_deadline,
            completed_at=row.completed_at if row is not None else None)
        out.append((lesson, row, record))
    return out


def learner_result(course: Course, learner_id: int) -> rules.AttendanceResult:
    enrollment = _enrollment(course.id, learner_id)
    records = [r for _l, _p, r in learner_records(course, learner_id)]
    return rules.course_attendance(records, scale=course.attendance_scale,
                                   enlisted_on=enrollment.enlisted_on if enrollment else None)


def learner_attendance(course: Course, learner_id: int) -> dict:
    """API.md's ``GET /courses/{id}/attendance`` answer, with the figures behind it."""
    enrollment = _enrollment(course.id, learner_id)
    triples = learner_records(course, learner_id)
    result = rules.course_attendance([r for _l, _p, r in triples], scale=course.attendance_scale,
                                     enlisted_on=enrollment.enlisted_on if enrollment else None)
    lessons = []
    for lesson, row, record in triples:
        # As the viewing service reports it: covered whole seconds (frames) of the timeline.
        length = rules.timeline_length(lesson.kind, lesson.duration_seconds, lesson.frames)
        covered = row.covered_seconds if row is not None else 0
        progress = rules.lesson_progress_fraction(covered=covered, length=length,
                                                  completed=bool(length) and covered >= length)
        lessons.append({
            "lesson_id": lesson.id, "status": record.status, "progress": progress,
            "week": lesson.week, "title": lesson.title, "units": record.units,
            "attendance_deadline": clock.iso(lesson.attendance_deadline),
            "completed_at": clock.iso(record.completed_at),
        })
    fig = result.course
    enlistment = None
    if result.enlistment is not None:
        e = result.enlistment
        enlistment = {
            "enlisted_on": enrollment.enlisted_on.isoformat(), "applies": e.applies,
            "attended_units": _number(e.attended_units), "required_units": _number(e.required_units),
            "lessons_units": e.figures.total_units, "rate": float(e.figures.rate),
        }
    return {
        "learner_id": learner_id,
        "rate": float(result.rate),
        "lessons": lessons,
        "course_id": course.id,
        "score": _number(result.score),
        "max_score": rules.MAX_ATTENDANCE_POINTS,
        "f": result.f,
        "final": fig.pending_units == 0,
        "course_rate": float(fig.rate),
        "total_units": fig.total_units,
        "attended_units": fig.attended_units,
        "excused_units": fig.excused_units,
        "excused_units_counted": _number(fig.excused_counted),
        "excused_cap_units": _number(rules.excused_cap_units(fig.total_units)),
        "absent_units": fig.absent_units,
        "pending_units": fig.pending_units,
        "scale": "course" if course.attendance_scale is not None else "default",
        "enlistment": enlistment,
    }


# --- the course's attendance scale (ATT-7, GRD-1) ------------------------------------------

def scale_dict(course: Course) -> dict:
    if course.attendance_scale is not None:
        return {"course_id": course.id, "default": False, "scale": course.attendance_scale,
                "max_points": rules.MAX_ATTENDANCE_POINTS}
    return {"course_id": course.id, "default": True, "max_points": rules.MAX_ATTENDANCE_POINTS,
            "scale": None,
            "bands": [{"from_percent": lo, "below_percent": hi, "points": [low, high]}
                      for lo, hi, low, high in rules.DEFAULT_ATTENDANCE_SCALE]}


def set_scale(course: Course, scale) -> Course:
    """Publish the course's own scale (None returns to the rule's table). ATT-7: it is
    published at the start, so it is fixed from 00:00 KST of the first day; it never gives
    more than 20 points (attendance ≤ 20% of the grade, GRD-1)."""
    from lms.errors import RuleViolation

    if scale is not None:
        problems = rules.attendance_scale_problems(scale)
        broken = [m for r, m in problems if r is None]
        if broken:
            raise ApiError(400, "invalid_request", "scale: " + "; ".join(broken))
        if problems:
            raise RuleViolation(["ATT-7", "GRD-1"], "; ".join(m for _r, m in problems))
    if clock.now() >= rules.lesson_opens_at(course.starts_on, 1):
        raise RuleViolation(["ATT-7"], "the attendance scale is published at the start: it cannot "
                                       "change once the course has started")
    course.attendance_scale = [list(e) for e in scale] if scale is not None else None
    db.session.flush()
    return course


# --- staff weekly access (CRS-10) -------------------------------------------------------

STAFF_ACCESS_ROLES = ("admin", "inspector")
CSV_COLUMNS = ("course_id", "course_code", "week", "week_starts_on", "week_ends_on", "user_id", "username",
               "name", "roles", "accessed", "accesses", "first_access_at", "last_access_at")


def week_bounds(course: Course, week: int):
    """[start, end) of the course's week ``week``: 00:00 KST of ``starts_on + 7(w−1)`` to
    00:00 KST seven days later."""
    start = rules.lesson_opens_at(course.starts_on, week)
    return start, start + timedelta(days=rules.DAYS_PER_WEEK)


def default_week(course: Course) -> int:
    """The week the course is in now; the last week after it ended; 400 before it starts."""
    now = clock.now()
    week = rules.course_week(course.starts_on, course.weeks, now)
    if week is not None:
        return week
    if now >= rules.lesson_opens_at(course.starts_on, 1):
        return course.weeks
    raise ApiError(400, "invalid_request", "week: the course has not started; name a week")


def staff_access_report(course: Course, week: int) -> dict:
    """CRS-10: each instructor and TA of the course must access its LMS at least once a
    week. Lists the staff (assigned before the week ended) with their accesses to the
    course that week — requests the access log tied to this course — and, under
    ``missing``, those without any."""
    if not 1 <= week <= course.weeks:
        raise ApiError(400, "invalid_request", f"week must be between 1 and {course.weeks}")
    start, end = week_bounds(course, week)
    assigned = list(db.session.execute(
        select(StaffAssignment.user_id, StaffAssignment.role, User)
        .join(User, User.id == StaffAssignment.user_id)
        .where(StaffAssignment.course_id == course.id, StaffAssignment.created_at < end)
        .order_by(StaffAssignment.id)))
    people: dict[int, dict] = {}
    for user_id, role, user in assigned:
        entry = people.setdefault(user_id, {"user": user, "roles": []})
        if role not in entry["roles"]:
            entry["roles"].append(role)
    stats = {}
    if people:
        stats = {uid: (n, first, last) for uid, n, first, last in db.session.execute(
            select(AccessLog.user_id, func.count(AccessLog.id), func.min(AccessLog.at), func.max(AccessLog.at))
            .where(AccessLog.course_id == course.id, AccessLog.user_id.in_(list(people)),
                   AccessLog.at >= start, AccessLog.at < end)
            .group_by(AccessLog.user_id))}
    staff = []
    for uid, entry in people.items():
        n, first, last = stats.get(uid, (0, None, None))
        user = entry["user"]
        staff.append({"user_id": uid, "username": user.username, "name": user.name,
                      "roles": sorted(entry["roles"], key=("instructor", "ta").index),
                      "accessed": n > 0, "accesses": int(n),
                      "first_access_at": clock.iso(first), "last_access_at": clock.iso(last)})
    now = clock.now()
    return {
        "course_id": course.id, "course_code": course.code, "course_title": course.title,
        "week": week, "weeks": course.weeks,
        "starts_at": clock.iso(start), "ends_at": clock.iso(end),
        "week_starts_on": start.date().isoformat(), "week_ends_on": (end - timedelta(days=1)).date().isoformat(),
        "complete": now >= end,
        "staff": staff,
        "missing": [{k: s[k] for k in ("user_id", "username", "name", "roles")} for s in staff if not s["accessed"]],
    }


def _csv_cell(value) -> str:
    """Spreadsheet-safe text: a cell starting like a formula is quoted with ``'``."""
    return safe_text("" if value is None else str(value))


def staff_access_csv(report: dict, *, include_all: bool = False) -> str:
    """The report as CSV with a header line: the staff who did not access the course that
    week (every assigned staff member with ``include_all``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for s in report["staff"]:
        if s["accessed"] and not include_all:
            continue
        writer.writerow([_csv_cell(v) for v in (
            report["course_id"], report["course_code"], report["week"], report["week_starts_on"],
            report["week_ends_on"], s["user_id"], s["username"], s["name"], " ".join(s["roles"]),
            "yes" if s["accessed"] else "no", s["accesses"], s["first_access_at"], s["last_access_at"])])
    return out.getvalue()


def institution_courses(user: User) -> list[Course]:
    return list(db.session.scalars(select(Course).where(Course.institution_id == user.institution_id)
                                   .order_by(Course.starts_on.desc(), Course.id.desc())))
