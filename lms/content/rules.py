"""Course and content rules (pure): CRS-1…CRS-5, CRS-7.

Plain values in, plain values out. The publishing check returns every broken rule with
the weeks or lessons that break it, so an admin can fix them all at once.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

MIN_WEEKS = 15  # CRS-1, Reg. 5①
CLASS_HOURS_PER_CREDIT = 15  # CRS-2, Reg. 5②
CLASS_HOURS_PER_CREDIT_PRACTICE = 30  # CRS-2: lab/practice/studio courses
UNIT_SECONDS = 25 * 60  # CRS-2/CRS-3: one class hour of remote content = 25 minutes net
UNIT_FRAMES = 20  # CRS-2/CRS-3: ... or 20 frames (pages)
MIN_LESSON_SECONDS = UNIT_SECONDS  # CRS-3
MIN_LESSON_FRAMES = UNIT_FRAMES  # CRS-3
MIN_LESSONS_PER_WEEK = 2  # CRS-4
MAX_COURSE_CAPACITY = 800  # CRS-7, Work II-3
MAX_SECTION_SIZE = 200  # CRS-7, Guide II-5

VIDEO, FRAMES = "video", "frames"


@dataclass(frozen=True)
class LessonFacts:
    id: int
    week: int
    title: str
    kind: str  # video | frames
    duration_seconds: int | None
    frames: int | None
    instructor_intro: bool = False


@dataclass
class Problem:
    rule: str
    message: str
    weeks: list[int] = field(default_factory=list)
    lessons: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"rule": self.rule, "message": self.message}
        if self.weeks:
            out["weeks"] = self.weeks
        if self.lessons:
            out["lessons"] = self.lessons
        return out


def lesson_units(kind: str, duration_seconds: int | None, frames: int | None) -> int:
    """Class-time units of one lesson (CRS-2): ⌊minutes/25⌋ for video, ⌊frames/20⌋ for
    frame-based content. A lesson below one unit counts 0."""
    if kind == FRAMES:
        return (frames or 0) // UNIT_FRAMES
    return (duration_seconds or 0) // UNIT_SECONDS


def required_units(credits: int, practice: bool = False) -> int:
    """CRS-2: 15 class hours per credit (30 for lab/practice/studio courses)."""
    return credits * (CLASS_HOURS_PER_CREDIT_PRACTICE if practice else CLASS_HOURS_PER_CREDIT)


def lesson_long_enough(kind: str, duration_seconds: int | None, frames: int | None) -> bool:
    """CRS-3: at least 25 minutes of net running time, or at least 20 frames."""
    if kind == FRAMES:
        return (frames or 0) >= MIN_LESSON_FRAMES
    return (duration_seconds or 0) >= MIN_LESSON_SECONDS


def publish_problems(*, weeks: int, credits: int, practice: bool,
                     lessons: list[LessonFacts]) -> list[Problem]:
    """Every content rule (CRS-1…CRS-5) a course breaks; empty when it may be published."""
    problems: list[Problem] = []
    if weeks < MIN_WEEKS:
        problems.append(Problem("CRS-1", f"a remote course runs at least {MIN_WEEKS} weeks; this one has {weeks}"))

    total = sum(lesson_units(l.kind, l.duration_seconds, l.frames) for l in lessons)
    need = required_units(credits, practice)
    if total < need:
        problems.append(Problem(
            "CRS-2", f"{credits} credit(s) need at least {need} class-time units "
                     f"(25 minutes or 20 frames each); the lessons give {total}"))

    short = [l.id for l in lessons if not lesson_long_enough(l.kind, l.duration_seconds, l.frames)]
    if short:
        problems.append(Problem(
            "CRS-3", "every lesson needs at least 25 minutes of net running time or 20 frames",
            lessons=short))

    per_week: dict[int, int] = defaultdict(int)
    for l in lessons:
        per_week[l.week] += 1
    thin = [w for w in range(1, weeks + 1) if per_week[w] < MIN_LESSONS_PER_WEEK]
    if thin:
        problems.append(Problem("CRS-4", f"every week needs at least {MIN_LESSONS_PER_WEEK} lessons",
                                weeks=thin))

    if not any(l.instructor_intro and l.week == 1 for l in lessons):
        problems.append(Problem(
            "CRS-5", "week 1 must present the developing instructor's main career history "
                     "(a lesson marked instructor_intro)", weeks=[1]))
    return problems


def capacity_problem(capacity: int, accredited_capacity: int | None = None) -> str | None:
    """CRS-7: a course's total capacity is at most 800 and never above its accreditation."""
    if capacity > MAX_COURSE_CAPACITY:
        return f"a course's capacity is at most {MAX_COURSE_CAPACITY}"
    if accredited_capacity is not None and capacity > accredited_capacity:
        return f"capacity exceeds the accredited capacity ({accredited_capacity})"
    return None


def sections_needed(enrolled: int) -> int:
    """CRS-7: classes of at most 200 learners."""
    return max(1, -(-enrolled // MAX_SECTION_SIZE))
