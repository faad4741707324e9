"""Who reads and who acts on a course's exam records: make-up applications (EXM-11), the
essay grading queue (EXM-12), item analysis (EXM-5) and cheating findings (EXM-13).

Readers: the course's staff (instructors, TAs) and the institution's admins and
inspectors — never learners (items and other learners' records, EXM-12). Actors: the
institution's admins and the course's staff holding one of the named roles.
"""
from __future__ import annotations

from lms.auth.models import User
from lms.content.models import Course
from lms.content.service import get_course, staff_roles
from lms.errors import forbidden

INSTRUCTOR = ("instructor",)


def can_read(course: Course, user: User) -> bool:
    if user.role in ("admin", "inspector"):
        return user.institution_id == course.institution_id
    return bool(staff_roles(course.id, user.id))


def can_act(course: Course, user: User, staff: tuple[str, ...] = INSTRUCTOR) -> bool:
    if user.role == "admin":
        return user.institution_id == course.institution_id
    return bool(staff_roles(course.id, user.id) & set(staff))


def course_for_reader(course_id: int, user: User) -> Course:
    """The course if ``user`` may read its exam records (404 across institutions, 403 else)."""
    course = get_course(course_id, user)
    if not can_read(course, user):
        raise forbidden("only the course's staff, administrators and inspectors see this")
    return course
