"""Benchmark: authenticated GET /api/v1/me under gunicorn against a bare Flask endpoint.

    .venv/bin/python bench/bench_me.py [--db postgresql|sqlite] [--duration 15] [--rounds 3]

One command does everything: a fresh database (PostgreSQL by default, dropped at the end),
Alembic migrations, random production keys, a learner logged in through the real API
(password step, then TOTP from the returned secret), two gunicorn servers with identical
settings (the LMS's ``wsgi:app`` and ``bench/bare_app.py``), then ``wrk`` on 127.0.0.1 at
64 concurrent connections against each, and a report: requests/s, p50/p90/p99 latency and
the ratio LMS / bare. Needs the Debian package ``wrk``.

Both servers: gunicorn, 2 x nproc workers of class ``gthread`` with 4 threads each (4 x 4
on 2 cores): threads keep wrk's 64 keep-alive connections open and let a worker overlap its
PostgreSQL round trips; sync workers would close every connection after one answer. The
alternation bare, LMS, bare, LMS, ... (``--rounds``, median reported) and a wait for a
quiet machine before each measurement (``--wait-quiet``) make figures from a shared
machine comparable; the CPU time per request of gunicorn, of the database's backends and
of wrk is reported too, since it depends much less on what else runs.

A run is refused (exit status 2) when any answer was not 2xx, when wrk saw socket errors,
or when the access log holds fewer ``request`` rows than wrk counted answers from the LMS
(REC-1: every authenticated request is logged before its view runs). With
``--check-targets`` the exit status is 1 when the targets (ratio >= 0.40, LMS p99 < 50 ms)
are missed.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
VENV_BIN = Path(sys.executable).parent
LUA_SCRIPT = BENCH_DIR / "wrk_report.lua"
ME_PATH = "/api/v1/me"

TARGET_RATIO = 0.40
TARGET_P99_MS = 50.0

USERNAME = "bench-learner"
PASSWORD = "bench-Password-2026!"


# --- helpers ---------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_call(port: int, method: str, path: str, body=None, headers=None, timeout=10):
    """One request on 127.0.0.1 (no redirects followed): (status, parsed JSON or text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Accept": "application/json", **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")
    finally:
        conn.close()


class Server:
    """A gunicorn master (and its workers) in a process group of its own."""

    def __init__(self, name: str, app_spec: str, cwd: Path, env: dict, args, log_dir: Path):
        self.name = name
        self.port = free_port()
        self.log_path = log_dir / f"gunicorn-{name}.log"
        self.cmd = [
            str(VENV_BIN / "gunicorn"), app_spec,
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(args.workers),
            "--worker-class", args.worker_class,
            "--threads", str(args.threads),
            "--backlog", "2048",
            "--keep-alive", "5",
            "--timeout", "60",
            "--graceful-timeout", "10",
            "--log-level", "warning",
            # Two servers at once: without this both (and any other gunicorn of this user)
            # would claim the same default control socket, ~/.gunicorn/gunicorn.ctl.
            "--no-control-socket",
        ]
        self.cwd = cwd
        self.env = env
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) exited with {self.proc.returncode}; "
                                   f"see {self.log_path}:\n{self.log_tail()}")
            try:
                status, _ = http_call(self.port, "GET", path, timeout=2)
                if status < 500:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn ({self.name}) not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)  # the group this script created
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)
        except ProcessLookupError:
            pass
        finally:
            if self._log:
                self._log.close()


_CLK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / _CLK  # utime + stime


class CpuMeter:
    """CPU seconds used by one gunicorn server (its process group) and by the PostgreSQL
    backends of the bench database. Throughput on a shared machine depends on the
    neighbours; CPU per request much less, so it is reported beside the rates."""

    def __init__(self, pgid: int, pg_admin_url: str | None, db_name: str | None):
        self.pgid = pgid
        self.pg_admin_url = pg_admin_url
        self.db_name = db_name

    def _pg_pids(self) -> list[int]:
        if not self.pg_admin_url:
            return []
        import psycopg

        with psycopg.connect(self.pg_admin_url, autocommit=True) as conn:
            return [r[0] for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.db_name,))]

    def snapshot(self) -> dict:
        server = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                f = _stat_fields(int(d))
                if f is not None and int(f[2]) == self.pgid:
                    server[int(d)] = _cpu_seconds(f)
        db = {}
        for pid in self._pg_pids():
            f = _stat_fields(pid)
            if f is not None:  # a local server: its processes are visible here
                db[pid] = _cpu_seconds(f)
        return {"server": server, "db": db}

    @staticmethod
    def delta(before: dict, after: dict) -> dict:
        return {part: sum(cpu - before[part].get(pid, 0.0) for pid, cpu in after[part].items())
                for part in ("server", "db")}


def run_wrk(args, url: str, duration: int, token: str | None) -> dict:
    env = dict(os.environ)
    env.pop("BENCH_TOKEN", None)
    if token:
        env["BENCH_TOKEN"] = token
    cmd = [args.wrk, "-t", str(args.wrk_threads), "-c", str(args.connections), "-d", f"{duration}s",
           "--timeout", "10s", "--latency", "-s", str(LUA_SCRIPT), url]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr}\n{out.stdout}")
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"no summary from wrk:\n{out.stdout}\n{out.stderr}")
    res = json.loads(line[len("BENCH_JSON "):])
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    for k in ("lat_mean_us", "lat_p50_us", "lat_p90_us", "lat_p99_us", "lat_max_us"):
        res[k.replace("_us", "_ms")] = res[k] / 1000.0
    res["wrk_cpu_s"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    res["socket_errors"] = res["errors_connect"] + res["errors_read"] + res["errors_write"] + res["errors_timeout"]
    res["wrk_output"] = out.stdout
    return res


def cpu_busy(seconds: float = 2.0) -> float:
    """Share of the machine's CPU time (0..1) used by anything during ``seconds``."""
    def sample():
        vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals[:8]), idle
    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 1.0 - (i1 - i0) / max(1, t1 - t0)


def wait_quiet(limit: float, max_wait: int) -> float:
    """Wait (up to ``max_wait`` s) until other processes use less than ``limit`` of the
    CPU: figures taken on a busy machine measure the neighbours. Returns the last share."""
    deadline = time.monotonic() + max_wait
    busy = cpu_busy()
    while busy >= limit and time.monotonic() < deadline:
        log(f"machine busy ({busy:.0%} CPU used by other processes); waiting for it to calm down")
        time.sleep(5)
        busy = cpu_busy()
    if busy >= limit:
        log(f"WARNING: still {busy:.0%} busy; the figures will be lower than on a quiet machine")
    return busy


def machine_info(db_version: str) -> dict:
    model = "unknown"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal:"):
                mem = f"{int(ln.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        wrk_v = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        wrk_v = "unknown"
    try:
        gv = subprocess.run([str(VENV_BIN / "gunicorn"), "--version"], capture_output=True,
                            text=True).stdout.strip()
    except OSError:
        gv = "unknown"
    return {"nproc": os.cpu_count(), "memory": mem, "cpu_model": model,
            "python": platform.python_version(), "db": db_version, "gunicorn": gv, "wrk": wrk_v,
            "kernel": platform.release()}


# --- database --------------------------------------------------------------------------

def pg_create(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def pg_drop(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_app_database() -> tuple[str, str]:
    """Migrate the (blank) database and create the learner. Returns (OTP secret, DB version)."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from lms import create_app
    from lms.auth import service
    from lms.db import db

    app = create_app()
    with app.app_context():
        upgrade()
        user = service.create_user(username=USERNAME, password=PASSWORD, role="learner", name="홍길동")
        db.session.commit()
        secret = user.otp_secret
        if db.engine.dialect.name == "postgresql":
            version = "PostgreSQL " + db.session.scalar(text("SHOW server_version"))
        else:
            version = "SQLite " + db.session.scalar(text("select sqlite_version()"))
        db.session.remove()
        db.engine.dispose()
    return secret, version


def count_request_rows() -> int:
    from sqlalchemy import func, select

    from lms import create_app
    from lms.audit.models import AccessLog
    from lms.db import db

    app = create_app()
    with app.app_context():
        try:
            return db.session.scalar(select(func.count()).select_from(AccessLog).where(
                AccessLog.event == "request", AccessLog.path == ME_PATH, AccessLog.username == USERNAME))
        finally:
            db.session.remove()
            db.engine.dispose()


_last_otp_step = [-1]


def login(port: int, secret: str) -> str:
    """The real flow: password step, then a TOTP code for the returned ticket (a code is
    accepted once: a second login waits for the next 30-second step)."""
    import pyotp

    totp = pyotp.TOTP(secret)
    while int(time.time()) // totp.interval <= _last_otp_step[0]:
        time.sleep(1)
    status, body = http_call(port, "POST", "/api/v1/auth/login",
                             {"username": USERNAME, "password": PASSWORD})
    if status != 200:
        raise RuntimeError(f"login step 1 answered {status}: {body}")
    _last_otp_step[0] = int(time.time()) // totp.interval
    status, body = http_call(port, "POST", "/api/v1/auth/otp",
                             {"ticket": body["ticket"], "code": totp.now()})
    if status != 200:
        raise RuntimeError(f"login step 2 answered {status}: {body}")
    return body["token"]


# --- main ------------------------------------------------------------------------------

def parse_args(argv=None):
    cpus = os.cpu_count() or 2
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    p.add_argument("--pg-admin-url", default=os.environ.get(
        "LMS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a PostgreSQL URL allowed to CREATE/DROP DATABASE (env LMS_BENCH_PG_URL)")
    p.add_argument("--redis-url", default=os.environ.get("LMS_REDIS_URL", "redis://127.0.0.1:6379/0"))
    p.add_argument("--duration", type=int, default=15, help="seconds measured per endpoint and round")
    p.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load first")
    p.add_argument("--rounds", type=int, default=3,
                   help="alternate bare/LMS this many times; the report takes the median")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=2 * cpus, help="gunicorn workers (both servers)")
    p.add_argument("--worker-class", default="gthread", help="gunicorn worker class (both servers)")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (both servers)")
    p.add_argument("--lms-app", default="wsgi:app",
                   help="gunicorn app spec of the LMS (run from the repository root)")
    p.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    p.add_argument("--json-out", default=None,
                   help="where to write the results (default bench/results/bench_me-<time>.json)")
    p.add_argument("--quiet-limit", type=float, default=0.15,
                   help="CPU share used by other processes below which the machine counts as quiet")
    p.add_argument("--wait-quiet", type=int, default=120,
                   help="seconds to wait for a quiet machine before each measurement (0: don't)")
    p.add_argument("--check-targets", action="store_true",
                   help=f"exit 1 when ratio < {TARGET_RATIO} or LMS p99 >= {TARGET_P99_MS} ms")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not shutil.which(args.wrk):
        log("wrk not found: apt-get install -y wrk")
        return 2
    run_id = uuid.uuid4().hex[:10]
    tmp = Path(tempfile.mkdtemp(prefix=f"bench_me-{run_id}-"))
    db_name = f"lms_bench_{run_id}"
    if args.db == "postgresql":
        base = args.pg_admin_url.rsplit("/", 1)[0]
        db_url = f"{base}/{db_name}".replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        db_url = f"sqlite:///{tmp / 'lms.sqlite3'}"

    from cryptography.fernet import Fernet

    lms_env = {
        "LMS_ENV": "production",
        "LMS_SECRET_KEY": secrets.token_urlsafe(48),
        "LMS_DATA_KEY": Fernet.generate_key().decode(),
        "LMS_DATABASE_URL": db_url,
        "LMS_REDIS_URL": args.redis_url,
        "LMS_REDIS_PREFIX": f"lmsbench-{run_id}",
        "LMS_RQ_QUEUE": f"lmsbench-{run_id}",
        "LMS_MEDIA_ROOT": str(tmp / "media"),
    }
    os.environ.update(lms_env)  # for the in-process migration and checks
    sys.path.insert(0, str(ROOT))
    server_env = {**os.environ, **lms_env, "PYTHONDONTWRITEBYTECODE": "1"}

    servers: list[Server] = []
    db_created = False
    try:
        if args.db == "postgresql":
            log(f"creating database {db_name}")
            pg_create(args.pg_admin_url, db_name)
            db_created = True
        log("migrating and creating the learner")
        secret, db_version = setup_app_database()
        info = machine_info(db_version)
        log("machine: " + json.dumps(info, ensure_ascii=False))

        lms_srv = Server("lms", args.lms_app, ROOT, server_env, args, tmp)
        bare_srv = Server("bare", "bare_app:app", BENCH_DIR, server_env, args, tmp)
        servers += [lms_srv, bare_srv]
        for srv in servers:
            srv.start()
        lms_srv.wait_ready("/api/v1/health")
        bare_srv.wait_ready("/me")
        log(f"gunicorn: {args.workers} workers, class {args.worker_class}, {args.threads} threads "
            f"each (both servers); wrk: {args.wrk_threads} threads, {args.connections} connections")

        token = login(lms_srv.port, secret)
        status, body = http_call(lms_srv.port, "GET", ME_PATH, headers={"Authorization": f"Bearer {token}"})
        if status != 200 or body.get("username") != USERNAME:
            raise RuntimeError(f"GET {ME_PATH} answered {status}: {body}")
        status, body = http_call(bare_srv.port, "GET", "/me")
        if status != 200:
            raise RuntimeError(f"bare GET /me answered {status}: {body}")
        log("logged in through the API; both endpoints answer 200")

        pg = (args.pg_admin_url, db_name) if args.db == "postgresql" else (None, None)
        meters = {"bare": CpuMeter(bare_srv.proc.pid, None, None),
                  "lms": CpuMeter(lms_srv.proc.pid, *pg)}
        results: dict[str, list[dict]] = {"bare": [], "lms": []}
        invalid: list[str] = []
        for rnd in range(1, args.rounds + 1):
            for name, srv, url, tok in (("bare", bare_srv, f"{bare_srv.base}/me", None),
                                        ("lms", lms_srv, f"{lms_srv.base}{ME_PATH}", token)):
                busy_before = wait_quiet(args.quiet_limit, args.wait_quiet) if args.wait_quiet else None
                if name == "lms":
                    # After a long wait for a quiet machine the session may have expired
                    # (idle limit): log in again rather than measure 401s.
                    status, _ = http_call(lms_srv.port, "GET", ME_PATH,
                                          headers={"Authorization": f"Bearer {token}"})
                    if status != 200:
                        log(f"GET {ME_PATH} answered {status}: logging in again")
                        tok = token = login(lms_srv.port, secret)
                if args.warmup > 0:
                    run_wrk(args, url, args.warmup, tok)
                before = count_request_rows() if name == "lms" else None
                meter = meters[name]
                cpu0 = meter.snapshot()
                log(f"round {rnd}: {name} {url} for {args.duration}s ...")
                res = run_wrk(args, url, args.duration, tok)
                cpu = CpuMeter.delta(cpu0, meter.snapshot())
                n = max(1, res["requests"])
                res["cpu_ms_per_request"] = {
                    "gunicorn": cpu["server"] * 1000 / n, "postgresql": cpu["db"] * 1000 / n,
                    "wrk": res["wrk_cpu_s"] * 1000 / n,
                    "total": (cpu["server"] + cpu["db"] + res["wrk_cpu_s"]) * 1000 / n}
                res["machine_busy_before"] = busy_before
                if name == "lms":
                    res["access_log_rows"] = count_request_rows() - before
                    if res["access_log_rows"] < res["requests"]:
                        invalid.append(f"round {rnd}: {res['access_log_rows']} access-log rows for "
                                       f"{res['requests']} answers (REC-1)")
                if res["errors_status"]:
                    invalid.append(f"round {rnd} {name}: {res['errors_status']} non-2xx answers")
                if res["socket_errors"]:
                    invalid.append(f"round {rnd} {name}: {res['socket_errors']} socket errors/timeouts")
                log(f"  {res['rps']:.0f} req/s, p50 {res['lat_p50_ms']:.1f} ms, p90 "
                    f"{res['lat_p90_ms']:.1f} ms, p99 {res['lat_p99_ms']:.1f} ms, "
                    f"non-2xx {res['errors_status']}, CPU {res['cpu_ms_per_request']['total']:.2f} ms/request"
                    + (f", access-log rows {res['access_log_rows']}" if name == "lms" else ""))
                results[name].append(res)

        status, body = http_call(lms_srv.port, "GET", ME_PATH, headers={"Authorization": f"Bearer {token}"})
        if status != 200:
            invalid.append(f"after the run GET {ME_PATH} answered {status}: {body}")

        def med(name, key):
            return statistics.median(r[key] for r in results[name])

        summary = {}
        for name in ("bare", "lms"):
            summary[name] = {k: med(name, k) for k in ("rps", "lat_p50_ms", "lat_p90_ms", "lat_p99_ms")}
            summary[name]["cpu_ms_per_request"] = {
                part: statistics.median(r["cpu_ms_per_request"][part] for r in results[name])
                for part in ("gunicorn", "postgresql", "wrk", "total")}
            summary[name]["requests"] = sum(r["requests"] for r in results[name])
            summary[name]["non_2xx"] = sum(r["errors_status"] for r in results[name])
        ratio = summary["lms"]["rps"] / summary["bare"]["rps"]
        cpu_ratio = summary["bare"]["cpu_ms_per_request"]["total"] / summary["lms"]["cpu_ms_per_request"]["total"]
        ratio_ok = ratio >= TARGET_RATIO
        p99_ok = summary["lms"]["lat_p99_ms"] < TARGET_P99_MS

        print()
        print(f"GET /api/v1/me (authenticated) vs bare Flask, {args.connections} connections, "
              f"{args.duration}s x {args.rounds} round(s), database {info['db']}")
        print(f"gunicorn {args.workers} x {args.worker_class} ({args.threads} threads), "
              f"{info['nproc']} CPUs ({info['cpu_model']}), Python {info['python']}")
        print(f"{'':8}{'req/s':>10}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'requests':>11}{'non-2xx':>9}"
              f"   CPU ms/request: gunicorn + postgres + wrk = total")
        for name, label in (("bare", "bare"), ("lms", "/me")):
            s = summary[name]
            c = s["cpu_ms_per_request"]
            print(f"{label:8}{s['rps']:>10.0f}{s['lat_p50_ms']:>10.1f}{s['lat_p90_ms']:>10.1f}"
                  f"{s['lat_p99_ms']:>10.1f}{s['requests']:>11}{s['non_2xx']:>9}"
                  f"   {c['gunicorn']:.3f} + {c['postgresql']:.3f} + {c['wrk']:.3f} = {c['total']:.3f}")
        print(f"ratio /me : bare = {ratio:.3f} (target >= {TARGET_RATIO:.2f}: {'met' if ratio_ok else 'MISSED'}); "
              f"/me p99 {summary['lms']['lat_p99_ms']:.1f} ms (target < {TARGET_P99_MS:.0f} ms: "
              f"{'met' if p99_ok else 'MISSED'})")
        print(f"CPU per request, bare : /me = {cpu_ratio:.3f} (the throughput ratio a CPU-bound, "
              f"otherwise idle machine would give)")
        for problem in invalid:
            print(f"INVALID RUN: {problem}")

        out_path = Path(args.json_out) if args.json_out else (
            BENCH_DIR / "results" / f"bench_me-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps({
            "machine": info, "db": args.db,
            "settings": {k: getattr(args, k) for k in ("duration", "warmup", "rounds", "connections",
                                                       "wrk_threads", "workers", "worker_class", "threads")},
            "summary": summary, "ratio": ratio, "cpu_ratio": cpu_ratio, "targets_met": ratio_ok and p99_ok, "invalid": invalid,
            "rounds": results,
        }, indent=2, ensure_ascii=False))
        log(f"results written to {out_path}")
        if invalid:
            return 2
        if args.check_targets and not (ratio_ok and p99_ok):
            return 1
        return 0
    finally:
        for srv in servers:
            srv.stop()
        try:
            import redis

            r = redis.Redis.from_url(args.redis_url)
            keys = list(r.scan_iter(match=f"{lms_env['LMS_REDIS_PREFIX']}:*", count=1000))
            if keys:
                r.delete(*keys)
        except Exception as exc:  # noqa: BLE001 - cleanup must go on
            log(f"could not clean Redis keys: {exc}")
        if db_created:
            try:
                pg_drop(args.pg_admin_url, db_name)
                log(f"dropped database {db_name}")
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop database {db_name}: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
