"""Exams and attempts: the transactions (EXM-1…5, EXM-7…10, EXM-12).

- **Exams.** ``create_exam``/``update_exam`` validate against every rule at once
  (``rules.exam_problems``) and refuse with 422 naming each broken rule. An exam is
  announced at creation unless ``announce`` is false; ``announce_exam`` publishes it on the
  public notice page and notifies every enrolled learner (in-app notice + e-mail outbox);
  the announcement time is stored (EXM-7 evidence).
- **Attempts.** ``start_attempt`` re-checks identity with a fresh OTP code (EXM-8), checks
  Safe Exam Browser when the exam requires it, checks the learner's IP and device against
  other learners' attempts under a lock (EXM-9, ``lms.proctoring.service``), draws the items
  at random per difficulty with a stored seed (EXM-3) and sets the deadline (EXM-4).
  ``save_answer`` stores an answer (durable once answered 200), refusing it with 409 after
  the deadline or submission; ``submit_attempt`` scores the objective items at once;
  ``submit_overdue`` (a periodic job) submits every attempt whose deadline has passed.
- **Evidence** (EXM-10, REC-1): ``attempt_event`` rows — started, resumed, every answer save
  with its time, IP and device, address changes, blocks, incidents, submission — are only
  ever appended. ``Attempt``/``AttemptItem`` hold summaries derived from them.

Lock order: the attempt row (``lock_row``), then address locks.
"""
from __future__ import annotations

import json
import secrets
from datetime import date, datetime
from types import SimpleNamespace

from sqlalchemy import Text, and_, bindparam, cast, func, select, text
from sqlalchemy.exc import IntegrityError

from lms import clock
from lms.auth.models import User
from lms.content.models import Course, Syllabus
from lms.content.service import course_for_viewer, get_course, staff_roles
from lms.db import UTCDateTime, advisory_lock, db, is_sqlite, lock_row
from lms.enrolment.models import Enrollment
from lms.errors import ApiError, RuleViolation, forbidden, not_found
from lms.exams import items as bank
from lms.exams import rules
from lms.exams.models import Attempt, AttemptEvent, AttemptItem, Exam, Item, ItemVersion, MakeupRequest
from lms.proctoring import rules as proctor_rules
from lms.proctoring import service as proctoring
from lms.proctoring.models import AttemptAddress

# AttemptEvent kinds (exam evidence).
STARTED, RESUMED, ANSWER, IP_CHANGED, DEVICE_CHANGED, BLOCKED, INCIDENT = (
    "started", "resumed", "answer", "ip_changed", "device_changed", "blocked", "incident")
SUBMITTED, AUTO_SUBMITTED = "submitted", "auto_submitted"

_EVENT_INSERT = AttemptEvent.__table__.insert()


def event(attempt: Attempt, kind: str, at: datetime, **values) -> None:
    """Append one exam-evidence row in the current transaction (never updated)."""
    db.session.execute(_EVENT_INSERT, {"attempt_id": attempt.id, "exam_id": attempt.exam_id,
                                       "learner_id": attempt.learner_id, "at": at, "kind": kind, **values})


# --- exams -------------------------------------------------------------------------------------

def syllabus_period(course_id: int, kind: str) -> tuple[date, date] | None:
    periods = db.session.scalar(select(Syllabus.exam_periods).where(Syllabus.course_id == course_id)) or {}
    p = periods.get(kind)
    if not p:
        return None
    return date.fromisoformat(p[0]), date.fromisoformat(p[1])


def _check(course: Course, data: dict, announced_at: datetime) -> None:
    problems = rules.exam_problems(
        kind=data["kind"], opens_at=data["opens_at"], closes_at=data["closes_at"],
        duration_minutes=data["duration_minutes"], items_per_difficulty=data["items_per_difficulty"],
        levels=bank.levels_for(course.institution_id), bank_counts=bank.bank_counts(course.id),
        announced_at=announced_at, period=syllabus_period(course.id, data["kind"]))
    if problems:
        ids = sorted({p.rule for p in problems}, key=lambda r: int(r.split("-")[1]))
        raise RuleViolation(ids, "; ".join(f"{p.rule}: {p.message}" for p in problems),
                            details=[p.as_dict() for p in problems])


def _validate_shape(data: dict) -> None:
    if data["kind"] not in rules.EXAM_KINDS:
        raise ApiError(400, "invalid_request", f"kind must be one of {', '.join(rules.EXAM_KINDS)}")
    if data["duration_minutes"] < 1:
        raise ApiError(400, "invalid_request", "duration_minutes must be at least 1")
    ipd = data["items_per_difficulty"]
    if not ipd or any(not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 500 for n in ipd.values()):
        raise ApiError(400, "invalid_request", "items_per_difficulty maps levels to counts 0…500")
    if data.get("requires_seb") and not data.get("seb_config_key"):
        raise ApiError(400, "invalid_request", "an exam that requires Safe Exam Browser needs seb_config_key")


def course_for_exams(course_id: int, user: User) -> Course:
    return bank.course_for_items(course_id, user)


def create_exam(course: Course, user: User, data: dict) -> Exam:
    """A new exam; 422 naming every broken rule (EXM-2/3/4/5/7). Announced at once unless
    ``announce`` is false (EXM-7 is then checked against now, the earliest announcement)."""
    _validate_shape(data)
    now = clock.now()
    _check(course, data, now)
    exam = Exam(course_id=course.id, title=data["title"], kind=data["kind"], opens_at=data["opens_at"],
                closes_at=data["closes_at"], duration_minutes=data["duration_minutes"],
                items_per_difficulty=dict(data["items_per_difficulty"]),
                requires_seb=bool(data.get("requires_seb")), seb_config_key=data.get("seb_config_key"),
                status="draft", created_by=user.id, created_at=now)
    db.session.add(exam)
    db.session.flush()
    from lms.audit.service import record_admin_action

    record_admin_action("exam", exam.id, "create", actor=user, after={
        "course_id": course.id, "title": exam.title, "kind": exam.kind, "opens_at": exam.opens_at,
        "closes_at": exam.closes_at, "duration_minutes": exam.duration_minutes})
    if data.get("announce", True):
        announce_exam(exam, course, now)
    return exam


def _has_attempts(exam_id: int) -> bool:
    return db.session.scalar(select(Attempt.id).where(Attempt.exam_id == exam_id).limit(1)) is not None


def update_exam(exam: Exam, course: Course, data: dict) -> Exam:
    """Change an exam before anyone has started it (409 ``exam_started`` after); the whole
    definition is re-checked, EXM-7 against the stored announcement."""
    if _has_attempts(exam.id):
        raise ApiError(409, "exam_started", "learners have started this exam: it can no longer change")
    merged = {k: getattr(exam, k) for k in ("title", "kind", "opens_at", "closes_at", "duration_minutes",
                                            "items_per_difficulty", "requires_seb", "seb_config_key")}
    merged.update({k: v for k, v in data.items() if k != "announce"})
    _validate_shape(merged)
    now = clock.now()
    _check(course, merged, exam.announced_at or now)
    window_changed = (merged["opens_at"], merged["closes_at"]) != (exam.opens_at, exam.closes_at)
    from lms.audit.service import record_admin_action

    changed = {k: v for k, v in merged.items() if getattr(exam, k) != v}
    record_admin_action("exam", exam.id, "update", before={k: getattr(exam, k) for k in changed}, after=changed)
    for k, v in merged.items():
        setattr(exam, k, v)
    exam.updated_at = now
    if exam.announced_at is None and data.get("announce"):
        announce_exam(exam, course, now)
    elif exam.announced_at is not None and window_changed:
        _notify(exam, course, changed=True)
    db.session.flush()
    return exam


def announce_exam(exam: Exam, course: Course, now: datetime) -> None:
    """EXM-7: publish on the public notice page and notify each enrolled learner; the
    announcement must come at least 14 days before the start."""
    if exam.announced_at is not None:
        raise ApiError(409, "already_announced", "the exam is already announced")
    if exam.opens_at - now < rules.ANNOUNCE_LEAD:
        raise RuleViolation(["EXM-7"], "EXM-7: the exam starts less than 14 days after now, "
                                       "the earliest announcement")
    exam.announced_at = now
    exam.status = "announced"
    db.session.flush()
    _notify(exam, course, changed=False)


def _notify(exam: Exam, course: Course, *, changed: bool) -> None:
    from lms.notify.service import notify_users

    learners = db.session.scalars(select(Enrollment.user_id).where(Enrollment.course_id == course.id,
                                                                   Enrollment.status == "active"))
    when = f"{clock.to_kst(exam.opens_at):%Y-%m-%d %H:%M} – {clock.to_kst(exam.closes_at):%Y-%m-%d %H:%M} (KST)"
    subject = f"[{course.code}] {'시험 일정 변경' if changed else '시험 공지'}: {exam.title}"
    body = (f"{course.title} — {exam.title}\n응시 기간: {when}\n시험 시간: {exam.duration_minutes}분"
            f"\n(장애 학습자는 최대 {rules.DISABILITY_MAX_MINUTES}분)")
    notify_users(list(learners), kind="exam_announced", subject=subject, body=body, link=f"/exams/{exam.id}")


def get_exam(exam_id: int, user: User) -> tuple[Exam, Course]:
    exam = db.session.get(Exam, exam_id)
    if exam is None:
        raise not_found("exam")
    course = get_course(exam.course_id, user)  # 404 across institutions
    return exam, course


def exam_for_viewer(exam_id: int, user: User) -> tuple[Exam, Course]:
    """Learners see announced exams of their courses; staff, admins, inspectors any."""
    exam, course = get_exam(exam_id, user)
    course_for_viewer(course.id, user)
    if user.role == "learner" and exam.announced_at is None:
        raise not_found("exam")
    return exam, course


def exam_for_manager(exam_id: int, user: User) -> tuple[Exam, Course]:
    exam, course = get_exam(exam_id, user)
    course_for_exams(course.id, user)
    return exam, course


def list_exams(course: Course, user: User) -> list[Exam]:
    q = select(Exam).where(Exam.course_id == course.id).order_by(Exam.opens_at, Exam.id)
    if user.role == "learner":
        q = q.where(Exam.announced_at.is_not(None))
    return list(db.session.scalars(q))


def exam_dict(exam: Exam) -> dict:
    return {"id": exam.id, "course_id": exam.course_id, "title": exam.title, "kind": exam.kind,
            "opens_at": clock.iso(exam.opens_at), "closes_at": clock.iso(exam.closes_at),
            "duration_minutes": exam.duration_minutes,
            "disability_minutes": int(rules.time_allowed(exam.duration_minutes, True).total_seconds() // 60),
            "items_per_difficulty": exam.items_per_difficulty,
            "items_total": sum(exam.items_per_difficulty.values()),
            "announced_at": clock.iso(exam.announced_at), "status": exam.status,
            "requires_seb": exam.requires_seb, "created_at": clock.iso(exam.created_at)}


def public_notices(limit: int = 200) -> list[tuple[Exam, Course]]:
    """Announced exams, newest announcement first, for the public notice page (EXM-7)."""
    return list(db.session.execute(
        select(Exam, Course).join(Course, Course.id == Exam.course_id)
        .where(Exam.announced_at.is_not(None)).order_by(Exam.announced_at.desc(), Exam.id.desc()).limit(limit)).all())


# --- attempts: starting ---------------------------------------------------------------------------

def _makeup_window(exam: Exam, learner_id: int) -> MakeupRequest | None:
    return db.session.scalar(select(MakeupRequest).where(MakeupRequest.exam_id == exam.id,
                                                         MakeupRequest.learner_id == learner_id,
                                                         MakeupRequest.status == "approved"))


# What a start reads before its checks, in one round trip: the exam, its course's
# institution, the learner's enrolment and attempt of it, the learner's OTP columns (EXM-8)
# and disability flag (EXM-4). Built once (the statement's cache key is memoised).
_START_FACTS = (
    select(Exam.id, Exam.course_id, Exam.opens_at, Exam.closes_at, Exam.duration_minutes,
           Exam.items_per_difficulty, Exam.announced_at, Exam.requires_seb, Exam.seb_config_key,
           Course.institution_id,
           select(Enrollment.id).where(Enrollment.course_id == Exam.course_id,
                                       Enrollment.user_id == bindparam("user_id"),
                                       Enrollment.status == "active").exists().label("enrolled"),
           Attempt.id.label("attempt_id"), Attempt.deadline.label("attempt_deadline"),
           Attempt.submitted_at.label("attempt_submitted_at"),
           User.otp_secret, User.otp_last_step, User.disability)
    .join(Course, Course.id == Exam.course_id)
    .join(User, User.id == bindparam("user_id"))
    .outerjoin(Attempt, and_(Attempt.exam_id == Exam.id, Attempt.learner_id == bindparam("user_id")))
    .where(Exam.id == bindparam("exam_id")))


def start_attempt(user: User, exam_id: int, otp: str, *, ip: str | None, device: str | None,
                  url: str, seb_header: str | None) -> tuple[dict, bool]:
    """Start (or resume) the learner's attempt. Returns (attempt dict, created)."""
    from lms.auth.service import consume_otp

    # Statements of plain columns go to the session's connection: the same transaction,
    # without the ORM's per-statement and per-row work.
    exam = db.session.connection().execute(_START_FACTS, {"exam_id": exam_id, "user_id": user.id}).first()
    if exam is None:
        raise not_found("exam")
    if exam.institution_id != user.institution_id:
        raise not_found("course")  # as get_course: 404 across institutions
    if user.role != "learner" or not exam.enrolled:
        raise forbidden("only learners enrolled in the course sit its exams")
    if exam.announced_at is None:
        raise not_found("exam")
    proctoring.check_seb(exam, url, seb_header)
    now = clock.now()
    makeup = None
    if exam.attempt_id is None:
        closes_at = exam.closes_at
        if not rules.exam_open(now, exam.opens_at, exam.closes_at):
            makeup = _makeup_window(exam, user.id)
            if makeup is None or not (makeup.window_opens_at <= now < makeup.window_closes_at):
                state = "has not opened yet" if now < exam.opens_at else "has closed"
                raise ApiError(409, "exam_not_open", f"the exam {state}", extra={
                    "opens_at": clock.iso(exam.opens_at), "closes_at": clock.iso(exam.closes_at)})
            closes_at = makeup.window_closes_at
    elif not rules.attempt_open(now, exam.attempt_deadline, exam.attempt_submitted_at):
        raise ApiError(409, "attempt_closed", "your attempt of this exam is over")
    if not consume_otp(user, otp, now, (exam.otp_secret, exam.otp_last_step)):
        db.session.rollback()
        from lms.audit.service import log_access

        log_access("exam_otp_failed", user=user, detail=f"exam {exam.id}")
        raise ApiError(401, "invalid_otp", "the code is wrong, expired or already used (EXM-8)")
    pairs = proctoring.addresses(ip, device)
    proctoring.lock_addresses(pairs)
    try:
        allowed = proctoring.check_addresses(exam, user, pairs, now)
    except ApiError as exc:
        db.session.rollback()
        _log_block(user, exam, None, exc, ip, device, now)
        raise
    if exam.attempt_id is not None:
        attempt = lock_row(Attempt, exam.attempt_id)
        new = proctoring.record_addresses(attempt, allowed, now)
        event(attempt, RESUMED, now, ip=ip, device=device)
        _address_events(attempt, new, now, ip, device)
        out = attempt_view(attempt)  # built before the commit, which would expire what it reads
        db.session.commit()
        return out, False
    try:
        out = _create_attempt(exam, user.id, bool(exam.disability), now, closes_at, ip, device, makeup, allowed)
        db.session.commit()
    except IntegrityError:  # the same learner started twice at once: the other one won
        db.session.rollback()
        raise ApiError(409, "attempt_exists", "an attempt of this exam was started at the same moment; retry")
    return out, True


def _log_block(user: User, exam: Exam, attempt: Attempt | None, exc: ApiError, ip, device, now) -> None:
    """A refused start or answer is evidence too: logged (and committed) before the 403."""
    from lms.audit.service import log_access

    if attempt is not None:
        event(attempt, BLOCKED, now, ip=ip, device=device, detail=exc.code)
    log_access("exam_blocked", user=user, commit=False, detail=f"exam {exam.id}: {exc.code}")
    db.session.commit()


def _address_events(attempt: Attempt, new: list[tuple[str, str]], now, ip, device) -> None:
    for kind, value in new:
        event(attempt, IP_CHANGED if kind == "ip" else DEVICE_CHANGED, now, ip=ip, device=device,
              detail=f"{kind} {value}")


# The candidate items of a draw. The course's bank is locked first, shared (an in-place
# item edit takes the same lock exclusively — ``items.get_item(lock=True)``): the draw then
# reads versions no edit is changing, and an edit waiting behind it sees this attempt's rows
# and makes a new version instead. A shared advisory lock writes nothing (row locks FOR
# SHARE by hundreds of simultaneous starts would each rewrite every candidate row). The read
# is a statement of its own: a statement sees the database as it was when it began, before
# any wait for a lock, so a read that waited would miss the edit it waited for.
_CANDIDATES = (Item.course_id == bindparam("course_id"), Item.active.is_(True),
               Item.difficulty.in_(bindparam("levels", expanding=True)))
_DRAW_READ = (select(Item.id, Item.difficulty, ItemVersion.id, ItemVersion.kind, ItemVersion.prompt,
                     cast(ItemVersion.choices, Text), ItemVersion.points)
              .join(ItemVersion, (ItemVersion.item_id == Item.id) & (ItemVersion.version == Item.current_version))
              .where(*_CANDIDATES))


def _create_attempt(exam, learner_id: int, disability: bool, now: datetime, closes_at: datetime, ip, device,
                    makeup: MakeupRequest | None, allowed: dict) -> dict:
    """Draw the items (EXM-3), write the attempt, its items, its addresses (EXM-9) and its
    ``started`` event (EXM-10), and return the attempt as its learner sees it (as
    ``attempt_view`` would), built from the values in hand. ``exam``: the start's row."""
    counts = {lv: n for lv, n in exam.items_per_difficulty.items() if n > 0}
    params = {"course_id": exam.course_id, "levels": list(counts)}
    conn = db.session.connection()
    advisory_lock(bank.bank_lock_key(exam.course_id), shared=True)
    pools: dict[str, list[int]] = {}
    content, choices = {}, _Choices()
    for item_id, level, version_id, kind, prompt, choices_json, points in conn.execute(_DRAW_READ, params):
        pools.setdefault(level, []).append(item_id)
        content[item_id] = (version_id, kind, prompt, points)
        choices.json[item_id] = choices_json
    short = {lv: len(pools.get(lv, [])) for lv, n in counts.items() if len(pools.get(lv, [])) < n}
    if short:
        raise RuleViolation(["EXM-5"], "the item bank no longer holds enough items to draw this exam",
                            details={"available": short, "drawn": counts})
    seed = secrets.token_hex(16)
    drawn = rules.draw(seed, pools, counts, choices)
    # The attempt's values, read by attempt_summary as an Attempt's attributes.
    attempt = SimpleNamespace(exam_id=exam.id, learner_id=learner_id, started_at=now,
                              deadline=rules.attempt_deadline(now, exam.duration_minutes, disability, closes_at),
                              submitted_at=None, submit_reason=None, ip=ip, device=device, seed=seed, score=None,
                              needs_grading=False, is_makeup=makeup is not None, cheating_found=False,
                              makeup_request_id=makeup.id if makeup else None)
    items, shown = [], []
    for position, (item_id, order) in enumerate(drawn, 1):
        version_id, kind, prompt, points = content[item_id]
        items.append((item_id, version_id, order))
        shown.append({"id": item_id, "position": position, "kind": kind, "prompt": prompt,
                      "choices": [choices.of(item_id)[i] for i in order] if order else None, "points": points,
                      "answer": None})
    detail = f"seed {seed}" + (f"; make-up request {makeup.id}" if makeup else "")
    attempt.id = _insert_attempt(attempt, items, [(k, v, exc) for (k, v), exc in allowed.items()], detail)
    out = attempt_summary(attempt, now)
    out["items"] = shown
    return out


class _Choices:
    """The candidate items' choices, kept as the JSON text read and parsed on first use.
    ``get`` is the draw's ``choice_counts`` (item id → number of choices), which it asks
    of the drawn items only."""

    def __init__(self):
        self.json: dict[int, str | None] = {}
        self._lists: dict[int, list | None] = {}

    def of(self, item_id: int) -> list | None:
        if item_id not in self._lists:
            raw = self.json[item_id]
            self._lists[item_id] = None if raw is None else json.loads(raw)
        return self._lists[item_id]

    def get(self, item_id: int, default: int = 0) -> int:
        return len(self.of(item_id) or []) if item_id in self.json else default


_ATTEMPT_COLUMNS = ("exam_id", "learner_id", "started_at", "deadline", "submitted_at", "submit_reason", "ip",
                    "device", "seed", "score", "needs_grading", "is_makeup", "cheating_found", "makeup_request_id")
# PostgreSQL: the attempt, its items, its addresses and its ``started`` event in one
# statement (one round trip). Items and addresses come as one JSON array each, so the
# statement's text and parameters are the same whatever their number; positions are the
# items' ordinals; a choice order stays JSON (null for an item without choices).
_INSERT_ATTEMPT_PG = text("""
WITH a AS (
    INSERT INTO attempt (exam_id, learner_id, started_at, deadline, submitted_at, submit_reason, ip, device, seed,
                         score, needs_grading, is_makeup, cheating_found, makeup_request_id)
    VALUES (:exam_id, :learner_id, :started_at, :deadline, :submitted_at, :submit_reason, :ip, :device, :seed,
            :score, :needs_grading, :is_makeup, :cheating_found, :makeup_request_id)
    RETURNING id),
i AS (
    INSERT INTO attempt_item (attempt_id, item_id, item_version_id, position, choice_order)
    SELECT a.id, CAST(t.e->>0 AS integer), CAST(t.e->>1 AS integer), t.position, t.e->2
    FROM a, json_array_elements(CAST(:items AS json)) WITH ORDINALITY AS t(e, position)),
d AS (
    INSERT INTO attempt_address (attempt_id, exam_id, learner_id, kind, value, seen_at, exception_id)
    SELECT a.id, :exam_id, :learner_id, t.e->>0, t.e->>1, :started_at, CAST(t.e->>2 AS integer)
    FROM a, json_array_elements(CAST(:addresses AS json)) AS t(e)),
e AS (
    INSERT INTO attempt_event (attempt_id, exam_id, learner_id, at, kind, ip, device, detail)
    SELECT a.id, :exam_id, :learner_id, :started_at, :kind, :ip, :device, :detail FROM a)
SELECT id FROM a
""").bindparams(bindparam("started_at", type_=UTCDateTime()), bindparam("deadline", type_=UTCDateTime()),
                bindparam("submitted_at", type_=UTCDateTime()))
_ATTEMPT_INSERT = Attempt.__table__.insert()
_ATTEMPT_ITEM_INSERT = AttemptItem.__table__.insert()
_ADDRESS_INSERT = AttemptAddress.__table__.insert()


def _insert_attempt(attempt: SimpleNamespace, items: list[tuple[int, int, list[int] | None]],
                    addresses: list[tuple[str, str, int | None]], detail: str) -> int:
    """Append the new attempt's rows (bulk, no ORM objects); returns its id. Items keep
    their drawn order as positions 1, 2, …; a choice order of None is stored as JSON null,
    as the ORM stores it."""
    row = {c: getattr(attempt, c) for c in _ATTEMPT_COLUMNS}
    if not is_sqlite():
        return db.session.connection().execute(_INSERT_ATTEMPT_PG, {
            **row, "items": json.dumps(items), "addresses": json.dumps(addresses), "kind": STARTED,
            "detail": detail}).scalar_one()
    attempt_id = db.session.execute(_ATTEMPT_INSERT, row).inserted_primary_key[0]
    db.session.execute(_ATTEMPT_ITEM_INSERT, [
        {"attempt_id": attempt_id, "item_id": i, "item_version_id": v, "position": n, "choice_order": o}
        for n, (i, v, o) in enumerate(items, 1)])
    if addresses:
        db.session.execute(_ADDRESS_INSERT, [
            {"attempt_id": attempt_id, "exam_id": attempt.exam_id, "learner_id": attempt.learner_id, "kind": k,
             "value": v, "seen_at": attempt.started_at, "exception_id": e} for k, v, e in addresses])
    db.session.execute(_EVENT_INSERT, {"attempt_id": attempt_id, "exam_id": attempt.exam_id,
                                       "learner_id": attempt.learner_id, "at": attempt.started_at,
                                       "kind": STARTED, "ip": attempt.ip, "device": attempt.device,
                                       "detail": detail})
    return attempt_id


def reproduce_draw(attempt: Attempt) -> list[tuple[int, list[int] | None]]:
    """The draw the stored seed gives over the item pools as they stood (the items of the
    bank that existed at the start, by the attempt's versions): an inspector's check."""
    exam = db.session.get(Exam, attempt.exam_id)
    counts = {lv: n for lv, n in exam.items_per_difficulty.items() if n > 0}
    shown = {ai.item_id: ai for ai in _attempt_items(attempt.id)}
    # Pools: items of the course created before the start and not retired before it.
    rows = db.session.execute(select(Item.id, Item.difficulty, Item.created_at, Item.retired_at)
                              .where(Item.course_id == exam.course_id, Item.difficulty.in_(list(counts)))).all()
    pools: dict[str, list[int]] = {}
    for item_id, level, created, retired in rows:
        if created <= attempt.started_at and (retired is None or retired > attempt.started_at):
            pools.setdefault(level, []).append(item_id)
    # Only the drawn items' choices are shuffled, after every level's sample: the other
    # items' choice counts do not change the draw.
    choices = {item_id: len(ai.choice_order or []) for item_id, ai in shown.items()}
    return rules.draw(attempt.seed, pools, counts, choices)


def draw_check(attempt: Attempt) -> dict:
    """EXM-3 for inspectors: the draw recomputed from the stored seed, against the items
    and choice orders the attempt stored."""
    stored = [(ai.item_id, ai.choice_order) for ai in _attempt_items(attempt.id)]
    again = reproduce_draw(attempt)
    return {"attempt_id": attempt.id, "seed": attempt.seed, "matches": again == stored,
            "stored": [{"item_id": i, "choice_order": o} for i, o in stored],
            "reproduced": [{"item_id": i, "choice_order": o} for i, o in again]}


# --- attempts: reading --------------------------------------------------------------------------

def _attempt_items(attempt_id: int) -> list[AttemptItem]:
    return list(db.session.scalars(select(AttemptItem).where(AttemptItem.attempt_id == attempt_id)
                                   .order_by(AttemptItem.position)))


def _to_shown(kind: str, value, order: list[int] | None):
    if value is None or kind not in rules.CHOICE_KINDS or not order:
        return value
    back = {orig: shown for shown, orig in enumerate(order)}
    if kind == "single_choice":
        return back.get(value)
    return sorted(back[v] for v in value if v in back)


def attempt_view(attempt: Attempt, *, for_learner: bool = True) -> dict:
    """The attempt as its learner sees it: items in drawn order, choices shuffled, saved
    answers in shown order; never a scoring key (EXM-12)."""
    out = attempt_summary(attempt)
    ais = _attempt_items(attempt.id)
    versions = {v.id: v for v in db.session.scalars(
        select(ItemVersion).where(ItemVersion.id.in_([a.item_version_id for a in ais])))} if ais else {}
    shown = []
    for ai in ais:
        v = versions[ai.item_version_id]
        choices = [v.choices[i] for i in ai.choice_order] if ai.choice_order else None
        entry = {"id": ai.item_id, "position": ai.position, "kind": v.kind, "prompt": v.prompt,
                 "choices": choices, "points": v.points, "answer": _to_shown(v.kind, ai.answer, ai.choice_order)}
        if not for_learner:
            entry.update(version=v.version, difficulty=v.difficulty, awarded=ai.awarded,
                         key=v.answer, model_answer=v.model_answer, rubric=v.rubric,
                         answer_original=ai.answer, grader_comment=ai.grader_comment)
        shown.append(entry)
    out["items"] = shown
    return out


def attempt_summary(attempt: Attempt, now: datetime | None = None) -> dict:
    now = now or clock.now()
    return {"attempt_id": attempt.id, "exam_id": attempt.exam_id, "learner_id": attempt.learner_id,
            "started_at": clock.iso(attempt.started_at), "deadline": clock.iso(attempt.deadline),
            "submitted_at": clock.iso(attempt.submitted_at), "submit_reason": attempt.submit_reason,
            "open": rules.attempt_open(now, attempt.deadline, attempt.submitted_at),
            "remaining_seconds": max(0, int((attempt.deadline - now).total_seconds()))
            if attempt.submitted_at is None else 0,
            "ip": attempt.ip, "device": attempt.device, "seed": None, "score": attempt.score,
            "needs_grading": attempt.needs_grading, "is_makeup": attempt.is_makeup,
            "cheating_found": attempt.cheating_found}


def learner_attempt(exam_id: int, learner_id: int) -> Attempt | None:
    """The learner's attempt of the exam, if any (one per learner and exam)."""
    return db.session.scalar(select(Attempt).where(Attempt.exam_id == exam_id, Attempt.learner_id == learner_id))


def last_entry_at(attempt_id: int) -> datetime | None:
    """When the attempt was last started or resumed (each entry re-checked an OTP code)."""
    return db.session.scalar(select(func.max(AttemptEvent.at)).where(
        AttemptEvent.attempt_id == attempt_id, AttemptEvent.kind.in_((STARTED, RESUMED))))


def attempt_for(attempt_id: int, user: User) -> tuple[Attempt, Exam, Course]:
    """An attempt for its learner (403 for another learner), the course's staff, admins and
    inspectors of the institution (404 across institutions)."""
    attempt = db.session.get(Attempt, attempt_id)
    if attempt is None:
        raise not_found("attempt")
    exam, course = get_exam(attempt.exam_id, user)
    if user.role == "learner":
        if attempt.learner_id != user.id:
            raise forbidden("this is another learner's attempt")
    elif user.role not in ("admin", "inspector") and not staff_roles(course.id, user.id):
        raise forbidden("only the course's staff may see its attempts")
    return attempt, exam, course


def attempt_detail(attempt: Attempt, user: User) -> dict:
    out = attempt_view(attempt, for_learner=user.role == "learner")
    if user.role != "learner":
        out["seed"] = attempt.seed
        out["addresses"] = sorted([{"kind": k, "value": v} for k, v in proctoring.attempt_addresses(attempt.id)],
                                  key=lambda a: (a["kind"], a["value"]))
        out["incidents"] = proctoring.incident_count(attempt.id)
    elif attempt.submitted_at is None:
        out["score"] = None
    return out


def attempt_events(attempt: Attempt) -> list[dict]:
    rows = db.session.scalars(select(AttemptEvent).where(AttemptEvent.attempt_id == attempt.id)
                              .order_by(AttemptEvent.id))
    return [{"id": e.id, "at": clock.iso(e.at), "kind": e.kind, "ip": e.ip, "device": e.device,
             "attempt_item_id": e.attempt_item_id, "answer": e.answer, "detail": e.detail} for e in rows]


def exam_attempts(exam: Exam) -> list[dict]:
    """Every attempt of an exam with its evidence summary, for staff (EXM-10)."""
    incidents = dict(db.session.execute(
        select(AttemptEvent.attempt_id, func.count(AttemptEvent.id))
        .where(AttemptEvent.exam_id == exam.id, AttemptEvent.kind == INCIDENT)
        .group_by(AttemptEvent.attempt_id)).all())
    rows = db.session.execute(select(Attempt, User.username).join(User, User.id == Attempt.learner_id)
                              .where(Attempt.exam_id == exam.id).order_by(Attempt.started_at)).all()
    out = []
    for attempt, username in rows:
        d = attempt_summary(attempt)
        d.update(username=username, incidents=incidents.get(attempt.id, 0))
        out.append(d)
    return out


# --- attempts: answering and submitting -----------------------------------------------------------

def _open_attempt_locked(attempt_id: int, user: User, now: datetime, seb=None) -> Attempt:
    """The learner's own open attempt, row-locked (one statement: the owner check needs no
    exam or course read). Staff get 403; another learner's attempt 403; unknown 404."""
    if user.role != "learner":
        attempt_for(attempt_id, user)  # 404 / 403 as for any reader first
        raise forbidden("only the learner answers an attempt")
    attempt = lock_row(Attempt, attempt_id)
    if attempt is None:
        raise not_found("attempt")
    if attempt.learner_id != user.id:
        raise forbidden("this is another learner's attempt")
    if seb is not None:
        proctoring.check_seb(db.session.get(Exam, attempt.exam_id), *seb)
    if not rules.attempt_open(now, attempt.deadline, attempt.submitted_at):
        raise ApiError(409, "attempt_closed", "the attempt is over: its deadline has passed or it was submitted",
                       extra={"deadline": clock.iso(attempt.deadline),
                              "submitted_at": clock.iso(attempt.submitted_at)})
    return attempt


def _check_moved(attempt: Attempt, user: User, ip, device, now) -> None:
    """A mid-attempt change of IP or device is recorded, and blocked (403) if the new
    address collides with another learner's (EXM-9)."""
    if ip == attempt.ip and (device is None or device == attempt.device):
        return  # the addresses the attempt started from (recorded then)
    pairs = proctoring.addresses(ip, device)
    have = proctoring.attempt_addresses(attempt.id)
    new = [p for p in pairs if p not in have]
    if not new:
        return
    exam = db.session.get(Exam, attempt.exam_id)
    proctoring.lock_addresses(new)
    try:
        allowed = proctoring.check_addresses(exam, user, new, now)
    except ApiError as exc:
        db.session.rollback()
        attempt = db.session.get(Attempt, attempt.id)
        _log_block(user, exam, attempt, exc, ip, device, now)
        raise
    added = proctoring.record_addresses(attempt, allowed, now)
    _address_events(attempt, added, now, ip, device)


def save_answer(user: User, attempt_id: int, item_id: int, value, *, ip, device, seb=None) -> dict:
    """Autosave one answer: durable when this returns (committed). 409 ``attempt_closed``
    after the deadline or submission; 404 for an item not in the attempt; 400 for an
    answer of the wrong shape."""
    now = clock.now()
    attempt = _open_attempt_locked(attempt_id, user, now, seb)
    row = db.session.execute(select(AttemptItem, ItemVersion)
                             .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
                             .where(AttemptItem.attempt_id == attempt.id, AttemptItem.item_id == item_id)).first()
    if row is None:
        raise not_found("item in this attempt")
    ai, v = row
    problem = rules.answer_problem(v.kind, len(v.choices or []), value)
    if problem:
        raise ApiError(400, "invalid_request", problem)
    _check_moved(attempt, user, ip, device, now)
    original = rules.to_original(v.kind, value, ai.choice_order)
    ai.answer = original
    ai.answered_at = now
    event(attempt, ANSWER, now, ip=ip, device=device, attempt_item_id=ai.id, answer=original)
    attempt_id, deadline = attempt.id, attempt.deadline  # read before the commit expires them
    db.session.commit()
    return {"attempt_id": attempt_id, "item_id": item_id, "saved_at": clock.iso(now),
            "deadline": clock.iso(deadline), "remaining_seconds": max(0, int((deadline - now).total_seconds()))}


def score_attempt(attempt: Attempt) -> None:
    """Objective items scored at once; essays wait for the instructor (``needs_grading``)."""
    ais = _attempt_items(attempt.id)
    versions = {v.id: v for v in db.session.scalars(
        select(ItemVersion).where(ItemVersion.id.in_([a.item_version_id for a in ais])))} if ais else {}
    total, pending = 0.0, False
    for ai in ais:
        v = versions[ai.item_version_id]
        if v.kind == "essay":
            if ai.answer is None or (isinstance(ai.answer, str) and not ai.answer.strip()):
                ai.awarded = 0.0  # nothing to grade
            elif ai.graded_at is None:
                pending = True
                continue
        else:
            ai.awarded = rules.score_answer(v.kind, v.answer, ai.answer, v.points)
        total += ai.awarded or 0.0
    attempt.score = round(total, 4)
    attempt.needs_grading = pending


def _close(attempt: Attempt, now: datetime, reason: str, ip=None, device=None) -> None:
    attempt.submitted_at = now if reason == "learner" else min(now, attempt.deadline)
    attempt.submit_reason = reason
    score_attempt(attempt)
    event(attempt, SUBMITTED if reason == "learner" else AUTO_SUBMITTED, now, ip=ip, device=device,
          detail=f"score {attempt.score}" + ("; essays to grade" if attempt.needs_grading else ""))


def submit_attempt(user: User, attempt_id: int, *, ip, device, seb=None) -> dict:
    """Submit: objective items scored at once. After the deadline an unsubmitted attempt
    is closed at its deadline (as the job would); a submitted one answers 409."""
    now = clock.now()
    attempt, exam, _course = attempt_for(attempt_id, user)
    if user.role != "learner":
        raise forbidden("only the learner submits an attempt")
    if seb is not None:
        proctoring.check_seb(exam, *seb)
    attempt = lock_row(Attempt, attempt.id)
    if attempt.submitted_at is not None:
        raise ApiError(409, "attempt_closed", "the attempt was already submitted",
                       extra={"submitted_at": clock.iso(attempt.submitted_at)})
    _close(attempt, now, "learner" if now < attempt.deadline else "deadline", ip, device)
    db.session.commit()
    return {"attempt_id": attempt.id, "submitted_at": clock.iso(attempt.submitted_at), "score": attempt.score,
            "needs_grading": attempt.needs_grading, "submit_reason": attempt.submit_reason}


def submit_overdue(limit: int = 500) -> int:
    """Job: close every attempt whose deadline has passed (EXM-4, EXM-10). Each attempt in
    its own short transaction, locked, so a learner's last answer and the job never meet."""
    now = clock.now()
    ids = list(db.session.scalars(select(Attempt.id).where(Attempt.submitted_at.is_(None), Attempt.deadline <= now)
                                  .order_by(Attempt.deadline).limit(limit)))
    db.session.rollback()
    done = 0
    for attempt_id in ids:
        attempt = lock_row(Attempt, attempt_id)
        if attempt is not None and attempt.submitted_at is None and attempt.deadline <= now:
            _close(attempt, now, "deadline")
            done += 1
        db.session.commit()
    return done


def record_incident(user: User, attempt_id: int, kind: str, detail: str | None, *, ip, device) -> dict:
    """The lockdown page reports an exit from fullscreen, a blur, a copy attempt…: an
    incident appended to the exam evidence and shown to the instructor (EXM-9)."""
    if kind not in proctor_rules.INCIDENT_KINDS:
        raise ApiError(400, "invalid_request", f"kind must be one of {', '.join(proctor_rules.INCIDENT_KINDS)}")
    now = clock.now()
    attempt, _exam, _course = attempt_for(attempt_id, user)
    if user.role != "learner":
        raise forbidden("only the learner's exam page reports incidents")
    if proctoring.incident_count(attempt.id) >= proctor_rules.MAX_INCIDENTS_PER_ATTEMPT:
        raise ApiError(429, "too_many_incidents", "too many incidents recorded for this attempt")
    late = attempt.submitted_at is not None or now >= attempt.deadline
    event(attempt, INCIDENT, now, ip=ip, device=device,
          detail=(kind + (f": {detail}" if detail else "") + (" (after the attempt)" if late else ""))[:500])
    db.session.commit()
    return {"attempt_id": attempt.id, "kind": kind, "recorded_at": clock.iso(now)}

