"""Tables of the compliance report, proxy-attendance detection and the complaint and
counselling channels (issue 6, items 4–6).

- ``compliance_report``: each generated report (course, term, verdicts, the PDF kept as
  evidence with its SHA-256). Append-only: a new report is a new row.
- ``complaint`` / ``complaint_message`` (REC-5): a learner's attendance or grade complaint
  (신문고) or 1:1 counselling request and its thread. Messages are append-only evidence
  (author, time, IP); only the thread's status summary (open/answered/closed) changes, and
  every change of it is itself a message row.
- Indexes on ``lesson_view`` for the same-IP / same-device overlap search (proxy attendance).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lms.attendance.models import LessonView
from lms.db import UTCDateTime, db

COMPLAINT_KINDS = ("attendance", "grade", "counselling")  # REC-5: 신문고 (attendance, grade), 1:1 상담
COMPLAINT_STATUSES = ("open", "answered", "closed")
MESSAGE_ACTIONS = ("message", "close", "reopen")


class ComplianceReport(db.Model):
    """One generated compliance report of a course (its PDF is the inspection-file copy)."""

    __tablename__ = "compliance_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    term: Mapped[str] = mapped_column(String(16))  # e.g. 2027-1 (Mar–Aug), 2027-2 (Sep–Feb)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    generated_by: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    verdicts: Mapped[list] = mapped_column(JSON)  # [{"rule", "status", "summary"}, ...]
    counts: Mapped[dict] = mapped_column(JSON)  # {"pass": n, "fail": n, ...}
    pdf_path: Mapped[str] = mapped_column(String(500))  # under LMS_MEDIA_ROOT
    pdf_size: Mapped[int] = mapped_column(Integer)
    pdf_sha256: Mapped[str] = mapped_column(String(64))


class Complaint(db.Model):
    """A complaint (attendance or grade) or a 1:1 counselling request (REC-5)."""

    __tablename__ = "complaint"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # COMPLAINT_KINDS
    course_id: Mapped[int | None] = mapped_column(ForeignKey("course.id"), index=True)
    lesson_id: Mapped[int | None] = mapped_column(ForeignKey("lesson.id"))
    exam_id: Mapped[int | None] = mapped_column(ForeignKey("exam.id"))
    subject: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="open")  # summary of the thread
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_ip: Mapped[str | None] = mapped_column(String(45))
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_answer_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ComplaintMessage(db.Model):
    """One message of a thread (append-only evidence: never updated or deleted)."""

    __tablename__ = "complaint_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaint.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    author_role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(10), default="message")  # MESSAGE_ACTIONS
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(45))


# Proxy-attendance detection (issue 6, item 5): other learners' views from the same IP or
# device are found by an indexed self-join, not by comparing every pair in Python.
Index("ix_lesson_view_ip_started", LessonView.ip, LessonView.started_at)
Index("ix_lesson_view_device_started", LessonView.device, LessonView.started_at)
