"""Finalised grades for other capabilities (the learning-history certificate reads
``finalised_grade``; see lms/enrolment/certificate.py)."""
from __future__ import annotations

from sqlalchemy import select

from lms.db import db
from lms.grading import rules
from lms.grading.models import CourseGrade, GradeSheet


def finalised_grade(course_id: int, learner_id: int) -> dict | None:
    """The learner's grade of the course once the course's grades are final (GRD-6), with
    approved corrections (GRD-7): ``{"letter", "points", "passed"}``; None before. A
    learner without a grade (EXM-13 cheating finding) reads ``letter`` None, not passed."""
    row = db.session.execute(
        select(CourseGrade.grade).join(GradeSheet, GradeSheet.course_id == CourseGrade.course_id)
        .where(CourseGrade.course_id == course_id, CourseGrade.learner_id == learner_id,
               GradeSheet.finalized_at.is_not(None))).first()
    if row is None:
        return None
    grade = row[0]
    points = rules.points_for(grade)
    return {"letter": grade if grade is not None else "성적 없음", "points": float(points) if points is not None else None,
            "passed": rules.passed(grade)}
