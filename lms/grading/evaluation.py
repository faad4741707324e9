"""Course evaluation (강의평가, CRS-15): learners evaluate a course within a week after it ends;
the results go to the instructor as aggregates.

Anonymity: ``evaluation_submission`` records who answered (so nobody answers twice) with
the KST date only; ``evaluation_response`` holds the answers under a random key with no
learner and no time, so no query links them. Results are shown once the window has
closed (watching them change would tell who just answered) and only with at least
``EVALUATION_MIN_RESPONDENTS`` respondents; comments are listed sorted (never in the order of answering).
"""
from __future__ import annotations

import secrets
from statistics import mean

from sqlalchemy import func, select

from lms import clock
from lms.attendance.rules import course_ends_on
from lms.auth.models import User
from lms.content.models import Course
from lms.content.service import get_course
from lms.db import db
from lms.enrolment.models import Enrollment
from lms.errors import ApiError, RuleViolation, forbidden
from lms.grading import rules, service
from lms.grading.models import EvaluationResponse, EvaluationSubmission

QUESTIONS = (  # 1 (전혀 아니다) … 5 (매우 그렇다)
    ("goals", "강의 목표와 내용이 수업계획서와 일치하였다."),
    ("content", "강의 콘텐츠(동영상·자료)의 품질이 학습에 적절하였다."),
    ("instructor", "교강사와 조교의 안내와 질의응답이 충실하였다."),
    ("evaluation", "시험과 과제의 평가가 공정하였다."),
    ("overall", "전반적으로 이 강의에 만족한다."),
)
QUESTION_IDS = tuple(q for q, _t in QUESTIONS)
SCALE = (1, 2, 3, 4, 5)
MAX_COMMENT = 2000


def _window(course: Course):
    return rules.evaluation_window(course_ends_on(course.starts_on, course.weeks))


def learner_state(course_id: int, learner: User) -> dict:
    course = get_course(course_id, learner)
    if not _enrolled(course, learner):
        raise forbidden("only the course's learners evaluate it")
    opens, closes = _window(course)
    now = clock.now()
    done = db.session.scalar(select(EvaluationSubmission.id).where(
        EvaluationSubmission.course_id == course.id, EvaluationSubmission.learner_id == learner.id)) is not None
    return {"course_id": course.id, "opens_at": clock.iso(opens), "closes_at": clock.iso(closes),
            "open": opens <= now < closes, "submitted": done,
            "questions": [{"id": q, "text": t} for q, t in QUESTIONS]}


def _enrolled(course: Course, learner: User) -> bool:
    return learner.role == "learner" and db.session.scalar(select(Enrollment.id).where(
        Enrollment.course_id == course.id, Enrollment.user_id == learner.id,
        Enrollment.status.in_(service.ENROLLED))) is not None


def submit(course_id: int, learner: User, answers: dict, comment: str | None) -> None:
    """CRS-15: one answer set per learner, inside the week after the course end."""
    course = get_course(course_id, learner)
    if not _enrolled(course, learner):
        raise forbidden("only the course's learners evaluate it")
    if set(answers) != set(QUESTION_IDS) or any(isinstance(v, bool) or v not in SCALE for v in answers.values()):
        raise ApiError(400, "invalid_request", f"answers: {', '.join(QUESTION_IDS)}, each 1–5")
    comment = (comment or "").strip() or None
    if comment and len(comment) > MAX_COMMENT:
        raise ApiError(400, "invalid_request", f"comment: at most {MAX_COMMENT} characters")
    opens, closes = _window(course)
    now = clock.now()
    if not opens <= now < closes:
        raise RuleViolation(["CRS-15"], f"the evaluation is open from {clock.iso(opens)} until {clock.iso(closes)}")
    db.session.add(EvaluationSubmission(course_id=course.id, learner_id=learner.id,
                                        submitted_on=clock.to_kst(now).date().isoformat()))
    try:
        db.session.flush()
    except Exception:  # the unique constraint: answered already (or at the same instant)
        db.session.rollback()
        raise ApiError(409, "already_submitted", "this course's evaluation is already answered")
    db.session.add(EvaluationResponse(id=secrets.token_hex(16), course_id=course.id,
                                      answers={k: int(v) for k, v in answers.items()},
                                      comment=comment, has_comment=comment is not None))


def results(course_id: int, viewer: User) -> dict:
    """Aggregates for the instructor (and admins, inspectors): per question the count of
    each answer and the mean, and the comments — only after the window closes and with
    enough respondents; never who answered what."""
    course = get_course(course_id, viewer)
    if not service.can_read(course, viewer):
        raise forbidden("the course's staff, administrators and inspectors see the results")
    opens, closes = _window(course)
    now = clock.now()
    enrolled = db.session.scalar(select(func.count(Enrollment.id)).where(
        Enrollment.course_id == course.id, Enrollment.status.in_(service.ENROLLED))) or 0
    n = db.session.scalar(select(func.count(EvaluationSubmission.id)).where(
        EvaluationSubmission.course_id == course.id)) or 0
    out = {"course_id": course.id, "opens_at": clock.iso(opens), "closes_at": clock.iso(closes),
           "respondents": n, "enrolled": enrolled, "min_respondents": rules.EVALUATION_MIN_RESPONDENTS,
           "closed": now >= closes, "shown": False, "questions": [], "comments": []}
    if now < closes or n < rules.EVALUATION_MIN_RESPONDENTS:
        return out
    rows = list(db.session.scalars(select(EvaluationResponse).where(EvaluationResponse.course_id == course.id)))
    for q, text in QUESTIONS:
        vals = [r.answers.get(q) for r in rows if r.answers.get(q) in SCALE]
        out["questions"].append({"id": q, "text": text, "mean": round(mean(vals), 2) if vals else None,
                                 "counts": {str(s): vals.count(s) for s in SCALE}})
    comments = sorted(r.comment for r in rows if r.comment)  # no order of answering
    out["comments"] = comments
    out["shown"] = True
    return out
