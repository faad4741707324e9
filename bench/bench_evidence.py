"""Benchmark: the evidence store at inspection scale (REC-1, REC-3, REC-6).

    .venv/bin/python bench/bench_evidence.py [--rows 5000000 | --scale 1.0] [--learners 10000]
        [--url postgresql://…/existing_db --skip-generate] [--keep]

One command: a fresh PostgreSQL database (``LMS_ENV=production``, migrated; dropped at the
end unless ``--keep``), five years of logs for 10,000 learners written by
``bench/gen_evidence.py`` (COPY, month partitions), then, timed in this process through
SQLAlchemy on the app's own tables and indexes:

1. one learner's term (half-year) of logs: access log (``ix_access_log_user_at_id``), viewing
   log (``ix_view_event_learner_at_id``), exam evidence (``ix_attempt_event_learner_at_id``);
   target < 100 ms;
2. one page (100 rows) of filtered searches with keyset cursors ``(at, id) > (…)``, first
   page and the 6th page — the queries the inspectors' API (GET /logs/access, /logs/views)
   runs; each names the index serving it; target < 200 ms;
3. exports streamed (server-side cursor, ``yield_per``) into CSV: a course's term of viewing
   and access logs, and one whole month of the viewing log for a throughput figure;
   rows/s and the process's memory growth; target ≥ 50,000 rows/s, flat memory;
4. sealing one KST day of every table into the chain, then ``verify`` of that day;
5. retention of the oldest month: ``lms.audit.retention.run`` with the clock set so exactly
   that month is past 5 years — partitions dropped, ledger written; target < 1 s.

Figures go to docs/PERFORMANCE.md. Exit status 2 when a correctness check fails.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import random
import statistics
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (DEFAULT_PG_ADMIN_URL, DEFAULT_REDIS_URL, BenchDatabase, current_rss_mib,  # noqa: E402
                    load_average, log, machine_info, peak_rss_since_reset_mib, reset_peak_rss)

import gen_evidence  # noqa: E402

END = date(2026, 11, 1)
TERM = 52  # the first half of 2026 (KST), the last full term in the data
PAGE = 100


class Sink(io.TextIOBase):
    def __init__(self):
        self.bytes = 0

    def write(self, s):
        self.bytes += len(s)
        return len(s)


def ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def summary(values: list[float]) -> dict:
    values = sorted(values)
    return {"n": len(values), "median_ms": round(statistics.median(values), 2),
            "p95_ms": round(values[max(0, int(len(values) * 0.95) - 1)], 2), "max_ms": round(values[-1], 2)}


def learner_term(db, tables, learners: int, rng) -> dict:
    from sqlalchemy import select

    a, v, e = tables["access_log"], tables["view_event"], tables["attempt_event"]
    ts, te = gen_evidence.term_bounds(TERM)
    times, rows = [], []
    for _ in range(30):
        learner = 1 + int(rng.random() * learners)
        t0 = time.perf_counter()
        n = len(db.session.execute(select(a).where(a.c.user_id == learner, a.c.at >= ts, a.c.at < te)
                                   .order_by(a.c.at, a.c.id)).all())
        n += len(db.session.execute(select(v).where(v.c.learner_id == learner, v.c.at >= ts, v.c.at < te)
                                    .order_by(v.c.at, v.c.id)).all())
        n += len(db.session.execute(select(e).where(e.c.learner_id == learner, e.c.at >= ts, e.c.at < te)
                                    .order_by(e.c.at, e.c.id)).all())
        times.append(ms(t0))
        rows.append(n)
    return {**summary(times), "rows_median": statistics.median(rows), "rows_max": max(rows),
            "indexes": ["ix_access_log_user_at_id", "ix_view_event_learner_at_id", "ix_attempt_event_learner_at_id"]}


def searches(learners: int):
    """(name, index, table, condition factory(rng) → list of where clauses)."""
    from lms.audit import rules

    ts, te = gen_evidence.term_bounds(TERM)
    week0 = rules.day_start(date(2026, 4, 6))

    def user_year(t, rng):
        u = 1 + int(rng.random() * learners)
        return [t.c.user_id == u, t.c.at >= te - timedelta(days=365), t.c.at < te]

    def course_term(t, rng):
        c = gen_evidence.course_of(1 + int(rng.random() * learners), TERM, 0)
        return [t.c.course_id == c, t.c.at >= ts, t.c.at < te]

    def week_all(t, rng):
        d = week0 + timedelta(days=int(rng.random() * 60))
        return [t.c.at >= d, t.c.at < d + timedelta(days=7)]

    def ip_term(t, rng):
        u = 1 + int(rng.random() * learners)
        return [t.c.ip == gen_evidence._ip(u), t.c.at >= ts, t.c.at < te]

    def role_month(t, rng):
        d = week0 + timedelta(days=int(rng.random() * 60))
        return [t.c.role == "instructor", t.c.at >= d, t.c.at < d + timedelta(days=30)]

    def learner_course_term(t, rng):
        u = 1 + int(rng.random() * learners)
        return [t.c.learner_id == u, t.c.course_id == gen_evidence.course_of(u, TERM, 1),
                t.c.at >= ts, t.c.at < te]

    def exam(t, rng):
        c = 1 + int(rng.random() * gen_evidence.COURSES)
        return [t.c.exam_id == c * 10 + TERM % 10, t.c.at >= ts, t.c.at < te]

    return [
        ("access: one user, one year", "ix_access_log_user_at_id", "access_log", user_year),
        ("access: one course, one term", "ix_access_log_course_at_id", "access_log", course_term),
        ("access: everyone, one week", "ix_access_log_at_id", "access_log", week_all),
        ("access: one IP, one term", "ix_access_log_ip_at_id", "access_log", ip_term),
        ("access: role instructor, 30 days", "ix_access_log_at_id (+ filter)", "access_log", role_month),
        ("views: one course, one term", "ix_view_event_course_at_id", "view_event", course_term),
        ("views: one learner in one course, one term", "ix_view_event_learner_at_id (+ filter)", "view_event",
         learner_course_term),
        ("views: everyone, one week", "ix_view_event_at_id", "view_event", week_all),
        ("exam evidence: one exam, one term", "ix_attempt_event_exam_at_id", "attempt_event", exam),
    ]


def search_pages(db, tables, learners: int, rng) -> list[dict]:
    from sqlalchemy import select, tuple_

    out = []
    for name, index, tname, cond in searches(learners):
        t = tables[tname]
        first, sixth, sizes = [], [], []
        for _ in range(10):
            where = cond(t, rng)
            cursor = None
            for page in range(6):
                q = select(t).where(*where)
                if cursor is not None:
                    q = q.where(tuple_(t.c.at, t.c.id) > tuple_(*cursor))
                t0 = time.perf_counter()
                rows = db.session.execute(q.order_by(t.c.at, t.c.id).limit(PAGE)).all()
                took = ms(t0)
                if page == 0:
                    first.append(took)
                    sizes.append(len(rows))
                if page == 5:
                    sixth.append(took)
                if len(rows) < PAGE:
                    break
                cursor = (rows[-1].at, rows[-1].id)
        out.append({"search": name, "index": index, "first_page": summary(first),
                    "sixth_page": summary(sixth) if sixth else None,
                    "first_page_rows_median": statistics.median(sizes)})
    return out


def export(db, table, where, label: str) -> dict:
    from sqlalchemy import select

    sink = Sink()
    writer = csv.writer(sink)
    cols = [c.name for c in table.columns]
    sink.write("\ufeff")
    writer.writerow(cols)
    rss0 = current_rss_mib()
    reset_peak_rss()
    n = 0
    t0 = time.perf_counter()
    with db.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=10000).execute(
            select(table).where(*where).order_by(table.c.at, table.c.id))
        for row in result:
            writer.writerow(row)
            n += 1
    took = time.perf_counter() - t0
    return {"export": label, "rows": n, "seconds": round(took, 3), "rows_per_s": round(n / took) if took else None,
            "csv_mib": round(sink.bytes / 2**20, 1), "rss_before_mib": round(rss0, 1),
            "rss_peak_mib": round(peak_rss_since_reset_mib(), 1)}


def copy_export(db, sql: str, label: str) -> dict:
    """The same slice through PostgreSQL's ``COPY (SELECT …) TO STDOUT (FORMAT csv)``,
    streamed in blocks (times converted to KST by the database)."""
    sink_bytes = rows = 0
    rss0 = current_rss_mib()
    reset_peak_rss()
    t0 = time.perf_counter()
    raw = db.engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cur:
            with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
                for block in copy:
                    sink_bytes += len(block)
                    rows += bytes(block).count(b"\n")
        raw.driver_connection.rollback()
    finally:
        raw.close()
    took = time.perf_counter() - t0
    rows -= 1  # the header
    return {"export": label + " (COPY … TO STDOUT)", "rows": rows, "seconds": round(took, 3),
            "rows_per_s": round(rows / took) if took else None, "csv_mib": round(sink_bytes / 2**20, 1),
            "rss_before_mib": round(rss0, 1), "rss_peak_mib": round(peak_rss_since_reset_mib(), 1)}


def _kst_cols(table) -> str:
    return ", ".join(f"to_char(({c.name} AT TIME ZONE 'UTC') AT TIME ZONE 'Asia/Seoul', "
                     f"'YYYY-MM-DD HH24:MI:SS.US') AS {c.name}" if c.name == "at" else c.name
                     for c in table.columns)


def exports(db, tables, learners, rng) -> list[dict]:
    from lms.audit import rules

    ts, te = gen_evidence.term_bounds(TERM)
    v, a = tables["view_event"], tables["access_log"]
    course = gen_evidence.course_of(1 + int(rng.random() * learners), TERM, 0)
    m0, m1 = rules.day_start(date(2026, 5, 1)), rules.day_start(date(2026, 6, 1))
    def naive(t):
        return t.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")

    return [
        export(db, v, [v.c.course_id == course, v.c.at >= ts, v.c.at < te], f"views of course {course}, one term"),
        copy_export(db, f"SELECT {_kst_cols(v)} FROM view_event WHERE course_id = {course} AND at >= '{naive(ts)}' "
                        f"AND at < '{naive(te)}' ORDER BY at, id", f"views of course {course}, one term"),
        export(db, a, [a.c.course_id == course, a.c.at >= ts, a.c.at < te], f"access log of course {course}, one term"),
        export(db, v, [v.c.at >= m0, v.c.at < m1], "views, one whole month (all courses)"),
        export(db, a, [a.c.at >= m0, a.c.at < m1], "access log, one whole month (all users)"),
        copy_export(db, f"SELECT {_kst_cols(v)} FROM view_event WHERE at >= '{naive(m0)}' AND at < '{naive(m1)}' "
                        "ORDER BY at, id", "views, one whole month (all courses)"),
        copy_export(db, f"SELECT {_kst_cols(a)} FROM access_log WHERE at >= '{naive(m0)}' AND at < '{naive(m1)}' "
                        "ORDER BY at, id", "access log, one whole month (all users)"),
    ]


def seal_and_verify(db, tables, day: date) -> dict:
    from sqlalchemy import func, select

    from lms.audit import chain, rules
    from lms.audit.models import EvidenceSealState

    start, end = rules.day_start(day), rules.day_start(day + timedelta(days=1))
    rows = 0
    for name in rules.EVIDENCE_TABLES:
        t = tables[name]
        lo = db.session.scalar(select(func.min(t.c.id)).where(t.c.at >= start, t.c.at < end))
        hi = db.session.scalar(select(func.max(t.c.id)))
        last = (lo - 1) if lo is not None else (hi or 0)
        db.session.merge(EvidenceSealState(tbl=name, last_id=last))
        rows += db.session.scalar(select(func.count()).select_from(t).where(t.c.at >= start, t.c.at < end))
    db.session.commit()
    t0 = time.perf_counter()
    sealed = chain.seal(now=end + rules.SEAL_LAG + timedelta(seconds=1))
    seal_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = chain.verify(day, day)
    verify_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    chain.verify(day, day)
    verify_again_s = time.perf_counter() - t0
    linked = sum(s["linked"] for s in sealed.values())
    return {"day": day.isoformat(), "rows": rows, "linked": linked, "seal_s": round(seal_s, 3),
            "seal_rows_per_s": round(linked / seal_s) if seal_s else None, "verify_s": round(verify_s, 3), "verify_again_s": round(verify_again_s, 3),
            "verify_rows_per_s": round(sum(t.rows for t in report.tables) / verify_s) if verify_s else None,
            "ok": report.ok and linked == rows}


def drop_oldest_month(db, first_month: date) -> dict:
    from lms.audit import partitions, retention, rules

    second = rules.next_month(first_month)
    cutoff = rules.day_start(second)
    now = cutoff.astimezone(rules.KST).replace(year=cutoff.astimezone(rules.KST).year + 5)
    assert rules.retention_cutoff(now) == cutoff
    before = {t: sorted(partitions.month_partitions(t)) for t in ("access_log", "view_event", "attempt_event")}
    t0 = time.perf_counter()
    dry = retention.run(now=now, dry_run=True)
    dry_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = retention.run(now=now)
    run_s = time.perf_counter() - t0
    after = {t: sorted(partitions.month_partitions(t)) for t in before}
    ok = all(first_month in before[t] and first_month not in after[t] and second in after[t] for t in before)
    ok = ok and all(t["rows"] == d["rows"] for t, d in zip(out["tables"], dry["tables"]))
    return {"month": first_month.isoformat()[:7], "cutoff": cutoff.isoformat(),
            "rows_removed": sum(t["rows"] for t in out["tables"]),
            "by_table": {t["tbl"]: {"rows": t["rows"], "method": t["method"]} for t in out["tables"]},
            "dry_run_s": round(dry_s, 3), "run_s": round(run_s, 3), "ok": ok}


def measure(args, url: str | None, gen: dict | None) -> dict:
    from lms import create_app
    from lms.db import db

    app = create_app()
    rng = random.Random(7)
    out = {"generated": gen}
    with app.app_context():
        from lms.audit.chain import evidence_table

        tables = {n: evidence_table(n) for n in ("access_log", "view_event", "attempt_event", "admin_action")}
        from sqlalchemy import func, select

        out["rows"] = {n: db.session.scalar(select(func.count()).select_from(t)) for n, t in tables.items()}
        log(f"rows: {out['rows']}")
        log("1. one learner's term")
        out["learner_term"] = learner_term(db, tables, args.learners, rng)
        log(json.dumps(out["learner_term"]))
        log("2. search pages")
        out["search"] = search_pages(db, tables, args.learners, rng)
        for s in out["search"]:
            log(json.dumps(s, ensure_ascii=False))
        db.session.rollback()
        log("3. exports")
        out["exports"] = exports(db, tables, args.learners, rng)
        for e in out["exports"]:
            log(json.dumps(e, ensure_ascii=False))
        log("4. seal and verify one day")
        out["chain_day"] = seal_and_verify(db, tables, args.day)
        log(json.dumps(out["chain_day"]))
        if not args.skip_retention:
            log("5. retention of the oldest month")
            from lms.audit import partitions

            first = min(partitions.month_partitions("access_log"))
            out["retention"] = drop_oldest_month(db, first)
            log(json.dumps(out["retention"]))
        out["machine"] = machine_info(db.session.scalar(__import__("sqlalchemy").text("SHOW server_version")))
        out["load_average"] = load_average()
        db.session.remove()
        db.engine.dispose()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--scale", type=float, default=0.1, help="× 50 million rows (default 0.1 = 5 million)")
    ap.add_argument("--learners", type=int, default=10_000)
    ap.add_argument("--url", help="use this existing database (LMS_DATABASE_URL form) instead of a fresh one")
    ap.add_argument("--skip-generate", action="store_true")
    ap.add_argument("--skip-retention", action="store_true", help="keep the oldest month (to measure again)")
    ap.add_argument("--keep", action="store_true", help="do not drop the fresh database")
    ap.add_argument("--day", type=date.fromisoformat, default=date(2026, 10, 14),
                    help="the KST day sealed and verified (a later one when measuring a kept database again)")
    ap.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    args = ap.parse_args()
    rows = args.rows or int(gen_evidence.FULL_ROWS * args.scale)
    if args.url:
        import os

        os.environ.setdefault("LMS_ENV", "development")
        os.environ["LMS_DATABASE_URL"] = args.url
        gen = None if args.skip_generate else gen_evidence.generate(args.url, rows, args.learners, end=END, progress=log)
        result = measure(args, args.url, gen)
    else:
        bdb = BenchDatabase("evidence", args.pg_admin_url, DEFAULT_REDIS_URL)
        bdb.__enter__()
        try:
            gen = gen_evidence.generate(bdb.url, rows, args.learners, end=END, progress=log)
            log(f"generated {gen['rows']:,} rows in {gen['seconds']:.0f} s ({gen['rows_per_s']:,.0f} rows/s)")
            result = measure(args, bdb.url, gen)
        finally:
            if args.keep:
                log(f"kept database {bdb.name} ({bdb.url})")
            else:
                bdb.__exit__(None, None, None)
    print("BENCH_JSON " + json.dumps(result, default=str, ensure_ascii=False))
    checks = [result["chain_day"]["ok"]] + ([result["retention"]["ok"]] if "retention" in result else [])
    return 0 if all(checks) else 2


if __name__ == "__main__":
    sys.exit(main())
