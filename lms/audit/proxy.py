"""Proxy-attendance detection (issue 6, item 5; ATT-4, EXM-9, EXM-13 evidence).

Three kinds of finding for a course, each pointing at its raw log rows:

1. ``shared_views`` / ``shared_attempts``: lessons viewed or exams taken from the same IP
   or device as *another* learner at overlapping times. Found in SQL by an indexed
   self-join on the address with the interval-overlap condition (``a.start < b.end AND
   b.start < a.end``; touching intervals do not overlap) — never by comparing every pair
   of rows in Python. A view's end is ``ended_at``, else its last heartbeat, else its start;
   an attempt's is its submission, else its deadline.
2. ``fast_lessons``: lessons completed in less wall-clock viewing time than real time
   allows (the lesson's length ÷ ``LMS_MAX_PLAYBACK_RATE``), and ``excess_views``: views
   whose heartbeats claimed more than ``LMS_PROXY_EXCESS_SECONDS`` beyond what the
   verification credited (the heartbeat check already refused the credit; the claim is
   the evidence).
3. ``login_jumps``: consecutive logins of one account from *distant* networks within
   ``LMS_PROXY_LOGIN_JUMP_MINUTES`` minutes. "Distant" means a different IPv4 /16
   (``LMS_PROXY_IPV4_PREFIX``) or IPv6 /48 (``LMS_PROXY_IPV6_PREFIX``), or a change of
   address family. Geo-IP (city/country distance) is out of scope: no geo database ships
   with the LMS, and network prefixes need none.

Who: administrators and inspectors of the institution, and the course's instructors and
TAs (who manage attendance, CRS-8); the access-log rows of login jumps only for
administrators and inspectors.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app, url_for
from sqlalchemy import and_, func, or_, select

from lms import clock
from lms.attendance import rules as att
from lms.attendance.models import LessonProgress, LessonView, ViewEvent
from lms.audit.models import AccessLog
from lms.auth.models import User
from lms.content.models import Course, Lesson
from lms.content.service import get_course, staff_roles
from lms.db import db
from lms.enrolment.models import Enrollment
from lms.errors import ApiError, forbidden, not_found
from lms.exams.models import Attempt, AttemptEvent, Exam
from lms.proctoring.models import AttemptAddress

READ_ROLES = ("admin", "inspector")
STAFF = ("instructor", "ta")
RAW_TABLES = ("lesson_view", "attempt", "access_log")
MAX_RAW_IDS = 200
MAX_FINDINGS = 1000  # per kind; the report says when it was cut


@dataclass(frozen=True)
class Settings:
    jump_minutes: float = 30.0
    ipv4_prefix: int = 16
    ipv6_prefix: int = 48
    excess_seconds: float = 60.0
    max_rate: float = 1.0


def settings() -> Settings:
    cfg = current_app.config
    return Settings(jump_minutes=max(0.0, float(cfg.get("PROXY_LOGIN_JUMP_MINUTES", 30.0))),
                    ipv4_prefix=min(32, max(1, int(cfg.get("PROXY_IPV4_PREFIX", 16)))),
                    ipv6_prefix=min(128, max(1, int(cfg.get("PROXY_IPV6_PREFIX", 48)))),
                    excess_seconds=float(cfg.get("PROXY_EXCESS_SECONDS", 60.0)),
                    max_rate=float(cfg.get("MAX_PLAYBACK_RATE", 1.0)) or 1.0)


# --- pure ---------------------------------------------------------------------------------------

def network_of(ip: str | None, ipv4_prefix: int = 16, ipv6_prefix: int = 48):
    """The network an address belongs to for "distance" (None for a missing or bad one)."""
    if not ip:
        return None
    try:
        addr = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = ipv4_prefix if addr.version == 4 else ipv6_prefix
    return ipaddress.ip_network(f"{addr}/{prefix}", strict=False)


def distant(ip_a: str | None, ip_b: str | None, ipv4_prefix: int = 16, ipv6_prefix: int = 48) -> bool:
    """Two addresses in different /16 (IPv4) or /48 (IPv6) networks, or of different families."""
    na, nb = network_of(ip_a, ipv4_prefix, ipv6_prefix), network_of(ip_b, ipv4_prefix, ipv6_prefix)
    return na is not None and nb is not None and na != nb


def login_jumps(rows, *, window: timedelta, ipv4_prefix: int = 16, ipv6_prefix: int = 48) -> list[tuple]:
    """``rows``: (log_id, user_id, at, ip) ordered by user then time. Returns the pairs of
    consecutive logins of one user from distant networks at most ``window`` apart."""
    out = []
    prev = None
    for row in rows:
        if prev is not None and prev[1] == row[1] and row[2] - prev[2] <= window \
                and distant(prev[3], row[3], ipv4_prefix, ipv6_prefix):
            out.append((prev, row))
        prev = row
    return out


def too_fast(wall_seconds: float, length: int, max_rate: float) -> bool:
    """A lesson of ``length`` seconds completed in less viewing time than real time allows."""
    return length > 0 and wall_seconds < length / max_rate


# --- access ------------------------------------------------------------------------------------

def course_for_detection(course_id: int, user) -> Course:
    course = get_course(course_id, user)
    if user.role in READ_ROLES or staff_roles(course.id, user.id) & set(STAFF):
        return course
    raise forbidden("only administrators, inspectors and the course's instructors and TAs see this report")


# --- detection (SQL) ----------------------------------------------------------------------------

def _raw_link(table: str, ids) -> str:
    return url_for("audit_proxy_pages.raw_rows", table=table, ids=",".join(str(i) for i in sorted(set(ids))))


def _iso(t) -> str | None:
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    if t is not None and t.tzinfo is None:
        from datetime import timezone

        t = t.replace(tzinfo=timezone.utc)
    return clock.iso(t)


def _names(ids) -> dict[int, str]:
    ids = list(set(ids))
    if not ids:
        return {}
    return dict(db.session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())


def _period(table_at, since, until):
    conds = []
    if since is not None:
        conds.append(table_at >= since)
    if until is not None:
        conds.append(table_at < until)
    return conds


def shared_views(course: Course, since=None, until=None) -> list[dict]:
    a, b = LessonView.__table__.alias("a"), LessonView.__table__.alias("b")
    end_a = func.coalesce(a.c.ended_at, a.c.last_heartbeat_at, a.c.started_at)
    end_b = func.coalesce(b.c.ended_at, b.c.last_heartbeat_at, b.c.started_at)
    found = []
    for kind in ("ip", "device"):
        stmt = (select(a.c.id, a.c.learner_id, a.c.lesson_id, a.c.started_at, end_a,
                       b.c.id, b.c.learner_id, b.c.lesson_id, b.c.started_at, end_b, a.c[kind])
                .join(b, and_(b.c[kind] == a.c[kind], b.c.learner_id != a.c.learner_id,
                              b.c.started_at < end_a, a.c.started_at < end_b,
                              or_(b.c.course_id != course.id, b.c.id > a.c.id)))
                .where(a.c.course_id == course.id, a.c[kind].is_not(None), *_period(a.c.started_at, since, until))
                .order_by(a.c.started_at, a.c.id, b.c.id).limit(MAX_FINDINGS))
        found += [(kind, r) for r in db.session.execute(stmt)]
    names = _names([r[1] for _k, r in found] + [r[6] for _k, r in found])
    out = []
    for kind, r in found:
        out.append({"kind": kind, "value": r[10],
                    "a": {"view_id": r[0], "learner_id": r[1], "username": names.get(r[1]), "lesson_id": r[2],
                          "started_at": _iso(r[3]), "ended_at": _iso(r[4])},
                    "b": {"view_id": r[5], "learner_id": r[6], "username": names.get(r[6]), "lesson_id": r[7],
                          "started_at": _iso(r[8]), "ended_at": _iso(r[9])},
                    "rows": {"table": "lesson_view", "ids": [r[0], r[5]]},
                    "link": _raw_link("lesson_view", [r[0], r[5]])})
    return out


def shared_attempts(course: Course, since=None, until=None) -> list[dict]:
    x, y = AttemptAddress.__table__.alias("x"), AttemptAddress.__table__.alias("y")
    ta, tb = Attempt.__table__.alias("ta"), Attempt.__table__.alias("tb")
    ea = Exam.__table__.alias("ea")
    end_a = func.coalesce(ta.c.submitted_at, ta.c.deadline)
    end_b = func.coalesce(tb.c.submitted_at, tb.c.deadline)
    stmt = (select(ta.c.id, ta.c.learner_id, ta.c.exam_id, ta.c.started_at, end_a,
                   tb.c.id, tb.c.learner_id, tb.c.exam_id, tb.c.started_at, end_b,
                   x.c.kind, x.c.value, x.c.exception_id, y.c.exception_id)
            .select_from(x)
            .join(ta, ta.c.id == x.c.attempt_id)
            .join(ea, ea.c.id == ta.c.exam_id)
            .join(y, and_(y.c.kind == x.c.kind, y.c.value == x.c.value, y.c.learner_id != x.c.learner_id))
            .join(tb, tb.c.id == y.c.attempt_id)
            .where(ea.c.course_id == course.id, tb.c.started_at < end_a, ta.c.started_at < end_b,
                   or_(tb.c.exam_id != ta.c.exam_id, tb.c.id > ta.c.id), *_period(ta.c.started_at, since, until))
            .order_by(ta.c.started_at, ta.c.id, tb.c.id).limit(MAX_FINDINGS))
    rows = list(db.session.execute(stmt))
    names = _names([r[1] for r in rows] + [r[6] for r in rows])
    seen, out = set(), []
    for r in rows:
        key = (r[0], r[5], r[10], r[11])
        if key in seen:
            continue
        seen.add(key)
        out.append({"kind": r[10], "value": r[11], "exception": r[12] is not None or r[13] is not None,
                    "a": {"attempt_id": r[0], "learner_id": r[1], "username": names.get(r[1]), "exam_id": r[2],
                          "started_at": _iso(r[3]), "ended_at": _iso(r[4])},
                    "b": {"attempt_id": r[5], "learner_id": r[6], "username": names.get(r[6]), "exam_id": r[7],
                          "started_at": _iso(r[8]), "ended_at": _iso(r[9])},
                    "rows": {"table": "attempt", "ids": [r[0], r[5]]},
                    "link": _raw_link("attempt", [r[0], r[5]])})
    return out


def fast_lessons(course: Course, s: Settings) -> list[dict]:
    """Completed lessons whose views (up to completion) add up to less than real time."""
    rows = db.session.execute(
        select(LessonProgress.id, LessonProgress.learner_id, LessonProgress.lesson_id, LessonProgress.completed_at,
               Lesson.kind, Lesson.duration_seconds, Lesson.frames,
               LessonView.id, LessonView.started_at,
               func.coalesce(LessonView.ended_at, LessonView.last_heartbeat_at, LessonView.started_at))
        .join(Lesson, Lesson.id == LessonProgress.lesson_id)
        .join(LessonView, and_(LessonView.lesson_id == LessonProgress.lesson_id,
                               LessonView.learner_id == LessonProgress.learner_id,
                               LessonView.started_at <= LessonProgress.completed_at))
        .where(LessonProgress.course_id == course.id, LessonProgress.completed_at.is_not(None),
               Lesson.kind == "video"))
    per: dict[int, dict] = {}
    for pid, learner, lesson, completed, kind, dur, frames, vid, started, ended in rows:
        started, ended = _aware(started), _aware(ended)
        entry = per.setdefault(pid, {"learner_id": learner, "lesson_id": lesson, "completed_at": completed,
                                     "length": att.timeline_length(kind, dur, frames), "wall": 0.0, "views": []})
        end = min(ended, entry["completed_at"])
        entry["wall"] += max(0.0, (end - started).total_seconds())
        entry["views"].append(vid)
    names = _names([e["learner_id"] for e in per.values()])
    out = []
    for pid, e in sorted(per.items()):
        if too_fast(e["wall"], e["length"], s.max_rate):
            out.append({"progress_id": pid, "learner_id": e["learner_id"], "username": names.get(e["learner_id"]),
                        "lesson_id": e["lesson_id"], "completed_at": clock.iso(e["completed_at"]),
                        "length_seconds": e["length"], "view_seconds": round(e["wall"], 1),
                        "rows": {"table": "lesson_view", "ids": e["views"]},
                        "link": _raw_link("lesson_view", e["views"])})
    return out[:MAX_FINDINGS]


def _aware(t):
    if isinstance(t, str):
        t = datetime.fromisoformat(t)
    if t is not None and t.tzinfo is None:
        from datetime import timezone

        t = t.replace(tzinfo=timezone.utc)
    return t


def excess_views(course: Course, s: Settings, since=None, until=None) -> list[dict]:
    rows = list(db.session.execute(
        select(LessonView.id, LessonView.learner_id, LessonView.lesson_id, LessonView.started_at,
               LessonView.suspicious_excess_seconds)
        .where(LessonView.course_id == course.id, LessonView.suspicious_excess_seconds > s.excess_seconds,
               *_period(LessonView.started_at, since, until))
        .order_by(LessonView.suspicious_excess_seconds.desc()).limit(MAX_FINDINGS)))
    names = _names([r[1] for r in rows])
    return [{"view_id": r[0], "learner_id": r[1], "username": names.get(r[1]), "lesson_id": r[2],
             "started_at": clock.iso(r[3]), "excess_seconds": round(r[4], 1),
             "rows": {"table": "lesson_view", "ids": [r[0]]}, "link": _raw_link("lesson_view", [r[0]])}
            for r in rows]


def course_login_jumps(course: Course, s: Settings, since=None, until=None) -> list[dict]:
    learners = select(Enrollment.user_id).where(Enrollment.course_id == course.id)
    rows = [(r[0], r[1], _aware(r[2]), r[3]) for r in db.session.execute(
        select(AccessLog.id, AccessLog.user_id, AccessLog.at, AccessLog.ip)
        .where(AccessLog.event == "login", AccessLog.user_id.in_(learners), *_period(AccessLog.at, since, until))
        .order_by(AccessLog.user_id, AccessLog.at, AccessLog.id))]
    pairs = login_jumps(rows, window=timedelta(minutes=s.jump_minutes), ipv4_prefix=s.ipv4_prefix,
                        ipv6_prefix=s.ipv6_prefix)
    names = _names([p[0][1] for p in pairs])
    return [{"user_id": a[1], "username": names.get(a[1]),
             "a": {"log_id": a[0], "at": clock.iso(a[2]), "ip": a[3]},
             "b": {"log_id": b[0], "at": clock.iso(b[2]), "ip": b[3]},
             "minutes": round((b[2] - a[2]).total_seconds() / 60, 1),
             "rows": {"table": "access_log", "ids": [a[0], b[0]]}, "link": _raw_link("access_log", [a[0], b[0]])}
            for a, b in pairs[:MAX_FINDINGS]]


def report(course: Course, user, *, since: datetime | None = None, until: datetime | None = None) -> dict:
    s = settings()
    out = {"course_id": course.id, "course_code": course.code, "course_title": course.title,
           "from": clock.iso(since), "to": clock.iso(until), "generated_at": clock.iso(clock.now()),
           "settings": {"login_jump_minutes": s.jump_minutes, "ipv4_prefix": s.ipv4_prefix,
                        "ipv6_prefix": s.ipv6_prefix, "excess_seconds": s.excess_seconds, "max_rate": s.max_rate},
           "shared_views": shared_views(course, since, until),
           "shared_attempts": shared_attempts(course, since, until),
           "fast_lessons": fast_lessons(course, s),
           "excess_views": excess_views(course, s, since, until)}
    # Login IPs are access-log rows of other people: administrators and inspectors only.
    out["login_jumps"] = course_login_jumps(course, s, since, until) if user.role in READ_ROLES else None
    return out


# --- raw rows ----------------------------------------------------------------------------------

def parse_ids(raw: str | None) -> list[int]:
    try:
        ids = sorted({int(x) for x in (raw or "").split(",") if x.strip()})
    except ValueError:
        raise ApiError(400, "invalid_request", "ids: comma-separated row ids") from None
    if not ids or len(ids) > MAX_RAW_IDS or any(not 1 <= i <= 2**63 - 1 for i in ids):
        raise ApiError(400, "invalid_request", f"ids: 1 to {MAX_RAW_IDS} row ids")
    return ids


def _row(obj) -> dict:
    out = {}
    for c in obj.__table__.columns:
        v = getattr(obj, c.key)
        out[c.name] = clock.iso(v) if isinstance(v, datetime) else v
    return out


def _may_see_course(user, course_id: int) -> bool:
    course = db.session.get(Course, course_id)
    if course is None or course.institution_id != user.institution_id:
        return False
    return user.role in READ_ROLES or bool(staff_roles(course_id, user.id) & set(STAFF))


def raw_rows(table: str, ids: list[int], user) -> dict:
    """The raw log rows a finding points at, with their evidence rows (view events,
    attempt addresses and events). Every row must lie in the viewer's reach: one that does
    not makes the whole answer 404."""
    if table not in RAW_TABLES:
        raise not_found("table")
    if table == "lesson_view":
        rows = list(db.session.scalars(select(LessonView).where(LessonView.id.in_(ids)).order_by(LessonView.id)))
        if len(rows) != len(ids) or not all(_may_see_course(user, r.course_id) for r in {r.course_id: r for r in rows}.values()):
            raise not_found("rows")
        events = list(db.session.scalars(select(ViewEvent).where(ViewEvent.view_id.in_(ids))
                                         .order_by(ViewEvent.view_id, ViewEvent.id).limit(5000)))
        return {"table": table, "rows": [_row(r) for r in rows], "related": {"view_event": [_row(e) for e in events]}}
    if table == "attempt":
        rows = list(db.session.execute(select(Attempt, Exam.course_id).join(Exam, Exam.id == Attempt.exam_id)
                                       .where(Attempt.id.in_(ids)).order_by(Attempt.id)))
        if len(rows) != len(ids) or not all(_may_see_course(user, cid) for cid in {cid for _a, cid in rows}):
            raise not_found("rows")
        addresses = list(db.session.scalars(select(AttemptAddress).where(AttemptAddress.attempt_id.in_(ids))
                                            .order_by(AttemptAddress.attempt_id, AttemptAddress.id)))
        events = list(db.session.scalars(select(AttemptEvent).where(AttemptEvent.attempt_id.in_(ids))
                                         .order_by(AttemptEvent.attempt_id, AttemptEvent.id).limit(5000)))
        return {"table": table, "rows": [{k: v for k, v in _row(a).items() if k != "seed"} for a, _c in rows],
                "related": {"attempt_address": [_row(x) for x in addresses],
                            "attempt_event": [{k: v for k, v in _row(e).items() if k != "answer"} for e in events]}}
    if user.role not in READ_ROLES:
        raise forbidden("access-log rows are for administrators and inspectors")
    rows = list(db.session.execute(select(AccessLog, User.institution_id).join(User, User.id == AccessLog.user_id)
                                   .where(AccessLog.id.in_(ids)).order_by(AccessLog.id)))
    if len(rows) != len(ids) or any(inst != user.institution_id for _r, inst in rows):
        raise not_found("rows")
    return {"table": table, "rows": [_row(r) for r, _i in rows], "related": {}}


def counts(rep: dict) -> dict:
    return {k: (len(rep[k]) if rep[k] is not None else None)
            for k in ("shared_views", "shared_attempts", "fast_lessons", "excess_views", "login_jumps")}

