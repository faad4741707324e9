"""Pages of the complaint (신문고) and 1:1 counselling channels (REC-5).

- ``/complaints``: a learner's own threads (and the form's link); the course staff's,
  administrators' and inspectors' threads, filtered by status
- ``/complaints/new``: the learner's form (kind, course, subject, text)
- ``/complaints/<id>``: the thread with every message's time; reply and close forms for
  those who may (inspectors read only)
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from lms.audit import complaints
from lms.audit.models_compliance import COMPLAINT_KINDS, COMPLAINT_STATUSES
from lms.content.models import Course
from lms.db import db
from lms.errors import ApiError
from lms.i18n import N_
from lms.net import client_ip
from lms.security import current_auth, page_roles_required

bp = Blueprint("audit_complaints_pages", __name__, template_folder="templates")

ROLES = ("learner", "instructor", "ta", "admin", "inspector")
DASHBOARD_LINKS = {
    "learner": [("audit_complaints_pages.index", N_("신문고·1:1 상담"))],
    "instructor": [("audit_complaints_pages.index", N_("신문고·1:1 상담 답변"))],
    "ta": [("audit_complaints_pages.index", N_("신문고·1:1 상담 답변"))],
    "admin": [("audit_complaints_pages.index", N_("신문고·1:1 상담 답변"))],
    "inspector": [("audit_complaints_pages.index", N_("신문고·1:1 상담 기록"))],
}
KIND_LABELS = {"attendance": N_("출석 이의"), "grade": N_("성적 이의"), "counselling": N_("1:1 상담")}
STATUS_LABELS = {"open": N_("답변 대기"), "answered": N_("답변 완료"), "closed": N_("종결")}
ACTION_LABELS = {"message": N_("메시지"), "close": N_("종결"), "reopen": N_("재개")}


def _labels() -> dict:
    def lab(table):
        return lambda k: _(table[k]) if k in table else k

    return {"kind_label": lab(KIND_LABELS), "status_label": lab(STATUS_LABELS), "action_label": lab(ACTION_LABELS),
            "kinds": COMPLAINT_KINDS, "statuses": COMPLAINT_STATUSES}


@bp.route("/complaints")
@page_roles_required(*ROLES)
def index():
    user = current_auth().user
    status = request.args.get("status")
    status = status if status in COMPLAINT_STATUSES else None
    rows = complaints.visible(user, status=status)
    return render_template("audit/complaints_index.html", rows=rows, status=status, **_labels())


def _form_error(exc: ApiError) -> str:
    if exc.status == 403:
        return _("수강 중인 과정만 지정할 수 있습니다.")
    if exc.status == 404:
        return _("지정한 과정·차시·시험을 찾을 수 없습니다.")
    if "subject" in exc.message:
        return _("제목을 %(n)s자 이내로 입력하세요.", n=complaints.MAX_SUBJECT_CHARS)
    if "body" in exc.message:
        return _("내용을 %(n)s자 이내로 입력하세요.", n=complaints.MAX_BODY_CHARS)
    if "kind" in exc.message:
        return _("유형을 고르세요.")
    return _("요청을 처리할 수 없습니다. 입력한 내용을 확인하세요.")


def _int_or_none(raw):
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise ApiError(400, "invalid_request", "course_id: a number")
    return int(raw)


@bp.route("/complaints/new", methods=["GET", "POST"])
@page_roles_required("learner")
def new():
    user = current_auth().user
    form = {k: request.form.get(k) or "" for k in ("kind", "course_id", "subject", "body")}
    if not form["kind"]:
        form["kind"] = request.args.get("kind") or ""
    error, status = None, 200
    if request.method == "POST":
        try:
            c = complaints.file_complaint(user, kind=form["kind"], subject=form["subject"], body=form["body"],
                                          course_id=_int_or_none(form["course_id"]), ip=client_ip())
        except ApiError as exc:
            error, status = _form_error(exc), exc.status
        else:
            flash(_("접수되었습니다 (#%(id)s). 답변이 등록되면 알려 드립니다.", id=c.id), "info")
            return redirect(url_for("audit_complaints_pages.thread", complaint_id=c.id), 303)
    return render_template("audit/complaints_new.html", form=form, error=error,
                           courses=complaints.learner_courses(user), **_labels()), status


@bp.route("/complaints/<int:complaint_id>", methods=["GET", "POST"])
@page_roles_required(*ROLES)
def thread(complaint_id):
    user = current_auth().user
    error, status = None, 200
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "close":
                complaints.close(complaint_id, user, request.form.get("body") or None, client_ip())
                flash(_("종결했습니다."), "info")
            else:
                complaints.reply(complaint_id, user, request.form.get("body"), client_ip())
                flash(_("등록했습니다."), "info")
        except ApiError as exc:
            if exc.status in (403, 404):
                raise
            error, status = (_("종결된 건에는 더 쓸 수 없습니다.") if exc.code == "complaint_closed"
                             else _form_error(exc)), exc.status
        else:
            return redirect(url_for("audit_complaints_pages.thread", complaint_id=complaint_id), 303)
    c = complaints.get_complaint(complaint_id, user)
    data = complaints.complaint_dict(c, with_messages=True, viewer=user)
    course = db.session.get(Course, c.course_id) if c.course_id else None
    return render_template("audit/complaints_thread.html", c=c, data=data, error=error, course=course,
                           can_close=data["can_reply"], **_labels()), status
