"""Attendance rules (pure). Times are aware datetimes; rule days are KST calendar days."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from lms.clock import KST

# ATT-1: a lesson counts only when 100% is viewed within 2 weeks after it opens.
ATTENDANCE_WINDOW = timedelta(days=14)  # ATT-1, Guide III-1-나-1)
DAYS_PER_WEEK = 7
# ATT-7 / GRD-1: the attendance score is at most 20% of the grade.
MAX_ATTENDANCE_WEIGHT = 20  # ATT-7, Guide IV-3

PENDING, ATTENDED, ABSENT, EXCUSED = "pending", "attended", "absent", "excused"


def lesson_opens_at(starts_on: date, week: int) -> datetime:
    """A lesson of week ``week`` opens at 00:00 KST of ``starts_on + 7·(week−1)`` (API.md)."""
    day = starts_on + timedelta(days=DAYS_PER_WEEK * (week - 1))
    return datetime.combine(day, time(0, 0), tzinfo=KST)


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
        return datetime.combine(end_day + timedelta(days=1), time(0, 0), tzinfo=KST)
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
