"""The live progress board of a class (CRS-11, CRS-8) and the learners' own status list.

Staff of a course (instructors, TAs), admins and inspectors see, per learner: this week's
progress, lessons attended / absent / excused / pending, lessons at risk (not complete,
deadline within ``rules.AT_RISK_WINDOW``) and the last access IP and time (REC-3). The
board only *reads* the viewing summaries (``LessonProgress``, ``LessonView``) that the
heartbeat service writes; statuses come from the pure rules in ``lms.attendance.rules``.

A whole class is a handful of queries whatever its size (lessons, learners, progress rows,
latest view per learner): no query per learner or per lesson.
"""
from __future__ import annotations

import io
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select

from lms import clock
from lms.attendance import rules
from lms.attendance.models import LessonProgress, LessonView
from lms.auth.models import User
from lms.content.models import Course, Lesson, Section, StaffAssignment
from lms.content.service import get_course
from lms.db import db
from lms.enrolment.models import Enrollment
from lms.errors import ApiError, forbidden, not_found
from lms.spreadsheet import csv_bytes, safe_text

log = logging.getLogger(__name__)

SORT_KEYS = ("name", "username", "section", "progress", "attended", "absent", "excused", "pending",
             "at_risk", "last_access")
ORDERS = ("asc", "desc")
BOARD_ROLES = ("admin", "inspector", "instructor", "ta")  # who may read a board
REMINDER_ROLES = ("admin", "instructor", "ta")  # who may urge attendance (CRS-8)
REMINDER_KIND = "attendance_reminder"


@dataclass(frozen=True)
class LessonInfo:
    id: int
    week: int
    title: str
    length: int | None  # seconds (video) or frames
    deadline: datetime


@dataclass
class BoardRow:
    learner_id: int
    username: str
    name: str
    section_id: int | None
    section: str | None
    week_progress: float | None = None
    attended: int = 0
    absent: int = 0
    excused: int = 0
    pending: int = 0
    at_risk: int = 0
    at_risk_lessons: list[LessonInfo] = field(default_factory=list)
    last_access_at: datetime | None = None
    last_access_ip: str | None = None

    def as_dict(self, lessons_total: int) -> dict:
        return {
            "learner_id": self.learner_id, "username": self.username, "name": self.name,
            "section_id": self.section_id, "section": self.section,
            "week_progress": None if self.week_progress is None else round(self.week_progress, 4),
            "attended": self.attended, "absent": self.absent, "excused": self.excused,
            "pending": self.pending, "at_risk": self.at_risk, "lessons": lessons_total,
            "at_risk_lesson_ids": [l.id for l in self.at_risk_lessons],
            "last_access_at": clock.iso(self.last_access_at), "last_access_ip": self.last_access_ip,
        }


@dataclass
class Board:
    course: Course
    now: datetime
    week: int | None
    lessons: list[LessonInfo]
    rows: list[BoardRow]
    section_id: int | None
    sections: list[tuple[int, str]]  # the sections this viewer may choose from

    def as_dict(self, sort: str, order: str) -> dict:
        total = len(self.lessons)
        return {
            "course": {"id": self.course.id, "code": self.course.code, "title": self.course.title},
            "generated_at": clock.iso(self.now),
            "week": self.week,
            "week_lessons": sum(1 for l in self.lessons if l.week == self.week),
            "lessons": total,
            "at_risk_window_days": rules.AT_RISK_WINDOW.days,
            "section_id": self.section_id,
            "sections": [{"id": i, "name": n} for i, n in self.sections],
            "sort": sort, "order": order,
            "at_risk_learners": sum(1 for r in self.rows if r.at_risk),
            "learners": [r.as_dict(total) for r in self.rows],
        }


# --- access ----------------------------------------------------------------------------

def board_course(course_id: int, user: User, *, roles: tuple[str, ...] = BOARD_ROLES) -> tuple[Course, set[int] | None]:
    """The course whose board ``user`` may see, and the sections they may see (None: all).

    Admins and inspectors of the institution see every class; an instructor or TA of the
    course sees every class, or only their own when every assignment names a section.
    Others get 403 (404 for a course of another institution)."""
    if user.role not in roles:
        raise forbidden("not allowed for this role")
    course = get_course(course_id, user)
    if user.role in ("admin", "inspector"):
        return course, None
    assigned = db.session.execute(select(StaffAssignment.section_id).where(
        StaffAssignment.course_id == course.id, StaffAssignment.user_id == user.id)).scalars().all()
    if not assigned:
        raise forbidden("only the course's instructors and TAs, administrators and inspectors see its board")
    if any(sec is None for sec in assigned):
        return course, None
    return course, set(assigned)


def resolve_section(course: Course, allowed: set[int] | None, requested: int | None) -> set[int] | None:
    """The sections to show: ``requested`` (a section of the course the viewer may see), or
    everything the viewer may see."""
    if requested is None:
        return allowed
    sec = db.session.get(Section, requested)
    if sec is None or sec.course_id != course.id:
        raise not_found("section")
    if allowed is not None and requested not in allowed:
        raise forbidden("this class is not assigned to you")
    return {requested}


def _sections(course: Course, allowed: set[int] | None) -> list[tuple[int, str]]:
    stmt = select(Section.id, Section.name).where(Section.course_id == course.id).order_by(Section.id)
    return [(i, n) for i, n in db.session.execute(stmt) if allowed is None or i in allowed]


# --- the board -------------------------------------------------------------------------

def course_lesson_infos(course_id: int) -> list[LessonInfo]:
    rows = db.session.execute(
        select(Lesson.id, Lesson.week, Lesson.title, Lesson.duration_seconds, Lesson.frames,
               Lesson.attendance_deadline)
        .where(Lesson.course_id == course_id).order_by(Lesson.week, Lesson.position, Lesson.id))
    return [LessonInfo(id=i, week=w, title=t, length=(d or f), deadline=dl) for i, w, t, d, f, dl in rows]


def build_board(course: Course, *, now: datetime, sections: set[int] | None = None,
                section_id: int | None = None, visible_sections: list[tuple[int, str]] | None = None) -> Board:
    """Every active learner of ``course`` (of ``sections`` when given) with their figures at
    ``now``. Six queries for the whole class, whatever its size."""
    lessons = course_lesson_infos(course.id)
    week = rules.course_week(course.starts_on, course.weeks, now)

    # 1. learners (active enrolments), with their class
    stmt = (select(Enrollment.user_id, Enrollment.section_id, User.username, User.name, Section.name)
            .join(User, User.id == Enrollment.user_id)
            .outerjoin(Section, Section.id == Enrollment.section_id)
            .where(Enrollment.course_id == course.id, Enrollment.status == "active"))
    if sections is not None:
        stmt = stmt.where(Enrollment.section_id.in_(sections))
    rows = {uid: BoardRow(learner_id=uid, username=username, name=name or username, section_id=sec_id,
                          section=sec_name)
            for uid, sec_id, username, name, sec_name in db.session.execute(stmt)}

    # 2. every progress row of the course: only the columns the board needs (no intervals;
    #    the completion time only where the stored status is still pending)
    in_scope = select(Enrollment.user_id).where(Enrollment.course_id == course.id,
                                                Enrollment.status == "active")
    if sections is not None:
        in_scope = in_scope.where(Enrollment.section_id.in_(sections))
    pending_completion = case((LessonProgress.status == rules.PENDING, LessonProgress.completed_at), else_=None)
    progress: dict[int, dict[int, tuple]] = defaultdict(dict)
    for lid, lesson_id, status, covered, completed_at, done in db.session.execute(
            select(LessonProgress.learner_id, LessonProgress.lesson_id, LessonProgress.status,
                   LessonProgress.covered_seconds, pending_completion, LessonProgress.completed_at.is_not(None))
            .where(LessonProgress.course_id == course.id, LessonProgress.learner_id.in_(in_scope))):
        progress[lid][lesson_id] = (status, covered, completed_at, bool(done))

    # 3. the latest access of each learner (REC-3: access IP and time): the later of the
    #    progress rows' last access and the viewing sessions' last heartbeat
    def latest(model, at, ip):
        ranked = (select(model.learner_id.label("learner_id"), ip.label("ip"), at.label("at"),
                         func.row_number().over(partition_by=model.learner_id,
                                                order_by=(at.desc(), model.id.desc())).label("rn"))
                  .where(model.course_id == course.id, model.learner_id.in_(in_scope), at.is_not(None))
                  .subquery())
        return select(ranked.c.learner_id, ranked.c.ip, ranked.c.at).where(ranked.c.rn == 1)

    seen = func.coalesce(LessonView.last_heartbeat_at, LessonView.started_at)
    for stmt in (latest(LessonProgress, LessonProgress.last_access_at, LessonProgress.last_access_ip),
                 latest(LessonView, seen, LessonView.ip)):
        for lid, ip, at in db.session.execute(stmt):
            row = rows.get(lid)
            if row is not None and (row.last_access_at is None or at > row.last_access_at):
                row.last_access_at, row.last_access_ip = at, ip

    # figures, by the pure rules
    week_lessons = [l for l in lessons if l.week == week]
    missing = (None, 0, None, False)
    for lid, row in rows.items():
        mine = progress.get(lid, {})
        for lesson in lessons:
            status, covered, completed_at, done = mine.get(lesson.id, missing)
            shown = rules.board_status(stored=status, completed_at=completed_at, deadline=lesson.deadline, now=now)
            if shown == rules.ATTENDED:
                row.attended += 1
            elif shown == rules.ABSENT:
                row.absent += 1
            elif shown == rules.EXCUSED:
                row.excused += 1
            else:
                row.pending += 1
                if rules.lesson_at_risk(status=shown, deadline=lesson.deadline, now=now):
                    row.at_risk += 1
                    row.at_risk_lessons.append(lesson)
        row.week_progress = rules.mean_or_none(
            rules.lesson_progress_fraction(covered=mine.get(l.id, missing)[1], length=l.length,
                                           completed=mine.get(l.id, missing)[3])
            for l in week_lessons)
    if visible_sections is None:
        visible_sections = _sections(course, sections)
    return Board(course=course, now=now, week=week, lessons=lessons, rows=list(rows.values()),
                 section_id=section_id, sections=visible_sections)


def sort_rows(rows: list[BoardRow], sort: str = "name", order: str = "asc") -> list[BoardRow]:
    """Rows by ``sort`` (one of SORT_KEYS), ``order`` asc|desc; ties by name then username.
    Rows without a value (no progress this week, never accessed) come last either way."""
    if sort not in SORT_KEYS or order not in ORDERS:
        raise ApiError(400, "invalid_request", f"sort must be one of {', '.join(SORT_KEYS)}; order asc or desc")
    value = {
        "name": lambda r: r.name, "username": lambda r: r.username, "section": lambda r: r.section,
        "progress": lambda r: r.week_progress, "attended": lambda r: r.attended,
        "absent": lambda r: r.absent, "excused": lambda r: r.excused, "pending": lambda r: r.pending,
        "at_risk": lambda r: r.at_risk, "last_access": lambda r: r.last_access_at,
    }[sort]
    base = sorted(rows, key=lambda r: (r.name, r.username))
    present = [r for r in base if value(r) is not None]
    missing = [r for r in base if value(r) is None]
    present.sort(key=value, reverse=(order == "desc"))  # stable: ties keep name order
    return present + missing


def board_for(course_id: int, user: User, *, section_id: int | None = None, sort: str = "name",
              order: str = "asc", now: datetime | None = None) -> Board:
    """The board ``user`` may see, sorted."""
    if sort not in SORT_KEYS or order not in ORDERS:
        sort_rows([], sort, order)  # raises 400
    course, allowed = board_course(course_id, user)
    scope = resolve_section(course, allowed, section_id)
    board = build_board(course, now=now or clock.now(), sections=scope, section_id=section_id,
                        visible_sections=_sections(course, allowed))
    board.rows = sort_rows(board.rows, sort, order)
    return board


# --- exports ---------------------------------------------------------------------------

def export_columns() -> list[str]:
    """The export's column titles (Korean msgids, in the request's language)."""
    from flask_babel import gettext as _

    return [_("아이디"), _("이름"), _("분반"), _("이번 주 진도율(%)"), _("출석"), _("결석"), _("공결"),
            _("미완료"), _("기한 임박"), _("최근 접속 IP"), _("최근 접속 시각")]


def _kst_text(t: datetime | None) -> str:
    return clock.to_kst(t).strftime("%Y-%m-%d %H:%M:%S") if t else ""


def _percent(p: float | None) -> int | None:
    return None if p is None else round(p * 100)


def _safe_text(value: str | None) -> str:
    """A spreadsheet cell that never starts a formula (CSV injection)."""
    return safe_text(value or "")


def export_rows(board: Board) -> list[list]:
    return [[r.username, r.name, r.section or "", _percent(r.week_progress), r.attended, r.absent, r.excused,
             r.pending, r.at_risk, r.last_access_ip or "", r.last_access_at] for r in board.rows]


def board_csv(board: Board) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens the Korean text right."""
    rows = [export_columns()]
    for row in export_rows(board):
        username, name, section = (_safe_text(v) for v in row[:3])
        pct = "" if row[3] is None else row[3]
        rows.append([username, name, section, pct, *row[4:9], row[9], _kst_text(row[10])])
    return csv_bytes(rows)


def board_xlsx(board: Board) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from flask_babel import gettext as _

    wb = Workbook()
    ws = wb.active
    ws.title = _("학습 현황")[:31]
    ws.append(export_columns())
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r, row in enumerate(export_rows(board), start=2):
        last = row[10]
        values = [*(None if v == "" else v for v in row[:10]), clock.to_kst(last).replace(tzinfo=None) if last else None]
        for c, value in enumerate(values, start=1):
            cell = ws.cell(row=r, column=c, value=value)
            if c in (1, 2, 3, 10) and isinstance(value, str):
                cell.data_type = "s"  # a name like "=1+1" stays text, never a formula
            elif c == 11 and value is not None:
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
    for letter, width in zip("ABCDEFGHIJK", (14, 14, 8, 16, 8, 8, 8, 8, 10, 18, 20)):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def export_filename(board: Board, ext: str) -> str:
    code = re.sub(r"[^A-Za-z0-9_-]", "_", board.course.code) or "course"
    return f"board-{code}-{clock.to_kst(board.now).strftime('%Y%m%d-%H%M')}.{ext}"


# --- reminders (CRS-8: TAs urge attendance) --------------------------------------------

# Notices are stored text read by learners: written in Korean, not in the TA's page language.
REMINDER_SUBJECT = "[{title}] 출석 인정 기한이 다가온 차시가 있습니다"
REMINDER_BODY = ("{name}님, 「{title}」 과정에서 아래 차시의 출석 인정 기한이 {days}일 이내로 다가왔습니다.\n"
                 "기한까지 차시 전체(100%)를 수강해야 출석으로 인정됩니다.\n\n{lines}")
REMINDER_LINE = "- {week}주차 「{lesson}」: {deadline}까지"


def send_reminders(course_id: int, user: User, *, section_id: int | None = None, link: str | None = None,
                   now: datetime | None = None) -> dict:
    """Notify every at-risk learner of the course (of one class when ``section_id``): an
    in-app notice and an e-mail through the outbox each. Logged; committed."""
    from lms.audit.service import log_access
    from lms.notify.service import notify_users

    course, allowed = board_course(course_id, user, roles=REMINDER_ROLES)
    scope = resolve_section(course, allowed, section_id)
    now = now or clock.now()
    board = build_board(course, now=now, sections=scope, section_id=section_id, visible_sections=[])
    targets = [r for r in board.rows if r.at_risk]
    for r in targets:
        lines = "\n".join(REMINDER_LINE.format(week=l.week, lesson=l.title,
                                               deadline=clock.to_kst(l.deadline).strftime("%Y-%m-%d %H:%M"))
                          for l in r.at_risk_lessons)
        notify_users([r.learner_id], kind=REMINDER_KIND,
                     subject=REMINDER_SUBJECT.format(title=course.title),
                     body=REMINDER_BODY.format(name=r.name, title=course.title,
                                               days=rules.AT_RISK_WINDOW.days, lines=lines),
                     link=link)
    ids = [r.learner_id for r in targets]
    detail = f"course={course.id} section={section_id or '-'} sent={len(ids)} learners={','.join(map(str, ids))}"
    log_access(REMINDER_KIND, user=user, detail=detail, commit=False)
    db.session.commit()
    log.info("attendance reminder by user %s: %s", user.id, detail)
    return {"sent": len(ids), "learner_ids": ids}


# --- courses a staff member can open a board for ---------------------------------------

def board_courses(user: User) -> list[tuple[Course, list[str]]]:
    """Courses whose board ``user`` may open, with the roles they hold there: assigned
    courses for instructors and TAs, every course of the institution for admins and
    inspectors."""
    if user.role in ("admin", "inspector"):
        courses = db.session.scalars(select(Course).where(Course.institution_id == user.institution_id,
                                                          Course.status != "cancelled")
                                     .order_by(Course.starts_on.desc(), Course.code)).all()
        return [(c, []) for c in courses]
    roles: dict[int, list[str]] = defaultdict(list)
    courses: dict[int, Course] = {}
    for assignment, course in db.session.execute(
            select(StaffAssignment, Course).join(Course, Course.id == StaffAssignment.course_id)
            .where(StaffAssignment.user_id == user.id, Course.institution_id == user.institution_id)
            .order_by(Course.starts_on.desc(), Course.code)).tuples():
        courses[course.id] = course
        if assignment.role not in roles[course.id]:
            roles[course.id].append(assignment.role)
    return [(c, roles[cid]) for cid, c in courses.items()]


# --- the learner's own status list (ATT-1, ATT-2) --------------------------------------

@dataclass
class LessonStatus:
    lesson: LessonInfo
    opens_at: datetime
    status: str
    progress: float
    at_risk: bool


def learner_status(user: User, *, now: datetime | None = None) -> list[tuple[Course, list[LessonStatus]]]:
    """Every active course of a learner with every lesson's status, progress and deadline.
    Three queries whatever the number of courses."""
    now = now or clock.now()
    courses = db.session.scalars(
        select(Course).join(Enrollment, Enrollment.course_id == Course.id)
        .where(Enrollment.user_id == user.id, Enrollment.status == "active")
        .order_by(Course.starts_on.desc(), Course.code)).all()
    if not courses:
        return []
    ids = [c.id for c in courses]
    lessons: dict[int, list[tuple[LessonInfo, datetime]]] = defaultdict(list)
    for i, cid, w, t, d, f, opens, dl in db.session.execute(
            select(Lesson.id, Lesson.course_id, Lesson.week, Lesson.title, Lesson.duration_seconds, Lesson.frames,
                   Lesson.opens_at, Lesson.attendance_deadline)
            .where(Lesson.course_id.in_(ids)).order_by(Lesson.week, Lesson.position, Lesson.id)):
        lessons[cid].append((LessonInfo(id=i, week=w, title=t, length=(d or f), deadline=dl), opens))
    progress = {lesson_id: (status, covered, completed_at) for lesson_id, status, covered, completed_at in
                db.session.execute(select(LessonProgress.lesson_id, LessonProgress.status,
                                          LessonProgress.covered_seconds, LessonProgress.completed_at)
                                   .where(LessonProgress.learner_id == user.id,
                                          LessonProgress.course_id.in_(ids)))}
    out = []
    for course in courses:
        items = []
        for info, opens in lessons[course.id]:
            status, covered, completed_at = progress.get(info.id, (None, 0, None))
            shown = rules.board_status(stored=status, completed_at=completed_at, deadline=info.deadline, now=now)
            items.append(LessonStatus(
                lesson=info, opens_at=opens, status=shown,
                progress=rules.lesson_progress_fraction(covered=covered, length=info.length,
                                                        completed=completed_at is not None),
                at_risk=rules.lesson_at_risk(status=shown, deadline=info.deadline, now=now)))
        out.append((course, items))
    return out
