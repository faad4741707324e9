"""Retention (REC-1, REC-2): remove access logs, viewing logs and exam/grading evidence
(``rules.RETENTION_TABLES``) once older than ``LMS_RETENTION_YEARS`` (5, only upward),
never earlier, and record every run in the retention ledger (kept forever). Nothing else
is ever removed: learner registers and their supporting data are permanent (REC-2).

PostgreSQL: month partitions wholly older than the cutoff are dropped (instant), the
rest of the expired rows (the month straddling the cutoff, the default partition) are
deleted in batches. SQLite: deletes in batches. The chain links of removed rows go with
them (whole KST days only, so the straddling day's chain stays verifiable); daily digests
stay forever and the ledger's digest is computed over the removed days' digests.
"""
from __future__ import annotations

from datetime import datetime

from flask import current_app
from sqlalchemy import func, select, text

from lms import clock
from lms.audit import partitions, rules
from lms.audit.chain import SEAL_LOCK, evidence_table
from lms.audit.models import EvidenceChain, EvidenceDigest, RetentionLedger
from lms.db import advisory_lock, db, is_sqlite

BATCH = 5000


def _delete_batches(table, cond) -> int:
    removed = 0
    while True:
        ids = db.session.scalars(select(table.c.id).where(cond).limit(BATCH)).all()
        if not ids:
            return removed
        db.session.execute(table.delete().where(table.c.id.in_(ids)))
        removed += len(ids)


def run(now: datetime | None = None, *, dry_run: bool = False) -> dict:
    """One retention run. Returns {"cutoff", "years", "dry_run", "tables": [{tbl, rows,
    period_from, period_to, digest, method}]}; without ``dry_run`` each table's removal and
    its ledger row are committed together."""
    now = now or clock.now()
    years = rules.retention_years(current_app.config.get("RETENTION_YEARS", rules.RETENTION_YEARS))
    cutoff = rules.retention_cutoff(now, years)
    chain_cut = rules.day_start(rules.kst_day(cutoff))  # links: whole KST days only
    out = {"cutoff": cutoff, "years": years, "dry_run": dry_run, "tables": []}
    for tbl in rules.RETENTION_TABLES:
        table = evidence_table(tbl)
        if not dry_run:
            advisory_lock(SEAL_LOCK)  # no sealing while rows go
        n, lo, hi, first_id, last_id = db.session.execute(
            select(func.count(), func.min(table.c.at), func.max(table.c.at), func.min(table.c.id),
                   func.max(table.c.id)).where(table.c.at < cutoff)).one()
        day_digests = [] if not n else db.session.scalars(
            select(EvidenceDigest.digest).where(EvidenceDigest.tbl == tbl,
                                                EvidenceDigest.day >= rules.kst_day(lo),
                                                EvidenceDigest.day <= rules.kst_day(hi))
            .order_by(EvidenceDigest.day)).all()
        digest = rules.removal_digest(tbl, n, first_id, last_id, day_digests)
        methods = []
        if not is_sqlite():
            whole = [name for month, name in sorted(partitions.month_partitions(tbl).items())
                     if rules.day_start(rules.next_month(month)) <= cutoff]
            if whole:
                methods.append("drop partitions " + ", ".join(whole))
                if not dry_run:
                    for name in whole:
                        partitions.drop(tbl, name)
        deleted = 0 if dry_run else _delete_batches(table, table.c.at < cutoff)
        if deleted or (dry_run and n and not methods):
            methods.append("delete in batches")
        item = {"tbl": tbl, "rows": n, "period_from": lo, "period_to": hi, "digest": digest,
                "method": "; ".join(methods) or "nothing expired"}
        out["tables"].append(item)
        if not dry_run:
            db.session.add(RetentionLedger(run_at=now, tbl=tbl, removed_before=cutoff, period_from=lo,
                                           period_to=hi, row_count=n, digest=digest,
                                           method=item["method"][:200], retention_years=years))
            db.session.commit()
    if not dry_run:
        advisory_lock(SEAL_LOCK)
        out["chain_partitions_dropped"] = _drop_chain_partitions(chain_cut)
        chain = EvidenceChain.__table__
        out["chain_links_deleted"] = _delete_batches(
            chain, chain.c.tbl.in_(rules.RETENTION_TABLES) & (chain.c.row_at < chain_cut))
        db.session.commit()
    else:
        db.session.rollback()
    return out


def _drop_chain_partitions(chain_cut: datetime) -> list[str]:
    """Drop the chain partitions wholly before ``chain_cut`` that hold links of retention
    tables only (a partition with links of another table, e.g. admin_action, stays and
    loses its expired links by deletes)."""
    if is_sqlite():
        return []
    dropped = []
    for month, name in sorted(partitions.month_partitions("evidence_chain").items()):
        if rules.day_start(rules.next_month(month)) > chain_cut:
            continue
        left = db.session.scalar(text(f'SELECT 1 FROM "{partitions.PART_SCHEMA}"."{name}" '
                                      'WHERE NOT (tbl = ANY(:t)) LIMIT 1'), {"t": list(rules.RETENTION_TABLES)})
        if left is None:
            partitions.drop("evidence_chain", name)
            dropped.append(name)
    return dropped


def ledger(limit: int = 100) -> list[RetentionLedger]:
    return db.session.scalars(select(RetentionLedger).order_by(RetentionLedger.id.desc()).limit(limit)).all()

