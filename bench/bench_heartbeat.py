"""Benchmark: heartbeat ingestion (ATT-4, REC-1) under gunicorn with PostgreSQL and Redis,
against a bare Flask endpoint in the same run, and no heartbeat lost when the web
process is killed mid-load.

    .venv/bin/python bench/bench_heartbeat.py [--learners 2000] [--duration 15] [--paced-duration 30]
                                              [--kill both] [--check-targets]

One command does everything: a fresh PostgreSQL database (dropped at the end), Alembic
migrations under ``LMS_ENV=production`` with generated keys, courses of 200 learners (15
weeks × 2 lessons of 50 minutes; weeks 1–2 open), ``--learners`` learners enrolled (rows
inserted in bulk with one precomputed password hash), the first ``--api-logins`` of them
logged in through the real API (password, then TOTP with pyotp), the others given their
session by ``lms.auth.service.open_session`` (what the API's login calls) in a request
context, then every learner opens a view through the API (``POST /lessons/{id}/views``).

Then wrk on 127.0.0.1 (``bench/wrk_heartbeat.lua``, 64 connections): each request is the
heartbeat of the next learner's view, claiming the next 10 s of that view's lesson, so
every view advances through its lesson. The server credits at most the real time since
the view's previous heartbeat × the maximum rate + 2 s (ATT-4); a view beating faster
than every 10 s has the rest of its 10 s discarded as excess — the report gives both.

1. bare: ``bench/bare_heartbeat_app.py`` (same route, parses the JSON, no database), same
   gunicorn settings.
2. LMS: ``wsgi:app``. Heartbeats/s, p50/p90/p99, non-2xx (must be 0), and the concurrently
   watching learners one machine carries at one heartbeat per 10 s (= heartbeats/s × 10).
3. Paced (``--paced-duration``, default 30 s): every learner a player (an asyncio task)
   sending one heartbeat per ``--pace-ms`` (10 s), first ones spread over the first period
   — 2,000 learners offer 200 heartbeats/s — each on a new connection closed after the
   answer (``--player-conn close``: what the README's nginx does towards gunicorn by
   default), on a shared pool of ``--pool-size`` keep-alive connections (``pool``: a proxy
   with upstream keep-alive) or on its own keep-alive connection (``keep``). Throughput, p50/p90/p99 as a player sees them, and the
   share of the machine's CPU gunicorn and PostgreSQL used. This is the target's test:
   the saturation run's p99 is queueing (64 connections always waiting on a saturated
   server: p99 ≈ 64 / throughput), not what a player at 200/s sees.
4. Kill runs (``--kill worker|server|both|none``): mid-load, ``kill -9`` one gunicorn worker
   (the master starts another), and/or the whole gunicorn (master and workers; started
   again at once). Afterwards: per view, the heartbeat rows stored during the run must be
   at least the 200 answers wrk received for that view, and their credited seconds at
   least the credited seconds those answers reported; "lost" is the sum of shortfalls
   (must be 0). Finally ``recompute_course(write=False)`` of every course must find the
   stored summaries (views, progress) equal to what the viewing log rebuilds.

Exit status 2 when a run is invalid (non-2xx or socket errors in the measured runs, a lost
heartbeat, a recompute difference); with ``--check-targets`` 1 when the target (the paced
run of 2,000 learners carried at ≥ 95% of its 200 heartbeats/s with p99 < 100 ms) is
missed. With ``--player-conn keep`` both gunicorn servers get ``--keep-alive 20`` (bench_me.py's
5 s would close a player's connection between heartbeats). Needs ``wrk``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (BENCH_DIR, DEFAULT_PG_ADMIN_URL, DEFAULT_REDIS_URL, ROOT, BenchDatabase,  # noqa: E402
                    CpuMeter, Server, http_call, load_average, log, machine_info, run_wrk_script,
                    wait_quiet)

LUA = BENCH_DIR / "wrk_heartbeat.lua"
PASSWORD = "bench-Password-2026!"
LESSON_SECONDS = 3000  # 50-minute lessons (CRS-3: at least 25)
CLASS_SIZE = 200  # CRS-7: classes of at most 200; one course per class here
WEEKS, PER_WEEK = 15, 2
TARGET_RPS = 200.0
TARGET_P99_MS = 100.0


def parse_args(argv=None):
    cpus = os.cpu_count() or 2
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    p.add_argument("--learners", type=int, default=2000, help="learners, each with one open view")
    p.add_argument("--api-logins", type=int, default=8,
                   help="learners logged in through the real API (the rest: open_session)")
    p.add_argument("--duration", type=int, default=15, help="seconds measured per endpoint")
    p.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first")
    p.add_argument("--kill", choices=("worker", "server", "both", "none"), default="both")
    p.add_argument("--kill-duration", type=int, default=12, help="seconds of each kill run")
    p.add_argument("--paced-duration", type=int, default=30,
                   help="seconds of the paced run: every learner a connection sending one heartbeat "
                        "per --pace-ms (0: skip it)")
    p.add_argument("--pace-ms", type=int, default=10000, help="a player's wait between heartbeats")
    p.add_argument("--player-conn", choices=("close", "pool", "keep"), default="close",
                   help="paced players: a new connection per heartbeat, closed after it (what the "
                        "README's nginx proxy does towards gunicorn by default); a pool of "
                        "--pool-size keep-alive connections shared by all players (a proxy with "
                        "upstream keep-alive); or each player's own keep-alive connection")
    p.add_argument("--pool-size", type=int, default=32, help="connections of --player-conn pool")
    p.add_argument("--keep-alive", type=int, default=None,
                   help="gunicorn keep-alive seconds (both servers; default bench_me.py's 5, or 20 "
                        "with --player-conn keep so an idle player's connection stays open)")
    p.add_argument("--segment", type=float, default=10.0, help="seconds claimed per heartbeat")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2 * cpus, help="gunicorn workers (both servers)")
    p.add_argument("--worker-class", default="gthread")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    p.add_argument("--challenges", action="store_true",
                   help="keep presence challenges on (default: LMS_CHALLENGE_MIN_MINUTES=0)")
    p.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    p.add_argument("--quiet-limit", type=float, default=0.25,
                   help="CPU share used by others below which the machine counts as quiet")
    p.add_argument("--wait-quiet", type=int, default=60,
                   help="seconds to wait for a quiet machine before each measurement (0: don't)")
    p.add_argument("--json-out", default=None)
    p.add_argument("--check-targets", action="store_true")
    return p.parse_args(argv)


# --- set-up ----------------------------------------------------------------------------

def build_world(args) -> dict:
    """Courses, lessons, learners and enrolments (service layer for courses and lessons,
    bulk rows for learners and enrolments), sessions for all but the API-login learners."""
    import pyotp
    from sqlalchemy import insert, select

    from lms import clock, create_app
    from lms.auth import service as auth
    from lms.auth.models import User
    from lms.content import service as content
    from lms.content.models import Lesson, Section
    from lms.db import db
    from lms.enrolment.models import Enrollment

    app = create_app()
    t0 = time.monotonic()
    with app.app_context():
        admin = auth.create_user(username="bench-admin", password=PASSWORD, role="admin", name="관리자")
        db.session.commit()
        starts_on = (clock.now().astimezone(clock.KST).date() - timedelta(days=10))  # weeks 1–2 open
        n_courses = max(1, math.ceil(args.learners / CLASS_SIZE))
        courses = []
        for c in range(n_courses):
            course = content.create_course(admin, code=f"HB{c:03d}", title=f"하트비트 벤치 {c + 1}",
                                           credits=3, starts_on=starts_on, weeks=WEEKS, capacity=CLASS_SIZE)
            for w in range(1, WEEKS + 1):
                for i in range(PER_WEEK):
                    content.add_lesson(course, week=w, title=f"{w}주차 {i + 1}차시",
                                       duration_seconds=LESSON_SECONDS)
            courses.append(course.id)
        db.session.commit()
        open_lessons = {cid: list(db.session.scalars(
            select(Lesson.id).where(Lesson.course_id == cid, Lesson.opens_at <= clock.now())
            .order_by(Lesson.id))) for cid in courses}
        sections = {cid: db.session.scalar(select(Section.id).where(Section.course_id == cid)) for cid in courses}

        pw_hash = auth.hash_password(PASSWORD)  # one hash for everyone: argon2 is slow on purpose
        now = clock.now()
        secrets_ = {f"hb{i:05d}": pyotp.random_base32() for i in range(args.learners)}
        db.session.execute(insert(User), [
            {"institution_id": admin.institution_id, "username": u, "password_hash": pw_hash,
             "role": "learner", "name": f"학습자 {u}", "disability": False, "otp_secret": s,
             "otp_confirmed": False, "locked": False, "created_at": now} for u, s in secrets_.items()])
        ids = dict(db.session.execute(select(User.username, User.id).where(User.username.in_(list(secrets_)))).all())
        learners = []
        for i, username in enumerate(sorted(secrets_)):
            cid = courses[i // CLASS_SIZE]
            lessons = open_lessons[cid]
            learners.append({"i": i, "username": username, "id": ids[username], "course_id": cid,
                             "section_id": sections[cid], "lesson_id": lessons[i % len(lessons)],
                             "secret": secrets_[username], "device": f"bench-dev-{i:05d}"})
        db.session.execute(insert(Enrollment), [
            {"course_id": l["course_id"], "section_id": l["section_id"], "user_id": l["id"],
             "status": "active", "created_at": now, "syllabus_consent_at": now} for l in learners])
        db.session.commit()
        log(f"{n_courses} course(s) × {WEEKS * PER_WEEK} lessons, {args.learners} learners enrolled "
            f"({time.monotonic() - t0:.1f}s)")

        t1 = time.monotonic()
        for l in learners[args.api_logins:]:
            with app.test_request_context("/api/v1/auth/otp", method="POST",
                                          environ_base={"REMOTE_ADDR": "127.0.0.1"},
                                          headers={"User-Agent": "bench_heartbeat", "X-LMS-Device": l["device"]}):
                user = db.session.get(User, l["id"])
                l["token"] = auth.open_session(user, kind="api", now=clock.now())
                db.session.expunge_all()
        log(f"{len(learners) - args.api_logins} sessions opened by open_session "
            f"({time.monotonic() - t1:.1f}s)")
        db.session.remove()
        db.engine.dispose()
    return {"courses": courses, "learners": learners}


def api_login(port: int, learner: dict) -> str:
    """The real flow: password step, then a TOTP code for the returned ticket."""
    import pyotp

    hdrs = {"X-LMS-Device": learner["device"]}
    status, body = http_call(port, "POST", "/api/v1/auth/login",
                             {"username": learner["username"], "password": PASSWORD}, headers=hdrs)
    if status != 200:
        raise RuntimeError(f"login of {learner['username']} answered {status}: {body}")
    status, body = http_call(port, "POST", "/api/v1/auth/otp",
                             {"ticket": body["ticket"], "code": pyotp.TOTP(learner["secret"]).now()}, headers=hdrs)
    if status != 200:
        raise RuntimeError(f"OTP step of {learner['username']} answered {status}: {body}")
    return body["token"]


def open_view(port: int, learner: dict) -> None:
    status, body = http_call(port, "POST", f"/api/v1/lessons/{learner['lesson_id']}/views",
                             headers={"Authorization": f"Bearer {learner['token']}",
                                      "X-LMS-Device": learner["device"]})
    if status != 201:
        raise RuntimeError(f"POST /lessons/{learner['lesson_id']}/views for {learner['username']} "
                           f"answered {status}: {body}")
    learner["view_id"] = body["view_id"]
    learner["pos"] = float(body["position_seconds"])


# --- measuring -------------------------------------------------------------------------

def pg_connect(bdb):
    import psycopg

    return psycopg.connect(bdb.psycopg_url, autocommit=True)


def heartbeat_totals(bdb) -> dict:
    """Per view: heartbeat rows and their credited seconds; and overall sums."""
    with pg_connect(bdb) as conn:
        per_view = {vid: (n, cred or 0.0) for vid, n, cred in conn.execute(
            "SELECT view_id, count(*), sum(credited_seconds) FROM view_event "
            "WHERE kind = 'heartbeat' GROUP BY view_id")}
        rows, cred, excess = conn.execute(
            "SELECT count(*), coalesce(sum(credited_seconds), 0), coalesce(sum(excess_seconds), 0) "
            "FROM view_event WHERE kind = 'heartbeat'").fetchone()
    return {"per_view": per_view, "rows": rows, "credited": float(cred), "excess": float(excess)}


def settled_totals(bdb, timeout: float = 20.0) -> dict:
    """The totals once the server has finished what was in flight (two equal readings)."""
    deadline = time.monotonic() + timeout
    prev = heartbeat_totals(bdb)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        cur = heartbeat_totals(bdb)
        if cur["rows"] == prev["rows"]:
            return cur
        prev = cur
    return prev


def read_state(path: Path) -> dict:
    state = {"pos": {}, "statuses": {}, "ok": {}, "credited_answered": 0.0, "discarded_answered": 0.0}
    if not path.exists():
        return state
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts[0] == "pos":
            state["pos"][int(parts[1])] = float(parts[2])
        elif parts[0] == "status":
            state["statuses"][int(parts[1])] = state["statuses"].get(int(parts[1]), 0) + int(parts[2])
        elif parts[0] == "ok":
            n, c = state["ok"].get(int(parts[1]), (0, 0.0))
            state["ok"][int(parts[1])] = (n + int(parts[2]), c + float(parts[3]))
        elif parts[0] == "sums":
            state["credited_answered"] += float(parts[1])
            state["discarded_answered"] += float(parts[2])
    return state


class Load:
    """wrk runs over the learners' views, positions carried from one run to the next."""

    def __init__(self, args, learners: list[dict], tmp: Path):
        self.args = args
        self.learners = learners
        self.tmp = tmp
        self.n = 0

    def _files(self) -> tuple[Path, Path]:
        self.n += 1
        views = self.tmp / f"views-{self.n}.txt"
        views.write_text("".join(f"{l['view_id']} {l['pos']:.1f} {l['token']} {l['device']}\n"
                                 for l in self.learners))
        return views, self.tmp / f"state-{self.n}.txt"

    def _env(self, views: Path, state: Path) -> dict:
        return {"BENCH_VIEWS": str(views), "BENCH_STATE_OUT": str(state),
                "BENCH_THREADS": str(self.args.wrk_threads), "BENCH_SEGMENT": str(self.args.segment),
                "BENCH_LENGTH": str(LESSON_SECONDS)}

    def _carry(self, state: dict) -> None:
        for l in self.learners:
            if l["view_id"] in state["pos"]:
                l["pos"] = state["pos"][l["view_id"]]

    def run(self, base_url: str, duration: float, carry: bool = True) -> tuple[dict, dict]:
        views, state_path = self._files()
        res = run_wrk_script(wrk=self.args.wrk, script=LUA, url=base_url, duration=duration,
                             connections=self.args.connections, threads=self.args.wrk_threads,
                             env=self._env(views, state_path))
        state = read_state(state_path)
        if carry:
            self._carry(state)
        return res, state

    def start(self, base_url: str, duration: float):
        """wrk in the background (for the kill runs): (Popen, state path)."""
        views, state_path = self._files()
        cmd = [self.args.wrk, "-t", str(self.args.wrk_threads), "-c", str(self.args.connections),
               "-d", f"{duration}s", "--timeout", "10s", "--latency", "-s", str(LUA), base_url]
        proc = subprocess.Popen(cmd, env={**os.environ, **self._env(views, state_path)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return proc, state_path

    def finish(self, proc, state_path: Path) -> tuple[dict, dict]:
        out, err = proc.communicate(timeout=self.args.kill_duration + 120)
        line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
        if proc.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({proc.returncode}): {err}\n{out}")
        res = json.loads(line[len("BENCH_JSON "):])
        res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
        res["socket_errors"] = res["errors_connect"] + res["errors_read"] + res["errors_write"] + res["errors_timeout"]
        for k in ("lat_p50_us", "lat_p90_us", "lat_p99_us", "lat_max_us"):
            res[k.replace("_us", "_ms")] = res[k] / 1000.0
        state = read_state(state_path)
        self._carry(state)
        return res, state


def worker_pids(master_pid: int) -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == master_pid:
                pids.append(int(d))
    return sorted(pids)


def durability(before: dict, after: dict, state: dict) -> dict:
    """Per view: heartbeat rows stored during the run vs 200 answers received."""
    lost = lost_credit = 0.0
    lost_views = []
    for vid, (n_ok, cred_ok) in state["ok"].items():
        n0, c0 = before["per_view"].get(vid, (0, 0.0))
        n1, c1 = after["per_view"].get(vid, (0, 0.0))
        short = n_ok - (n1 - n0)
        short_credit = cred_ok - (c1 - c0)
        if short > 0:
            lost += short
            lost_views.append(vid)
        if short_credit > 1e-6:
            lost_credit += short_credit
    answered = sum(n for n, _ in state["ok"].values())
    return {"answered_200": answered, "rows_stored": after["rows"] - before["rows"], "lost": int(lost),
            "lost_views": lost_views[:20],
            "credited_answered_s": round(sum(c for _, c in state["ok"].values()), 3),
            "credited_stored_s": round(after["credited"] - before["credited"], 3),
            "credited_lost_s": round(lost_credit, 3)}


def recompute_all(course_ids: list[int]) -> dict:
    """``recompute_course(write=False)`` of every course: differences between the stored
    summaries and what the viewing log rebuilds."""
    from lms import create_app
    from lms.attendance.service import recompute_course
    from lms.db import db

    app = create_app()
    out = {"events": 0, "differences": 0, "examples": []}
    with app.app_context():
        for cid in course_ids:
            r = recompute_course(cid, write=False)
            out["events"] += r.events
            out["differences"] += len(r.differences)
            out["examples"] += [d.line() for d in r.differences[:5]]
        db.session.remove()
        db.engine.dispose()
    return out


# --- main ------------------------------------------------------------------------------

def main(argv=None) -> int:
    args = parse_args(argv)
    if not shutil.which(args.wrk):
        log("wrk not found: apt-get install -y wrk")
        return 2
    if args.learners < 2 * args.connections:
        log(f"--learners must be at least 2 × --connections ({2 * args.connections})")
        return 2
    started = time.monotonic()
    load_start = load_average()
    extra = {"LMS_CHALLENGE_MIN_MINUTES": "8" if args.challenges else "0", "LMS_MAX_PLAYBACK_RATE": "1.0"}
    servers: list[Server] = []
    invalid: list[str] = []
    with BenchDatabase("bench_hb", args.pg_admin_url, args.redis_url, extra_env=extra) as bdb:
        try:
            return _run(args, bdb, servers, invalid, started, load_start)
        finally:
            for srv in servers:
                srv.stop()


def _run(args, bdb, servers, invalid, started, load_start) -> int:
    info = machine_info(bdb.version)
    log("machine: " + json.dumps(info, ensure_ascii=False))
    world = build_world(args)
    learners = world["learners"]
    env = bdb.server_env()
    lms_srv = Server("lms", "wsgi:app", ROOT, env, args, bdb.tmp)
    bare_srv = Server("bare", "bare_heartbeat_app:app", BENCH_DIR, env, args, bdb.tmp)
    servers += [lms_srv, bare_srv]
    if args.keep_alive is None and args.player_conn == "keep":
        args.keep_alive = 20  # bench_me.Server's 5 s would close a player's idle connection
    for srv in servers:
        if args.keep_alive is not None:
            srv.cmd[srv.cmd.index("--keep-alive") + 1] = str(args.keep_alive)
        srv.start()
    lms_srv.wait_ready("/api/v1/health")
    bare_srv.wait_ready("/api/v1/views/1/heartbeat")  # GET: 405 means it is up
    log(f"gunicorn: {args.workers} workers, class {args.worker_class}, {args.threads} threads each "
        f"(both servers); wrk: {args.wrk_threads} threads, {args.connections} connections")

    t0 = time.monotonic()
    for l in learners[:args.api_logins]:
        l["token"] = api_login(lms_srv.port, l)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda l: open_view(lms_srv.port, l), learners))
    log(f"{args.api_logins} learners logged in through the API; {len(learners)} views opened through "
        f"the API ({time.monotonic() - t0:.1f}s)")

    load = Load(args, learners, bdb.tmp)
    meter_lms = CpuMeter(lms_srv.proc.pid, args.pg_admin_url, bdb.name)
    meter_bare = CpuMeter(bare_srv.proc.pid, None, None)
    results = {}
    for name, srv, meter in (("bare", bare_srv, meter_bare), ("lms", lms_srv, meter_lms)):
        busy = wait_quiet(args.quiet_limit, args.wait_quiet) if args.wait_quiet else None
        if args.warmup > 0:
            load.run(srv.base, args.warmup, carry=(name == "lms"))
        before = settled_totals(bdb) if name == "lms" else None
        cpu0 = meter.snapshot()
        la = load_average()
        log(f"{name}: heartbeats for {args.duration}s ...")
        res, state = load.run(srv.base, args.duration, carry=(name == "lms"))
        cpu = CpuMeter.delta(cpu0, meter.snapshot())
        n = max(1, res["requests"])
        res["cpu_ms_per_request"] = {"gunicorn": cpu["server"] * 1000 / n, "postgresql": cpu["db"] * 1000 / n,
                                     "wrk": res["wrk_cpu_s"] * 1000 / n,
                                     "total": (cpu["server"] + cpu["db"] + res["wrk_cpu_s"]) * 1000 / n}
        res["machine_busy_before"] = busy
        res["load_average_before"] = la
        res["statuses"] = state["statuses"]
        res["non_2xx"] = sum(c for s, c in state["statuses"].items() if not 200 <= s < 300)
        res.pop("wrk_output", None)
        if name == "lms":
            after = settled_totals(bdb)
            res["durability"] = durability(before, after, state)
            res["credited_s"] = after["credited"] - before["credited"]
            res["discarded_s"] = after["excess"] - before["excess"]
            res["answered_credited_s"] = state["credited_answered"]
            res["answered_discarded_s"] = state["discarded_answered"]
            res["seconds_between_heartbeats_per_view"] = len(learners) / max(res["rps"], 1e-9)
            if res["durability"]["lost"]:
                invalid.append(f"lms run: {res['durability']['lost']} heartbeats answered 200 not stored")
        if res["non_2xx"] or res["errors_status"]:
            invalid.append(f"{name}: {max(res['non_2xx'], res['errors_status'])} non-2xx answers "
                           f"{res['statuses']}")
        if res["socket_errors"]:
            invalid.append(f"{name}: {res['socket_errors']} socket errors/timeouts")
        log(f"  {res['rps']:.0f} heartbeats/s, p50 {res['lat_p50_ms']:.1f} ms, p90 {res['lat_p90_ms']:.1f} ms, "
            f"p99 {res['lat_p99_ms']:.1f} ms, non-2xx {res['non_2xx']}, "
            f"CPU {res['cpu_ms_per_request']['total']:.2f} ms/request")
        results[name] = res

    paced = paced_run(args, bdb, learners, lms_srv, meter_lms, invalid) if args.paced_duration else None

    kills = []
    modes = {"worker": ["worker"], "server": ["server"], "both": ["worker", "server"], "none": []}[args.kill]
    for mode in modes:
        kills.append(kill_run(args, bdb, load, lms_srv, mode, invalid))

    log("recomputing every course from the viewing log (write=False) ...")
    rc = recompute_all(world["courses"])
    if rc["differences"]:
        invalid.append(f"recompute found {rc['differences']} differences: {rc['examples'][:3]}")

    report(args, info, results, paced, kills, rc, invalid, len(learners), started, load_start)
    return finish(args, info, results, paced, kills, rc, invalid, len(learners), load_start)


class Players:
    """The paced run's load generator: one asyncio task per learner, a player sending its
    view's heartbeat on a timer (every ``pace`` seconds, the first at a random moment of the
    first period). ``keep``: over the player's own keep-alive connection, opened when its
    first heartbeat is due; ``close``: a new connection per heartbeat, closed after the
    answer — what the README's nginx proxy does towards gunicorn unless upstream keep-alive
    is configured. (wrk cannot pace this way: it opens every connection first and, told to
    wait, leaves them idle, and gunicorn's gthread worker holds a thread up to 5 s for a new
    connection that sends nothing — a stall no browser or proxy causes.)"""

    def __init__(self, port: int, learners: list[dict], segment: float, mode: str, pool_size: int = 32):
        self.port = port
        self.learners = learners
        self.segment = segment
        self.mode = mode
        self.keep = mode != "close"
        self.pool_size = pool_size
        self.pool = None  # asyncio.Queue of connections (None: not opened yet) for "pool"
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.ok: dict[int, tuple[int, float]] = {}
        self.errors = 0
        self.lateness: list[float] = []

    async def _exchange(self, conn, l: dict):
        reader, writer = conn
        start = l["pos"]
        stop = start + self.segment
        if stop > LESSON_SECONDS:
            start, stop = 0.0, self.segment
        body = json.dumps({"segments": [[start, stop]]}).encode()
        head = (f"POST /api/v1/views/{l['view_id']}/heartbeat HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Authorization: Bearer {l['token']}\r\nContent-Type: application/json\r\n"
                f"X-LMS-Device: {l['device']}\r\nUser-Agent: bench_heartbeat/player\r\n"
                + ("" if self.keep else "Connection: close\r\n")
                + f"Content-Length: {len(body)}\r\n\r\n").encode()
        writer.write(head + body)
        await writer.drain()
        status_line, *header_lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length = 0
        for h in header_lines:
            if h.lower().startswith("content-length:"):
                length = int(h.split(":", 1)[1])
        payload = await reader.readexactly(length) if length else b""
        l["pos"] = stop
        return int(status_line.split()[1]), payload

    async def _player(self, l: dict, t0: float, offset: float, pace: float, end: float) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        conn = None
        n = 0
        while True:
            due = t0 + offset + n * pace
            if due >= end:
                break
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            self.lateness.append(max(0.0, loop.time() - due))
            n += 1
            t = time.perf_counter()
            if self.mode == "pool":
                conn = await self.pool.get()  # waiting for a free connection counts in the latency
            try:
                if conn is None:
                    conn = await asyncio.open_connection("127.0.0.1", self.port)
                status, payload = await self._exchange(conn, l)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, IndexError):
                self.errors += 1
                if conn is not None:
                    conn[1].close()
                conn = None
                if self.mode == "pool":
                    self.pool.put_nowait(None)
                continue
            self.latencies.append(time.perf_counter() - t)
            if self.mode == "close":
                conn[1].close()
                conn = None
            elif self.mode == "pool":
                self.pool.put_nowait(conn)
                conn = None
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                credited = float(json.loads(payload).get("credited_seconds", 0.0))
                k, c = self.ok.get(l["view_id"], (0, 0.0))
                self.ok[l["view_id"]] = (k + 1, c + credited)
        if conn is not None:
            conn[1].close()

    def close_pool(self) -> None:
        while self.pool is not None and not self.pool.empty():
            conn = self.pool.get_nowait()
            if conn is not None:
                conn[1].close()

    def run(self, duration: float, pace: float) -> dict:
        import asyncio
        import random

        async def main():
            loop = asyncio.get_running_loop()
            if self.mode == "pool":
                self.pool = asyncio.Queue()
                for _ in range(self.pool_size):
                    self.pool.put_nowait(None)
            t0 = loop.time() + 0.5
            rng = random.Random(7)
            await asyncio.gather(*(self._player(l, t0, rng.uniform(0, pace), pace, t0 + duration)
                                   for l in self.learners))
            self.close_pool()

        cpu0, wall0 = time.process_time(), time.perf_counter()
        asyncio.run(main())
        wall = time.perf_counter() - wall0
        lat = sorted(self.latencies)

        def pct(q):
            return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

        return {"requests": len(lat), "duration_s": wall, "rps": len(lat) / max(1e-9, wall - 0.5),  # answers over the time until the last one came
                "lat_p50_ms": pct(0.50), "lat_p90_ms": pct(0.90), "lat_p99_ms": pct(0.99),
                "lat_max_ms": lat[-1] * 1000 if lat else float("nan"), "socket_errors": self.errors,
                "client_cpu_s": time.process_time() - cpu0,
                "client_late_p99_ms": (sorted(self.lateness)[int(0.99 * len(self.lateness))] * 1000
                                       if self.lateness else 0.0)}


def conn_label(args) -> str:
    return {"close": "a new connection per heartbeat",
            "pool": f"{args.pool_size} keep-alive connections shared (a proxy's upstream pool)",
            "keep": "each player's own keep-alive connection"}[args.player_conn]


def paced_run(args, bdb, learners: list[dict], srv: Server, meter: CpuMeter, invalid: list) -> dict:
    """Every learner a player sending one heartbeat per ``--pace-ms``: the offered load of
    that many concurrently watching learners. Latency here is what a player sees at that
    load (the saturation run's latency is mostly queueing: 64 connections always waiting
    on a saturated server)."""
    pace = args.pace_ms / 1000.0
    offered = len(learners) / pace
    busy = wait_quiet(args.quiet_limit, args.wait_quiet) if args.wait_quiet else None
    before = settled_totals(bdb)
    cpu0 = meter.snapshot()
    la = load_average()
    log(f"paced: {len(learners)} players, one heartbeat each per {pace:g} s (offered {offered:.0f}/s), "
        f"{conn_label(args)}, for {args.paced_duration}s ...")
    players = Players(srv.port, learners, args.segment, args.player_conn, args.pool_size)
    res = players.run(args.paced_duration, pace)
    cpu = CpuMeter.delta(cpu0, meter.snapshot())
    after = settled_totals(bdb)
    state = {"ok": players.ok}
    res.update({
        "offered_rps": offered, "machine_busy_before": busy, "load_average_before": la,
        "statuses": players.statuses,
        "non_2xx": sum(c for st, c in players.statuses.items() if not 200 <= st < 300),
        "cpu_share_of_machine": (cpu["server"] + cpu["db"]) / (res["duration_s"] * (os.cpu_count() or 1)),
        "client_cpu_share_of_machine": res["client_cpu_s"] / (res["duration_s"] * (os.cpu_count() or 1)),
        "cpu_ms_per_request": {"gunicorn": cpu["server"] * 1000 / max(1, res["requests"]),
                               "postgresql": cpu["db"] * 1000 / max(1, res["requests"])},
        "durability": durability(before, after, state),
        "credited_s": after["credited"] - before["credited"], "discarded_s": after["excess"] - before["excess"],
    })
    if res["non_2xx"]:
        invalid.append(f"paced: {res['non_2xx']} non-2xx answers {res['statuses']}")
    if res["socket_errors"]:
        invalid.append(f"paced: {res['socket_errors']} connection errors")
    if res["durability"]["lost"]:
        invalid.append(f"paced: {res['durability']['lost']} heartbeats answered 200 not stored")
    log(f"  {res['rps']:.0f} heartbeats/s (offered {offered:.0f}), p50 {res['lat_p50_ms']:.1f} ms, p90 "
        f"{res['lat_p90_ms']:.1f} ms, p99 {res['lat_p99_ms']:.1f} ms, non-2xx {res['non_2xx']}, connection "
        f"errors {res['socket_errors']}; CPU of the machine used by gunicorn + PostgreSQL "
        f"{res['cpu_share_of_machine']:.0%}, by the players {res['client_cpu_share_of_machine']:.0%}")
    return res


def kill_run(args, bdb, load: Load, srv: Server, mode: str, invalid: list) -> dict:
    before = settled_totals(bdb)
    log(f"kill run ({mode}): {args.kill_duration}s of heartbeats, kill -9 of the "
        f"{'one worker' if mode == 'worker' else 'whole gunicorn'} after {args.kill_duration / 2:.0f}s ...")
    proc, state_path = load.start(srv.base, args.kill_duration)
    time.sleep(args.kill_duration / 2)
    info = {"mode": mode}
    if mode == "worker":
        pids = worker_pids(srv.proc.pid)
        if not pids:
            raise RuntimeError("no gunicorn worker found to kill")
        victim = pids[len(pids) // 2]
        os.kill(victim, signal.SIGKILL)
        info["killed_pid"] = victim
        log(f"  killed worker {victim} with SIGKILL")
    else:
        pgid = srv.proc.pid
        t_kill = time.monotonic()
        os.killpg(pgid, signal.SIGKILL)
        srv.proc.wait(timeout=10)
        if srv._log:
            srv._log.close()
        log(f"  killed gunicorn (process group {pgid}) with SIGKILL; starting it again")
        srv.start()
        srv.wait_ready("/api/v1/health")
        info["downtime_s"] = round(time.monotonic() - t_kill, 2)
        log(f"  gunicorn answering again after {info['downtime_s']} s")
    res, state = load.finish(proc, state_path)
    after = settled_totals(bdb)
    d = durability(before, after, state)
    info.update({"rps": res["rps"], "requests": res["requests"], "statuses": state["statuses"],
                 "socket_errors": res["socket_errors"], "errors_read": res["errors_read"],
                 "errors_connect": res["errors_connect"], "errors_timeout": res["errors_timeout"],
                 "lat_p99_ms": res["lat_p99_ms"], "durability": d})
    log(f"  heartbeats answered 200: {d['answered_200']}, heartbeat rows stored: {d['rows_stored']}, "
        f"lost: {d['lost']} (credited seconds answered {d['credited_answered_s']:.1f}, stored "
        f"{d['credited_stored_s']:.1f}, lost {d['credited_lost_s']:.1f}); statuses {state['statuses']}, "
        f"socket errors {res['socket_errors']}")
    if d["lost"] or d["credited_lost_s"]:
        invalid.append(f"kill run ({mode}): {d['lost']} heartbeats / {d['credited_lost_s']} credited "
                       f"seconds answered 200 but not stored")
    bad = {s: c for s, c in state["statuses"].items() if s >= 500}
    info["answers_5xx"] = sum(bad.values())
    return info


def report(args, info, results, paced, kills, rc, invalid, n_learners, started, load_start) -> None:
    bare, lms = results["bare"], results["lms"]
    ratio = lms["rps"] / bare["rps"]
    print()
    print(f"POST /api/v1/views/{{id}}/heartbeat vs bare Flask, {args.connections} connections, "
          f"{args.duration}s each, {n_learners} learners with an open view, database {info['db']}")
    print(f"gunicorn {args.workers} x {args.worker_class} ({args.threads} threads), {info['nproc']} CPUs "
          f"({info['cpu_model']}), Python {info['python']}; load average at start "
          f"{' '.join(f'{x:.2f}' for x in load_start)}")
    print(f"{'':8}{'hb/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'requests':>10}{'non-2xx':>9}"
          f"   CPU ms/heartbeat: gunicorn + postgres + wrk = total")
    for name in ("bare", "lms"):
        s = results[name]
        c = s["cpu_ms_per_request"]
        print(f"{name:8}{s['rps']:>9.0f}{s['lat_p50_ms']:>9.1f}{s['lat_p90_ms']:>9.1f}{s['lat_p99_ms']:>9.1f}"
              f"{s['requests']:>10}{s['non_2xx']:>9}   {c['gunicorn']:.3f} + {c['postgresql']:.3f} + "
              f"{c['wrk']:.3f} = {c['total']:.3f}")
    carried = lms["rps"] * 10
    c = lms["cpu_ms_per_request"]
    ceiling = 1000.0 * (info["nproc"] or 1) / max(1e-9, c["gunicorn"] + c["postgresql"])
    print(f"LMS : bare = {ratio:.3f}; saturated, {lms['rps']:.0f} heartbeats/s = {carried:,.0f} concurrently "
          f"watching learners at one heartbeat per 10 s (p99 there is queueing: {args.connections} "
          f"connections on a saturated server)")
    print(f"CPU per heartbeat (gunicorn + PostgreSQL) {c['gunicorn'] + c['postgresql']:.2f} ms: all "
          f"{info['nproc']} cores for heartbeats alone would give at most {ceiling:.0f}/s "
          f"({ceiling * 10:,.0f} learners)")
    if paced:
        ok = paced["rps"] >= 0.95 * TARGET_RPS and paced["lat_p99_ms"] < TARGET_P99_MS
        print(f"paced ({conn_label(args)}): "
              f"{n_learners} players at one heartbeat per {args.pace_ms / 1000:g} s: {paced['rps']:.0f}/s "
              f"(offered {paced['offered_rps']:.0f}), p50 {paced['lat_p50_ms']:.1f} ms, p90 "
              f"{paced['lat_p90_ms']:.1f} ms, p99 {paced['lat_p99_ms']:.1f} ms, non-2xx {paced['non_2xx']}, "
              f"connection errors {paced['socket_errors']}; machine CPU used by gunicorn + PostgreSQL "
              f"{paced['cpu_share_of_machine']:.0%} (players {paced['client_cpu_share_of_machine']:.0%}); "
              f"credited {paced['credited_s']:,.0f} s, discarded {paced['discarded_s']:,.0f} s")
        print(f"target {TARGET_RPS * 10:,.0f} concurrently watching learners ({TARGET_RPS:.0f}/s) with p99 < "
              f"{TARGET_P99_MS:.0f} ms: {'met' if ok else 'MISSED'}")
    print(f"each view beat every {lms['seconds_between_heartbeats_per_view']:.1f} s, claiming "
          f"{args.segment:.0f} s: credited {lms['credited_s']:,.0f} s, discarded as excess "
          f"{lms['discarded_s']:,.0f} s (ATT-4: real time × 1.0 + 2 s per heartbeat)")
    d = lms["durability"]
    print(f"measured run: heartbeats answered 200: {d['answered_200']}, heartbeat rows stored: "
          f"{d['rows_stored']}, lost: {d['lost']}")
    for k in kills:
        d = k["durability"]
        what = "one worker" if k["mode"] == "worker" else f"whole gunicorn (down {k.get('downtime_s')} s)"
        print(f"kill -9 of {what}: heartbeats answered 200: {d['answered_200']}, heartbeat rows stored: "
              f"{d['rows_stored']}, lost: {d['lost']} (X−Y = {d['answered_200'] - d['rows_stored']}); "
              f"credited seconds answered {d['credited_answered_s']:.1f}, stored {d['credited_stored_s']:.1f}, "
              f"lost {d['credited_lost_s']:.1f}; connections cut {k['socket_errors']}, 5xx {k['answers_5xx']}")
    print(f"recompute_course(write=False) of every course over {rc['events']} viewing-log events: "
          f"{rc['differences']} differences between stored summaries and the rebuilt ones")
    print(f"total time {time.monotonic() - started:.0f}s")
    for problem in invalid:
        print(f"INVALID RUN: {problem}")


def finish(args, info, results, paced, kills, rc, invalid, n_learners, load_start) -> int:
    lms = results["lms"]
    if paced:
        targets_met = paced["rps"] >= 0.95 * TARGET_RPS and paced["lat_p99_ms"] < TARGET_P99_MS
    else:
        targets_met = lms["rps"] >= TARGET_RPS and lms["lat_p99_ms"] < TARGET_P99_MS
    out_path = Path(args.json_out) if args.json_out else (
        BENCH_DIR / "results" / f"bench_heartbeat-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({
        "machine": info, "load_average_start": load_start, "learners": n_learners,
        "settings": {k: getattr(args, k) for k in ("duration", "warmup", "connections", "wrk_threads", "workers",
                                                   "worker_class", "threads", "segment", "kill",
                                                   "kill_duration", "challenges", "paced_duration",
                                                   "pace_ms", "player_conn", "pool_size", "keep_alive")},
        "results": results, "paced": paced, "learners_carried": lms["rps"] * 10, "ratio": lms["rps"] / results["bare"]["rps"],
        "kill_runs": kills, "recompute": rc, "targets_met": targets_met, "invalid": invalid,
    }, indent=2, ensure_ascii=False, default=str))
    log(f"results written to {out_path}")
    if invalid:
        return 2
    if args.check_targets and not targets_met:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
