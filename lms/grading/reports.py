"""Reports for NILE's credit bank information system (ENR-6, GRD-7).

Two reports per course, as CSV (UTF-8 with BOM) or XLSX, in this column layout:

``course_status`` (ENR-6, due before 1/5 of the total class time has passed), one row per
registered learner (cancelled registrations included, with their state):
  과정코드, 과목명, 학점, 개강일, 종강일, 주수, 주당 수업시간(차시), 평가방식, 정원, 교강사,
  학습자 아이디, 학습자 이름, 분반, 수강상태, 수강료, 납부액, 환불액
수강료 is the course's published fee (``lms.enrolment.fees.current_fee``: fee + lab fee, won;
empty when no fee is published), 납부액 the sum of the learner's recorded payments and
환불액 the sum of the refunds decided for the registration (``refund`` rows, paid or due);
both 0 for a learner without payments/refunds (empty when no fee is published and nothing
was recorded).

``grades`` (GRD-7, due within 7 days of finalising; only once grades are final), one row
per graded learner:
  과정코드, 과목명, 학점, 학습자 아이디, 학습자 이름, 점수, 성적, 평점, 출석률(%), 이수, 확정일시

Every generated file is stored (``nile_report``) with its SHA-256 as evidence; the
listing shows each report's due date and whether it is overdue.
"""
from __future__ import annotations

import hashlib
import io

from sqlalchemy import func, select

from lms import clock
from lms.attendance.rules import course_ends_on
from lms.auth.models import User
from lms.content import rules as crs
from lms.content.models import Course, Section, StaffAssignment
from lms.content.service import course_lessons, get_course
from lms.db import db
from lms.enrolment.models import Enrollment
from lms.errors import ApiError, forbidden, not_found
from lms.grading import rules, service
from lms.grading.models import CourseGrade, GradeCorrection, GradeSheet, NileReport
from lms.spreadsheet import csv_bytes, safe_text

KINDS = ("course_status", "grades")
FORMATS = ("csv", "xlsx")
SCHEME_LABELS = {"relative": "상대평가", "absolute": "절대평가", "pass_fail": "P/F"}
STATUS_COLUMNS = ["과정코드", "과목명", "학점", "개강일", "종강일", "주수", "주당 수업시간(차시)", "평가방식", "정원",
                  "교강사", "학습자 아이디", "학습자 이름", "분반", "수강상태", "수강료", "납부액", "환불액"]
GRADE_COLUMNS = ["과정코드", "과목명", "학점", "학습자 아이디", "학습자 이름", "점수", "성적", "평점", "출석률(%)",
                 "이수", "확정일시"]
ENROLMENT_LABELS = {"active": "수강", "completed": "수료", "cancelled": "취소"}


def course_for_reports(course_id: int, user: User) -> Course:
    course = get_course(course_id, user)
    if user.role in ("admin", "inspector") or service.can_read(course, user):
        return course
    raise forbidden("only staff, administrators and inspectors see NILE reports")


def _safe(v):
    """Text cells never start a formula in a spreadsheet."""
    return safe_text(v) if isinstance(v, str) else v


def _money(amount: int | None, fee: int | None):
    """A learner's paid/refunded amount: 0 when nothing was recorded for a course with a
    published fee, empty when the course has neither a fee nor any record."""
    if amount is None:
        return 0 if fee is not None else ""
    return amount


def status_rows(course: Course) -> list[list]:
    e = course_ends_on(course.starts_on, course.weeks)
    units = sum(crs.lesson_units(l.kind, l.duration_seconds, l.frames) for l in course_lessons(course.id))
    weekly = round(units / course.weeks, 1) if course.weeks else 0
    sheet = db.session.scalar(select(GradeSheet).where(GradeSheet.course_id == course.id))
    scheme = sheet.scheme if sheet else rules.default_scheme(
        db.session.scalar(select(func.count(Enrollment.id)).where(Enrollment.course_id == course.id,
                                                                  Enrollment.status == "active")) or 0,
        course.practice)
    staff = ", ".join(u.name or u.username for u in db.session.scalars(
        select(User).join(StaffAssignment, StaffAssignment.user_id == User.id)
        .where(StaffAssignment.course_id == course.id, StaffAssignment.role == "instructor").order_by(User.id)))
    sections = {s.id: s.name for s in db.session.scalars(select(Section).where(Section.course_id == course.id))}
    from lms.enrolment.fees import current_fee, money_by_enrollment

    fee_row = current_fee(course.id)
    fee = None if fee_row is None else fee_row.amount + fee_row.lab_fee
    paid, refunded = money_by_enrollment(course.id)
    rows = []
    for enr, user in db.session.execute(select(Enrollment, User).join(User, User.id == Enrollment.user_id)
                                        .where(Enrollment.course_id == course.id).order_by(User.id)).all():
        rows.append([course.code, course.title, course.credits, course.starts_on.isoformat(), e.isoformat(),
                     course.weeks, weekly, SCHEME_LABELS.get(scheme, scheme), course.capacity, staff,
                     user.username, user.name or "", sections.get(enr.section_id, ""),
                     ENROLMENT_LABELS.get(enr.status, enr.status), fee if fee is not None else "",
                     _money(paid.get(enr.id), fee), _money(refunded.get(enr.id), fee)])
    return rows


def grade_rows(course: Course) -> list[list]:
    sheet = db.session.scalar(select(GradeSheet).where(GradeSheet.course_id == course.id))
    if sheet is None or sheet.finalized_at is None:
        raise ApiError(409, "not_finalized", "the grade report is made from final grades (GRD-7)")
    fin = clock.to_kst(sheet.finalized_at).strftime("%Y-%m-%d %H:%M:%S")
    rows = []
    for g, user in db.session.execute(select(CourseGrade, User).join(User, User.id == CourseGrade.learner_id)
                                      .where(CourseGrade.course_id == course.id).order_by(User.id)).all():
        pts = rules.points_for(g.grade)
        rows.append([course.code, course.title, course.credits, user.username, user.name or "",
                     "" if g.score is None else g.score, g.grade or "성적 없음",
                     "" if pts is None else float(pts),
                     "" if g.attendance_rate is None else round(g.attendance_rate * 100, 1),
                     "Y" if rules.passed(g.grade) else "N", fin])
    return rows


def render(columns: list[str], rows: list[list], fmt: str, title: str) -> bytes:
    if fmt == "csv":
        return csv_bytes([columns, *([_safe(v) for v in r] for r in rows)])
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = title[:31]
    ws.append(columns)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for i, r in enumerate(rows, start=2):
        for c, v in enumerate(r, start=1):
            cell = ws.cell(row=i, column=c, value=None if v == "" else v)
            if isinstance(v, str):
                cell.data_type = "s"
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def generate(course_id: int, actor: User, *, kind: str, fmt: str) -> NileReport:
    course = get_course(course_id, actor)
    if actor.role != "admin" and not service.can_grade(course, actor):
        raise forbidden("only administrators and the course's instructor generate NILE reports")
    if kind not in KINDS or fmt not in FORMATS:
        raise ApiError(400, "invalid_request", f"kind: one of {KINDS}; format: one of {FORMATS}")
    if kind == "course_status":
        rows, columns, title = status_rows(course), STATUS_COLUMNS, "과정운영현황"
    else:
        rows, columns, title = grade_rows(course), GRADE_COLUMNS, "성적및출석률"
    content = render(columns, rows, fmt, title)
    rep = NileReport(course_id=course.id, kind=kind, fmt=fmt, generated_at=clock.now(), generated_by=actor.id,
                     rows=len(rows), sha256=hashlib.sha256(content).hexdigest(), content=content)
    db.session.add(rep)
    db.session.flush()
    return rep


def report_dict(r: NileReport) -> dict:
    return {"id": r.id, "course_id": r.course_id, "kind": r.kind, "format": r.fmt,
            "generated_at": clock.iso(r.generated_at), "generated_by": r.generated_by, "rows": r.rows,
            "sha256": r.sha256, "size": len(r.content)}


def due_state(course: Course, now=None) -> dict:
    """Each report's due date and state: submitted (on time), late, pending, overdue, or
    waiting (the grade report before finalisation)."""
    now = now or clock.now()
    e = course_ends_on(course.starts_on, course.weeks)
    sheet = db.session.scalar(select(GradeSheet).where(GradeSheet.course_id == course.id))
    out = {}
    for kind in KINDS:
        if kind == "course_status":
            due = rules.nile_status_due(course.starts_on, e)
        else:
            due = rules.nile_grades_due(sheet.finalized_at) if sheet and sheet.finalized_at else None
        first = db.session.scalar(select(func.min(NileReport.generated_at)).where(
            NileReport.course_id == course.id, NileReport.kind == kind))
        if due is None:
            state = "waiting"
        elif first is not None:
            state = "submitted" if first < due else "late"
        else:
            state = "overdue" if now >= due else "pending"
        out[kind] = {"due": clock.iso(due), "state": state, "overdue": state == "overdue",
                     "first_generated_at": clock.iso(first)}
    # GRD-7: a grade corrected after the last grade report needs a new report.
    last = db.session.scalar(select(func.max(NileReport.generated_at)).where(
        NileReport.course_id == course.id, NileReport.kind == "grades"))
    corrected = db.session.scalar(select(func.max(GradeCorrection.decided_at)).where(
        GradeCorrection.course_id == course.id, GradeCorrection.status == "approved"))
    out["grades"]["corrected_since"] = bool(last and corrected and corrected > last)
    return out


def list_reports(course: Course) -> list[NileReport]:
    return list(db.session.scalars(select(NileReport).where(NileReport.course_id == course.id)
                                   .order_by(NileReport.id.desc())))


def get_report(report_id: int, user: User) -> NileReport:
    r = db.session.get(NileReport, report_id)
    if r is None:
        raise not_found("report")
    course_for_reports(r.course_id, user)
    return r


def filename(r: NileReport, course: Course) -> str:
    import re

    code = re.sub(r"[^A-Za-z0-9_-]", "_", course.code) or "course"
    return f"nile-{r.kind}-{code}-{clock.to_kst(r.generated_at).strftime('%Y%m%d-%H%M%S')}.{r.fmt}"


def overdue_courses(user: User) -> list[tuple[Course, dict]]:
    """Courses of the institution with a NILE report overdue (the admin's alert)."""
    out = []
    now = clock.now()
    for c in db.session.scalars(select(Course).where(Course.institution_id == user.institution_id,
                                                     Course.status == "published").order_by(Course.id)):
        st = due_state(c, now)
        if any(v["overdue"] for v in st.values()):
            out.append((c, st))
    return out
