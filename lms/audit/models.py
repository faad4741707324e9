from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from lms.db import UTCDateTime, db

# BIGINT on PostgreSQL; INTEGER on SQLite so the rowid autoincrements.
BigId = BigInteger().with_variant(Integer, "sqlite")


class AccessLog(db.Model):
    """Append-only access record (REC-1: access IP, access time; REC-3: look-up).

    No code path updates or deletes rows; only retention (past 5 years) removes them.
    """

    __tablename__ = "access_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(16))
    session_id: Mapped[int | None] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(45))
    device: Mapped[str | None] = mapped_column(String(128))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    method: Mapped[str | None] = mapped_column(String(8))
    path: Mapped[str | None] = mapped_column(String(512))
    detail: Mapped[str | None] = mapped_column(String(512))
    # The course a request concerned (from its path), for per-course access reports (CRS-10).
    course_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        # Keyset paging of the inspectors' search (REC-3): (time, id) after each filter.
        Index("ix_access_log_user_at_id", "user_id", "at", "id"),
        Index("ix_access_log_at_id", "at", "id"),
        Index("ix_access_log_course_at_id", "course_id", "at", "id"),
        # varchar_pattern_ops: an IP prefix (LIKE '10.1.%') uses the index on PostgreSQL
        # whatever the database's collation (equality too).
        Index("ix_access_log_ip_at_id", "ip", "at", "id", postgresql_ops={"ip": "varchar_pattern_ops"}),
    )
