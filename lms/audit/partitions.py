"""Monthly partitions of the evidence tables on PostgreSQL (REC-1 retention drops whole
months). SQLite has plain tables and nothing here does anything there.

Each partitioned table (``PARTITIONED``: table → partition column) is ``PARTITION BY RANGE``
on its time column, with a primary key (id, time) because PostgreSQL requires the partition
key in every unique constraint (ids still come from one sequence, so ``id`` alone stays
unique and the ORM maps ``id`` as the key). Partitions live in the schema ``PART_SCHEMA``,
named ``<table>_pYYYYMM`` for the KST month [1st 00:00 KST, next 1st 00:00 KST), plus
``<table>_default`` for rows outside every month partition (so an insert never fails).
"""
from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import text

from lms.audit import rules
from lms.db import db, is_sqlite

PART_SCHEMA = "evidence_partitions"
PARTITIONED = {"access_log": "at", "view_event": "at", "attempt_event": "at", "evidence_chain": "row_at"}
_NAME = re.compile(r"^(?P<table>[a-z_]+)_p(?P<y>\d{4})(?P<m>\d\d)$")


def _bound(month: date) -> str:
    """The partition bound of a KST month: its first instant (00:00 KST) as the naive UTC
    timestamp the columns store (``lms.db.UTCDateTime``)."""
    return rules.day_start(month).replace(tzinfo=None).isoformat(sep=" ")


def part_name(table: str, month: date) -> str:
    return f"{table}_p{month.year:04d}{month.month:02d}"


def month_partitions(table: str) -> dict[date, str]:
    """{first day of the month: partition name} of a table's month partitions."""
    if is_sqlite():
        return {}
    names = db.session.scalars(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
        "WHERE p.relname = :t AND n.nspname = current_schema()"), {"t": table}).all()
    out = {}
    for name in names:
        m = _NAME.match(name)
        if m and m["table"] == table:
            out[date(int(m["y"]), int(m["m"]), 1)] = name
    return out


def create_month(table: str, month: date) -> bool:
    """Create the partition of ``table`` for the KST month of ``month`` unless it exists.
    Rows of that month already caught by the default partition are moved into it in the
    same transaction (same ids and content: the chain is unaffected). True if created."""
    month = rules.month_start(month)
    if is_sqlite() or month in month_partitions(table):
        return False
    # Moving rows out of the default partition and attaching the new one must look atomic
    # to everyone: without this lock a concurrent query planned with the old partition set
    # but reading after the commit misses the moved rows, and an insert into the default
    # partition during the move makes ATTACH fail. The lock is brief and taken once per
    # table and month (partitions are normally created months ahead, empty).
    db.session.execute(text(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE'))
    if month in month_partitions(table):  # created meanwhile by another run
        return False
    col = PARTITIONED[table]
    name, lo, hi = part_name(table, month), _bound(month), _bound(rules.next_month(month))
    q = f'"{PART_SCHEMA}"."{name}"'
    db.session.execute(text(f'CREATE TABLE {q} (LIKE "{table}" INCLUDING DEFAULTS)'))
    db.session.execute(text(
        f'WITH moved AS (DELETE FROM "{PART_SCHEMA}"."{table}_default" WHERE {col} >= :lo AND {col} < :hi '
        f'RETURNING *) INSERT INTO {q} SELECT * FROM moved'), {"lo": lo, "hi": hi})
    db.session.execute(text(f'ALTER TABLE "{table}" ATTACH PARTITION {q} FOR VALUES FROM (\'{lo}\') TO (\'{hi}\')'))
    return True


def ensure_ahead(now, months_ahead: int = 3, months_back: int = 0) -> list[str]:
    """Create the month partitions of every partitioned table from ``months_back`` months
    before the current KST month to ``months_ahead`` after it. Committed. Returns the
    names created."""
    if is_sqlite():
        return []
    first = rules.month_start(rules.kst_day(now))
    for _ in range(months_back):
        first = rules.month_start(first - timedelta(days=1))
    months, m = [], first
    total = months_back + 1 + months_ahead
    for _ in range(total):
        months.append(m)
        m = rules.next_month(m)
    created = []
    for table in PARTITIONED:
        for month in months:
            if create_month(table, month):
                created.append(part_name(table, month))
    db.session.commit()
    return created


def drop(table: str, name: str) -> None:
    db.session.execute(text(f'DROP TABLE "{PART_SCHEMA}"."{name}"'))


def partition_count(name: str) -> int:
    return db.session.scalar(text(f'SELECT count(*) FROM "{PART_SCHEMA}"."{name}"'))
