"""Pages of proxy-attendance detection (issue 6, item 5).

- ``/audit/proxy/courses/<id>?from=&to=``: the findings, each linking to its raw rows
- ``/audit/raw/<table>?ids=``: the raw log rows (and their evidence rows)
"""
from __future__ import annotations

from flask import Blueprint, render_template, request

from lms.audit import proxy
from lms.audit.proxy_api import ROLES, period_args
from lms.i18n import N_
from lms.security import current_auth, page_roles_required

bp = Blueprint("audit_proxy_pages", __name__, template_folder="templates")

DASHBOARD_LINKS = {
    "admin": [("audit_proxy_pages.index", N_("대리출석 의심 보고서"))],
    "inspector": [("audit_proxy_pages.index", N_("대리출석 의심 보고서"))],
    "instructor": [("audit_proxy_pages.index", N_("대리출석 의심 보고서"))],
    "ta": [("audit_proxy_pages.index", N_("대리출석 의심 보고서"))],
}


@bp.route("/audit/proxy")
@page_roles_required(*ROLES)
def index():
    from lms.audit.compliance import institution_courses
    from lms.content.service import staff_roles

    user = current_auth().user
    courses = [c for c, _t in institution_courses(user)
               if user.role in proxy.READ_ROLES or staff_roles(c.id, user.id) & set(proxy.STAFF)]
    return render_template("audit/proxy_index.html", courses=courses)


@bp.route("/audit/proxy/courses/<int:course_id>")
@page_roles_required(*ROLES)
def course_page(course_id):
    user = current_auth().user
    course = proxy.course_for_detection(course_id, user)
    since, until = period_args()
    rep = proxy.report(course, user, since=since, until=until)
    return render_template("audit/proxy_course.html", course=course, rep=rep, counts=proxy.counts(rep),
                           args={"from": request.args.get("from", ""), "to": request.args.get("to", "")})


@bp.route("/audit/raw/<table>")
@page_roles_required(*ROLES)
def raw_rows(table):
    data = proxy.raw_rows(table, proxy.parse_ids(request.args.get("ids")), current_auth().user)
    return render_template("audit/raw_rows.html", data=data)
