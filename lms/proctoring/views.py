"""Pages of proctoring: the instructor's copied-answer report (EXM-9).

``/exams/<id>/similarity`` shows the latest run's suspicious pairs side by side, the
overlapping passages in ``<mark>`` (every piece of answer text is escaped by the template;
only the ``<mark>`` elements are markup). ``POST /exams/<id>/similarity/run`` queues a new
run. The institution's admins and the course's instructors.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from lms import jobs
from lms.content.models import Course
from lms.db import db
from lms.errors import ApiError
from lms.proctoring import copydetect, similarity
from lms.security import current_auth, page_roles_required

bp = Blueprint("similarity_pages", __name__, template_folder="templates")

ROLES = ("admin", "instructor")
PAGE_PAIRS = 300  # pairs shown on the page (the JSON API gives more)


def _exam(exam_id: int):
    try:
        return copydetect.exam_for_manager(exam_id, current_auth().user)
    except ApiError as exc:
        if exc.status == 403:
            raise ApiError(403, "forbidden", _("이 시험의 담당 교수자 또는 관리자만 볼 수 있습니다.")) from exc
        if exc.status == 404:
            raise ApiError(404, "not_found", _("시험을 찾을 수 없습니다.")) from exc
        raise


def _segments(answer, spans):
    if answer is None:
        return []
    text = answer if isinstance(answer, str) else str(answer)
    return similarity.marked_segments(text, spans)


@bp.route("/exams/<int:exam_id>/similarity")
@page_roles_required(*ROLES)
def similarity_page(exam_id):
    exam = _exam(exam_id)
    course = db.session.get(Course, exam.course_id)
    report = copydetect.latest_report(exam.id, limit=PAGE_PAIRS)
    for p in report["pairs"]:
        if p["kind"] == copydetect.TEXT:
            p["segments_a"] = _segments(p["answer_a"], p["passages"].get("a"))
            p["segments_b"] = _segments(p["answer_b"], p["passages"].get("b"))
    text_pairs = [p for p in report["pairs"] if p["kind"] == copydetect.TEXT]
    objective_pairs = [p for p in report["pairs"] if p["kind"] == copydetect.OBJECTIVE]
    return render_template("proctoring/similarity.html", exam=exam, course=course, report=report,
                           text_pairs=text_pairs, objective_pairs=objective_pairs,
                           closed=copydetect.exam_closed(exam), shown=PAGE_PAIRS)


@bp.route("/exams/<int:exam_id>/similarity/run", methods=["POST"])
@page_roles_required(*ROLES)
def run_page(exam_id):
    exam = _exam(exam_id)
    if not copydetect.exam_closed(exam):
        flash(_("시험이 끝난 뒤에 표절(복사 답안) 검사를 실행할 수 있습니다."), "error")
    else:
        jobs.enqueue(copydetect.copy_detection_job, exam.id)
        flash(_("복사 답안 검사를 시작했습니다. 잠시 후 새로고침하세요."), "info")
    return redirect(url_for("similarity_pages.similarity_page", exam_id=exam.id))
