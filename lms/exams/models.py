"""Item banks, exams and attempts (EXM-1…13).

Items are versioned: an attempt keeps the ``ItemVersion`` it showed. ``AttemptEvent`` is
the append-only exam evidence (EXM-10, REC-1): start, every answer save with its time, IP
and device, IP/device changes, incidents, submission.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint)
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("item_id", "version", name="uq_item_version_item_version"),)


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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


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

    __table_args__ = (UniqueConstraint("exam_id", "learner_id", name="uq_attempt_exam_learner"),)


class AttemptItem(db.Model):
    """An item drawn for an attempt, with the version shown and its choice order."""

    __tablename__ = "attempt_item"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempt.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id"))
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_version.id"))
    position: Mapped[int] = mapped_column(Integer)
    choice_order: Mapped[list | None] = mapped_column(JSON)  # shown index → original index
    answer: Mapped[object | None] = mapped_column(JSON)  # latest saved (derived from events)
    awarded: Mapped[float | None] = mapped_column(Float)  # points given (derived)

    __table_args__ = (UniqueConstraint("attempt_id", "item_id", name="uq_attempt_item_attempt_item"),)


class AttemptEvent(db.Model):
    """Append-only exam evidence. Never updated or deleted (retention excepted)."""

    __tablename__ = "attempt_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    attempt_id: Mapped[int] = mapped_column(Integer, index=True)
    exam_id: Mapped[int] = mapped_column(Integer)
    learner_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # started|answer|ip_changed|device_changed|incident|submitted|auto_submitted|cheating_finding
    kind: Mapped[str] = mapped_column(String(20))
    ip: Mapped[str | None] = mapped_column(String(45))
    device: Mapped[str | None] = mapped_column(String(128))
    attempt_item_id: Mapped[int | None] = mapped_column(Integer)
    answer: Mapped[object | None] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (Index("ix_attempt_event_exam_at", "exam_id", "at"),
                      Index("ix_attempt_event_learner_at", "learner_id", "at"))
