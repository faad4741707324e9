"""Benchmark: the exam-start storm and answer saves (EXM-8, EXM-9, EXM-10) under gunicorn
with PostgreSQL and Redis.

    .venv/bin/python bench/bench_exam.py [--learners 200] [--save-interval 5] [--duration 120 | --full]
                                         [--conn close|keep] [--check-targets]

Target (issue): 200 learners, each from its own address, start the same exam within one
second: zero errors, p99 start latency < 300 ms; then 200 learners saving an answer every
5 s for the exam's length: p99 < 100 ms.

One command does everything: a fresh PostgreSQL database (dropped at the end), Alembic
migrations, ``LMS_ENV=testing`` (for the testing clock; random keys all the same), a course
with ``--learners`` learners enrolled plus one more (the intruder of the negative check;
classes of ≤ 200, CRS-7) — rows inserted in bulk with one precomputed password hash — and
an admin logged in through the real API (password, then TOTP) who creates the item bank
(``POST /courses/{id}/items``: ``--bank-factor`` × the drawn items per level, single choice
with 4 choices) and the exam (``POST /courses/{id}/exams``: ``--drawn`` items per level,
60 minutes; announced at creation, so it opens 14 days later at the earliest, EXM-7).
gunicorn serves ``wsgi:app`` on 127.0.0.1 (``LMS_TRUSTED_PROXIES`` stays 0: the server sees
the TCP peer). The server's clock is moved with ``PUT /api/v1/testing/clock`` to two minutes
before the opening; the first ``--api-logins`` learners log in through the API, the others
get their session from ``lms.auth.service.open_session`` in a request context (what the
API's login calls); then the clock moves to the opening.

Learner ``i`` always connects from its own loopback address 127.0.1.(i+1) (the client socket
is bound to it; all of 127.0.0.0/8 is local on Linux) and sends its own ``X-LMS-Device``:
EXM-9 refuses a second learner's attempt from an address another learner used in the exam.
TOTP codes are computed for the server's (testing) clock.

0. Warm-up (``--warmup``, default 160): other learners of the course, from addresses of their
   own, start a second exam (a quiz with the same window and draw) and save two answers each,
   as many at a time as the server has threads (workers × threads), so every gunicorn thread
   has opened its pooled connection and run these paths (statement caches, lazy imports,
   PostgreSQL backends' catalog caches and prepared statements, which psycopg prepares and
   PostgreSQL plans generically only after 5 executions on a connection) before the measured
   storm, as on a server that has been up a while. ``--warmup 0`` measures a cold server
   (right after a restart).  Until 2026-11-30 the warm-up ran 32 learners 8 at a time: half
   of the 16 connections were still opened cold by the storm itself.

1. Storm: every learner an asyncio task with its fresh TOTP code ready, released evenly over
   ``--storm-spread`` seconds (default 1: the issue's "200 learners start within one second",
   200 starts/s; 0: all at one instant, a burst whose last answer cannot come before the
   machine has done 200 starts' work — ≈ 0.8 s at ≈ 8 ms of CPU per start on 2 cores),
   each opening a connection from its address and sending ``POST /exams/{id}/attempts``.
   Reported: the spread of the send times, answers by status (and error code), p50/p90/p99/
   max latency (connect → whole answer read). Then in the database: one attempt per learner,
   as many distinct IPs, each attempt's IP the learner's address, each with the drawn item
   count, a ``started`` event each.
2. Negative check: the intruder (another learner, own device, fresh code) from learner 0's
   address must get 403 ``duplicate_ip``, no attempt, and an ``exam_blocked`` access-log row.
3. Answers: every learner saves one answer (``PUT /attempts/{id}/answers/{item_id}``, a
   random choice of its next drawn item) every ``--save-interval`` s, learners' first saves
   spread evenly over the first interval, for ``--duration`` s (``--full``: until 15 s
   before the attempts' deadline, i.e. the exam's 60 minutes). Each learner waits for its
   answer before its next save. Connections: a new one per save, closed after the answer
   (``close``: what the README's nginx does towards gunicorn by default) or the learner's
   own keep-alive connection (``keep``; gunicorn ``--keep-alive 20``). Throughput, p50/p90/
   p99/max, non-2xx; then every save answered 200 must be stored: per attempt, the
   ``attempt_event`` rows of kind ``answer`` equal the 200 answers, and each attempt item's
   stored answer is the last one answered 200 (in the item's original choice order).

CPU seconds of gunicorn and of the database's PostgreSQL backends are measured per phase
(per request they depend much less on the neighbours than latencies do), with the share of
the machine's CPU that other jobs took meanwhile (``/proc/stat`` minus our processes); the
answer phase also reports p99 and that share per 10-s window, and p99 over the windows in
which other jobs used < 15 % (``--wait-quiet`` waits for a quiet machine before each phase).
The load average is recorded before each phase. gunicorn runs as in ``bench_heartbeat.py``
(2 × nproc workers, gthread, 4 threads). ``LMS_ENV=testing`` costs a Redis GET per
``clock.now()`` call that production does not make. Exit status 2 when a run is invalid (a
start not 201, a save not 2xx, a connection error, a failed database check or negative
check); with ``--check-targets`` 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (DEFAULT_PG_ADMIN_URL, DEFAULT_REDIS_URL, ROOT, BenchDatabase, CpuMeter,  # noqa: E402
                    Server, http_call, latency_summary_ms, load_average, log, machine_cpu_seconds, machine_info,
                    insert_learners, wait_quiet, write_report)

PASSWORD = "bench-Password-2026!"
CLASS_SIZE = 200  # CRS-7: classes of at most 200
MAX_COURSE_CAPACITY = 800  # CRS-7
EXAM_MINUTES = 60  # EXM-4: the longest exam
CHOICES = 4
TARGET_LEARNERS = 200
TARGET_START_P99_MS = 300.0
TARGET_SAVE_P99_MS = 100.0
STORM_WINDOW_S = 1.0
WINDOW_S = 10  # the answer phase's latencies are also reported per window of this many seconds
QUIET_SHARE = 0.15  # a window in which other jobs used less than this share of the machine's CPU


def parse_args(argv=None):
    cpus = os.cpu_count() or 2
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pg-admin-url", default=DEFAULT_PG_ADMIN_URL)
    p.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    p.add_argument("--learners", type=int, default=TARGET_LEARNERS,
                   help="learners starting the exam, each from its own loopback address")
    p.add_argument("--api-logins", type=int, default=8,
                   help="learners logged in through the real API (the rest: open_session)")
    p.add_argument("--warmup", type=int, default=160,
                   help="other learners (own addresses) who first start a warm-up exam of the same course and "
                        "save two answers each, workers x threads at a time, so that every gunicorn thread's "
                        "connection has run these paths before the storm (0: a cold server)")
    p.add_argument("--drawn", default="7,7,6",
                   help="items drawn per attempt at the levels easy,medium,hard (EXM-3: 3 levels)")
    p.add_argument("--bank-factor", type=int, default=3,
                   help="items in the bank per drawn item at each level (EXM-5: at least 3)")
    p.add_argument("--storm-spread", type=float, default=1.0,
                   help="seconds over which the learners' start requests are released evenly (default 1: "
                        "200 learners within one second; 0: all at once)")
    p.add_argument("--save-interval", type=float, default=5.0, help="a learner's seconds between answer saves")
    p.add_argument("--duration", type=float, default=120.0, help="seconds of the answer phase")
    p.add_argument("--full", action="store_true",
                   help="answer phase for the exam's length: until 15 s before the attempts' deadline")
    p.add_argument("--conn", choices=("close", "keep"), default="close",
                   help="answer saves on a new connection each, closed after the answer (what the README's "
                        "nginx does towards gunicorn by default), or on the learner's own keep-alive connection")
    p.add_argument("--keep-alive", type=int, default=None,
                   help="gunicorn keep-alive seconds (default bench_me.py's 5; 20 with --conn keep)")
    p.add_argument("--timeout", type=float, default=30.0, help="client timeout per request (s)")
    p.add_argument("--workers", type=int, default=2 * cpus, help="gunicorn workers")
    p.add_argument("--worker-class", default="gthread")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    p.add_argument("--quiet-limit", type=float, default=0.25,
                   help="CPU share used by others below which the machine counts as quiet")
    p.add_argument("--wait-quiet", type=int, default=0,
                   help="seconds to wait for a quiet machine before each phase (0: don't)")
    p.add_argument("--json-out", default=None)
    p.add_argument("--check-targets", action="store_true")
    return p.parse_args(argv)


def source_address(i: int) -> str:
    """Learner ``i``'s loopback address: 127.0.1.1 … 127.0.1.254, then 127.0.2.1 …"""
    return f"127.0.{1 + i // 254}.{1 + i % 254}"


# --- the server's (testing) clock and TOTP codes ------------------------------------------

class ServerClock:
    """The server's testing clock as seen from here: its offset from this machine's real
    time (same machine, so only the testing offset), for TOTP codes the server accepts."""

    def __init__(self, port: int):
        self.port = port
        self.offset = 0.0

    def set(self, when: datetime) -> None:
        status, body = http_call(self.port, "PUT", "/api/v1/testing/clock", {"now": when.isoformat()})
        if status != 204:
            raise RuntimeError(f"PUT /testing/clock answered {status}: {body} (LMS_ENV=testing?)")
        self.sync()

    def sync(self) -> None:
        t0 = time.time()
        status, body = http_call(self.port, "GET", "/api/v1/testing/clock")
        t1 = time.time()
        if status != 200:
            raise RuntimeError(f"GET /testing/clock answered {status}: {body}")
        self.offset = datetime.fromisoformat(body["now"]).timestamp() - (t0 + t1) / 2

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.offset, timezone.utc)

    def code(self, secret: str) -> str:
        import pyotp

        return pyotp.TOTP(secret).at(time.time() + self.offset)


def api_login(port: int, clk: ServerClock, username: str, secret: str, device: str) -> str:
    """The real flow: password step, then a TOTP code (for the server's clock)."""
    hdrs = {"X-LMS-Device": device}
    status, body = http_call(port, "POST", "/api/v1/auth/login", {"username": username, "password": PASSWORD},
                             headers=hdrs)
    if status != 200:
        raise RuntimeError(f"login of {username} answered {status}: {body}")
    status, body = http_call(port, "POST", "/api/v1/auth/otp", {"ticket": body["ticket"], "code": clk.code(secret)},
                             headers=hdrs)
    if status != 200:
        raise RuntimeError(f"OTP step of {username} answered {status}: {body}")
    return body["token"]


# --- set-up -------------------------------------------------------------------------------

def build_world(args) -> dict:
    """Admin, course, classes, learners (+ the intruder) and enrolments, in bulk."""
    from sqlalchemy import insert, select

    from lms import clock, create_app
    from lms.auth import service as auth
    from lms.content import service as content
    from lms.content.models import Section
    from lms.db import db
    from lms.enrolment.models import Enrollment

    n_total = args.learners + 1 + args.warmup  # + the intruder of the negative check + warm-up learners
    app = create_app()
    t0 = time.monotonic()
    with app.app_context():
        admin = auth.create_user(username="bench-exam-admin", password=PASSWORD, role="admin", name="관리자")
        db.session.commit()
        sections_needed = math.ceil(n_total / CLASS_SIZE)
        course = content.create_course(admin, code="EXAM001", title="시험 벤치", credits=3,
                                       starts_on=clock.now().astimezone(clock.KST).date() - timedelta(days=7),
                                       weeks=15, capacity=sections_needed * CLASS_SIZE)
        db.session.flush()
        sections = list(db.session.scalars(select(Section.id).where(Section.course_id == course.id)
                                           .order_by(Section.id)))
        for k in range(len(sections), sections_needed):  # CRS-7: a new class per 200 (as enrolment does)
            sec = Section(course_id=course.id, name=str(k + 1), capacity=CLASS_SIZE)
            db.session.add(sec)
            db.session.flush()
            sections.append(sec.id)
        pw_hash = auth.hash_password(PASSWORD)  # one hash for everyone
        now = clock.now()
        names = [f"ex{i:04d}" for i in range(args.learners + 1)] + [f"wu{k:04d}" for k in range(args.warmup)]
        ids, secrets_ = insert_learners(admin.institution_id, names, pw_hash, now, otp_confirmed=False)
        # warm-up learners from 127.0.4.x on (index 1000 + k), far from the storm's addresses
        people = [{"i": i, "username": u, "id": ids[u], "secret": secrets_[u], "device": f"bench-exam-dev-{u}",
                   "ip": source_address(i if i <= args.learners else 1000 + i - args.learners - 1)}
                  for i, u in enumerate(names)]
        db.session.execute(insert(Enrollment), [
            {"course_id": course.id, "section_id": sections[p["i"] // CLASS_SIZE], "user_id": p["id"],
             "status": "active", "created_at": now, "syllabus_consent_at": now} for p in people])
        db.session.commit()
        world = {"course_id": course.id, "admin": {"username": "bench-exam-admin", "secret": admin.otp_secret},
                 "learners": people[:args.learners], "intruder": people[args.learners],
                 "warmup": people[args.learners + 1:], "sections": len(sections)}
        db.session.remove()
        db.engine.dispose()
    log(f"course {world['course_id']}: {args.learners} learners + 1 (negative check) + {args.warmup} (warm-up) "
        f"enrolled in "
        f"{world['sections']} class(es) ({time.monotonic() - t0:.1f}s)")
    return world


def drawn_levels(args) -> dict[str, int]:
    parts = [int(x) for x in args.drawn.split(",")]
    if len(parts) != 3:
        raise SystemExit("--drawn takes three counts: easy,medium,hard")
    return dict(zip(("easy", "medium", "hard"), parts))


def create_bank_and_exam(args, port: int, clk: ServerClock, world: dict) -> dict:
    """Through the API, as the admin: the item bank, then the exam (announced at creation)."""
    adm = world["admin"]
    token = api_login(port, clk, adm["username"], adm["secret"], "bench-exam-admin")
    h = {"Authorization": f"Bearer {token}"}
    cid = world["course_id"]
    drawn = drawn_levels(args)
    choices_of: dict[int, list[str]] = {}
    t0 = time.monotonic()
    n = 0
    for level, k in drawn.items():
        for j in range(args.bank_factor * k):
            n += 1
            choices = [f"{level} 문항 {j + 1} 보기 {c + 1}" for c in range(CHOICES)]
            status, body = http_call(port, "POST", f"/api/v1/courses/{cid}/items", {
                "difficulty": level, "kind": "single_choice", "prompt": f"{level} 문항 {j + 1}: 옳은 것은?",
                "choices": choices, "answer": j % CHOICES, "points": 5}, headers=h)
            if status != 201:
                raise RuntimeError(f"POST /courses/{cid}/items answered {status}: {body}")
            choices_of[body["id"]] = choices
    # EXM-7: the exam opens at least 14 days after its announcement (= now, at creation).
    # The next full hour (KST) after now + 14 days + 10 minutes; the window lasts one day.
    earliest = clk.now() + timedelta(days=14, minutes=10)
    opens_at = (earliest.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
    closes_at = opens_at + timedelta(days=1)
    status, body = http_call(port, "POST", f"/api/v1/courses/{cid}/exams", {
        "title": "벤치 중간고사", "kind": "midterm", "opens_at": opens_at.isoformat(),
        "closes_at": closes_at.isoformat(), "duration_minutes": EXAM_MINUTES,
        "items_per_difficulty": drawn}, headers=h)
    if status != 201:
        raise RuntimeError(f"POST /courses/{cid}/exams answered {status}: {body}")
    warm_id = None
    if args.warmup:  # same window and draw: a quiz the warm-up learners start before the storm
        status, wbody = http_call(port, "POST", f"/api/v1/courses/{cid}/exams", {
            "title": "벤치 예비 퀴즈 (warm-up)", "kind": "quiz", "opens_at": opens_at.isoformat(),
            "closes_at": closes_at.isoformat(), "duration_minutes": EXAM_MINUTES,
            "items_per_difficulty": drawn}, headers=h)
        if status != 201:
            raise RuntimeError(f"POST /courses/{cid}/exams (warm-up) answered {status}: {wbody}")
        warm_id = wbody["id"]
    log(f"{n} items ({args.bank_factor}× the {sum(drawn.values())} drawn, {drawn}) and exam {body['id']} "
        f"created through the API ({time.monotonic() - t0:.1f}s); opens {body['opens_at']}, "
        f"announced {body['announced_at']}")
    return {"id": body["id"], "warmup_id": warm_id, "opens_at": opens_at, "closes_at": closes_at, "drawn": drawn,
            "items_total": sum(drawn.values()), "bank": n, "choices_of": choices_of}


def open_sessions(args, port: int, clk: ServerClock, world: dict) -> None:
    """Sessions at the server's clock: the first ``--api-logins`` learners through the API,
    the others (and the intruder) by ``open_session`` in a request context."""
    from lms import clock, create_app
    from lms.auth import service as auth
    from lms.auth.models import User
    from lms.db import db

    people = world["learners"] + [world["intruder"]] + world["warmup"]
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for p, tok in zip(people[:args.api_logins], pool.map(
                lambda p: api_login(port, clk, p["username"], p["secret"], p["device"]), people[:args.api_logins])):
            p["token"] = tok
    app = create_app()
    with app.app_context():
        for p in people[args.api_logins:]:
            with app.test_request_context("/api/v1/auth/otp", method="POST", environ_base={"REMOTE_ADDR": p["ip"]},
                                          headers={"User-Agent": "bench_exam", "X-LMS-Device": p["device"]}):
                user = db.session.get(User, p["id"])
                p["token"] = auth.open_session(user, kind="api", now=clock.now())
                db.session.expunge_all()
        db.session.remove()
        db.engine.dispose()
    log(f"sessions: {min(args.api_logins, len(people))} through the API, {max(0, len(people) - args.api_logins)} "
        f"by open_session ({time.monotonic() - t0:.1f}s)")


# --- the HTTP client: one connection per learner address ----------------------------------

CLIENT_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError,
                 ValueError, IndexError)


async def exchange(port: int, ip: str, method: str, path: str, headers: dict, body, conn=None,
                   keep: bool = False) -> dict:
    """One HTTP/1.1 request from source address ``ip`` (a new connection unless ``conn``).
    Times (``time.monotonic``): ``t0`` before connecting, ``sent`` once written, ``done``
    once the whole answer is read. ``conn`` is returned open only when kept alive."""
    t0 = time.monotonic()
    if conn is None:
        conn = await asyncio.open_connection("127.0.0.1", port, local_addr=(ip, 0))
    reader, writer = conn
    try:
        data = json.dumps(body).encode() if body is not None else b""
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                + "Content-Type: application/json\r\nAccept: application/json\r\nUser-Agent: bench_exam\r\n"
                + ("" if keep else "Connection: close\r\n") + f"Content-Length: {len(data)}\r\n\r\n").encode()
        writer.write(head + data)
        sent = time.monotonic()
        await writer.drain()
        status_line, *header_lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        length, closing = 0, not keep
        for h in header_lines:
            name, _, value = h.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                closing = True
        payload = await reader.readexactly(length) if length else b""
        done = time.monotonic()
    except BaseException:
        writer.close()
        raise
    if closing:
        writer.close()
        conn = None
    return {"status": int(status_line.split()[1]), "payload": payload, "t0": t0, "sent": sent, "done": done,
            "conn": conn}


def error_code(payload: bytes) -> str | None:
    try:
        return json.loads(payload).get("error", {}).get("code")
    except (ValueError, AttributeError):
        return None


def status_label(status: int, payload: bytes) -> str:
    if 200 <= status < 300:
        return str(status)
    code = error_code(payload)
    return f"{status} {code}" if code else str(status)


# --- 0. warm-up ---------------------------------------------------------------------------

def warmup_concurrency(args) -> int:
    """Requests in flight during the warm-up: one per server thread (sync workers: one each)."""
    return args.workers * (args.threads if args.worker_class == "gthread" else 1)


def warm_up(args, port: int, clk: ServerClock, exam: dict, people: list[dict]) -> dict:
    """Other learners start the warm-up exam and save two answers each, as many at a time as
    the server has threads, each from its own address: every thread opens its pooled
    connection and runs the start and save paths (statement caches, lazy imports, prepared
    statements) before the measured storm, as a server that has been up for a while would."""
    statuses: Counter = Counter()
    lat: list[float] = []
    sem = asyncio.Semaphore(warmup_concurrency(args))

    async def one(p: dict) -> None:
        headers = {"Authorization": f"Bearer {p['token']}", "X-LMS-Device": p["device"]}
        async with sem:
            try:
                path = f"/api/v1/exams/{exam['warmup_id']}/attempts"
                r = await asyncio.wait_for(exchange(port, p["ip"], "POST", path, headers,
                                                    {"otp": clk.code(p["secret"])}), args.timeout)
                statuses[status_label(r["status"], r["payload"])] += 1
                lat.append(r["done"] - r["t0"])
                if r["status"] != 201:
                    return
                body = json.loads(r["payload"])
                for it in body["items"][:2]:
                    r = await asyncio.wait_for(exchange(port, p["ip"], "PUT", f"/api/v1/attempts/{body['attempt_id']}"
                                                        f"/answers/{it['id']}", headers, {"answer": 0}), args.timeout)
                    statuses[status_label(r["status"], r["payload"])] += 1
            except CLIENT_ERRORS as exc:
                statuses[type(exc).__name__] += 1

    async def main() -> None:
        await asyncio.gather(*(one(p) for p in people))

    t0 = time.monotonic()
    asyncio.run(main())
    return {"learners": len(people), "statuses": dict(statuses), "start_latency": latency_summary_ms(lat),
            "wall_s": time.monotonic() - t0}


# --- 1. the storm -------------------------------------------------------------------------

def storm(args, port: int, clk: ServerClock, exam: dict, learners: list[dict]) -> dict:
    """Every learner's start, released together (or spread over ``--storm-spread`` s)."""
    statuses: Counter = Counter()
    errors: Counter = Counter()
    rows: list[dict] = []
    path = f"/api/v1/exams/{exam['id']}/attempts"

    async def start(l: dict, release: float) -> None:
        await asyncio.sleep(max(0.0, release - time.monotonic()))
        headers = {"Authorization": f"Bearer {l['token']}", "X-LMS-Device": l["device"]}
        try:
            r = await asyncio.wait_for(exchange(port, l["ip"], "POST", path, headers, {"otp": l["code"]}),
                                       args.timeout)
        except CLIENT_ERRORS as exc:
            errors[type(exc).__name__] += 1
            return
        statuses[status_label(r["status"], r["payload"])] += 1
        rows.append({"i": l["i"], "release": release, "t0": r["t0"], "sent": r["sent"], "done": r["done"],
                     "status": r["status"]})
        if r["status"] == 201:
            body = json.loads(r["payload"])
            l["attempt_id"] = body["attempt_id"]
            l["deadline"] = body["deadline"]
            l["items"] = [(it["id"], it["choices"]) for it in body["items"]]

    async def main() -> float:
        for l in learners:
            l["code"] = clk.code(l["secret"])  # ready before the barrier (valid ±1 step)
        release = time.monotonic() + 0.5
        n = len(learners)
        await asyncio.gather(*(start(l, release + (args.storm_spread * k / n if n else 0.0))
                               for k, l in enumerate(learners)))
        return release

    cpu0 = time.process_time()
    release = asyncio.run(main())
    client_cpu = time.process_time() - cpu0
    sends = sorted(r["sent"] - release for r in rows)
    lat = [r["done"] - r["t0"] for r in rows]
    res = {"learners": len(learners), "statuses": dict(statuses), "connection_errors": dict(errors),
           "created_201": statuses.get("201", 0),
           "errors": sum(c for s, c in statuses.items() if s != "201") + sum(errors.values()),
           "send_first_ms": sends[0] * 1000 if sends else None, "send_last_ms": sends[-1] * 1000 if sends else None,
           "send_spread_ms": (sends[-1] - sends[0]) * 1000 if sends else None,
           "latency": latency_summary_ms(lat),
           "last_answer_after_release_ms": max((r["done"] - release for r in rows), default=0) * 1000,
           "client_cpu_s": client_cpu}
    return res


def verify_storm(bdb, exam: dict, learners: list[dict]) -> dict:
    import psycopg

    want_ip = {l["id"]: l["ip"] for l in learners}
    with psycopg.connect(bdb.psycopg_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT a.id, a.learner_id, a.ip, count(ai.id) FROM attempt a LEFT JOIN attempt_item ai "
            "ON ai.attempt_id = a.id WHERE a.exam_id = %s GROUP BY a.id, a.learner_id, a.ip", (exam["id"],)).fetchall()
        started = conn.execute("SELECT count(*) FROM attempt_event WHERE exam_id = %s AND kind = 'started'",
                               (exam["id"],)).fetchone()[0]
        ip_rows = conn.execute("SELECT count(DISTINCT value) FROM attempt_address WHERE exam_id = %s AND kind = 'ip'",
                               (exam["id"],)).fetchone()[0]
    wrong_ip = [(lid, ip) for _aid, lid, ip, _n in rows if want_ip.get(lid) != ip]
    wrong_items = [(aid, n) for aid, _lid, _ip, n in rows if n != exam["items_total"]]
    return {"attempts": len(rows), "distinct_ips": len({ip for _a, _l, ip, _n in rows}),
            "attempts_with_their_learners_ip": len(rows) - len(wrong_ip), "wrong_ip": wrong_ip[:10],
            "attempts_with_drawn_count": len(rows) - len(wrong_items), "wrong_item_counts": wrong_items[:10],
            "items_drawn_each": exam["items_total"], "started_events": started, "ip_address_rows": ip_rows}


# --- 2. negative check --------------------------------------------------------------------

def negative_check(port: int, clk: ServerClock, bdb, exam: dict, intruder: dict, victim: dict) -> dict:
    """Another learner (own device, fresh code) from an address already used in the exam."""
    import psycopg

    headers = {"Authorization": f"Bearer {intruder['token']}", "X-LMS-Device": intruder["device"]}

    async def go():
        return await asyncio.wait_for(exchange(port, victim["ip"], "POST", f"/api/v1/exams/{exam['id']}/attempts",
                                               headers, {"otp": clk.code(intruder["secret"])}), 30)

    r = asyncio.run(go())
    code = error_code(r["payload"])
    with psycopg.connect(bdb.psycopg_url, autocommit=True) as conn:
        attempts = conn.execute("SELECT count(*) FROM attempt WHERE exam_id = %s AND learner_id = %s",
                                (exam["id"], intruder["id"])).fetchone()[0]
        blocked = conn.execute("SELECT count(*) FROM access_log WHERE event = 'exam_blocked' AND username = %s "
                               "AND detail LIKE %s", (intruder["username"], "%duplicate_ip%")).fetchone()[0]
    ok = r["status"] == 403 and code == "duplicate_ip" and attempts == 0 and blocked == 1
    return {"from_ip": victim["ip"], "status": r["status"], "code": code, "attempts_created": attempts,
            "exam_blocked_log_rows": blocked, "latency_ms": (r["done"] - r["t0"]) * 1000, "ok": ok}


# --- 3. answer saves ----------------------------------------------------------------------

def answer_phase(args, port: int, learners: list[dict], choices_of: dict, duration: float,
                 meter: CpuMeter) -> dict:
    """Every learner saves one answer every ``--save-interval`` s, first saves spread evenly.
    Latencies are also kept per ``WINDOW_S`` window, with the share of the machine's CPU
    that other jobs used in that window (sampled beside the savers)."""
    interval = args.save_interval
    keep = args.conn == "keep"
    statuses: Counter = Counter()
    errors: Counter = Counter()
    latencies: list[float] = []
    lateness: list[float] = []
    ok_per_attempt: Counter = Counter()
    last_ok: dict[tuple[int, int], int] = {}  # (attempt, item) → answer in the item's original order
    windows: dict[int, list[float]] = {}  # latencies by WINDOW_S window of the phase
    last_done = [0.0]

    async def saver(l: dict, k: int, t0: float, end: float, rng: random.Random) -> None:
        conn = None
        n = 0
        offset = interval * k / len(learners)
        while True:
            due = t0 + offset + n * interval
            if due >= end:
                break
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())
            lateness.append(max(0.0, time.monotonic() - due))
            item_id, shown = l["items"][n % len(l["items"])]
            n += 1
            choice = rng.randrange(len(shown))
            headers = {"Authorization": f"Bearer {l['token']}", "X-LMS-Device": l["device"]}
            try:
                r = await asyncio.wait_for(exchange(port, l["ip"], "PUT", f"/api/v1/attempts/{l['attempt_id']}"
                                                    f"/answers/{item_id}", headers, {"answer": choice}, conn, keep),
                                           args.timeout)
            except CLIENT_ERRORS as exc:
                errors[type(exc).__name__] += 1
                if conn is not None:
                    conn[1].close()
                conn = None
                continue
            conn = r["conn"]
            last_done[0] = max(last_done[0], r["done"])
            latencies.append(r["done"] - r["t0"])
            windows.setdefault(int((r["t0"] - t0) // WINDOW_S), []).append(r["done"] - r["t0"])
            statuses[status_label(r["status"], r["payload"])] += 1
            if r["status"] == 200:
                ok_per_attempt[l["attempt_id"]] += 1
                last_ok[(l["attempt_id"], item_id)] = choices_of[item_id].index(shown[choice])
        if conn is not None:
            conn[1].close()

    others: dict[int, float] = {}  # window → share of the machine's CPU used by other jobs

    def sample():
        return meter.snapshot(), machine_cpu_seconds(), time.process_time()

    async def sampler(t0: float, end: float) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        prev = await loop.run_in_executor(None, sample)
        w = 0
        while t0 + w * WINDOW_S < end:
            await asyncio.sleep(max(0.0, min(end, t0 + (w + 1) * WINDOW_S) - time.monotonic()))
            cur = await loop.run_in_executor(None, sample)
            cpu = CpuMeter.delta(prev[0], cur[0])
            busy, total = cur[1][0] - prev[1][0], max(1e-9, cur[1][1] - prev[1][1])
            ours = cpu["server"] + cpu["db"] + (cur[2] - prev[2])
            others[w] = max(0.0, busy - ours) / total
            prev, w = cur, w + 1

    async def main() -> float:
        t0 = time.monotonic() + 0.5
        rngs = [random.Random(l["i"]) for l in learners]
        await asyncio.gather(sampler(t0, t0 + duration),
                             *(saver(l, k, t0, t0 + duration, rngs[k]) for k, l in enumerate(learners)))
        return t0

    cpu0 = time.process_time()
    t0 = asyncio.run(main())
    wall = max(last_done[0], t0 + 1e-9) - t0  # phase start to the last answer
    client_cpu = time.process_time() - cpu0
    n = len(latencies)
    late = sorted(lateness)
    return {"learners": len(learners), "interval_s": interval, "duration_s": duration, "wall_s": wall,
            "offered_per_s": len(learners) / interval, "requests": n, "per_s": n / max(1e-9, wall),
            "statuses": dict(statuses), "connection_errors": dict(errors),
            "non_2xx": sum(c for s, c in statuses.items() if not s.startswith("2")),
            "latency": latency_summary_ms(latencies),
            "client_late_p99_ms": late[min(len(late) - 1, int(0.99 * len(late)))] * 1000 if late else 0.0,
            "client_cpu_s": client_cpu, "answered_200": sum(ok_per_attempt.values()),
            "windows": [{"from_s": w * WINDOW_S, "others_cpu_share": round(others.get(w, float("nan")), 3),
                         **{k: round(v, 1) for k, v in latency_summary_ms(windows[w]).items()}}
                        for w in sorted(windows)],
            "latency_quiet_windows": latency_summary_ms(
                [x for w, xs in windows.items() if others.get(w, 1.0) < QUIET_SHARE for x in xs]),
            "quiet_windows": sum(1 for w in windows if others.get(w, 1.0) < QUIET_SHARE),
            "_ok_per_attempt": ok_per_attempt, "_last_ok": last_ok}


def answer_rows(bdb, exam_id: int) -> dict[int, int]:
    import psycopg

    with psycopg.connect(bdb.psycopg_url, autocommit=True) as conn:
        return dict(conn.execute("SELECT attempt_id, count(*) FROM attempt_event WHERE exam_id = %s "
                                 "AND kind = 'answer' GROUP BY attempt_id", (exam_id,)).fetchall())


def verify_answers(bdb, exam_id: int, before: dict[int, int], res: dict) -> dict:
    """Every save answered 200 stored: answer events per attempt, and the last answer."""
    import psycopg

    deadline = time.monotonic() + 20  # what is still in flight (timed-out requests) settles
    after = answer_rows(bdb, exam_id)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = answer_rows(bdb, exam_id)
        if again == after:
            break
        after = again
    ok = res["_ok_per_attempt"]
    lost = sum(max(0, n - (after.get(a, 0) - before.get(a, 0))) for a, n in ok.items())
    stored = sum(after.values()) - sum(before.values())
    with psycopg.connect(bdb.psycopg_url, autocommit=True) as conn:
        stored_answers = {(a, i): ans for a, i, ans in conn.execute(
            "SELECT ai.attempt_id, ai.item_id, ai.answer FROM attempt_item ai JOIN attempt a ON a.id = ai.attempt_id "
            "WHERE a.exam_id = %s", (exam_id,)).fetchall()}
    wrong = [(k, v, stored_answers.get(k)) for k, v in res["_last_ok"].items() if stored_answers.get(k) != v]
    return {"answered_200": res["answered_200"], "answer_events_stored": stored, "lost": lost,
            "items_checked": len(res["_last_ok"]), "last_answer_mismatches": len(wrong), "examples": wrong[:5]}


# --- main ---------------------------------------------------------------------------------

def main(argv=None) -> int:
    args = parse_args(argv)
    if args.learners < 1 or args.warmup < 0 or args.learners + 1 + args.warmup > MAX_COURSE_CAPACITY:
        log(f"--learners + 1 + --warmup must be at most {MAX_COURSE_CAPACITY} (one course, CRS-7)")
        return 2
    if args.bank_factor < 3:
        log("--bank-factor must be at least 3 (EXM-5)")
        return 2
    started = time.monotonic()
    load_start = load_average()
    srv_box: list[Server] = []
    invalid: list[str] = []
    with BenchDatabase("bench_exam", args.pg_admin_url, args.redis_url,
                       extra_env={"LMS_ENV": "testing", "LMS_TRUSTED_PROXIES": "0"}) as bdb:
        try:
            return _run(args, bdb, srv_box, invalid, started, load_start)
        finally:
            for srv in srv_box:
                srv.stop()


def _phase_start(args, name: str) -> dict:
    busy = wait_quiet(args.quiet_limit, args.wait_quiet) if args.wait_quiet else None
    la = load_average()
    log(f"{name}: load average {' '.join(f'{x:.2f}' for x in la)}"
        + (f", machine busy {busy:.0%}" if busy is not None else ""))
    return {"load_average_before": la, "machine_busy_before": busy}


def _cpu(meter: CpuMeter, before: dict, machine_before: tuple, requests: int, client_s: float) -> dict:
    """CPU of gunicorn and PostgreSQL per request, and what the machine's cores did over the
    phase: ours (gunicorn + PostgreSQL + this client) and the other jobs' share."""
    cpu = CpuMeter.delta(before, meter.snapshot())
    busy1, total1 = machine_cpu_seconds()
    busy, total = busy1 - machine_before[0], max(1e-9, total1 - machine_before[1])
    n = max(1, requests)
    ours = cpu["server"] + cpu["db"] + client_s
    return {"gunicorn_s": cpu["server"], "postgresql_s": cpu["db"], "client_s": client_s,
            "gunicorn_ms_per_request": cpu["server"] * 1000 / n, "postgresql_ms_per_request": cpu["db"] * 1000 / n,
            "machine_busy_share": busy / total, "ours_share": ours / total,
            "others_share": max(0.0, busy - ours) / total}


def code_version() -> dict:
    """The commit measured, and the files under lms/ that differ from it (others edit the tree)."""
    import subprocess

    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=20).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = [ln[3:] for ln in git("status", "--porcelain", "--", "lms", "migrations").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted_lms_files": dirty}


def _run(args, bdb, srv_box, invalid, started, load_start) -> int:
    info = machine_info(bdb.version)
    info["code"] = code_version()
    log("machine: " + json.dumps(info, ensure_ascii=False))
    world = build_world(args)
    learners = world["learners"]
    srv = Server("lms", "wsgi:app", ROOT, bdb.server_env(), args, bdb.tmp)
    if args.keep_alive is None and args.conn == "keep":
        args.keep_alive = 20  # bench_me.Server's 5 s would close a learner's connection between saves
    if args.keep_alive is not None:
        srv.cmd[srv.cmd.index("--keep-alive") + 1] = str(args.keep_alive)
    srv_box.append(srv)
    srv.start()
    srv.wait_ready("/api/v1/health")
    log(f"gunicorn: {args.workers} workers, class {args.worker_class}, {args.threads} threads each, "
        f"127.0.0.1:{srv.port}, LMS_ENV=testing, LMS_TRUSTED_PROXIES=0")
    clk = ServerClock(srv.port)
    clk.sync()
    exam = create_bank_and_exam(args, srv.port, clk, world)

    clk.set(exam["opens_at"] - timedelta(minutes=2))
    open_sessions(args, srv.port, clk, world)
    clk.set(exam["opens_at"] + timedelta(seconds=1))
    log(f"server clock set to {clk.now().isoformat()} (the exam opened at {exam['opens_at'].isoformat()})")
    meter = CpuMeter(srv.proc.pid, args.pg_admin_url, bdb.name)

    warm = None
    if args.warmup:
        warm = warm_up(args, srv.port, clk, exam, world["warmup"])
        log(f"warm-up: {warm['learners']} learners started the warm-up exam and saved 2 answers each, "
            f"{warmup_concurrency(args)} at a time ({warm['wall_s']:.1f}s): {warm['statuses']}; start p50 {warm['start_latency']['p50_ms']:.0f} ms, max "
            f"{warm['start_latency']['max_ms']:.0f} ms")
        if set(warm["statuses"]) - {"200", "201"}:
            invalid.append(f"warm-up: unexpected answers {warm['statuses']}")

    # 1. storm
    ctx = _phase_start(args, "storm")
    log(f"storm: {len(learners)} learners, each from its own address, POST /exams/{exam['id']}/attempts "
        + ("all at once" if not args.storm_spread else f"released over {args.storm_spread:g} s") + " ...")
    cpu0, m0 = meter.snapshot(), machine_cpu_seconds()
    st = storm(args, srv.port, clk, exam, learners)
    st.update(ctx)
    st["cpu"] = _cpu(meter, cpu0, m0, st["latency"]["n"], st["client_cpu_s"])
    st["verify"] = verify_storm(bdb, exam, learners)
    v, lat = st["verify"], st["latency"]
    log(f"  statuses {st['statuses']}, connection errors {st['connection_errors'] or 0}; sends spread over "
        f"{st['send_spread_ms']:.0f} ms; p50 {lat['p50_ms']:.0f} ms, p90 {lat['p90_ms']:.0f} ms, p99 "
        f"{lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms")
    log(f"  database: {v['attempts']} attempts, {v['distinct_ips']} distinct IPs, {v['attempts_with_drawn_count']} "
        f"with {v['items_drawn_each']} items drawn, {v['started_events']} 'started' events")
    if st["errors"]:
        invalid.append(f"storm: {st['errors']} starts not 201 {st['statuses']} {st['connection_errors']}")
    n = len(learners)
    if not (v["attempts"] == n and v["distinct_ips"] == n and v["attempts_with_their_learners_ip"] == n
            and v["attempts_with_drawn_count"] == n and v["started_events"] == n):
        invalid.append(f"storm: database check failed {v}")

    # 2. negative check
    neg = negative_check(srv.port, clk, bdb, exam, world["intruder"], learners[0])
    log(f"negative check: another learner from {neg['from_ip']} answered {neg['status']} {neg['code']}, attempts "
        f"created {neg['attempts_created']}, exam_blocked log rows {neg['exam_blocked_log_rows']}: "
        f"{'ok' if neg['ok'] else 'FAILED'}")
    if not neg["ok"]:
        invalid.append(f"negative check failed: {neg}")

    # 3. answers
    ctx = _phase_start(args, "answers")
    runnable = [l for l in learners if l.get("attempt_id")]
    deadline = min(datetime.fromisoformat(l["deadline"]) for l in runnable) if runnable else clk.now()
    remaining = (deadline - clk.now()).total_seconds() - 15
    duration = remaining if args.full else min(args.duration, remaining)
    if not args.full and args.duration > remaining:
        log(f"  --duration {args.duration:g} cut to {duration:.0f} s: the attempts' deadline comes first")
    log(f"answers: {len(runnable)} learners, one save each per {args.save_interval:g} s "
        f"(offered {len(runnable) / args.save_interval:.0f}/s), "
        f"{'a new connection per save' if args.conn == 'close' else 'own keep-alive connection'}, "
        f"for {duration:.0f} s ...")
    before = answer_rows(bdb, exam["id"])
    cpu0, m0 = meter.snapshot(), machine_cpu_seconds()
    ans = answer_phase(args, srv.port, runnable, exam["choices_of"], duration, meter)
    ans.update(ctx)
    ans["cpu"] = _cpu(meter, cpu0, m0, ans["requests"], ans["client_cpu_s"])
    ans["verify"] = verify_answers(bdb, exam["id"], before, ans)
    for k in ("_ok_per_attempt", "_last_ok"):
        ans.pop(k)
    lat, v = ans["latency"], ans["verify"]
    log(f"  {ans['per_s']:.1f} saves/s, p50 {lat['p50_ms']:.1f} ms, p90 {lat['p90_ms']:.1f} ms, p99 "
        f"{lat['p99_ms']:.1f} ms, max {lat['max_ms']:.0f} ms, non-2xx {ans['non_2xx']}, connection errors "
        f"{sum(ans['connection_errors'].values())}")
    log(f"  answered 200: {v['answered_200']}, 'answer' events stored: {v['answer_events_stored']}, lost {v['lost']}; "
        f"last answers differing from the stored ones: {v['last_answer_mismatches']} of {v['items_checked']}")
    if ans["non_2xx"] or ans["connection_errors"]:
        invalid.append(f"answers: non-2xx {ans['statuses']}, connection errors {ans['connection_errors']}")
    if v["lost"] or v["last_answer_mismatches"] or v["answer_events_stored"] != v["answered_200"]:
        invalid.append(f"answers: stored evidence differs from the 200 answers {v}")

    return finish(args, info, world, exam, warm, st, neg, ans, invalid, started, load_start)


def finish(args, info, world, exam, warm, st, neg, ans, invalid, started, load_start) -> int:
    n = len(world["learners"])
    full_size = n >= TARGET_LEARNERS and args.save_interval <= 5.0
    storm_ok = (st["errors"] == 0 and st["created_201"] == n and st["latency"]["p99_ms"] < TARGET_START_P99_MS
                and st["send_last_ms"] is not None and st["send_last_ms"] <= STORM_WINDOW_S * 1000)
    save_ok = ans["non_2xx"] == 0 and not ans["connection_errors"] and ans["latency"]["p99_ms"] < TARGET_SAVE_P99_MS
    sl, al = st["latency"], ans["latency"]
    print()
    print(f"Exam start storm and answer saves, database {info['db']}; gunicorn {args.workers} x {args.worker_class} "
          f"({args.threads} threads); {info['nproc']} CPUs ({info['cpu_model']}), Python {info['python']}; "
          f"load average at start {' '.join(f'{x:.2f}' for x in load_start)}")
    print(f"exam: {exam['items_total']} items drawn {exam['drawn']} from a bank of {exam['bank']}, "
          f"{EXAM_MINUTES} minutes; each learner from its own address (127.0.1.1 …)")
    if warm:
        print(f"warm-up first: {warm['learners']} other learners started a warm-up exam of the course and saved 2 "
              f"answers each, {warmup_concurrency(args)} at a time (start p50 {warm['start_latency']['p50_ms']:.0f} ms)")
    print(f"{'':10}{'requests':>9}{'per s':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}"
          f"   CPU ms/request gunicorn + PostgreSQL; machine CPU ours / others'; load avg before")
    for name, r, rate in (("start", st, None), ("save", ans, ans["per_s"])):
        lat, c = r["latency"], r["cpu"]
        errs = r["errors"] if name == "start" else r["non_2xx"] + sum(r["connection_errors"].values())
        print(f"{name:10}{lat['n']:>9}{('' if rate is None else f'{rate:.1f}'):>8}{lat['p50_ms']:>9.1f}"
              f"{lat['p90_ms']:>9.1f}{lat['p99_ms']:>9.1f}{lat['max_ms']:>9.1f}{errs:>8}   "
              f"{c['gunicorn_ms_per_request']:.1f} + {c['postgresql_ms_per_request']:.1f}; "
              f"{c['ours_share']:.0%} / {c['others_share']:.0%}; {r['load_average_before'][0]:.2f}")
    print(f"storm: {n} starts sent {st['send_first_ms']:.0f}–{st['send_last_ms']:.0f} ms after the barrier "
          f"(spread {st['send_spread_ms']:.0f} ms); answers {st['statuses']}; last answer "
          f"{st['last_answer_after_release_ms']:.0f} ms after the barrier")
    v = st["verify"]
    print(f"  database: {v['attempts']} attempts, {v['distinct_ips']} distinct IPs "
          f"({v['attempts_with_their_learners_ip']} the learner's own), {v['attempts_with_drawn_count']} with "
          f"{v['items_drawn_each']} items each, {v['started_events']} 'started' events")
    print(f"negative check: a second learner from {neg['from_ip']} → {neg['status']} {neg['code']} "
          f"(no attempt: {neg['attempts_created'] == 0}, logged: {neg['exam_blocked_log_rows'] == 1}): "
          f"{'ok' if neg['ok'] else 'FAILED'}")
    v = ans["verify"]
    print(f"saves: {ans['learners']} learners × 1 per {ans['interval_s']:g} s for {ans['duration_s']:.0f} s "
          f"({args.conn}), offered {ans['offered_per_s']:.0f}/s, achieved {ans['per_s']:.1f}/s; statuses "
          f"{ans['statuses']}; answered 200 {v['answered_200']}, 'answer' events stored {v['answer_events_stored']}, "
          f"lost {v['lost']}; stored last answers differing {v['last_answer_mismatches']} of {v['items_checked']}")
    q = ans["latency_quiet_windows"]
    print(f"  per {WINDOW_S} s window (p99 ms / others' CPU share): "
          + ", ".join(f"{w['p99_ms']:.0f}/{w['others_cpu_share']:.0%}" for w in ans["windows"]))
    print(f"  in the {ans['quiet_windows']} of {len(ans['windows'])} windows where other jobs used < "
          f"{QUIET_SHARE:.0%} of the CPU: {q['n']} saves, p50 {q['p50_ms']:.1f} ms, p99 {q['p99_ms']:.1f} ms, "
          f"max {q['max_ms']:.1f} ms")
    print(f"target start: {TARGET_LEARNERS} learners within {STORM_WINDOW_S:g} s, 0 errors, p99 < "
          f"{TARGET_START_P99_MS:.0f} ms: {'met' if storm_ok else 'MISSED'} (p99 {sl['p99_ms']:.0f} ms)"
          + ("" if full_size else " — not the target's size"))
    print(f"target saves: p99 < {TARGET_SAVE_P99_MS:.0f} ms, 0 errors: {'met' if save_ok else 'MISSED'} "
          f"(p99 {al['p99_ms']:.1f} ms over the run, {q['p99_ms']:.1f} ms in the quiet windows"
          + (", full exam length)" if args.full else f"; {ans['duration_s']:.0f} s of the exam's {EXAM_MINUTES} min)"))
    print(f"total time {time.monotonic() - started:.0f}s")
    for problem in invalid:
        print(f"INVALID RUN: {problem}")
    write_report("bench_exam", {
        "machine": info, "load_average_start": load_start, "learners": n,
        "settings": {k: getattr(args, k) for k in ("learners", "warmup", "api_logins", "drawn", "bank_factor",
                                                   "storm_spread", "save_interval", "duration", "full", "conn",
                                                   "keep_alive", "timeout", "workers", "worker_class", "threads",
                                                   "wait_quiet", "quiet_limit")},
        "exam": {k: exam[k] for k in ("id", "warmup_id", "opens_at", "closes_at", "drawn", "items_total", "bank")},
        "warmup": warm, "storm": st, "negative_check": neg, "answers": ans,
        "targets": {"start_p99_ms": TARGET_START_P99_MS, "save_p99_ms": TARGET_SAVE_P99_MS,
                    "start_met": storm_ok, "save_met": save_ok, "full_size": full_size},
        "invalid": invalid, "total_s": time.monotonic() - started,
    }, args.json_out)
    if invalid:
        return 2
    if args.check_targets and not (storm_ok and save_ok and full_size):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
