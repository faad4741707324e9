"""JSON API of the compliance report (issue 6, item 4) — administrators and inspectors of
the course's institution.

- ``GET /api/v1/courses/{id}/compliance`` → the report now: ``{"course", "term",
  "generated_at", "counts", "verdicts": [{"rule", "status", "summary", "evidence"}]}``
  (status ∈ pass, fail, na, not_checkable; every rule ID of RULES.md once)
- ``POST /api/v1/courses/{id}/compliance/reports`` → 201: generates the PDF, keeps it as
  evidence and answers ``{"id", "term", "generated_at", "counts", "pdf_sha256", "pdf_size"}``
- ``GET /api/v1/courses/{id}/compliance/reports`` → the stored reports, newest first
- ``GET /api/v1/compliance-reports/{id}/pdf`` → the stored PDF (``X-Content-SHA256``)
- ``GET /api/v1/compliance/courses?term=2027-1`` → the institution's courses with their term
  (``YYYY-1`` Mar–Aug, ``YYYY-2`` Sep–Feb, by start date) and latest stored report
"""
from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, request

from lms.audit import compliance
from lms.errors import ApiError
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


@bp.get("/compliance/courses")
@roles_required(*compliance.REPORT_ROLES)
def term_courses():
    term = request.args.get("term") or None
    if term is not None and not compliance.valid_term(term):
        raise ApiError(400, "invalid_request", "term: YYYY-1 (March–August) or YYYY-2 (September–February)")
    out = []
    for course, t in compliance.institution_courses(current_auth().user, term):
        latest = compliance.stored_reports(course)[:1]
        out.append({"id": course.id, "code": course.code, "title": course.title, "term": t,
                    "starts_on": course.starts_on.isoformat(), "weeks": course.weeks, "status": course.status,
                    "latest_report": compliance.stored_dict(latest[0]) if latest else None})
    return {"term": term, "courses": out}
