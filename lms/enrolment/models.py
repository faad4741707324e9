"""Enrolments (수강신청) of learners in a course's class."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lms.db import EncryptedText, UTCDateTime, db


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


class EnrollmentEvent(db.Model):
    """Append-only history of a registration (ENR-1, ENR-2, CRS-14): enrolled (regular,
    late or an administrator's override, with the reason), consent, moved between
    classes, cancelled."""

    __tablename__ = "enrollment_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # enrolled|consent|moved|cancelled
    registration_kind: Mapped[str | None] = mapped_column(String(16))  # regular|late|admin_override
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    ip: Mapped[str | None] = mapped_column(String(45))
    reason: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[dict | None] = mapped_column(JSON)


class LateRight(db.Model):
    """ENR-1: a learner whose registration was cancelled for an unavoidable reason (e.g. the
    course closed, CRS-14) may register late within 2 weeks of another course's start."""

    __tablename__ = "late_registration_right"

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    source_enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id"))
    reason: Mapped[str] = mapped_column(String(500))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment.id"))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CourseFee(db.Model):
    """ENR-4: the published fee of a course (append-only: the latest row is current)."""

    __tablename__ = "course_fee"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)  # won
    lab_fee: Mapped[int] = mapped_column(Integer, default=0)  # 실험·실습·실기비, won
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    published_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class Payment(db.Model):
    """A fee payment as recorded by staff (the gateway is out of scope): method and amount."""

    __tablename__ = "payment"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(16))  # cash|transfer|card
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    note: Mapped[str | None] = mapped_column(String(500))


class Refund(db.Model):
    """ENR-4: a refund decided by the table (row and share kept), due within 5 days."""

    __tablename__ = "refund"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id"), index=True)
    cause: Mapped[str] = mapped_column(String(24))
    cause_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_amount: Mapped[int] = mapped_column(Integer)
    table_row: Mapped[str] = mapped_column(String(24))
    elapsed: Mapped[str | None] = mapped_column(String(32))  # exact fraction "n/d"
    amount: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[date] = mapped_column(Date, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    refunded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refunded_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    refund_method: Mapped[str | None] = mapped_column(String(16))


class LearnerRegister(db.Model):
    """ENR-5, REC-2: a learner's academic register (학적부), created within 3 weeks of a
    course start and never deleted. Its fields live in ``register_value`` (append-only)."""

    __tablename__ = "learner_register"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), unique=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RegisterEntry(db.Model):
    """A course in the learner register (one per registration)."""

    __tablename__ = "register_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    register_id: Mapped[int] = mapped_column(ForeignKey("learner_register.id"), index=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id"), unique=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RegisterValue(db.Model):
    """A value of a register field (append-only: the newest row per field is current; the
    older ones are the history)."""

    __tablename__ = "register_value"

    id: Mapped[int] = mapped_column(primary_key=True)
    register_id: Mapped[int] = mapped_column(ForeignKey("learner_register.id"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    value: Mapped[str | None] = mapped_column(EncryptedText())  # REC-4
    source: Mapped[str] = mapped_column(String(16))  # created | correction
    correction_id: Mapped[int | None] = mapped_column(ForeignKey("register_correction.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RegisterCorrection(db.Model):
    """An application to correct a register field, with evidence; an admin decides."""

    __tablename__ = "register_correction"

    id: Mapped[int] = mapped_column(primary_key=True)
    register_id: Mapped[int] = mapped_column(ForeignKey("learner_register.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    requested_value: Mapped[str] = mapped_column(EncryptedText())
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|approved|rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_comment: Mapped[str | None] = mapped_column(Text)


class RegisterEvidence(db.Model):
    """An evidence file of a correction application (kept permanently with the register)."""

    __tablename__ = "register_evidence"

    id: Mapped[int] = mapped_column(primary_key=True)
    correction_id: Mapped[int] = mapped_column(ForeignKey("register_correction.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    stored_path: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Certificate(db.Model):
    """A learning-history certificate as issued: its unguessable verification code, the
    SHA-256 of the PDF handed out (evidence) and what it certified."""

    __tablename__ = "learning_certificate"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    holder_masked: Mapped[str] = mapped_column(String(100))
    courses: Mapped[list] = mapped_column(JSON)
    pdf_sha256: Mapped[str] = mapped_column(String(64))
