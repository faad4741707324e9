"""Fees, payments and refunds (ENR-4).

- The published fee of a course (``course_fee``, append-only; the newest row is current)
  with the lab/practice fee beside it; no payment may take a registration beyond them.
- Payments recorded by staff: method (cash, transfer, card) and amount — the payment
  gateway is out of scope.
- The refund calculator (``rules.refund``): from the cause and its instant, the share of
  class time elapsed picks the table's row; the amount is that share of what was actually
  paid (payments less refunds already decided), rounded up to the won. A refund is due by
  the end of the 5th KST day after the cause; unpaid refunds past that are *overdue*.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from lms import clock
from lms.auth.models import User
from lms.content.models import Course
from lms.db import db, lock_row
from lms.enrolment import rules
from lms.enrolment.models import CourseFee, Enrollment, Payment, Refund
from lms.errors import ApiError, RuleViolation, not_found
from lms.spreadsheet import csv_bytes, safe_text

PAYMENT_METHODS = ("cash", "transfer", "card")  # Guide II-3: 현금, 계좌이체, 카드결제
METHOD_LABELS = {"cash": "현금", "transfer": "계좌이체", "card": "카드"}
CAUSE_LABELS = {
    "overpayment": "과오납",
    "military": "병역 의무 이행 등 법령에 의한 학습 불가",
    "withdrawal": "학습 포기 의사 표시",
    "illness": "질병·사망·천재지변 등 부득이한 사유",
    "course_cancelled": "폐강 (기관 사유)",
    "unpaid_cancelled": "학습비 미납으로 등록 취소",
}
MAX_FEE = 100_000_000  # won: a sanity bound of an input


def current_fee(course_id: int) -> CourseFee | None:
    return db.session.scalar(select(CourseFee).where(CourseFee.course_id == course_id)
                             .order_by(CourseFee.id.desc()).limit(1))


def publish_fee(course: Course, *, amount: int, lab_fee: int, actor: User) -> CourseFee:
    row = CourseFee(course_id=course.id, amount=amount, lab_fee=lab_fee, published_at=clock.now(),
                    published_by=actor.id)
    db.session.add(row)
    db.session.flush()
    return row


def fee_dict(row: CourseFee | None) -> dict | None:
    if row is None:
        return None
    return {"course_id": row.course_id, "amount": row.amount, "lab_fee": row.lab_fee,
            "total": row.amount + row.lab_fee, "published_at": clock.iso(row.published_at)}


def paid_total(enrollment_id: int) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(Payment.amount), 0))
                                 .where(Payment.enrollment_id == enrollment_id)) or 0)


def refunded_total(enrollment_id: int) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(Refund.amount), 0))
                                 .where(Refund.enrollment_id == enrollment_id)) or 0)


def net_paid(enrollment_id: int) -> int:
    """What the learner actually paid and has not been (or is not due to be) refunded."""
    return paid_total(enrollment_id) - refunded_total(enrollment_id)


def money_by_enrollment(course_id: int) -> tuple[dict[int, int], dict[int, int]]:
    """({enrollment id: paid}, {enrollment id: refunded}) of a course's registrations, two
    grouped queries (NILE course-status report, ENR-6)."""
    paid = dict(db.session.execute(
        select(Payment.enrollment_id, func.sum(Payment.amount)).join(Enrollment, Enrollment.id == Payment.enrollment_id)
        .where(Enrollment.course_id == course_id).group_by(Payment.enrollment_id)).all())
    refunded = dict(db.session.execute(
        select(Refund.enrollment_id, func.sum(Refund.amount)).join(Enrollment, Enrollment.id == Refund.enrollment_id)
        .where(Enrollment.course_id == course_id).group_by(Refund.enrollment_id)).all())
    return ({k: int(v) for k, v in paid.items()}, {k: int(v) for k, v in refunded.items()})


def record_payment(enrollment: Enrollment, *, amount: int, method: str, actor: User,
                   paid_at: datetime | None = None, note: str | None = None) -> Payment:
    """Record a payment. ENR-4: never beyond the published fee and lab fee (422)."""
    lock_row(Enrollment, enrollment.id)
    fee = current_fee(enrollment.course_id)
    if fee is None:
        raise ApiError(409, "fee_not_published", "publish the course's fee before recording payments")
    if method not in PAYMENT_METHODS:
        raise ApiError(400, "invalid_request", f"method: one of {', '.join(PAYMENT_METHODS)}")
    already = paid_total(enrollment.id)
    if already + amount > fee.amount + fee.lab_fee:
        raise RuleViolation(["ENR-4"], f"no fee beyond the published fee: {already} won paid + {amount} "
                                       f"> {fee.amount + fee.lab_fee} won (fee {fee.amount}, lab {fee.lab_fee})",
                            details={"paid": already, "fee": fee.amount, "lab_fee": fee.lab_fee})
    now = clock.now()
    row = Payment(enrollment_id=enrollment.id, amount=amount, method=method, paid_at=paid_at or now,
                  recorded_by=actor.id, note=note)
    db.session.add(row)
    db.session.flush()
    return row


def payment_dict(p: Payment) -> dict:
    return {"id": p.id, "enrollment_id": p.enrollment_id, "amount": p.amount, "method": p.method,
            "paid_at": clock.iso(p.paid_at), "note": p.note}


def quote(enrollment: Enrollment, *, cause: str, cause_at: datetime, overpaid: int = 0,
          internal: bool = False) -> rules.RefundResult:
    """The refund calculator (no write). ``internal``: the unpaid-cancellation job's own
    cause (``rules.UNPAID_CANCELLED``), never accepted from a request."""
    if cause not in rules.CAUSES and not (internal and cause == rules.UNPAID_CANCELLED):
        raise ApiError(400, "invalid_request", f"cause: one of {', '.join(rules.CAUSES)}")
    course = db.session.get(Course, enrollment.course_id)
    paid = net_paid(enrollment.id)
    if cause == rules.OVERPAYMENT and overpaid > paid:
        raise ApiError(400, "invalid_request", f"overpaid: at most what was paid ({paid} won)")
    return rules.refund(cause=cause, paid=paid, cause_at=cause_at, starts_on=course.starts_on,
                        weeks=course.weeks, overpaid=overpaid)


def quote_dict(enrollment: Enrollment, result: rules.RefundResult, cause: str, cause_at: datetime) -> dict:
    return {"enrollment_id": enrollment.id, "cause": cause, "cause_at": clock.iso(cause_at),
            "paid": net_paid(enrollment.id), "row": result.row, "row_label": rules.REFUND_ROW_LABELS[result.row],
            "share": f"{result.share.numerator}/{result.share.denominator}",
            "elapsed": None if result.elapsed is None else f"{result.elapsed.numerator}/{result.elapsed.denominator}",
            "elapsed_percent": None if result.elapsed is None else round(float(result.elapsed) * 100, 2),
            "amount": result.amount, "due_on": result.due_on.isoformat()}


def create_refund(enrollment: Enrollment, *, cause: str, cause_at: datetime, actor: User | None,
                  overpaid: int = 0, internal: bool = False) -> Refund:
    """Decide a refund by the table and keep the row used; due within 5 days (ENR-4).
    ``actor`` None: decided by a job (the unpaid cancellation)."""
    lock_row(Enrollment, enrollment.id)
    result = quote(enrollment, cause=cause, cause_at=cause_at, overpaid=overpaid, internal=internal)
    row = Refund(enrollment_id=enrollment.id, cause=cause, cause_at=cause_at, paid_amount=net_paid(enrollment.id),
                 table_row=result.row, amount=result.amount, due_on=result.due_on, created_at=clock.now(),
                 created_by=actor.id if actor else None,
                 elapsed=None if result.elapsed is None else f"{result.elapsed.numerator}/{result.elapsed.denominator}")
    if result.amount == 0:
        row.refunded_at = row.created_at  # nothing to pay back: never overdue
        row.refunded_by = actor.id if actor else None
    db.session.add(row)
    db.session.flush()
    return row


def get_refund(refund_id: int, user: User) -> Refund:
    row = db.session.get(Refund, refund_id)
    if row is None:
        raise not_found("refund")
    e = db.session.get(Enrollment, row.enrollment_id)
    course = db.session.get(Course, e.course_id)
    if course.institution_id != user.institution_id:
        raise not_found("refund")
    return row


def mark_refunded(refund: Refund, *, method: str, actor: User) -> Refund:
    lock_row(Refund, refund.id)
    if refund.refunded_at is not None:
        raise ApiError(409, "already_refunded", "the refund was already paid")
    if method not in PAYMENT_METHODS:
        raise ApiError(400, "invalid_request", f"method: one of {', '.join(PAYMENT_METHODS)}")
    refund.refunded_at = clock.now()
    refund.refunded_by = actor.id
    refund.refund_method = method
    db.session.flush()
    return refund


def refund_dict(r: Refund, now: datetime | None = None) -> dict:
    now = now or clock.now()
    return {"id": r.id, "enrollment_id": r.enrollment_id, "cause": r.cause, "cause_at": clock.iso(r.cause_at),
            "paid_amount": r.paid_amount, "row": r.table_row, "row_label": rules.REFUND_ROW_LABELS[r.table_row],
            "elapsed": r.elapsed, "amount": r.amount, "due_on": r.due_on.isoformat(),
            "refunded_at": clock.iso(r.refunded_at), "refund_method": r.refund_method,
            "overdue": rules.refund_overdue(r.due_on, r.refunded_at is not None, now)}


def institution_refunds(institution_id: int, *, overdue_only: bool = False) -> list[tuple[Refund, Enrollment, Course, User]]:
    """Refunds of the institution, newest due date first; ``overdue_only``: unpaid past due."""
    stmt = (select(Refund, Enrollment, Course, User)
            .join(Enrollment, Enrollment.id == Refund.enrollment_id)
            .join(Course, Course.id == Enrollment.course_id)
            .join(User, User.id == Enrollment.user_id)
            .where(Course.institution_id == institution_id))
    if overdue_only:
        today = clock.to_kst(clock.now()).date()
        stmt = stmt.where(Refund.refunded_at.is_(None), Refund.due_on < today)
    return list(db.session.execute(stmt.order_by(Refund.due_on, Refund.id)).tuples())


REFUNDS_CSV_COLUMNS = ["학습자", "아이디", "과정코드", "과정명", "사유", "사유 발생", "실제 납부액", "적용 기준",
                       "반환액", "반환 기한", "반환일", "반환 방법", "기한 경과"]


def refunds_csv(institution_id: int, now: datetime) -> bytes:
    """The institution's refunds for a spreadsheet (ENR-4): due dates, amounts, the table
    row applied and whether each is overdue."""
    rows = [REFUNDS_CSV_COLUMNS]
    for r, _e, c, u in institution_refunds(institution_id):
        d = refund_dict(r, now)
        rows.append([safe_text(u.name or ""), safe_text(u.username), safe_text(c.code), safe_text(c.title),
                     CAUSE_LABELS[r.cause], d["cause_at"], r.paid_amount, rules.REFUND_ROW_LABELS[r.table_row],
                     r.amount, d["due_on"], d["refunded_at"] or "", METHOD_LABELS.get(r.refund_method or "", ""),
                     "Y" if d["overdue"] else ""])
    return csv_bytes(rows)


# --- ENR-1: payment by the registration deadline ------------------------------------------

PAYMENT_STATE_LABELS = {"no_fee": "학습비 미공고", "free": "무료", "waived": "면제", "paid": "납부 완료",
                        "partial": "일부 납부", "unpaid": "미납"}
UNPAID_REASON = "학습비 미납 (ENR-1: 개강일 하루 전까지 등록·납부)"
UNPAID_LOOKBACK_DAYS = 30  # the job looks at courses started in the last 30 KST days (late deadlines ≤ start + 16 days)


def _fee_total(fee: CourseFee | None) -> int | None:
    return None if fee is None else fee.amount + fee.lab_fee


def payment_statuses(course: Course, enrollments: list[Enrollment] | None = None,
                     now: datetime | None = None) -> dict[int, dict]:
    """ENR-1: {enrollment id: payment status} of a course's registrations, in a bounded
    number of queries: the published fee, paid/refunded sums, the newest ``enrolled`` event
    (kind and instant) and fee waivers of each registration."""
    from lms.enrolment.models import EnrollmentEvent

    now = now or clock.now()
    if enrollments is None:
        enrollments = list(db.session.scalars(select(Enrollment).where(Enrollment.course_id == course.id)))
    if not enrollments:
        return {}
    fee = current_fee(course.id)
    total = _fee_total(fee)
    paid, refunded = money_by_enrollment(course.id)
    # An overpayment refund returns money that was never owed: it leaves the fee paid.
    overpaid = {k: int(v) for k, v in db.session.execute(
        select(Refund.enrollment_id, func.sum(Refund.amount)).join(Enrollment, Enrollment.id == Refund.enrollment_id)
        .where(Enrollment.course_id == course.id, Refund.cause == rules.OVERPAYMENT)
        .group_by(Refund.enrollment_id)).all()}
    ids = [e.id for e in enrollments]
    enrolled: dict[int, EnrollmentEvent] = {}
    waivers: dict[int, list[EnrollmentEvent]] = {}
    for ev in db.session.scalars(select(EnrollmentEvent).where(EnrollmentEvent.enrollment_id.in_(ids),
                                                               EnrollmentEvent.kind.in_(("enrolled", "fee_waived")))
                                 .order_by(EnrollmentEvent.id)):
        if ev.kind == "enrolled":
            enrolled[ev.enrollment_id] = ev
            waivers.pop(ev.enrollment_id, None)  # a waiver belongs to the registration it followed
        else:
            waivers.setdefault(ev.enrollment_id, []).append(ev)
    out = {}
    for e in enrollments:
        ev = enrolled.get(e.id)
        kind = ev.registration_kind if ev else None
        registered_at = ev.at if ev else e.created_at
        waiver = (waivers.get(e.id) or [None])[-1]
        net = paid.get(e.id, 0) - refunded.get(e.id, 0)
        state = rules.payment_state(total, net + overpaid.get(e.id, 0), waived=waiver is not None)
        deadline = None if state == rules.NO_FEE else rules.payment_deadline(course.starts_on, kind, registered_at)
        out[e.id] = {"enrollment_id": e.id, "state": state, "label": PAYMENT_STATE_LABELS[state],
                     "fee": total, "paid": paid.get(e.id, 0), "refunded": refunded.get(e.id, 0), "net_paid": net,
                     "outstanding": max((total or 0) - net - overpaid.get(e.id, 0), 0)
                     if state in (rules.UNPAID, rules.PARTIAL) else 0,
                     "registration_kind": kind, "deadline": deadline,
                     "waived_reason": waiver.reason if waiver else None,
                     "complete": rules.registration_complete(e.syllabus_consent_at is not None, state),
                     "overdue": e.status == "active" and rules.unpaid_at_deadline(state, deadline, now)}
    return out


def payment_status(enrollment: Enrollment, now: datetime | None = None) -> dict:
    course = db.session.get(Course, enrollment.course_id)
    return payment_statuses(course, [enrollment], now)[enrollment.id]


def payment_status_dict(st: dict) -> dict:
    return {**st, "deadline": clock.iso(st["deadline"]),
            "last_on_time": clock.iso(st["deadline"] - timedelta(seconds=1)) if st["deadline"] else None}


def waive_fee(enrollment: Enrollment, *, reason: str, actor: User) -> dict:
    """ENR-1: an administrator waives the fee of one registration, with the reason recorded
    in the registration's history (``fee_waived`` event)."""
    from lms.enrolment.service import add_event

    lock_row(Enrollment, enrollment.id)
    if enrollment.status != "active":
        raise ApiError(409, "not_active", "the registration is not active")
    reason = (reason or "").strip()
    if not reason:
        raise ApiError(400, "invalid_request", "reason: required (why the fee is waived)")
    st = payment_status(enrollment)
    if st["state"] in (rules.NO_FEE, rules.FREE):
        raise ApiError(409, "nothing_to_waive", "the course has no fee to waive")
    if st["state"] == rules.WAIVED:
        raise ApiError(409, "already_waived", "the fee is already waived")
    if st["state"] == rules.PAID:
        raise ApiError(409, "already_paid", "the fee is already paid (refunds go through the calculator)")
    add_event(enrollment, "fee_waived", actor=actor, reason=reason[:500],
              detail={"fee": st["fee"], "net_paid": st["net_paid"]})
    db.session.flush()
    return payment_status(enrollment)


def cancel_unpaid(now: datetime | None = None) -> dict:
    """Periodic job (ENR-1): cancel active registrations still unpaid (or partly paid) at
    their payment deadline. Only courses with a published fee above 0 and started in the
    last ``UNPAID_LOOKBACK_DAYS`` KST days are read; registrations made by an
    administrator's documented override and waived fees are never cancelled. Each
    cancellation (one transaction per registration, row-locked and re-checked) records the
    status and reason in ``enrollment_event``, refunds any partial payment in full through
    the refund machinery (due within 5 days, ENR-4) and notifies the learner."""
    from lms.enrolment.service import cancel_enrollment
    from lms.notify.service import notify_users

    now = now or clock.now()
    today = clock.to_kst(now).date()
    course_ids = list(db.session.scalars(
        select(Course.id).where(Course.status != "cancelled", Course.starts_on <= today,
                                Course.starts_on >= today - timedelta(days=UNPAID_LOOKBACK_DAYS),
                                Course.id.in_(select(CourseFee.course_id)))
        .order_by(Course.id)))
    cancelled = refunds = 0
    for cid in course_ids:
        course = db.session.get(Course, cid)
        active = list(db.session.scalars(select(Enrollment).where(Enrollment.course_id == cid,
                                                                  Enrollment.status == "active")))
        due = [eid for eid, st in payment_statuses(course, active, now).items() if st["overdue"]]
        db.session.rollback()
        for eid in due:
            e = lock_row(Enrollment, eid)
            st = payment_status(e, now) if e.status == "active" else None
            if st is None or not st["overdue"]:
                db.session.rollback()
                continue
            deadline = st["deadline"]
            cancel_enrollment(e, actor=None, reason=UNPAID_REASON, unavoidable=False,
                              detail={"unpaid": True, "payment_state": st["state"], "fee": st["fee"],
                                      "net_paid": st["net_paid"], "payment_deadline": clock.iso(deadline)})
            refund = None
            if st["net_paid"] > 0:
                refund = create_refund(e, cause=rules.UNPAID_CANCELLED, cause_at=now, actor=None, internal=True)
                refunds += 1
            body = (f"{course.title} ({course.code}) 과정의 학습비가 납부 기한 "
                    f"{clock.to_kst(deadline - timedelta(seconds=1)).strftime('%Y-%m-%d %H:%M:%S')} KST까지 "
                    "납부되지 않아 수강신청이 취소되었습니다.")
            if refund is not None:
                body += f" 일부 납부하신 {refund.amount:,}원은 {refund.due_on.isoformat()}까지 전액 반환됩니다."
            notify_users([e.user_id], kind="registration_unpaid", subject=f"[수강 취소] {course.title} 학습비 미납",
                         body=body)
            db.session.commit()
            cancelled += 1
    return {"courses": len(course_ids), "cancelled": cancelled, "refunds": refunds}
