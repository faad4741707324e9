"""The inspectors' log search (REC-3, REC-6): access log, viewing sessions, viewing-log
events and exam evidence, scoped to the searcher's institution, keyset-paged in (time, id)
order, and streamed for exports through a server-side cursor.

Queries are plain SQLAlchemy Core over the tables' existing columns (no dialect tricks),
so they work the same on SQLite and PostgreSQL, partitioned or not.

Scope: an access-log row belongs to the institution of its user (rows without a user —
a failed login for an unknown username — belong to no institution and are not shown); a
viewing row to the institution of its course; an exam-evidence row to that of its exam's
course. Admins and inspectors see their own institution only.
"""
from __future__ import annotations

from dataclasses import dataclass
from sqlalchemy import Select, and_, literal, or_, select, tuple_, union

from lms import clock
from lms.attendance.models import LessonView, ViewEvent
from lms.audit.filters import Cursor, FilterError, LogFilters, encode_cursor, week_range
from lms.audit.models import AccessLog
from lms.auth.models import User
from lms.content.models import Course, Lesson, Section, StaffAssignment
from lms.db import UTCDateTime, db
from lms.enrolment.models import Enrollment
from lms.errors import ApiError, not_found
from lms.exams.models import AttemptEvent, Exam
from lms.i18n import N_

SEARCH_ROLES = ("admin", "inspector")
STREAM_BATCH = 2000  # rows fetched per round trip of the server-side cursor

_UTC = UTCDateTime()


@dataclass(frozen=True)
class Column:
    key: str  # JSON field and CSV header
    label: str  # Korean header (N_, translated when shown)
    kind: str = "text"  # text | int | float | time | json


@dataclass(frozen=True)
class LogSpec:
    kind: str
    title: str
    columns: tuple[Column, ...]
    time_key: str  # the column the range, week and keyset order use


SPECS = {
    "access": LogSpec("access", N_("접속 기록"), (
        Column("id", N_("번호"), "int"), Column("at", N_("일시"), "time"),
        Column("user_id", N_("사용자 번호"), "int"), Column("username", N_("아이디")),
        Column("role", N_("역할")), Column("event", N_("구분")), Column("ip", N_("IP")),
        Column("device", N_("기기")), Column("method", N_("방식")), Column("path", N_("경로")),
        Column("course_id", N_("과정 번호"), "int"), Column("session_id", N_("세션 번호"), "int"),
        Column("detail", N_("내용")), Column("user_agent", N_("브라우저")),
    ), "at"),
    "views": LogSpec("views", N_("학습(시청) 기록"), (
        Column("id", N_("번호"), "int"), Column("learner_id", N_("학습자 번호"), "int"),
        Column("username", N_("아이디")), Column("course_id", N_("과정 번호"), "int"),
        Column("lesson_id", N_("차시 번호"), "int"), Column("week", N_("주차"), "int"),
        Column("lesson_title", N_("차시명")), Column("started_at", N_("시작"), "time"),
        Column("ended_at", N_("종료"), "time"), Column("end_reason", N_("종료 사유")),
        Column("ip", N_("IP")), Column("device", N_("기기")),
        Column("credited_seconds", N_("인정 시간(초)"), "float"),
        Column("suspicious_excess_seconds", N_("초과 주장 시간(초)"), "float"),
        Column("last_heartbeat_at", N_("마지막 보고"), "time"),
    ), "started_at"),
    "view-events": LogSpec("view-events", N_("학습(시청) 로그 이벤트"), (
        Column("id", N_("번호"), "int"), Column("at", N_("일시"), "time"),
        Column("view_id", N_("시청 번호"), "int"), Column("learner_id", N_("학습자 번호"), "int"),
        Column("username", N_("아이디")), Column("course_id", N_("과정 번호"), "int"),
        Column("lesson_id", N_("차시 번호"), "int"), Column("kind", N_("구분")), Column("ip", N_("IP")),
        Column("device", N_("기기")), Column("credited_seconds", N_("인정 시간(초)"), "float"),
        Column("excess_seconds", N_("초과 주장 시간(초)"), "float"), Column("claimed", N_("주장 구간"), "json"),
        Column("credited", N_("인정 구간"), "json"), Column("detail", N_("내용")),
    ), "at"),
    "exams": LogSpec("exams", N_("시험 증거"), (
        Column("id", N_("번호"), "int"), Column("at", N_("일시"), "time"),
        Column("attempt_id", N_("응시 번호"), "int"), Column("exam_id", N_("시험 번호"), "int"),
        Column("exam_title", N_("시험명")), Column("course_id", N_("과정 번호"), "int"),
        Column("learner_id", N_("학습자 번호"), "int"), Column("username", N_("아이디")),
        Column("kind", N_("구분")), Column("ip", N_("IP")), Column("device", N_("기기")),
        Column("attempt_item_id", N_("문항 번호"), "int"), Column("answer", N_("답안"), "json"),
        Column("detail", N_("내용")),
    ), "at"),
}


@dataclass
class Scope:
    """What the search concerns beyond the filters: the searcher's institution and the
    course (and its start, for weeks) a course, section or week filter named."""

    institution_id: int
    course: Course | None = None
    section: Section | None = None


def resolve_scope(f: LogFilters, institution_id: int) -> Scope:
    """Look up the course and class a filter names, inside the institution (404 otherwise:
    another institution's course is not there for this searcher)."""
    scope = Scope(institution_id)
    if f.section_id is not None:
        row = db.session.execute(
            select(Section, Course).join(Course, Course.id == Section.course_id)
            .where(Section.id == f.section_id, Course.institution_id == institution_id)).first()
        if row is None:
            raise not_found("class")
        scope.section, scope.course = row
        if f.course_id is not None and f.course_id != scope.course.id:
            raise ApiError(400, "invalid_request", "section_id: the class belongs to another course")
    elif f.course_id is not None:
        course = db.session.get(Course, f.course_id)
        if course is None or course.institution_id != institution_id:
            raise not_found("course")
        scope.course = course
    if f.week is not None and f.week > scope.course.weeks:
        raise ApiError(400, "invalid_request", f"week: the course has {scope.course.weeks} weeks")
    return scope


def _institution_courses(inst: int):
    return select(Course.id).where(Course.institution_id == inst)


def _class_members(section: Section):
    """Learners enrolled in the class and the staff assigned to it (or to its whole course)."""
    return union(
        select(Enrollment.user_id).where(Enrollment.section_id == section.id),
        select(StaffAssignment.user_id).where(
            StaffAssignment.course_id == section.course_id,
            or_(StaffAssignment.section_id == section.id, StaffAssignment.section_id.is_(None))),
    )


def _ip_clause(col, ipf):
    parts = []
    if ipf.exact:
        parts.append(col.in_(ipf.exact))
    for prefix in ipf.prefixes:
        # Prefixes are digits and dots only: nothing to escape in LIKE.
        parts.append(col.like(prefix + "%") if prefix else col.like("%.%"))
    return or_(*parts)


def _time_range(conds: list, tcol, f: LogFilters, scope: Scope, *, by_week: bool) -> None:
    start, end = f.start, f.end
    if by_week and f.week is not None:
        wstart, wend = week_range(scope.course.starts_on, f.week)
        start = wstart if start is None else max(start, wstart)
        end = wend if end is None else min(end, wend)
    if start is not None:
        conds.append(tcol >= literal(start, _UTC))
    if end is not None:
        conds.append(tcol < literal(end, _UTC))


def base_query(f: LogFilters, scope: Scope) -> tuple[Select, object, object]:
    """The filtered statement of a search (columns in the spec's order), with its time and
    id columns for ordering."""
    conds: list = []
    if f.kind == "access":
        t = AccessLog
        # A join (not IN (subquery)): PostgreSQL then walks the (time, id) index and looks
        # each row's user up, stopping at the page's end, instead of hashing every row.
        stmt = (select(t.id, t.at, t.user_id, t.username, t.role, t.event, t.ip, t.device, t.method, t.path,
                       t.course_id, t.session_id, t.detail, t.user_agent)
                .join(User, User.id == t.user_id))
        conds.append(User.institution_id == scope.institution_id)
        person, tcol, idcol, event = t.user_id, t.at, t.id, t.event
        if f.role is not None:
            conds.append(t.role == f.role)
        if f.course_id is not None:
            conds.append(t.course_id == f.course_id)
        _time_range(conds, tcol, f, scope, by_week=True)
    elif f.kind == "views":
        t = LessonView
        stmt = (select(t.id, t.learner_id, User.username, t.course_id, t.lesson_id, Lesson.week, Lesson.title,
                       t.started_at, t.ended_at, t.end_reason, t.ip, t.device, t.credited_seconds,
                       t.suspicious_excess_seconds, t.last_heartbeat_at)
                .join(Lesson, Lesson.id == t.lesson_id).join(User, User.id == t.learner_id))
        conds.append(t.course_id.in_(_institution_courses(scope.institution_id)))
        person, tcol, idcol, event = t.learner_id, t.started_at, t.id, None
        if scope.course is not None:
            conds.append(t.course_id == scope.course.id)
        if f.week is not None:
            conds.append(Lesson.week == f.week)
        if f.lesson_id is not None:
            conds.append(t.lesson_id == f.lesson_id)
        _time_range(conds, tcol, f, scope, by_week=False)
    elif f.kind == "view-events":
        t = ViewEvent
        stmt = (select(t.id, t.at, t.view_id, t.learner_id, User.username, t.course_id, t.lesson_id, t.kind,
                       t.ip, t.device, t.credited_seconds, t.excess_seconds, t.claimed, t.credited, t.detail)
                .join(User, User.id == t.learner_id))
        conds.append(t.course_id.in_(_institution_courses(scope.institution_id)))
        person, tcol, idcol, event = t.learner_id, t.at, t.id, t.kind
        if scope.course is not None:
            conds.append(t.course_id == scope.course.id)
        if f.week is not None:
            conds.append(t.lesson_id.in_(select(Lesson.id).where(Lesson.course_id == scope.course.id,
                                                                 Lesson.week == f.week)))
        if f.lesson_id is not None:
            conds.append(t.lesson_id == f.lesson_id)
        if f.view_id is not None:
            conds.append(t.view_id == f.view_id)
        _time_range(conds, tcol, f, scope, by_week=False)
    else:  # exams
        t = AttemptEvent
        stmt = (select(t.id, t.at, t.attempt_id, t.exam_id, Exam.title, Exam.course_id, t.learner_id,
                       User.username, t.kind, t.ip, t.device, t.attempt_item_id, t.answer, t.detail)
                .join(Exam, Exam.id == t.exam_id).join(User, User.id == t.learner_id))
        conds.append(Exam.course_id.in_(_institution_courses(scope.institution_id)))
        person, tcol, idcol, event = t.learner_id, t.at, t.id, t.kind
        if scope.course is not None:
            conds.append(Exam.course_id == scope.course.id)
        if f.exam_id is not None:
            conds.append(t.exam_id == f.exam_id)
        if f.attempt_id is not None:
            conds.append(t.attempt_id == f.attempt_id)
        _time_range(conds, tcol, f, scope, by_week=True)
    if f.person_id is not None:
        conds.append(person == f.person_id)
    if scope.section is not None:
        conds.append(person.in_(_class_members(scope.section)))
    if f.event is not None and event is not None:
        conds.append(event == f.event)
    if f.ip is not None:
        conds.append(_ip_clause(t.ip, f.ip))
    return stmt.where(and_(*conds)), tcol, idcol


def _ordered(stmt, tcol, idcol, *, descending: bool):
    return stmt.order_by(tcol.desc(), idcol.desc()) if descending else stmt.order_by(tcol, idcol)


def _after(tcol, idcol, c: Cursor, *, greater: bool):
    key = tuple_(literal(c.at, _UTC), literal(c.id, idcol.type))
    return tuple_(tcol, idcol) > key if greater else tuple_(tcol, idcol) < key


@dataclass
class Page:
    spec: LogSpec
    rows: list  # Row tuples in the spec's column order
    next: str | None
    prev: str | None


def search_page(f: LogFilters, scope: Scope) -> Page:
    """One page of ``f.limit`` rows in (time, id) order (``f.order``), after (or before)
    the cursor. Keyset paging: every page costs an index range scan, however deep."""
    spec = SPECS[f.kind]
    stmt, tcol, idcol = base_query(f, scope)
    desc = f.order == "desc"
    c = f.cursor
    backwards = c is not None and c.before
    if c is not None:
        # Forward in ascending order means greater keys; backwards (or descending) smaller.
        stmt = stmt.where(_after(tcol, idcol, c, greater=(desc == backwards)))
    stmt = _ordered(stmt, tcol, idcol, descending=(desc != backwards)).limit(f.limit + 1)
    rows = list(db.session.execute(stmt).all())
    more = len(rows) > f.limit
    rows = rows[:f.limit]
    if backwards:
        rows.reverse()
    tpos = [col.key for col in spec.columns].index(spec.time_key)

    def mark(row, before):
        return encode_cursor(Cursor(f.kind, f.order, row[tpos], row[0], before))

    if backwards:
        nxt = mark(rows[-1], False) if rows else None
        prev = mark(rows[0], True) if rows and more else None
    else:
        nxt = mark(rows[-1], False) if rows and more else None
        prev = mark(rows[0], True) if rows and c is not None else None
    return Page(spec, rows, nxt, prev)


def stream_rows(f: LogFilters, scope: Scope):
    """Every row of the search (cursor and limit do not apply), in order, fetched
    ``STREAM_BATCH`` at a time through a server-side cursor: memory stays flat whatever
    the count. The query runs when the iterator is first read: a streamed response reads
    it after the view's request context was torn down (its session, and any cursor opened
    there, closed) and pushed again (``stream_with_context``)."""
    stmt, tcol, idcol = base_query(f, scope)
    stmt = _ordered(stmt, tcol, idcol, descending=f.order == "desc")

    def rows():
        result = db.session.execute(stmt.execution_options(yield_per=STREAM_BATCH, stream_results=True))
        try:
            for partition in result.partitions():
                yield from partition
        finally:
            result.close()

    return rows()


def entry(spec: LogSpec, row) -> dict:
    """A row as the API's JSON entry (times in KST with their offset)."""
    out = {}
    for col, value in zip(spec.columns, row):
        out[col.key] = clock.iso(value) if col.kind == "time" else value
    return out


def check_searcher(user) -> None:
    if user.role not in SEARCH_ROLES:
        raise ApiError(403, "forbidden", "only inspectors and admins search the logs")


def log_search(user, session_id: int | None, f: LogFilters, *, export: str | None = None) -> None:
    """Write the search (or export) to the access log and commit it before any row is
    read (REC-6: every inspector query is itself evidence)."""
    from lms.audit.service import log_access

    prefix = "inspector" if user.role == "inspector" else "log"
    event = f"{prefix}_export" if export else f"{prefix}_search"
    detail = f.summary() + (f" format={export}" if export else "")
    log_access(event, user=user, session_id=session_id, detail=detail, commit=True)


def parse_error(exc: FilterError) -> ApiError:
    return ApiError(400, "invalid_request", str(exc))
