"""Enrolments (수강신청) of learners in a course's class."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lms.db import UTCDateTime, db


class Enrollment(db.Model):
    __tablename__ = "enrollment"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    section_id: Mapped[int | None] = mapped_column(ForeignKey("course_section.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|cancelled|completed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # ENR-2: the learner viewed the syllabus and consented ('동의·확인').
    syllabus_consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    syllabus_consent_ip: Mapped[str | None] = mapped_column(String(45))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    # ATT-8: enlisted in the military during the course (KST date), when it applies.
    enlisted_on: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (UniqueConstraint("course_id", "user_id", name="uq_enrollment_course_user"),)
