"""Registration, fees and refunds, the learner register, certificates: the JSON API.

- ``GET /courses/{id}/registration`` — the period (regular/late/closed), deadlines, the
  fee and the caller's credit totals (ENR-1, ENR-3, ENR-4)
- ``GET /me/credits`` — the learner's credits per year and half (ENR-3)
- ``POST /enrollments/{id}/move`` ``{"section_id"}`` (admin, CRS-7)
- ``POST /enrollments/{id}/cancel`` ``{"reason", "unavoidable"}`` (admin; ENR-1 late right)
- ``POST /courses/{id}/cancel`` ``{"reason"}`` (admin, CRS-14: 422 above 10 registrations)
- ``GET|PUT /courses/{id}/fee`` ``{"amount", "lab_fee"}`` (ENR-4)
- ``GET|POST /enrollments/{id}/payments`` ``{"amount", "method", "note"}`` (admin); the GET
  carries ``payment`` (ENR-1: state, deadline, outstanding, complete)
- ``POST /enrollments/{id}/fee-waiver`` ``{"reason"}`` (admin, ENR-1: recorded in the history)
- ``POST /enrollments/{id}/refund-quote`` ``{"cause", "cause_at", "overpaid"}`` → the table row
- ``POST /enrollments/{id}/refunds`` (same body) → 201; ``POST /refunds/{id}/paid`` ``{"method"}``
- ``GET /refunds?overdue=true`` (admin)
- ``GET /me/register``, ``GET /learners/{id}/register`` (admin, inspector) (ENR-5, REC-2)
- ``POST /me/register/corrections`` (multipart ``field``, ``value``, ``reason``, ``files``)
- ``GET /register-corrections?status=``; ``POST /register-corrections/{id}/decision``
- ``POST /me/certificates`` → 201 ``{"code", "pdf_url", "verify_url", "pdf_sha256"}``;
  ``GET /certificates/{code}/pdf``; ``GET /verify/{code}`` (public)
"""
from __future__ import annotations

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Length, OneOf, Range
from flask import Response, request, url_for

from lms import clock
from lms.content.service import get_course
from lms.db import db
from lms.enrolment import certificate, fees, register, rules, service
from lms.errors import ApiError, not_found
from lms.schemas import AwareDateTime, DecisionIn, StrictBool, StrictInt
from lms.security import current_auth, roles_required

bp = APIBlueprint("enrolment_api", __name__, url_prefix="/api/v1", tag="Registration")

_UPLOAD_ENDPOINTS = {"enrolment_api.apply_correction"}


@bp.before_request
def _upload_limit():
    if request.endpoint in _UPLOAD_ENDPOINTS and request.method == "POST":
        from lms.uploads import max_file_bytes

        request.max_content_length = register.MAX_EVIDENCE_FILES * max_file_bytes("REGISTER_MAX_FILE_BYTES") \
            + 256 * 1024


class MoveIn(Schema):
    section_id = StrictInt(required=True, validate=Range(min=1, max=2**31 - 1))


class CancelEnrollmentIn(Schema):
    reason = fields.String(required=True, validate=Length(1, 500))
    unavoidable = StrictBool(load_default=False)


class CancelCourseIn(Schema):
    reason = fields.String(required=True, validate=Length(1, 500))


class FeeIn(Schema):
    amount = StrictInt(required=True, validate=Range(min=0, max=fees.MAX_FEE))
    lab_fee = StrictInt(load_default=0, validate=Range(min=0, max=fees.MAX_FEE))


class PaymentIn(Schema):
    amount = StrictInt(required=True, validate=Range(min=1, max=fees.MAX_FEE))
    method = fields.String(required=True, validate=OneOf(fees.PAYMENT_METHODS))
    paid_at = AwareDateTime(load_default=None)
    note = fields.String(load_default=None, validate=Length(0, 500))


class RefundIn(Schema):
    cause = fields.String(required=True, validate=OneOf(rules.CAUSES))
    cause_at = AwareDateTime(load_default=None)
    overpaid = StrictInt(load_default=0, validate=Range(min=0, max=fees.MAX_FEE))


class WaiverIn(Schema):
    reason = fields.String(required=True, validate=Length(1, 500))


class RefundPaidIn(Schema):
    method = fields.String(required=True, validate=OneOf(fees.PAYMENT_METHODS))


class RefundListQuery(Schema):
    overdue = fields.Boolean(load_default=False)


class CorrectionIn(Schema):
    field = fields.String(required=True, validate=OneOf(register.FIELDS))
    value = fields.String(required=True, validate=Length(1, register.MAX_VALUE_CHARS))
    reason = fields.String(required=True, validate=Length(1, register.MAX_REASON_CHARS))
    files = fields.List(fields.File(), required=True, validate=Length(1, register.MAX_EVIDENCE_FILES))


class CorrectionListQuery(Schema):
    status = fields.String(load_default=None, validate=OneOf((register.PENDING, register.APPROVED,
                                                              register.REJECTED)))


def registration_info(course, user) -> dict:
    now = clock.now()
    info = {
        "course_id": course.id, "period": rules.registration_period(course.starts_on, now),
        "registration_deadline": clock.iso(rules.registration_deadline(course.starts_on)),
        "late_registration_until": clock.iso(rules.late_registration_deadline(course.starts_on)),
        "starts_on": course.starts_on.isoformat(),
        "ends_on": rules.course_ends_on(course.starts_on, course.weeks).isoformat(),
        "credits": course.credits, "capacity": course.capacity, "registered": service.active_count(course.id),
        "fee": fees.fee_dict(fees.current_fee(course.id)),
    }
    if user.role == "learner":
        info["credit_totals"] = service.credit_totals(user.id)
        info["late_right"] = service.open_late_right(user.id) is not None
        from sqlalchemy import select

        from lms.enrolment.models import Enrollment

        mine = db.session.scalar(select(Enrollment).where(Enrollment.course_id == course.id,
                                                          Enrollment.user_id == user.id))
        info["payment"] = fees.payment_status_dict(fees.payment_status(mine)) if mine is not None \
            and mine.status == "active" else None
    return info


@bp.get("/courses/<int:course_id>/registration")
@roles_required()
def get_registration(course_id):
    user = current_auth().user
    return registration_info(get_course(course_id, user), user)


@bp.get("/me/credits")
@roles_required("learner")
def my_credits():
    """ENR-3: credits per year (Mar–Feb) and half (Mar–Aug, Sep–Feb) by course end date."""
    return {"caps": {"year": rules.YEAR_CREDIT_CAP, "half": rules.HALF_CREDIT_CAP},
            "totals": service.credit_totals(current_auth().user.id)}


@bp.post("/enrollments/<int:enrollment_id>/move")
@roles_required("admin")
@bp.input(MoveIn, arg_name="body")
def move(enrollment_id, body):
    user = current_auth().user
    e = service.move(service.get_enrollment(enrollment_id, user), section_id=body["section_id"], actor=user)
    db.session.commit()
    return service.enrollment_dict(e)


@bp.post("/enrollments/<int:enrollment_id>/cancel")
@roles_required("admin")
@bp.input(CancelEnrollmentIn, arg_name="body")
def cancel_enrollment(enrollment_id, body):
    user = current_auth().user
    e = service.cancel_enrollment(service.get_enrollment(enrollment_id, user), actor=user, reason=body["reason"],
                                  unavoidable=body["unavoidable"])
    db.session.commit()
    return {**service.enrollment_dict(e), "cancel_reason": e.cancel_reason, "late_right": body["unavoidable"]}


@bp.post("/courses/<int:course_id>/cancel")
@roles_required("admin")
@bp.input(CancelCourseIn, arg_name="body")
def cancel_course(course_id, body):
    """CRS-14: cancel (폐강) a course with 10 or fewer registrations."""
    user = current_auth().user
    course = get_course(course_id, user)
    out = service.cancel_course(course, actor=user, reason=body["reason"])
    db.session.commit()
    return out


@bp.get("/courses/<int:course_id>/fee")
@roles_required()
def get_fee(course_id):
    course = get_course(course_id, current_auth().user)
    row = fees.current_fee(course.id)
    if row is None:
        raise not_found("fee")
    return fees.fee_dict(row)


@bp.put("/courses/<int:course_id>/fee")
@roles_required("admin")
@bp.input(FeeIn, arg_name="body")
def put_fee(course_id, body):
    user = current_auth().user
    row = fees.publish_fee(get_course(course_id, user), amount=body["amount"], lab_fee=body["lab_fee"], actor=user)
    db.session.commit()
    return fees.fee_dict(row)


@bp.get("/enrollments/<int:enrollment_id>/payments")
@roles_required("admin")
def list_payments(enrollment_id):
    from sqlalchemy import select

    from lms.enrolment.models import Payment, Refund

    e = service.get_enrollment(enrollment_id, current_auth().user)
    pays = db.session.scalars(select(Payment).where(Payment.enrollment_id == e.id).order_by(Payment.id))
    refs = db.session.scalars(select(Refund).where(Refund.enrollment_id == e.id).order_by(Refund.id))
    return {"payments": [fees.payment_dict(p) for p in pays], "refunds": [fees.refund_dict(r) for r in refs],
            "paid": fees.paid_total(e.id), "net_paid": fees.net_paid(e.id),
            "payment": fees.payment_status_dict(fees.payment_status(e))}


@bp.post("/enrollments/<int:enrollment_id>/fee-waiver")
@roles_required("admin")
@bp.input(WaiverIn, arg_name="body")
def waive_fee(enrollment_id, body):
    """ENR-1: waive one registration's fee with the reason recorded (never cancelled as unpaid)."""
    user = current_auth().user
    e = service.get_enrollment(enrollment_id, user)
    st = fees.waive_fee(e, reason=body["reason"], actor=user)
    db.session.commit()
    return fees.payment_status_dict(st)


@bp.post("/enrollments/<int:enrollment_id>/payments")
@roles_required("admin")
@bp.input(PaymentIn, arg_name="body")
def add_payment(enrollment_id, body):
    user = current_auth().user
    e = service.get_enrollment(enrollment_id, user)
    row = fees.record_payment(e, amount=body["amount"], method=body["method"], actor=user, paid_at=body["paid_at"],
                              note=body["note"])
    db.session.commit()
    return fees.payment_dict(row), 201


@bp.post("/enrollments/<int:enrollment_id>/refund-quote")
@roles_required("admin")
@bp.input(RefundIn, arg_name="body")
def refund_quote(enrollment_id, body):
    """ENR-4 calculator: the table row used, the share and the amount (nothing written)."""
    e = service.get_enrollment(enrollment_id, current_auth().user)
    at = body["cause_at"] or clock.now()
    result = fees.quote(e, cause=body["cause"], cause_at=at, overpaid=body["overpaid"])
    return fees.quote_dict(e, result, body["cause"], at)


@bp.post("/enrollments/<int:enrollment_id>/refunds")
@roles_required("admin")
@bp.input(RefundIn, arg_name="body")
def create_refund(enrollment_id, body):
    user = current_auth().user
    e = service.get_enrollment(enrollment_id, user)
    row = fees.create_refund(e, cause=body["cause"], cause_at=body["cause_at"] or clock.now(), actor=user,
                             overpaid=body["overpaid"])
    db.session.commit()
    return fees.refund_dict(row), 201


@bp.post("/refunds/<int:refund_id>/paid")
@roles_required("admin")
@bp.input(RefundPaidIn, arg_name="body")
def refund_paid(refund_id, body):
    user = current_auth().user
    row = fees.mark_refunded(fees.get_refund(refund_id, user), method=body["method"], actor=user)
    db.session.commit()
    return fees.refund_dict(row)


@bp.get("/refunds")
@roles_required("admin")
@bp.input(RefundListQuery, location="query", arg_name="query")
def list_refunds(query):
    user = current_auth().user
    now = clock.now()
    rows = fees.institution_refunds(user.institution_id, overdue_only=query["overdue"])
    return {"refunds": [{**fees.refund_dict(r, now), "course_id": c.id, "learner_id": u.id}
                        for r, _e, c, u in rows]}


@bp.get("/me/register")
@roles_required("learner")
def my_register():
    user = current_auth().user
    return register.register_dict(register.register_for(user.id, user))


@bp.get("/learners/<int:user_id>/register")
@roles_required("admin", "inspector")
def learner_register(user_id):
    return register.register_dict(register.register_for(user_id, current_auth().user))


@bp.post("/me/register/corrections")
@roles_required("learner")
@bp.input(CorrectionIn, location="form_and_files", arg_name="body")
def apply_correction(body):
    user = current_auth().user
    uploads = [register.Upload(f.filename or "", f.stream) for f in body["files"]]
    row = register.apply_correction(user, field=body["field"], value=body["value"], reason=body["reason"],
                                    files=uploads)
    return register.correction_dict(row), 201


@bp.get("/register-corrections")
@roles_required("admin", "inspector", "learner")
@bp.input(CorrectionListQuery, location="query", arg_name="query")
def list_corrections(query):
    user = current_auth().user
    if user.role == "learner":
        reg = register.get_register(user.id)
        rows = register.corrections(register_id=reg.id, status=query["status"]) if reg else []
    else:
        rows = register.corrections(institution_id=user.institution_id, status=query["status"])
    return {"corrections": [register.correction_dict(r) for r in rows]}


@bp.post("/register-corrections/<int:correction_id>/decision")
@roles_required("admin")
@bp.input(DecisionIn, arg_name="body")
def decide_correction(correction_id, body):
    user = current_auth().user
    row = register.decide(register.get_correction(correction_id, user), approve=body["approve"],
                          comment=body["comment"], actor=user)
    db.session.commit()
    return register.correction_dict(row)


@bp.get("/register-corrections/<int:correction_id>/evidence/<int:evidence_id>")
@roles_required()
def correction_evidence(correction_id, evidence_id):
    from lms.uploads import send_evidence

    row = register.get_correction(correction_id, current_auth().user)
    for ev in register.evidence(row.id):
        if ev.id == evidence_id:
            return send_evidence(ev)
    raise not_found("evidence")


def verify_url(code: str) -> str:
    return url_for("enrolment_pages.verify_code", code=code, _external=True)


@bp.post("/me/certificates")
@roles_required("learner")
def issue_certificate():
    """Issue a learning-history certificate now (stored with its PDF's SHA-256)."""
    user = current_auth().user
    cert, _pdf = certificate.issue(user, verify_url)
    db.session.commit()
    return {**certificate.certificate_dict(cert), "verify_url": verify_url(cert.code),
            "pdf_url": url_for("enrolment_api.certificate_pdf", code=cert.code)}, 201


@bp.get("/certificates/<code>/pdf")
@roles_required("learner", "admin")
def certificate_pdf(code):
    cert = certificate.own_certificate(code, current_auth().user)
    pdf = certificate.render_pdf(cert, verify_url(cert.code))
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="certificate-{cert.code}.pdf"',
        "X-Certificate-SHA256": cert.pdf_sha256, "Cache-Control": "no-store"})


@bp.get("/verify/<code>")
def verify_api(code):
    """Public: what a valid code certifies (holder's masked name, issue date, courses)."""
    cert = certificate.by_code(code)
    if cert is None:
        raise ApiError(404, "not_valid", "no certificate has this code")
    return {"valid": True, **certificate.certificate_dict(cert)}
