"""The compliance report's checks (issue 6, item 4): one pure function per rule of RULES.md
that data can show, over plain facts gathered by ``lms.audit.compliance``.

Every rule ID of RULES.md has an entry: a check in ``CHECKS`` (pass / fail / not
applicable, with the evidence behind the verdict) or a reason in ``NOT_CHECKABLE`` (what the
data of an LMS cannot show). Adding a check later (grading, registrations) is one function
decorated with ``@check("GRD-2")`` and its facts in ``CourseFacts``.

Summaries are Korean: the report is the institution's copy for Korean inspectors.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Callable

from lms.attendance import rules as att
from lms.content import rules as crs
from lms.enrolment import rules as enr
from lms.exams import rules as exm
from lms.grading import rules as grd

PASS, FAIL, NA, NOT_CHECKABLE = "pass", "fail", "na", "not_checkable"
STATUSES = (PASS, FAIL, NA, NOT_CHECKABLE)

YEAR_CREDIT_CAP = 42  # ENR-3, Reg. 3③: credits per year (Mar 1 – end of Feb), by course end date
HALF_CREDIT_CAP = 24  # ENR-3: credits per half (Mar 1 – Aug 31, Sep 1 – end of Feb)
TA_PER_CAPACITY = 1000  # CRS-8: at least 1 TA per 1,000 learners of total capacity
MAX_INSTRUCTOR_LOAD = crs.MAX_SECTION_SIZE  # CRS-7: one running instructor handles ≤ 200 learners
SYLLABUS_FIELDS = ("instructor_name", "goals", "textbook", "method", "evaluation", "weekly_topics",
                   "exam_periods")  # CRS-12
ALL_RULES = tuple(
    [f"CRS-{i}" for i in range(1, 16)] + [f"ENR-{i}" for i in range(1, 7)] + [f"ATT-{i}" for i in range(1, 10)]
    + [f"EXM-{i}" for i in range(1, 14)] + [f"GRD-{i}" for i in range(1, 9)] + [f"REC-{i}" for i in range(1, 7)]
    + [f"SYS-{i}" for i in range(1, 4)])


@dataclass(frozen=True)
class Verdict:
    rule: str
    status: str  # PASS | FAIL | NA | NOT_CHECKABLE
    summary: str
    evidence: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"rule": self.rule, "status": self.status, "summary": self.summary, "evidence": self.evidence}


# --- facts (plain values) ---------------------------------------------------------------------

@dataclass
class ExamFact:
    id: int
    title: str
    kind: str
    opens_at: datetime
    closes_at: datetime
    duration_minutes: int
    items_per_difficulty: dict
    announced_at: datetime | None
    levels: tuple
    bank_at_open: dict  # EXM-5: items per level created before and not retired before the opening
    period: tuple | None  # CRS-12/EXM-2: the syllabus's period of this kind (KST dates)
    attempts: int = 0
    attempts_with_start: int = 0  # EXM-8: a `started` event exists (written only after a fresh OTP)
    attempts_missing_evidence: list = field(default_factory=list)  # EXM-10: no IP / start / end
    blocked_events: int = 0  # EXM-9: refused duplicate-address starts/answers, logged
    shared_addresses: list = field(default_factory=list)  # EXM-9: [(attempt_a, attempt_b, kind, value)]
    keyless_versions: list = field(default_factory=list)  # EXM-12: shown versions without a key


@dataclass
class MakeupFact:
    id: int
    learner_id: int
    status: str
    decided_at: datetime | None
    window_opens_at: datetime | None
    window_closes_at: datetime | None
    attempt_started_at: datetime | None


@dataclass
class RegistrationFact:
    """ENR-1/ENR-5: one registration (cancelled ones included) of the course."""
    learner: str
    status: str  # active | completed | cancelled
    kind: str | None  # regular | late | admin_override (the newest `enrolled` event)
    registered_at: datetime
    reason: str | None = None  # the `enrolled` event's reason (late right / override)
    fee: int | None = None  # published fee + lab fee (None: no published fee)
    paid_by_deadline: int = 0  # payments before the payment deadline, less refunds decided before it (not overpayments)
    waived: bool = False  # ENR-1: an administrator waived the fee with a reason
    cancelled_at: datetime | None = None
    register_entry_at: datetime | None = None  # ENR-5: the learner-register entry's creation


@dataclass
class RefundFact:
    """ENR-4: a refund decided for a registration of the course."""
    id: int
    learner: str
    cause: str
    amount: int
    due_on: date
    refunded_at: datetime | None


@dataclass
class GradeRow:
    learner: str
    score: float | None
    grade: str | None  # None: no grade (EXM-13)
    fixed_by: tuple = ()  # ATT-6 / GRD-3 / EXM-13
    cap: str | None = None  # EXM-11
    enrollment_status: str = "active"


@dataclass
class GradingFacts:
    """GRD-2…6: the course's grade sheet as stored by lms.grading."""
    scheme: str  # relative | absolute | pass_fail
    proposed_at: datetime | None
    finalized_at: datetime | None
    rows: list = field(default_factory=list)  # GradeRow
    objections: list = field(default_factory=list)  # [(id, learner, created_at, answered_at)]


@dataclass
class CourseFacts:
    course_id: int
    code: str
    title: str
    credits: int
    weeks: int
    starts_on: date
    capacity: int
    accredited_capacity: int | None
    practice: bool
    status: str
    lessons: list = field(default_factory=list)  # content.rules.LessonFacts
    unhosted_video_lessons: list = field(default_factory=list)
    sections: list = field(default_factory=list)  # [(id, name, capacity, enrolled)]
    enrolled: int = 0
    instructor_loads: dict = field(default_factory=dict)  # username → learners handled
    staff: list = field(default_factory=list)  # [(user_id, username, roles)]
    staff_missing: dict = field(default_factory=dict)  # CRS-10: week → [usernames] (finished weeks)
    weeks_checked: list = field(default_factory=list)
    institution_tas: int = 0
    institution_capacity: int = 0
    syllabus: dict | None = None
    syllabus_updated_at: datetime | None = None
    published_at: datetime | None = None
    board_available: bool = False
    progress_counts: dict = field(default_factory=dict)  # status → rows
    attended_late: list = field(default_factory=list)  # ATT-1: progress ids attended after the deadline
    attended_incomplete: list = field(default_factory=list)  # ATT-1: attended without 100% coverage
    unsettled_past_deadline: list = field(default_factory=list)  # ATT-2: still pending after the deadline
    excused_over_cap: list = field(default_factory=list)  # ATT-5: [(username, excused_units, total_units)]
    learners_below_minimum: list = field(default_factory=list)  # ATT-6: [(username, rate %)]
    scale_problems: list = field(default_factory=list)  # ATT-7
    enlisted: list = field(default_factory=list)  # ATT-8: [(username, eligible, rate %)]
    record_state: str | None = None  # ATT-9
    record_submitted_at: datetime | None = None
    views: int = 0
    views_missing_ip: list = field(default_factory=list)  # REC-1: view ids without access IP
    views_without_end: list = field(default_factory=list)  # REC-1: idle views never ended
    heartbeats: int = 0
    challenges: int = 0
    challenges_passed: int = 0
    excess_seconds: float = 0.0
    staff_access_rows: int = 0
    logins: int = 0  # ATT-3: `login` events of the course's learners (only after a TOTP code)
    learners_without_otp: list = field(default_factory=list)
    consents_missing: list = field(default_factory=list)  # ENR-2: usernames
    enrolments_after_late_limit: list = field(default_factory=list)  # ENR-1: usernames
    enrolments_late: list = field(default_factory=list)  # ENR-1: registered within the 2 late weeks
    credit_over_cap: list | None = None  # ENR-3: [(username, period, credits, cap)]; None: no data
    exams: list = field(default_factory=list)  # ExamFact
    makeups: list = field(default_factory=list)  # MakeupFact
    findings: list = field(default_factory=list)  # EXM-13: [(id, username, kind, attempt_id, flagged)]
    complaints: dict | None = None  # REC-5: {"total", "open", "answered", "closed", "unanswered_oldest"}
    inspectors: int = 0
    encrypted_columns: list = field(default_factory=list)  # REC-4
    grades: list | None = None  # GRD-*: kept for ATT-6 (None: nothing graded); see ``grading``
    grading: GradingFacts | None = None  # GRD-2…6: None until the course was graded
    grade_weights: dict | None = None  # GRD-1: the syllabus's weights (or the default 80/20)
    missing_regular_exams: list = field(default_factory=list)  # GRD-3: learners who sat no regular exam
    regular_exams: int = 0  # GRD-3: regular exams the course holds
    registrations: list | None = None  # ENR-1/ENR-5: RegistrationFact; None: not gathered
    refunds: list | None = None  # ENR-4: RefundFact; None: not gathered

    @property
    def ends_on(self) -> date:
        return att.course_ends_on(self.starts_on, self.weeks)


# --- the registry -------------------------------------------------------------------------------

CHECKS: dict[str, Callable[[CourseFacts, datetime], Verdict]] = {}


def check(rule: str):
    def deco(fn):
        CHECKS[rule] = fn
        return fn
    return deco


NOT_CHECKABLE_REASONS = {
    "CRS-6": "기관 단위 규칙이며 개발 교강사와 운영 교강사의 동일 여부가 LMS 데이터에 없습니다.",
    "CRS-13": "모집 공고(홈페이지·광고)는 LMS 밖에서 이루어집니다.",
    "ENR-6": "국가평생교육진흥원 정보시스템 보고는 LMS 밖에서 이루어집니다.",
    "GRD-7": "학점은행 정보시스템 보고는 LMS 밖에서 이루어집니다.",
    "GRD-8": "다른 과정의 재수강·학점 인정 이력이 LMS에 없습니다.",
    "SYS-1": "기능 목록은 시스템 점검 대상이며 과정 데이터로 확인할 수 없습니다.",
    "SYS-2": "서버 이중화·DB 용량은 인프라 점검 대상입니다.",
    "SYS-3": "접근통제·관제·방화벽은 인프라 점검 대상입니다.",
}


def evaluate(facts: CourseFacts, now: datetime) -> list[Verdict]:
    """Every rule of RULES.md, in order: its check, or why data cannot show it."""
    out = []
    for rule in ALL_RULES:
        if rule in CHECKS:
            out.append(CHECKS[rule](facts, now))
        else:
            out.append(Verdict(rule, NOT_CHECKABLE, NOT_CHECKABLE_REASONS.get(rule, "데이터로 확인할 수 없습니다.")))
    return out


def counts(verdicts: list[Verdict]) -> dict[str, int]:
    out = {s: 0 for s in STATUSES}
    for v in verdicts:
        out[v.status] += 1
    return out


def term_of(day: date) -> str:
    """The credit-bank half a date falls in: ``YYYY-1`` (Mar–Aug) or ``YYYY-2`` (Sep–Feb,
    January and February belonging to the previous year's second half)."""
    if 3 <= day.month <= 8:
        return f"{day.year}-1"
    return f"{day.year if day.month >= 9 else day.year - 1}-2"


def _v(rule, ok: bool, good: str, bad: str, **evidence) -> Verdict:
    return Verdict(rule, PASS if ok else FAIL, good if ok else bad, evidence)


def _course_over(f: CourseFacts, now: datetime) -> bool:
    return now >= att.attendance_deadline(f.starts_on, f.weeks, f.weeks)


# --- CRS ------------------------------------------------------------------------------------------

def _content_problem(f: CourseFacts, rule: str):
    problems = crs.publish_problems(weeks=f.weeks, credits=f.credits, practice=f.practice, lessons=f.lessons)
    return next((p for p in problems if p.rule == rule), None)


@check("CRS-1")
def check_crs_1(f, now):
    p = _content_problem(f, "CRS-1")
    return _v("CRS-1", p is None, f"{f.weeks}주 운영 (최소 {crs.MIN_WEEKS}주)",
              f"{f.weeks}주 운영: 최소 {crs.MIN_WEEKS}주에 미달", weeks=f.weeks)


@check("CRS-2")
def check_crs_2(f, now):
    units = sum(crs.lesson_units(l.kind, l.duration_seconds, l.frames) for l in f.lessons)
    need = crs.required_units(f.credits, f.practice)
    return _v("CRS-2", units >= need, f"수업 단위 {units} / 필요 {need}",
              f"수업 단위 {units}: {f.credits}학점에 필요한 {need}에 미달", units=units, required=need)


@check("CRS-3")
def check_crs_3(f, now):
    p = _content_problem(f, "CRS-3")
    short = p.lessons if p else []
    if not f.lessons:
        return Verdict("CRS-3", FAIL, "등록된 차시가 없습니다.", {"lessons": 0})
    return _v("CRS-3", not short, f"모든 차시 {len(f.lessons)}개가 25분 이상 또는 20프레임 이상",
              f"25분·20프레임 미만 차시 {len(short)}개", short_lessons=short)


@check("CRS-4")
def check_crs_4(f, now):
    p = _content_problem(f, "CRS-4")
    thin = p.weeks if p else []
    return _v("CRS-4", not thin, f"모든 주차에 차시 {crs.MIN_LESSONS_PER_WEEK}개 이상",
              f"차시가 {crs.MIN_LESSONS_PER_WEEK}개 미만인 주차: {', '.join(map(str, thin))}", weeks=thin)


@check("CRS-5")
def check_crs_5(f, now):
    p = _content_problem(f, "CRS-5")
    return _v("CRS-5", p is None, "1주차에 개발 교강사 주요 경력 소개 차시가 있습니다.",
              "1주차에 개발 교강사 주요 경력 소개 차시가 없습니다.")


@check("CRS-7")
def check_crs_7(f, now):
    problems = []
    cap = crs.capacity_problem(f.capacity, f.accredited_capacity)
    if cap:
        problems.append(f"과정 정원 {f.capacity}: {cap}")
    over = [(name, n, c) for _id, name, c, n in f.sections if n > crs.MAX_SECTION_SIZE or n > c]
    problems += [f"분반 {name}: {n}명 (정원 {min(c, crs.MAX_SECTION_SIZE)})" for name, n, c in over]
    loads = {u: n for u, n in f.instructor_loads.items() if n > MAX_INSTRUCTOR_LOAD}
    problems += [f"운영 교강사 {u}: 학습자 {n}명 (최대 {MAX_INSTRUCTOR_LOAD})" for u, n in loads.items()]
    if f.enrolled > f.capacity:
        problems.append(f"수강 인원 {f.enrolled}명이 과정 정원 {f.capacity}명 초과")
    return _v("CRS-7", not problems,
              f"정원 {f.capacity}, 수강 {f.enrolled}명, 분반 {len(f.sections)}개 모두 200명 이하",
              "; ".join(problems), capacity=f.capacity, enrolled=f.enrolled,
              sections=[{"name": s[1], "capacity": s[2], "enrolled": s[3]} for s in f.sections],
              instructor_loads=f.instructor_loads)


@check("CRS-8")
def check_crs_8(f, now):
    need = max(1, -(-f.institution_capacity // TA_PER_CAPACITY))
    ok = f.institution_tas >= need
    return _v("CRS-8", ok, f"기관 조교 {f.institution_tas}명 (필요 {need}명, 총 정원 {f.institution_capacity}); 학위 요건은 LMS 데이터 밖",
              f"기관 조교 {f.institution_tas}명: 총 정원 {f.institution_capacity}명에 필요한 {need}명에 미달",
              tas=f.institution_tas, needed=need, total_capacity=f.institution_capacity)


@check("CRS-9")
def check_crs_9(f, now):
    return _v("CRS-9", not f.unhosted_video_lessons,
              "모든 수업이 원격이며 콘텐츠가 LMS에 탑재되어 있습니다 (오프라인 수업 0%).",
              f"LMS에 콘텐츠가 없는 영상 차시 {len(f.unhosted_video_lessons)}개",
              unhosted_lessons=f.unhosted_video_lessons)


@check("CRS-10")
def check_crs_10(f, now):
    if not f.weeks_checked:
        return Verdict("CRS-10", NA, "아직 끝난 주차가 없습니다.")
    if not f.staff:
        return Verdict("CRS-10", FAIL, "배정된 교강사·조교가 없습니다.", {"weeks_checked": f.weeks_checked})
    missed = {w: names for w, names in f.staff_missing.items() if names}
    return _v("CRS-10", not missed,
              f"교강사·조교 {len(f.staff)}명이 끝난 {len(f.weeks_checked)}개 주차마다 접속",
              "주 1회 이상 접속하지 않은 교강사·조교: " + "; ".join(
                  f"{w}주차 {', '.join(n)}" for w, n in sorted(missed.items())),
              weeks_checked=f.weeks_checked, missed={str(w): n for w, n in sorted(missed.items())})


@check("CRS-11")
def check_crs_11(f, now):
    return _v("CRS-11", f.board_available, "실시간 학습 현황판(10초 이내 갱신)이 운영 중입니다.",
              "실시간 학습 현황판이 없습니다.")


@check("CRS-12")
def check_crs_12(f, now):
    if f.syllabus is None:
        return Verdict("CRS-12", FAIL, "수업계획서가 없습니다.")
    missing = [k for k in SYLLABUS_FIELDS if not f.syllabus.get(k)]
    topics = f.syllabus.get("weekly_topics") or []
    if topics and len(topics) < f.weeks:
        missing.append(f"weekly_topics ({len(topics)}/{f.weeks})")
    periods = f.syllabus.get("exam_periods") or {}
    missing += [f"exam_periods.{k}" for k in exm.REGULAR_KINDS if periods and not periods.get(k)]
    late = (f.published_at is not None and f.syllabus_updated_at is not None
            and f.syllabus_updated_at > f.published_at)
    problems = list(missing)
    if late:
        problems.append("공개(모집) 후 수정됨")
    return _v("CRS-12", not problems, "수업계획서의 필수 항목이 모두 있고 공개 전에 작성되었습니다.",
              "수업계획서 문제: " + ", ".join(problems), missing=missing,
              updated_after_publishing=late)


@check("CRS-14")
def check_crs_14(f, now):
    return Verdict("CRS-14", NA, f"수강 신청 {f.enrolled}명: 10명 이하이면 폐강할 수 있다는 허용 규정입니다.",
                   {"enrolled": f.enrolled})


@check("CRS-15")
def check_crs_15(f, now):
    return Verdict("CRS-15", NA, "데이터 없음: 강의평가 기능이 아직 없습니다.")


# --- ENR --------------------------------------------------------------------------------------------

LATE_REGISTRATION = timedelta(days=14)  # ENR-1: late registration within 2 weeks of the start


def registration_deadline(starts_on: date) -> date:
    """ENR-1: registration closes the day before the course starts (KST)."""
    return starts_on - timedelta(days=1)


UNDOCUMENTED_OVERRIDE = "사유 미기재"  # lms.enrolment.service: an override saved without a reason says so


def registration_problems(r: RegistrationFact, starts_on: date, now: datetime) -> list[str]:
    """ENR-1 for one registration: after the deadline only with a late right (within 2 weeks)
    or a documented administrator's override; paid (or waived, or free) by the payment
    deadline unless an override; an unpaid one must not still be running after it."""
    out = []
    deadline = enr.registration_deadline(starts_on)
    if r.registered_at >= deadline:
        if r.kind == enr.LATE:
            if r.registered_at.replace(microsecond=0) > enr.late_registration_deadline(starts_on):
                out.append("추가 등록 기간(개강 후 2주) 경과 후 등록")
        elif r.kind == enr.ADMIN_OVERRIDE:
            if not (r.reason or "").strip() or UNDOCUMENTED_OVERRIDE in (r.reason or ""):
                out.append("사유가 기록되지 않은 관리자 직권 등록")
        else:
            out.append("등록 마감(개강일 전일) 후 추가 등록 사유 없이 등록")
    state = enr.payment_state(r.fee, r.paid_by_deadline, waived=r.waived)
    pay_deadline = enr.payment_deadline(starts_on, r.kind, r.registered_at)
    still_running = r.status != "cancelled" or (r.cancelled_at is not None and pay_deadline is not None
                                                and r.cancelled_at >= pay_deadline + UNPAID_GRACE)
    if enr.unpaid_at_deadline(state, pay_deadline, now) and still_running:
        out.append(f"납부 기한까지 학습비 미납 ({r.paid_by_deadline:,} / {r.fee:,}원)")
    return out


UNPAID_GRACE = timedelta(hours=1)  # ENR-1: the unpaid-cancellation job runs every 5 minutes


@check("ENR-1")
def check_enr_1(f, now):
    if f.registrations is None:
        if f.enrolled == 0 and not f.enrolments_after_late_limit:
            return Verdict("ENR-1", NA, "수강 등록자가 없습니다.")
        return _v("ENR-1", not f.enrolments_after_late_limit,
                  f"개강 2주 이후 등록 없음 (개강 후 추가 등록 {len(f.enrolments_late)}명은 사유 확인 필요)",
                  f"개강 2주가 지난 뒤 등록: {', '.join(f.enrolments_after_late_limit)}",
                  late=f.enrolments_late, after_limit=f.enrolments_after_late_limit)
    if not f.registrations:
        return Verdict("ENR-1", NA, "수강 등록자가 없습니다.")
    bad = [{"learner": r.learner, "problems": p} for r in f.registrations
           if (p := registration_problems(r, f.starts_on, now))]
    kinds = {k: sum(1 for r in f.registrations if r.kind == k) for k in enr.REGISTRATION_KINDS}
    unpaid_cancelled = sum(1 for r in f.registrations if r.status == "cancelled" and r.fee and enr.payment_state(
        r.fee, r.paid_by_deadline, waived=r.waived) in (enr.UNPAID, enr.PARTIAL))
    overrides = [{"learner": r.learner, "reason": r.reason} for r in f.registrations if r.kind == enr.ADMIN_OVERRIDE]
    return _v("ENR-1", not bad,
              f"등록 {len(f.registrations)}건: 정규 {kinds['regular']}, 추가 등록 {kinds['late']}, 관리자 직권 "
              f"{kinds['admin_override']} — 마감 후 등록은 모두 추가 등록 자격 또는 사유가 기록된 직권 등록이며 "
              f"납부 기한 미납 등록은 취소됨",
              f"등록 마감·납부 기한 위반 {len(bad)}건", problems=bad, kinds=kinds, overrides=overrides,
              unpaid_cancelled=unpaid_cancelled)


@check("ENR-2")
def check_enr_2(f, now):
    if f.enrolled == 0:
        return Verdict("ENR-2", NA, "수강 등록자가 없습니다.")
    return _v("ENR-2", not f.consents_missing, f"수강생 {f.enrolled}명 모두 수업계획서 동의·확인",
              f"수업계획서 동의 기록이 없는 수강생 {len(f.consents_missing)}명",
              missing=f.consents_missing)


def credit_periods(end: date) -> tuple[str, str]:
    """ENR-3: the year (Mar 1 – end of Feb) and half a course ending on ``end`` counts in."""
    year = end.year if end.month >= 3 else end.year - 1
    half = 1 if 3 <= end.month <= 8 else 2
    return f"{year}", f"{year}-{half}"


def credit_cap_excess(courses: list[tuple[date, int]]) -> list[tuple[str, int, int]]:
    """ENR-3: [(period, credits, cap)] of the periods where a learner's courses (end date,
    credits) exceed 42 credits a year or 24 a half."""
    years: dict[str, int] = defaultdict(int)
    halves: dict[str, int] = defaultdict(int)
    for end, credits in courses:
        y, h = credit_periods(end)
        years[y] += credits
        halves[h] += credits
    out = [(y, n, YEAR_CREDIT_CAP) for y, n in sorted(years.items()) if n > YEAR_CREDIT_CAP]
    out += [(h, n, HALF_CREDIT_CAP) for h, n in sorted(halves.items()) if n > HALF_CREDIT_CAP]
    return out


@check("ENR-3")
def check_enr_3(f, now):
    if f.credit_over_cap is None:
        return Verdict("ENR-3", NA, "데이터 없음: 수강 등록 기록이 없습니다.")
    return _v("ENR-3", not f.credit_over_cap, "학습자 모두 연 42학점·학기 24학점 이하",
              f"학점 상한 초과 학습자 {len({r[0] for r in f.credit_over_cap})}명",
              over=[{"learner": u, "period": p, "credits": n, "cap": c} for u, p, n, c in f.credit_over_cap])


@check("ENR-4")
def check_enr_4(f, now):
    if f.refunds is None:
        return Verdict("ENR-4", NA, "데이터 없음: 환불 기록을 확인하지 않았습니다.")
    if not f.refunds:
        return Verdict("ENR-4", NA, "이 과정에 결정된 학습비 반환이 없습니다.")
    late = []
    for r in f.refunds:
        paid_on = r.refunded_at.astimezone(att.KST).date() if r.refunded_at else None
        if (paid_on is not None and paid_on > r.due_on) or enr.refund_overdue(r.due_on, paid_on is not None, now):
            late.append({"id": r.id, "learner": r.learner, "amount": r.amount, "due_on": r.due_on.isoformat(),
                         "refunded_on": paid_on.isoformat() if paid_on else None})
    return _v("ENR-4", not late, f"반환 {len(f.refunds)}건 모두 사유 발생 5일 이내 반환(또는 기한 전)",
              f"5일 기한을 넘긴 반환 {len(late)}건", late=late, refunds=len(f.refunds))


@check("ENR-5")
def check_enr_5(f, now):
    if f.registrations is None:
        return Verdict("ENR-5", NA, "데이터 없음: 학적부 기록을 확인하지 않았습니다.")
    regs = [r for r in f.registrations if r.status != "cancelled" or r.register_entry_at is not None]
    if not regs:
        return Verdict("ENR-5", NA, "수강 등록자가 없습니다.")
    due = enr.register_due(f.starts_on)
    late = []
    for r in regs:
        limit = max(due, r.registered_at)  # a registration made after the 3 weeks: created with it
        if r.register_entry_at is None:
            if now > limit:
                late.append({"learner": r.learner, "entry": None})
        elif r.register_entry_at > limit:
            late.append({"learner": r.learner, "entry": r.register_entry_at.isoformat()})
    made = sum(1 for r in regs if r.register_entry_at is not None)
    return _v("ENR-5", not late, f"학적부 {made}/{len(regs)}건이 개강 후 3주({due.date().isoformat()}) 이내 생성",
              f"개강 후 3주 이내에 학적부가 생성되지 않은 학습자 {len(late)}명", late=late, due=due.isoformat())


# --- ATT ----------------------------------------------------------------------------------------------

@check("ATT-1")
def check_att_1(f, now):
    bad = f.attended_late + f.attended_incomplete
    total = sum(f.progress_counts.values())
    if total == 0:
        return Verdict("ATT-1", NA, "출결 기록이 없습니다.")
    return _v("ATT-1", not bad,
              f"출석 {f.progress_counts.get('attended', 0)}건 모두 기한 내 100% 시청",
              f"기한 후 완료 또는 100% 미만인데 출석 처리된 기록 {len(bad)}건",
              attended_late=f.attended_late, attended_incomplete=f.attended_incomplete,
              statuses=f.progress_counts)


@check("ATT-2")
def check_att_2(f, now):
    total = sum(f.progress_counts.values())
    if total == 0:
        return Verdict("ATT-2", NA, "출결 기록이 없습니다.")
    return _v("ATT-2", not f.unsettled_past_deadline,
              f"출결 {total}건 모두 시스템이 자동 판정 (수동 입력 경로 없음: 출결은 시청 기록에서만 계산)",
              f"기한이 지났는데 자동 판정되지 않은 기록 {len(f.unsettled_past_deadline)}건",
              statuses=f.progress_counts, unsettled=f.unsettled_past_deadline,
              manual_edit_path=False)


@check("ATT-3")
def check_att_3(f, now):
    if f.logins == 0 and not f.learners_without_otp:
        return Verdict("ATT-3", NA, "학습자 로그인 기록이 없습니다.")
    return _v("ATT-3", not f.learners_without_otp,
              f"학습자 로그인 {f.logins}건 모두 OTP 2단계 인증 후 (OTP 없이는 세션이 열리지 않음)",
              f"OTP 인증을 마치지 않은 학습자의 로그인 {len(f.learners_without_otp)}명",
              logins=f.logins, without_otp=f.learners_without_otp)


@check("ATT-4")
def check_att_4(f, now):
    if f.views == 0:
        return Verdict("ATT-4", NA, "시청 기록이 없습니다.")
    ok = f.heartbeats > 0
    return _v("ATT-4", ok,
              f"시청 {f.views}건, 하트비트 {f.heartbeats}건 검증, 확인 문제 {f.challenges}건 (통과 {f.challenges_passed}), "
              f"인정되지 않은 초과 주장 {f.excess_seconds:.0f}초",
              "시청 기록에 수강 확인(하트비트) 기록이 없습니다.", views=f.views, heartbeats=f.heartbeats,
              challenges=f.challenges, challenges_passed=f.challenges_passed,
              excess_seconds=round(f.excess_seconds, 1))


@check("ATT-5")
def check_att_5(f, now):
    return _v("ATT-5", not f.excused_over_cap, "공결 인정이 모든 학습자에게 총 수업시간의 20% 이하",
              f"공결 인정이 20%를 넘은 학습자 {len(f.excused_over_cap)}명",
              over=[{"learner": u, "excused_units": e, "total_units": t} for u, e, t in f.excused_over_cap])


@check("ATT-6")
def check_att_6(f, now):
    if f.grading is None or not f.grading.rows:
        return Verdict("ATT-6", NA, f"데이터 없음: 성적 기록이 없어 F 처리를 확인할 수 없습니다. "
                                    f"출석률 80% 미만 학습자 {len(f.learners_below_minimum)}명",
                       {"below_80": [{"learner": u, "rate": r} for u, r in f.learners_below_minimum]})
    g = f.grading
    below = {u for u, _r in f.learners_below_minimum}
    rows = {r.learner: r for r in g.rows} if g else {}
    wrong = [u for u in sorted(below) if u in rows and not _is_fail(rows[u])]
    return _v("ATT-6", not wrong, f"출석률 80% 미만 학습자 {len(below)}명 모두 F 처리",
              f"출석률 80% 미만인데 F가 아닌 학습자 {len(wrong)}명", wrong=wrong,
              below_80=[{"learner": u, "rate": r} for u, r in f.learners_below_minimum])


@check("ATT-7")
def check_att_7(f, now):
    return _v("ATT-7", not f.scale_problems, f"출석 점수 척도가 {att.MAX_ATTENDANCE_POINTS}점 이하로 정해져 있습니다.",
              "출석 점수 척도 문제: " + "; ".join(f.scale_problems), problems=f.scale_problems)


@check("ATT-8")
def check_att_8(f, now):
    if not f.enlisted:
        return Verdict("ATT-8", NA, "입대한 학습자가 없습니다.")
    return Verdict("ATT-8", PASS, f"입대 학습자 {len(f.enlisted)}명: 2/3 이상 출석자는 입대 전까지의 출석률로 점수 산정",
                   {"enlisted": [{"learner": u, "eligible": e, "rate": r} for u, e, r in f.enlisted]})


@check("ATT-9")
def check_att_9(f, now):
    state = f.record_state
    if state in (None, "not_due", "open"):
        return Verdict("ATT-9", NA, "출석부 제출 기한 전입니다." if state else "과정 정보 없음", {"state": state})
    return _v("ATT-9", state == "on_time", "출석부를 과정 종료 후 1주 이내에 제출",
              "출석부 제출 기한 초과" + (" (지연 제출)" if state == "late" else " (미제출)"),
              state=state, submitted_at=f.record_submitted_at.isoformat() if f.record_submitted_at else None)


# --- EXM ------------------------------------------------------------------------------------------------

def _exam_problems(e: ExamFact) -> list:
    announced = e.announced_at or e.opens_at  # not announced: no lead at all
    return exm.exam_problems(kind=e.kind, opens_at=e.opens_at, closes_at=e.closes_at,
                             duration_minutes=e.duration_minutes, items_per_difficulty=e.items_per_difficulty,
                             levels=e.levels, bank_counts=e.bank_at_open, announced_at=announced, period=e.period)


def _exam_rule(f: CourseFacts, rule: str, good: str, describe) -> Verdict:
    if not f.exams:
        return Verdict(rule, NA, "시험이 없습니다.")
    bad = {}
    for e in f.exams:
        msgs = [p.message for p in _exam_problems(e) if p.rule == rule]
        if msgs:
            bad[e.title] = msgs
    return _v(rule, not bad, good, "; ".join(f"{t}: {', '.join(m)}" for t, m in bad.items()),
              exams=[describe(e) for e in f.exams])


@check("EXM-1")
def check_exm_1(f, now):
    kinds = {e.kind for e in f.exams}
    missing = [k for k in exm.REGULAR_KINDS if k not in kinds]
    if missing and not _course_over(f, now):
        return Verdict("EXM-1", NA, "과정이 진행 중입니다.", {"kinds": sorted(kinds)})
    return _v("EXM-1", not missing, "중간고사와 기말고사를 온라인으로 실시",
              f"정기시험 없음: {', '.join(missing)}", kinds=sorted(kinds))


@check("EXM-2")
def check_exm_2(f, now):
    return _exam_rule(f, "EXM-2", "시험 기간이 모두 4일 이내이며 수업계획서의 기간 안에 있습니다.",
                      lambda e: {"title": e.title, "days": exm.window_days(e.opens_at, e.closes_at),
                                 "period": list(e.period) if e.period else None})


@check("EXM-3")
def check_exm_3(f, now):
    return _exam_rule(f, "EXM-3", "모든 시험이 난이도 3단계 이상에서 무작위 출제",
                      lambda e: {"title": e.title, "items_per_difficulty": e.items_per_difficulty})


@check("EXM-4")
def check_exm_4(f, now):
    return _exam_rule(f, "EXM-4", "시험 시간 60분 이하 (장애 학습자 90분 이하)",
                      lambda e: {"title": e.title, "minutes": e.duration_minutes})


@check("EXM-5")
def check_exm_5(f, now):
    return _exam_rule(f, "EXM-5", "시험 시작 시점의 문항은행이 난이도별 출제 문항의 3배 이상",
                      lambda e: {"title": e.title, "bank_at_open": e.bank_at_open,
                                 "drawn": e.items_per_difficulty})


@check("EXM-6")
def check_exm_6(f, now):
    if not f.exams:
        return Verdict("EXM-6", NA, "시험이 없습니다.")
    return Verdict("EXM-6", PASS, "문항이 LMS 문항은행에 있고 출제는 문항은행에서만 이루어집니다.",
                   {"bank": {e.title: e.bank_at_open for e in f.exams}})


@check("EXM-7")
def check_exm_7(f, now):
    if not f.exams:
        return Verdict("EXM-7", NA, "시험이 없습니다.")
    bad = [e.title for e in f.exams if e.announced_at is None
           or e.opens_at - e.announced_at < exm.ANNOUNCE_LEAD]
    return _v("EXM-7", not bad, "모든 시험을 시작 2주 전까지 공지 (게시판과 학습자 개별 알림)",
              f"2주 전에 공지되지 않은 시험: {', '.join(bad)}",
              exams=[{"title": e.title, "announced_at": e.announced_at.isoformat() if e.announced_at else None,
                      "opens_at": e.opens_at.isoformat()} for e in f.exams])


def _attempts(f: CourseFacts) -> int:
    return sum(e.attempts for e in f.exams)


@check("EXM-8")
def check_exm_8(f, now):
    if _attempts(f) == 0:
        return Verdict("EXM-8", NA, "응시 기록이 없습니다.")
    missing = {e.title: e.attempts - e.attempts_with_start for e in f.exams if e.attempts_with_start < e.attempts}
    return _v("EXM-8", not missing, f"응시 {_attempts(f)}건 모두 OTP 재인증 후 시작 기록",
              "OTP 시작 기록이 없는 응시: " + ", ".join(f"{t} {n}건" for t, n in missing.items()),
              missing=missing)


@check("EXM-9")
def check_exm_9(f, now):
    if _attempts(f) == 0:
        return Verdict("EXM-9", NA, "응시 기록이 없습니다.")
    shared = [s for e in f.exams for s in e.shared_addresses]
    blocked = sum(e.blocked_events for e in f.exams)
    return _v("EXM-9", not shared,
              f"다른 학습자와 같은 IP·기기로 응시한 기록 없음; 차단된 시도 {blocked}건 기록됨",
              f"예외 승인 없이 같은 IP·기기를 쓴 응시 쌍 {len(shared)}건",
              shared=[{"attempts": [a, b], "kind": k, "value": v} for a, b, k, v in shared], blocked=blocked)


@check("EXM-10")
def check_exm_10(f, now):
    if _attempts(f) == 0:
        return Verdict("EXM-10", NA, "응시 기록이 없습니다.")
    missing = [a for e in f.exams for a in e.attempts_missing_evidence]
    return _v("EXM-10", not missing, f"응시 {_attempts(f)}건 모두 시작·종료 시각과 IP 보관",
              f"시작·종료 시각 또는 IP가 없는 응시 {len(missing)}건", attempts=missing)


@check("EXM-11")
def check_exm_11(f, now):
    approved = [m for m in f.makeups if m.status == "approved"]
    if not approved:
        return Verdict("EXM-11", NA, "승인된 추가시험이 없습니다.", {"requests": len(f.makeups)})
    bad = []
    for m in approved:
        if m.decided_at is None or m.window_closes_at is None:
            bad.append(m.id)
            continue
        _o, close = exm.makeup_window(m.decided_at)
        if m.window_closes_at > close or (m.attempt_started_at is not None
                                          and not m.window_opens_at <= m.attempt_started_at < m.window_closes_at):
            bad.append(m.id)
    return _v("EXM-11", not bad, f"승인된 추가시험 {len(approved)}건 모두 5일 이내 실시 (성적 상한 B+)",
              f"5일 기한을 벗어난 추가시험 {len(bad)}건", requests=[m.id for m in approved], outside=bad)


@check("EXM-12")
def check_exm_12(f, now):
    if _attempts(f) == 0:
        return Verdict("EXM-12", NA, "응시 기록이 없습니다.")
    keyless = [v for e in f.exams for v in e.keyless_versions]
    return _v("EXM-12", not keyless, "출제된 문항 모두 채점 기준(정답·모범답안)이 채점 전에 있습니다.",
              f"정답·모범답안 없이 출제된 문항 판 {len(keyless)}개", versions=keyless)


@check("EXM-13")
def check_exm_13(f, now):
    if not f.findings:
        return Verdict("EXM-13", NA, "기록된 부정행위가 없습니다.")
    unflagged = [fid for fid, _u, _k, _a, flagged in f.findings if not flagged]
    return _v("EXM-13", not unflagged,
              f"부정행위 {len(f.findings)}건 기록, 해당 응시에 성적 미부여 표시 (성적 처리 데이터는 아직 없음)",
              f"응시에 부정행위 표시가 없는 기록 {len(unflagged)}건",
              findings=[{"id": i, "learner": u, "kind": k, "attempt": a} for i, u, k, a, _fl in f.findings])


# --- GRD ------------------------------------------------------------------------------------------------

def _is_fail(r: GradeRow) -> bool:
    """GRD-3/ATT-6: F (NP under P/F), or no grade at all after a cheating finding (EXM-13)."""
    return r.grade in (grd.F, grd.FAIL, None)


def _graded(f: CourseFacts) -> GradingFacts | None:
    return f.grading if f.grading is not None and f.grading.rows else None


@check("GRD-1")
def check_grd_1(f, now):
    if f.grade_weights is None:
        return Verdict("GRD-1", NA, "데이터 없음: 평가 비율을 확인하지 않았습니다.")
    w = f.grade_weights
    problem = grd.weights_problem(w)
    text = ", ".join(f"{k} {v}%" for k, v in w.items())
    return _v("GRD-1", problem is None, f"평가 비율 {text} (출석 {grd.MAX_ATTENDANCE_WEIGHT}% 이하, 합계 100%)",
              f"평가 비율 {text}: " + ("출석 비율이 20%를 넘습니다" if w.get("attendance", 0) > grd.MAX_ATTENDANCE_WEIGHT
                                   else "합계가 100%가 아니거나 알 수 없는 항목이 있습니다"),
              weights=dict(w), attendance_max=grd.MAX_ATTENDANCE_WEIGHT, total=sum(w.values()))


@check("GRD-2")
def check_grd_2(f, now):
    g = _graded(f)
    if g is None:
        return Verdict("GRD-2", NA, "데이터 없음: 성적이 아직 산출되지 않았습니다.")
    free = [r for r in g.rows if not r.fixed_by]  # F by ATT-6/GRD-3 and EXM-13: outside the head count
    dist = grd.distribution([r.grade for r in free if r.grade])
    evidence = {"scheme": g.scheme, "class_size": len(free), "counts": dist.counts,
                "allowed": {b: list(v) for b, v in dist.allowed.items()},
                "shares": {b: round(float(dist.share(b)) * 100, 1) for b in dist.counts},
                "finalized": g.finalized_at is not None, "practice": f.practice}
    bad_grades = sorted({r.grade for r in g.rows if r.grade is not None
                         and r.grade not in grd.GRADES + (grd.PASS, grd.FAIL)})
    if bad_grades:
        return Verdict("GRD-2", FAIL, f"9등급 외의 성적: {', '.join(bad_grades)}", evidence)
    if g.scheme != "relative":
        problem = grd.scheme_problem(g.scheme, len(free), f.practice)
        label = "절대평가" if g.scheme == "absolute" else "P/F"
        return Verdict("GRD-2", FAIL if problem else PASS,
                       f"{label} 적용 불가: 수강생 {len(free)}명, 실습 과정 아님" if problem else
                       f"{label} 적용 (상대평가 예외: " + ("실습 과정" if f.practice else f"수강생 {len(free)}명 < 10명")
                       + ")", {**evidence, "exempt": not problem})
    if g.finalized_at is None:
        return Verdict("GRD-2", NA, "성적 미확정: 현재 분포 " + ", ".join(
            f"{b} {dist.counts[b]}명" for b in dist.counts), {**evidence, "problems": dist.problems})
    return _v("GRD-2", dist.ok, "확정된 상대평가 분포가 A 20–30%, B 30–40%, C 이하 30–50% 범위 안: " + ", ".join(
        f"{b} {evidence['shares'][b]}%" for b in dist.counts), "확정된 상대평가 분포 위반: " + "; ".join(dist.problems),
        **evidence, problems=dist.problems)


@check("GRD-3")
def check_grd_3(f, now):
    g = _graded(f)
    if g is None:
        return Verdict("GRD-3", NA, "데이터 없음: 성적이 아직 산출되지 않았습니다.")
    rows = {r.learner: r for r in g.rows}
    below = sorted({u for u, _r in f.learners_below_minimum})
    missed = sorted(set(f.missing_regular_exams)) if f.regular_exams else []
    must_fail = sorted(set(below) | set(missed))
    wrong = [u for u in must_fail if u in rows and not _is_fail(rows[u])]
    return _v("GRD-3", not wrong, f"출석률 80% 미만 {len(below)}명·정기시험 모두 미응시 {len(missed)}명 모두 F",
              f"F여야 하는데 F가 아닌 학습자 {len(wrong)}명: {', '.join(wrong)}",
              below_80=below, missed_both=missed, wrong=[{"learner": u, "grade": rows[u].grade} for u in wrong])


@check("GRD-4")
def check_grd_4(f, now):
    g = _graded(f)
    if g is None:
        return Verdict("GRD-4", NA, "데이터 없음: 성적이 아직 산출되지 않았습니다.")
    wrong = []
    for r in g.rows:
        if r.grade is None or r.fixed_by:
            continue
        if r.grade not in grd.POINTS and r.grade not in (grd.PASS, grd.FAIL):
            wrong.append({"learner": r.learner, "grade": r.grade, "expected": None})
        elif g.scheme == "absolute" and r.score is not None:
            expected = grd.absolute_grade(r.score, r.cap)
            if r.grade != expected:
                wrong.append({"learner": r.learner, "score": r.score, "grade": r.grade, "expected": expected})
    points = {r.learner: (None if grd.points_for(r.grade) is None else float(grd.points_for(r.grade)))
              for r in g.rows}
    return _v("GRD-4", not wrong, "성적·평점이 점수 기준표(95 A+ 4.5 … 60 D0 1.0, 60 미만 F)를 따릅니다"
              + (" (절대평가: 점수별 등급 일치)" if g.scheme == "absolute" else ""),
              f"점수 기준표와 다른 성적 {len(wrong)}건", wrong=wrong, points=points)


@check("GRD-5")
def check_grd_5(f, now):
    g = _graded(f)
    if g is None:
        return Verdict("GRD-5", NA, "데이터 없음: 성적이 아직 산출되지 않았습니다.")
    wrong = []
    for r in g.rows:
        ok = grd.passed(r.grade)
        if r.enrollment_status == "completed" and not ok:
            wrong.append({"learner": r.learner, "grade": r.grade, "problem": "D0 미만인데 이수 처리"})
        if g.scheme == "pass_fail" and not r.fixed_by and r.score is not None and r.grade in (grd.PASS, grd.FAIL):
            if r.grade != grd.pass_fail_grade(r.score):
                wrong.append({"learner": r.learner, "grade": r.grade, "score": r.score,
                              "problem": f"P는 {grd.PASS_MIN_SCORE}점(D0) 이상"})
    passed = sum(1 for r in g.rows if grd.passed(r.grade))
    return _v("GRD-5", not wrong, f"이수 {passed}명 / {len(g.rows)}명 (D0 이상 또는 P)",
              f"이수 기준(D0 이상 또는 P)과 다른 처리 {len(wrong)}건", wrong=wrong, passed=passed, graded=len(g.rows))


@check("GRD-6")
def check_grd_6(f, now):
    ends = f.ends_on
    closes, due = grd.objection_closes(ends), grd.finalize_due(ends)
    g = f.grading
    if g is None and (now < due or f.enrolled == 0):
        return Verdict("GRD-6", NA, "데이터 없음: 성적이 아직 산출되지 않았습니다.")
    problems = []
    fin = g.finalized_at if g else None
    if fin is None:
        if now >= due:
            problems.append(f"확정 기한({due.isoformat()})이 지났는데 성적이 확정되지 않았습니다")
    elif fin < closes:
        problems.append("이의신청 기간(종강 후 14일)이 끝나기 전에 확정")
    elif fin >= due:
        problems.append("이의신청 기간 후 7일을 넘겨 확정")
    late = []
    for oid, learner, _created, answered in (g.objections if g else []):
        if (answered is None and now >= closes) or (answered is not None and answered >= closes):
            late.append({"id": oid, "learner": learner, "answered_at": answered.isoformat() if answered else None})
    if late:
        problems.append(f"기간 내 답변되지 않은 이의신청 {len(late)}건")
    if not problems and fin is None:
        return Verdict("GRD-6", NA, f"성적 미확정 (이의신청 {closes.isoformat()}까지, 확정 기한 {due.isoformat()})",
                       {"objection_closes": closes.isoformat(), "finalize_due": due.isoformat(),
                        "objections": len(g.objections) if g else 0})
    return _v("GRD-6", not problems, f"이의신청 {len(g.objections) if g else 0}건 기간 내 답변, "
              f"확정 {fin.isoformat() if fin else ''} (기한 {due.isoformat()})", "; ".join(problems),
              objection_closes=closes.isoformat(), finalize_due=due.isoformat(),
              finalized_at=fin.isoformat() if fin else None, late_objections=late)


# --- REC ------------------------------------------------------------------------------------------------

@check("REC-1")
def check_rec_1(f, now):
    problems = []
    if f.views_missing_ip:
        problems.append(f"접속 IP가 없는 시청 {len(f.views_missing_ip)}건")
    if f.views_without_end:
        problems.append(f"종료 시각이 없는 시청 {len(f.views_without_end)}건")
    if f.staff and f.weeks_checked and f.staff_access_rows == 0:
        problems.append("교강사·조교 접속 기록이 없습니다")
    return _v("REC-1", not problems,
              f"시청 {f.views}건 (IP·시작·종료 시각), 교강사·조교 접속 {f.staff_access_rows}건 보관 (5년)",
              "; ".join(problems), views=f.views, views_missing_ip=f.views_missing_ip,
              views_without_end=f.views_without_end, staff_access_rows=f.staff_access_rows)


@check("REC-2")
def check_rec_2(f, now):
    return Verdict("REC-2", NA, "데이터 없음: 학적부 기능이 아직 없습니다.")


@check("REC-3")
def check_rec_3(f, now):
    return Verdict("REC-3", PASS, "차시별 접속 IP·시작·종료 시각을 조회할 수 있습니다 (시청 기록, 접속 기록, 응시 기록).",
                   {"views": f.views, "staff_access_rows": f.staff_access_rows})


@check("REC-4")
def check_rec_4(f, now):
    return _v("REC-4", bool(f.encrypted_columns), "개인정보 열이 암호화되어 저장됩니다.",
              "암호화된 개인정보 열이 없습니다.", columns=f.encrypted_columns)


@check("REC-5")
def check_rec_5(f, now):
    c = f.complaints
    if c is None:
        return Verdict("REC-5", FAIL, "신문고·1:1 상담 창구가 없습니다.")
    return Verdict("REC-5", PASS, f"신문고·1:1 상담 창구 운영: 이 과정 {c['total']}건 (답변 대기 {c['open']}건)", c)


@check("REC-6")
def check_rec_6(f, now):
    return Verdict("REC-6", PASS, f"점검자 계정 {f.inspectors}개가 기록을 조회할 수 있습니다 (읽기 전용).",
                   {"inspectors": f.inspectors})


def excused_over(excused_units: int, total_units: int) -> bool:
    """ATT-5 as the report applies it: more excused units than 20% of the class time."""
    return not att.excuse_within_cap(excused_units, total_units)


def rate_percent(rate: Fraction) -> float:
    return round(float(rate) * 100, 1)
