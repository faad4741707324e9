"""Pages of make-up exams (EXM-11), the essay grading queue (EXM-12), item analysis
(EXM-5) and cheating findings (EXM-13).

Learners
- ``/makeup``: regular exams they missed (apply), their applications and decisions
- ``/exams/<id>/makeup``: the application form (reason, detail, evidence files)

Staff (instructors, TAs, admins; inspectors read only)
- ``/exam-review``: the courses, with pending make-up applications and essays to grade
- ``/courses/<id>/makeup-requests``: applications with approve/reject and a comment
- ``/courses/<id>/grading``: essays to grade, each with the rubric and the model answer
- ``/courses/<id>/item-analysis``: regular exams with flagged items; the bank's
  replacement report; ``/exams/<id>/item-analysis``: the items, flagged ones highlighted
  with a link to replace them in the bank
- ``/courses/<id>/cheating-findings``: findings, and the form to record one

Services: ``lms.exams.makeup``, ``grading``, ``analysis``, ``findings``.
"""
from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from werkzeug.routing import BuildError

from lms import clock, uploads
from lms.auth.models import User
from lms.content.models import Course, StaffAssignment
from lms.db import db
from lms.errors import ApiError
from lms.exams import access, analysis, findings, grading, makeup, rules
from lms.exams.exam_api import allow_evidence_uploads
from lms.exams.models import Attempt, Exam, MakeupRequest
from lms.exams.service import attempt_for, exam_for_viewer
from lms.i18n import N_
from lms.net import client_ip
from lms.security import current_auth, page_roles_required

bp = Blueprint("exam_pages", __name__, template_folder="templates")
bp.url_value_preprocessor(allow_evidence_uploads)  # the application form carries evidence files

STAFF_PAGE_ROLES = ("instructor", "ta", "admin", "inspector")

DASHBOARD_LINKS = {
    "learner": [("exam_pages.makeup_home", N_("추가시험 신청"))],
    "ta": [("exam_pages.review_home", N_("시험 관리 (추가시험·채점·문항 분석)"))],
    "instructor": [("exam_pages.review_home", N_("시험 관리 (추가시험·채점·문항 분석)"))],
    "admin": [("exam_pages.review_home", N_("시험 관리 (추가시험·채점·문항 분석)"))],
    "inspector": [("exam_pages.review_home", N_("시험 관리 (추가시험·채점·문항 분석)"))],
}

REASON_LABELS = {k: N_(v) for k, v in makeup.REASON_LABELS.items()}
FINDING_LABELS = {k: N_(v) for k, v in findings.KIND_LABELS.items()}
STATUS_LABELS = {"pending": N_("심사 중"), "approved": N_("승인"), "rejected": N_("반려")}
EXAM_KIND_LABELS = {"midterm": N_("중간고사"), "final": N_("기말고사"), "quiz": N_("퀴즈")}
LEVEL_LABELS = {"easy": N_("쉬움"), "medium": N_("보통"), "hard": N_("어려움")}
WINDOW_LABELS = {"upcoming": N_("응시 기간 전"), "open": N_("응시 가능"), "closed": N_("응시 기간 종료")}


def _label(table: dict):
    return lambda key: _(table[key]) if key in table else key


def _labels() -> dict:
    return {"reason_label": _label(REASON_LABELS), "status_label": _label(STATUS_LABELS),
            "finding_label": _label(FINDING_LABELS), "exam_kind_label": _label(EXAM_KIND_LABELS),
            "level_label": _label(LEVEL_LABELS), "window_label": _label(WINDOW_LABELS),
            "percent": lambda x: "—" if x is None else f"{x * 100:.1f}%",
            "grade_cap": rules.MAKEUP_GRADE_CAP}


def _korean_403(exc: ApiError, message: str) -> ApiError:
    return ApiError(403, "forbidden", message) if exc.status == 403 else exc


# --- learners: make-up applications (EXM-11) -------------------------------------------------

@bp.route("/makeup")
@page_roles_required("learner")
def makeup_home():
    """Regular exams the learner missed (apply) and their applications."""
    user = current_auth().user
    mine = makeup.my_requests(user)
    return render_template("exams/makeup_home.html", eligible=makeup.eligible_exams(user), requests=mine,
                           request_dicts={r.id: makeup.request_dict(r) for r in mine},
                           courses=_courses_by_id({r.course_id for r in mine}), **_labels())


def _courses_by_id(ids) -> dict[int, Course]:
    return {c.id: c for c in db.session.scalars(select(Course).where(Course.id.in_(ids)))} if ids else {}


_APPLY_MESSAGES = {
    "exam_not_closed": N_("시험 응시 기간이 끝난 뒤에 신청할 수 있습니다."),
    "attempt_exists": N_("이 시험에 응시한 기록이 있어 추가시험을 신청할 수 없습니다."),
    "already_requested": N_("이 시험의 추가시험을 이미 신청했습니다."),
    "rule_violation": N_("추가시험은 정기시험(중간·기말고사)에 대해서만 신청할 수 있습니다 (EXM-11)."),
}


def _apply_error_message(exc: ApiError, files_given: bool) -> str:
    if exc.code in _APPLY_MESSAGES:
        return _(_APPLY_MESSAGES[exc.code])
    if exc.status == 403:
        return _("이 과정에 수강 등록되어 있지 않습니다.")
    if "reason" in exc.message:
        return _("추가시험 사유를 고르세요.")
    if "detail" in exc.message:
        return _("신청 내용이 너무 깁니다.")
    if not files_given or "evidence file" in exc.message or "files:" in exc.message:
        return _("증빙서류는 PDF, JPG, PNG 파일만, 파일당 %(mb)sMB까지, %(n)s개까지 첨부할 수 있습니다.",
                 mb=makeup.max_evidence_bytes() // (1024 * 1024), n=makeup.MAX_EVIDENCE_FILES)
    return _("요청을 처리할 수 없습니다. 입력한 내용을 확인하세요.")


@bp.route("/exams/<int:exam_id>/makeup", methods=["GET", "POST"])
@page_roles_required("learner")
def makeup_apply_page(exam_id):
    """The application form for one exam, or the learner's application for it."""
    user = current_auth().user
    try:
        exam, course = exam_for_viewer(exam_id, user)
    except ApiError as exc:
        raise _korean_403(exc, _("이 과정에 수강 등록되어 있지 않습니다.")) from exc
    form = {"reason": request.form.get("reason") or "", "detail": request.form.get("detail") or ""}
    error, status = None, 200
    if request.method == "POST":
        files = [f for f in request.files.getlist("files") if f and f.filename]
        try:
            req = makeup.apply(exam.id, user, reason=form["reason"], detail=form["detail"],
                               files=[uploads.Upload(f.filename, f.stream) for f in files], ip=client_ip())
        except ApiError as exc:
            error, status = _apply_error_message(exc, bool(files)), exc.status
        else:
            flash(_("추가시험 신청 #%(id)s을 접수했습니다. 교수자가 심사합니다.", id=req.id), "info")
            return redirect(url_for("exam_pages.makeup_home"), 303)
    existing = db.session.scalar(select(MakeupRequest).where(MakeupRequest.exam_id == exam.id,
                                                             MakeupRequest.learner_id == user.id))
    problem = None if existing else makeup.eligibility_problem(exam, user.id, clock.now())
    return render_template(
        "exams/makeup_apply.html", exam=exam, course=course, form=form, error=error,
        problem=_apply_error_message(problem, True) if problem else None,
        existing=makeup.request_dict(existing) if existing else None, reasons=makeup.REASONS,
        max_files=makeup.MAX_EVIDENCE_FILES, max_mb=makeup.max_evidence_bytes() // (1024 * 1024),
        **_labels()), status


@bp.route("/courses/<int:course_id>/makeup-requests/<int:request_id>/evidence/<int:evidence_id>")
@page_roles_required()
def makeup_evidence_page(course_id, request_id, evidence_id):
    req = _page_request(course_id, request_id)
    return uploads.send_evidence(makeup.evidence_row(req, evidence_id))


def _page_request(course_id: int, request_id: int) -> MakeupRequest:
    try:
        req = makeup.get_request(request_id, current_auth().user)
    except ApiError as exc:
        raise _korean_403(exc, _("이 추가시험 신청을 볼 권한이 없습니다.")) from exc
    if req.course_id != course_id:
        raise ApiError(404, "not_found", "make-up request not found")
    return req


# --- staff: the hub ------------------------------------------------------------------------

def _staff_courses(user: User) -> list[Course]:
    stmt = select(Course).where(Course.institution_id == user.institution_id)
    if user.role not in ("admin", "inspector"):
        stmt = stmt.where(Course.id.in_(select(StaffAssignment.course_id).where(StaffAssignment.user_id == user.id)))
    return list(db.session.scalars(stmt.order_by(Course.starts_on.desc(), Course.id.desc())))


@bp.route("/exam-review")
@page_roles_required(*STAFF_PAGE_ROLES)
def review_home():
    """The user's courses with pending make-up applications and attempts with essays to grade."""
    courses = _staff_courses(current_auth().user)
    ids = [c.id for c in courses]
    pending, to_grade = {}, {}
    if ids:
        pending = dict(db.session.execute(
            select(MakeupRequest.course_id, func.count(MakeupRequest.id))
            .where(MakeupRequest.course_id.in_(ids), MakeupRequest.status == makeup.PENDING)
            .group_by(MakeupRequest.course_id)).all())
        to_grade = dict(db.session.execute(
            select(Exam.course_id, func.count(Attempt.id)).join(Exam, Exam.id == Attempt.exam_id)
            .where(Exam.course_id.in_(ids), Attempt.needs_grading.is_(True), Attempt.submitted_at.is_not(None))
            .group_by(Exam.course_id)).all())
    return render_template("exams/grading_courses.html", courses=courses, pending=pending, to_grade=to_grade)


def _staff_course(course_id: int, reader) -> Course:
    try:
        return reader(course_id, current_auth().user)
    except ApiError as exc:
        raise _korean_403(exc, _("이 과정의 교강사, 관리자 또는 점검자만 볼 수 있습니다.")) from exc


# --- staff: make-up decisions (EXM-11) ---------------------------------------------------------

@bp.route("/courses/<int:course_id>/makeup-requests")
@page_roles_required(*STAFF_PAGE_ROLES)
def makeup_review_page(course_id):
    user = current_auth().user
    course = _staff_course(course_id, access.course_for_reader)
    rows = makeup.list_requests(course, user)
    learners = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_({r.learner_id for r in rows})))} \
        if rows else {}
    return render_template("exams/makeup_review.html", course=course, requests=rows,
                           request_dicts={r.id: makeup.request_dict(r) for r in rows}, learners=learners,
                           can_decide=makeup.can_decide(course, user), **_labels())


@bp.route("/courses/<int:course_id>/makeup-requests/<int:request_id>/decision", methods=["POST"])
@page_roles_required("instructor", "admin")
def makeup_decide_page(course_id, request_id):
    _page_request(course_id, request_id)
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        raise ApiError(400, "invalid_request", _("승인 또는 반려를 고르세요."))
    try:
        makeup.decide(request_id, current_auth().user, approve=decision == "approve",
                      comment=request.form.get("comment"))
    except ApiError as exc:
        if exc.code == "already_decided":
            flash(_("이미 처리된 신청입니다."), "warning")
        elif exc.status == 400:
            flash(_("의견이 너무 깁니다."), "error")
        else:
            raise _korean_403(exc, _("이 과정의 교수자 또는 관리자만 심사할 수 있습니다.")) from exc
    else:
        flash(_("신청 #%(id)s을 승인했습니다. 학습자는 5일 안에 추가시험에 응시할 수 있습니다.", id=request_id)
              if decision == "approve" else _("신청 #%(id)s을 반려했습니다.", id=request_id), "info")
    return redirect(url_for("exam_pages.makeup_review_page", course_id=course_id), 303)


# --- staff: essay grading (EXM-12) -------------------------------------------------------------

@bp.route("/courses/<int:course_id>/grading")
@page_roles_required(*STAFF_PAGE_ROLES)
def grading_page(course_id):
    user = current_auth().user
    course = _staff_course(course_id, grading.course_for_queue)
    return render_template("exams/grading_queue.html", course=course, queue=grading.grading_queue(course),
                           can_grade=grading.can_grade(course, user), **_labels())


@bp.route("/courses/<int:course_id>/grading/<int:attempt_id>/<int:item_id>", methods=["POST"])
@page_roles_required("instructor", "admin")
def grade_page(course_id, attempt_id, item_id):
    course = _staff_course(course_id, grading.course_for_queue)
    _attempt, exam, _course = attempt_for(attempt_id, current_auth().user)
    if exam.course_id != course.id:
        raise ApiError(404, "not_found", "attempt not found")
    try:
        points = float((request.form.get("points") or "").strip())
    except ValueError:
        points = None
    try:
        if points is None:
            raise ApiError(400, "invalid_request", "points")
        result = grading.grade_item(attempt_id, item_id, points, request.form.get("comment"), current_auth().user)
    except ApiError as exc:
        if exc.status == 400:
            flash(_("점수는 0점부터 배점까지의 숫자로 입력하세요. 의견은 2000자까지입니다."), "error")
        elif exc.status == 409:
            flash(_("채점할 수 없는 문항입니다 (제출 전이거나 답안이 없습니다)."), "warning")
        else:
            raise _korean_403(exc, _("이 과정의 교수자 또는 관리자만 채점할 수 있습니다.")) from exc
    else:
        flash(_("채점했습니다: %(p)s점. 응시 점수 %(s)s점.", p=f"{result['awarded']:g}", s=f"{result['score']:g}")
              + ("" if result["needs_grading"] else " " + _("이 응시의 채점이 끝났습니다.")), "info")
    return redirect(url_for("exam_pages.grading_page", course_id=course.id) + f"#attempt-{attempt_id}", 303)


# --- staff: item analysis (EXM-5) ----------------------------------------------------------------

def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@bp.route("/courses/<int:course_id>/item-analysis")
@page_roles_required(*STAFF_PAGE_ROLES)
def analysis_course_page(course_id):
    """The course's regular exams with their flagged items, and the bank's replacement
    report (``?since=&until=``, KST dates; default since the last term)."""
    course = _staff_course(course_id, analysis.course_for_reader)
    exams = list(db.session.scalars(select(Exam).where(Exam.course_id == course.id,
                                                       Exam.kind.in_(rules.REGULAR_KINDS))
                                    .order_by(Exam.opens_at, Exam.id)))
    summaries = {e.id: analysis.exam_analysis(e) for e in exams}
    since, until = _parse_day(request.args.get("since")), _parse_day(request.args.get("until"))
    error = None
    try:
        report = analysis.bank_replacement_report(
            course.id, analysis.kst_start(since) if since else None,
            analysis.kst_start(until + timedelta(days=1)) if until else None)
    except ApiError:
        error = _("시작일은 종료일보다 앞서야 합니다.")
        report = analysis.bank_replacement_report(course.id)
    return render_template("exams/analysis_course.html", course=course, exams=exams, summaries=summaries,
                           report=report, error=error, since=request.args.get("since") or "",
                           until=request.args.get("until") or "", **_labels())


def _replace_link(course_id: int, item_id: int) -> str | None:
    """The bank page of an item, where it is replaced (lms.exams.views), when present."""
    try:
        return url_for("exams_views.item_page", course_id=course_id, item_id=item_id)
    except BuildError:
        return None


@bp.route("/exams/<int:exam_id>/item-analysis", methods=["GET", "POST"])
@page_roles_required(*STAFF_PAGE_ROLES)
def analysis_exam_page(exam_id):
    user = current_auth().user
    try:
        exam, course = analysis.exam_for_reader(exam_id, user)
    except ApiError as exc:
        raise _korean_403(exc, _("이 과정의 교강사, 관리자 또는 점검자만 볼 수 있습니다.")) from exc
    if request.method == "POST":
        try:
            analysis.recompute(exam.id, user)
        except ApiError as exc:
            if exc.status == 409:
                flash(_("문항 분석은 정기시험의 응시 기간이 끝난 뒤에 할 수 있습니다."), "warning")
            else:
                raise _korean_403(exc, _("이 과정의 교수자 또는 관리자만 다시 계산할 수 있습니다.")) from exc
        else:
            flash(_("문항 분석을 다시 계산했습니다."), "info")
        return redirect(url_for("exam_pages.analysis_exam_page", exam_id=exam.id), 303)
    data = analysis.exam_analysis(exam)
    can_manage = access.can_act(course, user)
    links = {r["item_id"]: _replace_link(course.id, r["item_id"]) for r in data["items"]} if can_manage else {}
    return render_template("exams/analysis_exam.html", exam=exam, course=course, data=data, links=links,
                           can_manage=can_manage, **_labels())


# --- staff: cheating findings (EXM-13) ------------------------------------------------------------

@bp.route("/courses/<int:course_id>/cheating-findings", methods=["GET", "POST"])
@page_roles_required(*STAFF_PAGE_ROLES)
def findings_page(course_id):
    user = current_auth().user
    course = _staff_course(course_id, findings.course_for_reader)
    can_record = findings.can_record(course, user)
    form = {k: request.form.get(k) or "" for k in ("attempt_id", "kind", "description", "evidence")}
    error, status = None, 200
    if request.method == "POST":
        if not can_record:
            raise ApiError(403, "forbidden", _("이 과정의 교수자 또는 관리자만 부정행위를 기록할 수 있습니다."))
        attempt_id = int(form["attempt_id"]) if form["attempt_id"].isdigit() and len(form["attempt_id"]) < 10 else 0
        try:
            _attempt_in_course(course, attempt_id)
            f = findings.record_finding(attempt_id, user, kind=form["kind"], description=form["description"],
                                        evidence=form["evidence"])
        except ApiError as exc:
            if exc.status == 403:
                raise _korean_403(exc, _("이 과정의 교수자 또는 관리자만 부정행위를 기록할 수 있습니다.")) from exc
            error, status = _("응시, 유형과 내용을 확인하세요 (내용은 필수입니다)."), 400 if exc.status == 400 else exc.status
        else:
            flash(_("부정행위 #%(id)s을 기록했습니다. 이 학습자는 이 과목의 성적을 받지 못합니다 (EXM-13).", id=f.id),
                  "info")
            return redirect(url_for("exam_pages.findings_page", course_id=course.id), 303)
    attempts = db.session.execute(
        select(Attempt, Exam, User).join(Exam, Exam.id == Attempt.exam_id).join(User, User.id == Attempt.learner_id)
        .where(Exam.course_id == course.id).order_by(Exam.opens_at, Exam.id, User.username)).all() \
        if can_record else []
    return render_template("exams/findings_course.html", course=course, findings=findings.findings_dicts(course),
                           attempts=attempts, can_record=can_record, kinds=findings.KINDS, form=form,
                           error=error, **_labels()), status


def _attempt_in_course(course: Course, attempt_id: int) -> None:
    exam_course = db.session.scalar(select(Exam.course_id).join(Attempt, Attempt.exam_id == Exam.id)
                                    .where(Attempt.id == attempt_id))
    if exam_course != course.id:
        raise ApiError(400, "invalid_request", "attempt: not an attempt of this course")
