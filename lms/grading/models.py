"""Grades (GRD-1…7), objections, correction applications, NILE reports (ENR-6, GRD-7) and
course evaluations (CRS-15).

Append-only evidence: ``component_score`` (each entry a new row; the latest counts),
``grade_event`` (every change of a grade), ``nile_report`` (each generated file with its
hash), ``evaluation_response`` (anonymous answers). ``course_grade`` is the current sheet,
derived from ``grade_event``; ``grade_objection`` and ``grade_correction`` are answered or
decided once.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lms.db import UTCDateTime, db


class GradeSheet(db.Model):
    """A course's grading state: the scheme (GRD-2), proposal and finalisation (GRD-6)."""

    __tablename__ = "grade_sheet"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), unique=True)
    scheme: Mapped[str] = mapped_column(String(16))  # relative|absolute|pass_fail
    proposed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    proposed_by: Mapped[int | None] = mapped_column(Integer)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finalized_by: Mapped[int | None] = mapped_column(Integer)  # None: the finalisation job
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    overdue_alerted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CourseGrade(db.Model):
    """A learner's current grade in a course (derived from ``grade_event``)."""

    __tablename__ = "course_grade"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    score: Mapped[float | None] = mapped_column(Float)
    components: Mapped[dict | None] = mapped_column(JSON)  # {component: percent}
    attendance_rate: Mapped[float | None] = mapped_column(Float)
    proposed_grade: Mapped[str | None] = mapped_column(String(4))
    grade: Mapped[str | None] = mapped_column(String(4))  # None: no grade (EXM-13)
    fixed_by: Mapped[list | None] = mapped_column(JSON)  # rule IDs fixing the grade (ATT-6, GRD-3, EXM-13)
    cap: Mapped[str | None] = mapped_column(String(4))  # EXM-11
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("course_id", "learner_id", name="uq_course_grade_learner"),)


class GradeEvent(db.Model):
    """Every change of a grade, appended: proposed, adjusted, objection_correction,
    finalized, correction_approved (GRD-6, GRD-7)."""

    __tablename__ = "grade_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(Integer, index=True)
    learner_id: Mapped[int] = mapped_column(Integer, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))
    grade_before: Mapped[str | None] = mapped_column(String(4))
    grade_after: Mapped[str | None] = mapped_column(String(4))
    score: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)


class ComponentScore(db.Model):
    """An instructor-entered score (0–100) of a component without its own module —
    assignments, participation (GRD-1). Appended; the latest per learner counts."""

    __tablename__ = "component_score"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    component: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GradeObjection(db.Model):
    """A learner's objection (GRD-6) and the instructor's answer."""

    __tablename__ = "grade_objection"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[int | None] = mapped_column(Integer)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    grade_before: Mapped[str | None] = mapped_column(String(4))
    grade_after: Mapped[str | None] = mapped_column(String(4))  # set when the answer corrected it


class GradeCorrection(db.Model):
    """GRD-7: a correction after finalisation — the instructor's reasons and evidence, an
    administrator's decision."""

    __tablename__ = "grade_correction"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    requested_by: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    grade_before: Mapped[str | None] = mapped_column(String(4))
    grade_after: Mapped[str] = mapped_column(String(4))
    reasons: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|rejected
    decided_by: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_comment: Mapped[str | None] = mapped_column(Text)


class NileReport(db.Model):
    """A generated report for NILE (ENR-6 course status, GRD-7 grades and attendance
    rates): the file as generated and its SHA-256, kept as evidence."""

    __tablename__ = "nile_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # course_status|grades
    fmt: Mapped[str] = mapped_column(String(8))  # csv|xlsx
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    generated_by: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class EvaluationSubmission(db.Model):
    """CRS-15: who has answered a course's evaluation (never what)."""

    __tablename__ = "evaluation_submission"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    submitted_on: Mapped[str] = mapped_column(String(10))  # KST date only

    __table_args__ = (UniqueConstraint("course_id", "learner_id", name="uq_evaluation_submission"),)


class EvaluationResponse(db.Model):
    """CRS-15: one anonymous answer set: a random key, no learner, no time — nothing links
    it to ``evaluation_submission``."""

    __tablename__ = "evaluation_response"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # random hex
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    answers: Mapped[dict] = mapped_column(JSON)  # {question: 1..5}
    comment: Mapped[str | None] = mapped_column(Text)
    has_comment: Mapped[bool] = mapped_column(Boolean, default=False)
