"""The instructor's submission of a course's attendance record (ATT-9).

The record is a snapshot of every enrolled learner's lesson statuses, rate and score as
stored when submitted (settled first, so it matches the rules at that instant). Each
submission is appended; none is changed afterwards (REC-1 keeps them five years).
"""
from __future__ import annotations

import hashlib
import json

from sqlalchemy import select

from lms import clock
from lms.attendance import reports, rules
from lms.attendance.models import AttendanceSubmission
from lms.auth.models import User
from lms.content import service as content
from lms.content.models import Course
from lms.db import db
from lms.enrolment.service import course_learners
from lms.errors import ApiError, forbidden


def _course_for_submitter(course_id: int, user: User) -> Course:
    course = content.get_course(course_id, user)
    if user.role == "admin" or "instructor" in content.staff_roles(course.id, user.id):
        return course
    raise forbidden("only the course's instructor (or an administrator) submits its attendance record")


def submissions(course_id: int) -> list[AttendanceSubmission]:
    return list(db.session.scalars(select(AttendanceSubmission).where(AttendanceSubmission.course_id == course_id)
                                   .order_by(AttendanceSubmission.id)))


def record_status(course_id: int, user: User) -> dict:
    """Where the course stands with ATT-9, and every submission so far."""
    course = content.course_for_viewer(course_id, user)
    if user.role == "learner":
        raise forbidden("learners see their own attendance, not the course's record")
    rows = submissions(course.id)
    first = rows[0].submitted_at if rows else None
    return {
        "course_id": course.id,
        "due_at": clock.iso(rules.attendance_record_due(course.starts_on, course.weeks)),
        "state": rules.attendance_record_state(starts_on=course.starts_on, weeks=course.weeks,
                                               submitted_at=first, now=clock.now()),
        "submissions": [submission_dict(r) for r in rows],
    }


def submit(course_id: int, user: User) -> AttendanceSubmission:
    """Settle, snapshot and append the course's attendance record. Refused (409) while
    the course still runs: attendance is not final before its last deadline."""
    from lms.attendance import service

    course = _course_for_submitter(course_id, user)
    now = clock.now()
    state = rules.attendance_record_state(starts_on=course.starts_on, weeks=course.weeks,
                                          submitted_at=None, now=now)
    if state == "not_due":
        raise ApiError(409, "course_not_ended", "the attendance record is submitted after the course ends")
    learners = course_learners(course.id)
    for _enrollment, learner in learners:
        service.settle_learner(course.id, learner.id)
    snapshot = {
        "course_id": course.id, "code": course.code, "submitted_at": clock.iso(now),
        "learners": [reports.learner_attendance(course, learner.id) | {"username": learner.username}
                     for _enrollment, learner in learners],
    }
    blob = json.dumps(snapshot, sort_keys=True, ensure_ascii=False).encode()
    due = rules.attendance_record_due(course.starts_on, course.weeks)
    row = AttendanceSubmission(course_id=course.id, submitted_by=user.id, submitted_at=now, due_at=due,
                               on_time=now <= due, learners=len(learners), snapshot=snapshot,
                               sha256=hashlib.sha256(blob).hexdigest())
    db.session.add(row)
    db.session.commit()
    return row


def submission_dict(row: AttendanceSubmission) -> dict:
    return {"id": row.id, "course_id": row.course_id, "submitted_by": row.submitted_by,
            "submitted_at": clock.iso(row.submitted_at), "due_at": clock.iso(row.due_at),
            "on_time": row.on_time, "learners": row.learners, "sha256": row.sha256}
