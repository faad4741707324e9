"""In-process profile of starting an exam attempt (``POST /api/v1/exams/{id}/attempts``).

    .venv/bin/python bench/profile_exam_start.py [--learners 200] [--profiled 100] [--drawn 7,7,6]
                                                 [--bank-factor 3] [--top 25] [--sqlite]

One command: a fresh PostgreSQL database (``--sqlite``: a temporary SQLite file), Alembic
migrations, ``LMS_ENV=testing`` (the testing clock, as ``bench_exam.py``), a course with
``--learners`` + ``--profiled`` + 20 warm-up learners enrolled (rows inserted in bulk, sessions
inserted directly), a bank of ``--bank-factor`` × the drawn items per level (single choice, 4
choices) and an exam drawing ``--drawn`` items (60 minutes, announced 14 days before it opens).
The clock is moved into the window; then, through the Flask test client in this process, each
learner starts the exam once with its own ``REMOTE_ADDR`` (10.x.y.z), its own ``X-LMS-Device``
and a valid TOTP code for the testing clock:

1. warm-up: 20 learners start a second exam (a quiz with the same draw), so lazy imports,
   compiled-statement caches and pooled connections are warm, as on a server that is up;
2. timed: ``--learners`` starts, each measured with ``time.process_time`` (CPU of this
   process: the Flask app and the SQLAlchemy/psycopg client side, not PostgreSQL's) around
   the whole request, and around the view alone (what runs after authentication and the
   access-log commit: input parsing, ``service.start_attempt``, the answer's serialisation);
   SQL statements counted with ``before_cursor_execute`` (+ commits), Redis commands counted;
3. profiled: ``--profiled`` other learners start under cProfile; top ``--top`` by own time
   and by cumulative time.

Checks: every timed start answers 201 with the drawn item count, one attempt per learner.
The database is dropped at the end. Does not start gunicorn; CPU time per start is robust to
other load on the machine, wall-clock is reported but is not.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DEFAULT_PG_ADMIN_URL, DEFAULT_REDIS_URL, ROOT, BenchDatabase, insert_learners  # noqa: E402

WARMUP = 20
PASSWORD = "profile-Password-2026!"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--learners", type=int, default=200)
    p.add_argument("--profiled", type=int, default=100)
    p.add_argument("--drawn", default="7,7,6")
    p.add_argument("--bank-factor", type=int, default=3)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--callees", default="", help="also print the callees of these functions (comma-separated "
                                                  "pstats patterns, e.g. start_attempt,_create_attempt)")
    p.add_argument("--sqlite", action="store_true", help="a temporary SQLite database instead of PostgreSQL")
    p.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    return p.parse_args(argv)


def address(i: int) -> str:
    return f"10.{1 + i // 65000}.{(i // 250) % 250}.{1 + i % 250}"


class Counters:
    """SQL statements (``before_cursor_execute``), commits and Redis commands, with a flag
    that says whether the view is running."""

    def __init__(self, engine):
        import redis
        from sqlalchemy import event

        self.sql = self.commits = self.redis = 0
        self.in_view = False
        self.view_sql = self.view_commits = self.view_redis = 0
        self.statements: list[str] = []
        self.capture = False

        @event.listens_for(engine, "before_cursor_execute")
        def _sql(conn, cursor, statement, params, context, executemany):
            self.sql += 1
            if self.in_view:
                self.view_sql += 1
            if self.capture:
                self.statements.append(("[view] " if self.in_view else "[auth] ") + " ".join(statement.split())[:160])

        @event.listens_for(engine, "commit")
        def _commit(conn):
            self.commits += 1
            if self.in_view:
                self.view_commits += 1

        orig = redis.Redis.execute_command
        counters = self

        def execute_command(self_, *args, **kw):
            counters.redis += 1
            if counters.in_view:
                counters.view_redis += 1
            return orig(self_, *args, **kw)

        redis.Redis.execute_command = execute_command


def build(app, args) -> dict:
    from sqlalchemy import insert, select

    from lms import clock
    from lms.auth import service as auth
    from lms.auth.models import UserSession
    from lms.content import service as content
    from lms.content.models import Section
    from lms.db import db
    from lms.enrolment.models import Enrollment
    from lms.exams import items as bank
    from lms.exams import service as exams

    drawn = dict(zip(("easy", "medium", "hard"), (int(x) for x in args.drawn.split(","))))
    n = args.learners + args.profiled + WARMUP
    with app.app_context():
        t0 = clock.now().replace(microsecond=0)
        clock.set_now(t0)
        admin = auth.create_user(username="profile-admin", password=PASSWORD, role="admin", name="관리자")
        db.session.commit()
        course = content.create_course(admin, code="PROF001", title="시험 프로파일", credits=3,
                                       starts_on=clock.to_kst(t0).date() - timedelta(days=7), weeks=15,
                                       capacity=200 * ((n + 199) // 200))
        db.session.flush()
        sections = list(db.session.scalars(select(Section.id).where(Section.course_id == course.id)))
        while len(sections) * 200 < n:
            sec = Section(course_id=course.id, name=str(len(sections) + 1), capacity=200)
            db.session.add(sec)
            db.session.flush()
            sections.append(sec.id)
        for level, k in drawn.items():
            for j in range(args.bank_factor * k):
                bank.create_item(course, admin, {
                    "difficulty": level, "kind": "single_choice", "prompt": f"{level} 문항 {j + 1}: 옳은 것은?",
                    "choices": [f"{level} 문항 {j + 1} 보기 {c + 1}" for c in range(4)], "answer": j % 4,
                    "points": 5})
        opens = (t0 + timedelta(days=14, hours=1)).replace(minute=0, second=0)
        exam_ids = []
        for title, kind in (("프로파일 중간고사", "midterm"), ("예비 퀴즈", "quiz")):
            exam = exams.create_exam(course, admin, {
                "title": title, "kind": kind, "opens_at": opens, "closes_at": opens + timedelta(days=1),
                "duration_minutes": 60, "items_per_difficulty": drawn})
            exam_ids.append(exam.id)
        db.session.commit()
        pw_hash = auth.hash_password(PASSWORD)
        names = [f"pf{i:05d}" for i in range(n)]
        ids, secrets_ = insert_learners(admin.institution_id, names, pw_hash, t0, otp_confirmed=True)
        db.session.execute(insert(Enrollment), [
            {"course_id": course.id, "section_id": sections[i // 200], "user_id": ids[u], "status": "active",
             "created_at": t0, "syllabus_consent_at": t0} for i, u in enumerate(names)])
        inside = opens + timedelta(minutes=1)
        tokens = {u: f"profile-token-{u}-{os.urandom(8).hex()}" for u in names}
        db.session.execute(insert(UserSession), [
            {"token_hash": auth.hash_token(tokens[u]), "user_id": ids[u], "kind": "api", "created_at": inside,
             "last_seen_at": inside, "ip": address(i), "device": f"dev-{u}"} for i, u in enumerate(names)])
        db.session.commit()
        clock.set_now(inside)
        db.session.remove()
    people = [{"i": i, "username": u, "secret": secrets_[u], "token": tokens[u], "ip": address(i),
               "device": f"dev-{u}"} for i, u in enumerate(names)]
    return {"exam_id": exam_ids[0], "warm_id": exam_ids[1], "drawn": sum(drawn.values()),
            "bank": args.bank_factor * sum(drawn.values()), "people": people}


def main(argv=None) -> int:
    args = parse_args(argv)
    tmpdir = None
    extra = {"LMS_ENV": "testing", "LMS_TRUSTED_PROXIES": "0"}
    if args.sqlite:
        from cryptography.fernet import Fernet

        tmpdir = tempfile.mkdtemp(prefix="profile-exam-")
        os.environ.update({**extra, "LMS_DATABASE_URL": f"sqlite:///{tmpdir}/lms.sqlite3",
                           "LMS_REDIS_URL": args.redis_url, "LMS_REDIS_PREFIX": f"lmsprof-{os.getpid()}",
                           "LMS_RQ_QUEUE": f"lmsprof-{os.getpid()}", "LMS_MEDIA_ROOT": f"{tmpdir}/media",
                           "LMS_SECRET_KEY": os.urandom(24).hex(), "LMS_DATA_KEY": Fernet.generate_key().decode()})
        from flask_migrate import upgrade

        from lms import create_app

        app = create_app()
        with app.app_context():
            upgrade()
        return run(app, args, "SQLite")
    with BenchDatabase("profile_exam", args.pg_admin_url, args.redis_url, extra_env=extra) as bdb:
        from lms import create_app

        return run(create_app(), args, bdb.version)


def run(app, args, db_label: str) -> int:
    import logging

    import pyotp

    errors_log = logging.getLogger("lms.errors")  # an unhandled error's traceback, shown
    errors_log.disabled = False
    errors_log.addHandler(logging.StreamHandler())

    from lms import clock
    from lms.db import db

    world = build(app, args)
    people = world["people"]
    warm, timed, profiled = (people[:WARMUP], people[WARMUP:WARMUP + args.learners],
                             people[WARMUP + args.learners:])
    with app.app_context():
        counters = Counters(db.engine)
        now = clock.now()
    client = app.test_client()
    view_name = "exams_api.start_attempt"
    inner = app.view_functions[view_name]
    view_cpu: list[float] = []

    def timed_view(*a, **kw):
        counters.in_view = True
        c0 = time.process_time()
        try:
            return inner(*a, **kw)
        finally:
            view_cpu.append(time.process_time() - c0)
            counters.in_view = False

    app.view_functions[view_name] = timed_view

    def start(p: dict, exam_id: int, code: str):
        return client.post(f"/api/v1/exams/{exam_id}/attempts", json={"otp": code},
                           headers={"Authorization": f"Bearer {p['token']}", "X-LMS-Device": p["device"]},
                           environ_base={"REMOTE_ADDR": p["ip"]})

    def code(p: dict) -> str:
        return pyotp.TOTP(p["secret"]).at(now + timedelta(seconds=time.monotonic() - mono0))

    mono0 = time.monotonic()
    for p in warm:
        r = start(p, world["warm_id"], code(p))
        assert r.status_code == 201, (r.status_code, r.get_json())
    view_cpu.clear()

    # --- timed -----------------------------------------------------------------------------
    total_cpu, wall, bad = [], [], []
    sql0, com0, red0 = counters.sql, counters.commits, counters.redis
    vsql0, vcom0, vred0 = counters.view_sql, counters.view_commits, counters.view_redis
    counters.capture = True
    for k, p in enumerate(timed):
        c = code(p)
        w0, c0 = time.perf_counter(), time.process_time()
        r = start(p, world["exam_id"], c)
        total_cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        if k == 0:
            counters.capture = False
            first_statements = list(counters.statements)
        if r.status_code != 201 or len(r.get_json()["items"]) != world["drawn"]:
            bad.append((p["username"], r.status_code, r.get_json()))
    n = len(timed)
    timed_view_cpu = view_cpu[:n]
    sql, commits, red = counters.sql - sql0, counters.commits - com0, counters.redis - red0
    vsql, vcom, vred = counters.view_sql - vsql0, counters.view_commits - vcom0, counters.view_redis - vred0

    # --- profiled --------------------------------------------------------------------------
    prof = cProfile.Profile(time.process_time)  # CPU time, not time spent waiting for the database
    codes = [code(p) for p in profiled]
    prof.enable()
    for p, c in zip(profiled, codes):
        r = start(p, world["exam_id"], c)
        if r.status_code != 201:
            bad.append((p["username"], r.status_code, r.get_json()))
    prof.disable()

    with app.app_context():
        from sqlalchemy import func, select

        from lms.exams.models import Attempt

        attempts = db.session.scalar(select(func.count()).select_from(Attempt)
                                     .where(Attempt.exam_id == world["exam_id"]))
        db.session.remove()

    ms = 1000.0
    print(f"\n=== exam start, in process ({db_label}; bank {world['bank']} items, {world['drawn']} drawn; "
          f"{n} timed starts, {len(profiled)} profiled) ===")
    print(f"whole request CPU ms/start: mean {statistics.mean(total_cpu) * ms:.2f}  "
          f"median {statistics.median(total_cpu) * ms:.2f}  min {min(total_cpu) * ms:.2f}")
    print(f"view (after auth) CPU ms/start: mean {statistics.mean(timed_view_cpu) * ms:.2f}  "
          f"median {statistics.median(timed_view_cpu) * ms:.2f}  min {min(timed_view_cpu) * ms:.2f}")
    print(f"the rest (auth, access log, Flask, test client): "
          f"{(statistics.mean(total_cpu) - statistics.mean(timed_view_cpu)) * ms:.2f} ms")
    print(f"wall ms/start (noisy): median {statistics.median(wall) * ms:.2f}")
    print(f"SQL statements/start: whole request {sql / n:.2f} (+ {commits / n:.2f} commits); "
          f"view {vsql / n:.2f} (+ {vcom / n:.2f} commits)")
    print(f"Redis commands/start: whole request {red / n:.2f}; view {vred / n:.2f} "
          "(LMS_ENV=testing: a GET per clock.now())")
    print(f"attempts stored: {attempts} (expected {n + len(profiled)}); bad answers: {len(bad)}")
    for b in bad[:5]:
        print("  ", b)
    print("\nstatements of the first timed start:")
    for s in first_statements:
        print("  ", s)
    for key in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(args.top)
        text = buf.getvalue()
        start_at = text.find("   ncalls")
        print(f"\ncProfile, {len(profiled)} starts, top {args.top} by {key}:")
        print(text[start_at:].rstrip())
    for pattern in filter(None, args.callees.split(",")):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("cumulative").print_callees(pattern)
        print(f"\ncallees of {pattern}:")
        print(buf.getvalue().strip())
    return 0 if not bad and attempts == n + len(profiled) else 2


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
