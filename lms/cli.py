"""``flask --app wsgi lms ...`` commands."""
from __future__ import annotations

import json

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select

lms_cli = AppGroup("lms", help="Credit-bank LMS administration.")


@lms_cli.command("create-admin")
@click.option("--username", required=True)
@click.option("--password", required=True)
@click.option("--name", default="관리자")
def create_admin(username, password, name):
    """Create an admin; the last line printed is JSON with the OTP secret."""
    from lms.auth import service
    from lms.db import db
    from lms.errors import ApiError

    try:
        user = service.create_user(username=username, password=password, role="admin", name=name)
        db.session.commit()
    except ApiError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"created admin {user.username}; enrol the OTP secret in an authenticator app")
    click.echo(json.dumps({"id": user.id, "username": user.username, "otp_secret": user.otp_secret}))


DEMO_PASSWORD = "demo-password-1234"
DEMO_USERS = [
    ("admin", "admin", "김관리", False),
    ("instructor", "instructor", "이교수", False),
    ("ta1", "ta", "박조교", False),
    ("inspector", "inspector", "최감사", False),
    ("learner1", "learner", "정학습", False),
    ("learner2", "learner", "한학습", False),
    ("learner3", "learner", "윤학습", True),
]


@lms_cli.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing when any user exists.")
def seed_demo(if_empty):
    """Create a demo institution and users; print their logins and OTP secrets."""
    from lms import clock
    from lms.auth import service
    from lms.auth.models import Institution, User
    from lms.db import db

    if current_app.config["ENV_NAME"] == "production":
        raise click.ClickException("demo data (known passwords) is never seeded in production")
    inst = db.session.scalar(select(Institution).where(Institution.code == "demo"))
    if if_empty and db.session.scalar(select(User.id).limit(1)) is not None:
        if inst is None:
            click.echo("demo data: users exist already, nothing seeded")
            return
        # Seeded before: show the demo logins again, create nothing.
        demo = db.session.scalars(select(User).where(User.institution_id == inst.id,
                                                     User.username.in_([u[0] for u in DEMO_USERS]))
                                  .order_by(User.id)).all()
        _print_demo_logins(inst, demo)
        return
    if inst is None:
        inst = Institution(code="demo", name="데모 평생교육원", created_at=clock.now())
        db.session.add(inst)
        db.session.flush()
    rows = []
    for username, role, name, disability in DEMO_USERS:
        user = db.session.scalar(select(User).where(User.username == username))
        if user is None:
            user = service.create_user(username=username, password=DEMO_PASSWORD, role=role, name=name,
                                       disability=disability, institution_id=inst.id)
        rows.append(user)
    from lms.core.demo import seed_course

    course = seed_course(inst, rows)
    db.session.commit()
    _print_demo_logins(inst, rows)
    if course is not None:
        click.echo(f"demo course {course.code} (id {course.id}): lessons, an item bank, an open quiz and a midterm")


def _print_demo_logins(inst, users) -> None:
    click.echo(f"demo institution: {inst.name}; every demo password: {DEMO_PASSWORD}")
    for u in users:
        click.echo(f"  {u.role:<10} {u.username:<11} otp_secret={u.otp_secret}")
    click.echo("Add the OTP secret to an authenticator app, or scan the QR code shown at first login.")


@lms_cli.command("worker")
@click.option("--burst", is_flag=True, help="Run the queued jobs, then exit.")
def worker(burst):
    """Run an RQ worker for this app's queue."""
    from flask import current_app

    from lms.jobs import run_worker

    run_worker(current_app._get_current_object(), burst=burst)


@lms_cli.command("scheduler")
def scheduler():
    """Run the cron scheduler that enqueues the periodic jobs."""
    from flask import current_app

    from lms.jobs import run_scheduler

    run_scheduler(current_app._get_current_object())


@lms_cli.command("expire-sessions")
def expire_sessions():
    """End idle sessions now (the scheduler does this every minute)."""
    from lms.auth.service import expire_idle_sessions

    click.echo(f"ended {expire_idle_sessions()} idle session(s)")


attendance_cli = AppGroup("attendance", help="Attendance (ATT-1, ATT-2): settle and recompute.")
lms_cli.add_command(attendance_cli)


@attendance_cli.command("recompute")
@click.option("--course", "course_id", type=int, required=True, help="The course's id.")
@click.option("--check", is_flag=True, help="Compare only: write nothing, exit 1 on a difference.")
def attendance_recompute(course_id, check):
    """Rebuild a course's lesson progress and statuses purely from the viewing log and
    print how the rebuilt result differs from the stored one (ATT-2, REC-1)."""
    from lms.attendance.service import recompute_course
    from lms.errors import ApiError

    try:
        result = recompute_course(course_id, write=not check)
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(result.summary())
    if check and result.differences:
        raise SystemExit(1)


@attendance_cli.command("settle")
def attendance_settle():
    """Settle every lesson whose deadline has passed now (the scheduler does this every minute)."""
    from lms.attendance.service import settle_due

    click.echo(f"settled {settle_due()} learner×lesson status(es)")


from lms.audit.cli import audit_cli  # noqa: E402

lms_cli.add_command(audit_cli)


def register_cli(app: Flask) -> None:
    app.cli.add_command(lms_cli)
