"""Periodic jobs of the evidence store (run by ``flask lms scheduler`` through RQ)."""
from __future__ import annotations

from flask import current_app

from lms import clock
from lms.audit import chain, partitions, retention


def seal_evidence() -> dict:
    """REC-1, REC-3: link the evidence rows of the last minute and close finished days."""
    return chain.seal()


def create_partitions() -> list[str]:
    """PostgreSQL: month partitions of the log tables created ahead (no-op on SQLite)."""
    return partitions.ensure_ahead(clock.now(), current_app.config.get("PARTITIONS_AHEAD_MONTHS", 3))


def run_retention() -> dict:
    """REC-1, REC-2: remove evidence past its retention period; recorded in the ledger."""
    return retention.run()


# seal every minute; partitions and retention daily (both are idempotent).
PERIODIC = [(seal_evidence, 60), (create_partitions, 86400), (run_retention, 86400)]
