"""Excused absences (ATT-5), attendance rates and scores (ATT-5…ATT-8) and the staff weekly
access report (CRS-10): the JSON API and the Korean pages.

``bp`` (a plain Blueprint holding the pages) carries ``api`` (an APIBlueprint under
``/api/v1``, in the OpenAPI document); ``create_app`` registers ``bp``.

API
- ``POST /api/v1/courses/{id}/excuses`` (multipart: ``reason``, ``statement``, ``lesson_ids``
  repeated or comma-separated, ``files`` one or more PDF/JPEG/PNG) → 201 the application
- ``GET /api/v1/courses/{id}/excuses?status=&learner_id=`` → ``{"excuses": [...]}``
- ``GET /api/v1/excuses/{id}``; ``GET /api/v1/excuses/{id}/evidence/{evidence_id}`` (the file)
- ``POST /api/v1/excuses/{id}/decision`` ``{"approve": bool, "comment"}`` → 200; 422 ATT-5
- ``GET /api/v1/courses/{id}/attendance?learner_id=N`` (API.md) with score, f, units
- ``GET|PUT /api/v1/courses/{id}/attendance-scale`` (ATT-7, GRD-1)
- ``GET /api/v1/courses/{id}/staff-access?week=N[&format=csv][&include=all]`` (CRS-10)

Pages: ``/excuses`` (my courses), ``/courses/{id}/excuses`` (learner: apply, my
applications), ``/courses/{id}/excuses/review`` (staff: queue with approve/reject),
``/admin/staff-access`` (admin, inspector).
"""
from __future__ import annotations

import re

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Length, OneOf, Range
from flask import Blueprint, Response, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from lms.attendance import excuses, reports, rules
from lms.attendance.models import EXCUSE_REASONS, ExcuseRequest
from lms.auth.models import User
from lms.content.models import Course, StaffAssignment
from lms.content.service import get_course
from lms.db import db
from lms.enrolment.models import Enrollment
from lms.errors import ApiError
from lms.i18n import N_
from lms.schemas import DecisionIn, EvidenceOut, StrictBool
from lms.security import current_auth, page_roles_required, roles_required

bp = Blueprint("excuses", __name__, template_folder="templates")
api = APIBlueprint("excuse_api", __name__, url_prefix="/api/v1", tag="Attendance")

# Endpoints whose body carries evidence files: their size limit replaces the app's
# (LMS_MAX_BODY_BYTES) before anything reads the body — the CSRF check of a form included.
_UPLOAD_ENDPOINTS = {"excuses.excuse_api.apply_excuse", "excuses.apply_page"}


@bp.url_value_preprocessor
def _upload_limit(endpoint, _values):
    if endpoint in _UPLOAD_ENDPOINTS and request.method == "POST":
        request.max_content_length = excuses.max_request_bytes()


MAX_ID = 2**31 - 1  # ids are INTEGER columns: a larger number names no row (and must not reach the database)
_IDS_RE = re.compile(r"^\s*\d{1,9}\s*(,\s*\d{1,9}\s*)*,?\s*$")


def _parse_ids(values) -> list[int]:
    ids: list[int] = []
    for value in values or []:
        if not isinstance(value, str) or not _IDS_RE.match(value):
            raise ApiError(400, "invalid_request", "lesson_ids: lesson ids (whole numbers), repeated or comma-separated")
        ids += [int(p) for p in value.split(",") if p.strip()]
    return ids


# --- JSON API: excused absences (ATT-5) ----------------------------------------------------

class ExcuseIn(Schema):
    reason = fields.String(required=True, validate=OneOf(EXCUSE_REASONS))
    statement = fields.String(load_default=None, validate=Length(0, excuses.MAX_STATEMENT_CHARS))
    lesson_ids = fields.List(fields.String(validate=Length(1, 2000)), required=True, validate=Length(1, 200))
    files = fields.List(fields.File(), required=True, validate=Length(1, excuses.MAX_EVIDENCE_FILES))


class ExcuseListQuery(Schema):
    status = fields.String(load_default=None, validate=OneOf(excuses.STATUSES))
    learner_id = fields.Integer(load_default=None, validate=Range(min=1, max=MAX_ID))


class ExcuseLessonOut(Schema):
    lesson_id = fields.Integer()
    week = fields.Integer()
    title = fields.String()
    units = fields.Integer()


class ExcuseOut(Schema):
    id = fields.Integer()
    course_id = fields.Integer()
    learner_id = fields.Integer()
    reason = fields.String()
    statement = fields.String(allow_none=True)
    status = fields.String()
    created_at = fields.String()
    lessons = fields.List(fields.Nested(ExcuseLessonOut))
    units = fields.Integer()
    evidence = fields.List(fields.Nested(EvidenceOut))
    decided_by = fields.Integer(allow_none=True)
    decided_at = fields.String(allow_none=True)
    decision_comment = fields.String(allow_none=True)


class ExcuseEntryOut(ExcuseOut):
    """An application in a list (its own class: nested and top-level uses of one schema
    class would be registered twice in the OpenAPI document)."""


class ExcuseListOut(Schema):
    excuses = fields.List(fields.Nested(ExcuseEntryOut))


@api.post("/courses/<int:course_id>/excuses")
@roles_required("learner")
@api.input(ExcuseIn, location="form_and_files", arg_name="body")
@api.output(ExcuseOut, status_code=201)
def apply_excuse(course_id, body):
    """Apply for excused absence (ATT-5) for lessons of the course, with a reason of the
    rule and evidence files (PDF, JPEG, PNG; each at most 10 MB by default)."""
    user = current_auth().user
    course = get_course(course_id, user)
    uploads = [excuses.Upload(f.filename or "", f.stream) for f in body["files"]]
    req = excuses.apply(course, user, reason=body["reason"], statement=body["statement"],
                        lesson_ids=_parse_ids(body["lesson_ids"]), uploads=uploads)
    return excuses.request_dict(req)


@api.get("/courses/<int:course_id>/excuses")
@roles_required()
@api.input(ExcuseListQuery, location="query", arg_name="query")
@api.output(ExcuseListOut)
def list_excuses(course_id, query):
    """Applications of the course: a learner's own; every one for staff, admins, inspectors."""
    user = current_auth().user
    course = get_course(course_id, user)
    rows = excuses.list_requests(course, user, learner_id=query["learner_id"], status=query["status"])
    return {"excuses": [excuses.request_dict(r) for r in rows]}


@api.get("/excuses/<int:excuse_id>")
@roles_required()
@api.output(ExcuseOut)
def get_excuse(excuse_id):
    return excuses.request_dict(excuses.get_request(excuse_id, current_auth().user))


@api.get("/excuses/<int:excuse_id>/evidence/<int:evidence_id>")
@roles_required()
def get_evidence(excuse_id, evidence_id):
    """An evidence file, as uploaded (its SHA-256 is in the application)."""
    req = excuses.get_request(excuse_id, current_auth().user)
    return _send_evidence(req, evidence_id)


def _send_evidence(req: ExcuseRequest, evidence_id: int):
    ev, path = excuses.evidence_file(req, evidence_id)
    resp = send_file(path, mimetype=ev.content_type or "application/octet-stream", as_attachment=True,
                     download_name=ev.filename, max_age=0)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@api.post("/excuses/<int:excuse_id>/decision")
@roles_required("ta", "instructor", "admin")
@api.input(DecisionIn, arg_name="body")
@api.output(ExcuseOut)
def decide_excuse(excuse_id, body):
    """Approve or reject (a TA or instructor of the course, or an admin). An approval that
    takes the learner's excused class time above 20% of the course's is refused (422, ATT-5)."""
    req = excuses.decide(excuse_id, current_auth().user, approve=body["approve"], comment=body["comment"])
    return excuses.request_dict(req)


# --- JSON API: attendance rate and score (ATT-5…ATT-8) -----------------------------------

class AttendanceQuery(Schema):
    learner_id = fields.Integer(load_default=None, validate=Range(min=1, max=MAX_ID))


class AttendanceLessonOut(Schema):
    lesson_id = fields.Integer()
    status = fields.String()
    progress = fields.Float()
    week = fields.Integer()
    title = fields.String()
    units = fields.Integer()
    attendance_deadline = fields.String()
    completed_at = fields.String(allow_none=True)


class AttendanceOut(Schema):
    learner_id = fields.Integer()
    rate = fields.Float()
    lessons = fields.List(fields.Nested(AttendanceLessonOut))
    course_id = fields.Integer()
    score = fields.Raw(allow_none=True)
    max_score = fields.Integer()
    f = fields.Boolean()
    final = fields.Boolean()
    course_rate = fields.Float()
    total_units = fields.Integer()
    attended_units = fields.Integer()
    excused_units = fields.Integer()
    excused_units_counted = fields.Raw()
    excused_cap_units = fields.Raw()
    absent_units = fields.Integer()
    pending_units = fields.Integer()
    scale = fields.String()
    enlistment = fields.Dict(allow_none=True)


@api.get("/courses/<int:course_id>/attendance")
@roles_required()
@api.input(AttendanceQuery, location="query", arg_name="query")
@api.output(AttendanceOut)
def course_attendance(course_id, query):
    """A learner's attendance (API.md): rate 0.0–1.0 over the course's class time (ATT-6,
    each lesson weighs its units; excused lessons count up to 20%, ATT-5), every lesson's
    stored status and progress; with the ATT-7 score, the F flag and ATT-8 when it applies.
    A learner sees only their own; staff of the course, admins and inspectors anyone's."""
    course, learner_id = reports.attendance_course(course_id, current_auth().user, query["learner_id"])
    return reports.learner_attendance(course, learner_id)


class ScaleIn(Schema):
    scale = fields.Raw(required=True, allow_none=True)


@api.get("/courses/<int:course_id>/attendance-scale")
@roles_required()
def get_attendance_scale(course_id):
    """The course's published attendance scale (ATT-7); the rule's 20-point table by default."""
    from lms.content.service import course_for_viewer

    return reports.scale_dict(course_for_viewer(course_id, current_auth().user))


@api.put("/courses/<int:course_id>/attendance-scale")
@roles_required("admin", "instructor")
@api.input(ScaleIn, arg_name="body")
def put_attendance_scale(course_id, body):
    """Publish the course's attendance scale ``[[min_rate_percent, points], ...]`` (highest
    band first; null returns to the rule's table) before the course starts (ATT-7); at most
    20 points (ATT-7, GRD-1). Below 80% is F whatever the scale (ATT-6)."""
    from lms.content.service import course_for_manager

    course = course_for_manager(course_id, current_auth().user, staff=("instructor",))
    reports.set_scale(course, body["scale"])
    db.session.commit()
    return reports.scale_dict(course)


# --- JSON API: staff weekly access (CRS-10) ------------------------------------------------

class StaffAccessQuery(Schema):
    week = fields.Integer(load_default=None, validate=Range(min=1, max=52))
    format = fields.String(load_default="json", validate=OneOf(("json", "csv")))
    include = fields.String(load_default="missing", validate=OneOf(("missing", "all")))


@api.get("/courses/<int:course_id>/staff-access")
@roles_required(*reports.STAFF_ACCESS_ROLES)
@api.input(StaffAccessQuery, location="query", arg_name="query")
def staff_access(course_id, query):
    """CRS-10: instructors and TAs of the course who did not access its LMS pages in week
    ``week`` (KST, week w = starts_on + 7(w−1) … +6; default: the current week).
    ``format=csv`` (or ``Accept: text/csv``) gives the missing staff as CSV
    (``include=all``: everyone, with an ``accessed`` column)."""
    course = get_course(course_id, current_auth().user)
    week = query["week"] if query["week"] is not None else reports.default_week(course)
    report = reports.staff_access_report(course, week)
    if query["format"] == "csv" or request.accept_mimetypes.best == "text/csv":
        return _csv_response(report, include_all=query["include"] == "all")
    return report


def _csv_response(report: dict, *, include_all: bool) -> Response:
    body = "\ufeff" + reports.staff_access_csv(report, include_all=include_all)  # BOM: Excel reads UTF-8
    name = f"staff-access-{report['course_code']}-week{report['week']}.csv"
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{_ascii_name(name)}"'})


def _ascii_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


bp.register_blueprint(api)


# --- pages ---------------------------------------------------------------------------------

DASHBOARD_LINKS = {
    "learner": [("excuses.my_courses", N_("공결 신청"))],
    "ta": [("excuses.my_courses", N_("공결 신청 심사"))],
    "instructor": [("excuses.my_courses", N_("공결 신청 심사"))],
    "admin": [("excuses.my_courses", N_("공결 신청 심사")), ("excuses.staff_access_page", N_("교강사 주차별 접속 점검"))],
    "inspector": [("excuses.staff_access_page", N_("교강사 주차별 접속 점검"))],
}

REASON_LABELS = {k: N_(v) for k, v in excuses.REASON_LABELS.items()}
STATUS_LABELS = {"pending": N_("심사 중"), "approved": N_("승인"), "rejected": N_("반려")}
LESSON_STATUS_LABELS = {"pending": N_("학습 기간"), "attended": N_("출석"), "absent": N_("결석"),
                        "excused": N_("공결")}


def _labels():
    return {"reason_label": lambda r: _(REASON_LABELS[r]) if r in REASON_LABELS else r,
            "status_label": lambda s: _(STATUS_LABELS[s]) if s in STATUS_LABELS else s,
            "lesson_status_label": lambda s: _(LESSON_STATUS_LABELS[s]) if s in LESSON_STATUS_LABELS else s}


@bp.route("/excuses")
@page_roles_required("learner", "ta", "instructor", "admin")
def my_courses():
    """A learner's courses (apply), a staff member's courses (review, pending count)."""
    user = current_auth().user
    if user.role == "learner":
        courses = list(db.session.scalars(
            select(Course).join(Enrollment, Enrollment.course_id == Course.id)
            .where(Enrollment.user_id == user.id, Enrollment.status == "active").order_by(Course.starts_on.desc())))
    elif user.role == "admin":
        courses = reports.institution_courses(user)
    else:
        courses = list(db.session.scalars(
            select(Course).where(Course.id.in_(select(StaffAssignment.course_id)
                                               .where(StaffAssignment.user_id == user.id)))
            .order_by(Course.starts_on.desc(), Course.id.desc())))
    pending = {}
    if user.role != "learner" and courses:
        from sqlalchemy import func

        pending = {cid: n for cid, n in db.session.execute(
            select(ExcuseRequest.course_id, func.count(ExcuseRequest.id))
            .where(ExcuseRequest.course_id.in_([c.id for c in courses]), ExcuseRequest.status == "pending")
            .group_by(ExcuseRequest.course_id))}
    return render_template("excuse_courses.html", courses=courses, pending=pending, learner=user.role == "learner")


@bp.route("/courses/<int:course_id>/excuses", methods=["GET", "POST"])
@page_roles_required("learner")
def apply_page(course_id):
    """The learner's application form (lessons of the course, reason, statement, evidence)
    and their applications with the decisions."""
    user = current_auth().user
    course = get_course(course_id, user)
    from lms.content.service import is_enrolled

    if not is_enrolled(course.id, user.id):
        raise ApiError(403, "forbidden", _("이 과정에 수강 등록되어 있지 않습니다."))
    error, status = None, 200
    form = {"reason": "", "statement": "", "lesson_ids": []}
    if request.method == "POST":
        form = {"reason": request.form.get("reason") or "", "statement": request.form.get("statement") or "",
                "lesson_ids": request.form.getlist("lesson_ids")}
        files = [f for f in request.files.getlist("files") if f and f.filename]
        try:
            ids = _parse_ids(form["lesson_ids"])
            if not ids:
                raise ApiError(400, "invalid_request", "lesson_ids")
            req = excuses.apply(course, user, reason=form["reason"], statement=form["statement"],
                                lesson_ids=ids, uploads=[excuses.Upload(f.filename, f.stream) for f in files])
        except ApiError as exc:
            error, status = _apply_error_message(exc, ids_given=bool(form["lesson_ids"]), files_given=bool(files)), exc.status
        else:
            flash(_("공결 신청 #%(id)s을 접수했습니다. 조교 또는 교수자가 심사합니다.", id=req.id), "info")
            return redirect(url_for("excuses.apply_page", course_id=course.id))
    records = reports.learner_records(course, user.id)
    result = reports.learner_result(course, user.id)
    mine = excuses.list_requests(course, user)
    return render_template(
        "excuse_apply.html", course=course, records=records, result=result, requests=mine,
        request_dicts={r.id: excuses.request_dict(r) for r in mine}, reasons=EXCUSE_REASONS, form=form,
        error=error, max_files=excuses.MAX_EVIDENCE_FILES, max_mb=excuses.max_evidence_bytes() // (1024 * 1024),
        taken=_taken_lessons(course.id, user.id), **_labels()), status


def _taken_lessons(course_id: int, learner_id: int) -> set[int]:
    from lms.attendance.models import ExcuseLesson

    return set(db.session.scalars(
        select(ExcuseLesson.lesson_id).join(ExcuseRequest, ExcuseRequest.id == ExcuseLesson.request_id)
        .where(ExcuseRequest.course_id == course_id, ExcuseRequest.learner_id == learner_id,
               ExcuseRequest.status.in_(("pending", "approved")))))


def _apply_error_message(exc: ApiError, *, ids_given: bool, files_given: bool) -> str:
    if exc.code == "already_attended":
        return _("이미 출석한 차시는 공결을 신청할 필요가 없습니다.")
    if exc.code == "already_requested":
        return _("이미 심사 중이거나 승인된 신청에 포함된 차시입니다.")
    if exc.status == 403:
        return _("이 과정에 수강 등록되어 있지 않습니다.")
    if not ids_given:
        return _("공결을 신청할 차시를 하나 이상 고르세요.")
    if not files_given:
        return _("증빙서류를 하나 이상 첨부하세요 (PDF, JPG, PNG).")
    if "reason" in exc.message:
        return _("공결 사유를 고르세요.")
    if "statement" in exc.message:
        return _("신청 내용이 너무 깁니다.")
    if "evidence file" in exc.message or "files:" in exc.message:
        return _("증빙서류는 PDF, JPG, PNG 파일만, 파일당 %(mb)sMB까지, %(n)s개까지 첨부할 수 있습니다.",
                 mb=excuses.max_evidence_bytes() // (1024 * 1024), n=excuses.MAX_EVIDENCE_FILES)
    return _("요청을 처리할 수 없습니다. 입력한 내용을 확인하세요.")


@bp.route("/courses/<int:course_id>/excuses/review")
@page_roles_required("ta", "instructor", "admin", "inspector")
def review_page(course_id):
    """The course's queue: pending applications with approve/reject and a comment; the
    decided ones below. Inspectors read only."""
    user = current_auth().user
    course = get_course(course_id, user)
    if not excuses.can_view_all(course, user):
        raise ApiError(403, "forbidden", _("이 과정의 교강사만 볼 수 있습니다."))
    rows = excuses.list_requests(course, user)
    learners = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_({r.learner_id for r in rows})))} \
        if rows else {}
    usage = {}
    for lid in {r.learner_id for r in rows}:
        units, total = excuses.excused_units(course.id, lid)
        usage[lid] = (units, total, rules.excused_cap_units(total))
    return render_template("excuse_review.html", course=course, requests=rows,
                           request_dicts={r.id: excuses.request_dict(r) for r in rows}, learners=learners,
                           usage=usage, can_decide=excuses.can_decide(course, user), **_labels())


def _page_request(course_id: int, excuse_id: int) -> ExcuseRequest:
    """The application for a page: 404 unless it belongs to ``course_id``; a Korean 403."""
    try:
        req = excuses.get_request(excuse_id, current_auth().user)
    except ApiError as exc:
        if exc.status == 403:
            raise ApiError(403, "forbidden", _("이 공결 신청을 볼 권한이 없습니다.")) from exc
        raise
    if req.course_id != course_id:
        raise ApiError(404, "not_found", "excuse request not found")
    return req


@bp.route("/courses/<int:course_id>/excuses/<int:excuse_id>/decision", methods=["POST"])
@page_roles_required("ta", "instructor", "admin")
def decide_page(course_id, excuse_id):
    user = current_auth().user
    _page_request(course_id, excuse_id)
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        raise ApiError(400, "invalid_request", _("승인 또는 반려를 고르세요."))
    try:
        excuses.decide(excuse_id, user, approve=decision == "approve", comment=request.form.get("comment"))
    except ApiError as exc:
        if exc.rules and "ATT-5" in exc.rules:
            flash(_("승인할 수 없습니다: 공결은 총 수업시간의 20%까지만 인정됩니다 (ATT-5)."), "error")
        elif exc.code == "already_decided":
            flash(_("이미 처리된 신청입니다."), "warning")
        elif exc.status == 400:
            flash(_("의견이 너무 깁니다."), "error")
        elif exc.status == 403:
            raise ApiError(403, "forbidden", _("이 과정의 조교·교수자 또는 관리자만 심사할 수 있습니다.")) from exc
        else:
            raise
    else:
        flash(_("신청 #%(id)s을 승인했습니다.", id=excuse_id) if decision == "approve"
              else _("신청 #%(id)s을 반려했습니다.", id=excuse_id), "info")
    return redirect(url_for("excuses.review_page", course_id=course_id))


@bp.route("/courses/<int:course_id>/excuses/<int:excuse_id>/evidence/<int:evidence_id>")
@page_roles_required()
def evidence_page(course_id, excuse_id, evidence_id):
    return _send_evidence(_page_request(course_id, excuse_id), evidence_id)


@bp.route("/admin/staff-access")
@page_roles_required(*reports.STAFF_ACCESS_ROLES)
def staff_access_page():
    """CRS-10 for admins and inspectors: pick a course and a week; the staff who did not
    access the course that week are marked; CSV download."""
    user = current_auth().user
    courses = reports.institution_courses(user)
    course_id = request.args.get("course_id", type=int)
    course = report = None
    week = request.args.get("week", type=int)
    error = None
    if course_id is not None:
        if not 1 <= course_id <= MAX_ID:
            raise ApiError(404, "not_found", "course not found")
        course = get_course(course_id, user)
        try:
            if week is None:
                week = reports.default_week(course)
            report = reports.staff_access_report(course, week)
        except ApiError:
            error = _("주차를 고르세요 (1–%(n)s주차).", n=course.weeks)
    return render_template("staff_access_report.html", courses=courses, course=course, week=week,
                           report=report, error=error)
