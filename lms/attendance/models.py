"""Viewing evidence and attendance.

``ViewEvent`` is the append-only viewing log (REC-1, REC-3): every start, credited
heartbeat, challenge and end, with IP and device. ``LessonView`` and ``LessonProgress`` are
summaries derived from it (they may be updated; the recompute command rebuilds them).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lms.db import UTCDateTime, db

BigId = BigInteger().with_variant(Integer, "sqlite")


class LessonView(db.Model):
    """One viewing session of a lesson by a learner (summary of its events)."""

    __tablename__ = "lesson_view"

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lesson.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(16))  # ended|replaced|expired
    ip: Mapped[str | None] = mapped_column(String(45))
    device: Mapped[str | None] = mapped_column(String(128))
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    position_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    credited_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # ATT-4: playing time claimed beyond what real time allows, discarded.
    suspicious_excess_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    # Presence challenge (ATT-4): while pending, nothing is credited.
    challenge_id: Mapped[str | None] = mapped_column(String(32))
    challenge_code: Mapped[str | None] = mapped_column(String(12))
    challenge_issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_challenge_after_seconds: Mapped[float | None] = mapped_column(Float)
    played_since_challenge: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (
        Index("ix_lesson_view_learner_open", "learner_id", "ended_at"),
        # Keyset paging of the inspectors' search (REC-3).
        Index("ix_lesson_view_learner_started_id", "learner_id", "started_at", "id"),
        Index("ix_lesson_view_course_started_id", "course_id", "started_at", "id"),
        Index("ix_lesson_view_started_id", "started_at", "id"),
    )


class ViewEvent(db.Model):
    """Append-only viewing log entry. Never updated or deleted (retention excepted)."""

    __tablename__ = "view_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    view_id: Mapped[int] = mapped_column(Integer, index=True)
    learner_id: Mapped[int] = mapped_column(Integer)
    lesson_id: Mapped[int] = mapped_column(Integer)
    course_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(20))  # start|heartbeat|challenge|challenge_ok|end
    ip: Mapped[str | None] = mapped_column(String(45))
    device: Mapped[str | None] = mapped_column(String(128))
    # heartbeat: the segments claimed and the segments credited, [[from_s, to_s], ...]
    claimed: Mapped[list | None] = mapped_column(JSON)
    credited: Mapped[list | None] = mapped_column(JSON)
    credited_seconds: Mapped[float | None] = mapped_column(Float)
    excess_seconds: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        # (time, id) after each filter: keyset paging of the inspectors' search (REC-3).
        Index("ix_view_event_learner_at_id", "learner_id", "at", "id"),
        Index("ix_view_event_course_at_id", "course_id", "at", "id"),
        Index("ix_view_event_at_id", "at", "id"),
        Index("ix_view_event_ip_at_id", "ip", "at", "id", postgresql_ops={"ip": "varchar_pattern_ops"}),
    )


class LessonProgress(db.Model):
    """Per learner and lesson: the merged credited intervals and the settled status
    (ATT-1, ATT-2, ATT-5). Derived from the viewing log; rebuilt by the recompute command."""

    __tablename__ = "lesson_progress"

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lesson.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    intervals: Mapped[list] = mapped_column(JSON, default=list)  # merged [[from_s, to_s], ...]
    covered_seconds: Mapped[int] = mapped_column(Integer, default=0)  # whole seconds covered
    # First instant the whole lesson was covered (may be after the deadline: recorded,
    # but it never turns an absence into attendance).
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|attended|absent|excused
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_access_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_access_ip: Mapped[str | None] = mapped_column(String(45))

    __table_args__ = (UniqueConstraint("learner_id", "lesson_id", name="uq_lesson_progress_learner_lesson"),)


# ATT-5: the reasons an excused absence (공결) may be granted for.
EXCUSE_REASONS = ("bereavement", "military", "wedding", "hospitalisation", "disaster", "institution_rule")


class ExcuseRequest(db.Model):
    """A learner's application for excused absence (ATT-5) for some lessons, with evidence.
    A TA or instructor of the course approves or rejects it with a comment."""

    __tablename__ = "excuse_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    reason: Mapped[str] = mapped_column(String(20))  # one of EXCUSE_REASONS
    statement: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending|approved|rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_comment: Mapped[str | None] = mapped_column(Text)


class ExcuseLesson(db.Model):
    """A lesson an excuse request covers."""

    __tablename__ = "excuse_lesson"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("excuse_request.id"), index=True)
    lesson_id: Mapped[int] = mapped_column(ForeignKey("lesson.id"), index=True)

    __table_args__ = (UniqueConstraint("request_id", "lesson_id", name="uq_excuse_lesson_request_lesson"),)


class ExcuseEvidence(db.Model):
    """An evidence file of an excuse request, stored under LMS_MEDIA_ROOT (kept 5 years
    with the attendance records, REC-1)."""

    __tablename__ = "excuse_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("excuse_request.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AttendanceSubmission(db.Model):
    """The attendance record of a course as its instructor submitted it (ATT-9: within one
    week after the course ends). Append-only: a correction is a new submission; the
    snapshot (every learner's statuses, rate and score) and its SHA-256 are kept (REC-1)."""

    __tablename__ = "attendance_submission"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    submitted_by: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    on_time: Mapped[bool] = mapped_column(default=False)
    learners: Mapped[int] = mapped_column(Integer)
    snapshot: Mapped[dict] = mapped_column(JSON)
    sha256: Mapped[str] = mapped_column(String(64))
