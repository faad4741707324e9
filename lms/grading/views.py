"""Pages of grading (GRD-1…7), NILE reports (ENR-6, GRD-7) and course evaluation (CRS-15).

Staff
- ``/grading``: the courses (grade sheet, NILE reports, evaluation results)
- ``/courses/<id>/grades``: the instructor's grade sheet — components table, the scheme,
  propose, adjust, the GRD-2 distribution check with the rounding explained, finalise;
  objections with the answer form; after finalisation the correction application form
- ``/courses/<id>/nile-reports``: due dates and states (overdue highlighted), generate
  CSV/XLSX, the stored reports with their SHA-256
- ``/courses/<id>/evaluation/results``: aggregates only
- ``/grade-corrections``: administrators decide correction applications (GRD-7)
Learners
- ``/my/grades``: their courses; ``/my/grades/<id>``: grade, components, objection form
- ``/courses/<id>/evaluation``: the survey (the week after the course end)
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from lms import clock
from lms.auth.models import User
from lms.content.models import Course, StaffAssignment
from lms.content.service import get_course
from lms.db import db
from lms.enrolment.models import Enrollment
from lms.errors import ApiError
from lms.grading import evaluation, reports, rules, service
from lms.i18n import N_
from lms.security import current_auth, page_roles_required

bp = Blueprint("grading_pages", __name__, template_folder="templates")

STAFF = ("instructor", "ta", "admin", "inspector")

DASHBOARD_LINKS = {
    "learner": [("grading_pages.my_grades", N_("성적 조회·이의신청·강의평가"))],
    "instructor": [("grading_pages.home", N_("성적 관리·NILE 보고·강의평가 결과"))],
    "ta": [("grading_pages.home", N_("성적 관리·NILE 보고·강의평가 결과"))],
    "admin": [("grading_pages.home", N_("성적 관리·NILE 보고·강의평가 결과")),
              ("grading_pages.corrections", N_("성적 정정 신청 심사"))],
    "inspector": [("grading_pages.home", N_("성적 관리·NILE 보고·강의평가 결과"))],
}

SCHEME_LABELS = {"relative": N_("상대평가"), "absolute": N_("절대평가"), "pass_fail": N_("P/F")}
FIXED_LABELS = {"ATT-6": N_("출석률 80% 미만"), "GRD-3": N_("정기시험 모두 미응시"), "EXM-13": N_("부정행위: 성적 없음")}
COMPONENT_LABELS = {"exams": N_("시험"), "quizzes": N_("퀴즈"), "assignments": N_("과제"),
                    "participation": N_("참여"), "attendance": N_("출석")}
REPORT_LABELS = {"course_status": N_("과정 운영 현황 (ENR-6)"), "grades": N_("성적 및 출석률 (GRD-7)")}
STATE_LABELS = {"submitted": N_("기한 내 생성"), "late": N_("기한 후 생성"), "pending": N_("생성 전"),
                "overdue": N_("기한 경과"), "waiting": N_("성적 확정 후")}
STATUS_LABELS = {"pending": N_("심사 중"), "approved": N_("승인"), "rejected": N_("반려")}


def _label(table):
    return lambda k: _(table[k]) if k in table else k


def _ctx() -> dict:
    return {"scheme_label": _label(SCHEME_LABELS), "fixed_label": _label(FIXED_LABELS),
            "component_label": _label(COMPONENT_LABELS), "report_label": _label(REPORT_LABELS),
            "state_label": _label(STATE_LABELS), "status_label": _label(STATUS_LABELS),
            "iso_kst": lambda s: s.replace("T", " ")[:16] if s else "", "grades_all": rules.GRADES}


def _error(exc: ApiError) -> None:
    rules_txt = f" ({', '.join(exc.rules)})" if getattr(exc, "rules", None) else ""
    flash(_("처리할 수 없습니다%(rules)s: %(msg)s", rules=rules_txt, msg=exc.message), "error")


def _staff_courses(user: User) -> list[Course]:
    stmt = select(Course).where(Course.institution_id == user.institution_id)
    if user.role not in ("admin", "inspector"):
        stmt = stmt.join(StaffAssignment, StaffAssignment.course_id == Course.id).where(
            StaffAssignment.user_id == user.id).distinct()
    return list(db.session.scalars(stmt.order_by(Course.starts_on.desc(), Course.id)))


@bp.route("/grading")
@page_roles_required(*STAFF)
def home():
    user = current_auth().user
    courses = _staff_courses(user)
    overdue = reports.overdue_courses(user) if user.role in ("admin", "inspector") else []
    return render_template("grading/home.html", courses=courses, overdue=overdue, **_ctx())


# --- the instructor's grade sheet -----------------------------------------------------------

@bp.route("/courses/<int:course_id>/grades", methods=["GET", "POST"])
@page_roles_required(*STAFF)
def sheet(course_id):
    user = current_auth().user
    course = service.course_for_reader(course_id, user)
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "propose":
                service.propose(course.id, user)
                msg = _("성적을 산출하여 제안 성적을 저장했습니다.")
            elif action == "scheme":
                service.set_scheme(course.id, user, request.form.get("scheme", ""))
                msg = _("평가 방식을 바꿨습니다. 성적 제안을 다시 하세요.")
            elif action == "adjust":
                service.adjust(course.id, _int(request.form.get("learner_id")), user,
                               grade=request.form.get("grade", ""), reason=request.form.get("reason"))
                msg = _("성적을 조정했습니다.")
            elif action == "finalize":
                service.finalize(course.id, user)
                msg = _("성적을 확정했습니다. 이후 변경은 성적 정정 신청으로만 가능합니다.")
            elif action == "component":
                service.record_component(course.id, _int(request.form.get("learner_id")), user,
                                         component=request.form.get("component", ""),
                                         score=_score(request.form.get("score")), note=request.form.get("note"))
                msg = _("점수를 기록했습니다. 성적 제안을 다시 하면 반영됩니다.")
            elif action == "answer":
                service.answer_objection(_int(request.form.get("objection_id")), user,
                                         answer=request.form.get("answer", ""),
                                         grade=request.form.get("grade") or None)
                msg = _("이의신청에 답변했습니다.")
            elif action == "correction":
                service.apply_correction(course.id, user, learner_id=_int(request.form.get("learner_id")),
                                         grade=request.form.get("grade", ""), reasons=request.form.get("reasons", ""),
                                         evidence=request.form.get("evidence", ""))
                msg = _("성적 정정 신청을 접수했습니다. 관리자가 심사합니다.")
            else:
                abort(400)
        except ApiError as exc:
            db.session.rollback()
            _error(exc)
        else:
            db.session.commit()
            flash(msg, "info")
        return redirect(url_for("grading_pages.sheet", course_id=course.id), 303)
    data = service.sheet_dict(course)
    db.session.commit()
    objections = service.list_objections(course.id, user)
    corrections = [service.correction_dict(c) for c in service.list_corrections(user, course_id=course.id)]
    names = {g["learner_id"]: g for g in data["grades"]}
    return render_template("grading/sheet.html", course=course, data=data, objections=objections,
                           corrections=corrections, names=names, can_grade=service.can_grade(course, user),
                           now=clock.now(), entered=rules.ENTERED_COMPONENTS, **_ctx())


def _int(v) -> int:
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_request", _("학습자를 고르세요."))
    if not 1 <= n <= 2**31 - 1:
        raise ApiError(400, "invalid_request", _("학습자를 고르세요."))
    return n


def _score(v) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ApiError(400, "invalid_request", _("점수는 0–100의 숫자입니다."))
    if not 0 <= x <= 100:
        raise ApiError(400, "invalid_request", _("점수는 0–100의 숫자입니다."))
    return x


# --- learners --------------------------------------------------------------------------------

@bp.route("/my/grades")
@page_roles_required("learner")
def my_grades():
    user = current_auth().user
    courses = list(db.session.scalars(select(Course).join(Enrollment, Enrollment.course_id == Course.id).where(
        Enrollment.user_id == user.id, Enrollment.status.in_(service.ENROLLED)).order_by(Course.starts_on.desc())))
    return render_template("grading/my_grades.html", courses=courses, **_ctx())


@bp.route("/my/grades/<int:course_id>", methods=["GET", "POST"])
@page_roles_required("learner")
def my_course_grade(course_id):
    user = current_auth().user
    course = get_course(course_id, user)
    if request.method == "POST":
        try:
            service.object_to_grade(course.id, user, request.form.get("message", ""))
        except ApiError as exc:
            db.session.rollback()
            _error(exc)
        else:
            db.session.commit()
            flash(_("이의신청을 접수했습니다. 교수자가 답변합니다."), "info")
        return redirect(url_for("grading_pages.my_course_grade", course_id=course.id), 303)
    data = service.grades_for(course.id, user)
    return render_template("grading/my_course.html", course=course, data=data, **_ctx())


@bp.route("/courses/<int:course_id>/evaluation", methods=["GET", "POST"])
@page_roles_required("learner")
def evaluation_form(course_id):
    user = current_auth().user
    course = get_course(course_id, user)
    if request.method == "POST":
        answers = {}
        for q in evaluation.QUESTION_IDS:
            v = request.form.get(q)
            answers[q] = int(v) if v and v.isdigit() else v
        try:
            evaluation.submit(course.id, user, answers, request.form.get("comment"))
        except ApiError as exc:
            db.session.rollback()
            _error(exc)
        else:
            db.session.commit()
            flash(_("강의평가를 제출했습니다. 응답은 익명으로 집계됩니다."), "info")
        return redirect(url_for("grading_pages.evaluation_form", course_id=course.id), 303)
    state = evaluation.learner_state(course.id, user)
    return render_template("grading/evaluation_form.html", course=course, state=state, **_ctx())


@bp.route("/courses/<int:course_id>/evaluation/results")
@page_roles_required(*STAFF)
def evaluation_results(course_id):
    user = current_auth().user
    course = get_course(course_id, user)
    res = evaluation.results(course.id, user)
    return render_template("grading/evaluation_results.html", course=course, res=res, **_ctx())


# --- NILE reports ----------------------------------------------------------------------------

@bp.route("/courses/<int:course_id>/nile-reports", methods=["GET", "POST"])
@page_roles_required(*STAFF)
def nile_reports(course_id):
    user = current_auth().user
    course = reports.course_for_reports(course_id, user)
    if request.method == "POST":
        try:
            rep = reports.generate(course.id, user, kind=request.form.get("kind", ""),
                                   fmt=request.form.get("format", ""))
        except ApiError as exc:
            db.session.rollback()
            _error(exc)
        else:
            db.session.commit()
            flash(_("보고서를 생성했습니다 (SHA-256 %(h)s).", h=rep.sha256[:16] + "…"), "info")
        return redirect(url_for("grading_pages.nile_reports", course_id=course.id), 303)
    return render_template("grading/nile_reports.html", course=course, due=reports.due_state(course),
                           reports=[reports.report_dict(r) for r in reports.list_reports(course)],
                           columns={"course_status": reports.STATUS_COLUMNS, "grades": reports.GRADE_COLUMNS},
                           can_generate=user.role == "admin" or service.can_grade(course, user), **_ctx())


# --- correction applications (GRD-7) -----------------------------------------------------------

@bp.route("/grade-corrections", methods=["GET", "POST"])
@page_roles_required("admin", "inspector", "instructor")
def corrections():
    user = current_auth().user
    if request.method == "POST":
        try:
            service.decide_correction(_int(request.form.get("correction_id")), user,
                                      approve=request.form.get("decision") == "approve",
                                      comment=request.form.get("comment"))
        except ApiError as exc:
            db.session.rollback()
            _error(exc)
        else:
            db.session.commit()
            flash(_("결정을 저장했습니다."), "info")
        return redirect(url_for("grading_pages.corrections"), 303)
    rows = service.list_corrections(user)
    ids = {c.learner_id for c in rows} | {c.requested_by for c in rows}
    users = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    courses = {c.id: c for c in db.session.scalars(select(Course).where(Course.id.in_({r.course_id for r in rows})))} \
        if rows else {}
    return render_template("grading/corrections.html", rows=[service.correction_dict(c) for c in rows],
                           users=users, courses=courses, can_decide=user.role == "admin", **_ctx())
