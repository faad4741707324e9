"""Benchmark: the inspectors' log search and exports (REC-3, REC-6) over ~1 million
access-log rows on PostgreSQL.

    .venv/bin/python bench/bench_export.py [--rows 1000000] [--learners 2000] [--skip-xlsx]

One command: a fresh PostgreSQL database (dropped at the end) migrated under
``LMS_ENV=production`` with generated keys; an institution with an inspector, ``--learners``
learners and 10 courses; ``--rows`` access-log rows over a term (2026-09-01 … 2027-01-31,
random times, users, IPs and courses) loaded with COPY, then ANALYZE. The web app runs
under gunicorn (one ``gthread`` worker, so the worker's memory is the web process's), the
inspector logs in through the API (password + TOTP), and the benchmark measures:

- CSV export of every row (``/logs/access?format=csv``; ``path``: which writer served it,
  ``copy`` — PostgreSQL's COPY, the default — or ``python`` with ``--python-csv``): rows/s, MB/s, time to first byte,
  the worker's RSS before, peak during (sampled every 20 ms from /proc) and after;
- the same for XLSX (``format=xlsx``);
- pages of 50 (median and p95 of 20 requests, each a full authenticated request that
  also writes its access-log rows): one learner's term (``user_id``, ``from``, ``to``), the
  first page unfiltered, a course's week, an IP prefix, and a deep keyset page (a cursor
  at the 900,000th row of the unfiltered order).

Targets (issue 6): exports at 50,000 rows/s or more with flat memory (the peak within a
few MiB of the idle worker, whatever the row count); a filtered page under 200 ms.
Exit status 2 when an export's row count is wrong; with ``--check-targets`` 1 when a
target is missed.
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (DEFAULT_PG_ADMIN_URL, DEFAULT_REDIS_URL, ROOT, BenchDatabase, Server, http_call,  # noqa: E402
                    load_average, log, machine_info)

PASSWORD = "bench-Password-2026!"
TERM_START = datetime(2026, 9, 1, tzinfo=timezone.utc) - timedelta(hours=9)  # 00:00 KST
TERM_SECONDS = 153 * 86400
TARGET_ROWS_PER_S = 50_000
TARGET_PAGE_MS = 200.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--learners", type=int, default=2000)
    p.add_argument("--page-requests", type=int, default=20)
    p.add_argument("--skip-xlsx", action="store_true")
    p.add_argument("--python-csv", action="store_true",
                   help="serve CSV with the Python writer (LMS_EXPORT_COPY=0) instead of PostgreSQL's COPY")
    p.add_argument("--seed", type=int, default=20261130)
    p.add_argument("--json-out", default=None)
    p.add_argument("--check-targets", action="store_true")
    return p.parse_args(argv)


# --- data --------------------------------------------------------------------------------

def setup(bdb: BenchDatabase, args) -> dict:
    """Institution, inspector, learners, courses through the models; access rows by COPY."""
    import psycopg
    from sqlalchemy import insert

    from lms import clock, create_app
    from lms.auth import service
    from lms.auth.models import User
    from lms.content.models import Course
    from lms.db import db

    app = create_app()
    with app.app_context():
        inspector = service.create_user(username="bench-inspector", password=PASSWORD, role="inspector",
                                        name="점검자")
        inst = inspector.institution_id
        secret = inspector.otp_secret
        now = clock.now()
        db.session.execute(insert(User), [
            {"institution_id": inst, "username": f"learner{n:05d}", "password_hash": "x", "role": "learner",
             "name": None, "otp_secret": "x", "created_at": now} for n in range(args.learners)])
        for n in range(10):
            db.session.add(Course(institution_id=inst, code=f"C{n:03d}", title=f"과정 {n}", credits=3,
                                  starts_on=datetime(2026, 9, 1).date(), weeks=15, capacity=800, created_at=now))
        db.session.commit()
        learner_ids = list(db.session.scalars(db.select(User.id).where(User.role == "learner").order_by(User.id)))
        course_ids = list(db.session.scalars(db.select(Course.id).order_by(Course.id)))
        db.session.remove()
        db.engine.dispose()

    rng = random.Random(args.seed)
    log(f"COPY {args.rows:,} access-log rows")
    t0 = time.monotonic()
    agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
    with psycopg.connect(bdb.psycopg_url) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY access_log (at, user_id, username, role, event, ip, device, user_agent, method, "
                          "path, course_id, detail) FROM STDIN") as cp:
                lines = []
                for n in range(args.rows):
                    uid = learner_ids[rng.randrange(len(learner_ids))]
                    at = TERM_START + timedelta(seconds=rng.randrange(TERM_SECONDS), microseconds=rng.randrange(10**6))
                    cid = course_ids[rng.randrange(len(course_ids))] if n % 3 else None
                    path = f"/courses/{cid}/lessons" if cid else "/"
                    ip = f"10.{uid % 200}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                    detail = "강의 목록 열람" if n % 50 == 0 else "\\N"
                    lines.append(f"{at.replace(tzinfo=None).isoformat(' ')}\t{uid}\tlearner{uid:05d}\tlearner\t"
                                 f"request\t{ip}\t\\N\t{agent}\tGET\t{path}\t{cid if cid else chr(92) + 'N'}\t{detail}\n")
                    if len(lines) == 10_000:
                        cp.write("".join(lines).encode())
                        lines.clear()
                if lines:
                    cp.write("".join(lines).encode())
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")  # every table: the planner needs the users too
        # The 900,000th row (or the last 10%) of the unfiltered order, for the deep page.
        deep = conn.execute("SELECT at, id FROM access_log ORDER BY at, id OFFSET %s LIMIT 1",
                            (int(args.rows * 0.9),)).fetchone()
        learner = learner_ids[0]
        learner_rows = conn.execute("SELECT count(*) FROM access_log WHERE user_id = %s", (learner,)).fetchone()[0]
    log(f"loaded in {time.monotonic() - t0:.1f} s")
    return {"secret": secret, "learner": learner, "learner_rows": learner_rows, "course": course_ids[0],
            "deep": (deep[0].replace(tzinfo=timezone.utc), deep[1])}


# --- the web process ------------------------------------------------------------------------

def worker_pid(master: int) -> int:
    for _ in range(100):
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                text = status.read_text()
            except OSError:
                continue
            if f"\nPPid:\t{master}\n" in text:
                return int(status.parent.name)
        time.sleep(0.1)
    raise RuntimeError("no gunicorn worker found")


def rss_mib(pid: int) -> float:
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith("VmRSS:"):
            return int(ln.split()[1]) / 1024.0
    return 0.0


class RssSampler:
    def __init__(self, pid: int, every: float = 0.02):
        self.pid, self.every = pid, every
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def login(port: int, secret: str) -> str:
    import pyotp

    status, body = http_call(port, "POST", "/api/v1/auth/login", {"username": "bench-inspector", "password": PASSWORD})
    assert status == 200, body
    status, body = http_call(port, "POST", "/api/v1/auth/otp", {"ticket": body["ticket"], "code": pyotp.TOTP(secret).now()})
    assert status == 200, body
    return body["token"]


def export(port: int, token: str, fmt: str, pid: int, tmp: Path) -> dict:
    before = rss_mib(pid)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    out = tmp / f"export.{fmt}"
    t0 = time.monotonic()
    with RssSampler(pid) as sampler:
        conn.request("GET", f"/api/v1/logs/access?format={fmt}", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()[:300]
        path = resp.getheader("X-LMS-Export-Path")  # copy | python: which writer served
        first = None
        size = 0
        newlines = 0
        with out.open("wb") as f:
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    break
                if first is None:
                    first = time.monotonic() - t0
                size += len(chunk)
                if fmt == "csv":
                    newlines += chunk.count(b"\n")
                f.write(chunk)
        elapsed = time.monotonic() - t0
    conn.close()
    after = rss_mib(pid)
    if fmt == "csv":
        rows = newlines - 1
    else:
        rows = -1  # the header row
        with zipfile.ZipFile(out) as z:
            for name in z.namelist():
                if name.startswith("xl/worksheets/"):
                    with z.open(name) as sheet:
                        tail = b""  # 5 bytes cannot hold a whole "</row>": nothing counted twice
                        while True:
                            block = sheet.read(1 << 20)
                            if not block:
                                break
                            rows += (tail + block).count(b"</row>")
                            tail = block[-5:]
    out.unlink()
    return {"format": fmt, "path": path, "rows": rows, "seconds": elapsed, "rows_per_s": rows / elapsed,
            "mb": size / 1e6, "mb_per_s": size / 1e6 / elapsed, "first_byte_s": first,
            "rss_before_mib": before, "rss_peak_mib": max(sampler.peak, before), "rss_after_mib": after}


def page_times(port: int, token: str, query: dict, n: int) -> dict:
    path = "/api/v1/logs/access?" + urlencode(query)
    times = []
    entries = 0
    for _ in range(n):
        t0 = time.monotonic()
        status, body = http_call(port, "GET", path, headers={"Authorization": f"Bearer {token}"}, timeout=60)
        times.append((time.monotonic() - t0) * 1000)
        assert status == 200, body
        entries = len(body["entries"])
    times.sort()
    return {"query": {k: v for k, v in query.items() if k != "cursor"} | ({"cursor": "deep"} if "cursor" in query else {}),
            "entries": entries, "median_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}


def main(argv=None) -> int:
    args = parse_args(argv)
    results: dict = {"rows": args.rows, "learners": args.learners}
    failed = False
    with BenchDatabase("export", args.pg_admin_url, args.redis_url) as bdb:
        data = setup(bdb, args)
        results["machine"] = machine_info(bdb.version)
        ns = argparse.Namespace(workers=1, worker_class="gthread", threads=4)
        tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
        env = bdb.server_env()
        if args.python_csv:
            env = {**env, "LMS_EXPORT_COPY": "0"}
        server = Server("export", "wsgi:app", ROOT, env, ns, tmp)
        server.start()
        try:
            server.wait_ready("/api/v1/health")
            pid = worker_pid(server.proc.pid)
            token = login(server.port, data["secret"])
            # Warm the worker (imports, first queries) before measuring memory.
            page_times(server.port, token, {"limit": 50}, 3)
            expected = None
            for fmt in ("csv",) + (() if args.skip_xlsx else ("xlsx",)):
                log(f"export {fmt}")
                r = export(server.port, token, fmt, pid, tmp)
                log(json.dumps(r))
                results[f"export_{fmt}"] = r
                # Every row of the institution: the generated ones plus the benchmark's own
                # requests' rows, which grow between the exports (at least the generated).
                if r["rows"] < args.rows:
                    log(f"FAIL: {fmt} export has {r['rows']} rows, fewer than {args.rows}")
                    failed = True
                expected = expected or r["rows"]
            from lms.audit.filters import Cursor, encode_cursor

            at, row_id = data["deep"]
            deep = encode_cursor(Cursor("access", "asc", at, row_id, False))
            pages = [
                page_times(server.port, token, {"user_id": data["learner"], "from": "2026-09-01", "to": "2027-01-31",
                                                "limit": 50}, args.page_requests),
                page_times(server.port, token, {"limit": 50}, args.page_requests),
                page_times(server.port, token, {"course_id": data["course"], "week": 5, "limit": 50}, args.page_requests),
                page_times(server.port, token, {"ip": "10.7.", "limit": 50}, args.page_requests),
                page_times(server.port, token, {"user_id": data["learner"], "ip": "10.0.0.0/8", "role": "learner",
                                                "order": "desc", "limit": 50}, args.page_requests),
                page_times(server.port, token, {"limit": 50, "cursor": deep}, args.page_requests),
            ]
            for p in pages:
                log(json.dumps(p))
            results["pages"] = pages
            results["learner_rows"] = data["learner_rows"]
        finally:
            server.stop()
    results["load_average"] = load_average()
    print(json.dumps(results, indent=2, ensure_ascii=False))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    if failed:
        return 2
    if args.check_targets:
        slow = [k for k in ("export_csv", "export_xlsx") if k in results and results[k]["rows_per_s"] < TARGET_ROWS_PER_S]
        slow += [p["query"] for p in results["pages"] if p["median_ms"] >= TARGET_PAGE_MS]
        return 1 if slow else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
