"""Item analysis and the bank's replacement report (EXM-5).

- ``analyse_exam(exam_id)`` runs after a regular exam (midterm, final) closes
  (``lms.exams.jobs.AFTER_CLOSE``; quizzes are skipped) and again on request. Over the
  exam's submitted attempts it computes, per item drawn: how many attempts drew it, how
  many answered it, its correct rate (mean share of its points awarded) and its
  discrimination (the item's rate in the top 27% of attempts by total share minus that in
  the bottom 27%; ``rules.item_figures``). Essays not graded yet are left out of the rates
  until they are. An item whose rate lies outside [``EXAM_ITEM_MIN_RATE``,
  ``EXAM_ITEM_MAX_RATE``] or whose discrimination is below ``EXAM_ITEM_MIN_DISCRIMINATION``
  (app config; defaults 0.2, 0.9, 0.1) is flagged for replacement once enough attempts
  drew it. The ``item_analysis`` rows are derived: recomputing replaces them.
- ``bank_replacement_report(course_id, since, until)``: per difficulty level, the items in
  the bank at the start of the period, those retired and those added as replacements
  (``replaces_item_id``) in it, and the share of the starting bank replaced — "partly
  replaced every term". By default the period runs from the start of the previous course
  with the same code (the last term) or, without one, from this course's start, until now.
"""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import delete, select

from lms import clock
from lms.auth.models import User
from lms.clock import kst_midnight
from lms.content.models import Course
from lms.content.service import course_for_manager
from lms.db import db, lock_row
from lms.errors import ApiError
from lms.exams import access, rules
from lms.exams import items as bank
from lms.exams.models import Attempt, AttemptItem, Exam, Item, ItemAnalysis, ItemVersion

# App config names and their defaults (read with current_app.config.get).
BOUNDS = (("EXAM_ITEM_MIN_RATE", 0.2), ("EXAM_ITEM_MAX_RATE", 0.9), ("EXAM_ITEM_MIN_DISCRIMINATION", 0.1))
PROMPT_EXCERPT = 120


def bounds() -> dict[str, float]:
    """The flagging bounds: ``{"min_rate", "max_rate", "min_discrimination"}``."""
    values = [float(current_app.config.get(name, default)) for name, default in BOUNDS]
    return dict(zip(("min_rate", "max_rate", "min_discrimination"), values))


# --- access ----------------------------------------------------------------------------

# Readers: the course's staff, admins and inspectors (learners never see items, EXM-12).
course_for_reader = access.course_for_reader


def course_for_writer(course_id: int, user: User) -> Course:
    """Recomputing: the course's instructors and admins (who manage its bank)."""
    return course_for_manager(course_id, user, staff=bank.ITEM_STAFF)


# --- analysis --------------------------------------------------------------------------

def _answered(value) -> bool:
    if isinstance(value, (str, list)):
        return bool(value.strip() if isinstance(value, str) else value)
    return value is not None


def analyse_exam(exam_id: int) -> int:
    """(Re)compute the exam's item analysis and commit; the number of items analysed (0 for
    quizzes and unknown exams, which are skipped)."""
    exam = db.session.get(Exam, exam_id)
    if exam is None or exam.kind not in rules.REGULAR_KINDS:
        return 0
    lock_row(Exam, exam.id)  # one computation at a time per exam
    rows = db.session.execute(
        select(AttemptItem.attempt_id, AttemptItem.item_id, AttemptItem.answer, AttemptItem.awarded,
               ItemVersion.points)
        .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
        .join(Attempt, Attempt.id == AttemptItem.attempt_id)
        .where(Attempt.exam_id == exam.id, Attempt.submitted_at.is_not(None))).all()
    totals: dict[int, list[float]] = {}  # attempt → [points awarded, points of its scored items]
    for attempt_id, _item_id, _answer, awarded, points in rows:
        if awarded is not None:
            t = totals.setdefault(attempt_id, [0.0, 0.0])
            t[0] += awarded
            t[1] += points
    per_item: dict[int, dict] = {}
    for attempt_id, item_id, answer, awarded, points in rows:
        entry = per_item.setdefault(item_id, {"drawn": 0, "answered": 0, "rows": []})
        entry["drawn"] += 1
        entry["answered"] += _answered(answer)
        if awarded is not None and points:
            got, out_of = totals[attempt_id]
            entry["rows"].append((got / out_of if out_of else 0.0, awarded / points, _answered(answer)))
    limits = bounds()
    now = clock.now()
    existing = {r.item_id: r for r in db.session.scalars(select(ItemAnalysis).where(ItemAnalysis.exam_id == exam.id))}
    for item_id, entry in per_item.items():
        f = rules.item_figures(entry["rows"], **limits)
        row = existing.pop(item_id, None)
        if row is None:
            row = ItemAnalysis(exam_id=exam.id, item_id=item_id)
            db.session.add(row)
        row.drawn, row.answered = entry["drawn"], entry["answered"]
        row.correct_rate = None if f.correct_rate is None else round(f.correct_rate, 6)
        row.discrimination = None if f.discrimination is None else round(f.discrimination, 6)
        row.flagged, row.flag_reason = f.flagged, f.reason
        row.computed_at = now
    if existing:  # items no longer drawn by a submitted attempt
        db.session.execute(delete(ItemAnalysis).where(ItemAnalysis.id.in_([r.id for r in existing.values()])))
    db.session.commit()
    return len(per_item)


def recompute(exam_id: int, user: User) -> Exam:
    """Recompute on request (an instructor of the course or an admin), once the exam has
    closed (409 ``exam_not_closed`` before; 409 ``not_a_regular_exam`` for quizzes)."""
    exam = _exam(exam_id, user)
    course_for_writer(exam.course_id, user)
    if exam.kind not in rules.REGULAR_KINDS:
        raise ApiError(409, "not_a_regular_exam", "item analysis covers regular exams (midterm, final) only")
    if clock.now() < exam.closes_at:
        raise ApiError(409, "exam_not_closed", "item analysis runs once the exam's window has closed",
                       extra={"closes_at": clock.iso(exam.closes_at)})
    analyse_exam(exam.id)
    return exam


def _exam(exam_id: int, user: User) -> Exam:
    from lms.exams.service import get_exam

    exam, _course = get_exam(exam_id, user)
    return exam


def exam_for_reader(exam_id: int, user: User) -> tuple[Exam, Course]:
    exam = _exam(exam_id, user)
    return exam, course_for_reader(exam.course_id, user)


def exam_analysis(exam: Exam) -> dict:
    """The stored analysis of an exam with each item's level, kind, prompt excerpt, state in
    the bank and replacement; flagged items first."""
    rows = db.session.execute(
        select(ItemAnalysis, Item, ItemVersion)
        .join(Item, Item.id == ItemAnalysis.item_id)
        .join(ItemVersion, (ItemVersion.item_id == Item.id) & (ItemVersion.version == Item.current_version))
        .where(ItemAnalysis.exam_id == exam.id)).all()
    ids = [item.id for _a, item, _v in rows]
    replaced_by = dict(db.session.execute(select(Item.replaces_item_id, Item.id)
                                          .where(Item.replaces_item_id.in_(ids))).all()) if ids else {}
    out = []
    for a, item, v in rows:
        prompt = v.prompt if len(v.prompt) <= PROMPT_EXCERPT else v.prompt[:PROMPT_EXCERPT - 1] + "…"
        out.append({"item_id": item.id, "difficulty": item.difficulty, "kind": item.kind, "prompt": prompt,
                    "points": v.points, "drawn": a.drawn, "answered": a.answered, "correct_rate": a.correct_rate,
                    "discrimination": a.discrimination, "flagged": a.flagged, "flag_reason": a.flag_reason,
                    "active": item.active, "retired_at": clock.iso(item.retired_at),
                    "replaced_by": replaced_by.get(item.id), "computed_at": clock.iso(a.computed_at)})
    out.sort(key=lambda r: (not r["flagged"], r["difficulty"], r["item_id"]))
    computed = max((a.computed_at for a, _i, _v in rows), default=None)
    return {"exam_id": exam.id, "course_id": exam.course_id, "title": exam.title, "kind": exam.kind,
            "regular": exam.kind in rules.REGULAR_KINDS, "closed": clock.now() >= exam.closes_at,
            "computed_at": clock.iso(computed), "bounds": bounds(),
            "flagged": sum(1 for r in out if r["flagged"]), "items": out}


# --- the term's replacement report -------------------------------------------------------

def kst_start(day) -> datetime:
    """00:00 KST of a calendar date, as an aware datetime."""
    return kst_midnight(day)


def previous_course(course: Course) -> Course | None:
    """The last term's course: the latest course of the institution with the same code that
    started before this one."""
    return db.session.scalar(select(Course).where(
        Course.institution_id == course.institution_id, Course.code == course.code, Course.id != course.id,
        Course.starts_on < course.starts_on).order_by(Course.starts_on.desc(), Course.id.desc()).limit(1))


def bank_replacement_report(course_id: int, since: datetime | None = None, until: datetime | None = None) -> dict:
    """EXM-5: how much of the course's bank was replaced in [since, until), per level.

    Per level: ``at_start`` (active at ``since``), ``retired`` (retired in the period),
    ``replaced`` (of those at the start, retired in the period), ``replacements`` (items
    added in the period with ``replaces_item_id``), ``added`` (all items added),
    ``at_end`` (active at ``until``) and ``replaced_share`` = replaced / at_start (None
    when the bank was empty at the start)."""
    course = db.session.get(Course, course_id)
    until = until or clock.now()
    basis = "given"
    if since is None:
        prev = previous_course(course)
        since, basis = (kst_start(prev.starts_on), "previous_course") if prev else \
            (kst_start(course.starts_on), "course_start")
    if since >= until:
        raise ApiError(400, "invalid_request", "since must come before until")
    levels = list(bank.levels_for(course.institution_id))
    counts: dict[str, dict] = {}

    def level(name: str) -> dict:
        if name not in counts:
            counts[name] = dict.fromkeys(("at_start", "retired", "replaced", "replacements", "added", "at_end"), 0)
        return counts[name]

    for name in levels:
        level(name)
    for item in db.session.scalars(select(Item).where(Item.course_id == course.id)):
        c = level(item.difficulty)
        in_bank_at = (lambda t: item.created_at < t and (item.retired_at is None or item.retired_at >= t))
        retired_in = item.retired_at is not None and since <= item.retired_at < until
        added_in = since <= item.created_at < until
        c["at_start"] += in_bank_at(since)
        c["at_end"] += in_bank_at(until)
        c["retired"] += retired_in
        c["replaced"] += retired_in and in_bank_at(since)
        c["added"] += added_in
        c["replacements"] += added_in and item.replaces_item_id is not None
    order = levels + sorted(set(counts) - set(levels))

    def share(c: dict) -> float | None:
        return round(c["replaced"] / c["at_start"], 4) if c["at_start"] else None

    rows = [{"difficulty": name, **counts[name], "replaced_share": share(counts[name])} for name in order]
    total = {k: sum(r[k] for r in rows) for k in ("at_start", "retired", "replaced", "replacements", "added", "at_end")}
    total["replaced_share"] = share(total)
    return {"course_id": course.id, "since": clock.iso(since), "until": clock.iso(until), "basis": basis,
            "levels": rows, "total": total}
