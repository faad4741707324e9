"""Grading jobs (GRD-6, GRD-7, ENR-6).

``grading_deadlines`` (every 10 minutes):
- reminds a course's instructors once, 2 days before the finalisation deadline (GRD-6);
- at the deadline (7 days after the objection period) finalises and locks the grades of
  every course not yet final: the stored sheet, or the proposal when the instructor never
  proposed. A sheet the instructor left breaking GRD-2 is not finalised: instructors and
  administrators get an overdue alert instead (once).
"""
from __future__ import annotations

import logging

from sqlalchemy import select

from lms import clock
from lms.attendance.rules import course_ends_on
from lms.auth.models import User
from lms.content.models import Course, StaffAssignment
from lms.db import db
from lms.errors import ApiError
from lms.grading import rules, service
from lms.notify.service import notify_users

log = logging.getLogger(__name__)


def _instructors(course: Course) -> list[int]:
    return list(db.session.scalars(select(StaffAssignment.user_id).where(
        StaffAssignment.course_id == course.id, StaffAssignment.role == "instructor")))


def grading_deadlines() -> dict:
    now = clock.now()
    done = {"reminded": 0, "finalized": 0, "alerted": 0}
    courses = list(db.session.scalars(select(Course).where(Course.status == "published")))
    for course in courses:
        e = course_ends_on(course.starts_on, course.weeks)
        if now < rules.course_end_instant(e):
            continue
        sheet = service.get_sheet(course)
        if sheet.finalized_at is not None:
            db.session.commit()
            continue
        if rules.reminder_due(e, now) and sheet.reminded_at is None and now < rules.finalize_due(e):
            sheet.reminded_at = now
            notify_users(_instructors(course), kind="grade_finalize_reminder",
                         subject=f"[{course.code}] 성적 확정 기한 안내",
                         body=f"성적은 {clock.iso(rules.finalize_due(e))} 전에 확정해야 합니다 (GRD-6).",
                         link=f"/courses/{course.id}/grades")
            done["reminded"] += 1
        db.session.commit()
        if now < rules.finalize_due(e):
            continue
        try:
            if sheet.proposed_at is None:
                service.store_proposal(course, sheet, None, now)
            service.finalize(course.id, None, course=course)
            db.session.commit()
            done["finalized"] += 1
        except ApiError as exc:
            db.session.rollback()
            sheet = service.get_sheet(course)
            if sheet.overdue_alerted_at is None:
                sheet.overdue_alerted_at = now
                admins = db.session.scalars(select(User.id).where(User.role == "admin",
                                                                  User.institution_id == course.institution_id))
                notify_users(_instructors(course) + list(admins), kind="grade_finalize_overdue",
                             subject=f"[{course.code}] 성적 확정 기한 경과",
                             body=f"성적을 자동으로 확정하지 못했습니다: {exc.message}",
                             link=f"/courses/{course.id}/grades")
                db.session.commit()
                done["alerted"] += 1
    return done


PERIODIC = [(grading_deadlines, 600)]
