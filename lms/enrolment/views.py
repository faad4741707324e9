"""Registration pages (Korean).

Learner:  /registration (open courses, credit totals), /courses/<id>/register (syllabus,
          consent checkbox, deadlines, fee, credit totals per year/half; ENR-1…3),
          /my/register (학적부 and correction applications with evidence), /my/certificate
Admin:    /admin/registrations (courses: fee, registrations), /admin/courses/<id>/registrations
          (move between classes, cancel a registration, CRS-14 course cancellation),
          /admin/enrollments/<id>/payments (payments, the ENR-4 refund calculator showing the
          table row used, refunds), /admin/refunds (overdue first), /admin/register-corrections,
          /admin/learners/<id>/register
Public:   /verify, /verify/<code> (certificate check, no login)
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from lms import clock
from lms.auth.models import User
from lms.content import service as content
from lms.content.models import Course, Section
from lms.db import db
from lms.enrolment import certificate, fees, register, rules, service
from lms.enrolment.models import Certificate, Enrollment, Payment, Refund
from lms.errors import ApiError
from lms.i18n import N_
from lms.security import current_auth, page_roles_required

bp = Blueprint("enrolment_pages", __name__, template_folder="templates")

DASHBOARD_LINKS = {
    "learner": [("enrolment_pages.catalog", N_("수강신청")), ("enrolment_pages.my_register", N_("학적부")),
                ("enrolment_pages.my_certificate", N_("평생학습이력증명서"))],
    "admin": [("enrolment_pages.admin_registrations", N_("수강등록·학습비 관리")),
              ("enrolment_pages.admin_refunds", N_("학습비 반환")),
              ("enrolment_pages.admin_corrections", N_("학적부 정정 신청"))],
    "inspector": [("enrolment_pages.admin_corrections", N_("학적부 정정 신청"))],
}

KIND_LABELS = {"regular": N_("정규 등록"), "late": N_("추가 등록"), "admin_override": N_("관리자 직권 등록")}
PERIOD_LABELS = {"regular": N_("수강신청 기간"), "late": N_("추가 등록 기간"), "closed": N_("마감")}
PAYMENT_LABELS = {"no_fee": N_("학습비 미공고"), "free": N_("무료"), "waived": N_("면제"), "paid": N_("납부 완료"),
                  "partial": N_("일부 납부"), "unpaid": N_("미납")}
STATUS_LABELS = {"active": N_("수강 중"), "cancelled": N_("취소"), "completed": N_("이수"),
                 "pending": N_("심사 중"), "approved": N_("승인"), "rejected": N_("반려")}


@bp.app_context_processor
def _labels():
    return {"kind_label": lambda k: _(KIND_LABELS[k]) if k in KIND_LABELS else (k or ""),
            "period_label": lambda p: _(PERIOD_LABELS[p]) if p in PERIOD_LABELS else p,
            "reg_status_label": lambda s: _(STATUS_LABELS[s]) if s in STATUS_LABELS else s,
            "field_label": lambda f: _(register.FIELD_LABELS[f]) if f in register.FIELD_LABELS else f,
            "cause_label": lambda c: _(fees.CAUSE_LABELS[c]) if c in fees.CAUSE_LABELS else c,
            "method_label": lambda m: _(fees.METHOD_LABELS[m]) if m in fees.METHOD_LABELS else (m or ""),
            "row_label": lambda r: _(rules.REFUND_ROW_LABELS[r]) if r in rules.REFUND_ROW_LABELS else r,
            "pay_label": lambda st: _(PAYMENT_LABELS[st]) if st in PAYMENT_LABELS else st,
            "deadline_text": lambda d: clock.to_kst(d - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
            if d else "",
            "won": lambda n: f"{int(n or 0):,}"}


def overdue_refunds_panel(user) -> str:
    """Admin home page: refunds unpaid past their 5-day due date (ENR-4)."""
    rows = fees.institution_refunds(user.institution_id, overdue_only=True)
    return render_template("enrolment/_overdue_refunds.html", rows=rows)


DASHBOARD_PANELS = {"admin": [overdue_refunds_panel]}


def _form_error(exc: ApiError):
    db.session.rollback()
    flash(exc.message, "error")


def _int(name: str, *, required: bool = True) -> int | None:
    raw = (request.form.get(name) or "").strip().replace(",", "")
    if not raw and not required:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_request", _("%(f)s 항목은 정수여야 합니다.", f=name)) from None
    if value < 0 or value > fees.MAX_FEE:
        raise ApiError(400, "invalid_request", _("%(f)s 항목의 값이 범위를 벗어났습니다.", f=name))
    return value


def _text(name: str, limit: int) -> str:
    value = (request.form.get(name) or "").strip()
    if not value:
        raise ApiError(400, "invalid_request", _("%(f)s 항목을 입력하세요.", f=name))
    return value[:limit]


def _kst_input(name: str) -> datetime:
    """A ``datetime-local`` field read as KST (empty: now)."""
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return clock.now()
    try:
        t = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "invalid_request", _("%(f)s 항목은 날짜와 시각이어야 합니다.", f=name)) from None
    return t.replace(tzinfo=clock.KST) if t.tzinfo is None else t


# --- learner: registration --------------------------------------------------------------

@bp.route("/registration")
@page_roles_required("learner")
def catalog():
    user = current_auth().user
    now = clock.now()
    courses = list(db.session.scalars(select(Course).where(Course.institution_id == user.institution_id,
                                                           Course.status == "published")
                                      .order_by(Course.starts_on, Course.code)))
    mine = set(db.session.scalars(select(Enrollment.course_id).where(Enrollment.user_id == user.id,
                                                                      Enrollment.status == "active")))
    rows = [{"course": c, "period": rules.registration_period(c.starts_on, now), "enrolled": c.id in mine,
             "ends_on": rules.course_ends_on(c.starts_on, c.weeks), "fee": fees.current_fee(c.id)}
            for c in courses]
    rows = [r for r in rows if r["period"] != "closed" or r["enrolled"]]
    return render_template("enrolment/catalog.html", rows=rows, totals=service.credit_totals(user.id),
                           caps=(rules.YEAR_CREDIT_CAP, rules.HALF_CREDIT_CAP),
                           late_right=service.open_late_right(user.id))


@bp.route("/courses/<int:course_id>/register", methods=["GET", "POST"])
@page_roles_required("learner")
def register_page(course_id):
    """ENR-1…3: the syllabus, the consent checkbox, deadlines, fee and credit totals."""
    user = current_auth().user
    course = content.get_course(course_id, user)
    status = 200
    if request.method == "POST":
        try:
            service.enrol(course, learner_id=user.id, actor=user,
                          syllabus_consent=request.form.get("syllabus_consent") == "on")
            db.session.commit()
        except ApiError as exc:
            db.session.rollback()
            flash(exc.message if not exc.rules else f"[{', '.join(exc.rules)}] {exc.message}", "error")
            status = exc.status
        else:
            flash(_("수강신청이 완료되었습니다."), "info")
            return redirect(url_for("content_pages.course_page", course_id=course.id), 303)
    now = clock.now()
    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.course_id == course.id,
                                                            Enrollment.user_id == user.id))
    end = rules.course_ends_on(course.starts_on, course.weeks)
    year, half = rules.credit_half(end)
    totals = {t["year"]: t for t in service.credit_totals(user.id)}.get(year, {"year_credits": 0, "half1": 0,
                                                                              "half2": 0})
    return render_template(
        "enrolment/register.html", course=course, syllabus=content.get_syllabus(course.id),
        enrollment=enrollment, period=rules.registration_period(course.starts_on, now),
        last_on_time=clock.to_kst(rules.registration_deadline(course.starts_on) - timedelta(seconds=1))
        .strftime("%Y-%m-%d %H:%M:%S"),
        late_until=rules.late_registration_deadline(course.starts_on), ends_on=end,
        fee=fees.current_fee(course.id), year=year, half=half, totals=totals,
        payment=fees.payment_status(enrollment, now) if enrollment is not None and enrollment.status == "active"
        else None,
        year_bounds=rules.year_bounds(year), half_bounds=rules.half_bounds(year, half),
        caps=(rules.YEAR_CREDIT_CAP, rules.HALF_CREDIT_CAP), late_right=service.open_late_right(user.id),
        registered=service.active_count(course.id)), status


# --- admin: registrations, classes, CRS-14 ------------------------------------------------

def _admin_course(course_id: int) -> Course:
    return content.course_for_manager(course_id, current_auth().user)


@bp.route("/admin/registrations", methods=["GET", "POST"])
@page_roles_required("admin")
def admin_registrations():
    user = current_auth().user
    if request.method == "POST":
        try:
            course = _admin_course(_int("course_id"))
            fees.publish_fee(course, amount=_int("amount"), lab_fee=_int("lab_fee", required=False) or 0, actor=user)
            db.session.commit()
            flash(_("학습비를 공고했습니다."), "info")
        except ApiError as exc:
            _form_error(exc)
        return redirect(url_for("enrolment_pages.admin_registrations"), 303)
    courses = list(db.session.scalars(select(Course).where(Course.institution_id == user.institution_id)
                                      .order_by(Course.starts_on.desc(), Course.code)))
    rows = [{"course": c, "fee": fees.current_fee(c.id), "registered": service.active_count(c.id),
             "period": rules.registration_period(c.starts_on, clock.now())} for c in courses]
    return render_template("enrolment/admin_registrations.html", rows=rows)


@bp.route("/admin/courses/<int:course_id>/registrations", methods=["GET", "POST"])
@page_roles_required("admin")
def admin_course_registrations(course_id):
    user = current_auth().user
    course = _admin_course(course_id)
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "cancel_course":
                out = service.cancel_course(course, actor=user, reason=_text("reason", 500))
                flash(_("과정을 폐강했습니다. 취소된 수강 %(n)s건.", n=out["cancelled_registrations"]), "info")
            elif action in ("move", "cancel"):
                e = service.get_enrollment(_int("enrollment_id"), user)
                if e.course_id != course.id:
                    raise ApiError(404, "not_found", "enrollment not found")
                if action == "move":
                    service.move(e, section_id=_int("section_id"), actor=user)
                    flash(_("분반을 이동했습니다."), "info")
                else:
                    service.cancel_enrollment(e, actor=user, reason=_text("reason", 500),
                                              unavoidable=request.form.get("unavoidable") == "on")
                    flash(_("수강을 취소했습니다."), "info")
            else:
                raise ApiError(400, "invalid_request", "action")
            db.session.commit()
        except ApiError as exc:
            _form_error(exc)
        return redirect(url_for("enrolment_pages.admin_course_registrations", course_id=course.id), 303)
    rows = []
    pairs = list(db.session.execute(select(Enrollment, User).join(User, User.id == Enrollment.user_id)
                                    .where(Enrollment.course_id == course.id)
                                    .order_by(Enrollment.status, User.username)).tuples())
    pay = fees.payment_statuses(course, [e for e, _u in pairs])
    for e, u in pairs:
        rows.append({"e": e, "user": u, "kind": pay[e.id]["registration_kind"], "paid": pay[e.id]["net_paid"],
                     "pay": pay[e.id]})
    sections = list(db.session.scalars(select(Section).where(Section.course_id == course.id).order_by(Section.id)))
    counts = {s.id: service.active_count(course.id, s.id) for s in sections}
    return render_template("enrolment/admin_course.html", course=course, rows=rows, sections=sections,
                           counts=counts, registered=service.active_count(course.id),
                           may_cancel=rules.may_cancel(service.active_count(course.id)),
                           max_cancel=rules.MAX_REGISTRATIONS_TO_CANCEL, fee=fees.current_fee(course.id))


@bp.route("/admin/enrollments/<int:enrollment_id>/payments", methods=["GET", "POST"])
@page_roles_required("admin")
def admin_payments(enrollment_id):
    """Payments and the ENR-4 refund calculator (shows the table row used)."""
    user = current_auth().user
    e = service.get_enrollment(enrollment_id, user)
    quote = None
    status = 200
    if request.method == "POST":
        action = request.form.get("action")
        try:
            if action == "payment":
                fees.record_payment(e, amount=_int("amount"), method=request.form.get("method", ""), actor=user,
                                    note=(request.form.get("note") or "").strip()[:500] or None)
                db.session.commit()
                flash(_("납부를 기록했습니다."), "info")
                return redirect(url_for("enrolment_pages.admin_payments", enrollment_id=e.id), 303)
            if action in ("quote", "refund"):
                cause = request.form.get("cause", "")
                at = _kst_input("cause_at")
                overpaid = _int("overpaid", required=False) or 0
                if action == "quote":
                    quote = fees.quote_dict(e, fees.quote(e, cause=cause, cause_at=at, overpaid=overpaid), cause, at)
                else:
                    fees.create_refund(e, cause=cause, cause_at=at, actor=user, overpaid=overpaid)
                    db.session.commit()
                    flash(_("반환을 결정했습니다. 5일 이내에 반환하세요."), "info")
                    return redirect(url_for("enrolment_pages.admin_payments", enrollment_id=e.id), 303)
            elif action == "waive":
                fees.waive_fee(e, reason=_text("reason", 500), actor=user)
                db.session.commit()
                flash(_("학습비 면제를 기록했습니다."), "info")
                return redirect(url_for("enrolment_pages.admin_payments", enrollment_id=e.id), 303)
            elif action == "refunded":
                fees.mark_refunded(fees.get_refund(_int("refund_id"), user), method=request.form.get("method", ""),
                                   actor=user)
                db.session.commit()
                flash(_("반환 완료를 기록했습니다."), "info")
                return redirect(url_for("enrolment_pages.admin_payments", enrollment_id=e.id), 303)
            else:
                raise ApiError(400, "invalid_request", "action")
        except ApiError as exc:
            _form_error(exc)
            status = exc.status
    course = db.session.get(Course, e.course_id)
    learner = db.session.get(User, e.user_id)
    payments = list(db.session.scalars(select(Payment).where(Payment.enrollment_id == e.id).order_by(Payment.id)))
    refunds = list(db.session.scalars(select(Refund).where(Refund.enrollment_id == e.id).order_by(Refund.id)))
    return render_template("enrolment/admin_payments.html", e=e, course=course, learner=learner,
                           payments=payments, refunds=[fees.refund_dict(r) for r in refunds],
                           fee=fees.current_fee(course.id), paid=fees.paid_total(e.id), net=fees.net_paid(e.id),
                           pay=fees.payment_status(e),
                           quote=quote, causes=rules.CAUSES, methods=fees.PAYMENT_METHODS,
                           table=rules.REFUND_TABLE, now_local=clock.to_kst(clock.now()).strftime("%Y-%m-%dT%H:%M"),
                           form=request.form), status


@bp.route("/admin/refunds")
@page_roles_required("admin")
def admin_refunds():
    user = current_auth().user
    now = clock.now()
    rows = [(fees.refund_dict(r, now), e, c, u) for r, e, c, u in fees.institution_refunds(user.institution_id)]
    rows.sort(key=lambda t: (not t[0]["overdue"], t[0]["refunded_at"] is not None, t[0]["due_on"]))
    return render_template("enrolment/admin_refunds.html", rows=rows)


@bp.route("/admin/refunds.csv")
@page_roles_required("admin")
def admin_refunds_csv():
    """The refunds as CSV (UTF-8 with BOM, for spreadsheets)."""
    body = fees.refunds_csv(current_auth().user.institution_id, clock.now())
    return Response(body, mimetype="text/csv", headers={"Content-Disposition": 'attachment; filename="refunds.csv"'})


# --- the learner register (ENR-5, REC-2) ---------------------------------------------------

@bp.route("/my/register", methods=["GET", "POST"])
@page_roles_required("learner")
def my_register():
    user = current_auth().user
    if request.method == "POST":
        uploads = [register.Upload(f.filename or "", f.stream) for f in request.files.getlist("files") if f.filename]
        try:
            register.apply_correction(user, field=request.form.get("field", ""), value=request.form.get("value", ""),
                                      reason=request.form.get("reason", ""), files=uploads)
            flash(_("정정 신청을 접수했습니다."), "info")
        except ApiError as exc:
            _form_error(exc)
        return redirect(url_for("enrolment_pages.my_register"), 303)
    reg = register.get_register(user.id)
    return render_template("enrolment/register_view.html", reg=reg, data=register.register_dict(reg) if reg else None,
                           learner=user, fields=register.FIELDS, own=True)


@bp.route("/admin/learners/<int:user_id>/register")
@page_roles_required("admin", "inspector")
def learner_register(user_id):
    reg = register.register_for(user_id, current_auth().user)
    return render_template("enrolment/register_view.html", reg=reg, data=register.register_dict(reg),
                           learner=db.session.get(User, user_id), fields=register.FIELDS, own=False)


@bp.route("/admin/register-corrections", methods=["GET", "POST"])
@page_roles_required("admin", "inspector")
def admin_corrections():
    user = current_auth().user
    if request.method == "POST":
        try:
            row = register.get_correction(_int("correction_id"), user)
            register.decide(row, approve=request.form.get("approve") == "1",
                            comment=(request.form.get("comment") or "").strip()[:2000] or None, actor=user)
            db.session.commit()
            flash(_("정정 신청을 처리했습니다."), "info")
        except ApiError as exc:
            _form_error(exc)
        return redirect(url_for("enrolment_pages.admin_corrections"), 303)
    rows = register.corrections(institution_id=user.institution_id)
    learners = {u.id: u for u in db.session.scalars(select(User).where(User.id.in_({r.learner_id for r in rows})))}
    return render_template("enrolment/admin_corrections.html", rows=[register.correction_dict(r) for r in rows],
                           learners=learners, can_decide=user.role == "admin")


# --- certificates ------------------------------------------------------------------------

@bp.route("/my/certificate", methods=["GET", "POST"])
@page_roles_required("learner")
def my_certificate():
    from lms.enrolment.api import verify_url

    user = current_auth().user
    if request.method == "POST":
        cert, pdf = certificate.issue(user, verify_url)
        db.session.commit()
        return Response(pdf, mimetype="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="certificate-{cert.code}.pdf"',
            "Cache-Control": "no-store"})
    issued = list(db.session.scalars(select(Certificate).where(Certificate.user_id == user.id)
                                     .order_by(Certificate.id.desc())))
    return render_template("enrolment/certificate.html", results=certificate.course_results(user.id),
                           issued=issued, pretty=certificate.pretty_code)


@bp.route("/verify")
def verify():
    code = request.args.get("code")
    if code:
        return redirect(url_for("enrolment_pages.verify_code", code=certificate.normalise_code(code) or "-"), 303)
    return render_template("enrolment/verify.html", cert=None, asked=False)


@bp.route("/verify/<code>")
def verify_code(code):
    """Public: a valid code shows the holder (masked), issue date and courses."""
    cert = certificate.by_code(code)
    return render_template("enrolment/verify.html", cert=cert, asked=True, code=code,
                           pretty=certificate.pretty_code), (200 if cert else 404)
