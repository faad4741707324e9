"""Live progress board pages (CRS-11, CRS-8) and its JSON API; the learner's status list.

Pages: ``/courses/<id>/board`` (staff), ``/staff/courses`` (the courses a staff member can
open a board for), ``/my/attendance`` (a learner's lessons with status and deadline).
API (nested APIBlueprint, in the OpenAPI document): ``GET /api/v1/courses/<id>/board``
(JSON, ``?format=csv|xlsx``) and ``POST /api/v1/courses/<id>/reminders``.
"""
from __future__ import annotations

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import OneOf, Range
from flask import Blueprint, Response, current_app, render_template, request, url_for

from lms import clock
from lms.attendance import board as service
from lms.attendance import rules
from lms.i18n import N_
from lms.security import current_auth, page_roles_required, roles_required

bp = Blueprint("attendance_pages", __name__, template_folder="templates")
api = APIBlueprint("attendance_board_api", __name__, url_prefix="/api/v1", tag="Attendance")

DASHBOARD_LINKS = {
    "ta": [("attendance_pages.staff_courses", N_("담당 과정"))],
    "instructor": [("attendance_pages.staff_courses", N_("담당 과정"))],
    "admin": [("attendance_pages.staff_courses", N_("과정별 학습 현황"))],
    "inspector": [("attendance_pages.staff_courses", N_("과정별 학습 현황"))],
    "learner": [("attendance_pages.my_attendance", N_("나의 출석 현황"))],
}

# CRS-11: the board refreshes at least every 10 seconds; ``?refresh=`` may only make it faster.
MAX_REFRESH_SECONDS = 10
MIN_REFRESH_SECONDS = 1

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- JSON API --------------------------------------------------------------------------

class BoardQuery(Schema):
    sort = fields.String(load_default="name", validate=OneOf(service.SORT_KEYS))
    order = fields.String(load_default="asc", validate=OneOf(service.ORDERS))
    format = fields.String(load_default="json", validate=OneOf(("json", "csv", "xlsx")))
    section_id = fields.Integer(load_default=None, validate=Range(min=1))


class ReminderIn(Schema):
    section_id = fields.Integer(load_default=None, allow_none=True, strict=True, validate=Range(min=1))


class ReminderOut(Schema):
    sent = fields.Integer()
    learner_ids = fields.List(fields.Integer())


@api.get("/courses/<int:course_id>/board")
@roles_required(*service.BOARD_ROLES)
@api.input(BoardQuery, location="query", arg_name="query")
def course_board(course_id, query):
    """Live progress board (CRS-11): per learner this week's progress, lessons attended,
    absent, excused, pending, at risk (not complete, deadline within 3 days) and the last
    access IP and time. Staff of the course, admins and inspectors. ``format=csv`` (UTF-8
    with BOM) or ``format=xlsx`` downloads the same rows."""
    board = service.board_for(course_id, current_auth().user, section_id=query["section_id"],
                              sort=query["sort"], order=query["order"])
    fmt = query["format"]
    if fmt == "json":
        return board.as_dict(query["sort"], query["order"])
    if fmt == "csv":
        body, mimetype = service.board_csv(board), "text/csv; charset=utf-8"
    else:
        body, mimetype = service.board_xlsx(board), XLSX_MIMETYPE
    name = service.export_filename(board, fmt)
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@api.post("/courses/<int:course_id>/reminders")
@roles_required(*service.REMINDER_ROLES)
@api.input(ReminderIn, arg_name="body")
@api.output(ReminderOut)
def send_reminders(course_id, body):
    """CRS-8: urge attendance — an in-app notice and an e-mail (outbox) to every learner
    with a lesson at risk. TAs and instructors of the course, admins."""
    return service.send_reminders(course_id, current_auth().user, section_id=body.get("section_id"),
                                  link=_reminder_link(course_id))


def _reminder_link(course_id: int) -> str:
    """Where the reminder takes the learner: the course's page (lessons, player) when the
    content pages are installed, else their status list."""
    if "content_pages.course_page" in current_app.view_functions:
        return url_for("content_pages.course_page", course_id=course_id)
    return url_for("attendance_pages.my_attendance", _anchor=f"course-{course_id}")


bp.register_blueprint(api)


# --- pages -----------------------------------------------------------------------------

def _arg_int(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else None


@bp.route("/courses/<int:course_id>/board")
@page_roles_required(*service.BOARD_ROLES)
def board_page(course_id):
    user = current_auth().user
    sort = request.args.get("sort") if request.args.get("sort") in service.SORT_KEYS else "name"
    order = request.args.get("order") if request.args.get("order") in service.ORDERS else "asc"
    refresh = min(MAX_REFRESH_SECONDS, max(MIN_REFRESH_SECONDS, _arg_int("refresh") or MAX_REFRESH_SECONDS))
    board = service.board_for(course_id, user, section_id=_arg_int("section_id"), sort=sort, order=order)
    return render_template(
        "board.html", board=board, sort=sort, order=order, refresh_ms=refresh * 1000,
        can_remind=user.role in service.REMINDER_ROLES, window_days=rules.AT_RISK_WINDOW.days,
        api_url=url_for("attendance_pages.attendance_board_api.course_board", course_id=course_id),
        reminder_url=url_for("attendance_pages.attendance_board_api.send_reminders", course_id=course_id),
        updated_text=clock.to_kst(board.now).strftime("%Y-%m-%d %H:%M:%S"))


@bp.route("/staff/courses")
@page_roles_required(*service.BOARD_ROLES)
def staff_courses():
    user = current_auth().user
    return render_template("board_courses.html", courses=service.board_courses(user), now=clock.now())


def learner_dashboard_panel(user) -> str:
    """The learner's home page shows every lesson's status and deadline (issue: the
    learner's own dashboard), as /my/attendance does."""
    now = clock.now()
    return render_template("_my_lessons.html", courses=service.learner_status(user, now=now), now=now)


DASHBOARD_PANELS = {"learner": [learner_dashboard_panel]}


@bp.route("/my/attendance")
@page_roles_required("learner")
def my_attendance():
    now = clock.now()
    return render_template("board_my_attendance.html", courses=service.learner_status(current_auth().user, now=now),
                           now=now, window_days=rules.AT_RISK_WINDOW.days)
