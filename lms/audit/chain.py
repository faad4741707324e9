"""The evidence chain (REC-1, REC-3): sealing new evidence rows into per-table, per-KST-day
hash chains, closing days with chained daily digests, and verifying both.

Hot paths (the access log on every request, heartbeats, answer saves) only INSERT their row;
nothing here runs in their transaction. ``seal`` (every minute, ``lms/audit/jobs.py``) walks
the rows inserted since its last run in id order and appends one ``evidence_chain`` link per
row; ``verify`` recomputes each row's hash from its content, each link from the previous
link, and each daily digest, and names the first row that breaks.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from lms import clock
from lms.audit import rules
from lms.audit.models import EvidenceChain, EvidenceDigest, EvidenceSealState, RetentionLedger
from lms.db import advisory_lock, db

BATCH = 5000
SEAL_LOCK = "evidence-seal"


def evidence_table(name: str):
    """The Table of an evidence table (importing the models that define it)."""
    import lms.attendance.models  # noqa: F401  (view_event)
    import lms.exams.models  # noqa: F401  (attempt_event)

    if name not in rules.EVIDENCE_TABLES:
        raise ValueError(f"not an evidence table: {name}")
    return db.metadata.tables[name]


def _row_dict(table, row) -> dict:
    m = row._mapping
    return {c.name: m[c] for c in table.columns}


# --- sealing ---------------------------------------------------------------------------

def seal(now: datetime | None = None) -> dict[str, dict]:
    """Link every evidence row older than ``SEAL_LAG`` that is not linked yet, then close
    (digest) every day that ended more than ``SEAL_LAG`` ago. One sealer at a time (advisory
    lock); committed at the end. Returns {table: {"linked", "skipped", "closed_days"}}."""
    now = now or clock.now()
    cutoff = now - rules.SEAL_LAG
    advisory_lock(SEAL_LOCK)
    out = {tbl: _seal_table(tbl, cutoff, now) for tbl in rules.EVIDENCE_TABLES}
    db.session.commit()
    return out


def _day_range(chain, day: date) -> tuple:
    """``row_at`` bounds of a KST day: lets PostgreSQL prune the chain's month partitions."""
    return (chain.c.row_at >= rules.day_start(day), chain.c.row_at < rules.day_start(day + timedelta(days=1)))


def _last_closed(tbl: str) -> date | None:
    return db.session.scalar(select(func.max(EvidenceDigest.day)).where(EvidenceDigest.tbl == tbl))


def _seal_table(tbl: str, cutoff: datetime, now: datetime) -> dict:
    table = evidence_table(tbl)
    chain = EvidenceChain.__table__
    state = db.session.get(EvidenceSealState, tbl)
    if state is None:
        state = EvidenceSealState(tbl=tbl, last_id=0)
        db.session.add(state)
    last_closed = _last_closed(tbl)
    prev: dict[date, str] = {}
    linked = skipped = 0
    while True:
        rows = db.session.execute(select(table).where(table.c.id > state.last_id)
                                  .order_by(table.c.id).limit(BATCH)).all()
        links, stop = [], False
        for r in rows:
            row = _row_dict(table, r)
            if row["at"] > cutoff:
                stop = True  # rows from here on may still have uncommitted predecessors
                break
            day = rules.kst_day(row["at"])
            state.last_id = row["id"]
            if last_closed is not None and day <= last_closed:
                # A row dated into a day already closed: it is NOT linked; verify reports it.
                skipped += 1
                continue
            if day not in prev:
                prev[day] = db.session.scalar(
                    select(chain.c.link).where(chain.c.tbl == tbl, chain.c.day == day, *_day_range(chain, day))
                    .order_by(chain.c.row_id.desc()).limit(1)) or rules.genesis(tbl, day)
            h = rules.row_hash(tbl, row)
            prev[day] = rules.link(prev[day], row["id"], h)
            links.append({"tbl": tbl, "day": day, "row_id": row["id"], "row_at": row["at"],
                          "row_hash": h, "link": prev[day]})
        if links:
            db.session.execute(chain.insert(), links)
            linked += len(links)
        if stop or len(rows) < BATCH:
            break
    state.sealed_at = now
    closed = _close_days(tbl, last_closed, rules.kst_day(cutoff) - timedelta(days=1), now)
    return {"linked": linked, "skipped": skipped, "closed_days": closed}


def _close_days(tbl: str, last_closed: date | None, close_to: date, now: datetime) -> int:
    """Digest every day from the day after ``last_closed`` (or the table's first linked
    day) through ``close_to``, empty days included, each chained to the one before."""
    chain = EvidenceChain.__table__
    if last_closed is None:
        start = db.session.scalar(select(func.min(chain.c.day)).where(chain.c.tbl == tbl))
        if start is None:
            return 0
        previous = rules.digest_genesis(tbl)
    else:
        start = last_closed + timedelta(days=1)
        previous = db.session.scalar(select(EvidenceDigest.digest).where(
            EvidenceDigest.tbl == tbl, EvidenceDigest.day == last_closed))
    if start > close_to:
        return 0
    stats = {d: (n, lo, hi) for d, n, lo, hi in db.session.execute(
        select(chain.c.day, func.count(), func.min(chain.c.row_id), func.max(chain.c.row_id))
        .where(chain.c.tbl == tbl, chain.c.day >= start, chain.c.day <= close_to,
               chain.c.row_at >= rules.day_start(start),
               chain.c.row_at < rules.day_start(close_to + timedelta(days=1)))
        .group_by(chain.c.day))}
    digests, day = [], start
    while day <= close_to:
        n, lo, hi = stats.get(day, (0, None, None))
        last_link = rules.genesis(tbl, day) if not n else db.session.scalar(
            select(chain.c.link).where(chain.c.tbl == tbl, chain.c.day == day, chain.c.row_id == hi,
                                       *_day_range(chain, day)))
        digest = rules.day_digest(previous, tbl, day, n, lo, hi, last_link)
        digests.append({"tbl": tbl, "day": day, "row_count": n, "first_id": lo, "last_id": hi,
                        "last_link": last_link, "prev_digest": previous, "digest": digest,
                        "closed_at": now})
        previous, day = digest, day + timedelta(days=1)
    db.session.execute(EvidenceDigest.__table__.insert(), digests)
    return len(digests)


# --- verification ----------------------------------------------------------------------

@dataclass
class Break:
    """The first place a table's evidence stops matching its chain."""

    tbl: str
    day: date
    row_id: int | None
    reason: str  # edited | deleted | inserted | link_altered | missing_digest | digest_mismatch
    message: str

    def as_dict(self) -> dict:
        d = asdict(self)
        d["day"] = self.day.isoformat()
        return d


@dataclass
class TableReport:
    tbl: str
    days: int = 0
    rows: int = 0
    pending: int = 0  # inserted less than SEAL_LAG (+ the job's interval) ago: not sealed yet
    retained: int = 0  # links whose rows retention removed (recorded in the ledger)
    first_break: Break | None = None


@dataclass
class Report:
    from_day: date
    to_day: date
    tables: list[TableReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.first_break is None for t in self.tables)

    @property
    def first_break(self) -> Break | None:
        breaks = [t.first_break for t in self.tables if t.first_break]
        order = {t: i for i, t in enumerate(rules.EVIDENCE_TABLES)}
        return min(breaks, key=lambda b: (b.day, order.get(b.tbl, 99), b.row_id or 0), default=None)


def verify(from_day: date, to_day: date, tables=rules.EVIDENCE_TABLES) -> Report:
    """Recompute the chains and digests of every table for the KST days ``from_day`` …
    ``to_day`` (inclusive); each table stops at its first break."""
    report = Report(from_day, to_day)
    for tbl in tables:
        report.tables.append(_verify_table(tbl, from_day, to_day))
    db.session.rollback()  # read-only; end the snapshot
    return report


def _verify_table(tbl: str, from_day: date, to_day: date) -> TableReport:
    rep = TableReport(tbl)
    state = db.session.get(EvidenceSealState, tbl)
    watermark = state.last_id if state else 0
    last_closed = _last_closed(tbl)
    first_digest_day = db.session.scalar(select(func.min(EvidenceDigest.day)).where(EvidenceDigest.tbl == tbl))
    horizon = db.session.scalar(select(func.max(RetentionLedger.removed_before)).where(RetentionLedger.tbl == tbl))
    digests = {d.day: d for d in db.session.scalars(select(EvidenceDigest).where(
        EvidenceDigest.tbl == tbl, EvidenceDigest.day >= from_day - timedelta(days=1),
        EvidenceDigest.day <= to_day))}
    day = from_day
    while day <= to_day and rep.first_break is None:
        rep.days += 1
        rep.first_break = _verify_day(tbl, day, rep, watermark, last_closed, first_digest_day, horizon, digests)
        day += timedelta(days=1)
    return rep


def _verify_day(tbl, day, rep, watermark, last_closed, first_digest_day, horizon, digests) -> Break | None:
    table = evidence_table(tbl)
    chain = EvidenceChain.__table__
    start, end = rules.day_start(day), rules.day_start(day + timedelta(days=1))
    closed = last_closed is not None and day <= last_closed
    wholly_retained = horizon is not None and end <= horizon
    if wholly_retained:
        # Retention removed this day's rows and links; its digest stays (and the ledger).
        rep.retained += 1
        if closed and day >= (first_digest_day or day) and day not in digests:
            return Break(tbl, day, None, "missing_digest", f"{tbl}: no daily digest for {day} (the day was dropped)")
        return None
    links = iter(db.session.execute(
        select(chain.c.row_id, chain.c.row_at, chain.c.row_hash, chain.c.link)
        .where(chain.c.tbl == tbl, chain.c.day == day, *_day_range(chain, day)).order_by(chain.c.row_id)).all())
    rows = iter(db.session.execute(select(table).where(table.c.at >= start, table.c.at < end)
                                   .order_by(table.c.id).execution_options(yield_per=5000)))
    lk = next(links, None)
    rw = next(rows, None)
    prev = rules.genesis(tbl, day)
    n_links, last_link_id = 0, None
    while lk is not None or rw is not None:
        row = _row_dict(table, rw) if rw is not None else None
        if lk is not None and (row is None or lk.row_id < row["id"]):
            if lk.link != rules.link(prev, lk.row_id, lk.row_hash):
                return Break(tbl, day, lk.row_id, "link_altered", f"{tbl} row {lk.row_id}: its chain link was altered")
            if horizon is not None and lk.row_at < horizon:
                rep.retained += 1
            else:
                return Break(tbl, day, lk.row_id, "deleted",
                             f"{tbl} row {lk.row_id}: sealed in the chain but missing (deleted, or its time was changed)")
            prev, n_links, last_link_id = lk.link, n_links + 1, lk.row_id
            lk = next(links, None)
        elif lk is None or row["id"] < lk.row_id:
            if not closed and row["id"] > watermark:
                rep.pending += 1
            else:
                return Break(tbl, day, row["id"], "inserted",
                             f"{tbl} row {row['id']}: not in the chain (inserted or re-dated after sealing)")
            rw = next(rows, None)
        else:
            if rules.row_hash(tbl, row) != lk.row_hash:
                return Break(tbl, day, row["id"], "edited", f"{tbl} row {row['id']}: content differs from when it was sealed")
            if lk.link != rules.link(prev, lk.row_id, lk.row_hash):
                return Break(tbl, day, lk.row_id, "link_altered", f"{tbl} row {lk.row_id}: its chain link was altered")
            prev, n_links, last_link_id = lk.link, n_links + 1, lk.row_id
            rep.rows += 1
            lk, rw = next(links, None), next(rows, None)
    if not closed:
        return None
    d = digests.get(day)
    if d is None:
        if first_digest_day is not None and day >= first_digest_day:
            return Break(tbl, day, None, "missing_digest", f"{tbl}: no daily digest for {day} (the day was dropped)")
        return None
    if d.row_count != n_links or d.last_link != prev or d.last_id != last_link_id:
        return Break(tbl, day, d.last_id if n_links < d.row_count else last_link_id, "digest_mismatch",
                     f"{tbl} {day}: the daily digest records {d.row_count} rows (last {d.last_id}), "
                     f"the chain has {n_links} (last {last_link_id})")
    before = digests.get(day - timedelta(days=1))
    if day == first_digest_day:
        expected_prev = rules.digest_genesis(tbl)
    elif before is not None:
        expected_prev = before.digest
    else:
        return Break(tbl, day - timedelta(days=1), None, "missing_digest",
                     f"{tbl}: no daily digest for {day - timedelta(days=1)} (the day was dropped)")
    if d.prev_digest != expected_prev or d.digest != rules.day_digest(
            d.prev_digest, tbl, day, d.row_count, d.first_id, d.last_id, d.last_link):
        return Break(tbl, day, None, "digest_mismatch", f"{tbl} {day}: the daily digest was altered")
    return None
