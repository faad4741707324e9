"""The essay grading queue (EXM-12): objective items are scored at submission
(``lms.exams.service``); essays wait here for the instructor, with the prompt, the
learner's answer, the model answer and the rubric written before any scoring.

``grade_item`` gives an essay 0…its points with a comment, appends a ``graded`` event to
the exam evidence and recomputes the attempt's score (``service.score_attempt``): once its last
essay is graded the attempt leaves the queue (``needs_grading`` false) with its full
score. A grade may be corrected later the same way (each grading is another event).

Who: the queue is read by the course's staff, admins and inspectors of the institution;
grades are given by an instructor of the course or an administrator.
"""
from __future__ import annotations

import math

from sqlalchemy import select

from lms import clock
from lms.auth.models import User
from lms.content.models import Course
from lms.db import db, lock_row
from lms.errors import ApiError, forbidden, not_found
from lms.exams import access, service
from lms.exams.models import Attempt, AttemptItem, Exam, ItemVersion

GRADED = "graded"  # the AttemptEvent kind
GRADER_STAFF_ROLES = access.INSTRUCTOR  # besides administrators
MAX_COMMENT_CHARS = 2000


def can_grade(course: Course, user: User) -> bool:
    return access.can_act(course, user, GRADER_STAFF_ROLES)


# The queue: the course's staff, admins and inspectors of the institution.
course_for_queue = access.course_for_reader


def _blank(answer) -> bool:
    return answer is None or (isinstance(answer, str) and not answer.strip())


def grading_queue(course: Course, *, exam_id: int | None = None) -> list[dict]:
    """Submitted attempts of the course's exams with essays still to grade, oldest
    submission first, each with every essay of the attempt (graded ones too)."""
    stmt = (select(Attempt, Exam, User).join(Exam, Exam.id == Attempt.exam_id).join(User, User.id == Attempt.learner_id)
            .where(Exam.course_id == course.id, Attempt.needs_grading.is_(True), Attempt.submitted_at.is_not(None))
            .order_by(Attempt.submitted_at, Attempt.id))
    if exam_id is not None:
        stmt = stmt.where(Exam.id == exam_id)
    rows = db.session.execute(stmt).all()
    essays: dict[int, list[dict]] = {}
    if rows:
        for ai, v in db.session.execute(
                select(AttemptItem, ItemVersion).join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
                .where(AttemptItem.attempt_id.in_([a.id for a, _e, _u in rows]), ItemVersion.kind == "essay")
                .order_by(AttemptItem.attempt_id, AttemptItem.position)):
            essays.setdefault(ai.attempt_id, []).append(essay_dict(ai, v))
    return [{"attempt_id": a.id, "exam_id": e.id, "exam_title": e.title, "exam_kind": e.kind,
             "learner_id": u.id, "username": u.username, "name": u.name, "submitted_at": clock.iso(a.submitted_at),
             "score": a.score, "is_makeup": a.is_makeup, "cheating_found": a.cheating_found,
             "pending": sum(1 for x in essays.get(a.id, []) if x["pending"]), "essays": essays.get(a.id, [])}
            for a, e, u in rows]


def essay_dict(ai: AttemptItem, v: ItemVersion) -> dict:
    return {"item_id": ai.item_id, "position": ai.position, "prompt": v.prompt, "answer": ai.answer,
            "answered_at": clock.iso(ai.answered_at), "model_answer": v.model_answer, "rubric": v.rubric,
            "points": v.points, "awarded": ai.awarded, "graded_by": ai.graded_by,
            "graded_at": clock.iso(ai.graded_at), "grader_comment": ai.grader_comment,
            "pending": ai.graded_at is None and not _blank(ai.answer)}


def _check_points(points, out_of: float) -> float:
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not math.isfinite(points):
        raise ApiError(400, "invalid_request", "points must be a number")
    if not 0 <= points <= out_of:
        raise ApiError(400, "invalid_request", f"points must be between 0 and the item's {out_of:g} points",
                       extra={"max_points": out_of})
    return float(points)


def grade_item(attempt_id: int, item_id: int, points, comment: str | None, user: User) -> dict:
    """Grade one essay of a submitted attempt (an instructor of the course or an admin) and
    commit. 400 for points outside 0…the item's points; 404 for an item not in the
    attempt; 409 ``attempt_open`` before submission, ``not_an_essay`` for objective items
    (scored automatically), ``nothing_to_grade`` for an unanswered essay (0 points)."""
    attempt, _exam, course = service.attempt_for(attempt_id, user)
    if not can_grade(course, user):
        raise forbidden("only an instructor of the course or an administrator grades essays")
    ai = db.session.scalar(select(AttemptItem).where(AttemptItem.attempt_id == attempt.id,
                                                     AttemptItem.item_id == item_id))
    if ai is None:
        raise not_found("item in this attempt")
    v = db.session.get(ItemVersion, ai.item_version_id)
    if v.kind != "essay":
        raise ApiError(409, "not_an_essay", "objective items are scored automatically")
    awarded = _check_points(points, v.points)
    comment = (comment or "").strip() or None
    if comment is not None and (len(comment) > MAX_COMMENT_CHARS or "\x00" in comment):
        raise ApiError(400, "invalid_request", f"comment: at most {MAX_COMMENT_CHARS} characters of text")
    attempt = lock_row(Attempt, attempt.id)
    if attempt.submitted_at is None:
        raise ApiError(409, "attempt_open", "the attempt is not submitted yet")
    ai = db.session.get(AttemptItem, ai.id, populate_existing=True)
    if _blank(ai.answer):
        raise ApiError(409, "nothing_to_grade", "the essay was not answered: it scores 0")
    now = clock.now()
    from lms.audit.service import record_admin_action

    record_admin_action("grade", ai.id, "grade_essay", actor=user,
                        before={"awarded": ai.awarded, "graded_by": ai.graded_by},
                        after={"attempt_id": attempt.id, "item_id": ai.item_id, "awarded": awarded})
    ai.awarded, ai.graded_by, ai.graded_at, ai.grader_comment = awarded, user.id, now, comment
    service.event(attempt, GRADED, now, attempt_item_id=ai.id,
                  detail=f"item {ai.item_id}: {awarded:g}/{v.points:g} points by user {user.id}")
    service.score_attempt(attempt)
    db.session.commit()
    return {"attempt_id": attempt.id, "item_id": ai.item_id, "awarded": ai.awarded, "points": v.points,
            "graded_by": ai.graded_by, "graded_at": clock.iso(ai.graded_at), "grader_comment": ai.grader_comment,
            "score": attempt.score, "needs_grading": attempt.needs_grading}
