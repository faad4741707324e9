"""Content pages: the learner's courses and course page (every lesson by week with its
status, progress and deadline), the lesson player, the lesson video (range requests), and
simple admin/instructor pages to create courses and lessons and upload videos.

Pages:
  /my/courses                      the signed-in user's courses (learner: enrolled; staff: assigned)
  /courses/<id>                    a course: learner view (status per lesson, player links,
                                   syllabus consent, ENR-2) or staff view (lessons, videos, forms)
  /lessons/<id>/play               the player (learners are credited; staff preview)
  /lessons/<id>/media              the video file (206 Partial Content for Range requests)
  /admin/courses                   admin: the institution's courses, new-course form
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from lms import clock
from lms.attendance import rules as att_rules
from lms.content import media
from lms.content import rules
from lms.content import service as content
from lms.content.models import Course, Lesson
from lms.db import db
from lms.errors import ApiError
from lms.i18n import N_
from lms.security import current_auth, page_roles_required

bp = Blueprint("content_pages", __name__, template_folder="templates")

DASHBOARD_LINKS = {
    "learner": [("content_pages.my_courses", N_("내 강의"))],
    "instructor": [("content_pages.my_courses", N_("강의 콘텐츠"))],
    "ta": [("content_pages.my_courses", N_("강의 콘텐츠"))],
    "admin": [("content_pages.admin_courses", N_("과정·차시 관리"))],
}

# The player reports what was played at least this often (API.md: heartbeats ≤ 10 s apart).
DEFAULT_HEARTBEAT_SECONDS = 10
PLAYBACK_RATES = (0.75, 1.0, 1.25, 1.5, 1.75, 2.0)

STATUS_LABELS = {
    att_rules.PENDING: N_("미완료"),
    att_rules.ATTENDED: N_("출석"),
    att_rules.ABSENT: N_("결석"),
    att_rules.EXCUSED: N_("공결"),
}
STATUS_BADGES = {att_rules.ATTENDED: "ok", att_rules.ABSENT: "bad", att_rules.EXCUSED: "ok",
                 att_rules.PENDING: "muted"}

bp.app_url_value_preprocessor(media.allow_large_uploads)


@bp.app_context_processor
def _status_helpers():
    return {"status_label": lambda s: _(STATUS_LABELS[s]) if s in STATUS_LABELS else s,
            "status_badge": lambda s: STATUS_BADGES.get(s, "muted"),
            "mmss": _mmss}


def _mmss(seconds: int | None) -> str:
    if seconds is None:
        return ""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


# --- reading a learner's lessons --------------------------------------------------------

@dataclass
class LessonRow:
    lesson: Lesson
    status: str  # pending | attended | absent | excused (ATT-1, ATT-2, ATT-5)
    progress: float  # 0.0–1.0
    opened: bool
    at_risk: bool  # not complete, deadline within 3 days (CRS-11)


def learner_lessons(course: Course, learner_id: int, now: datetime) -> list[LessonRow]:
    """Every lesson of ``course`` with ``learner_id``'s status and progress. A stored
    settled status is shown as stored; a pending or missing one is what the attendance
    rules give at ``now`` (the same reading as the TAs' live board)."""
    from lms.attendance.models import LessonProgress

    progress = {row.lesson_id: row for row in db.session.scalars(
        select(LessonProgress).where(LessonProgress.learner_id == learner_id,
                                     LessonProgress.course_id == course.id))}
    out = []
    for lesson in content.course_lessons(course.id):
        row = progress.get(lesson.id)
        completed_at = row.completed_at if row else None
        status = att_rules.board_status(stored=row.status if row else None, completed_at=completed_at,
                                        deadline=lesson.attendance_deadline, now=now)
        length = lesson.duration_seconds if lesson.kind == rules.VIDEO else lesson.frames
        out.append(LessonRow(
            lesson=lesson, status=status,
            progress=att_rules.lesson_progress_fraction(covered=row.covered_seconds if row else 0, length=length,
                                                        completed=completed_at is not None),
            opened=now >= lesson.opens_at,
            at_risk=att_rules.lesson_at_risk(status=status, deadline=lesson.attendance_deadline, now=now)))
    return out


def by_week(rows):
    weeks = defaultdict(list)
    for row in rows:
        weeks[(row.lesson if hasattr(row, "lesson") else row).week].append(row)
    return sorted(weeks.items())


def _enrollment(course_id: int, user_id: int):
    from lms.enrolment.models import Enrollment

    return db.session.scalar(select(Enrollment).where(
        Enrollment.course_id == course_id, Enrollment.user_id == user_id, Enrollment.status == "active"))


def _is_staff_viewer(course: Course, user) -> bool:
    return user.role in ("admin", "inspector") or bool(content.staff_roles(course.id, user.id))


def _can_edit(course: Course, user) -> bool:
    return user.role == "admin" or "instructor" in content.staff_roles(course.id, user.id)


# --- course lists ----------------------------------------------------------------------

@bp.route("/my/courses")
@page_roles_required()
def my_courses():
    user = current_auth().user
    now = clock.now()
    if user.role in ("admin", "inspector"):
        return redirect(url_for("content_pages.admin_courses")) if user.role == "admin" else \
            render_template("content_courses.html", courses=_institution_courses(user), learner=False, now=now)
    if user.role == "learner":
        from lms.enrolment.models import Enrollment

        courses = db.session.scalars(
            select(Course).join(Enrollment, Enrollment.course_id == Course.id)
            .where(Enrollment.user_id == user.id, Enrollment.status == "active")
            .order_by(Course.starts_on.desc(), Course.code)).all()
        summaries = []
        for course in courses:
            rows = learner_lessons(course, user.id, now)
            counts = defaultdict(int)
            for r in rows:
                counts[r.status] += 1
            summaries.append({"course": course, "lessons": len(rows), "counts": counts,
                              "at_risk": sum(1 for r in rows if r.at_risk),
                              "progress": att_rules.mean_or_none(r.progress for r in rows)})
        return render_template("content_courses.html", summaries=summaries, learner=True, now=now)
    from lms.content.models import StaffAssignment

    courses = db.session.scalars(
        select(Course).join(StaffAssignment, StaffAssignment.course_id == Course.id)
        .where(StaffAssignment.user_id == user.id).distinct()
        .order_by(Course.starts_on.desc(), Course.code)).all()
    return render_template("content_courses.html", courses=courses, learner=False, now=now)


def _institution_courses(user):
    return db.session.scalars(select(Course).where(Course.institution_id == user.institution_id)
                              .order_by(Course.starts_on.desc(), Course.code)).all()


@bp.route("/admin/courses", methods=["GET", "POST"])
@page_roles_required("admin")
def admin_courses():
    user = current_auth().user
    error, status, form = None, 200, {}
    if request.method == "POST":
        form = request.form
        try:
            course = content.create_course(
                user, code=_text("code", 32), title=_text("title", 200), credits=_int("credits"),
                starts_on=_date("starts_on"), weeks=_int("weeks"), capacity=_int("capacity"),
                practice=form.get("practice") == "on")
            db.session.commit()
        except ApiError as exc:
            db.session.rollback()
            error, status = exc.message, exc.status
        else:
            flash(_("과정을 만들었습니다."), "info")
            return redirect(url_for("content_pages.course_page", course_id=course.id), 303)
    return render_template("content_admin_courses.html", courses=_institution_courses(user), error=error,
                           form=form), status


def _text(name: str, limit: int) -> str:
    value = (request.form.get(name) or "").strip()
    if not value:
        raise ApiError(400, "invalid_request", _("%(f)s 항목을 입력하세요.", f=name))
    return value[:limit]


def _int(name: str, *, required: bool = True) -> int | None:
    raw = (request.form.get(name) or "").strip()
    if not raw and not required:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "invalid_request", _("%(f)s 항목은 정수여야 합니다.", f=name)) from None


def _date(name: str):
    from datetime import date

    try:
        return date.fromisoformat((request.form.get(name) or "").strip())
    except ValueError:
        raise ApiError(400, "invalid_request", _("%(f)s 항목은 YYYY-MM-DD 날짜여야 합니다.", f=name)) from None


# --- a course --------------------------------------------------------------------------

@bp.route("/courses/<int:course_id>")
@page_roles_required()
def course_page(course_id):
    user = current_auth().user
    course = content.course_for_viewer(course_id, user)
    now = clock.now()
    if user.role == "learner":
        enrollment = _enrollment(course.id, user.id)
        rows = learner_lessons(course, user.id, now)
        weeks = [(w, items, att_rules.mean_or_none(r.progress for r in items)) for w, items in by_week(rows)]
        return render_template("content_course_learner.html", course=course, weeks=weeks, now=now,
                               enrollment=enrollment, syllabus=content.get_syllabus(course.id),
                               current_week=att_rules.course_week(course.starts_on, course.weeks, now),
                               ends_on=att_rules.course_ends_on(course.starts_on, course.weeks),
                               window_days=att_rules.AT_RISK_WINDOW.days)
    lessons = content.course_lessons(course.id)
    return render_template("content_course_staff.html", course=course, weeks=by_week(lessons), now=now,
                           can_edit=_can_edit(course, user), is_admin=user.role == "admin",
                           ends_on=att_rules.course_ends_on(course.starts_on, course.weeks),
                           units=lambda l: rules.lesson_units(l.kind, l.duration_seconds, l.frames),
                           long_enough=lambda l: rules.lesson_long_enough(l.kind, l.duration_seconds, l.frames),
                           max_upload_mb=media.max_upload_bytes() // (1024 * 1024))


@bp.route("/courses/<int:course_id>/consent", methods=["POST"])
@page_roles_required("learner")
def course_consent(course_id):
    """ENR-2: a learner an admin enrolled records syllabus consent on their first visit."""
    from lms.enrolment import service as enrolment

    user = current_auth().user
    course = content.course_for_viewer(course_id, user)
    enrollment = _enrollment(course.id, user.id)
    if enrollment is None:
        raise ApiError(403, "forbidden", _("이 과정에 수강신청되어 있지 않습니다."))
    enrolment.record_consent(enrollment)
    db.session.commit()
    flash(_("수업계획서를 확인하고 동의하였습니다."), "info")
    return redirect(url_for("content_pages.course_page", course_id=course.id), 303)


@bp.route("/courses/<int:course_id>/lessons/new", methods=["POST"])
@page_roles_required("admin", "instructor")
def lesson_new(course_id):
    """Add a lesson: a video lesson with its file (its running time read from the file),
    or frame-based content with its number of frames."""
    user = current_auth().user
    course = content.course_for_manager(course_id, user, staff=("instructor",))
    kind = request.form.get("kind")
    try:
        week = _int("week")
        title = _text("title", 200)
        intro = request.form.get("instructor_intro") == "on"
        if kind == rules.FRAMES:
            content.add_lesson(course, week=week, title=title, frames=_int("frames"), instructor_intro=intro)
            db.session.commit()
        elif kind == rules.VIDEO:
            upload = request.files.get("file")
            if upload is None or not upload.filename:
                raise ApiError(400, "invalid_request", _("영상 파일을 선택하세요."))
            # Provisional length, replaced by the file's in the same transaction.
            lesson = content.add_lesson(course, week=week, title=title, duration_seconds=1, instructor_intro=intro)
            media.upload_lesson_media(lesson.id, user, upload)
        else:
            raise ApiError(400, "invalid_request", _("차시 종류를 선택하세요."))
    except ApiError as exc:
        db.session.rollback()
        flash(_page_error(exc), "error")
    else:
        flash(_("차시를 추가했습니다."), "info")
    return redirect(url_for("content_pages.course_page", course_id=course.id), 303)


@bp.route("/lessons/<int:lesson_id>/media/upload", methods=["POST"])
@page_roles_required("admin", "instructor")
def lesson_media_upload(lesson_id):
    user = current_auth().user
    lesson, course = media.lesson_for_upload(lesson_id, user)
    upload = request.files.get("file")
    try:
        if upload is None or not upload.filename:
            raise ApiError(400, "invalid_request", _("영상 파일을 선택하세요."))
        media.upload_lesson_media(lesson.id, user, upload)
    except ApiError as exc:
        db.session.rollback()
        flash(_page_error(exc), "error")
    else:
        flash(_("영상을 올렸습니다. 재생 시간: %(t)s", t=_mmss(lesson.duration_seconds)), "info")
    return redirect(url_for("content_pages.course_page", course_id=course.id, _anchor=f"lesson-{lesson.id}"), 303)


@bp.route("/courses/<int:course_id>/publish", methods=["POST"])
@page_roles_required("admin")
def course_publish(course_id):
    course = content.course_for_manager(course_id, current_auth().user)
    try:
        warnings = content.publish(course)
        db.session.commit()
    except ApiError as exc:
        db.session.rollback()
        flash(_("공개할 수 없습니다: %(m)s", m=exc.message), "error")
    else:
        flash(_("과정을 공개했습니다."), "info")
        for w in warnings:
            flash(f"{w['rule']}: {w['message']}", "warning")
    return redirect(url_for("content_pages.course_page", course_id=course.id), 303)


def _page_error(exc: ApiError) -> str:
    messages = {
        "invalid_media": _("영상 파일이 아니거나 지원하지 않는 형식입니다 (MP4 또는 WebM만 가능)."),
        "payload_too_large": _("파일이 허용된 크기보다 큽니다."),
        "lesson_has_views": _("이미 학습자가 시청한 차시의 영상은 바꿀 수 없습니다."),
        "not_a_video_lesson": _("프레임 기반 차시에는 영상을 올릴 수 없습니다."),
    }
    text = messages.get(exc.code)
    return f"{text} ({exc.message})" if text else exc.message


# --- the player ------------------------------------------------------------------------

@bp.route("/lessons/<int:lesson_id>/play")
@page_roles_required()
def player(lesson_id):
    user = current_auth().user
    lesson = content.get_lesson(lesson_id, user)
    course = content.course_for_viewer(lesson.course_id, user)
    now = clock.now()
    learner = user.role == "learner"
    if learner:
        enrollment = _enrollment(course.id, user.id)
        if enrollment is None:
            raise ApiError(403, "forbidden", _("이 과정에 수강신청되어 있지 않습니다."))
        if enrollment.syllabus_consent_at is None:
            flash(_("먼저 수업계획서를 확인하고 동의하세요."), "warning")
            return redirect(url_for("content_pages.course_page", course_id=course.id), 303)
        if now < lesson.opens_at:
            raise ApiError(409, "lesson_not_open",
                           _("이 차시는 %(t)s에 열립니다.", t=clock.to_kst(lesson.opens_at).strftime("%Y-%m-%d %H:%M")))
        rows = learner_lessons(course, user.id, now)
        this = next(r for r in rows if r.lesson.id == lesson.id)
        week_rows = [r for r in rows if r.lesson.week == lesson.week]
    else:
        this, week_rows = None, []
    others = [r for r in week_rows if r.lesson.id != lesson.id]
    cfg = current_app.config
    heartbeat_ms = int(float(cfg.get("PLAYER_HEARTBEAT_SECONDS") or DEFAULT_HEARTBEAT_SECONDS) * 1000)
    heartbeat_ms = max(250, min(heartbeat_ms, DEFAULT_HEARTBEAT_SECONDS * 1000))
    max_rate = float(cfg.get("MAX_PLAYBACK_RATE") or 1.0)
    siblings = content.course_lessons(course.id)
    idx = next(i for i, l in enumerate(siblings) if l.id == lesson.id)
    return render_template(
        "player.html", lesson=lesson, course=course, learner=learner, this=this, week_rows=week_rows,
        others_progress=sum(r.progress for r in others), week_count=len(week_rows),
        others_attended=sum(1 for r in others if r.status == att_rules.ATTENDED),
        heartbeat_ms=heartbeat_ms, max_rate=max_rate, rates=PLAYBACK_RATES,
        deadline_passed=now > lesson.attendance_deadline,
        prev_lesson=siblings[idx - 1] if idx > 0 else None,
        next_lesson=siblings[idx + 1] if idx + 1 < len(siblings) else None,
        messages=_player_messages(), now=now)


def _player_messages() -> dict:
    """What player.js says, in the page's language."""
    return {
        "starting": _("학습을 시작하는 중입니다…"),
        "ready": _("재생 버튼을 눌러 학습을 시작하세요."),
        "resumed": _("지난번에 본 위치(%(t)s)부터 이어서 재생합니다."),
        "saved": _("학습 기록이 저장되었습니다."),
        "completed": _("이 차시를 100% 학습했습니다."),
        "paused_hidden": _("화면을 벗어나 재생을 멈췄습니다. 다시 재생하세요."),
        "offline": _("서버에 연결할 수 없습니다. 학습 기록은 연결되면 다시 보냅니다."),
        "ended_elsewhere": _("이 시청이 종료되었습니다 (다른 창이나 기기에서 학습을 시작했거나 시간이 지났습니다). 페이지를 새로 고치세요."),
        "session_over": _("로그인이 만료되었습니다. 다시 로그인하세요."),
        "start_failed": _("학습을 시작할 수 없습니다: "),
        "challenge_wrong": _("코드가 맞지 않습니다. 다시 입력하세요."),
        "challenge_ok": _("확인되었습니다. 계속 학습하세요."),
        "challenge_pending": _("학습 확인 코드를 입력해야 계속 학습할 수 있습니다."),
        "rate_limited": _("최대 배속은 %(r)s배입니다."),
        "status_labels": {k: _(v) for k, v in STATUS_LABELS.items()},
        "week_attended": _("%(n)s차시 중 출석 %(a)s"),
    }


# --- the video -------------------------------------------------------------------------

@bp.route("/lessons/<int:lesson_id>/media")
@page_roles_required()
def lesson_media(lesson_id):
    """The lesson's video for its enrolled learners (once open), its staff, admins and
    inspectors — with HTTP range requests (206) so the player can seek."""
    lesson = media.lesson_for_playback(lesson_id, current_auth().user)
    return media.send_lesson_media(lesson)
