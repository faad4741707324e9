"""Exam rules (EXM-1…7, EXM-10…12), pure: plain values in, plain values out, ``now`` passed in.

Source: 학점은행제 원격수업 운영 가이드(2019) IV장 (see ``../shared/RULES.md``).
"""
from __future__ import annotations

import math
import random
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from lms.clock import KST

# --- the regulation's numbers ------------------------------------------------------------

EXAM_KINDS = ("midterm", "final", "quiz")  # EXM-1: regular exams are a midterm and a final
REGULAR_KINDS = ("midterm", "final")
DEFAULT_LEVELS = ("easy", "medium", "hard")  # EXM-3, easiest first
MAX_WINDOW_DAYS = 4  # EXM-2: an exam window spans at most 4 KST calendar days
MIN_LEVELS = 3  # EXM-3: items drawn from at least 3 difficulty levels
MAX_DURATION_MINUTES = 60  # EXM-4
DISABILITY_MAX_MINUTES = 90  # EXM-4: learners with disabilities
DISABILITY_FACTOR = 1.5  # 60 → 90: the extra time a learner with the flag gets
BANK_FACTOR = 3  # EXM-5: the bank holds at least 3× the items drawn (per level)
ANNOUNCE_LEAD = timedelta(days=14)  # EXM-7: announced at least 2 weeks before the start
MAKEUP_WINDOW = timedelta(days=5)  # EXM-11: a make-up exam is held within 5 days
MAKEUP_GRADE_CAP = "B+"  # EXM-11

ITEM_KINDS = ("single_choice", "multiple_choice", "short_answer", "essay")
OBJECTIVE_KINDS = ("single_choice", "multiple_choice", "short_answer")
CHOICE_KINDS = ("single_choice", "multiple_choice")
MIN_CHOICES, MAX_CHOICES = 2, 10
MAX_PROMPT = 10_000
MAX_SHORT_ANSWER = 1_000
MAX_ESSAY = 20_000
MAX_POINTS = 1_000


@dataclass(frozen=True)
class Problem:
    rule: str
    message: str
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"rule": self.rule, "message": self.message, **self.details}


# --- exam definitions (EXM-2…5, EXM-7) ----------------------------------------------------

def window_days(opens_at: datetime, closes_at: datetime) -> int:
    """KST calendar days an exam window touches (EXM-2). ``closes_at`` is the first
    instant after the window, so a window closing at 00:00 KST does not touch that day."""
    first = opens_at.astimezone(KST).date()
    last = (closes_at - timedelta(microseconds=1)).astimezone(KST).date()
    return (last - first).days + 1


def exam_problems(*, kind: str, opens_at: datetime, closes_at: datetime, duration_minutes: int,
                  items_per_difficulty: dict[str, int], levels: tuple[str, ...] | list[str],
                  bank_counts: dict[str, int], announced_at: datetime,
                  period: tuple[date, date] | None) -> list[Problem]:
    """Every rule an exam definition breaks (empty list: none).

    ``bank_counts``: active items of the course's bank per level; ``announced_at``: when the
    exam was (or, for one not announced yet, at the earliest could be) announced;
    ``period``: the syllabus's announced exam period of this kind (KST dates), if any."""
    out: list[Problem] = []
    if closes_at <= opens_at:
        out.append(Problem("EXM-2", "the window must close after it opens"))
    else:
        days = window_days(opens_at, closes_at)
        if days > MAX_WINDOW_DAYS:
            out.append(Problem("EXM-2", f"the window spans {days} KST calendar days (at most {MAX_WINDOW_DAYS})",
                               {"days": days}))
    if period is not None:
        first, last = period
        o = opens_at.astimezone(KST).date()
        c = (closes_at - timedelta(microseconds=1)).astimezone(KST).date() if closes_at > opens_at else o
        if o < first or c > last:
            out.append(Problem("EXM-2", f"the window lies outside the syllabus's {kind} period "
                                        f"{first.isoformat()}–{last.isoformat()}",
                               {"period": [first.isoformat(), last.isoformat()]}))
    unknown = sorted(set(items_per_difficulty) - set(levels))
    if unknown:
        out.append(Problem("EXM-3", f"unknown difficulty levels {unknown} (levels: {list(levels)})",
                           {"unknown_levels": unknown}))
    drawn = [lv for lv, n in items_per_difficulty.items() if n > 0]
    if len(drawn) < MIN_LEVELS:
        out.append(Problem("EXM-3", f"items are drawn from {len(drawn)} difficulty levels (at least {MIN_LEVELS})",
                           {"levels_drawn": sorted(drawn)}))
    if duration_minutes > MAX_DURATION_MINUTES:
        out.append(Problem("EXM-4", f"{duration_minutes} minutes (at most {MAX_DURATION_MINUTES})",
                           {"duration_minutes": duration_minutes}))
    short = {lv: {"drawn": n, "available": bank_counts.get(lv, 0), "needed": BANK_FACTOR * n}
             for lv, n in items_per_difficulty.items() if n > 0 and bank_counts.get(lv, 0) < BANK_FACTOR * n}
    if short:
        out.append(Problem("EXM-5", "the item bank holds fewer than 3× the drawn items at "
                                    + ", ".join(sorted(short)), {"levels": short}))
    if opens_at - announced_at < ANNOUNCE_LEAD:
        out.append(Problem("EXM-7", "the exam starts less than 14 days after its announcement",
                           {"announced_at": announced_at.isoformat(), "earliest_start":
                            (announced_at + ANNOUNCE_LEAD).astimezone(KST).isoformat()}))
    return out


# --- attempts (EXM-3, EXM-4, EXM-10) -------------------------------------------------------

def time_allowed(duration_minutes: int, disability: bool) -> timedelta:
    """EXM-4: the exam's duration (≤ 60); a learner with the disability flag gets 1.5× it,
    at most 90 minutes."""
    minutes = min(duration_minutes, MAX_DURATION_MINUTES)
    if disability:
        return timedelta(minutes=min(DISABILITY_MAX_MINUTES, minutes * DISABILITY_FACTOR))
    return timedelta(minutes=minutes)


def attempt_deadline(started_at: datetime, duration_minutes: int, disability: bool,
                     closes_at: datetime) -> datetime:
    """EXM-4, EXM-10: min(start + time allowed, window close)."""
    return min(started_at + time_allowed(duration_minutes, disability), closes_at)


UPCOMING, OPEN, CLOSED = "upcoming", "open", "closed"


def window_state(now: datetime, opens_at: datetime, closes_at: datetime) -> str:
    """Where ``now`` stands against an exam window [opens_at, closes_at)."""
    if now < opens_at:
        return UPCOMING
    return OPEN if now < closes_at else CLOSED


def exam_open(now: datetime, opens_at: datetime, closes_at: datetime) -> bool:
    return window_state(now, opens_at, closes_at) == OPEN


def attempt_open(now: datetime, deadline: datetime, submitted_at: datetime | None) -> bool:
    """Answers are taken while ``now`` < deadline and the attempt is not submitted."""
    return submitted_at is None and now < deadline


def draw(seed: str, pools: dict[str, list[int]], counts: dict[str, int],
         choice_counts: dict[int, int]) -> list[tuple[int, list[int] | None]]:
    """EXM-3: draw ``counts[level]`` items at random from each level's pool (item ids),
    without repetition, in a random order, and a random order of each item's choices.

    Deterministic in ``seed``: the same seed, pools and counts give the same draw, so an
    inspector can reproduce it. Returns ``[(item_id, choice_order or None), ...]`` where
    ``choice_order[shown] = original index``."""
    rng = random.Random(seed)
    picked: list[int] = []
    for level in sorted(counts):
        n = counts[level]
        if n <= 0:
            continue
        pool = sorted(pools.get(level, []))
        if len(pool) < n:
            raise ValueError(f"level {level}: {len(pool)} items for {n} drawn")
        picked.extend(rng.sample(pool, n))
    rng.shuffle(picked)
    out = []
    for item_id in picked:
        k = choice_counts.get(item_id, 0)
        order = None
        if k:
            order = list(range(k))
            rng.shuffle(order)
        out.append((item_id, order))
    return out


# --- answers and scoring (EXM-12) ----------------------------------------------------------

def answer_problem(kind: str, n_choices: int, value) -> str | None:
    """Why ``value`` is not an answer to an item of ``kind`` (None: it is). ``None`` clears
    an answer. Choice answers are indexes of the choices as shown."""
    if value is None:
        return None
    if kind == "single_choice":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n_choices:
            return f"answer must be a choice index 0…{n_choices - 1}"
    elif kind == "multiple_choice":
        if (not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value)
                or any(not 0 <= v < n_choices for v in value) or len(set(value)) != len(value)):
            return f"answer must be a list of distinct choice indexes 0…{n_choices - 1}"
    elif kind == "short_answer":
        if not isinstance(value, str) or len(value) > MAX_SHORT_ANSWER:
            return f"answer must be text of at most {MAX_SHORT_ANSWER} characters"
    elif kind == "essay":
        if not isinstance(value, str) or len(value) > MAX_ESSAY:
            return f"answer must be text of at most {MAX_ESSAY} characters"
    else:
        return "unknown item kind"
    if isinstance(value, str) and "\x00" in value:
        return "answer contains a NUL character"
    return None


def to_original(kind: str, value, choice_order: list[int] | None):
    """A shown-order choice answer in the item's original indexes."""
    if value is None or kind not in CHOICE_KINDS or not choice_order:
        return value
    if kind == "single_choice":
        return choice_order[value]
    return sorted(choice_order[v] for v in value)


def normalize_text(s: str) -> str:
    """Short answers compare case-, width- and space-insensitively (NFKC, casefold)."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", s)).strip().casefold()


def score_answer(kind: str, key, answer_original, points: float) -> float | None:
    """Points for an objective answer (all or nothing); None for essays (graded by hand).
    ``key``: single — the correct index; multiple — the list of correct indexes; short —
    a list of accepted answers (or one string)."""
    if kind == "essay":
        return None
    if answer_original is None:
        return 0.0
    if kind == "single_choice":
        return float(points) if answer_original == key else 0.0
    if kind == "multiple_choice":
        return float(points) if sorted(answer_original) == sorted(key or []) else 0.0
    if kind == "short_answer":
        accepted = [key] if isinstance(key, str) else list(key or [])
        norm = normalize_text(answer_original)
        return float(points) if any(norm == normalize_text(a) for a in accepted) else 0.0
    raise ValueError(kind)


def item_problems(kind: str, difficulty: str, levels, prompt: str, choices, answer, model_answer,
                  rubric, points) -> list[str]:
    """What makes an item unusable (EXM-12: a key or model answer before any scoring)."""
    out: list[str] = []
    if kind not in ITEM_KINDS:
        out.append(f"kind must be one of {', '.join(ITEM_KINDS)}")
        return out
    if difficulty not in levels:
        out.append(f"difficulty must be one of {', '.join(levels)}")
    if not isinstance(prompt, str) or not prompt.strip():
        out.append("prompt is required")
    elif len(prompt) > MAX_PROMPT:
        out.append(f"prompt is longer than {MAX_PROMPT} characters")
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not math.isfinite(points) \
            or not 0 < points <= MAX_POINTS:
        out.append(f"points must be a number above 0 and at most {MAX_POINTS}")
    if kind in CHOICE_KINDS:
        if (not isinstance(choices, list) or not MIN_CHOICES <= len(choices) <= MAX_CHOICES
                or any(not isinstance(c, str) or not c.strip() for c in choices)):
            out.append(f"choices must be {MIN_CHOICES}–{MAX_CHOICES} non-empty texts")
            return out
        n = len(choices)
        if kind == "single_choice":
            if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < n:
                out.append(f"answer (EXM-12 scoring key) must be a choice index 0…{n - 1}")
        else:
            if (not isinstance(answer, list) or not answer
                    or any(isinstance(a, bool) or not isinstance(a, int) or not 0 <= a < n for a in answer)
                    or len(set(answer)) != len(answer)):
                out.append(f"answer (EXM-12 scoring key) must be a non-empty list of distinct indexes 0…{n - 1}")
    elif choices not in (None, []):
        out.append(f"{kind} items have no choices")
    if kind == "short_answer":
        accepted = [answer] if isinstance(answer, str) else answer
        if (not isinstance(accepted, list) or not accepted
                or any(not isinstance(a, str) or not a.strip() for a in accepted)):
            out.append("answer (EXM-12 scoring key) must be the accepted answer text or a list of them")
    if kind == "essay":
        if not isinstance(model_answer, str) or not model_answer.strip():
            out.append("model_answer (EXM-12) is required for essay items")
        if not isinstance(rubric, str) or not rubric.strip():
            out.append("rubric (EXM-12) is required for essay items")
    return out


# --- make-up exams (EXM-11) ------------------------------------------------------------------

def makeup_window(approved_at: datetime) -> tuple[datetime, datetime]:
    """A make-up attempt may start from the approval until 5 days after it."""
    return approved_at, approved_at + MAKEUP_WINDOW


# --- item analysis (EXM-5) --------------------------------------------------------------------

GROUP_SHARE = 0.27  # upper and lower groups: the classic 27% of learners by total score


@dataclass(frozen=True)
class ItemFigures:
    drawn: int
    answered: int
    correct_rate: float | None
    discrimination: float | None
    flagged: bool
    reason: str | None


def item_figures(rows: list[tuple[float, float, bool]], *, min_rate: float, max_rate: float,
                 min_discrimination: float, min_answers: int = 5) -> ItemFigures:
    """Figures of one item over the attempts that drew it.

    ``rows``: ``(attempt_total_fraction, item_fraction, answered)`` per attempt: the
    attempt's share of its points, the share of this item's points, whether it was answered.
    ``correct_rate``: mean item share. ``discrimination``: the item's mean share in the top
    27% of those attempts (by total) minus that in the bottom 27%. Flagged for replacement
    when the rate is outside [min_rate, max_rate] or discrimination is below the minimum,
    once at least ``min_answers`` attempts drew it."""
    drawn = len(rows)
    answered = sum(1 for r in rows if r[2])
    if not rows:
        return ItemFigures(0, 0, None, None, False, None)
    rate = sum(r[1] for r in rows) / drawn
    disc = None
    if drawn >= 2:
        ordered = sorted(rows, key=lambda r: r[0])
        g = max(1, round(drawn * GROUP_SHARE))
        low = ordered[:g]
        high = ordered[-g:]
        disc = sum(r[1] for r in high) / g - sum(r[1] for r in low) / g
    reasons = []
    if drawn >= min_answers:
        if rate < min_rate:
            reasons.append(f"correct rate {rate:.0%} below {min_rate:.0%} (too hard)")
        if rate > max_rate:
            reasons.append(f"correct rate {rate:.0%} above {max_rate:.0%} (too easy)")
        if disc is not None and disc < min_discrimination:
            reasons.append(f"discrimination {disc:.2f} below {min_discrimination:.2f}")
    return ItemFigures(drawn, answered, rate, disc, bool(reasons), "; ".join(reasons) or None)
