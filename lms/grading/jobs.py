"""Grading jobs (GRD-6, GRD-7, ENR-6).

``grading_deadlines`` (every 10 minutes):
- alerts the institution's administrators once per course and report when a NILE report
  (ENR-6 course status, GRD-7 grades) is overdue (an in-app notice and e-mail);
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
    done["nile_alerts"] = 0
    for course in courses:
        done["nile_alerts"] += _nile_overdue_alerts(course, now)
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


NILE_OVERDUE = "nile_report_overdue"  # the notice kind; one per course, report and admin


def _nile_overdue_alerts(course: Course, now) -> int:
    """ENR-6 / GRD-7: notify the administrators once when a report is overdue (the notice
    itself, linked to the course's report page, records that the alert went out)."""
    from lms.grading import reports
    from lms.notify.models import Notice

    sent = 0
    for kind, st in reports.due_state(course, now).items():
        if not st["overdue"]:
            continue
        link = f"/courses/{course.id}/nile-reports#{kind}"
        if db.session.scalar(select(Notice.id).where(Notice.kind == NILE_OVERDUE, Notice.link == link).limit(1)):
            continue
        admins = list(db.session.scalars(select(User.id).where(User.role == "admin",
                                                               User.institution_id == course.institution_id)))
        label = "과정 운영 현황 (ENR-6)" if kind == "course_status" else "성적 및 출석률 (GRD-7)"
        notify_users(admins, kind=NILE_OVERDUE, subject=f"[{course.code}] NILE 보고 기한 경과: {label}",
                     body=f"보고 기한({st['due']})이 지났습니다. 보고서를 생성하여 제출하세요.",
                     link=link)
        db.session.commit()
        sent += 1
    return sent


PERIODIC = [(grading_deadlines, 600)]
