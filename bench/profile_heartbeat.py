"""In-process profile of ``POST /api/v1/views/{id}/heartbeat`` (ATT-4): CPU time and
PostgreSQL round trips per heartbeat, and where the CPU goes.

    .venv/bin/python bench/profile_heartbeat.py [--heartbeats 2000] [--learners 8] [--profile 400]

One command: a fresh PostgreSQL database (``BenchDatabase``: migrated under
``LMS_ENV=production`` with generated keys, dropped at the end), a course of 15 weeks × 2
lessons of 50 minutes (weeks 1–2 open), ``--learners`` learners enrolled and logged in
through the API (password, then TOTP), each with a view of one open lesson opened
through the API. Presence challenges are off (as in ``bench_heartbeat.py``).

Time is simulated: ``lms.clock.real_now`` is replaced by a clock that advances 10 s per
round (one request of every learner), so every heartbeat claims the next 10 s of its
lesson and is credited in full — the steady state of a learner watching. (The production
config has no testing clock, so no Redis read per ``clock.now()`` is counted here.)

Measured through the Flask test client, all in this process:

- ``heartbeat``: CPU ms per request (``time.process_time``, so other load on the machine
  does not count) and database round trips per request (SQLAlchemy ``before_cursor_execute``
  statements plus the BEGIN/COMMIT/ROLLBACK psycopg sends on its own);
- ``auth only``: the same for an authenticated no-op route registered here
  (``no_access_log`` + ``roles_required("learner")``, one commit), so the difference is
  the heartbeat-specific work (input, credit, writes, output). The two alternate a round
  (one request per learner) at a time;
- the statements of one heartbeat, then a cProfile top 20 (CPU time, by own time and
  cumulative) of ``--profile`` further heartbeats.

Every view stays inside its lesson (rounds × 10 s < 3,000 s), so every heartbeat credits.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import math
import pstats
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DEFAULT_PG_ADMIN_URL, DEFAULT_REDIS_URL, BenchDatabase, log  # noqa: E402

PASSWORD = "bench-Password-2026!"
LESSON_SECONDS = 3000
WEEKS, PER_WEEK = 15, 2
SEGMENT = 10.0


class FakeClock:
    """Replaces ``lms.clock.real_now``: starts at the real time, moves only when told."""

    def __init__(self):
        self.t = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


class Counter:
    """Database round trips: statements (SQLAlchemy ``before_cursor_execute``) and the
    commands psycopg sends itself (BEGIN before a transaction's first statement, COMMIT,
    ROLLBACK: ``_exec_command``); their sum is the round trips. ``waits`` counts psycopg's
    ``Connection.wait`` (one per exchange with the server) as a cross-check."""

    def __init__(self, engine):
        import psycopg
        from sqlalchemy import event

        self.statements = 0
        self.commands = 0
        self.waits = 0
        self.record: list[str] | None = None
        event.listen(engine, "before_cursor_execute", self._stmt)
        counter = self
        base = psycopg.Connection.__mro__[1]  # BaseConnection: _exec_command lives there
        exec_command, wait = base._exec_command, psycopg.Connection.wait

        def _exec_command(self, command, *a, **kw):
            counter.commands += 1
            if counter.record is not None:
                counter.record.append(bytes(command).decode() if isinstance(command, (bytes, bytearray))
                                      else str(command))
            return (yield from exec_command(self, command, *a, **kw))

        def _wait(self, *a, **kw):
            counter.waits += 1
            return wait(self, *a, **kw)

        base._exec_command = _exec_command
        psycopg.Connection.wait = _wait

    def _stmt(self, conn, cursor, statement, parameters, context, executemany):
        self.statements += 1
        if self.record is not None:
            self.record.append(" ".join(statement.split())[:150])

    def snapshot(self) -> tuple[int, int, int]:
        return self.statements, self.commands, self.waits


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    p.add_argument("--heartbeats", type=int, default=2000, help="heartbeats measured")
    p.add_argument("--learners", type=int, default=10, help="learners (views), beating in turn")
    p.add_argument("--profile", type=int, default=400, help="heartbeats under cProfile (0: none)")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--profile-out", default=None, help="also write the cProfile stats to this file")
    return p.parse_args(argv)


def build(app, clock_, n_learners: int) -> list[dict]:
    import pyotp
    from sqlalchemy import select

    from lms import clock
    from lms.auth import service as auth
    from lms.content import service as content
    from lms.content.models import Lesson, Section
    from lms.db import db
    from lms.enrolment.models import Enrollment

    with app.app_context():
        admin = auth.create_user(username="prof-admin", password=PASSWORD, role="admin", name="관리자")
        db.session.commit()
        starts_on = clock.now().astimezone(clock.KST).date() - timedelta(days=10)  # weeks 1–2 open
        course = content.create_course(admin, code="PROF1", title="하트비트 프로파일", credits=3,
                                       starts_on=starts_on, weeks=WEEKS, capacity=200)
        for w in range(1, WEEKS + 1):
            for i in range(PER_WEEK):
                content.add_lesson(course, week=w, title=f"{w}주차 {i + 1}차시", duration_seconds=LESSON_SECONDS)
        db.session.commit()
        course_id = course.id
        lessons = list(db.session.scalars(select(Lesson.id).where(Lesson.course_id == course_id,
                                                                   Lesson.opens_at <= clock.now())
                                          .order_by(Lesson.id)))
        section = db.session.scalar(select(Section.id).where(Section.course_id == course_id))
        learners = []
        for i in range(n_learners):
            user = auth.create_user(username=f"prof{i:03d}", password=PASSWORD, role="learner", name=f"학습자 {i}")
            db.session.flush()
            db.session.add(Enrollment(course_id=course_id, section_id=section, user_id=user.id, status="active",
                                      created_at=clock.now(), syllabus_consent_at=clock.now()))
            learners.append({"id": user.id, "secret": user.otp_secret, "username": user.username,
                             "lesson_id": lessons[i % len(lessons)], "device": f"prof-dev-{i:03d}"})
        db.session.commit()
        db.session.remove()

    client = app.test_client()
    for l in learners:
        headers = {"X-LMS-Device": l["device"], "User-Agent": "profile_heartbeat"}
        r = client.post("/api/v1/auth/login", json={"username": l["username"], "password": PASSWORD},
                        headers=headers)
        assert r.status_code == 200, r.get_json()
        code = pyotp.TOTP(l["secret"]).at(clock_())
        r = client.post("/api/v1/auth/otp", json={"ticket": r.get_json()["ticket"], "code": code}, headers=headers)
        assert r.status_code == 200, r.get_json()
        l["headers"] = {**headers, "Authorization": f"Bearer {r.get_json()['token']}"}
        clock_.advance(31)  # the next learner's TOTP step: one code per step and user
        r = client.post(f"/api/v1/lessons/{l['lesson_id']}/views", headers=l["headers"])
        assert r.status_code == 201, r.get_json()
        l["view_id"] = r.get_json()["view_id"]
        l["pos"] = r.get_json()["position_seconds"]
    return learners


def run(client, clock_, learners: list[dict], n: int, path_of, advance: bool = True) -> list:
    """``n`` requests, round-robin over the learners; the clock advances SEGMENT seconds per
    round and, with ``advance``, each learner's position too. Returns the answers' JSON of
    the last round."""
    k = len(learners)
    last = []
    for j in range(n):
        if j % k == 0:
            clock_.advance(SEGMENT)
            last = []
        l = learners[j % k]
        a = l["pos"] % LESSON_SECONDS
        r = client.post(path_of(l), json={"segments": [[a, a + SEGMENT]]}, headers=l["headers"])
        if r.status_code != 200:
            raise RuntimeError(f"{path_of(l)} → {r.status_code} {r.get_data(as_text=True)[:300]}")
        if advance:
            l["pos"] = a + SEGMENT
        last.append(r.get_json())
    return last


def measure(client, clock_, counter, learners, n, paths) -> list[dict]:
    """``n`` requests of each ``(label, path_of, advance)`` in ``paths``, a round (one request
    per learner) of each in turn, so that a change of the machine's load meanwhile touches
    them alike. Per label: CPU and wall ms, statements, BEGIN/COMMIT, round trips per request."""
    k = len(learners)
    acc = {label: [0.0, 0.0, 0, 0, 0, []] for label, _, _ in paths}
    for _ in range(max(1, n // k)):
        for label, path_of, advance in paths:
            a = acc[label]
            s0, e0, b0 = counter.snapshot()
            c0, w0 = time.process_time(), time.perf_counter()
            a[5] = run(client, clock_, learners, k, path_of, advance)
            c1, w1 = time.process_time(), time.perf_counter()
            s1, e1, b1 = counter.snapshot()
            a[0] += c1 - c0
            a[1] += w1 - w0
            a[2] += s1 - s0
            a[3] += e1 - e0
            a[4] += b1 - b0
    count = max(1, n // k) * k
    out = []
    for label, _, _ in paths:
        cpu, wall, stmts, cmds, waits, last = acc[label]
        r = {"label": label, "n": count, "cpu_ms": cpu * 1000 / count, "wall_ms": wall * 1000 / count,
             "statements": stmts / count, "commands": cmds / count, "waits": waits / count, "last": last}
        r["round_trips"] = r["statements"] + r["commands"]
        out.append(r)
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    from lms import clock as lms_clock

    clock_ = FakeClock()
    lms_clock.real_now = clock_  # clock.now() reads real_now at call time
    extra = {"LMS_CHALLENGE_MIN_MINUTES": "0", "LMS_MAX_PLAYBACK_RATE": "1.0"}
    with BenchDatabase("prof_hb", args.pg_admin_url, args.redis_url, extra_env=extra) as bdb:
        from lms import create_app
        from lms.db import db
        from lms.security import no_access_log, roles_required

        app = create_app()

        @app.post("/api/v1/_profile/noop/<int:view_id>")
        @no_access_log
        @roles_required("learner")
        def _profile_noop(view_id):  # the authentication every heartbeat pays, and one commit
            db.session.commit()
            return {"ok": True}

        learners = build(app, clock_, args.learners)
        client = app.test_client()
        with app.app_context():
            counter = Counter(db.engine)
        hb = lambda l: f"/api/v1/views/{l['view_id']}/heartbeat"  # noqa: E731
        noop = lambda l: f"/api/v1/_profile/noop/{l['view_id']}"  # noqa: E731

        run(client, clock_, learners, 4 * len(learners), hb)  # warm up (caches, pool)
        run(client, clock_, learners, 4 * len(learners), noop, advance=False)
        results = measure(client, clock_, counter, learners, args.heartbeats,
                          [("heartbeat", hb, True), ("auth only", noop, False)])
        rounds = 5 + (args.heartbeats + args.profile) // len(learners)
        if rounds * SEGMENT >= LESSON_SECONDS:
            log(f"warning: {rounds} rounds pass the lesson's end; later heartbeats credit nothing")

        counter.record = []
        run(client, clock_, learners, 1, hb)
        one = counter.record
        counter.record = None

        prof_text = ""
        if args.profile:
            prof = cProfile.Profile(time.process_time)  # CPU, not time waiting for the server
            prof.enable()
            run(client, clock_, learners, args.profile, hb)
            prof.disable()
            if args.profile_out:
                prof.dump_stats(args.profile_out)
            for key in ("tottime", "cumulative"):
                buf = io.StringIO()
                pstats.Stats(prof, stream=buf).sort_stats(key).print_stats(args.top)
                text = buf.getvalue()
                prof_text += f"\n--- cProfile of {args.profile} heartbeats, top {args.top} by {key} ---\n"
                prof_text += text[text.find("   ncalls"):] if "   ncalls" in text else text
        credited = sum(a.get("credited_seconds", 0.0) for a in results[0]["last"])
        db_version = bdb.version

    print()
    print(f"profile_heartbeat: {args.heartbeats} requests each, {args.learners} views, {db_version}, "
          f"Python {sys.version.split()[0]}")
    print(f"{'':10} {'CPU ms/req':>10} {'wall ms/req':>11} {'statements':>10} {'BEGIN/COMMIT':>12} "
          f"{'round trips':>11} {'(psycopg waits)':>15}")
    for r in results:
        print(f"{r['label']:10} {r['cpu_ms']:10.3f} {r['wall_ms']:11.3f} {r['statements']:10.2f} "
              f"{r['commands']:12.2f} {r['round_trips']:11.2f} {r['waits']:15.2f}")
    hb_, base = results
    print(f"heartbeat-specific (heartbeat − auth only): {hb_['cpu_ms'] - base['cpu_ms']:.3f} CPU ms, "
          f"{hb_['round_trips'] - base['round_trips']:.2f} round trips")
    print(f"last round credited {credited:.1f} s over {len(results[0]['last'])} views "
          f"(expected {SEGMENT * len(results[0]['last']):.1f})")
    print("\nstatements of one heartbeat:")
    for s in one:
        print("  " + s)
    print(prof_text)
    return 0 if math.isclose(credited, SEGMENT * len(results[0]["last"])) else 1


if __name__ == "__main__":
    sys.exit(main())
