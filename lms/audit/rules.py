"""Evidence rules, pure: canonical row hashes and chain links, KST days, and retention
periods (REC-1, REC-2). Plain values in, plain values out; ``now`` is always passed in."""
from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta, timezone

from lms.clock import KST, kst_midnight


RETENTION_YEARS = 5  # REC-1: access/viewing logs, exam and grading evidence kept 5 years
# REC-2: the learner register (학적부) and its supporting data (users, enrolments, progress,
# attempts and scores, attendance records) are kept permanently: retention only ever
# touches RETENTION_TABLES.
# The evidence tables chained and verified (in this order).
EVIDENCE_TABLES = ("access_log", "view_event", "attempt_event", "admin_action")
# The evidence tables retention removes after RETENTION_YEARS (REC-1).
RETENTION_TABLES = ("access_log", "view_event", "attempt_event")
# Rows are sealed once they are this old: a transaction that inserted evidence is expected
# to have committed by then (see docs/ARCHITECTURE.md, "Evidence chain").
SEAL_LAG = timedelta(seconds=60)


def retention_years(value) -> int:
    """The configured retention in years: 5 or more (REC-1: configurable only upward)."""
    try:
        years = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"LMS_RETENTION_YEARS must be a whole number of years, not {value!r}") from None
    if years < RETENTION_YEARS:
        raise ValueError(f"LMS_RETENTION_YEARS={years} is below the legal {RETENTION_YEARS} years (REC-1)")
    return years


def retention_cutoff(now: datetime, years: int = RETENTION_YEARS) -> datetime:
    """REC-1: rows whose ``at`` is strictly before this instant are older than ``years``
    years and may be removed; a row exactly ``years`` old stays. Calendar years in KST
    (29 February → 28 February)."""
    years = retention_years(years)
    local = now.astimezone(KST)
    try:
        back = local.replace(year=local.year - years)
    except ValueError:  # 29 February
        back = local.replace(year=local.year - years, day=28)
    return back.astimezone(timezone.utc)


def kst_day(at: datetime) -> date:
    return at.astimezone(KST).date()


def day_start(day: date) -> datetime:
    """The UTC instant a KST day begins."""
    return kst_midnight(day).astimezone(timezone.utc)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _plain(value):
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


def canonical(table: str, row: dict) -> bytes:
    """The canonical bytes of an evidence row: table name and every column (sorted),
    datetimes as UTC with microseconds, JSON values with sorted keys."""
    return json.dumps({"table": table, "row": {k: _plain(v) for k, v in sorted(row.items())}},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def row_hash(table: str, row: dict) -> str:
    return hashlib.sha256(canonical(table, row)).hexdigest()


def genesis(table: str, day: date) -> str:
    """The link before the first row of a table's day."""
    return hashlib.sha256(f"genesis|{table}|{day.isoformat()}".encode()).hexdigest()


def link(previous: str, row_id: int, rhash: str) -> str:
    return hashlib.sha256(f"{previous}|{row_id}|{rhash}".encode()).hexdigest()


def digest_genesis(table: str) -> str:
    return hashlib.sha256(f"digest-genesis|{table}".encode()).hexdigest()


def day_digest(previous: str, table: str, day: date, count: int, first_id, last_id, last_link: str) -> str:
    """The daily digest, chained to the table's previous day's digest."""
    return hashlib.sha256(f"{previous}|{table}|{day.isoformat()}|{count}|{first_id}|{last_id}|{last_link}"
                          .encode()).hexdigest()


def removal_digest(table: str, count: int, first_id, last_id, day_digests: list[str]) -> str:
    """The digest the retention ledger records for what one run removed from a table:
    over the count, the id range and the removed days' digests (in day order)."""
    h = hashlib.sha256(f"removed|{table}|{count}|{first_id}|{last_id}".encode())
    for d in day_digests:
        h.update(b"|" + d.encode())
    return h.hexdigest()
