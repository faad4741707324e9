"""Courses (학습과정), classes/sections (분반) and staff assignments."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.db import UTCDateTime, db


class Course(db.Model):
    __tablename__ = "course"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    credits: Mapped[int] = mapped_column(Integer)
    starts_on: Mapped[date] = mapped_column(Date)  # KST calendar date of week 1
    weeks: Mapped[int] = mapped_column(Integer)  # CRS-1: at least 15
    capacity: Mapped[int] = mapped_column(Integer)  # CRS-7: ≤ 800 and ≤ accreditation
    # CRS-2: lab/practice/studio courses need 30 class hours per credit instead of 15.
    practice: Mapped[bool] = mapped_column(Boolean, default=False)
    # CRS-7: the capacity written on the accreditation certificate, when known.
    accredited_capacity: Mapped[int | None] = mapped_column(Integer)
    # ATT-7: the attendance-score scale published at the start: [[min_rate_percent, points], ...]
    # from the highest band down; None means the rule's 20-point table.
    attendance_scale: Mapped[list | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft|published|cancelled
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    sections = relationship("Section", back_populates="course", order_by="Section.id")

    __table_args__ = (UniqueConstraint("institution_id", "code", name="uq_course_institution_code"),)


class Section(db.Model):
    """A class (분반) of a course: at most 200 learners (CRS-7)."""

    __tablename__ = "course_section"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    capacity: Mapped[int] = mapped_column(Integer, default=200)

    course = relationship("Course", back_populates="sections")


class StaffAssignment(db.Model):
    """An instructor (running the class) or TA assigned to a course, optionally to one section."""

    __tablename__ = "staff_assignment"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    section_id: Mapped[int | None] = mapped_column(ForeignKey("course_section.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # instructor | ta
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("course_id", "user_id", "role", name="uq_staff_course_user_role"),)


class Lesson(db.Model):
    """A lesson (차시) of a week. Video lessons count their net running time, frame-based
    lessons their frames (CRS-2, CRS-3). Opens at 00:00 KST of its week (API.md)."""

    __tablename__ = "lesson"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    week: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=1)  # order inside the week
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))  # video | frames
    duration_seconds: Mapped[int | None] = mapped_column(Integer)  # video: read from the file
    frames: Mapped[int | None] = mapped_column(Integer)  # frame-based content
    media_path: Mapped[str | None] = mapped_column(String(500))  # under LMS_MEDIA_ROOT
    media_type: Mapped[str | None] = mapped_column(String(100))  # e.g. video/mp4
    instructor_intro: Mapped[bool] = mapped_column(default=False)  # CRS-5 lesson of week 1
    opens_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attendance_deadline: Mapped[datetime] = mapped_column(UTCDateTime())  # ATT-1
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Syllabus(db.Model):
    """The syllabus (수업계획서) of a course, CRS-12: published before recruitment; learning
    and evaluation match it. Exam windows must lie inside its exam periods (EXM-2)."""

    __tablename__ = "syllabus"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), unique=True)
    instructor_name: Mapped[str | None] = mapped_column(String(100))
    goals: Mapped[str | None] = mapped_column(Text)
    textbook: Mapped[str | None] = mapped_column(Text)
    method: Mapped[str | None] = mapped_column(Text)
    # {"exams": 80, "attendance": 20, ...} — attendance never above 20 (ATT-7, GRD-1)
    evaluation: Mapped[dict | None] = mapped_column(JSON)
    weekly_topics: Mapped[list | None] = mapped_column(JSON)  # [topic of week 1, ...]
    # {"midterm": ["YYYY-MM-DD", "YYYY-MM-DD"], "final": [...]}
    exam_periods: Mapped[dict | None] = mapped_column(JSON)
    assignment_periods: Mapped[list | None] = mapped_column(JSON)
    notes: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
