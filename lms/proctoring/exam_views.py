"""Exam pages (EXM-7…10): the learner's notice and lockdown page, the staff monitor, the
public notice board.

Pages:
  /notices                       public: every announced exam (EXM-7: announced on the homepage)
  /exams/<id>                    learner: the exam's notice (window, time allowed — 90 minutes
                                 with the disability flag, EXM-4 — rules of conduct) and the
                                 "enter" form asking a fresh OTP code (EXM-8); staff are sent
                                 to the monitor
  /attempts/<id>/take            learner: the lockdown page (lms/static/exam.js): fullscreen,
                                 incidents (EXM-9), autosave, the server's deadline
  /exams/<id>/monitor            the course's instructors/TAs, admins, inspectors: every
                                 attempt with its evidence summary and incident count (EXM-10)
  /attempts/<id>/evidence        the same: one attempt's evidence events, incidents marked

The pages only read; starting, answering, reporting incidents and submitting go through the
JSON API (``lms.exams.api``) from exam.js, so there is one code path.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from lms import clock
from lms.auth.models import User
from lms.content.service import course_for_viewer
from lms.db import db
from lms.errors import ApiError
from lms.exams import rules as exam_rules
from lms.exams import service
from lms.exams.models import Attempt, AttemptItem
from lms.i18n import N_
from lms.proctoring import rules as proctor_rules
from lms.security import current_auth, page_roles_required

bp = Blueprint("proctoring_pages", __name__, template_folder="templates")

MONITOR_ROLES = ("admin", "instructor", "ta", "inspector")

DASHBOARD_LINKS = {
    "learner": [("proctoring_pages.notices", N_("시험 공지"))],
    "instructor": [("proctoring_pages.notices", N_("시험 공지·응시 현황"))],
    "ta": [("proctoring_pages.notices", N_("시험 공지·응시 현황"))],
    "admin": [("proctoring_pages.notices", N_("시험 공지·응시 현황"))],
    "inspector": [("proctoring_pages.notices", N_("시험 공지·응시 현황"))],
}

EXAM_KIND_LABELS = {"midterm": N_("중간고사"), "final": N_("기말고사"), "quiz": N_("퀴즈")}
EVENT_LABELS = {
    service.STARTED: N_("시험 시작"), service.RESUMED: N_("재입장"), service.ANSWER: N_("답안 저장"),
    service.IP_CHANGED: N_("IP 변경"), service.DEVICE_CHANGED: N_("기기 변경"), service.BLOCKED: N_("차단"),
    service.INCIDENT: N_("이상 행동"), service.SUBMITTED: N_("제출"), service.AUTO_SUBMITTED: N_("자동 제출"),
}
INCIDENT_LABELS = {
    "fullscreen_exit": N_("전체 화면 해제"), "blur": N_("시험 창 벗어남"), "visibility_hidden": N_("화면 숨김(탭·창 전환)"),
    "copy": N_("복사 시도"), "cut": N_("잘라내기 시도"), "paste": N_("붙여넣기 시도"),
    "contextmenu": N_("오른쪽 버튼(메뉴) 시도"), "print": N_("인쇄 시도"), "devtools": N_("개발자 도구 시도"),
    "fullscreen_refused": N_("전체 화면 거부"), "screenshot_key": N_("화면 캡처 키"), "other": N_("기타"),
}
SUBMIT_REASONS = {"learner": N_("학습자 제출"), "deadline": N_("시간 종료 자동 제출")}


@bp.app_template_filter("kst_seconds")
def _kst_seconds(value) -> str:
    """A datetime or an API time string (ISO 8601) as 'YYYY-MM-DD HH:MM:SS' KST."""
    if not value:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return clock.to_kst(value).strftime("%Y-%m-%d %H:%M:%S")


@bp.app_template_filter("exam_points")
def _exam_points(value) -> str:
    """Points as people write them: 12, 7.5, 3.33."""
    if value is None:
        return ""
    value = round(float(value), 2)
    return str(int(value)) if value == int(value) else f"{value:g}"


def _minutes_text(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    minutes, rest = divmod(seconds, 60)
    return _("%(m)s분 %(s)s초", m=minutes, s=rest) if rest else _("%(m)s분", m=minutes)


def _labels() -> dict:
    return {
        "exam_kind_label": lambda k: _(EXAM_KIND_LABELS[k]) if k in EXAM_KIND_LABELS else k,
        "event_label": lambda k: _(EVENT_LABELS[k]) if k in EVENT_LABELS else k,
        "submit_reason_label": lambda r: _(SUBMIT_REASONS[r]) if r in SUBMIT_REASONS else (r or ""),
        "incident_label": _incident_label,
    }


def _incident_label(detail: str | None) -> str:
    """An incident event's detail ("<kind>: <detail> (after the attempt)") with its kind
    in the page's language."""
    if not detail:
        return ""
    kind, sep, rest = detail.partition(":")
    if kind not in INCIDENT_LABELS:
        kind, sep, rest = detail.partition(" ")
        if kind not in INCIDENT_LABELS:
            return detail
    return _(INCIDENT_LABELS[kind]) + (f" — {rest.strip()}" if rest.strip() else "")


def _window_state(exam, now: datetime) -> str:
    return exam_rules.window_state(now, exam.opens_at, exam.closes_at)


def _korean_403(exc: ApiError, message: str) -> ApiError:
    """The services' 403s say why in API English; a page says it in its language."""
    if exc.status == 403:
        return ApiError(403, exc.code, message)
    return exc


# --- the public notice board (EXM-7) ---------------------------------------------------------------

@bp.route("/notices")
def notices():
    """Every announced exam, newest announcement first — no login needed (EXM-7)."""
    now = clock.now()
    rows = [{"exam": exam, "course": course, "state": _window_state(exam, now),
             "disability_minutes": _minutes_text(exam_rules.time_allowed(exam.duration_minutes, True))}
            for exam, course in service.public_notices()]
    auth = current_auth()
    user = auth.user if auth and not auth.problem else None
    return render_template("proctoring/notices.html", rows=rows, user=user, now=now, **_labels())


# --- the learner: notice and entry (EXM-8) ------------------------------------------------------------

@bp.route("/exams/<int:exam_id>")
@page_roles_required()
def exam_page(exam_id):
    """The exam's notice and the entry form (a fresh OTP code, EXM-8). Staff go to the
    monitor."""
    user = current_auth().user
    if user.role != "learner":
        return redirect(url_for("proctoring_pages.monitor", exam_id=exam_id))
    try:
        exam, course = service.exam_for_viewer(exam_id, user)
    except ApiError as exc:
        raise _korean_403(exc, _("이 과정에 수강신청한 학습자만 시험을 볼 수 있습니다.")) from exc
    now = clock.now()
    attempt = service.learner_attempt(exam.id, user.id)
    attempt_open = attempt is not None and exam_rules.attempt_open(now, attempt.deadline, attempt.submitted_at)
    allowed = exam_rules.time_allowed(exam.duration_minutes, bool(user.disability))
    return render_template(
        "proctoring/exam_notice.html", exam=exam, course=course, attempt=attempt, attempt_open=attempt_open,
        state=_window_state(exam, now), allowed=_minutes_text(allowed), disability=bool(user.disability),
        duration=_minutes_text(timedelta(minutes=exam.duration_minutes)),
        disability_max=exam_rules.DISABILITY_MAX_MINUTES, messages=_entry_messages(), **_labels())


def _entry_messages() -> dict:
    """What exam.js says on the notice page, in the page's language."""
    return {
        "entering": _("본인 확인 중입니다…"),
        "need_code": _("인증 앱의 6자리 OTP 코드를 입력하세요."),
        "agree_rules": _("응시 규칙에 동의해야 시험을 시작할 수 있습니다."),
        "errors": {
            "invalid_otp": _("OTP 코드가 맞지 않거나 이미 사용되었습니다. 새 코드가 표시되면 다시 입력하세요."),
            "duplicate_ip": _("다른 학습자가 이 IP 주소에서 시험을 보고 있거나 보았으므로 응시할 수 없습니다."),
            "duplicate_device": _("다른 학습자가 이 기기에서 시험을 보고 있거나 보았으므로 응시할 수 없습니다."),
            "seb_required": _("이 시험은 기관이 배포한 Safe Exam Browser에서만 응시할 수 있습니다."),
            "exam_not_open": _("지금은 응시 기간이 아닙니다."),
            "attempt_closed": _("이 시험의 응시가 이미 끝났습니다."),
            "attempt_exists": _("같은 시각에 다른 창에서 시험이 시작되었습니다. 다시 시도하세요."),
            "session_replaced": _("이 계정으로 다른 곳에서 로그인하여 현재 세션이 종료되었습니다."),
            "session_expired": _("세션이 만료되었습니다. 다시 로그인하세요."),
            "unauthorized": _("로그인이 필요합니다."),
            "rate_limited": _("요청이 너무 많습니다. 잠시 후 다시 시도하세요."),
            "forbidden": _("이 시험에 응시할 수 없습니다."),
            "network": _("서버에 연결할 수 없습니다. 네트워크를 확인하고 다시 시도하세요."),
        },
    }


# --- the learner: the lockdown page (EXM-9) ----------------------------------------------------------

def _entered_in_this_session(attempt: Attempt) -> bool:
    """EXM-8: the attempt was started or resumed with a fresh OTP code during the current
    login session (a new login must enter again through the notice page)."""
    session = current_auth().session
    last_entry = service.last_entry_at(attempt.id)
    return last_entry is not None and session is not None and last_entry >= session.created_at


@bp.route("/attempts/<int:attempt_id>/take")
@page_roles_required("learner")
def take(attempt_id):
    user = current_auth().user
    try:
        attempt, exam, course = service.attempt_for(attempt_id, user)
    except ApiError as exc:
        raise _korean_403(exc, _("다른 학습자의 응시 기록입니다.")) from exc
    now = clock.now()
    is_open = exam_rules.attempt_open(now, attempt.deadline, attempt.submitted_at)
    if is_open and not _entered_in_this_session(attempt):
        flash(_("시험을 계속하려면 OTP 코드를 다시 입력하세요."), "warning")
        return redirect(url_for("proctoring_pages.exam_page", exam_id=exam.id), 303)
    total_points = None
    if not is_open:
        detail = service.attempt_detail(attempt, user)
        total_points = sum(i["points"] or 0 for i in detail["items"])
    return render_template(
        "proctoring/exam_take.html", attempt=attempt, exam=exam, course=course, is_open=is_open,
        total_points=total_points, messages=_take_messages(), sync_ms=_sync_ms(), **_labels())


def _sync_ms() -> int:
    """How often the lockdown page re-reads the attempt (deadline, closure; it also keeps
    the session from idling out while the learner reads): ``EXAM_SYNC_SECONDS``, 60 s."""
    seconds = float(current_app.config.get("EXAM_SYNC_SECONDS") or 60)
    return int(max(1.0, min(seconds, 300.0)) * 1000)


def _take_messages() -> dict:
    """What exam.js says on the lockdown page, in the page's language."""
    return {
        "loading": _("시험 문항을 불러오는 중입니다…"),
        "gate_start": _("시험은 전체 화면에서만 진행됩니다. 아래 버튼을 누르면 전체 화면으로 바뀌고 문항이 표시됩니다."),
        "gate_return": _("전체 화면이 해제되어 문항을 가렸습니다. 이 기록은 교수자에게 전달됩니다. 전체 화면으로 돌아가 시험을 계속하세요."),
        "gate_refused": _("전체 화면으로 전환하지 못했습니다. 브라우저가 전체 화면을 허용하도록 한 뒤 다시 누르세요."),
        "gate_unsupported": _("이 브라우저는 전체 화면을 지원하지 않습니다. 이 사실은 교수자에게 기록됩니다."),
        "button_start": _("전체 화면으로 시작"),
        "button_return": _("전체 화면으로 돌아가기"),
        "button_continue": _("시험 계속하기"),
        "saved_at": _("저장됨 %(t)s"),
        "saving": _("저장 중…"),
        "unsaved": _("저장되지 않은 답안이 있습니다"),
        "retrying": _("저장하지 못했습니다. 다시 시도하는 중…"),
        "save_refused": _("이 답안은 저장되지 않았습니다: "),
        "not_answered": _("미응답"),
        "answered": _("응답함"),
        "confirm_all": _("모든 문항에 답했습니다. 제출한 뒤에는 답안을 바꿀 수 없습니다."),
        "confirm_unanswered": _("답하지 않은 문항이 %(n)s개 있습니다. 제출한 뒤에는 답안을 바꿀 수 없습니다."),
        "submitting": _("제출하는 중입니다…"),
        "submitted": _("답안이 제출되었습니다."),
        "submitted_at": _("제출 시각 %(t)s"),
        "time_up": _("시험 시간이 끝났습니다. 저장된 답안으로 제출합니다."),
        "closed": _("시험이 종료되었습니다. 더 이상 답안을 저장할 수 없습니다."),
        "score": _("점수: %(s)s / %(t)s점"),
        "needs_grading": _("서술형 문항은 교수자가 채점한 뒤 점수가 공개됩니다."),
        "incident_notice": _("기록됨: %(k)s"),
        "session_replaced": _("이 계정으로 다른 곳에서 로그인하여 현재 세션이 종료되었습니다. 시험 시간 안에 다시 로그인하여 OTP 코드로 입장하세요."),
        "session_expired": _("세션이 만료되었습니다. 시험 시간 안에 다시 로그인하여 OTP 코드로 입장하세요."),
        "blocked": _("응시가 차단되었습니다: "),
        "network": _("서버에 연결할 수 없습니다. 연결되면 답안을 다시 보냅니다."),
        "submit_failed": _("제출하지 못했습니다. 다시 누르세요: "),
        "leave_warning": _("시험 중에 페이지를 떠나면 기록됩니다."),
        "points": _("%(p)s점"),
        "kinds": {"single_choice": _("단일 선택형"), "multiple_choice": _("복수 선택형 (해당하는 것을 모두 고르세요)"),
                  "short_answer": _("단답형"), "essay": _("서술형")},
        "incidents": {k: _(INCIDENT_LABELS[k]) if k in INCIDENT_LABELS else k for k in proctor_rules.INCIDENT_KINDS},
        "answer_placeholder": _("답을 입력하세요"),
    }


# --- staff: the monitor and the evidence (EXM-10) ---------------------------------------------------

def _staff_exam(exam_id: int):
    user = current_auth().user
    try:
        exam, course = service.get_exam(exam_id, user)
        course_for_viewer(course.id, user)
    except ApiError as exc:
        raise _korean_403(exc, _("이 과정의 교수자·조교 또는 관리자만 응시 현황을 볼 수 있습니다.")) from exc
    return exam, course


def _names(user_ids) -> dict[int, str]:
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    return {uid: name for uid, name in db.session.execute(select(User.id, User.name).where(User.id.in_(ids)))}


@bp.route("/exams/<int:exam_id>/monitor")
@page_roles_required(*MONITOR_ROLES)
def monitor(exam_id):
    exam, course = _staff_exam(exam_id)
    now = clock.now()
    attempts = service.exam_attempts(exam)
    names = _names(a["learner_id"] for a in attempts)
    summary = {"started": len(attempts), "running": sum(1 for a in attempts if a["open"]),
               "submitted": sum(1 for a in attempts if a["submitted_at"]),
               "incidents": sum(a["incidents"] for a in attempts),
               "with_incidents": sum(1 for a in attempts if a["incidents"])}
    state = _window_state(exam, now)
    # The copied-answer review (EXM-9), when that page is installed.
    similarity_url = (url_for("similarity_pages.similarity_page", exam_id=exam.id)
                      if "similarity_pages.similarity_page" in current_app.view_functions else None)
    return render_template("proctoring/exam_monitor.html", exam=exam, course=course, attempts=attempts,
                           names=names, summary=summary, state=state, now=now, similarity_url=similarity_url,
                           refresh=state == "open", **_labels())


@bp.route("/attempts/<int:attempt_id>/evidence")
@page_roles_required(*MONITOR_ROLES)
def evidence(attempt_id):
    user = current_auth().user
    try:
        attempt, exam, course = service.attempt_for(attempt_id, user)
    except ApiError as exc:
        raise _korean_403(exc, _("이 과정의 교수자·조교 또는 관리자만 응시 기록을 볼 수 있습니다.")) from exc
    detail = service.attempt_detail(attempt, user)
    events = service.attempt_events(attempt)
    positions = dict(db.session.execute(select(AttemptItem.id, AttemptItem.position)
                                        .where(AttemptItem.attempt_id == attempt.id)).all())
    learner = db.session.get(User, attempt.learner_id)
    return render_template("proctoring/exam_evidence.html", attempt=attempt, exam=exam, course=course,
                           detail=detail, events=events, positions=positions, learner=learner,
                           incident_kind=service.INCIDENT, **_labels())

