"""Registration rules (pure): ENR-1 deadlines, ENR-3 credit caps, ENR-4 refunds, ENR-5 the
learner register's due date, CRS-14 cancellation. Plain values in, plain values out; ``now``
is always a parameter. Rule days are KST calendar days.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction

from lms.clock import KST, kst_midnight

# --- ENR-1: registration deadline and late registration ----------------------------------
# "학습자는 … 그 학습과정의 시작일 하루 전까지 … 등록하고, 학습비를 납부하여야 함": the whole
# day before the start is inside the period, so registration closes at the END of that day,
# i.e. at 00:00:00 KST of the start date (exclusive): 23:59:59 the day before is on time,
# 00:00:00 of the start date is late.
REGISTRATION_CLOSES_BEFORE_START = timedelta(0)  # ENR-1: closes at 00:00 KST of starts_on
# "폐강 등 부득이한 사유로 등록이 취소된 학습자는 개강일로부터 … 2주 이내(원격수업기관)":
# late registration is open until start (00:00 KST of starts_on) + 14 days, inclusive.
LATE_REGISTRATION_WINDOW = timedelta(days=14)  # ENR-1

REGULAR, LATE, ADMIN_OVERRIDE = "regular", "late", "admin_override"
REGISTRATION_KINDS = (REGULAR, LATE, ADMIN_OVERRIDE)


def course_start(starts_on: date) -> datetime:
    """00:00 KST of the start date (aware)."""
    return kst_midnight(starts_on)


def course_ends_on(starts_on: date, weeks: int) -> date:
    """API.md: a course ends on starts_on + 7·weeks − 1."""
    return starts_on + timedelta(days=7 * weeks - 1)


def course_end(starts_on: date, weeks: int) -> datetime:
    """The end of the course's last day (00:00 KST of the day after)."""
    return course_start(course_ends_on(starts_on, weeks) + timedelta(days=1))


def registration_deadline(starts_on: date) -> datetime:
    """ENR-1: the first instant at which regular registration is closed."""
    return course_start(starts_on) - REGISTRATION_CLOSES_BEFORE_START


def late_registration_deadline(starts_on: date) -> datetime:
    """ENR-1: the last instant (inclusive) of late registration."""
    return course_start(starts_on) + LATE_REGISTRATION_WINDOW


def registration_period(starts_on: date, now: datetime) -> str:
    """``regular`` before the deadline, ``late`` inside the 2-week window, ``closed`` after.
    Instants count in whole seconds (a request at 23:59:59.4 is at 23:59:59)."""
    now = now.replace(microsecond=0)
    if now < registration_deadline(starts_on):
        return "regular"
    if now <= late_registration_deadline(starts_on):
        return "late"
    return "closed"


# --- ENR-1: payment by the day before ----------------------------------------------------
# "… 하루 전까지 … 등록하고, 학습비를 납부하여야 함": registering and paying share ONE deadline.
# A regular registration must be paid in full (published fee + lab fee) before
# registration_deadline(starts_on) — 23:59:59 KST the day before the start is on time,
# 00:00:00 KST of the start date is late. A late registration (ENR-1 late right, made on or
# after that instant) cannot meet it; it gets its own deadline: the end of the KST day
# AFTER the day it was made (register today, pay today or tomorrow). An administrator's
# documented override has no automatic deadline: the administrator decided the case and
# records payment or a waiver; the unpaid-cancellation job never touches it.
LATE_PAYMENT_DAYS = 1  # ENR-1 (institution's choice, documented): late registrations pay by the end of the next KST day

NO_FEE, FREE, WAIVED, PAID, PARTIAL, UNPAID = "no_fee", "free", "waived", "paid", "partial", "unpaid"
PAYMENT_STATES = (NO_FEE, FREE, WAIVED, PAID, PARTIAL, UNPAID)
SETTLED_STATES = (NO_FEE, FREE, WAIVED, PAID)  # nothing (more) to pay


def payment_state(fee_total: int | None, paid: int, *, waived: bool = False) -> str:
    """ENR-1: no_fee (no published fee: nothing to pay, the course behaves as before), free
    (published fee 0), waived (an administrator waived it with a recorded reason), paid
    (``paid`` ≥ the published fee + lab fee), partial, unpaid."""
    if fee_total is None:
        return NO_FEE
    if fee_total <= 0:
        return FREE
    if waived:
        return WAIVED
    if paid >= fee_total:
        return PAID
    return PARTIAL if paid > 0 else UNPAID


def payment_deadline(starts_on: date, registration_kind: str | None, registered_at: datetime) -> datetime | None:
    """ENR-1: the first instant at which an unpaid registration is late (exclusive), or None
    (an administrator's override: no automatic deadline)."""
    if registration_kind == ADMIN_OVERRIDE:
        return None
    if registration_kind == LATE:
        day = registered_at.astimezone(KST).date()
        return course_start(day + timedelta(days=LATE_PAYMENT_DAYS + 1))
    return registration_deadline(starts_on)


def registration_complete(consented: bool, state: str) -> bool:
    """ENR-1/ENR-2: complete once consent is recorded and nothing is left to pay."""
    return consented and state in SETTLED_STATES


def unpaid_at_deadline(state: str, deadline: datetime | None, now: datetime) -> bool:
    """ENR-1: the registration is still unpaid (or partly paid) at or after its deadline
    (instants in whole seconds: a payment recorded at 23:59:59 is on time)."""
    return state in (UNPAID, PARTIAL) and deadline is not None and now.replace(microsecond=0) >= deadline


# --- ENR-3: credit caps by course end date ----------------------------------------------
YEAR_CREDIT_CAP = 42  # ENR-3: Mar 1 – end of Feb
HALF_CREDIT_CAP = 24  # ENR-3: Mar 1 – Aug 31, Sep 1 – end of Feb
YEAR_STARTS_MONTH = 3
SECOND_HALF_MONTH = 9


def credit_year(end: date) -> int:
    """The year (Mar 1 of this calendar year – end of Feb of the next) an end date falls in."""
    return end.year if end.month >= YEAR_STARTS_MONTH else end.year - 1


def credit_half(end: date) -> tuple[int, int]:
    """(credit year, 1 for Mar–Aug or 2 for Sep–Feb)."""
    return credit_year(end), 1 if YEAR_STARTS_MONTH <= end.month < SECOND_HALF_MONTH else 2


def year_bounds(year: int) -> tuple[date, date]:
    return date(year, 3, 1), date(year + 1, 3, 1) - timedelta(days=1)


def half_bounds(year: int, half: int) -> tuple[date, date]:
    if half == 1:
        return date(year, 3, 1), date(year, 8, 31)
    return date(year, 9, 1), date(year + 1, 3, 1) - timedelta(days=1)


@dataclass(frozen=True)
class CreditCheck:
    year: int
    half: int
    year_credits: int  # the learner's current credits in that year (without the new course)
    half_credits: int
    new_credits: int
    broken: tuple[str, ...]  # "year" and/or "half"

    @property
    def ok(self) -> bool:
        return not self.broken


def credit_check(existing: list[tuple[date, int]], new_end: date, new_credits: int) -> CreditCheck:
    """ENR-3: may a course of ``new_credits`` ending on ``new_end`` be added to the learner's
    ``existing`` [(end date, credits)] registrations?"""
    year, half = credit_half(new_end)
    year_total = sum(c for end, c in existing if credit_year(end) == year)
    half_total = sum(c for end, c in existing if credit_half(end) == (year, half))
    broken = []
    if year_total + new_credits > YEAR_CREDIT_CAP:
        broken.append("year")
    if half_total + new_credits > HALF_CREDIT_CAP:
        broken.append("half")
    return CreditCheck(year, half, year_total, half_total, new_credits, tuple(broken))


def credit_totals(existing: list[tuple[date, int]]) -> list[dict]:
    """The learner's totals per credit year and half, newest year first."""
    years: dict[int, dict] = {}
    for end, credits in existing:
        y, h = credit_half(end)
        row = years.setdefault(y, {"year": y, "year_credits": 0, "half1": 0, "half2": 0})
        row["year_credits"] += credits
        row["half1" if h == 1 else "half2"] += credits
    return [years[y] for y in sorted(years, reverse=True)]


# --- ENR-4: refunds ----------------------------------------------------------------------
REFUND_DUE_DAYS = 5  # ENR-4: "5일 이내 반환"
OVERPAYMENT = "overpayment"  # 제4조②1: 과오납
# ENR-1: a registration cancelled because it was not paid by the deadline never became a
# registration: whatever was partly paid is returned in full (internal cause, set by the job).
UNPAID_CANCELLED = "unpaid_cancelled"
CAUSES = (OVERPAYMENT, "military", "withdrawal", "illness", "course_cancelled")
# Reg. 4 별표 (causes 2–4): the row, its share of the fee. Boundaries as the table words
# them: "1/6 경과 전" (< 1/6) → 5/6; "1/6 이상부터 1/3 미만" → 2/3; "1/3 이상부터 1/2 미만" → 1/2;
# "1/2 이상 경과" → nothing. "수업 시작일 전일까지" (before 00:00 KST of the start) → in full.
REFUND_TABLE = (
    ("before_start", None, Fraction(1)),
    ("before_1_6", Fraction(1, 6), Fraction(5, 6)),
    ("before_1_3", Fraction(1, 3), Fraction(2, 3)),
    ("before_1_2", Fraction(1, 2), Fraction(1, 2)),
    ("from_1_2", None, Fraction(0)),
)
REFUND_ROW_LABELS = {
    "overpayment": "과오납 — 과오납된 금액 전액",
    "before_start": "수업 시작일 전일까지 — 학습비 전액",
    "before_1_6": "수업 시작일부터 총 수업시간의 1/6 경과 전 — 학습비의 6분의 5",
    "before_1_3": "총 수업시간의 1/6 이상부터 1/3 미만 — 학습비의 3분의 2",
    "before_1_2": "총 수업시간의 1/3 이상부터 1/2 미만 — 학습비의 2분의 1",
    "from_1_2": "총 수업시간의 1/2 이상 경과 — 반환하지 않음",
    "course_cancelled": "폐강(기관 사유) — 학습비 전액",
    "unpaid_cancelled": "학습비 미납으로 등록 취소 — 납부액 전액",
}


@dataclass(frozen=True)
class RefundResult:
    row: str  # a key of REFUND_ROW_LABELS
    share: Fraction  # of the amount paid
    elapsed: Fraction | None  # share of class time elapsed at the cause (None: not applicable)
    amount: int  # won, rounded up in the learner's favour
    due_on: date  # ENR-4: refunded by the end of this KST day


def elapsed_share(start: datetime, end: datetime, at: datetime) -> Fraction:
    """Share of the class time [start, end) elapsed at ``at`` (0 before, 1 after), exact."""
    total = int((end - start).total_seconds())
    done = int((at - start).total_seconds())
    return Fraction(min(max(done, 0), total), total)


def refund_due_on(cause_at: datetime) -> date:
    """ENR-4: within 5 days of the cause (e.g. a cause on Jan 1 → refunded by Jan 6)."""
    return cause_at.astimezone(KST).date() + timedelta(days=REFUND_DUE_DAYS)


def refund(*, cause: str, paid: int, cause_at: datetime, starts_on: date, weeks: int,
           overpaid: int = 0) -> RefundResult:
    """ENR-4: the refund of ``paid`` won (the amount actually paid) for ``cause`` at
    ``cause_at``. ``overpaid``: the excess for an overpayment. A course the institution
    cancelled (CRS-14) is refunded in full."""
    due = refund_due_on(cause_at)
    if cause == OVERPAYMENT:
        return RefundResult("overpayment", Fraction(1), None, max(int(overpaid), 0), due)
    if cause in ("course_cancelled", UNPAID_CANCELLED):
        return RefundResult(cause, Fraction(1), None, paid, due)
    start, end = course_start(starts_on), course_end(starts_on, weeks)
    if cause_at < start:
        return RefundResult("before_start", Fraction(1), Fraction(0), paid, due)
    elapsed = elapsed_share(start, end, cause_at)
    for row, limit, share in REFUND_TABLE[1:-1]:
        if elapsed < limit:
            return RefundResult(row, share, elapsed, math.ceil(paid * share), due)
    return RefundResult("from_1_2", Fraction(0), elapsed, 0, due)


def refund_overdue(due_on: date, refunded: bool, now: datetime) -> bool:
    """ENR-4: a refund not made by the end of its due day (KST)."""
    return not refunded and now.astimezone(KST).date() > due_on


# --- CRS-14: cancelling an under-subscribed course ---------------------------------------
MAX_REGISTRATIONS_TO_CANCEL = 10  # CRS-14: "10 or fewer registrations"


def may_cancel(registrations: int) -> bool:
    return registrations <= MAX_REGISTRATIONS_TO_CANCEL


# --- ENR-5 / REC-2: the learner register -------------------------------------------------
REGISTER_DUE = timedelta(weeks=3)  # ENR-5: within 3 weeks of the course start


def register_due(starts_on: date) -> datetime:
    return course_start(starts_on) + REGISTER_DUE


# --- the learning-history certificate ----------------------------------------------------

def mask_name(name: str | None) -> str:
    """홍길동 → 홍*동, 김철 → 김*, John Smith → J********h (first and last kept)."""
    name = (name or "").strip()
    if len(name) <= 1:
        return name or "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
