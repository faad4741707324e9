"""Background jobs: one RQ queue, a worker that runs jobs inside the app, and a cron
scheduler (rq's CronScheduler) for periodic jobs.

Each package lists its periodic jobs in ``<pkg>/jobs.py`` as
``PERIODIC = [(function, interval_seconds), ...]``. Job functions take plain
arguments and run inside an app context (the worker provides it).
"""
from __future__ import annotations

import importlib
import logging

from flask import current_app
from rq import Queue, SimpleWorker

from lms.extensions import redis_client

log = logging.getLogger(__name__)


def queue() -> Queue:
    return Queue(current_app.config["RQ_QUEUE"], connection=redis_client())


def enqueue(func, *args, **kwargs):
    """Enqueue ``func`` on the app's queue."""
    return queue().enqueue(func, *args, **kwargs)


def periodic_jobs() -> list[tuple]:
    from lms import PACKAGES

    jobs = []
    for pkg in PACKAGES:
        try:
            mod = importlib.import_module(f"{pkg}.jobs")
        except ModuleNotFoundError as exc:
            if exc.name != f"{pkg}.jobs":
                raise
            continue
        jobs.extend(getattr(mod, "PERIODIC", []))
    return jobs


class AppWorker(SimpleWorker):
    """Runs every job in the worker's app context (no fork: the app, its engine and its
    Redis pool stay valid). The session is cleaned after each job."""

    def __init__(self, *args, app=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app

    def execute_job(self, job, queue):
        with self.app.app_context():
            from lms.db import db

            try:
                return super().execute_job(job, queue)
            finally:
                db.session.remove()


def run_worker(app, burst: bool = False) -> bool:
    with app.app_context():
        conn = redis_client()
        q = Queue(app.config["RQ_QUEUE"], connection=conn)
    worker = AppWorker([q], connection=conn, app=app)
    return worker.work(burst=burst, with_scheduler=not burst, logging_level="INFO")


def cron_job_name(prefix: str, func) -> str:
    """The name under which the scheduler registers ``func`` (per deployment prefix)."""
    return f"{prefix}:{func.__module__}.{func.__name__}"


def run_scheduler(app) -> None:
    from rq.cron import CronScheduler

    with app.app_context():
        conn = redis_client()
        jobs = periodic_jobs()
    prefix = app.config["REDIS_PREFIX"]
    sched = CronScheduler(connection=conn, name=f"{prefix}-cron")
    for func, interval in jobs:
        # rq keeps each cron job's history under rq:cron_job:<name>; the name carries this
        # deployment's prefix so deployments sharing a Redis server never mix histories.
        sched.register(func, queue_name=app.config["RQ_QUEUE"], interval=interval,
                       name=cron_job_name(prefix, func))
        log.info("periodic job %s.%s every %ss", func.__module__, func.__name__, interval)
    sched.start()
