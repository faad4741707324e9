"""Generate years of evidence logs into a PostgreSQL database with COPY (bench/bench_evidence.py).

    .venv/bin/python bench/gen_evidence.py --url postgresql://postgres@127.0.0.1:5432/DB [--rows 5000000]
        [--learners 10000] [--years 5] [--end 2026-11-01] [--seed 6]

The database must be migrated (Alembic head). Month partitions are created for every
generated month first (lms/audit/partitions.py), then the months are written oldest first,
each with rows in time order (ids grow with time, as live inserts do), through
``COPY … FROM STDIN`` in text format, one transaction per month:

- ``access_log`` 45 %: learners' (95 %) and staff's requests with IP, device, user agent,
  path and the course of the request;
- ``view_event`` 50 %: viewing-log heartbeats (10-second segments) of the learners' courses;
- ``attempt_event`` 5 %: exam evidence (answers, starts, submissions).

Learners take 4 of 500 courses per half-year term (``course_of``), so "one learner's term"
and "a course's term" are realistic slices. ``--rows`` is the total; ``--scale`` multiplies
the default 50 million (``--scale 0.1`` = 5 million).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lms.audit import rules  # noqa: E402  (pure: KST months)

FULL_ROWS = 50_000_000
COURSES = 500
STAFF = 600
SHARES = {"access_log": 0.45, "view_event": 0.50, "attempt_event": 0.05}
PATHS = ("/api/v1/me", "/api/v1/courses/{c}", "/courses/{c}/lessons", "/api/v1/lessons/{c}01/views",
         "/my/attendance", "/api/v1/notices/exams")
AGENTS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1.15")
ATTEMPT_KINDS = ("answer",) * 8 + ("started", "submitted")


def term_of(at: datetime) -> int:
    """Half-year terms: 0 = the first half of 2000 (KST), 1 = the second half, …"""
    k = at.astimezone(rules.KST)
    return (k.year - 2000) * 2 + (0 if k.month <= 6 else 1)


def term_bounds(term: int) -> tuple[datetime, datetime]:
    year, half = 2000 + term // 2, term % 2
    start = date(year, 7 if half else 1, 1)
    end = date(year + 1, 1, 1) if half else date(year, 7, 1)
    return rules.day_start(start), rules.day_start(end)


def course_of(learner: int, term: int, k: int) -> int:
    """The k-th (0…3) course of a learner in a term (1…COURSES)."""
    return 1 + (learner * 7 + term * 13 + k * 101) % COURSES


def months(end: date, years: int) -> list[date]:
    first = date(end.year - years, end.month, 1)
    out, m = [], first
    while m < end:
        out.append(m)
        m = rules.next_month(m)
    return out


def _ts(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")  # naive UTC (UTCDateTime)


def _ip(learner: int) -> str:
    return f"10.{(learner >> 16) & 255}.{(learner >> 8) & 255}.{learner & 255}"


def month_rows(rng: random.Random, month: date, n: int, learners: int):
    """(table, line) for ``n`` rows spread over a KST month, in time order."""
    start, end = rules.day_start(month), rules.day_start(rules.next_month(month))
    span = (end - start).total_seconds()
    offsets = sorted(rng.random() * span for _ in range(n))
    term = term_of(start)
    r = rng.random
    base = int(start.timestamp())
    days: dict[int, str] = {}
    for off in offsets:
        # naive UTC text without datetime objects (the generator's hot loop)
        sec = int(off)
        t = base + sec
        d, rem = divmod(t, 86400)
        day = days.get(d)
        if day is None:
            day = days[d] = datetime.fromtimestamp(d * 86400, timezone.utc).strftime("%Y-%m-%d")
        ts = f"{day} {rem // 3600:02d}:{rem // 60 % 60:02d}:{rem % 60:02d}.{int((off - sec) * 1e6):06d}"
        learner = 1 + int(r() * learners)
        course = course_of(learner, term, int(r() * 4))
        x = r()
        if x < SHARES["access_log"]:
            if r() < 0.05:  # staff
                uid, role, username = learners + 1 + int(r() * STAFF), ("instructor" if r() < 0.5 else "ta"), None
            else:
                uid, role, username = learner, "learner", None
            username = f"u{uid}"
            path = PATHS[int(r() * len(PATHS))].format(c=course)
            yield "access_log", (f"{ts}\t{uid}\t{username}\t{role}\t{uid}\trequest\t{_ip(uid)}\t"
                                 f"dev{uid:08x}\t{AGENTS[uid % 3]}\tGET\t{path}\t\\N\t{course}\n")
        elif x < SHARES["access_log"] + SHARES["view_event"]:
            lesson = course * 100 + int(r() * 45)
            s0 = int(r() * 1500)
            yield "view_event", (f"{learner * 1000 + lesson % 1000}\t{learner}\t{lesson}\t{course}\t{ts}\theartbeat\t"
                                 f"{_ip(learner)}\tdev{learner:08x}\t[[{s0}, {s0 + 10}]]\t[[{s0}, {s0 + 10}]]\t10.0\t0.0\t\\N\n")
        else:
            kind = ATTEMPT_KINDS[int(r() * len(ATTEMPT_KINDS))]
            answer = '{"choice": [%d]}' % int(r() * 4) if kind == "answer" else "\\N"
            yield "attempt_event", (f"{learner * 10 + term % 10}\t{course * 10 + term % 10}\t{learner}\t{ts}\t{kind}\t"
                                    f"{_ip(learner)}\tdev{learner:08x}\t\\N\t{answer}\t\\N\n")


COLUMNS = {
    "access_log": "at, user_id, username, role, session_id, event, ip, device, user_agent, method, path, detail, course_id",
    "view_event": ("view_id, learner_id, lesson_id, course_id, at, kind, ip, device, claimed, credited, "
                   "credited_seconds, excess_seconds, detail"),
    "attempt_event": "attempt_id, exam_id, learner_id, at, kind, ip, device, attempt_item_id, answer, detail",
}


def create_partitions(url: str, month_list: list[date]) -> int:
    """Month partitions for every generated month (through the app's own code)."""
    import os

    os.environ["LMS_DATABASE_URL"] = url.replace("postgresql://", "postgresql+psycopg://", 1) \
        if url.startswith("postgresql://") else url
    from lms import create_app
    from lms.audit import partitions
    from lms.db import db

    app = create_app()
    made = 0
    with app.app_context():
        for table in partitions.PARTITIONED:
            for m in month_list:
                made += partitions.create_month(table, m)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return made


def generate(url: str, rows: int, learners: int = 10_000, years: int = 5, end: date = date(2026, 11, 1),
             seed: int = 6, progress=print) -> dict:
    import psycopg

    psy_url = url.replace("postgresql+psycopg://", "postgresql://", 1)
    month_list = months(end, years)
    t0 = time.perf_counter()
    made = create_partitions(psy_url, month_list)
    progress(f"{made} partitions created for {len(month_list)} months")
    rng = random.Random(seed)
    per_month = rows // len(month_list)
    counts = {t: 0 for t in COLUMNS}
    import queue
    import threading

    # The next month is generated while the database ingests this one (a writer thread).
    todo: queue.Queue = queue.Queue(maxsize=2)
    failed: list[BaseException] = []

    def writer():
        try:
            with psycopg.connect(psy_url) as wconn:
                wconn.execute("SET synchronous_commit = off")
                while True:
                    item = todo.get()
                    if item is None:
                        return
                    month, buffers = item
                    with wconn.cursor() as cur:
                        for table, lines in buffers.items():
                            with cur.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
                                for k in range(0, len(lines), 20000):
                                    copy.write("".join(lines[k:k + 20000]))
                            counts[table] += len(lines)
                    wconn.commit()
                    done = sum(counts.values())
                    progress(f"{month.isoformat()[:7]}: {done:,} rows, {done / (time.perf_counter() - t0):,.0f} rows/s")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failed.append(exc)
            while todo.get() is not None:
                pass

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    for i, month in enumerate(month_list):
        n = per_month + (rows - per_month * len(month_list) if i == len(month_list) - 1 else 0)
        buffers = {t: [] for t in COLUMNS}
        for table, line in month_rows(rng, month, n, learners):
            buffers[table].append(line)
        todo.put((month, buffers))
        if failed:
            break
    todo.put(None)
    thread.join()
    if failed:
        raise failed[0]
    with psycopg.connect(psy_url) as conn:
        conn.execute("ANALYZE access_log")
        conn.execute("ANALYZE view_event")
        conn.execute("ANALYZE attempt_event")
        conn.commit()
    elapsed = time.perf_counter() - t0
    return {"rows": sum(counts.values()), "by_table": counts, "months": len(month_list),
            "first_month": month_list[0].isoformat(), "end": end.isoformat(), "seconds": elapsed,
            "rows_per_s": sum(counts.values()) / elapsed, "learners": learners}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="PostgreSQL URL of a migrated database")
    ap.add_argument("--rows", type=int, default=None, help="total rows (default 50,000,000 × --scale)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--learners", type=int, default=10_000)
    ap.add_argument("--years", type=int, default=5)
    ap.add_argument("--end", type=date.fromisoformat, default=date(2026, 11, 1), help="first day after the data (KST)")
    ap.add_argument("--seed", type=int, default=6)
    a = ap.parse_args()
    rows = a.rows or int(FULL_ROWS * a.scale)
    print(generate(a.url, rows, a.learners, a.years, a.end, a.seed))


if __name__ == "__main__":
    main()
