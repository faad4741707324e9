"""Proctoring (EXM-8, EXM-9): the addresses attempts used, documented exceptions and the
copied-answer detection's reports.

``AttemptAddress`` is what the duplicate IP/device check reads: every IP and device an
attempt used (at start and on every change), append-only. ``ProctorException`` is an
admin's documented exception (e.g. a supervised test centre sharing one IP); it is itself
evidence and is never edited (a revocation is a new row state set once).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lms.db import UTCDateTime, db

IP, DEVICE = "ip", "device"


class AttemptAddress(db.Model):
    __tablename__ = "attempt_address"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempt.id"), index=True)
    exam_id: Mapped[int] = mapped_column(Integer)
    learner_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # ip | device
    value: Mapped[str] = mapped_column(String(128))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    exception_id: Mapped[int | None] = mapped_column(Integer)  # allowed by this exception

    __table_args__ = (UniqueConstraint("attempt_id", "kind", "value", name="uq_attempt_address"),
                      Index("ix_attempt_address_exam_value", "exam_id", "kind", "value"),
                      Index("ix_attempt_address_value", "kind", "value"))


class ProctorException(db.Model):
    """An admin's documented exception to the duplicate IP/device rule for one exam."""

    __tablename__ = "proctor_exception"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # ip | device
    value: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[int] = mapped_column(Integer)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_by: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SimilarityRun(db.Model):
    """One run of copied-answer detection over an exam (EXM-9)."""

    __tablename__ = "similarity_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    exam_id: Mapped[int] = mapped_column(ForeignKey("exam.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|done|failed
    answers: Mapped[int] = mapped_column(Integer, default=0)
    candidate_pairs: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class SimilarPair(db.Model):
    """A suspicious pair of answers to one item: ``score`` in [0, 1]; ``passages`` the
    overlapping spans of each answer ([[start, end], ...] character offsets)."""

    __tablename__ = "similar_pair"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("similarity_run.id"), index=True)
    exam_id: Mapped[int] = mapped_column(Integer, index=True)
    item_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # text | objective_wrong
    attempt_a: Mapped[int] = mapped_column(Integer)
    attempt_b: Mapped[int] = mapped_column(Integer)
    learner_a: Mapped[int] = mapped_column(Integer)
    learner_b: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    passages: Mapped[dict | None] = mapped_column(JSON)  # {"a": [[s, e], ...], "b": [...]}
    note: Mapped[str | None] = mapped_column(Text)
