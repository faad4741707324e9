"""Background jobs through real processes: an RQ worker (``flask lms worker``) and rq's
cron scheduler (``flask lms scheduler``) started as subprocesses with this run's
environment, over the same database and Redis as the test.

The job under test ends idle sessions (``lms.auth.service.expire_idle_sessions``, listed in
``lms/auth/jobs.py`` PERIODIC). Sessions are made stale with the testing clock: its offset
lives in Redis, so the worker process sees the same shifted time as the test.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from conftest import bearer, start_lms_process, stop_process


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _forget_rq_registrations(request):
    """rq lists queues and cron job names in server-wide Redis sets that the per-test
    cleanup (keys under this run's prefix) does not reach: drop this run's members."""
    app = request.getfixturevalue("app")  # every test here uses it
    yield
    from lms.extensions import redis_client
    from lms.jobs import cron_job_name, periodic_jobs

    with app.app_context():
        conn = redis_client()
        conn.srem("rq:queues", f"rq:queue:{app.config['RQ_QUEUE']}")
        conn.zrem("rq:cron_jobs", *(cron_job_name(app.config["REDIS_PREFIX"], f) for f, _ in periodic_jobs()))


def _session_of(app, username: str):
    from lms.auth.models import User, UserSession
    from lms.db import db

    with app.app_context():
        db.session.remove()
        return db.session.scalar(select(UserSession).join(User, User.id == UserSession.user_id)
                                 .where(User.username == username).order_by(UserSession.id.desc()))


def _expiry_log(app, session_id: int):
    from lms.audit.models import AccessLog
    from lms.db import db

    with app.app_context():
        db.session.remove()
        return db.session.scalars(select(AccessLog).where(AccessLog.session_id == session_id,
                                                          AccessLog.event == "session_expired")).all()


def _make_stale(app) -> datetime:
    """Move the shared testing clock past the idle limit; returns the new 'now'."""
    from lms import clock

    with app.app_context():
        target = clock.now() + timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] + 1)
        clock.set_now(target)
        return target


def test_periodic_jobs_lists_the_idle_session_expiry(app):
    """Every package's jobs.PERIODIC is collected: the idle-session expiry every minute,
    as (function, interval in seconds) pairs the scheduler can register."""
    from lms.auth.jobs import PERIODIC
    from lms.auth.service import expire_idle_sessions
    from lms.jobs import periodic_jobs

    jobs = periodic_jobs()
    assert (expire_idle_sessions, 60) in jobs
    assert all(entry in jobs for entry in PERIODIC)
    for func, interval in jobs:
        assert callable(func) and isinstance(interval, int) and interval > 0


def test_real_worker_expires_a_session_made_stale_by_the_testing_clock(app, users, client, test_env, tmp_path):
    """Enqueued with lms.jobs.enqueue, run by `flask lms worker --burst` in another
    process: the stale session ends with reason 'expired' at the worker's (shifted) clock
    time and an access-log row 'session_expired' is written; a session opened after the
    shift is left alone; the expired token then answers 401 session_expired."""
    from lms.auth.service import expire_idle_sessions
    from lms.jobs import enqueue

    users.create("idle1")
    users.create("fresh1")
    idle_token = users.login(client, "idle1")
    target = _make_stale(app)
    fresh_token = users.login(client, "fresh1")  # opened at the shifted time: not idle
    with app.app_context():
        job = enqueue(expire_idle_sessions)

    log = tmp_path / "worker.log"
    proc = start_lms_process(["worker", "--burst"], test_env, log)
    try:
        rc = proc.wait(timeout=120)
    finally:
        stop_process(proc)
    assert rc == 0, log.read_text()

    with app.app_context():
        job.refresh()
        assert job.get_status() == "finished", log.read_text()
        assert job.return_value() == 1

    sess = _session_of(app, "idle1")
    assert sess.end_reason == "expired"
    # Ended at the testing clock's time as the worker saw it (set in Redis by this test).
    assert target - timedelta(seconds=1) <= sess.ended_at <= target + timedelta(minutes=2)
    rows = _expiry_log(app, sess.id)
    assert len(rows) == 1
    assert rows[0].user_id == sess.user_id
    assert rows[0].username == "idle1" and rows[0].role == "learner"
    assert rows[0].at == sess.ended_at

    fresh = _session_of(app, "fresh1")
    assert fresh.ended_at is None and fresh.end_reason is None

    r = client.get("/api/v1/me", headers=bearer(idle_token))
    assert r.status_code == 401
    assert r.get_json()["error"]["code"] == "session_expired"
    assert client.get("/api/v1/me", headers=bearer(fresh_token)).status_code == 200


def test_scheduler_registers_and_enqueues_the_periodic_job_for_a_worker(app, users, client, test_env, tmp_path):
    """`flask lms scheduler` (rq.cron.CronScheduler) registers every PERIODIC job under
    this deployment's prefix and enqueues it at start (interval jobs run at once); a
    running `flask lms worker` picks it up and the stale session is expired."""
    from rq.cron import CronScheduler, get_cron_job_ids
    from rq.job import Job

    from lms.auth.service import expire_idle_sessions
    from lms.extensions import redis_client
    from lms.jobs import cron_job_name

    users.create("idle2")
    users.login(client, "idle2")
    _make_stale(app)
    prefix = app.config["REDIS_PREFIX"]
    name = cron_job_name(prefix, expire_idle_sessions)

    scheduler = start_lms_process(["scheduler"], test_env, tmp_path / "scheduler.log")
    worker = start_lms_process(["worker"], test_env, tmp_path / "worker.log")
    try:
        deadline = time.monotonic() + 60
        sess = _session_of(app, "idle2")
        while sess.ended_at is None and time.monotonic() < deadline:
            assert scheduler.poll() is None, (tmp_path / "scheduler.log").read_text()
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.3)
            sess = _session_of(app, "idle2")
        logs = (tmp_path / "scheduler.log").read_text() + (tmp_path / "worker.log").read_text()
        assert sess.end_reason == "expired", logs
        assert len(_expiry_log(app, sess.id)) == 1

        with app.app_context():
            conn = redis_client()
            registered = CronScheduler.fetch(f"{prefix}-cron", conn)
            jobs = {j.name: j for j in registered.get_jobs()}
            assert name in jobs, logs
            assert jobs[name].func_name == "lms.auth.service.expire_idle_sessions"
            assert jobs[name].interval == 60
            assert jobs[name].queue_name == app.config["RQ_QUEUE"]
            spawned = get_cron_job_ids(name, conn)
            assert spawned, logs
            job = Job.fetch(spawned[-1], connection=conn)
            deadline = time.monotonic() + 30
            while job.get_status(refresh=True) != "finished" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert job.get_status() == "finished", logs
            assert job.return_value() == 1
    finally:
        stop_process(scheduler)
        stop_process(worker)
