"""JSON API of the compliance report (issue 6, item 4) — administrators and inspectors of
the course's institution.

- ``GET /api/v1/courses/{id}/compliance`` → the report now: ``{"course", "term",
  "generated_at", "counts", "verdicts": [{"rule", "status", "summary", "evidence"}]}``
  (status ∈ pass, fail, na, not_checkable; every rule ID of RULES.md once)
- ``POST /api/v1/courses/{id}/compliance/reports`` → 201: generates the PDF, keeps it as
  evidence and answers ``{"id", "term", "generated_at", "counts", "pdf_sha256", "pdf_size"}``
- ``GET /api/v1/courses/{id}/compliance/reports`` → the stored reports, newest first
- ``GET /api/v1/compliance-reports/{id}/pdf`` → the stored PDF (``X-Content-SHA256``)
"""
from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response

from lms.audit import compliance
from lms.security import current_auth, roles_required

bp = APIBlueprint("audit_compliance_api", __name__, url_prefix="/api/v1", tag="Audit")


@bp.get("/courses/<int:course_id>/compliance")
@roles_required(*compliance.REPORT_ROLES)
def course_compliance(course_id):
    course = compliance.course_for_report(course_id, current_auth().user)
    return compliance.report_json(compliance.build(course))


@bp.post("/courses/<int:course_id>/compliance/reports")
@roles_required(*compliance.REPORT_ROLES)
def generate_report(course_id):
    user = current_auth().user
    course = compliance.course_for_report(course_id, user)
    return compliance.stored_dict(compliance.store_pdf(course, user)), 201


@bp.get("/courses/<int:course_id>/compliance/reports")
@roles_required(*compliance.REPORT_ROLES)
def list_reports(course_id):
    course = compliance.course_for_report(course_id, current_auth().user)
    return {"reports": [compliance.stored_dict(r) for r in compliance.stored_reports(course)]}


def pdf_response(row) -> Response:
    resp = Response(compliance.pdf_bytes(row), mimetype="application/pdf")
    resp.headers["Content-Disposition"] = f'attachment; filename="compliance-{row.course_id}-{row.id}.pdf"'
    resp.headers["X-Content-SHA256"] = row.pdf_sha256
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/compliance-reports/<int:report_id>/pdf")
@roles_required(*compliance.REPORT_ROLES)
def report_pdf(report_id):
    return pdf_response(compliance.stored_report(report_id, current_auth().user))
