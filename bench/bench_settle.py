"""Benchmark: settling attendance (ATT-1, ATT-2, ATT-5) with ``settle_due``, and rebuilding
a class from its viewing log with ``recompute_course``.

    .venv/bin/python bench/bench_settle.py [--large-learners 10000] [--large-courses 1] [--skip-large]

One command: for each scenario a fresh PostgreSQL database (dropped at the end), migrated
under ``LMS_ENV=production`` with generated keys; a course (15 weeks × 3 lessons of 25
minutes = 45 lessons) made through the service layer; learners and enrolments inserted in
bulk; then each learner × lesson gets one of (seeded random):

- attended (70%): one view playing the whole lesson in 10-second heartbeats before the
  deadline; stored *attended*, as the live path leaves it;
- partial (17%): a view that stopped part-way; *pending*;
- late (3%): the whole lesson played after the deadline; *absent* (the live path stores
  that at the first late heartbeat: completion after the deadline never counts);
- untouched (10%): no row at all;
- 1% of the learners hold an approved excuse (ATT-5) for two of their partial/untouched lessons.

The clock is then set one minute past the last deadline with the scheduler never having
run — the worst case: every lesson of the semester settles at once — and
``settle_due(now)`` is timed in a fresh child process, which reports its peak resident
memory (``getrusage`` maxrss, and the growth over the process's size before the call);
another child runs it under ``tracemalloc`` on a copy of the database (``CREATE DATABASE
… TEMPLATE``) for the peak of Python allocations.

1. class: 200 learners × 45 lessons with the full viewing log (views and events — a
   semester of 10-second heartbeats). Also timed: ``recompute_course(write=False)``, which
   must find the settled result equal to what the log rebuilds (0 differences); a second
   ``settle_due`` must change nothing. Target: settling < 1 s.
2. large: 10,000 learners × 45 lessons (progress rows only: 450,000 learner×lesson pairs),
   by default in ONE course — beyond CRS-7's 800 (the rows are inserted directly): the
   worst case, a single course settled in one transaction. ``--large-courses 50`` spreads
   them over classes of 200. Target: < 60 s.

Each run checks the settled statuses against what the generator expects (attended,
excused, absent counts; nothing pending). Exit status 2 when a check fails; with
``--check-targets`` 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (BENCH_DIR, DEFAULT_PG_ADMIN_URL, DEFAULT_REDIS_URL, BenchDatabase,  # noqa: E402
                    current_rss_mib, load_average, log, machine_info, peak_rss_mib, peak_rss_since_reset_mib,
                    pg_drop, reset_peak_rss)

PASSWORD = "bench-Password-2026!"
STARTS_ON = date(2026, 9, 1)
WEEKS, PER_WEEK, LESSON_SECONDS = 15, 3, 1500
HB = 10  # seconds per heartbeat
TARGETS = {"class": 1.0, "large": 60.0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    p.add_argument("--class-learners", type=int, default=200)
    p.add_argument("--large-learners", type=int, default=10000)
    p.add_argument("--large-courses", type=int, default=1, help="courses the large scenario is spread over")
    p.add_argument("--skip-class", action="store_true")
    p.add_argument("--skip-large", action="store_true")
    p.add_argument("--no-tracemalloc", action="store_true", help="skip the tracemalloc runs")
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--json-out", default=None)
    p.add_argument("--check-targets", action="store_true")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- data ----------------------------------------------------------------------------------

def naive(t: datetime) -> datetime:
    return t.astimezone(timezone.utc).replace(tzinfo=None)


def build(bdb: BenchDatabase, *, learners: int, courses: int, events: bool, seed: int) -> dict:
    """Courses and lessons through the service layer; everything else in bulk (COPY)."""
    import psycopg
    from sqlalchemy import insert, select

    from lms import create_app
    from lms.auth import service as auth
    from lms.auth.models import User
    from lms.content import service as content
    from lms.content.models import Lesson, Section
    from lms.db import db
    from lms.enrolment.models import Enrollment

    rng = random.Random(seed)
    t0 = time.monotonic()
    app = create_app()
    with app.app_context():
        admin = auth.create_user(username="bench-admin", password=PASSWORD, role="admin", name="관리자")
        course_ids, lessons = [], {}
        for c in range(courses):
            course = content.create_course(admin, code=f"ST{c:03d}", title=f"출석 정산 벤치 {c + 1}", credits=3,
                                           starts_on=STARTS_ON, weeks=WEEKS, capacity=800)
            for w in range(1, WEEKS + 1):
                for i in range(PER_WEEK):
                    content.add_lesson(course, week=w, title=f"{w}주차 {i + 1}차시", duration_seconds=LESSON_SECONDS)
            course_ids.append(course.id)
        db.session.commit()
        for cid in course_ids:
            lessons[cid] = [(l.id, l.opens_at, l.attendance_deadline) for l in db.session.scalars(
                select(Lesson).where(Lesson.course_id == cid).order_by(Lesson.id))]
        sections = {cid: db.session.scalar(select(Section.id).where(Section.course_id == cid)) for cid in course_ids}
        pw_hash = auth.hash_password(PASSWORD)
        now = datetime.now(timezone.utc)
        usernames = [f"st{i:06d}" for i in range(learners)]
        db.session.execute(insert(User), [
            {"institution_id": admin.institution_id, "username": u, "password_hash": pw_hash, "role": "learner",
             "name": None, "disability": False, "otp_secret": "JBSWY3DPEHPK3PXP", "otp_confirmed": True,
             "locked": False, "created_at": now} for u in usernames])
        ids = [uid for _, uid in sorted(db.session.execute(
            select(User.username, User.id).where(User.role == "learner")).all())]
        per_course = -(-learners // courses)
        members = {cid: ids[k * per_course:(k + 1) * per_course] for k, cid in enumerate(course_ids)}
        db.session.execute(insert(Enrollment), [
            {"course_id": cid, "section_id": sections[cid], "user_id": uid, "status": "active",
             "created_at": now, "syllabus_consent_at": now} for cid in course_ids for uid in members[cid]])
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    log(f"{courses} course(s) × {WEEKS * PER_WEEK} lessons, {learners} learners enrolled "
        f"({time.monotonic() - t0:.1f}s)")

    t1 = time.monotonic()
    expected = {"attended": 0, "excused": 0, "absent": 0}
    counts = {"progress_rows": 0, "views": 0, "events": 0, "excuse_lessons": 0}
    view_id = 0
    excuses: list[tuple[int, int, list[int]]] = []  # (learner, course, [lesson ids])
    # One connection per COPY (a connection runs one COPY at a time), one transaction each.
    with ExitStack() as stack:
        conn_p = stack.enter_context(psycopg.connect(bdb.psycopg_url))
        prog = stack.enter_context(conn_p.cursor().copy(
            "COPY lesson_progress (learner_id, lesson_id, course_id, intervals, covered_seconds, "
            "completed_at, status, settled_at, last_access_at, last_access_ip) FROM STDIN"))
        if events:
            conn_v = stack.enter_context(psycopg.connect(bdb.psycopg_url))
            views = stack.enter_context(conn_v.cursor().copy(
                "COPY lesson_view (id, learner_id, lesson_id, course_id, started_at, ended_at, end_reason, ip, "
                "device, last_heartbeat_at, position_seconds, credited_seconds, suspicious_excess_seconds, "
                "played_since_challenge) FROM STDIN"))
            conn_e = stack.enter_context(psycopg.connect(bdb.psycopg_url))
            evs = stack.enter_context(conn_e.cursor().copy(
                "COPY view_event (view_id, learner_id, lesson_id, course_id, at, kind, ip, device, claimed, "
                "credited, credited_seconds, excess_seconds, detail) FROM STDIN"))
        for cid in course_ids:
            for uid in members[cid]:
                ip = f"10.{(uid >> 16) & 255}.{(uid >> 8) & 255}.{uid & 255}"
                device = f"dev-{uid}"
                excusable = []
                for lid, opens, deadline in lessons[cid]:
                    r = rng.random()
                    if r < 0.10:
                        excusable.append(lid)
                        continue  # untouched: no row
                    # Any time between the opening and the deadline (which is 7 days after
                    # the opening for last-week lessons, 14 for the others: ATT-1).
                    window = int((deadline - opens).total_seconds()) - LESSON_SECONDS - 60
                    if r < 0.80:
                        kind, beats = "attended", LESSON_SECONDS // HB
                        start = opens + timedelta(seconds=rng.randrange(0, window))
                    elif r < 0.97:
                        kind, beats = "partial", rng.randrange(1, LESSON_SECONDS // HB)
                        start = opens + timedelta(seconds=rng.randrange(0, window))
                        excusable.append(lid)
                    else:
                        kind, beats = "late", LESSON_SECONDS // HB
                        start = deadline + timedelta(seconds=rng.randrange(60, 3 * 86400))
                    last = start + timedelta(seconds=HB * beats)
                    covered = min(LESSON_SECONDS, HB * beats)
                    completed = last if covered >= LESSON_SECONDS else None
                    if kind == "attended":
                        status, settled = "attended", completed
                        expected["attended"] += 1
                    elif kind == "late":
                        status, settled = "absent", start + timedelta(seconds=HB)
                    else:
                        status, settled = "pending", None
                    prog.write_row((uid, lid, cid, json.dumps([[0.0, float(HB * beats)]]), covered,
                                    naive(completed) if completed else None, status,
                                    naive(settled) if settled else None, naive(last), ip))
                    counts["progress_rows"] += 1
                    if events:
                        view_id += 1
                        ended = last + timedelta(seconds=5)
                        views.write_row((view_id, uid, lid, cid, naive(start), naive(ended), "ended", ip, device,
                                         naive(last), float(HB * beats), float(HB * beats), 0.0,
                                         float(HB * beats)))
                        evs.write_row((view_id, uid, lid, cid, naive(start), "start", ip, device,
                                       None, None, None, None, None))
                        t_start = naive(start)
                        for k in range(1, beats + 1):
                            span = f"[[{float(HB * (k - 1))}, {float(HB * k)}]]"
                            evs.write_row((view_id, uid, lid, cid, t_start + timedelta(seconds=HB * k),
                                           "heartbeat", ip, device, span, span, float(HB), 0.0, None))
                        evs.write_row((view_id, uid, lid, cid, naive(ended), "end", ip, device,
                                       None, None, None, None, "ended"))
                        counts["views"] += 1
                        counts["events"] += beats + 2
                if rng.random() < 0.01 and len(excusable) >= 2:
                    excuses.append((uid, cid, rng.sample(excusable, 2)))
    # (the ExitStack ended every COPY and committed each connection's transaction)
    with psycopg.connect(bdb.psycopg_url) as conn:
        if events:
            conn.execute("SELECT setval(pg_get_serial_sequence('lesson_view', 'id'), %s)", (max(view_id, 1),))
        decided = naive(datetime.combine(STARTS_ON, datetime.min.time(), tzinfo=timezone.utc))
        for uid, cid, lids in excuses:
            req = conn.execute(
                "INSERT INTO excuse_request (learner_id, course_id, reason, status, created_at, decided_at, "
                "decision_comment) VALUES (%s, %s, 'hospitalisation', 'approved', %s, %s, 'bench') RETURNING id",
                (uid, cid, decided, decided)).fetchone()[0]
            for lid in lids:
                conn.execute("INSERT INTO excuse_lesson (request_id, lesson_id) VALUES (%s, %s)", (req, lid))
                counts["excuse_lessons"] += 1
        expected["excused"] = counts["excuse_lessons"]
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
    total_pairs = learners * len(lessons[course_ids[0]])
    expected["absent"] = total_pairs - expected["attended"] - expected["excused"]
    log(f"{counts['progress_rows']:,} progress rows, {counts['views']:,} views, {counts['events']:,} viewing-log "
        f"events, {counts['excuse_lessons']} excused lessons inserted ({time.monotonic() - t1:.1f}s)")
    now = max(d for ls in lessons.values() for _, _, d in ls) + timedelta(minutes=1)
    return {"course_ids": course_ids, "lessons": len(lessons[course_ids[0]]), "learners": learners,
            "expected": expected, "counts": counts, "pairs": total_pairs, "now": now.isoformat()}


# --- the measuring child ---------------------------------------------------------------------

def child(spec: dict) -> dict:
    """In a fresh process: settle_due (timed, or under tracemalloc), then the checks."""
    import tracemalloc

    from sqlalchemy import func, select, text

    from lms import create_app
    from lms.attendance import service
    from lms.attendance.models import LessonProgress
    from lms.db import db

    now = datetime.fromisoformat(spec["now"])
    app = create_app()
    out = {}
    with app.app_context():
        # Warm up outside the measurement: connect, configure the mappers, compile the
        # detection queries (a settle before any deadline finds nothing to do).
        db.session.execute(text("SELECT 1"))
        service.settle_due(datetime(2000, 1, 1, tzinfo=timezone.utc))
        db.session.scalars(select(LessonProgress).limit(1)).all()
        db.session.commit()
        rss0 = current_rss_mib()
        out["peak_reset"] = reset_peak_rss()
        if spec["tracemalloc"]:
            tracemalloc.start()
        t = time.perf_counter()
        cpu = time.process_time()
        out["changed"] = service.settle_due(now)
        out["settle_s"] = time.perf_counter() - t
        out["settle_cpu_s"] = time.process_time() - cpu
        if spec["tracemalloc"]:
            out["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        # Peak RSS during the call (VmHWM reset just before it), the growth over the
        # process's size before it, and the process's lifetime peak (getrusage maxrss).
        out["rss_before_mib"] = rss0
        out["peak_rss_mib"] = peak_rss_since_reset_mib() if out["peak_reset"] else peak_rss_mib()
        out["rss_growth_mib"] = out["peak_rss_mib"] - rss0
        out["maxrss_mib"] = peak_rss_mib()
        out["statuses"] = dict(db.session.execute(
            select(LessonProgress.status, func.count()).group_by(LessonProgress.status)).all())
        if spec.get("recompute") and not spec["tracemalloc"]:
            t = time.perf_counter()
            r = [service.recompute_course(cid, now=now, write=False) for cid in spec["course_ids"]]
            out["recompute_s"] = time.perf_counter() - t
            out["recompute_events"] = sum(x.events for x in r)
            out["recompute_differences"] = sum(len(x.differences) for x in r)
            out["recompute_examples"] = [d.line() for x in r for d in x.differences[:5]]
            t = time.perf_counter()
            out["second_settle_changed"] = service.settle_due(now)
            out["second_settle_s"] = time.perf_counter() - t
        db.session.remove()
        db.engine.dispose()
    return out


def run_child(bdb: BenchDatabase, db_name: str, spec: dict) -> dict:
    base = bdb.pg_admin_url.rsplit("/", 1)[0]
    env = {**bdb.server_env(),
           "LMS_DATABASE_URL": f"{base}/{db_name}".replace("postgresql://", "postgresql+psycopg://", 1)}
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env,
                         capture_output=True, text=True, timeout=1800)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("CHILD_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"child failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return json.loads(line[len("CHILD_JSON "):])


# --- main ------------------------------------------------------------------------------------

def scenario(args, name: str, learners: int, courses: int, events: bool, problems: list) -> dict:
    log(f"=== {name}: {learners:,} learners × {WEEKS * PER_WEEK} lessons in {courses} course(s)")
    with BenchDatabase(f"bench_settle_{name}", args.pg_admin_url, args.redis_url) as bdb:
        world = build(bdb, learners=learners, courses=courses, events=events, seed=args.seed)
        spec = {"now": world["now"], "course_ids": world["course_ids"], "recompute": events, "tracemalloc": False}
        res = {"learners": learners, "courses": courses, "lessons": world["lessons"], "pairs": world["pairs"],
               "counts": world["counts"], "expected": world["expected"], "db": bdb.version}
        if not args.no_tracemalloc:
            copy = f"{bdb.name}_tm"
            pg_create_from_template(bdb.pg_admin_url, copy, bdb.name)
            try:
                log("settle_due under tracemalloc (on a copy of the database) ...")
                tm = run_child(bdb, copy, {**spec, "tracemalloc": True})
                res["tracemalloc"] = {k: tm[k] for k in ("settle_s", "tracemalloc_peak_mib", "changed")}
                log(f"  tracemalloc peak {tm['tracemalloc_peak_mib']:.1f} MiB (time under tracemalloc "
                    f"{tm['settle_s']:.2f}s, not the figure)")
            finally:
                pg_drop(bdb.pg_admin_url, copy)
        log("settle_due timed ...")
        la = load_average()
        out = run_child(bdb, bdb.name, spec)
        res.update(out)
        res["load_average_before"] = la
        got = {k: out["statuses"].get(k, 0) for k in ("attended", "excused", "absent", "pending")}
        res["settled_ok"] = (got["pending"] == 0 and all(got[k] == world["expected"][k] for k in world["expected"]))
        if not res["settled_ok"]:
            problems.append(f"{name}: settled statuses {got} differ from the expected {world['expected']}")
        if events:
            if out["recompute_differences"]:
                problems.append(f"{name}: recompute found {out['recompute_differences']} differences: "
                                f"{out['recompute_examples'][:3]}")
            if out["second_settle_changed"]:
                problems.append(f"{name}: a second settle_due changed {out['second_settle_changed']} rows")
        log(f"  settle_due: {out['settle_s']:.2f}s ({out['settle_cpu_s']:.2f}s CPU in Python), {out['changed']:,} "
            f"rows changed; peak RSS {out['peak_rss_mib']:.0f} MiB (+{out['rss_growth_mib']:.0f} MiB during the call); "
            f"statuses {got}")
        if events:
            log(f"  recompute_course(write=False): {out['recompute_s']:.2f}s over {out['recompute_events']:,} events, "
                f"{out['recompute_differences']} differences; second settle_due: {out['second_settle_changed']} "
                f"changed in {out['second_settle_s']:.2f}s")
        return res


def pg_create_from_template(admin_url: str, name: str, template: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        print("CHILD_JSON " + json.dumps(child(json.loads(args.child)), default=str), flush=True)
        return 0
    started = time.monotonic()
    load_start = load_average()
    problems: list[str] = []
    results = {}
    info = None
    if not args.skip_class:
        results["class"] = scenario(args, "class", args.class_learners, 1, True, problems)
    if not args.skip_large:
        results["large"] = scenario(args, "large", args.large_learners, args.large_courses, False, problems)
    if results:
        info = machine_info(next(iter(results.values()))["db"])

    print()
    print(f"settle_due at one minute past the last deadline, never settled before (every lesson at once); "
          f"{info['nproc']} CPUs ({info['cpu_model']}), {info['memory']}, Python {info['python']}, {info['db']}; "
          f"load average at start {' '.join(f'{x:.2f}' for x in load_start)}")
    missed = []
    for name, r in results.items():
        target = TARGETS[name]
        met = r["settle_s"] < target
        if not met:
            missed.append(name)
        tm = r.get("tracemalloc", {}).get("tracemalloc_peak_mib")
        print(f"{name:6} {r['learners']:>6,} learners × {r['lessons']} lessons ({r['courses']} course(s), "
              f"{r['pairs']:,} pairs, {r['counts']['progress_rows']:,} rows before): settle_due "
              f"{r['settle_s']:.2f}s, {r['changed']:,} rows changed — target < {target:.0f}s: "
              f"{'met' if met else 'MISSED'}; peak RSS {r['peak_rss_mib']:.0f} MiB (+{r['rss_growth_mib']:.0f} MiB)"
              + (f", tracemalloc peak {tm:.1f} MiB" if tm is not None else ""))
        if "recompute_s" in r:
            print(f"{'':6} recompute_course(write=False) {r['recompute_s']:.2f}s over {r['recompute_events']:,} "
                  f"viewing-log events: {r['recompute_differences']} differences; second settle_due changed "
                  f"{r['second_settle_changed']} ({r['second_settle_s']:.3f}s)")
    print(f"total time {time.monotonic() - started:.0f}s")
    for p in problems:
        print(f"INVALID RUN: {p}")
    out_path = Path(args.json_out) if args.json_out else (
        BENCH_DIR / "results" / f"bench_settle-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"machine": info, "load_average_start": load_start, "results": results,
                                    "problems": problems, "targets_missed": missed}, indent=2,
                                   ensure_ascii=False, default=str))
    log(f"results written to {out_path}")
    if problems:
        return 2
    if args.check_targets and missed:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
