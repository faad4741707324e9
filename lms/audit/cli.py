"""``flask --app wsgi lms audit ...``: seal, verify, retention, partitions (REC-1…3)."""
from __future__ import annotations

from datetime import date, timedelta

import click
from flask.cli import AppGroup

audit_cli = AppGroup("audit", help="Evidence store: seal and verify the chains, retention (REC-1, REC-2).")


def _day(ctx, param, value):
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use YYYY-MM-DD") from None


@audit_cli.command("seal")
def audit_seal():
    """Link new evidence rows into the chains and close finished days (the scheduler does
    this every minute)."""
    from lms.audit.chain import seal

    for tbl, s in seal().items():
        click.echo(f"{tbl}: {s['linked']} linked, {s['closed_days']} day(s) closed"
                   + (f", {s['skipped']} row(s) dated into closed days (not linked)" if s["skipped"] else ""))


@audit_cli.command("verify")
@click.option("--from", "from_day", callback=_day, help="First KST day, YYYY-MM-DD (default: yesterday).")
@click.option("--to", "to_day", callback=_day, help="Last KST day, YYYY-MM-DD (default: --from).")
@click.option("--table", "tables", multiple=True, help="Only these evidence tables.")
def audit_verify(from_day, to_day, tables):
    """Recompute every row hash, chain link and daily digest of the days given; print the
    first row that breaks. Exit status 1 when anything is broken."""
    from lms import clock
    from lms.audit import rules
    from lms.audit.chain import verify

    from_day = from_day or (rules.kst_day(clock.now()) - timedelta(days=1))
    to_day = to_day or from_day
    if to_day < from_day:
        raise click.BadParameter("--to is before --from")
    bad = [t for t in tables if t not in rules.EVIDENCE_TABLES]
    if bad:
        raise click.BadParameter(f"unknown table(s) {', '.join(bad)}; use {', '.join(rules.EVIDENCE_TABLES)}")
    report = verify(from_day, to_day, tables or rules.EVIDENCE_TABLES)
    for t in report.tables:
        state = "BROKEN" if t.first_break else "ok"
        click.echo(f"{t.tbl}: {state} — {t.days} day(s), {t.rows} row(s) verified, "
                   f"{t.pending} not sealed yet, {t.retained} removed by retention")
        if t.first_break:
            b = t.first_break
            click.echo(f"  first broken: {b.tbl} {b.day} row {b.row_id if b.row_id is not None else '-'} "
                       f"[{b.reason}] {b.message}")
    if not report.ok:
        b = report.first_break
        click.echo(f"BROKEN: first broken row: {b.tbl} id {b.row_id} ({b.day}, {b.reason})", err=True)
        raise SystemExit(1)
    click.echo("verified: every chain and digest matches")


@audit_cli.command("retention")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
def audit_retention(dry_run):
    """Remove evidence older than LMS_RETENTION_YEARS (≥ 5) and record it in the ledger."""
    from lms import clock
    from lms.audit import retention

    out = retention.run(dry_run=dry_run)
    click.echo(f"{'DRY RUN — ' if dry_run else ''}retention {out['years']} years: removing rows before "
               f"{clock.iso(out['cutoff'])}")
    for t in out["tables"]:
        period = (f"{clock.iso(t['period_from'])} … {clock.iso(t['period_to'])}" if t["rows"] else "-")
        click.echo(f"{t['tbl']}: {t['rows']} row(s) {period} digest {t['digest'][:16]}… ({t['method']})")


@audit_cli.command("partitions")
@click.option("--ahead", type=int, default=None, help="Months ahead (default LMS_PARTITIONS_AHEAD_MONTHS).")
@click.option("--back", type=int, default=0, help="Months back (e.g. after importing old logs).")
def audit_partitions(ahead, back):
    """PostgreSQL: create the log tables' month partitions ahead (no-op on SQLite)."""
    from flask import current_app

    from lms import clock
    from lms.audit.partitions import ensure_ahead

    ahead = current_app.config.get("PARTITIONS_AHEAD_MONTHS", 3) if ahead is None else ahead
    created = ensure_ahead(clock.now(), ahead, back)
    click.echo(f"created {len(created)} partition(s)" + (": " + ", ".join(created) if created else ""))
