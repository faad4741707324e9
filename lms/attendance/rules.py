"""Attendance rules (pure). Times are aware datetimes; rule days are KST calendar days."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from lms.clock import KST, kst_midnight

# ATT-1: a lesson counts only when 100% is viewed within 2 weeks after it opens.
ATTENDANCE_WINDOW = timedelta(days=14)  # ATT-1, Guide III-1-나-1)
DAYS_PER_WEEK = 7
# ATT-7 / GRD-1: the attendance score is at most 20% of the grade.
MAX_ATTENDANCE_WEIGHT = 20  # ATT-7, Guide IV-3

PENDING, ATTENDED, ABSENT, EXCUSED = "pending", "attended", "absent", "excused"


def lesson_opens_at(starts_on: date, week: int) -> datetime:
    """A lesson of week ``week`` opens at 00:00 KST of ``starts_on + 7·(week−1)`` (API.md)."""
    day = starts_on + timedelta(days=DAYS_PER_WEEK * (week - 1))
    return kst_midnight(day)


def course_ends_on(starts_on: date, weeks: int) -> date:
    """A course ends on ``starts_on + 7·weeks − 1`` (API.md)."""
    return starts_on + timedelta(days=DAYS_PER_WEEK * weeks - 1)


def attendance_deadline(starts_on: date, weeks: int, week: int) -> datetime:
    """The last instant at which completing a lesson still counts (ATT-1): 14 days after
    it opens, but for the last week's lessons the end of that week (24:00 KST of the
    course's last day). Completion *at* the deadline counts; one second after does not."""
    opens = lesson_opens_at(starts_on, week)
    if week >= weeks:
        end_day = course_ends_on(starts_on, weeks)
        return kst_midnight(end_day + timedelta(days=1))
    return opens + ATTENDANCE_WINDOW


def lesson_status(*, completed_at: datetime | None, deadline: datetime, now: datetime,
                  excused: bool = False) -> str:
    """ATT-1/ATT-2/ATT-5: the status of one lesson for one learner at ``now``.

    attended — covered 100% at or before the deadline; absent — the deadline has passed
    without that; pending — before the deadline and not yet complete. An approved
    excused absence counts as ``excused`` unless the lesson was attended anyway.
    Completion after the deadline never changes an absence.
    """
    if completed_at is not None and completed_at <= deadline:
        return ATTENDED
    if excused:
        return EXCUSED
    if now > deadline:
        return ABSENT
    return PENDING


# Segments closer than this (seconds) are one segment: player timestamps jitter.
MERGE_EPSILON = 0.25


def merge_intervals(intervals) -> list[list[float]]:
    """Union of ``[from_s, to_s]`` spans, sorted, overlapping or touching ones merged."""
    spans = sorted([float(a), float(b)] for a, b in intervals if b > a)
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1] + MERGE_EPSILON:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return merged


def covered_whole_seconds(merged, duration_seconds: int) -> int:
    """How many whole seconds ``[i, i+1]`` of a ``duration_seconds`` lesson lie inside the
    merged spans (ATT-1's "100% viewed" is ``== duration_seconds``)."""
    import math

    total = 0
    for a, b in merged:
        lo = max(0, math.ceil(a - MERGE_EPSILON))
        hi = min(duration_seconds, math.floor(b + MERGE_EPSILON))
        if hi > lo:
            total += hi - lo
    return total


# --- live board (CRS-11) ---------------------------------------------------------------
# CRS-8/CRS-11: TAs see each learner's progress in real time and urge attendance. A lesson
# is "at risk" when it is not complete and its attendance deadline is this close.
AT_RISK_WINDOW = timedelta(days=3)  # CRS-11 (issue 3, item 7): within 3 days of the deadline


def board_status(*, stored: str | None, completed_at: datetime | None, deadline: datetime,
                 now: datetime) -> str:
    """The status the live board shows for one learner and lesson (ATT-1, ATT-2, ATT-5).

    A settled status (attended, absent, excused) is shown as stored. A pending or missing
    one is what ``lesson_status`` gives at ``now``: so a deadline that passed a moment ago
    shows *absent* before the settling job has run, and a completion *attended* at once."""
    if stored in (ATTENDED, ABSENT, EXCUSED):
        return stored
    return lesson_status(completed_at=completed_at, deadline=deadline, now=now)


def lesson_at_risk(*, status: str, deadline: datetime, now: datetime) -> bool:
    """CRS-11: the lesson is not complete (still *pending*: neither attended nor excused),
    its deadline has not passed (completing *at* the deadline still counts, ATT-1) and it is
    at most ``AT_RISK_WINDOW`` away."""
    return status == PENDING and now <= deadline <= now + AT_RISK_WINDOW


def lesson_progress_fraction(*, covered: int | float | None, length: int | None,
                             completed: bool) -> float:
    """Share 0.0–1.0 of a lesson viewed: its covered whole seconds (or frames) over its
    length; a completed lesson is 1.0."""
    if completed:
        return 1.0
    if not length or not covered:
        return 0.0
    return max(0.0, min(1.0, float(covered) / float(length)))


def course_week(starts_on: date, weeks: int, now: datetime) -> int | None:
    """The course week ``now`` falls in (KST days; week 1 starts on ``starts_on``), or None
    before the course starts and after its last week."""
    days = (now.astimezone(KST).date() - starts_on).days
    if days < 0:
        return None
    week = days // DAYS_PER_WEEK + 1
    return week if week <= weeks else None


def mean_or_none(values) -> float | None:
    """The mean of ``values``; None when there are none (a week without lessons)."""
    values = list(values)
    return sum(values) / len(values) if values else None


# --- rates and scores (ATT-5…ATT-8) -----------------------------------------------------
# Exact arithmetic throughout (fractions of class-time units), so 79.9% and 80% or 20% and
# 20.1% never meet in a float rounding. Each lesson weighs its class-time units (CRS-2,
# ``lms.content.rules.lesson_units``); the caller passes them in.
import math  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from fractions import Fraction  # noqa: E402

MAX_EXCUSED_SHARE = Fraction(1, 5)  # ATT-5, Guide III-3: excused ≤ 20% of total class time
MIN_ATTENDANCE_RATE = Fraction(4, 5)  # ATT-6, Guide III-4: below 4/5 of class time → F
MAX_ATTENDANCE_POINTS = MAX_ATTENDANCE_WEIGHT  # ATT-7 / GRD-1: ≤ 20% of a 100-point grade = 20 points
ENLISTMENT_MIN_SHARE = Fraction(2, 3)  # ATT-8, Guide IV-3: attended ≥ 2/3 of the class days
# ATT-7, Guide IV-3: the rule's example scale on 20 points, used when a course publishes
# none: (from % inclusive, to % exclusive or None for exactly that rate, low, high points).
DEFAULT_ATTENDANCE_SCALE = (
    (100, None, 20, 20),
    (95, 100, 18, 19),
    (90, 95, 16, 17),
    (85, 90, 14, 15),
    (80, 85, 12, 13),
)  # below 80% → F (ATT-6)


@dataclass(frozen=True)
class LessonRecord:
    """One lesson of one learner, as stored: its units (CRS-2), its settled status and, for
    ATT-8, its attendance deadline and the instant it was completed (when it was)."""

    units: int
    status: str  # pending | attended | absent | excused
    deadline: datetime | None = None
    completed_at: datetime | None = None


@dataclass(frozen=True)
class AttendanceFigures:
    """Units of a set of lessons by status, and the attendance rate over them (ATT-6)."""

    total_units: int
    attended_units: int
    excused_units: int  # units of excused lessons (ATT-5), before the cap
    excused_counted: Fraction  # what counts as attended: min(excused, the 20% cap)
    pending_units: int
    absent_units: int
    rate: Fraction  # (attended + excused_counted) / total; 0 when there are no units

    @property
    def f(self) -> bool:
        return below_minimum_rate(self.rate)


def percent(rate: Fraction) -> Fraction:
    return rate * 100


def excused_cap_units(total_units: int) -> Fraction:
    """ATT-5: at most 20% of the course's total class time (units) counts as excused."""
    return Fraction(total_units) * MAX_EXCUSED_SHARE


def excuse_within_cap(excused_units: int, total_units: int) -> bool:
    """ATT-5: may a learner hold ``excused_units`` units of excused lessons in a course of
    ``total_units``? Exactly 20% is allowed; a hair above is not."""
    return Fraction(excused_units) <= excused_cap_units(total_units)


def below_minimum_rate(rate: Fraction) -> bool:
    """ATT-6: an attendance rate below 4/5 (80%) of total class time means grade F."""
    return rate < MIN_ATTENDANCE_RATE


def attendance_figures(lessons, *, cap_units: Fraction | None = None) -> AttendanceFigures:
    """ATT-5/ATT-6: the rate over ``lessons`` (``LessonRecord``\\ s): units attended plus
    units excused (capped at ``cap_units``, by default 20% of these lessons' units) over
    all their units. Pending and absent lessons count as not attended."""
    total = attended = excused = pending = absent = 0
    for lesson in lessons:
        units = int(lesson.units)
        total += units
        if lesson.status == ATTENDED:
            attended += units
        elif lesson.status == EXCUSED:
            excused += units
        elif lesson.status == ABSENT:
            absent += units
        else:
            pending += units
    cap = excused_cap_units(total) if cap_units is None else Fraction(cap_units)
    counted = min(Fraction(excused), cap)
    rate = (attended + counted) / total if total else Fraction(0)
    return AttendanceFigures(total_units=total, attended_units=attended, excused_units=excused,
                             excused_counted=counted, pending_units=pending, absent_units=absent,
                             rate=rate)


def _as_fraction(value) -> Fraction:
    """A JSON number as an exact fraction: 79.9 is 799/10, not the float nearest it."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(str(value))


def attendance_score(rate: Fraction, scale=None) -> Fraction | None:
    """ATT-7: the attendance score for ``rate`` (0…1) by the course's published scale;
    None means F (ATT-6: below 80%, whatever the scale says).

    ``scale`` None is the rule's 20-point table. Inside a band the points step up evenly
    with the rate: a band of ``n`` points (95–<100% → 18–19: n = 2) is cut into ``n``
    equal parts, the k-th part (from the bottom, k = 0…n−1) earning ``low + k``. So
    95 ≤ r < 97.5 → 18, 97.5 ≤ r < 100 → 19, 100% → 20; 80 ≤ r < 82.5 → 12, 82.5 ≤ r < 85
    → 13. Exact arithmetic, whole points, rounding down (a part's lower edge belongs to it).

    A course's own scale is ``[[min_rate_percent, points], ...]``: the first entry whose
    minimum the rate reaches gives the points (entries from the highest band down); a rate
    that reaches none scores 0.
    """
    rate = _as_fraction(rate)
    if below_minimum_rate(rate):
        return None
    pct = percent(rate)
    if scale is None:
        for lo, hi, low_points, high_points in DEFAULT_ATTENDANCE_SCALE:
            if hi is None:
                if pct >= lo:
                    return Fraction(high_points)
                continue
            if lo <= pct < hi:
                n = high_points - low_points + 1
                k = math.floor((pct - lo) * n / (hi - lo))
                return Fraction(low_points + min(k, n - 1))
        return None
    for min_pct, points in sorted(((_as_fraction(m), _as_fraction(p)) for m, p in scale),
                                  key=lambda e: e[0], reverse=True):
        if pct >= min_pct:
            return points
    return Fraction(0)


def attendance_scale_problems(scale) -> list[tuple[str | None, str]]:
    """What is wrong with a course's attendance scale ``[[min_rate_percent, points], ...]``:
    ``(rule, message)`` pairs, rule None for a malformed scale, ``"ATT-7"`` for points above
    the 20 an attendance score may give (ATT-7, GRD-1: attendance ≤ 20% of the grade)."""
    problems: list[tuple[str | None, str]] = []
    if not isinstance(scale, (list, tuple)) or not scale:
        return [(None, "the scale is a non-empty list of [min_rate_percent, points]")]
    previous = None
    for i, entry in enumerate(scale):
        if (not isinstance(entry, (list, tuple)) or len(entry) != 2
                or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in entry)
                or any(isinstance(v, float) and not math.isfinite(v) for v in entry)):
            problems.append((None, f"entry {i + 1}: [min_rate_percent, points], two numbers"))
            continue
        min_pct, points = _as_fraction(entry[0]), _as_fraction(entry[1])
        if not 0 <= min_pct <= 100:
            problems.append((None, f"entry {i + 1}: min_rate_percent must lie in 0…100"))
        if points < 0:
            problems.append((None, f"entry {i + 1}: points must not be negative"))
        if points > MAX_ATTENDANCE_POINTS:
            problems.append(("ATT-7", f"entry {i + 1}: an attendance score gives at most "
                                      f"{MAX_ATTENDANCE_POINTS} points (20% of the grade)"))
        if previous is not None:
            if min_pct >= previous[0]:
                problems.append((None, "entries go from the highest min_rate_percent down, each lower"))
            elif points > previous[1]:
                problems.append((None, f"entry {i + 1}: a lower rate may not earn more points"))
        previous = (min_pct, points)
    return problems


@dataclass(frozen=True)
class EnlistmentFigures:
    """ATT-8: the learner's attendance up to the day they enlisted."""

    enlisted_at: datetime  # 00:00 KST of the enlistment day
    attended_units: Fraction  # attended + excused (capped) units of lessons before it
    required_units: Fraction  # 2/3 of the course's total units
    figures: AttendanceFigures  # over the lessons before enlistment
    applies: bool  # attended_units ≥ required_units


def enlistment_instant(enlisted_on: date) -> datetime:
    """The learner is gone from 00:00 KST of the enlistment day (ATT-8)."""
    return datetime.combine(enlisted_on, time(0, 0), tzinfo=KST)


def lessons_before_enlistment(lessons, enlisted_at: datetime) -> list:
    """ATT-8's "rate up to enlistment" is over the lessons due by then (deadline at or
    before ``enlisted_at``) and the lessons attended before then although due later;
    lessons still open and not attended at enlistment are not held against the learner."""
    out = []
    for lesson in lessons:
        due = lesson.deadline is not None and lesson.deadline <= enlisted_at
        done_early = (lesson.status == ATTENDED and lesson.completed_at is not None
                      and lesson.completed_at < enlisted_at)
        if due or done_early:
            out.append(lesson)
    return out


def enlistment_figures(lessons, enlisted_on: date) -> EnlistmentFigures:
    """ATT-8 (Guide IV-3: "수업일수의 3분의 2 이상을 수강하고 군 입대로 인해 수강하지 못할
    경우 입대 전까지의 출석률로 출석성적을 부여"): the class days are measured, like every
    attendance figure, in class time (units, ATT-6): the learner qualifies when the units
    attended (excused ones counting, within ATT-5's cap of the course) before enlisting
    reach 2/3 of the course's total units; the score then comes from the rate over the
    lessons before enlistment (``lessons_before_enlistment``)."""
    lessons = list(lessons)
    enlisted_at = enlistment_instant(enlisted_on)
    total_units = sum(int(l.units) for l in lessons)
    before = attendance_figures(lessons_before_enlistment(lessons, enlisted_at),
                                cap_units=excused_cap_units(total_units))
    attended = before.attended_units + before.excused_counted
    required = Fraction(total_units) * ENLISTMENT_MIN_SHARE
    return EnlistmentFigures(enlisted_at=enlisted_at, attended_units=attended, required_units=required,
                             figures=before, applies=total_units > 0 and attended >= required)


@dataclass(frozen=True)
class AttendanceResult:
    """A learner's attendance in a course: the ATT-6 figures of the whole course, ATT-8
    when the learner enlisted, and the effective rate, F flag and ATT-7 score."""

    course: AttendanceFigures
    enlistment: EnlistmentFigures | None
    rate: Fraction  # the course rate, or the rate up to enlistment when ATT-8 applies
    f: bool
    score: Fraction | None  # None with F


def course_attendance(lessons, *, scale=None, enlisted_on: date | None = None) -> AttendanceResult:
    """ATT-5…ATT-8 for one learner from their lessons' stored statuses (``LessonRecord``)."""
    lessons = list(lessons)
    course = attendance_figures(lessons)
    enlistment = enlistment_figures(lessons, enlisted_on) if enlisted_on is not None else None
    rate = enlistment.figures.rate if enlistment is not None and enlistment.applies else course.rate
    score = attendance_score(rate, scale)
    return AttendanceResult(course=course, enlistment=enlistment, rate=rate,
                            f=below_minimum_rate(rate), score=score)


# --- viewing verification: heartbeats and presence challenges (ATT-4) -------------------
# The write side of the viewing log. A heartbeat reports the spans of the lesson's timeline
# played since the previous one; the server clips them to the lesson, credits only *new*
# coverage and at most what real time allows, and discards the rest as suspicious excess.
HEARTBEAT_SLACK = 2.0  # ATT-4: seconds credited beyond real time × max rate (network jitter)
MAX_SEGMENTS_PER_HEARTBEAT = 200  # ATT-4: a player reports a few spans per 10 s, not more
MAX_SEGMENT_SECONDS = 48 * 3600  # ATT-4: no lesson timeline reaches this (lessons ≤ 24 h)
CHALLENGE_CODE_DIGITS = 4  # ATT-4: the presence code the learner types back (4–6 digits)
VIEW_IDLE_TIMEOUT = timedelta(minutes=30)  # REC-1: a view silent this long has ended ("expired")


def timeline_length(kind: str, duration_seconds: int | None, frames: int | None) -> int:
    """The length of a lesson's timeline: seconds of a video, frames (pages) of frame-based
    content — a frame-based lesson reports spans of frame indices ``[i, i+1]`` and is
    credited under the same real-time budget (at most ``max rate`` frames per second)."""
    if kind == "frames" or duration_seconds is None:
        return int(frames or 0)
    return int(duration_seconds)


def segment_problem(segments) -> str | None:
    """ATT-4: why ``segments`` is not a well-formed heartbeat report, or None.

    A report is a list of at most ``MAX_SEGMENTS_PER_HEARTBEAT`` spans ``[from_s, to_s]``
    of JSON numbers (not booleans, not strings), finite, ``0 ≤ from_s ≤ to_s ≤
    MAX_SEGMENT_SECONDS``. Positions past the lesson's end are allowed (clipped later)."""
    if not isinstance(segments, (list, tuple)):
        return "segments must be a list of [from_s, to_s] pairs"
    if len(segments) > MAX_SEGMENTS_PER_HEARTBEAT:
        return f"at most {MAX_SEGMENTS_PER_HEARTBEAT} segments per heartbeat"
    for i, seg in enumerate(segments):
        if not isinstance(seg, (list, tuple)) or len(seg) != 2:
            return f"segment {i}: must be [from_s, to_s]"
        a, b = seg
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (a, b)):
            return f"segment {i}: from_s and to_s must be numbers"
        if (isinstance(a, float) and not math.isfinite(a)) or (isinstance(b, float) and not math.isfinite(b)):
            return f"segment {i}: from_s and to_s must be finite"  # an int is finite, however large
        if a < 0 or b < 0:
            return f"segment {i}: positions must not be negative"
        if a > MAX_SEGMENT_SECONDS or b > MAX_SEGMENT_SECONDS:
            return f"segment {i}: positions must be at most {MAX_SEGMENT_SECONDS} s"
        if a > b:
            return f"segment {i}: from_s must not exceed to_s"
    return None


def clip_segments(segments, length: float) -> list[list[float]]:
    """Each span clipped to the lesson ``[0, length]``, in the order given; empty ones
    dropped (overlaps are kept: the claim as the player made it)."""
    out = []
    for a, b in segments:
        lo, hi = max(0.0, float(a)), min(float(length), float(b))
        if hi > lo:
            out.append([lo, hi])
    return out


def subtract_intervals(lo: float, hi: float, covered) -> list[list[float]]:
    """The parts of ``[lo, hi]`` outside the merged, sorted spans ``covered``."""
    pieces = []
    cur = lo
    for a, b in covered:
        if b <= cur:
            continue
        if a >= hi:
            break
        if a > cur:
            pieces.append([cur, min(a, hi)])
        cur = max(cur, b)
        if cur >= hi:
            break
    if cur < hi:
        pieces.append([cur, hi])
    return pieces


@dataclass(frozen=True)
class HeartbeatCredit:
    """What one heartbeat earns (ATT-4)."""

    claimed: list  # the claimed spans clipped to the lesson, in the order played
    credited: list  # the new spans credited, in the order played
    credited_seconds: float  # their total length
    excess_seconds: float  # new coverage claimed beyond the real-time budget: discarded
    position_seconds: float | None  # where playing stopped (end of the last span), if any


def view_credit_left(*, view_elapsed_seconds: float, credited_seconds: float, max_rate: float) -> float:
    """ATT-4 (API.md): a view is never credited more playing time than real time has
    passed since it started (× the max rate). What is left of that for the next heartbeat
    — so many small heartbeats cannot each add their slack."""
    return max(0.0, max(0.0, float(view_elapsed_seconds)) * float(max_rate) - float(credited_seconds))


def credit_heartbeat(*, intervals, segments, length: float, elapsed_seconds: float,
                     max_rate: float, slack: float = HEARTBEAT_SLACK,
                     view_left: float | None = None) -> HeartbeatCredit:
    """ATT-4: credit a heartbeat's ``segments`` against the already credited ``intervals``.

    Spans are clipped to ``[0, length]``; what is already covered earns nothing (re-watching
    is free but not credited); the *new* coverage is credited in the order played up to a
    budget of ``elapsed_seconds × max_rate + slack`` (real time since the previous heartbeat,
    or since the view started), and never beyond ``view_left`` (:func:`view_credit_left`).
    The new coverage beyond the budget is discarded and reported as ``excess_seconds``.
    Seeking forward is just a span that starts later."""
    budget = max(0.0, float(elapsed_seconds)) * float(max_rate) + float(slack)
    if view_left is not None:
        budget = min(budget, max(0.0, float(view_left)))
    clipped = clip_segments(segments, length)
    credited: list[list[float]] = []
    excess = 0.0
    for a, b in clipped:
        for lo, hi in subtract_intervals(a, b, merge_intervals(list(intervals) + credited)):
            take = min(hi - lo, budget)
            if take > 0:
                credited.append([lo, lo + take])
                budget -= take
            excess += (hi - lo) - max(take, 0.0)
    return HeartbeatCredit(claimed=clipped, credited=credited,
                           credited_seconds=sum(b - a for a, b in credited),
                           excess_seconds=excess, position_seconds=play_position(segments, length))


def play_position(segments, length: float) -> float | None:
    """Where playing stopped: the end of the last span reported, inside ``[0, length]``
    (the resume point of the learner's next view); None when nothing was reported."""
    if not segments:
        return None
    return max(0.0, min(float(length), float(segments[-1][1])))


def apply_credit(intervals, credited, length: int) -> tuple[list[list[float]], int]:
    """The merged intervals after adding ``credited``, and the whole seconds they cover.
    The live heartbeat and the recompute command both go through here, in the order of
    the viewing log, so they reach the same floats."""
    merged = merge_intervals(list(intervals) + list(credited))
    return merged, covered_whole_seconds(merged, length)


def next_challenge_after(min_minutes: float, max_minutes: float, fraction: float) -> float | None:
    """ATT-4: seconds of credited playing until the next presence challenge, drawn
    uniformly in ``[min, max]`` minutes by ``fraction`` ∈ [0, 1); None when challenges are
    off (``min_minutes`` ≤ 0)."""
    if min_minutes is None or min_minutes <= 0:
        return None
    hi = max(float(min_minutes), float(max_minutes or 0))
    return 60.0 * (float(min_minutes) + (hi - float(min_minutes)) * float(fraction))


def challenge_due(*, played_since: float, threshold: float | None, pending: bool, complete: bool) -> bool:
    """ATT-4: issue a presence challenge now? When challenges are on, none is pending, the
    lesson still has something to credit and the playing since the last one reached the
    drawn threshold."""
    return threshold is not None and not pending and not complete and played_since >= threshold


def view_idle(last_activity: datetime, now: datetime) -> bool:
    """REC-1: a view with no heartbeat for ``VIEW_IDLE_TIMEOUT`` has ended (``expired``)."""
    return now - last_activity >= VIEW_IDLE_TIMEOUT


# --- attendance record submission (ATT-9) ---------------------------------------------------

ATTENDANCE_RECORD_WINDOW = timedelta(days=7)  # ATT-9, Reg. 6②; Guide III-1-다


def attendance_record_due(starts_on: date, weeks: int) -> datetime:
    """ATT-9: the instructor submits the attendance record within one week after the
    course ends — by 24:00 KST of the seventh day after its last day."""
    end = datetime.combine(course_ends_on(starts_on, weeks) + timedelta(days=1), time(0, 0), tzinfo=KST)
    return end + ATTENDANCE_RECORD_WINDOW


def attendance_record_state(*, starts_on: date, weeks: int, submitted_at: datetime | None,
                            now: datetime) -> str:
    """ATT-9: ``not_due`` while the course runs; ``open`` after it ended and before the
    due time; ``on_time`` / ``late`` once submitted; ``overdue`` past due unsubmitted."""
    ended = datetime.combine(course_ends_on(starts_on, weeks) + timedelta(days=1), time(0, 0), tzinfo=KST)
    due = attendance_record_due(starts_on, weeks)
    if submitted_at is not None:
        return "on_time" if submitted_at <= due else "late"
    if now < ended:
        return "not_due"
    return "open" if now <= due else "overdue"
