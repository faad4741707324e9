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

from datetime import datetime

from sqlalchemy import func, select

from lms import clock
from lms.auth.models import User
from lms.content.models import Course
from lms.db import db, lock_row
from lms.enrolment import rules
from lms.enrolment.models import CourseFee, Enrollment, Payment, Refund
from lms.errors import ApiError, RuleViolation, not_found

PAYMENT_METHODS = ("cash", "transfer", "card")  # Guide II-3: 현금, 계좌이체, 카드결제
METHOD_LABELS = {"cash": "현금", "transfer": "계좌이체", "card": "카드"}
CAUSE_LABELS = {
    "overpayment": "과오납",
    "military": "병역 의무 이행 등 법령에 의한 학습 불가",
    "withdrawal": "학습 포기 의사 표시",
    "illness": "질병·사망·천재지변 등 부득이한 사유",
    "course_cancelled": "폐강 (기관 사유)",
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


def quote(enrollment: Enrollment, *, cause: str, cause_at: datetime, overpaid: int = 0) -> rules.RefundResult:
    """The refund calculator (no write)."""
    if cause not in rules.CAUSES:
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


def create_refund(enrollment: Enrollment, *, cause: str, cause_at: datetime, actor: User,
                  overpaid: int = 0) -> Refund:
    """Decide a refund by the table and keep the row used; due within 5 days (ENR-4)."""
    lock_row(Enrollment, enrollment.id)
    result = quote(enrollment, cause=cause, cause_at=cause_at, overpaid=overpaid)
    row = Refund(enrollment_id=enrollment.id, cause=cause, cause_at=cause_at, paid_amount=net_paid(enrollment.id),
                 table_row=result.row, amount=result.amount, due_on=result.due_on, created_at=clock.now(),
                 created_by=actor.id,
                 elapsed=None if result.elapsed is None else f"{result.elapsed.numerator}/{result.elapsed.denominator}")
    if result.amount == 0:
        row.refunded_at = row.created_at  # nothing to pay back: never overdue
        row.refunded_by = actor.id
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
