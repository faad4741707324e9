"""Courses, lessons, publishing, staff and syllabi: the transactions.

Rules live in ``lms.content.rules`` (CRS-*) and ``lms.attendance.rules`` (lesson opening
and attendance deadlines); this module loads rows, calls the rules and writes.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from lms import clock
from lms.attendance import rules as att_rules
from lms.audit.service import record_admin_action
from lms.auth.models import User
from lms.content import rules
from lms.content.models import Course, Lesson, Section, StaffAssignment, Syllabus
from lms.db import db
from lms.errors import ApiError, RuleViolation, forbidden, not_found

MAX_WEEKS = 52
MAX_CREDITS = 30


# --- access ----------------------------------------------------------------------------

def staff_roles(course_id: int, user_id: int) -> set[str]:
    """The roles (instructor, ta) ``user_id`` holds on ``course_id``."""
    return set(db.session.scalars(select(StaffAssignment.role).where(
        StaffAssignment.course_id == course_id, StaffAssignment.user_id == user_id)))


def is_enrolled(course_id: int, user_id: int) -> bool:
    from lms.enrolment.models import Enrollment

    return db.session.scalar(select(Enrollment.id).where(
        Enrollment.course_id == course_id, Enrollment.user_id == user_id,
        Enrollment.status == "active")) is not None


def get_course(course_id: int, user: User) -> Course:
    """The course if it exists in ``user``'s institution (404 otherwise)."""
    course = db.session.get(Course, course_id)
    if course is None or course.institution_id != user.institution_id:
        raise not_found("course")
    return course


def course_for_manager(course_id: int, user: User, *, staff: tuple[str, ...] = ()) -> Course:
    """The course for a writer: an admin of its institution, or (when ``staff`` names
    roles) staff of the course holding one of them. Others get 403."""
    course = get_course(course_id, user)
    if user.role == "admin":
        return course
    if staff and staff_roles(course.id, user.id) & set(staff):
        return course
    raise forbidden("only an administrator or the course's staff may do this")


def course_for_viewer(course_id: int, user: User) -> Course:
    """The course for a reader: admins and inspectors of the institution, its staff, its
    enrolled learners."""
    course = get_course(course_id, user)
    if user.role in ("admin", "inspector"):
        return course
    if staff_roles(course.id, user.id) or is_enrolled(course.id, user.id):
        return course
    raise forbidden("not a member of this course")


# --- courses ---------------------------------------------------------------------------

def create_course(user: User, *, code: str, title: str, credits: int, starts_on: date, weeks: int,
                  capacity: int, practice: bool = False, accredited_capacity: int | None = None) -> Course:
    if not 1 <= credits <= MAX_CREDITS:
        raise ApiError(400, "invalid_request", f"credits must be between 1 and {MAX_CREDITS}")
    if not 1 <= weeks <= MAX_WEEKS:
        raise ApiError(400, "invalid_request", f"weeks must be between 1 and {MAX_WEEKS}")
    if capacity < 1:
        raise ApiError(400, "invalid_request", "capacity must be at least 1")
    problem = rules.capacity_problem(capacity, accredited_capacity)
    if problem:
        raise RuleViolation(["CRS-7"], problem)
    if db.session.scalar(select(Course.id).where(Course.institution_id == user.institution_id,
                                                 Course.code == code)) is not None:
        raise ApiError(409, "course_code_taken", f"course code {code!r} is already in use")
    course = Course(institution_id=user.institution_id, code=code, title=title, credits=credits,
                    starts_on=starts_on, weeks=weeks, capacity=capacity, practice=practice,
                    accredited_capacity=accredited_capacity, status="draft", created_at=clock.now())
    db.session.add(course)
    db.session.flush()
    db.session.add(Section(course_id=course.id, name="1", capacity=rules.MAX_SECTION_SIZE))
    record_admin_action("course", course.id, "create", actor=user, after={
        "code": code, "title": title, "credits": credits, "starts_on": starts_on, "weeks": weeks,
        "capacity": capacity, "practice": practice, "accredited_capacity": accredited_capacity})
    return course


def course_dict(course: Course) -> dict:
    return {
        "id": course.id, "code": course.code, "title": course.title, "credits": course.credits,
        "starts_on": course.starts_on.isoformat(), "weeks": course.weeks,
        "ends_on": att_rules.course_ends_on(course.starts_on, course.weeks).isoformat(),
        "capacity": course.capacity, "practice": course.practice,
        "accredited_capacity": course.accredited_capacity, "status": course.status,
        "published_at": clock.iso(course.published_at),
    }


def course_lessons(course_id: int) -> list[Lesson]:
    return list(db.session.scalars(select(Lesson).where(Lesson.course_id == course_id)
                                   .order_by(Lesson.week, Lesson.position, Lesson.id)))


def lesson_facts(lesson: Lesson) -> rules.LessonFacts:
    return rules.LessonFacts(id=lesson.id, week=lesson.week, title=lesson.title, kind=lesson.kind,
                             duration_seconds=lesson.duration_seconds, frames=lesson.frames,
                             instructor_intro=lesson.instructor_intro)


def publish_check(course: Course) -> list[rules.Problem]:
    return rules.publish_problems(weeks=course.weeks, credits=course.credits, practice=course.practice,
                                  lessons=[lesson_facts(l) for l in course_lessons(course.id)])


def publish_warnings(course: Course) -> list[dict]:
    """What the course still lacks beyond the content rules (API.md: warnings)."""
    warnings = []
    if db.session.scalar(select(Syllabus.id).where(Syllabus.course_id == course.id)) is None:
        warnings.append({"rule": "CRS-12", "message": "the course has no syllabus yet"})
    roles = set(db.session.scalars(select(StaffAssignment.role).where(StaffAssignment.course_id == course.id)))
    if "instructor" not in roles:
        warnings.append({"rule": "CRS-7", "message": "no running instructor is assigned"})
    if "ta" not in roles:
        warnings.append({"rule": "CRS-8", "message": "no TA is assigned"})
    # CRS-9: classes use content hosted on the platform (every class here is remote).
    unhosted = [l.id for l in course_lessons(course.id) if l.kind == rules.VIDEO and not l.media_path]
    if unhosted:
        warnings.append({"rule": "CRS-9", "message": "video lessons without content uploaded to the LMS",
                         "lessons": unhosted})
    return warnings


def publish(course: Course) -> list[dict]:
    """Publish when CRS-1…CRS-5 hold; 422 naming every broken rule otherwise."""
    problems = publish_check(course)
    if problems:
        raise RuleViolation(sorted({p.rule for p in problems}, key=_rule_order),
                            "; ".join(f"{p.rule}: {p.message}" for p in problems),
                            details=[p.as_dict() for p in problems])
    if course.status != "published":
        record_admin_action("course", course.id, "publish", before={"status": course.status},
                            after={"status": "published"})
        course.status = "published"
        course.published_at = clock.now()
    return publish_warnings(course)


def _rule_order(rule_id: str) -> tuple[str, int]:
    prefix, _, num = rule_id.partition("-")
    return prefix, int(num)


# --- lessons ---------------------------------------------------------------------------

def add_lesson(course: Course, *, week: int, title: str, duration_seconds: int | None = None,
               frames: int | None = None, instructor_intro: bool = False) -> Lesson:
    if (duration_seconds is None) == (frames is None):
        raise ApiError(400, "invalid_request", "give exactly one of duration_seconds or frames")
    if not 1 <= week <= course.weeks:
        raise ApiError(400, "invalid_request", f"week must be between 1 and {course.weeks}")
    if duration_seconds is not None and duration_seconds < 1:
        raise ApiError(400, "invalid_request", "duration_seconds must be positive")
    if frames is not None and frames < 1:
        raise ApiError(400, "invalid_request", "frames must be positive")
    position = (db.session.scalar(select(func.max(Lesson.position)).where(
        Lesson.course_id == course.id, Lesson.week == week)) or 0) + 1
    lesson = Lesson(
        course_id=course.id, week=week, position=position, title=title,
        kind=rules.FRAMES if frames is not None else rules.VIDEO,
        duration_seconds=duration_seconds, frames=frames, instructor_intro=instructor_intro,
        opens_at=att_rules.lesson_opens_at(course.starts_on, week),
        attendance_deadline=att_rules.attendance_deadline(course.starts_on, course.weeks, week),
        created_at=clock.now(),
    )
    db.session.add(lesson)
    db.session.flush()
    return lesson


def lesson_dict(lesson: Lesson) -> dict:
    return {
        "id": lesson.id, "course_id": lesson.course_id, "week": lesson.week, "position": lesson.position,
        "title": lesson.title, "kind": lesson.kind, "duration_seconds": lesson.duration_seconds,
        "frames": lesson.frames, "units": rules.lesson_units(lesson.kind, lesson.duration_seconds, lesson.frames),
        "instructor_intro": lesson.instructor_intro, "has_media": bool(lesson.media_path),
        "opens_at": clock.iso(lesson.opens_at), "attendance_deadline": clock.iso(lesson.attendance_deadline),
    }


def get_lesson(lesson_id: int, user: User) -> Lesson:
    lesson = db.session.get(Lesson, lesson_id)
    if lesson is None:
        raise not_found("lesson")
    get_course(lesson.course_id, user)  # 404 across institutions
    return lesson


# --- staff -----------------------------------------------------------------------------

def add_staff(course: Course, *, user_id: int, role: str) -> StaffAssignment:
    member = db.session.get(User, user_id)
    if member is None or member.institution_id != course.institution_id:
        raise not_found("user")
    if member.role != role:
        raise ApiError(400, "invalid_request", f"user {user_id} is a {member.role}, not a {role}")
    if staff_roles(course.id, user_id) & {role}:
        raise ApiError(409, "already_assigned", f"user {user_id} is already {role} of this course")
    row = StaffAssignment(course_id=course.id, user_id=user_id, role=role, created_at=clock.now())
    db.session.add(row)
    db.session.flush()
    record_admin_action("course", course.id, "add_staff", after={"user_id": user_id, "role": role})
    return row


def course_staff(course_id: int) -> list[tuple[StaffAssignment, User]]:
    return list(db.session.execute(
        select(StaffAssignment, User).join(User, User.id == StaffAssignment.user_id)
        .where(StaffAssignment.course_id == course_id).order_by(StaffAssignment.id)).tuples())


# --- syllabus (CRS-12) -----------------------------------------------------------------

SYLLABUS_FIELDS = ("instructor_name", "goals", "textbook", "method", "evaluation", "weekly_topics",
                   "exam_periods", "assignment_periods", "notes")


def set_syllabus(course: Course, data: dict) -> Syllabus:
    evaluation = data.get("evaluation") or {}
    if evaluation:
        from lms.attendance.rules import MAX_ATTENDANCE_WEIGHT

        if evaluation.get("attendance", 0) > MAX_ATTENDANCE_WEIGHT:
            raise RuleViolation(["ATT-7", "GRD-1"],
                                f"attendance weighs at most {MAX_ATTENDANCE_WEIGHT}% of the grade")
        if sum(evaluation.values()) != 100:
            raise ApiError(400, "invalid_request", "evaluation weights must add up to 100")
    periods = data.get("exam_periods") or {}
    ends_on = att_rules.course_ends_on(course.starts_on, course.weeks)
    for kind, (first, last) in periods.items():
        if first > last:
            raise ApiError(400, "invalid_request", f"exam period {kind}: first day after last day")
        if first < course.starts_on or last > ends_on:
            raise ApiError(400, "invalid_request", f"exam period {kind} lies outside the course")
    row = db.session.scalar(select(Syllabus).where(Syllabus.course_id == course.id))
    if row is None:
        row = Syllabus(course_id=course.id)
        db.session.add(row)
    for name in SYLLABUS_FIELDS:
        if name in data:
            value = data[name]
            if name == "exam_periods" and value is not None:
                value = {k: [d.isoformat() for d in v] for k, v in value.items()}
            setattr(row, name, value)
    row.updated_at = clock.now()
    db.session.flush()
    record_admin_action("course", course.id, "set_syllabus",
                        after={"fields": sorted(n for n in SYLLABUS_FIELDS if n in data)})
    return row


def syllabus_dict(row: Syllabus | None) -> dict | None:
    if row is None:
        return None
    out = {name: getattr(row, name) for name in SYLLABUS_FIELDS}
    out["updated_at"] = clock.iso(row.updated_at)
    return out


def get_syllabus(course_id: int) -> Syllabus | None:
    return db.session.scalar(select(Syllabus).where(Syllabus.course_id == course_id))
