"""Viewing and attendance: the transactions of the write side (ATT-1, ATT-2, ATT-4, ATT-5,
REC-1, REC-3).

- A *view* is one viewing session of a lesson by a learner. Opening one ends the learner's
  other open views (``replaced``). Its heartbeats report the spans played; the pure rules
  (``lms.attendance.rules``) clip them, credit only new coverage within the real-time
  budget, and hold credit while a presence challenge is unanswered.
- Every start, heartbeat, challenge (issued, answered, failed) and end is appended to the
  viewing log (``ViewEvent``) in the same transaction that updates the summaries
  (``LessonView``, ``LessonProgress``); a heartbeat is committed before it is answered.
- Attendance statuses are stored on ``LessonProgress``: *attended* the moment a lesson is
  covered in time; *absent*/*excused* when ``settle_due`` (a periodic job) or
  ``settle_learner`` (after an excuse decision) settles it. ``recompute_course`` rebuilds
  everything from the viewing log and reports any difference from what was stored.

Concurrency: a heartbeat locks its ``LessonView`` row, then the ``LessonProgress`` row
(``SELECT … FOR UPDATE``; on SQLite a no-op write takes the database's write lock first),
so two heartbeats of one view never credit the same span twice. Opening a view locks the
learner's row, so one learner never holds two open views.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from sqlalchemy import Boolean, Float, and_, bindparam, case, func, select, update

from lms import clock
from lms.attendance import rules
from lms.attendance.models import (ExcuseLesson, ExcuseRequest, LessonProgress, LessonView,
                                   ViewEvent)
from lms.auth.models import User
from lms.content.models import Course, Lesson
from lms.db import UTCDateTime, db, is_sqlite, lock_row
from lms.errors import ApiError, forbidden, not_found

_random = secrets.SystemRandom()

# ViewEvent kinds (the viewing log, REC-1).
START, HEARTBEAT, CHALLENGE, CHALLENGE_OK, CHALLENGE_FAIL, END = (
    "start", "heartbeat", "challenge", "challenge_ok", "challenge_fail", "end")
# LessonView end reasons.
ENDED, REPLACED, EXPIRED = "ended", "replaced", "expired"


# --- settings --------------------------------------------------------------------------

def max_playback_rate() -> float:
    """ATT-4: the fastest playback credited (``LMS_MAX_PLAYBACK_RATE``, default 1.0)."""
    return float(current_app.config.get("MAX_PLAYBACK_RATE", 1.0))


def _challenge_threshold() -> float | None:
    cfg = current_app.config
    return rules.next_challenge_after(float(cfg.get("CHALLENGE_MIN_MINUTES", 8.0)),
                                      float(cfg.get("CHALLENGE_MAX_MINUTES", 15.0)), _random.random())


def challenges_on() -> bool:
    return float(current_app.config.get("CHALLENGE_MIN_MINUTES", 8.0)) > 0


# --- locking helpers ---------------------------------------------------------------------

def _sqlite() -> bool:
    return is_sqlite()


_locked = lock_row


def _insert_ignore(model, rows: list[dict], conflict: list[str], *, batched: bool = False) -> None:
    """INSERT … ON CONFLICT DO NOTHING (PostgreSQL and SQLite). ``batched`` for many rows:
    a Core INSERT with RETURNING, which SQLAlchemy sends as multi-row VALUES (its
    "insertmanyvalues", up to 1000 rows a statement) instead of one execution per row."""
    if not rows:
        return
    if _sqlite():
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    if batched:
        table = model.__table__
        db.session.execute(dialect_insert(table).on_conflict_do_nothing(index_elements=conflict)
                           .returning(table.c.id), rows)
        return
    db.session.execute(dialect_insert(model).on_conflict_do_nothing(index_elements=conflict), rows)


def _progress_locked(learner_id: int, lesson: Lesson) -> LessonProgress:
    """The learner's progress row of ``lesson``, created when missing, locked (FOR UPDATE).
    Callers hold the view's (or the learner's) lock already — on SQLite that is the
    database's write lock — so lock order is always view → progress."""
    stmt = (select(LessonProgress).where(LessonProgress.learner_id == learner_id,
                                         LessonProgress.lesson_id == lesson.id)
            .with_for_update().execution_options(populate_existing=True))
    row = db.session.scalar(stmt)
    if row is None:
        _insert_ignore(LessonProgress, [{
            "learner_id": learner_id, "lesson_id": lesson.id, "course_id": lesson.course_id,
            "intervals": [], "covered_seconds": 0, "status": rules.PENDING,
        }], ["learner_id", "lesson_id"])
        row = db.session.scalar(stmt)
    return row


_EVENT_INSERT = ViewEvent.__table__.insert()


def _event(view: LessonView, kind: str, at: datetime, **values) -> None:
    """Append a row to the viewing log (REC-1) now, in the current transaction: a Core
    INSERT, without the unit of work's bookkeeping for a row nothing reads back. Rows get
    their ids in the order of these calls."""
    _event_row(view.id, view.learner_id, view.lesson_id, view.course_id, kind, at, **values)


def _event_row(view_id: int, learner_id: int, lesson_id: int, course_id: int, kind: str, at: datetime,
               **values) -> None:
    """``_event`` from plain values (the heartbeat has no ``LessonView`` object)."""
    db.session.execute(_EVENT_INSERT, {"view_id": view_id, "learner_id": learner_id, "lesson_id": lesson_id,
                                       "course_id": course_id, "at": at, "kind": kind, **values})


# --- reading -------------------------------------------------------------------------------

def lesson_length(lesson: Lesson) -> int:
    return rules.timeline_length(lesson.kind, lesson.duration_seconds, lesson.frames)


def _fraction(progress: LessonProgress | None, length: int) -> float:
    covered = progress.covered_seconds if progress is not None else 0
    return rules.lesson_progress_fraction(covered=covered, length=length,
                                          completed=bool(length) and covered >= length)


def is_excused(learner_id: int, lesson_id: int) -> bool:
    """ATT-5: an approved excuse request of the learner covers the lesson."""
    return db.session.scalar(
        select(ExcuseLesson.id).join(ExcuseRequest, ExcuseRequest.id == ExcuseLesson.request_id)
        .where(ExcuseRequest.learner_id == learner_id, ExcuseRequest.status == "approved",
               ExcuseLesson.lesson_id == lesson_id).limit(1)) is not None


def excused_pairs(course_id: int, learner_ids=None) -> set[tuple[int, int]]:
    """ATT-5: ``(learner_id, lesson_id)`` pairs of the course covered by approved excuses."""
    stmt = (select(ExcuseRequest.learner_id, ExcuseLesson.lesson_id)
            .join(ExcuseLesson, ExcuseLesson.request_id == ExcuseRequest.id)
            .where(ExcuseRequest.course_id == course_id, ExcuseRequest.status == "approved"))
    if learner_ids is not None:
        stmt = stmt.where(ExcuseRequest.learner_id.in_(list(learner_ids)))
    return {(a, b) for a, b in db.session.execute(stmt)}


def _own_view(user: User, view_id: int) -> LessonView:
    """The view, locked, when it is ``user``'s; 404 otherwise (another learner's view is
    not revealed); 409 ``view_ended`` once it has ended."""
    return _check_own_view(user, _locked(LessonView, view_id))


# --- the heartbeat's statements ------------------------------------------------------------
#
# A heartbeat is the busiest write of the system (one per watching learner every 10 s), so
# it goes through SQLAlchemy Core on the session's connection: plain rows in, plain values
# out, no ORM objects to build, track, flush and expire.
#
# Its read, one round trip: the columns it needs of its view (only when it is the learner's),
# of the view's lesson and of the learner's progress row of it, view and progress locked
# (FOR UPDATE OF in that order: the lock order of every path, view → progress). The progress
# row exists once the view has started; when it does not (or the view is not the learner's),
# the join finds nothing and ``_heartbeat_row`` takes the general path.
_V, _P, _L = LessonView.__table__.c, LessonProgress.__table__.c, Lesson.__table__.c
_HEARTBEAT_READ = (
    select(_V.started_at, _V.ended_at, _V.end_reason, _V.last_heartbeat_at, _V.credited_seconds,
           _V.suspicious_excess_seconds, _V.played_since_challenge, _V.next_challenge_after_seconds,
           _V.challenge_id, _V.challenge_code, _V.lesson_id, _V.course_id,
           _L.kind, _L.duration_seconds, _L.frames, _L.attendance_deadline,
           _P.id.label("progress_id"), _P.intervals, _P.covered_seconds, _P.completed_at, _P.status)
    .select_from(LessonView.__table__)
    .join(Lesson.__table__, _L.id == _V.lesson_id)
    .join(LessonProgress.__table__, and_(_P.learner_id == _V.learner_id, _P.lesson_id == _V.lesson_id))
    .where(_V.id == bindparam("hb_view_id"), _V.learner_id == bindparam("hb_learner_id"))
    .with_for_update(of=[LessonView.__table__, LessonProgress.__table__]))
# SQLite ignores FOR UPDATE: a no-op write of the view takes the database's write lock first
# (as ``lock_row`` does), so a second heartbeat waits for this one's commit.
_SQLITE_VIEW_LOCK = update(LessonView.__table__).where(_V.id == bindparam("hb_view_id")).values(id=_V.id)

# Its writes: the viewing-log row (REC-1, append-only), the progress row, the view's summary.
# Parameters are named hb_…: an UPDATE given a parameter named as one of its table's
# columns would SET that column too.
_HEARTBEAT_EVENT = ViewEvent.__table__.insert().values(
    view_id=bindparam("hb_view_id"), learner_id=bindparam("hb_learner_id"), lesson_id=bindparam("hb_lesson_id"),
    course_id=bindparam("hb_course_id"), at=bindparam("hb_now"), kind=HEARTBEAT, ip=bindparam("hb_ip"),
    device=bindparam("hb_device"), claimed=bindparam("hb_claimed"), credited=bindparam("hb_credited"),
    credited_seconds=bindparam("hb_credited_seconds"), excess_seconds=bindparam("hb_excess_seconds"),
    detail=bindparam("hb_detail"))
_HEARTBEAT_PROGRESS = update(LessonProgress.__table__).where(_P.id == bindparam("hb_progress_id")).values(
    intervals=bindparam("hb_intervals"), covered_seconds=bindparam("hb_covered_seconds"),
    completed_at=bindparam("hb_completed_at"), status=bindparam("hb_status"),
    # settled_at changes with the status only (``_progress_after`` says when)
    settled_at=case((bindparam("hb_status_changed", type_=Boolean), bindparam("hb_settled_at", type_=UTCDateTime())),
                    else_=_P.settled_at),
    last_access_at=bindparam("hb_now"), last_access_ip=bindparam("hb_ip"))
_HEARTBEAT_VIEW = update(LessonView.__table__).where(_V.id == bindparam("hb_view_id")).values(
    last_heartbeat_at=bindparam("hb_now"),
    position_seconds=func.coalesce(bindparam("hb_position", type_=Float()), _V.position_seconds),
    credited_seconds=bindparam("hb_view_credited"), suspicious_excess_seconds=bindparam("hb_view_excess"),
    played_since_challenge=bindparam("hb_played"), next_challenge_after_seconds=bindparam("hb_threshold"))
# PostgreSQL: the three in one statement, one round trip (data-modifying WITH; each part
# sees the snapshot of the statement's start and they touch different tables). SQLite has
# no data-modifying WITH: the three statements in this order.
_HEARTBEAT_WRITE = _HEARTBEAT_VIEW.add_cte(_HEARTBEAT_EVENT.cte("ev"), _HEARTBEAT_PROGRESS.cte("pr"))
_HEARTBEAT_WRITES_SQLITE = (_HEARTBEAT_EVENT, _HEARTBEAT_PROGRESS, _HEARTBEAT_VIEW)
_ISSUE_CHALLENGE = update(LessonView.__table__).where(_V.id == bindparam("hb_view_id")).values(
    challenge_id=bindparam("hb_challenge_id"), challenge_code=bindparam("hb_challenge_code"),
    challenge_issued_at=bindparam("hb_now"))


def _heartbeat_row(conn, user: User, view_id: int, sqlite: bool):
    """The heartbeat's read (``_HEARTBEAT_READ``), view and progress locked: 404 when the
    view is not ``user``'s, 409 ``view_ended`` once it has ended (``_check_own_view``). A
    missing progress row is created (``_progress_locked``) and the read repeated."""
    params = {"hb_view_id": view_id, "hb_learner_id": user.id}
    if sqlite:
        conn.execute(_SQLITE_VIEW_LOCK, params)
    row = conn.execute(_HEARTBEAT_READ, params).first()
    if row is None:
        view = _own_view(user, view_id)
        _progress_locked(view.learner_id, db.session.get(Lesson, view.lesson_id))
        row = conn.execute(_HEARTBEAT_READ, params).first()
    if row.ended_at is not None:
        raise _view_ended(row.end_reason)
    return row


def _check_own_view(user: User, view: LessonView | None) -> LessonView:
    if view is None or view.learner_id != user.id:
        raise not_found("view")
    if view.ended_at is not None:
        raise _view_ended(view.end_reason)
    return view


def _view_ended(end_reason: str | None) -> ApiError:
    return ApiError(409, "view_ended", f"this view has ended ({end_reason}); open a new one",
                    extra={"end_reason": end_reason})


def _challenge_dict(view: LessonView) -> dict | None:
    if view.challenge_id is None:
        return None
    return {"id": view.challenge_id, "code": view.challenge_code}


def _view_state(view: LessonView, lesson: Lesson, progress: LessonProgress | None) -> dict:
    length = lesson_length(lesson)
    covered = progress.covered_seconds if progress is not None else 0
    out = {
        "view_id": view.id, "lesson_id": lesson.id, "course_id": lesson.course_id,
        "duration_seconds": length, "max_playback_rate": max_playback_rate(),
        "position_seconds": view.position_seconds or 0.0,
        "progress": _fraction(progress, length), "covered_seconds": covered,
        "completed": bool(length) and covered >= length,
        "status": progress.status if progress is not None else rules.PENDING,
        "intervals": list(progress.intervals or []) if progress is not None else [],
        "attendance_deadline": clock.iso(lesson.attendance_deadline),
        "started_at": clock.iso(view.started_at),
    }
    challenge = _challenge_dict(view)
    if challenge:
        out["challenge"] = challenge
    return out


# --- views -------------------------------------------------------------------------------

def start_view(user: User, lesson_id: int, *, ip: str | None, device: str | None) -> dict:
    """Open a view of a lesson for an enrolled learner (API.md ``POST /lessons/{id}/views``).

    403 when the learner is not enrolled; 409 ``lesson_not_open`` before the lesson opens
    (00:00 KST of its week). Ends the learner's other open views (``replaced``); resumes at
    the learner's last position on this lesson; a pending presence challenge of the
    learner's previous view carries over (a new view is no way around it, ATT-4)."""
    from lms.content import service as content

    lesson = content.get_lesson(lesson_id, user)
    if user.role != "learner" or not content.is_enrolled(lesson.course_id, user.id):
        raise forbidden("only a learner enrolled in the course may view its lessons")
    now = clock.now()
    if now < lesson.opens_at:
        raise ApiError(409, "lesson_not_open",
                       f"the lesson opens at {clock.iso(lesson.opens_at)}")
    _locked(User, user.id)  # one learner, one open view: serialise this learner's starts
    now = clock.now()  # after waiting for the lock

    previous = db.session.scalar(select(LessonView).where(LessonView.learner_id == user.id)
                                 .order_by(LessonView.id.desc()).limit(1))
    open_views = db.session.scalars(select(LessonView).where(
        LessonView.learner_id == user.id, LessonView.ended_at.is_(None)).with_for_update()).all()
    for other in open_views:
        other.ended_at = now
        other.end_reason = REPLACED
        _event(other, END, now, ip=ip, device=device, detail=REPLACED)

    resume = db.session.scalar(select(LessonView.position_seconds).where(
        LessonView.learner_id == user.id, LessonView.lesson_id == lesson.id)
        .order_by(LessonView.id.desc()).limit(1))
    view = LessonView(learner_id=user.id, lesson_id=lesson.id, course_id=lesson.course_id,
                      started_at=now, ip=ip, device=device, position_seconds=resume or 0.0,
                      credited_seconds=0.0, suspicious_excess_seconds=0.0, played_since_challenge=0.0)
    inherited = None
    if previous is not None and challenges_on():
        view.played_since_challenge = previous.played_since_challenge or 0.0
        view.next_challenge_after_seconds = previous.next_challenge_after_seconds
        if previous.challenge_id is not None:
            view.challenge_id = previous.challenge_id
            view.challenge_code = previous.challenge_code
            view.challenge_issued_at = previous.challenge_issued_at
            inherited = previous.challenge_id
    if view.next_challenge_after_seconds is None:
        view.next_challenge_after_seconds = _challenge_threshold()
    db.session.add(view)
    db.session.flush()
    _event(view, START, now, ip=ip, device=device,
           detail=f"challenge pending {inherited}" if inherited else None)

    progress = _progress_locked(user.id, lesson)
    progress.last_access_at = now
    progress.last_access_ip = ip
    db.session.commit()
    return _view_state(view, lesson, progress)


def heartbeat(user: User, view_id: int, segments: list, *, ip: str | None, device: str | None) -> dict:
    """Credit a heartbeat (ATT-4) and answer with the lesson's progress. ``segments`` has
    been validated (``rules.segment_problem``) before anything is written. Committed
    before the answer: a heartbeat answered 200 is durable.

    Round trips on PostgreSQL: the locked read, one write statement (viewing-log row,
    progress, view), COMMIT — and, when a presence challenge is issued, two more."""
    conn = db.session.connection()
    sqlite = conn.dialect.name == "sqlite"
    row = _heartbeat_row(conn, user, view_id, sqlite)
    now = clock.now()
    length = rules.timeline_length(row.kind, row.duration_seconds, row.frames)
    max_rate = max_playback_rate()
    elapsed = (now - (row.last_heartbeat_at or row.started_at)).total_seconds()
    claimed = [[float(a), float(b)] for a, b in segments]
    intervals = row.intervals or []
    covered, completed_at, status, status_changed = row.covered_seconds, row.completed_at, row.status, False
    view_credited = row.credited_seconds or 0.0
    view_excess = row.suspicious_excess_seconds or 0.0
    played = row.played_since_challenge or 0.0
    pending = row.challenge_id is not None

    if pending:
        # ATT-4: nothing more is credited until the challenge is answered.
        credit = rules.credit_heartbeat(intervals=intervals, segments=[], length=length,
                                        elapsed_seconds=elapsed, max_rate=max_rate)
        position = rules.play_position(claimed, length)
        credited, detail = [], "challenge_pending"
    else:
        view_left = rules.view_credit_left(view_elapsed_seconds=(now - row.started_at).total_seconds(),
                                           credited_seconds=view_credited, max_rate=max_rate)
        credit = rules.credit_heartbeat(intervals=intervals, segments=claimed, length=length,
                                        elapsed_seconds=elapsed, max_rate=max_rate, view_left=view_left)
        position = credit.position_seconds
        credited, detail = credit.credited, None
        view_credited += credit.credited_seconds
        view_excess += credit.excess_seconds
        played += credit.credited_seconds
        if credited:
            intervals, covered, completed_at, status, status_changed = _progress_after(
                row, user.id, credited, now, length)

    complete = bool(length) and covered >= length
    threshold = row.next_challenge_after_seconds
    issued = None
    if challenges_on():
        if threshold is None:
            threshold = _challenge_threshold()
        if rules.challenge_due(played_since=played, threshold=threshold, pending=pending, complete=complete):
            issued = {"id": secrets.token_hex(8),
                      "code": "".join(secrets.choice("0123456789") for _ in range(rules.CHALLENGE_CODE_DIGITS))}

    params = {
        # the viewing-log row
        "hb_view_id": view_id, "hb_learner_id": user.id, "hb_lesson_id": row.lesson_id,
        "hb_course_id": row.course_id, "hb_now": now, "hb_ip": ip, "hb_device": device, "hb_claimed": claimed,
        "hb_credited": credited, "hb_credited_seconds": float(credit.credited_seconds),
        "hb_excess_seconds": float(credit.excess_seconds), "hb_detail": detail,
        # the progress row
        "hb_progress_id": row.progress_id, "hb_intervals": intervals, "hb_covered_seconds": covered,
        "hb_completed_at": completed_at, "hb_status": status, "hb_status_changed": status_changed,
        "hb_settled_at": None if status == rules.PENDING else now,
        # the view
        "hb_position": position, "hb_view_credited": view_credited, "hb_view_excess": view_excess,
        "hb_played": played, "hb_threshold": threshold,
    }
    if sqlite:
        for stmt in _HEARTBEAT_WRITES_SQLITE:
            conn.execute(stmt, params)
    else:
        conn.execute(_HEARTBEAT_WRITE, params)
    if issued is not None:  # a presence challenge, logged after the heartbeat's row
        conn.execute(_ISSUE_CHALLENGE, {"hb_view_id": view_id, "hb_challenge_id": issued["id"],
                                        "hb_challenge_code": issued["code"], "hb_now": now})
        _event_row(view_id, user.id, row.lesson_id, row.course_id, CHALLENGE, now,
                   ip=ip, device=device, detail=issued["id"])
    answer = {
        "view_id": view_id,
        "progress": rules.lesson_progress_fraction(covered=covered, length=length, completed=complete),
        "completed": complete,
        "credited_seconds": float(credit.credited_seconds), "discarded_seconds": float(credit.excess_seconds),
        "covered_seconds": covered, "duration_seconds": length, "status": status,
        "intervals": [[float(a), float(b)] for a, b in intervals],
    }
    challenge = issued or ({"id": row.challenge_id, "code": row.challenge_code} if pending else None)
    if challenge is not None:
        answer["challenge"] = challenge
    db.session.commit()
    return answer


def _progress_after(row, learner_id: int, credited, now: datetime, length: int) -> tuple:
    """The progress row ``row`` after adding credited spans: (intervals, covered seconds,
    completed_at — the first instant of full coverage —, the status the rules give now
    (ATT-1, ATT-2), whether that status changed)."""
    intervals, covered = rules.apply_credit(row.intervals or [], credited, length)
    completed_at = row.completed_at
    if completed_at is None and length and covered >= length:
        completed_at = now
    deadline = row.attendance_deadline
    status = rules.lesson_status(completed_at=completed_at, deadline=deadline, now=now,
                                 excused=row.status == rules.EXCUSED)
    if status != row.status and status != rules.ATTENDED:
        status = rules.lesson_status(completed_at=completed_at, deadline=deadline, now=now,
                                     excused=is_excused(learner_id, row.lesson_id))
    return intervals, covered, completed_at, status, status != row.status


def answer_challenge(user: User, view_id: int, challenge_id: str, code: str, *,
                     ip: str | None, device: str | None) -> dict:
    """ATT-4: the learner types back the presence code. Right → credit resumes (200);
    wrong → 422 ``wrong_code`` (logged); no challenge pending → 409 ``no_challenge``."""
    view = _own_view(user, view_id)
    now = clock.now()
    if view.challenge_id is None:
        raise ApiError(409, "no_challenge", "no presence challenge is pending on this view")
    ok = hmac.compare_digest(challenge_id.encode(), view.challenge_id.encode()) and \
        hmac.compare_digest(code.strip().encode(), (view.challenge_code or "").encode())
    if not ok:
        _event(view, CHALLENGE_FAIL, now, ip=ip, device=device, detail=view.challenge_id)
        db.session.commit()
        raise ApiError(422, "wrong_code", "that is not the code shown; type the code on the screen")
    _event(view, CHALLENGE_OK, now, ip=ip, device=device, detail=view.challenge_id)
    view.challenge_id = None
    view.challenge_code = None
    view.challenge_issued_at = None
    view.played_since_challenge = 0.0
    view.next_challenge_after_seconds = _challenge_threshold()
    db.session.commit()
    return {"ok": True}


def end_view(user: User, view_id: int, *, ip: str | None, device: str | None) -> dict:
    """End a view (API.md ``POST /views/{id}/end``): the viewing log's end time (REC-1)."""
    view = _own_view(user, view_id)
    now = clock.now()
    view.ended_at = now
    view.end_reason = ENDED
    _event(view, END, now, ip=ip, device=device, detail=ENDED)
    lesson = db.session.get(Lesson, view.lesson_id)
    progress = db.session.scalar(select(LessonProgress).where(
        LessonProgress.learner_id == view.learner_id, LessonProgress.lesson_id == view.lesson_id))
    db.session.commit()
    length = lesson_length(lesson)
    return {"view_id": view.id, "ended_at": clock.iso(view.ended_at), "end_reason": view.end_reason,
            "credited_seconds": view.credited_seconds, "progress": _fraction(progress, length),
            "status": progress.status if progress is not None else rules.PENDING}


def expire_idle_views(now: datetime | None = None) -> int:
    """REC-1: end every open view silent for ``VIEW_IDLE_TIMEOUT`` (a closed browser never
    says goodbye). Its end time is its last sign of life. Returns how many ended."""
    now = now or clock.now()
    cutoff = now - rules.VIEW_IDLE_TIMEOUT
    ids = db.session.scalars(select(LessonView.id).where(
        LessonView.ended_at.is_(None),
        func.coalesce(LessonView.last_heartbeat_at, LessonView.started_at) <= cutoff)).all()
    ended = 0
    for view_id in ids:
        view = _locked(LessonView, view_id)
        if view is None or view.ended_at is not None:
            continue
        last = view.last_heartbeat_at or view.started_at
        if not rules.view_idle(last, now):
            continue
        view.ended_at = last
        view.end_reason = EXPIRED
        _event(view, END, last, ip=None, device=None, detail=EXPIRED)
        db.session.commit()
        ended += 1
    db.session.commit()
    return ended


# --- settling attendance (ATT-1, ATT-2, ATT-5) -------------------------------------------

def _active_learners(course_id: int, learner_ids=None) -> set[int]:
    from lms.enrolment.models import Enrollment

    stmt = select(Enrollment.user_id).where(Enrollment.course_id == course_id, Enrollment.status == "active")
    if learner_ids is not None:
        stmt = stmt.where(Enrollment.user_id.in_(list(learner_ids)))
    return set(db.session.scalars(stmt))


# Rows fetched per round trip, and ids (or new rows) per statement, while settling.
SETTLE_CHUNK = 1000


def _settle(course_id: int, lessons: list, now: datetime, learner_ids=None) -> int:
    """Store the status the rules give at ``now`` on ``lessons`` for the active enrollees of
    the course and for every existing progress row (or just those of ``learner_ids``).
    Rows whose status changes are updated; a missing row is created when its status is
    not *pending* (the absent and excused leave a row behind). Returns rows changed.

    Memory stays small whatever the course's size (10,000 learners × 45 lessons is 450,000
    pairs): the existing rows are streamed — locked as before, in id order, the order every
    settle locks in — keeping only the ids whose status changes; the missing pairs come
    from an anti-join in the database, not from a set of every pair; the changes are
    written a chunk of ids per UPDATE (one status each) and a chunk of rows per INSERT.
    The status itself is still ``rules.lesson_status`` of each pair."""
    from lms.enrolment.models import Enrollment

    if not lessons:
        return 0
    by_id = {l.id: l for l in lessons}
    lesson_ids = list(by_id)
    existing = (select(LessonProgress.id, LessonProgress.learner_id, LessonProgress.lesson_id,
                       LessonProgress.completed_at, LessonProgress.status)
                .where(LessonProgress.lesson_id.in_(lesson_ids)).order_by(LessonProgress.id).with_for_update())
    missing = (select(Enrollment.user_id, Lesson.id)
               .join(Lesson, and_(Lesson.course_id == Enrollment.course_id, Lesson.id.in_(lesson_ids)))
               .outerjoin(LessonProgress, and_(LessonProgress.lesson_id == Lesson.id,
                                               LessonProgress.learner_id == Enrollment.user_id))
               .where(Enrollment.course_id == course_id, Enrollment.status == "active",
                      LessonProgress.id.is_(None)))
    if learner_ids is not None:
        existing = existing.where(LessonProgress.learner_id.in_(list(learner_ids)))
        missing = missing.where(Enrollment.user_id.in_(list(learner_ids)))
    excused = excused_pairs(course_id, learner_ids)

    def status_of(learner: int, lesson_id: int, completed_at: datetime | None) -> str:
        return rules.lesson_status(completed_at=completed_at, deadline=by_id[lesson_id].attendance_deadline,
                                   now=now, excused=(learner, lesson_id) in excused)

    changes: dict[str, list[int]] = {}  # new status → ids of the rows that change to it
    for row in db.session.execute(existing.execution_options(yield_per=SETTLE_CHUNK)):
        status = status_of(row.learner_id, row.lesson_id, row.completed_at)
        if status != row.status:
            changes.setdefault(status, []).append(row.id)
    inserts = []
    for learner, lesson_id in db.session.execute(missing.execution_options(yield_per=SETTLE_CHUNK)):
        status = status_of(learner, lesson_id, None)
        if status != rules.PENDING:
            inserts.append((learner, lesson_id, status))
    for status, ids in changes.items():
        settled_at = None if status == rules.PENDING else now
        for i in range(0, len(ids), SETTLE_CHUNK):
            db.session.execute(update(LessonProgress).where(LessonProgress.id.in_(ids[i:i + SETTLE_CHUNK]))
                               .values(status=status, settled_at=settled_at))
    for i in range(0, len(inserts), SETTLE_CHUNK):
        _insert_ignore(LessonProgress, [
            {"learner_id": learner, "lesson_id": lesson_id, "course_id": course_id, "intervals": [],
             "covered_seconds": 0, "status": status, "settled_at": now}
            for learner, lesson_id, status in inserts[i:i + SETTLE_CHUNK]], ["learner_id", "lesson_id"],
            batched=True)
    return sum(len(ids) for ids in changes.values()) + len(inserts)


def settle_learner(course_id: int, learner_id: int) -> None:
    """Recompute and store one learner's statuses on every lesson of the course at
    ``clock.now()`` (ATT-1, ATT-2, ATT-5). The excuse workflow calls this after a
    decision, so an approved excuse shows as *excused* at once. Commits."""
    now = clock.now()
    lessons = list(db.session.scalars(select(Lesson).where(Lesson.course_id == course_id)))
    _settle(course_id, lessons, now, learner_ids={learner_id})
    db.session.commit()


def settle_due(now: datetime | None = None) -> int:
    """Settle every lesson whose attendance deadline has passed (ATT-1, ATT-2): each
    *pending* or missing status of its learners becomes *attended*, *absent* or *excused*.
    Run every minute by the scheduler (``lms/attendance/jobs.py``), so reports read stored
    statuses instead of recomputing history. Returns the number of rows changed."""
    from lms.enrolment.models import Enrollment

    now = now or clock.now()
    unsettled_pending = (select(LessonProgress.lesson_id)
                         .join(Lesson, Lesson.id == LessonProgress.lesson_id)
                         .where(LessonProgress.status == rules.PENDING, Lesson.attendance_deadline < now))
    missing = (select(Lesson.id)
               .join(Enrollment, and_(Enrollment.course_id == Lesson.course_id, Enrollment.status == "active"))
               .outerjoin(LessonProgress, and_(LessonProgress.lesson_id == Lesson.id,
                                               LessonProgress.learner_id == Enrollment.user_id))
               .where(Lesson.attendance_deadline < now, LessonProgress.id.is_(None)))
    lesson_ids = set(db.session.scalars(unsettled_pending.distinct())) | set(db.session.scalars(missing.distinct()))
    if not lesson_ids:
        return 0
    lessons = list(db.session.scalars(select(Lesson).where(Lesson.id.in_(list(lesson_ids)))
                                      .order_by(Lesson.course_id, Lesson.id)))
    changed = 0
    by_course: dict[int, list] = {}
    for lesson in lessons:
        by_course.setdefault(lesson.course_id, []).append(lesson)
    for course_id, course_lessons in by_course.items():
        changed += _settle(course_id, course_lessons, now)
        db.session.commit()
    return changed


# --- recompute from the viewing log -------------------------------------------------------

PROGRESS_FIELDS = ("intervals", "covered_seconds", "completed_at", "status", "last_access_at", "last_access_ip")
VIEW_FIELDS = ("credited_seconds", "suspicious_excess_seconds", "last_heartbeat_at", "ended_at", "end_reason")


@dataclass
class Difference:
    what: str  # "progress" | "view"
    key: tuple  # (learner_id, lesson_id) or (view_id,)
    field: str
    stored: object
    rebuilt: object

    def line(self) -> str:
        name = (f"learner {self.key[0]} lesson {self.key[1]}" if self.what == "progress"
                else f"view {self.key[0]}")
        return f"{name}: {self.field} stored {_show(self.stored)} rebuilt {_show(self.rebuilt)}"


def _show(value) -> str:
    if isinstance(value, datetime):
        return clock.iso(value)
    return repr(value)


@dataclass
class RecomputeResult:
    course_id: int
    events: int = 0
    progress_rows: int = 0
    views: int = 0
    written: bool = False
    differences: list = field(default_factory=list)

    def summary(self, limit: int = 50) -> str:
        head = (f"course {self.course_id}: {self.events} viewing-log events, {self.progress_rows} "
                f"learner×lesson records, {self.views} views; ")
        if not self.differences:
            return head + "rebuilt result equals the stored one"
        by_field: dict[str, int] = {}
        for d in self.differences:
            by_field[f"{d.what}.{d.field}"] = by_field.get(f"{d.what}.{d.field}", 0) + 1
        lines = [head + f"{len(self.differences)} difference(s) "
                 + ("(stored rows rewritten)" if self.written else "(nothing written)") + ": "
                 + ", ".join(f"{k} ×{v}" for k, v in sorted(by_field.items()))]
        lines += ["  " + d.line() for d in self.differences[:limit]]
        if len(self.differences) > limit:
            lines.append(f"  … and {len(self.differences) - limit} more")
        return "\n".join(lines)


def _default_progress() -> dict:
    return {"intervals": [], "covered_seconds": 0, "completed_at": None, "status": rules.PENDING,
            "last_access_at": None, "last_access_ip": None}


def recompute_course(course_id: int, *, now: datetime | None = None, write: bool = True) -> RecomputeResult:
    """Rebuild the course's ``LessonProgress`` (intervals, covered seconds, completion,
    status at ``now``, last access) and the ``LessonView`` summaries purely from the
    viewing log, replaying it in log order through the same rules as the live path, and
    compare with what is stored. A missing progress row is the same as an untouched
    *pending* one. With ``write`` the stored rows are replaced by the rebuilt ones (no row
    is deleted). Run by ``flask --app wsgi lms attendance recompute --course N``."""
    course = db.session.get(Course, course_id)
    if course is None:
        raise not_found("course")
    now = now or clock.now()
    lessons = {l.id: l for l in db.session.scalars(select(Lesson).where(Lesson.course_id == course_id))}
    lengths = {lid: lesson_length(l) for lid, l in lessons.items()}
    # Lock the derived rows first (views, then progress: a heartbeat's order), so live
    # heartbeats of this course wait until the rebuild is done.
    if write and _sqlite():
        db.session.execute(update(Course).where(Course.id == course_id).values(id=Course.id)
                           .execution_options(synchronize_session=False))  # SQLite write lock
    views_q = select(LessonView).where(LessonView.course_id == course_id).order_by(LessonView.id)
    rows_q = select(LessonProgress).where(LessonProgress.course_id == course_id).order_by(LessonProgress.id)
    if write:
        views_q, rows_q = views_q.with_for_update(), rows_q.with_for_update()
    stored_views = {v.id: v for v in db.session.scalars(views_q)}
    stored_rows = {(r.learner_id, r.lesson_id): r for r in db.session.scalars(rows_q)}

    rebuilt: dict[tuple[int, int], dict] = {}
    views: dict[int, dict] = {}
    result = RecomputeResult(course_id=course_id)
    log = db.session.execute(
        select(ViewEvent.view_id, ViewEvent.learner_id, ViewEvent.lesson_id, ViewEvent.kind, ViewEvent.at,
               ViewEvent.ip, ViewEvent.credited, ViewEvent.credited_seconds, ViewEvent.excess_seconds,
               ViewEvent.detail)
        .where(ViewEvent.course_id == course_id).order_by(ViewEvent.id).execution_options(yield_per=5000))
    for ev in log:
        result.events += 1
        v = views.setdefault(ev.view_id, {"credited_seconds": 0.0, "suspicious_excess_seconds": 0.0,
                                          "last_heartbeat_at": None, "ended_at": None, "end_reason": None})
        if ev.kind == HEARTBEAT:
            v["credited_seconds"] = v["credited_seconds"] + (ev.credited_seconds or 0.0)
            v["suspicious_excess_seconds"] = v["suspicious_excess_seconds"] + (ev.excess_seconds or 0.0)
            v["last_heartbeat_at"] = ev.at
        elif ev.kind == END:
            v["ended_at"] = ev.at
            v["end_reason"] = ev.detail
        if ev.lesson_id not in lessons:
            continue
        p = rebuilt.setdefault((ev.learner_id, ev.lesson_id), _default_progress())
        if ev.kind in (START, HEARTBEAT):
            p["last_access_at"] = ev.at
            p["last_access_ip"] = ev.ip
        if ev.kind == HEARTBEAT and ev.credited:
            length = lengths[ev.lesson_id]
            p["intervals"], p["covered_seconds"] = rules.apply_credit(p["intervals"], ev.credited, length)
            if p["completed_at"] is None and length and p["covered_seconds"] >= length:
                p["completed_at"] = ev.at

    # The same learner×lesson pairs ``_settle`` keeps: active enrollees × lessons, and
    # every pair with a stored row or a viewing log.
    pairs = {(a, b) for a in _active_learners(course_id) for b in lessons} | set(stored_rows)
    pairs |= {k for k in rebuilt if k[1] in lessons}
    excused = excused_pairs(course_id)
    for key in sorted(pairs):
        learner, lesson_id = key
        lesson = lessons[lesson_id]
        p = rebuilt.get(key) or _default_progress()
        p["status"] = rules.lesson_status(completed_at=p["completed_at"], deadline=lesson.attendance_deadline,
                                          now=now, excused=key in excused)
        row = stored_rows.get(key)
        stored = {f: getattr(row, f) for f in PROGRESS_FIELDS} if row is not None else _default_progress()
        stored["intervals"] = [[float(a), float(b)] for a, b in (stored["intervals"] or [])]
        diffs = [Difference("progress", key, f, stored[f], p[f]) for f in PROGRESS_FIELDS if stored[f] != p[f]]
        result.differences.extend(diffs)
        if row is None and p == _default_progress():
            continue  # nothing viewed, nothing settled: no row either way
        result.progress_rows += 1
        if write and (diffs or row is None):
            if row is None:
                row = LessonProgress(learner_id=learner, lesson_id=lesson_id, course_id=course_id)
                db.session.add(row)
            for f in PROGRESS_FIELDS:
                setattr(row, f, p[f])
            row.settled_at = None if p["status"] == rules.PENDING else now

    result.views = len(set(stored_views) | set(views))
    for view_id in sorted(set(stored_views) | set(views)):
        row, v = stored_views.get(view_id), views.get(view_id)
        if row is None or v is None:
            result.differences.append(Difference("view", (view_id,), "exists", row is not None, v is not None))
            continue
        for f in VIEW_FIELDS:
            if getattr(row, f) != v[f]:
                result.differences.append(Difference("view", (view_id,), f, getattr(row, f), v[f]))
                if write:
                    setattr(row, f, v[f])
    if write:
        db.session.commit()
        result.written = bool(result.differences)
    else:
        db.session.rollback()
    return result


def snapshot_course(course_id: int) -> dict:
    """The stored derived state of a course (progress and view summaries) as plain values,
    for comparisons (tests, the recompute command's callers)."""
    progress = {(r.learner_id, r.lesson_id): {f: getattr(r, f) for f in PROGRESS_FIELDS}
                for r in db.session.scalars(select(LessonProgress).where(LessonProgress.course_id == course_id))}
    views = {v.id: {f: getattr(v, f) for f in VIEW_FIELDS}
             for v in db.session.scalars(select(LessonView).where(LessonView.course_id == course_id))}
    return {"progress": progress, "views": views}
