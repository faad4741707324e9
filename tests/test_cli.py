"""``flask --app wsgi lms ...``: create-admin (API.md, Running it), seed-demo, expire-sessions."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyotp
from conftest import bearer, set_clock, table_counts
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).with_name("flask"))
DEMO_LINE = re.compile(r"^\s+(\w+)\s+(\S+)\s+otp_secret=([A-Z2-7]+)\s*$")


def user_by_name(app, username):
    from lms.auth.models import User
    from lms.db import db

    with app.app_context():
        u = db.session.scalar(select(User).where(User.username == username))
        if u is not None:
            db.session.expunge(u)
        db.session.remove()
        return u


def login_with(client, username, password, secret) -> str:
    r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.get_json()
    r = client.post("/api/v1/auth/otp", json={"ticket": r.get_json()["ticket"], "code": pyotp.TOTP(secret).now()})
    assert r.status_code == 200, r.get_json()
    return r.get_json()["token"]


def test_create_admin(app, client):
    """The last line is JSON {id, username, otp_secret}; the admin logs in with it."""
    result = app.test_cli_runner().invoke(
        args=["lms", "create-admin", "--username", "root01", "--password", "long-enough-pw-1"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert set(out) == {"id", "username", "otp_secret"}
    assert out["username"] == "root01" and re.fullmatch(r"[A-Z2-7]{32}", out["otp_secret"])
    user = user_by_name(app, "root01")
    assert user.id == out["id"] and user.role == "admin"
    token = login_with(client, "root01", "long-enough-pw-1", out["otp_secret"])
    assert client.get("/api/v1/users", headers=bearer(token)).status_code == 200


def test_create_admin_refuses_bad_input(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["lms", "create-admin", "--username", "root01",
                               "--password", "long-enough-pw-1"]).exit_code == 0
    before = table_counts(app)
    for args, says in ((["--username", "root01", "--password", "long-enough-pw-2"], "already in use"),
                       (["--username", "root02", "--password", "short"], "at least"),
                       (["--username", "r", "--password", "long-enough-pw-1"], "username"),
                       (["--username", "root03"], "--password")):
        result = runner.invoke(args=["lms", "create-admin", *args])
        assert result.exit_code != 0, args
        assert says in result.output, (args, result.output)
    assert table_counts(app) == before


def test_create_admin_as_a_process(app, client, test_env):
    """API.md: `.venv/bin/flask --app wsgi lms create-admin --username U --password P`
    run as a real process with the environment given."""
    env = {**os.environ, **test_env}
    proc = subprocess.run([FLASK, "--app", "wsgi", "lms", "create-admin", "--username", "proc01",
                           "--password", "long-enough-pw-1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["username"] == "proc01"
    assert user_by_name(app, "proc01").id == out["id"]
    login_with(client, "proc01", "long-enough-pw-1", out["otp_secret"])


def counts_of(app, table: str) -> int:
    return table_counts(app)[table]


def parse_demo(output: str) -> dict[str, tuple[str, str]]:
    """username → (role, otp_secret) from seed-demo's lines."""
    found = {}
    for line in output.splitlines():
        m = DEMO_LINE.match(line)
        if m:
            found[m.group(2)] = (m.group(1), m.group(3))
    return found


def test_seed_demo(app, client):
    """seed-demo creates an admin, an instructor, a TA, an inspector and learners (one
    with the disability flag, EXM-4) and prints their logins and OTP secrets."""
    from lms.cli import DEMO_PASSWORD

    result = app.test_cli_runner().invoke(args=["lms", "seed-demo"])
    assert result.exit_code == 0, result.output
    assert DEMO_PASSWORD in result.output
    printed = parse_demo(result.output)
    roles = sorted(role for role, _ in printed.values())
    assert roles == ["admin", "inspector", "instructor", "learner", "learner", "learner", "ta"]
    for username, (role, secret) in printed.items():
        user = user_by_name(app, username)
        assert user.role == role and user.otp_secret == secret
    assert sum(1 for u in printed if user_by_name(app, u).disability) == 1
    # Every printed login works.
    tokens = {}
    for username, (role, secret) in printed.items():
        if role in ("admin", "learner"):
            tokens[username] = login_with(client, username, DEMO_PASSWORD, secret)
    # The demo course: published, learners enrolled, a bank holding 3× what the exams draw
    # (EXM-5), an open quiz a demo learner can sit now and an announced midterm.
    assert counts_of(app, "course") == 1 and counts_of(app, "lesson") == 30
    assert counts_of(app, "enrollment") == 3 and counts_of(app, "item") == 27
    r = client.get("/api/v1/courses/1/exams", headers={"Authorization": f"Bearer {tokens['learner1']}"})
    exams = r.get_json()["exams"]
    assert [e["kind"] for e in exams] == ["quiz", "midterm"]
    import time

    # the login used this 30-s step; the next step's code is within the allowed drift
    code = pyotp.TOTP(printed["learner1"][1]).at(time.time() + 30)
    r = client.post(f"/api/v1/exams/{exams[0]['id']}/attempts", json={"otp": code},
                    headers={"Authorization": f"Bearer {tokens['learner1']}"})
    assert r.status_code == 201, r.get_json()
    assert len(r.get_json()["items"]) == 3


def test_seed_demo_if_empty_is_idempotent(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["lms", "seed-demo", "--if-empty"])
    assert first.exit_code == 0, first.output
    counts = table_counts(app)
    assert counts["user_account"] == 7
    again = runner.invoke(args=["lms", "seed-demo", "--if-empty"])
    assert again.exit_code == 0, again.output
    assert table_counts(app) == counts
    # It shows the same logins again.
    assert parse_demo(again.output) == parse_demo(first.output)
    # Without --if-empty, a second run creates no duplicates either.
    third = runner.invoke(args=["lms", "seed-demo"])
    assert third.exit_code == 0, third.output
    assert table_counts(app)["user_account"] == 7


def test_seed_demo_if_empty_leaves_a_real_install_alone(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["lms", "create-admin", "--username", "root01",
                               "--password", "long-enough-pw-1"]).exit_code == 0
    counts = table_counts(app)
    result = runner.invoke(args=["lms", "seed-demo", "--if-empty"])
    assert result.exit_code == 0
    assert "nothing seeded" in result.output
    assert parse_demo(result.output) == {}
    assert table_counts(app) == counts


def test_expire_sessions_command(app, client, users):
    users.create("kim01")
    token = users.login(client, "kim01")
    from lms.auth.models import UserSession
    from lms.db import db

    with app.app_context():
        last = db.session.scalar(select(UserSession.last_seen_at))
        db.session.remove()
    set_clock(app, last + timedelta(minutes=30))
    result = app.test_cli_runner().invoke(args=["lms", "expire-sessions"])
    assert result.exit_code == 0 and "ended 1 idle session" in result.output
    assert client.get("/api/v1/me", headers=bearer(token)).get_json()["error"]["code"] == "session_expired"
