from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, Index, Integer, String, UniqueConstraint
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


class AdminAction(db.Model):
    """Append-only record of an administrative change (who changed what: courses, grades,
    users, exceptions, items, make-up decisions, cheating findings). Written by
    ``lms.audit.service.record_admin_action`` inside the transaction of the change."""

    __tablename__ = "admin_action"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_username: Mapped[str | None] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(16))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))
    detail: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        Index("ix_admin_action_at", "at"),
        Index("ix_admin_action_entity", "entity", "entity_id"),
        Index("ix_admin_action_actor_at", "actor_id", "at"),
    )


class EvidenceChain(db.Model):
    """Append-only chain links, one per sealed evidence row: ``link = H(previous link of
    the same table and KST day ‖ row id ‖ row_hash)``; ``row_hash`` is the SHA-256 of the
    row's canonical content when it was sealed. Retention removes links with their rows."""

    __tablename__ = "evidence_chain"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tbl: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)  # KST day of the row's ``at``
    row_id: Mapped[int] = mapped_column(BigInteger)
    row_at: Mapped[datetime] = mapped_column(UTCDateTime())
    row_hash: Mapped[str] = mapped_column(String(64))
    link: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_evidence_chain_tbl_day_row", "tbl", "day", "row_id"),
        Index("ix_evidence_chain_row_at", "row_at"),
    )


class EvidenceDigest(db.Model):
    """Append-only daily digest of one evidence table (one per table and closed KST day,
    empty days included): row count, id range, the day's last link, and ``digest`` chained
    to the table's previous day's digest, so a dropped day breaks the series."""

    __tablename__ = "evidence_digest"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tbl: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)
    row_count: Mapped[int] = mapped_column(Integer)
    first_id: Mapped[int | None] = mapped_column(BigInteger)
    last_id: Mapped[int | None] = mapped_column(BigInteger)
    last_link: Mapped[str] = mapped_column(String(64))
    prev_digest: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("tbl", "day", name="uq_evidence_digest_tbl_day"),)


class EvidenceSealState(db.Model):
    """Bookkeeping of the sealing job per table (not evidence): the highest row id
    examined. Rows with a lower id that were not linked are reported by verify."""

    __tablename__ = "evidence_seal_state"

    tbl: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RetentionLedger(db.Model):
    """What each retention run removed (REC-1), kept forever: table, period, count,
    digest (over the removed days' digests), how (partition drop or deletes)."""

    __tablename__ = "retention_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    tbl: Mapped[str] = mapped_column(String(32))
    removed_before: Mapped[datetime] = mapped_column(UTCDateTime())
    period_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    period_to: Mapped[datetime | None] = mapped_column(UTCDateTime())
    row_count: Mapped[int] = mapped_column(BigInteger)
    digest: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(200))
    retention_years: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_retention_ledger_tbl_run", "tbl", "run_at"),)


# Compliance reports, complaints and proxy-detection indexes (issue 6, items 4–6).
from lms.audit.models_compliance import Complaint, ComplaintMessage, ComplianceReport  # noqa: E402,F401
