"""Shared machinery of the benchmarks that came after ``bench_me.py``.

``bench_me.py`` owns the original helpers (gunicorn ``Server``, ``http_call``, ``CpuMeter``,
``wait_quiet``, ``machine_info``, ``pg_create``/``pg_drop``, the ``login`` flow); they are
imported from there unchanged, so that script keeps working exactly as before. What is new
here is what ``bench_heartbeat.py`` and ``bench_settle.py`` both need: a fresh PostgreSQL
database migrated under ``LMS_ENV=production`` with generated keys (``BenchDatabase``), the
machine's load, and ``run_wrk_script`` (wrk with any Lua script and extra environment).
"""
from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_me import (CpuMeter, Server, cpu_busy, free_port, http_call, log,  # noqa: E402,F401
                      machine_info, pg_create, pg_drop, wait_quiet)

DEFAULT_PG_ADMIN_URL = os.environ.get("LMS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEFAULT_REDIS_URL = os.environ.get("LMS_REDIS_URL", "redis://127.0.0.1:6379/0")


def load_average() -> tuple[float, float, float]:
    try:
        return tuple(float(x) for x in Path("/proc/loadavg").read_text().split()[:3])
    except (OSError, ValueError):
        return (0.0, 0.0, 0.0)


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _status_mib(field: str) -> float:
    try:
        for ln in Path("/proc/self/status").read_text().splitlines():
            if ln.startswith(field + ":"):
                return int(ln.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def current_rss_mib() -> float:
    return _status_mib("VmRSS")


def reset_peak_rss() -> bool:
    """Start this process's peak RSS (VmHWM) afresh from its current size (Linux ≥ 4.0:
    ``echo 5 > /proc/self/clear_refs``), so a later ``peak_rss_since_reset_mib`` is the peak
    of what ran in between, not of start-up. False when the kernel does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_since_reset_mib() -> float:
    return _status_mib("VmHWM")


class BenchDatabase:
    """A fresh PostgreSQL database and a production environment for one benchmark run.

    ``with BenchDatabase(prefix, pg_admin_url, redis_url) as bdb:`` creates the database
    ``lms_<prefix>_<run id>``, puts ``LMS_ENV=production`` with random ``LMS_SECRET_KEY`` and
    ``LMS_DATA_KEY``, the database URL and a per-run Redis prefix and RQ queue into
    ``os.environ`` (``bdb.env`` holds them for subprocesses), and migrates with Alembic.
    On exit the database is dropped (WITH (FORCE)), the run's Redis keys deleted and the
    temporary directory removed, whatever happened."""

    def __init__(self, prefix: str, pg_admin_url: str = DEFAULT_PG_ADMIN_URL,
                 redis_url: str = DEFAULT_REDIS_URL, extra_env: dict | None = None):
        from cryptography.fernet import Fernet

        self.run_id = uuid.uuid4().hex[:10]
        self.pg_admin_url = pg_admin_url
        self.redis_url = redis_url
        self.name = f"lms_{prefix}_{self.run_id}"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-{self.run_id}-"))
        base = pg_admin_url.rsplit("/", 1)[0]
        self.url = f"{base}/{self.name}".replace("postgresql://", "postgresql+psycopg://", 1)
        self.psycopg_url = f"{base}/{self.name}"
        self.env = {
            "LMS_ENV": "production",
            "LMS_SECRET_KEY": secrets.token_urlsafe(48),
            "LMS_DATA_KEY": Fernet.generate_key().decode(),
            "LMS_DATABASE_URL": self.url,
            "LMS_REDIS_URL": redis_url,
            "LMS_REDIS_PREFIX": f"lmsbench-{self.run_id}",
            "LMS_RQ_QUEUE": f"lmsbench-{self.run_id}",
            "LMS_MEDIA_ROOT": str(self.tmp / "media"),
            **(extra_env or {}),
        }
        self.created = False
        self.version = "unknown"

    def __enter__(self) -> "BenchDatabase":
        try:
            log(f"creating database {self.name}")
            pg_create(self.pg_admin_url, self.name)
            self.created = True
            os.environ.update(self.env)  # the in-process app (migration, set-up, checks)
            self.migrate()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    def server_env(self) -> dict:
        return {**os.environ, **self.env, "PYTHONDONTWRITEBYTECODE": "1"}

    def migrate(self) -> None:
        from flask_migrate import upgrade
        from sqlalchemy import text

        from lms import create_app
        from lms.db import db

        app = create_app()
        with app.app_context():
            upgrade()
            self.version = "PostgreSQL " + db.session.scalar(text("SHOW server_version"))
            db.session.remove()
            db.engine.dispose()

    def cleanup(self) -> None:
        try:
            import redis

            r = redis.Redis.from_url(self.redis_url)
            keys = list(r.scan_iter(match=f"{self.env['LMS_REDIS_PREFIX']}:*", count=1000))
            keys += list(r.scan_iter(match=f"rq:*{self.env['LMS_RQ_QUEUE']}*", count=1000))
            if keys:
                r.delete(*keys)
        except Exception as exc:  # noqa: BLE001 - cleanup goes on
            log(f"could not clean Redis keys: {exc}")
        if self.created:
            try:
                pg_drop(self.pg_admin_url, self.name)
                log(f"dropped database {self.name}")
                self.created = False
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop database {self.name}: {exc}")
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_wrk_script(*, wrk: str, script: Path, url: str, duration: float, connections: int,
                   threads: int, env: dict | None = None, timeout_s: int = 10) -> dict:
    """Run wrk with ``script`` (which prints one ``BENCH_JSON {...}`` line from ``done``).
    Returns that summary plus ``rps``, latencies in ms and wrk's own CPU seconds."""
    run_env = {**os.environ, **(env or {})}
    cmd = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
           "--timeout", f"{timeout_s}s", "--latency", "-s", str(script), url]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=duration + 120)
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


def percentile(sorted_values: list, q: float) -> float:
    """Nearest-rank percentile of an already sorted list (``q`` in 0..1), as the paced
    players of ``bench_heartbeat.py`` compute it; NaN for an empty list."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def latency_summary_ms(seconds: list) -> dict:
    """``{"n", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms"}`` of latencies given in seconds."""
    lat = sorted(seconds)
    n = len(lat)
    return {"n": n, "p50_ms": percentile(lat, 0.50) * 1000, "p90_ms": percentile(lat, 0.90) * 1000,
            "p99_ms": percentile(lat, 0.99) * 1000, "max_ms": lat[-1] * 1000 if lat else float("nan"),
            "mean_ms": sum(lat) / n * 1000 if lat else float("nan")}


def write_report(name: str, payload: dict, json_out: str | None = None) -> Path:
    """Write a benchmark's JSON report to ``json_out`` or ``bench/results/<name>-<UTC time>.json``."""
    from datetime import datetime, timezone

    path = Path(json_out) if json_out else (
        BENCH_DIR / "results" / f"{name}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    log(f"results written to {path}")
    return path


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores (``/proc/stat``).
    Two readings give the machine's busy share over a phase; minus what the benchmark's own
    processes used, the share other jobs took meanwhile."""
    clk = os.sysconf("SC_CLK_TCK")
    try:
        vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0
    idle = vals[3] + vals[4]  # idle + iowait
    return (sum(vals) - idle) / clk, sum(vals) / clk


def insert_learners(institution_id: int, names: list[str], password_hash: str, created_at, *,
                    otp_confirmed: bool) -> tuple[dict[str, int], dict[str, str]]:
    """Learners ``names`` in one INSERT (one password hash for all, a TOTP secret each).
    Returns (username → id, username → OTP secret). Needs an app context; not committed."""
    import pyotp
    from sqlalchemy import insert, select

    from lms.auth.models import User
    from lms.db import db

    secrets_ = {u: pyotp.random_base32() for u in names}
    db.session.execute(insert(User), [
        {"institution_id": institution_id, "username": u, "password_hash": password_hash, "role": "learner",
         "name": f"학습자 {u}", "disability": False, "otp_secret": secrets_[u], "otp_confirmed": otp_confirmed,
         "locked": False, "created_at": created_at} for u in names])
    ids = dict(db.session.execute(select(User.username, User.id).where(User.username.in_(names))).all())
    return ids, secrets_
