"""Pages of the compliance report (issue 6, item 4) for administrators and inspectors.

- ``/audit/compliance?term=``: the institution's courses by term
- ``/audit/compliance/courses/<id>``: every rule's verdict with its evidence; "PDF 생성"
  keeps a PDF copy (SHA-256 shown) for the inspection file
- ``/audit/compliance/reports/<id>.pdf``: a stored PDF
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from lms.audit import compliance, compliance_pdf
from lms.audit.compliance_api import pdf_response
from lms.i18n import N_
from lms.security import current_auth, page_roles_required

bp = Blueprint("audit_compliance_pages", __name__, template_folder="templates")

DASHBOARD_LINKS = {
    "admin": [("audit_compliance_pages.index", N_("운영 점검 보고서"))],
    "inspector": [("audit_compliance_pages.index", N_("운영 점검 보고서"))],
}
STATUS_LABELS = {"pass": N_("적합"), "fail": N_("부적합"), "na": N_("해당 없음"),
                 "not_checkable": N_("데이터로 확인 불가")}


def _labels() -> dict:
    return {"status_label": lambda s: _(STATUS_LABELS[s]) if s in STATUS_LABELS else s,
            "evidence_text": compliance_pdf.evidence_text}


@bp.route("/audit/compliance")
@page_roles_required(*compliance.REPORT_ROLES)
def index():
    user = current_auth().user
    term = request.args.get("term") or None
    courses = compliance.institution_courses(user)
    terms = sorted({t for _c, t in courses}, reverse=True)
    shown = [(c, t) for c, t in courses if term is None or t == term]
    return render_template("audit/compliance_index.html", courses=shown, terms=terms, term=term)


@bp.route("/audit/compliance/courses/<int:course_id>", methods=["GET", "POST"])
@page_roles_required(*compliance.REPORT_ROLES)
def course_report(course_id):
    user = current_auth().user
    course = compliance.course_for_report(course_id, user)
    if request.method == "POST":
        row = compliance.store_pdf(course, user)
        flash(_("PDF 보고서 #%(id)s을 보관했습니다 (SHA-256 %(sha)s).", id=row.id, sha=row.pdf_sha256), "info")
        return redirect(url_for("audit_compliance_pages.course_report", course_id=course.id), 303)
    report = compliance.build(course)
    return render_template("audit/compliance_course.html", course=course, report=report,
                           stored=compliance.stored_reports(course), **_labels())


@bp.route("/audit/compliance/reports/<int:report_id>.pdf")
@page_roles_required(*compliance.REPORT_ROLES)
def report_pdf(report_id):
    return pdf_response(compliance.stored_report(report_id, current_auth().user))
