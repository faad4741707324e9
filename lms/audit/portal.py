"""The inspectors' portal (REC-3, REC-6): pages over the same search as the Logs API.

``/inspect`` — the portal's home: the institution, the account's expiry, what can be
searched, the institution's courses and classes (their numbers are the filters' values);
``/inspect/<kind>`` — a search form per log (access, views, view-events, exams), a results
table with a cursor pager (previous/next) and CSV/XLSX buttons that download exactly the
filtered rows through the API. Every search is written to the access log before it runs.
Admins use the same pages for their institution.
"""
from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from lms import clock
from lms.audit import logsearch
from lms.audit.filters import ALLOWED, FilterError, parse_filters
from lms.auth.models import ROLES, Institution, User
from lms.content.models import Course, Section
from lms.db import db
from lms.errors import ApiError
from lms.i18n import N_
from lms.security import current_auth, page_roles_required

bp = Blueprint("audit_portal", __name__, template_folder="templates")

DASHBOARD_LINKS = {
    "inspector": [("audit_portal.home", N_("기록 열람 (점검)"))],
    "admin": [("audit_portal.home", N_("접속·학습·시험 기록 열람"))],
}

# What each log is, in the portal's words.
DESCRIPTIONS = {
    "access": N_("로그인·로그아웃·실패와 모든 요청의 일시, 사용자, 역할, IP, 기기, 경로"),
    "views": N_("차시별 학습(시청) 세션: 시작·종료 일시, IP, 기기, 인정 시간"),
    "view-events": N_("학습 로그의 모든 이벤트: 시작, 진도 보고(주장·인정 구간), 확인 코드, 종료"),
    "exams": N_("시험 응시 증거: 시작, 답안 저장, IP·기기 변경, 차단, 부정행위 의심 사건, 제출, 채점"),
}
# Columns the results table leaves out (they stay in the exports).
HIDDEN_COLUMNS = {"user_agent", "claimed", "credited", "answer"}
# Arguments of the pages that are not filters of the search.
PAGE_ARGS = ("run", "username")


def _institution_courses(inst_id: int):
    courses = db.session.scalars(select(Course).where(Course.institution_id == inst_id)
                                 .order_by(Course.starts_on.desc(), Course.id)).all()
    sections = db.session.scalars(select(Section).where(Section.course_id.in_([c.id for c in courses]))
                                  .order_by(Section.id)).all() if courses else []
    by_course: dict[int, list] = {}
    for s in sections:
        by_course.setdefault(s.course_id, []).append(s)
    return courses, by_course


@bp.route("/inspect")
@page_roles_required(*logsearch.SEARCH_ROLES)
def home():
    user = current_auth().user
    institution = db.session.get(Institution, user.institution_id)
    courses, sections = _institution_courses(user.institution_id)
    expires_at = db.session.scalar(select(User.expires_at).where(User.id == user.id))
    return render_template("portal_home.html", institution=institution, expires_at=expires_at,
                           specs=logsearch.SPECS, descriptions=DESCRIPTIONS, courses=courses, sections=sections)


@bp.route("/inspect/<kind>")
@page_roles_required(*logsearch.SEARCH_ROLES)
def search(kind):
    if kind not in logsearch.SPECS:
        abort(404)
    auth = current_auth()
    spec = logsearch.SPECS[kind]
    courses, sections = _institution_courses(auth.user.institution_id)
    person_key = "user_id" if kind == "access" else "learner_id"
    form = {k: v for k, v in request.args.items() if v.strip()}
    error = None
    page = None
    status = 200
    query: dict[str, str] = {}
    if request.args.get("run"):
        args = {k: v for k, v in form.items() if k not in PAGE_ARGS}
        try:
            username = form.get("username", "").strip()
            if username:
                uid = db.session.scalar(select(User.id).where(User.username == username[:64],
                                                              User.institution_id == auth.user.institution_id))
                if uid is None:
                    raise FilterError("username", _("이 기관에 그런 아이디가 없습니다."))
                if args.get(person_key) and args[person_key].strip() != str(uid):
                    raise FilterError("username", _("아이디와 사용자 번호가 서로 다릅니다."))
                args[person_key] = str(uid)
            f = parse_filters(kind, args, roles=ROLES)
            if f.format is not None:
                raise FilterError("format", _("내려받기는 CSV/XLSX 단추를 쓰세요."))
            scope = logsearch.resolve_scope(f, auth.user.institution_id)
        except FilterError as exc:
            error = exc.message if exc.param == "username" else _("검색 조건이 올바르지 않습니다: %(e)s", e=str(exc))
            status = 400
        except ApiError as exc:
            error, status = exc.message, exc.status
        else:
            logsearch.log_search(auth.user, auth.session.id, f)
            page = logsearch.search_page(f, scope)
            query = {k: v for k, v in f.given.items() if k != "cursor"}
    columns = [c for c in spec.columns if c.key not in HIDDEN_COLUMNS]
    shown = [i for i, c in enumerate(spec.columns) if c.key not in HIDDEN_COLUMNS]
    rows = [[_cell(spec.columns[i], r[i]) for i in shown] for r in page.rows] if page else []

    def link(**extra):
        return url_for("audit_portal.search", kind=kind) + "?" + urlencode({**query, "run": "1", **extra})

    def export_link(fmt):
        return url_for("audit_logs_api." + _API_ENDPOINTS[kind]) + "?" + urlencode(
            {**query, "format": fmt, "header": "labels"})

    return render_template(
        "portal_search.html", kind=kind, spec=spec, description=DESCRIPTIONS[kind], form=form, error=error,
        page=page, columns=columns, rows=rows, allowed=ALLOWED[kind], person_key=person_key,
        courses=courses, sections=sections, roles=ROLES, link=link, export_link=export_link,
        searched=page is not None), status


_API_ENDPOINTS = {"access": "access_logs", "views": "view_logs", "view-events": "view_event_logs",
                  "exams": "exam_logs"}


def _cell(col, value):
    if value is None:
        return ""
    if col.kind == "time":
        return clock.to_kst(value).strftime("%Y-%m-%d %H:%M:%S")
    if col.kind == "float":
        return f"{value:g}"
    return value
