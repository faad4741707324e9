"""Item banks, exams and attempts (EXM-1…13).

Items are versioned: an attempt keeps the ``ItemVersion`` it showed. ``AttemptEvent`` is
the append-only exam evidence (EXM-10, REC-1): start, every answer save with its time, IP
and device, IP/device changes, incidents, submission.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, BigInteger, Boolean, Float, ForeignKey, ForeignKeyConstraint, Index, Integer,
                        String, Text, UniqueConstraint)
from sqlalchemy.orm import Mapped, mapped_column

from lms.db import UTCDateTime, db

BigId = BigInteger().with_variant(Integer, "sqlite")


class Item(db.Model):
    """A bank item (logical identity); its content lives in versions."""

    __tablename__ = "item"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    difficulty: Mapped[str] = mapped_column(String(16))  # easy|medium|hard (+ institution levels)
    kind: Mapped[str] = mapped_column(String(16))  # single_choice|multiple_choice|short_answer|essay
    tags: Mapped[list | None] = mapped_column(JSON)  # e.g. ["week:3", "topic:..."]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # replaced (EXM-5)
    # EXM-5: the item this one replaces in the bank (item analysis flags, term report counts).
    replaces_item_id: Mapped[int | None] = mapped_column(ForeignKey("item.id"))
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ItemVersion(db.Model):
    __tablename__ = "item_version"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    difficulty: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    prompt: Mapped[str] = mapped_column(Text)
    choices: Mapped[list | None] = mapped_column(JSON)
    answer: Mapped[object | None] = mapped_column(JSON)  # scoring key (EXM-12)
    model_answer: Mapped[str | None] = mapped_column(Text)  # subjective items (EXM-12)
    rubric: Mapped[str | None] = mapped_column(Text)
    points: Mapped[float] = mapped_column(Float)
    tags: Mapped[list | None] = mapped_column(JSON)
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("item_id", "version", name="uq_item_version_item_version"),
                      # the target of attempt_item's (version, item) key
                      UniqueConstraint("id", "item_id", name="uq_item_version_id_item"))


class Exam(db.Model):
    __tablename__ = "exam"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # midterm|final|quiz
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closes_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int] = mapped_column(Integer)  # EXM-4
    items_per_difficulty: Mapped[dict] = mapped_column(JSON)  # {"easy": n, ...} (EXM-3)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # EXM-7
    requires_seb: Mapped[bool] = mapped_column(Boolean, default=False)
    seb_config_key: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft|announced|closed
    created_by: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set by the job that runs after the window closes (auto-submit, copy detection,
    # item analysis); None until then.
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Attempt(db.Model):
    """One learner's sitting of an exam. EXM-10 evidence: started_at, submitted_at, ip."""

    __tablename__ = "attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submit_reason: Mapped[str | None] = mapped_column(String(16))  # learner|deadline
    ip: Mapped[str | None] = mapped_column(String(45))
    device: Mapped[str | None] = mapped_column(String(128))
    seed: Mapped[str] = mapped_column(String(64))  # reproduces the draw
    score: Mapped[float | None] = mapped_column(Float)
    needs_grading: Mapped[bool] = mapped_column(Boolean, default=False)  # essays pending
    is_makeup: Mapped[bool] = mapped_column(Boolean, default=False)  # EXM-11: grade capped at B+
    cheating_found: Mapped[bool] = mapped_column(Boolean, default=False)  # EXM-13
    makeup_request_id: Mapped[int | None] = mapped_column(Integer)  # EXM-11

    __table_args__ = (UniqueConstraint("exam_id", "learner_id", name="uq_attempt_exam_learner"),)


class AttemptItem(db.Model):
    """An item drawn for an attempt, with the version shown and its choice order."""

    __tablename__ = "attempt_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempt.id"), index=True)
    item_id: Mapped[int] = mapped_column(Integer)
    item_version_id: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    choice_order: Mapped[list | None] = mapped_column(JSON)  # shown index → original index
    answer: Mapped[object | None] = mapped_column(JSON)  # latest saved (derived from events)
    awarded: Mapped[float | None] = mapped_column(Float)  # points given (derived)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    graded_by: Mapped[int | None] = mapped_column(Integer)  # essays: the instructor
    graded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    grader_comment: Mapped[str | None] = mapped_column(Text)

    # One foreign key for the pair: the version exists and belongs to item_id (item_version
    # references item). PostgreSQL checks a key by locking the referenced row, and every
    # attempt's items reference the same bank rows: one key locks 20 shared rows per start,
    # where separate keys to item and item_version locked 40 (migration 0014).
    __table_args__ = (UniqueConstraint("attempt_id", "item_id", name="uq_attempt_item_attempt_item"),
                      ForeignKeyConstraint(["item_version_id", "item_id"], ["item_version.id", "item_version.item_id"],
                                           name="fk_attempt_item_version_item"))


class AttemptEvent(db.Model):
    """Append-only exam evidence. Never updated or deleted (retention excepted)."""

    __tablename__ = "attempt_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    attempt_id: Mapped[int] = mapped_column(Integer, index=True)
    exam_id: Mapped[int] = mapped_column(Integer)
    learner_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # started|resumed|answer|ip_changed|device_changed|blocked|incident|submitted|
    # auto_submitted|graded|cheating_finding
    kind: Mapped[str] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(45))
    device: Mapped[str | None] = mapped_column(String(128))
    attempt_item_id: Mapped[int | None] = mapped_column(Integer)
    answer: Mapped[object | None] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(String(500))

    # (time, id) after each filter: keyset paging of the inspectors' search (REC-3).
    __table_args__ = (Index("ix_attempt_event_exam_at_id", "exam_id", "at", "id"),
                      Index("ix_attempt_event_learner_at_id", "learner_id", "at", "id"),
                      Index("ix_attempt_event_at_id", "at", "id"),
                      Index("ix_attempt_event_ip_at_id", "ip", "at", "id",
                            postgresql_ops={"ip": "varchar_pattern_ops"}))


class ItemAnalysis(db.Model):
    """EXM-5: per item of a regular exam, computed after it closes (derived; recomputable)."""

    __tablename__ = "item_analysis"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"), index=True)
    drawn: Mapped[int] = mapped_column(Integer)  # attempts that showed the item
    answered: Mapped[int] = mapped_column(Integer)
    correct_rate: Mapped[float | None] = mapped_column(Float)  # mean share of points
    discrimination: Mapped[float | None] = mapped_column(Float)  # upper − lower group rate
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_reason: Mapped[str | None] = mapped_column(String(200))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("exam_id", "item_id", name="uq_item_analysis_exam_item"),)


class MakeupRequest(db.Model):
    """EXM-11: a learner's application for a make-up exam (추가시험) of a regular exam."""

    __tablename__ = "makeup_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_ip: Mapped[str | None] = mapped_column(String(45))
    decided_by: Mapped[int | None] = mapped_column(Integer)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_comment: Mapped[str | None] = mapped_column(Text)
    window_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # approval + 5 days

    __table_args__ = (UniqueConstraint("exam_id", "learner_id", name="uq_makeup_request_exam_learner"),)


class MakeupEvidence(db.Model):
    __tablename__ = "makeup_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("makeup_request.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CheatingFinding(db.Model):
    """EXM-13: an instructor's finding of cheating on an attempt — no grade for the course.
    Append-only evidence."""

    __tablename__ = "cheating_finding"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempt.id"), index=True)
    exam_id: Mapped[int] = mapped_column(Integer)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # proxy_exam|early_view|answers_outside_time|...
    description: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    found_by: Mapped[int] = mapped_column(Integer)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime())
