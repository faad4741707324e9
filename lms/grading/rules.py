"""Grading rules (GRD-1…GRD-7, with ATT-6 and EXM-11/13 effects, ENR-6, CRS-15), pure.

Plain values in, plain values out; ``now`` is a parameter; exact arithmetic
(``Fraction``) so 19.9% and 20%, or 79.9 and 80 points, never meet in a float rounding.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction

from lms.clock import KST, kst_midnight

# --- GRD-4: score → grade → points (Guide 별표1) -----------------------------------------
GRADE_TABLE = (  # GRD-4: (minimum score inclusive, grade, points); below 60 → F
    (95, "A+", Fraction(9, 2)),
    (90, "A0", Fraction(4)),
    (85, "B+", Fraction(7, 2)),
    (80, "B0", Fraction(3)),
    (75, "C+", Fraction(5, 2)),
    (70, "C0", Fraction(2)),
    (65, "D+", Fraction(3, 2)),
    (60, "D0", Fraction(1)),
)
F = "F"
PASS, FAIL = "P", "NP"  # GRD-2: practice-only courses may be graded P/F (P/NP here: F is a letter)
GRADES = ("A+", "A0", "B+", "B0", "C+", "C0", "D+", "D0", "F")  # GRD-2: nine grades, best first
POINTS = {g: p for _m, g, p in GRADE_TABLE} | {F: Fraction(0)}  # GRD-4
PASSING_GRADE = "D0"  # GRD-5: passed at D0 or above, or P
PASS_MIN_SCORE = 60  # GRD-5 with GRD-4: a P needs the score a D0 needs

# --- GRD-1: components and weights --------------------------------------------------------
DEFAULT_WEIGHTS = {"exams": 80, "attendance": 20}  # GRD-1: exams 80% + attendance 20% by default
MAX_ATTENDANCE_WEIGHT = 20  # GRD-1 / ATT-7: attendance never above 20%
COMPONENTS = ("exams", "quizzes", "assignments", "participation", "attendance")  # syllabus keys (CRS-12)
ENTERED_COMPONENTS = ("assignments", "participation")  # scores the instructor records (0–100)

# --- GRD-2: relative grading --------------------------------------------------------------
SHARE_A = (Fraction(20, 100), Fraction(30, 100))  # GRD-2: A 20–30% of the class
SHARE_B = (Fraction(30, 100), Fraction(40, 100))  # GRD-2: B 30–40%
SHARE_C_BELOW = (Fraction(30, 100), Fraction(50, 100))  # GRD-2: C and below 30–50%
MIN_RELATIVE_CLASS = 10  # GRD-2: absolute grading allowed with fewer than 10 learners
SCHEMES = ("relative", "absolute", "pass_fail")

# --- GRD-6 / GRD-7 / ENR-6 / CRS-15: periods -----------------------------------------------
OBJECTION_DAYS = 14  # GRD-6: learners view grades and object within 14 days of the course end
FINALIZE_DAYS = 7  # GRD-6: grades final within 7 days after the objection period
FINALIZE_REMINDER_LEAD = timedelta(days=2)  # GRD-6: instructors reminded 2 days before
NILE_GRADES_DAYS = 7  # GRD-7: grades and attendance rates to NILE within 7 days of finalising
NILE_STATUS_SHARE = Fraction(1, 5)  # ENR-6: course status before 1/5 of total class time
EVALUATION_DAYS = 7  # CRS-15: course evaluation within 1 week after the course ends
EVALUATION_MIN_RESPONDENTS = 3  # CRS-15: fewer answers are not shown (nobody can be singled out)


def grade_for_score(score) -> str:
    """GRD-4: the grade of a 0–100 score by the table (no rounding: 94.99 is an A0)."""
    s = Fraction(score) if not isinstance(score, float) else Fraction(str(score))
    for minimum, grade, _p in GRADE_TABLE:
        if s >= minimum:
            return grade
    return F


def points_for(grade: str | None) -> Fraction | None:
    """GRD-4: points of a grade; None for no grade (EXM-13) and for P/NP."""
    return POINTS.get(grade) if grade is not None else None


def passed(grade: str | None) -> bool:
    """GRD-5: passed at D0 or above, or P."""
    if grade == PASS:
        return True
    if grade not in GRADES:
        return False
    return GRADES.index(grade) <= GRADES.index(PASSING_GRADE)


def band(grade: str) -> str:
    """GRD-2's three groups: "A", "B" or "C" (C and below, F and NP included)."""
    return grade[0] if grade[:1] in ("A", "B") else "C"


def cap_grade(grade: str, cap: str | None) -> str:
    """EXM-11: a make-up exam caps the grade (at B+): the worse of the two."""
    if cap is None or grade not in GRADES:
        return grade
    return grade if GRADES.index(grade) >= GRADES.index(cap) else cap


def above_cap(grade: str, cap: str | None) -> bool:
    return cap is not None and grade in GRADES and GRADES.index(grade) < GRADES.index(cap)


def weighted_score(weights: dict, percents: dict) -> Fraction:
    """GRD-1: Σ weight × component percent / 100 (0–100). A missing component scores 0."""
    total = Fraction(0)
    for name, weight in weights.items():
        value = percents.get(name)
        if value is None:
            continue
        v = Fraction(str(value)) if isinstance(value, float) else Fraction(value)
        total += Fraction(weight) * v / 100
    return total


def weights_problem(weights: dict) -> str | None:
    if any(k not in COMPONENTS for k in weights):
        return f"unknown component; components are {', '.join(COMPONENTS)}"
    if weights.get("attendance", 0) > MAX_ATTENDANCE_WEIGHT:
        return f"attendance weighs at most {MAX_ATTENDANCE_WEIGHT}% (GRD-1)"
    if sum(weights.values()) != 100:
        return "weights add up to 100"
    return None


def forced_f_reasons(*, attendance_below_80: bool, regular_exams: int, regular_sat: int) -> list[str]:
    """GRD-3 (and ATT-6): the reasons a learner gets F whatever the score: attendance
    below 80%, or missing both regular exams (every regular exam the course holds)."""
    out = []
    if attendance_below_80:
        out.append("ATT-6")
    if regular_exams > 0 and regular_sat == 0:
        out.append("GRD-3")
    return out


# --- GRD-2: the distribution check and the proposal ---------------------------------------

def allowed_counts(n: int, share: tuple[Fraction, Fraction]) -> tuple[int, int]:
    """The head counts whose share of ``n`` lies inside ``share`` (bounds inclusive, exact):
    ⌈low × n⌉ … ⌊high × n⌋. With 13 learners A may be 3 (23.1%): 2 is 15.4% and 4 is 30.8%."""
    lo, hi = share
    return math.ceil(lo * n), math.floor(hi * n)


@dataclass(frozen=True)
class Distribution:
    n: int
    counts: dict  # {"A": a, "B": b, "C": c}
    allowed: dict  # {"A": (lo, hi), ...} head counts
    ok: bool
    problems: list  # human text per band outside its range

    def share(self, b: str) -> Fraction:
        return Fraction(self.counts[b], self.n) if self.n else Fraction(0)


SHARES = {"A": SHARE_A, "B": SHARE_B, "C": SHARE_C_BELOW}


def distribution(grades: list[str]) -> Distribution:
    """GRD-2: the shares of A, B and C-and-below among ``grades`` (the relatively graded
    learners) and whether each lies inside its range."""
    n = len(grades)
    counts = {"A": 0, "B": 0, "C": 0}
    for g in grades:
        counts[band(g)] += 1
    allowed = {b: allowed_counts(n, SHARES[b]) for b in SHARES}
    problems = []
    for b, (lo, hi) in allowed.items():
        if not lo <= counts[b] <= hi:
            share = SHARES[b]
            problems.append(f"{b}: {counts[b]}/{n} = {float(Fraction(counts[b], n or 1)) * 100:.1f}% "
                            f"(allowed {int(share[0] * 100)}–{int(share[1] * 100)}%: {lo}–{hi} learners)")
    return Distribution(n=n, counts=counts, allowed=allowed, ok=not problems and n > 0, problems=problems)


def absolute_allowed(class_size: int, practice: bool) -> bool:
    """GRD-2: absolute grading with fewer than 10 learners, or for a practice course."""
    return class_size < MIN_RELATIVE_CLASS or practice


def default_scheme(class_size: int, practice: bool) -> str:
    return "absolute" if absolute_allowed(class_size, practice) else "relative"


def scheme_problem(scheme: str, class_size: int, practice: bool) -> str | None:
    if scheme not in SCHEMES:
        return f"scheme is one of {', '.join(SCHEMES)}"
    if scheme == "absolute" and not absolute_allowed(class_size, practice):
        return (f"absolute grading needs fewer than {MIN_RELATIVE_CLASS} learners or a practice course "
                f"(this class has {class_size})")
    if scheme == "pass_fail" and not practice:
        return "P/F grading is for practice courses only"
    return None


def absolute_grade(score, cap: str | None = None) -> str:
    """GRD-4 (absolute grading), capped by a make-up exam (EXM-11)."""
    return cap_grade(grade_for_score(score), cap)


def pass_fail_grade(score) -> str:
    """GRD-2/GRD-5: P at the score of a D0."""
    return PASS if Fraction(str(score) if isinstance(score, float) else score) >= PASS_MIN_SCORE else FAIL


def _split(top: str, low: str, k: int) -> list[str]:
    """A band of ``k`` learners: the better half (rounded up) gets ``top``, the rest ``low``."""
    upper = math.ceil(k / 2)
    return [top] * upper + [low] * (k - upper)


def propose_relative(learners: list[tuple[int, Fraction, str | None]]) -> dict[int, str]:
    """GRD-2: proposed grades for ``learners`` — (id, score, cap) — of the relative
    distribution: ranked by score (ties by id), the top ⌊30%⌋ A (never a learner capped at
    B+ by a make-up exam, EXM-11), the next ⌊40%⌋ B, the rest C and below. Inside A and B
    the better half (rounded up) gets the + grade; C and below follow the GRD-4 table,
    at most C+. Capped learners count in B. Every band keeps its minimum when the caps
    allow it; the page shows the check either way."""
    ranked = sorted(learners, key=lambda e: (-Fraction(e[1]), e[0]))
    n = len(ranked)
    a_max = allowed_counts(n, SHARE_A)[1]
    b_max = allowed_counts(n, SHARE_B)[1]
    bands: dict[int, str] = {}
    a_ids, b_ids = [], []
    for lid, _score, cap in ranked:
        if len(a_ids) < a_max and cap is None:
            a_ids.append(lid)
        elif len(b_ids) < b_max:
            b_ids.append(lid)
        else:
            bands[lid] = "C"
    out: dict[int, str] = {}
    for lid, g in zip(a_ids, _split("A+", "A0", len(a_ids))):
        out[lid] = g
    for lid, g in zip(b_ids, _split("B+", "B0", len(b_ids))):
        out[lid] = g
    scores = {lid: s for lid, s, _c in ranked}
    for lid in bands:
        g = grade_for_score(scores[lid])
        out[lid] = g if GRADES.index(g) >= GRADES.index("C+") else "C+"
    return out


# --- GRD-6 / GRD-7: periods (KST days) ------------------------------------------------------

def _kst_midnight(d: date) -> datetime:
    return kst_midnight(d)


def course_end_instant(ends_on: date) -> datetime:
    """The course ends at 24:00 KST of its last day."""
    return _kst_midnight(ends_on + timedelta(days=1))


def objection_closes(ends_on: date) -> datetime:
    """GRD-6: objections through the 14th KST day after the course end (exclusive bound)."""
    return _kst_midnight(ends_on + timedelta(days=OBJECTION_DAYS + 1))


def objection_open(ends_on: date, now: datetime) -> bool:
    """GRD-6: from the course end until the end of its 14th day after."""
    return course_end_instant(ends_on) <= now < objection_closes(ends_on)


def finalize_due(ends_on: date) -> datetime:
    """GRD-6: grades final within 7 days after the objection period (exclusive bound)."""
    return objection_closes(ends_on) + timedelta(days=FINALIZE_DAYS)


def may_finalize(ends_on: date, now: datetime) -> bool:
    """GRD-6: finalising waits until the objection period is over."""
    return now >= objection_closes(ends_on)


def may_adjust(ends_on: date, now: datetime) -> bool:
    """GRD-6: the instructor corrects grades on objections until the objection period closes."""
    return now < objection_closes(ends_on)


def reminder_due(ends_on: date, now: datetime) -> bool:
    return finalize_due(ends_on) - FINALIZE_REMINDER_LEAD <= now


def nile_grades_due(finalized_at: datetime) -> datetime:
    """GRD-7: the grade and attendance-rate report within 7 days of finalising (end of the
    7th KST day after)."""
    d = finalized_at.astimezone(KST).date()
    return _kst_midnight(d + timedelta(days=NILE_GRADES_DAYS + 1))


def nile_status_due(starts_on: date, ends_on: date) -> datetime:
    """ENR-6: before 1/5 of the total class time (00:00 KST of the first day to 24:00 of
    the last) has passed."""
    start = _kst_midnight(starts_on)
    total = course_end_instant(ends_on) - start
    return start + total * NILE_STATUS_SHARE.numerator / NILE_STATUS_SHARE.denominator


def evaluation_window(ends_on: date) -> tuple[datetime, datetime]:
    """CRS-15: opens at the course end, closes a week later (exclusive)."""
    start = course_end_instant(ends_on)
    return start, start + timedelta(days=EVALUATION_DAYS)


def evaluation_open(ends_on: date, now: datetime) -> bool:
    start, end = evaluation_window(ends_on)
    return start <= now < end
