"""The one clock (``lms.clock.now``) and the testing clock API.

Ideas under test:
- *Settable, then running*: ``PUT /api/v1/testing/clock`` moves "now" to an instant,
  from which the clock runs on; ``DELETE`` goes back to real time.
- *Testing only*: outside ``LMS_ENV=testing`` the endpoints do not exist (404) and an
  offset left in Redis is ignored.
- *Aware times only*: a time without an offset is refused (400 ``invalid_request``).
- *Shared*: the offset lives in Redis, so every app instance and every process agrees.
- *Every check uses it*: OTP codes are checked against the clock's time, and log entries
  carry it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from conftest import bearer

ROOT = Path(__file__).resolve().parent.parent
TARGET_ISO = "2027-03-02T09:00:00+09:00"
TARGET = datetime.fromisoformat(TARGET_ISO)
CLOCK = "/api/v1/testing/clock"


def _now(app_instance) -> datetime:
    from lms import clock

    with app_instance.app_context():
        return clock.now()


def _close(a: datetime, b: datetime, seconds: float = 1.0) -> bool:
    return abs((a - b).total_seconds()) < seconds


def test_put_sets_the_clock_and_it_runs_on(app, client):
    """PUT answers 204; clock.now() is then the instant given (aware UTC) and keeps
    running forward from it; GET shows it in KST with its offset."""
    r = client.put(CLOCK, json={"now": TARGET_ISO})
    assert r.status_code == 204
    first = _now(app)
    assert first.tzinfo is not None and first.utcoffset() == timedelta(0)
    assert _close(first, TARGET)
    assert first >= TARGET
    time.sleep(0.05)
    later = _now(app)
    assert later > first
    shown = client.get(CLOCK).get_json()["now"]
    assert shown.startswith("2027-03-02T09:00:") and shown.endswith("+09:00")


def test_the_same_instant_in_any_offset(app, client):
    """Any offset names the same instant: 00:00Z and 19:00 the day before at -05:00 are
    both 09:00 KST."""
    for spelling in ("2027-03-02T00:00:00Z", "2027-03-01T19:00:00-05:00"):
        assert client.delete(CLOCK).status_code == 204
        assert client.put(CLOCK, json={"now": spelling}).status_code == 204
        assert _close(_now(app), TARGET)


def test_delete_resets_to_real_time(app, client):
    """DELETE answers 204 and the clock is real time again (and DELETE of an unset
    clock is harmless)."""
    from lms import clock

    assert client.put(CLOCK, json={"now": TARGET_ISO}).status_code == 204
    assert client.delete(CLOCK).status_code == 204
    assert _close(_now(app), clock.real_now())
    assert client.delete(CLOCK).status_code == 204
    assert _close(_now(app), clock.real_now())


def test_the_clock_may_go_back_in_time(app, client):
    """Setting a past instant works too (tests replay earlier days)."""
    assert client.put(CLOCK, json={"now": "2020-01-01T00:00:00+09:00"}).status_code == 204
    assert _close(_now(app), datetime(2019, 12, 31, 15, tzinfo=timezone.utc))


@pytest.mark.parametrize("body", [
    {"now": "2027-03-02T09:00:00"},          # naive: no offset
    {"now": "2027-03-02 09:00"},             # naive, other spelling
    {"now": "tomorrow"},
    {"now": 1803945600},
    {"now": None},
    {},
    {"now": TARGET_ISO, "extra": 1},
])
def test_naive_or_malformed_times_are_refused(app, client, body):
    """Only ISO 8601 with an offset: anything else is 400 invalid_request, and the clock
    is left as it was."""
    from lms import clock

    r = client.put(CLOCK, json=body)
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] == "invalid_request"
    assert _close(_now(app), clock.real_now())


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+09:00", "9999-12-31T23:59:59-09:00",
                                  "9999-12-31T23:59:59+09:00", "1969-12-31T23:59:59Z"])
def test_times_the_clock_cannot_run_from_are_refused(app, client, when):
    """An instant at the edge of what datetime can hold (or before the Unix epoch, where
    TOTP steps are undefined) would make every later clock.now() overflow: 400, the clock
    unchanged, and the server keeps answering."""
    from lms import clock

    r = client.put(CLOCK, json={"now": when})
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] == "invalid_request"
    assert client.get(CLOCK).status_code == 200
    assert _close(_now(app), clock.real_now())


def test_bad_json_is_refused(client):
    """A body that is not JSON is 400 invalid_request, like any malformed input."""
    r = client.put(CLOCK, data="{not json", content_type="application/json")
    assert r.status_code == 400
    assert r.get_json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("env", ["development", "production"])
def test_outside_testing_the_clock_api_does_not_exist(monkeypatch, app, client, env):
    """In development and production PUT, DELETE and GET answer 404, and the offset a
    testing process left in Redis (same prefix) does not move their clock."""
    from cryptography.fernet import Fernet

    from lms import clock, create_app

    monkeypatch.setenv("LMS_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("LMS_DATA_KEY", Fernet.generate_key().decode())
    other = create_app(env)
    assert other.config["TESTING_CLOCK"] is False
    assert client.put(CLOCK, json={"now": TARGET_ISO}).status_code == 204  # the testing app

    c = other.test_client()
    for r in (c.put(CLOCK, json={"now": TARGET_ISO}), c.delete(CLOCK), c.get(CLOCK)):
        assert r.status_code == 404
        assert r.get_json()["error"]["code"] == "not_found"
    assert _close(_now(other), clock.real_now())
    assert _close(_now(app), TARGET)  # untouched by the refused calls


def test_every_app_instance_sees_the_same_clock(app, client, second_app):
    """The offset is in Redis: a second app instance (another web process) reads the
    clock the first one set, and sets it for the first one in turn."""
    assert client.put(CLOCK, json={"now": TARGET_ISO}).status_code == 204
    assert _close(_now(second_app), TARGET)
    later = "2027-06-01T12:00:00+09:00"
    assert second_app.test_client().put(CLOCK, json={"now": later}).status_code == 204
    assert _close(_now(app), datetime.fromisoformat(later))
    assert second_app.test_client().delete(CLOCK).status_code == 204
    assert _close(_now(app), datetime.now(timezone.utc))


def test_another_process_sees_the_same_clock(client, test_env):
    """A separate OS process (as a worker or a gunicorn worker is) built from the same
    environment reads the same shifted time."""
    assert client.put(CLOCK, json={"now": TARGET_ISO}).status_code == 204
    code = ("from lms import create_app, clock\n"
            "app = create_app()\n"
            "with app.app_context(): print(clock.now().isoformat())\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **test_env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    seen = datetime.fromisoformat(out.stdout.strip().splitlines()[-1])
    # the child started after the PUT, so its reading is a little later: within a minute
    assert TARGET <= seen < TARGET + timedelta(minutes=1)


def test_otp_is_checked_against_the_clock(app, client, users):
    """Login's second factor (ATT-3/EXM-8) uses clock.now(): with the clock at 2027, a
    code for the real current time is refused and the code generated for the shifted
    time is accepted; the session and its log entry carry the shifted time."""
    from lms.audit.models import AccessLog
    from lms.auth.models import UserSession
    from lms.db import db

    uid = users.create("timetraveller")
    assert client.put(CLOCK, json={"now": TARGET_ISO}).status_code == 204
    totp = pyotp.TOTP(users.secrets["timetraveller"])
    shifted_code = totp.at(TARGET)
    real_code = totp.now()
    assert real_code not in {totp.at(TARGET + timedelta(seconds=s)) for s in (-30, 0, 30)}

    r = client.post("/api/v1/auth/login", json={"username": "timetraveller", "password": users.passwords["timetraveller"]})
    assert r.status_code == 200
    ticket = r.get_json()["ticket"]
    r = client.post("/api/v1/auth/otp", json={"ticket": ticket, "code": real_code})
    assert r.status_code == 401
    assert r.get_json()["error"]["code"] == "invalid_otp"
    r = client.post("/api/v1/auth/otp", json={"ticket": ticket, "code": shifted_code})
    assert r.status_code == 200, r.get_json()
    assert client.get("/api/v1/me", headers=bearer(r.get_json()["token"])).status_code == 200

    with app.app_context():
        sess = db.session.scalar(select(UserSession).where(UserSession.user_id == uid))
        assert _close(sess.created_at, TARGET, 60)
        login = db.session.scalar(select(AccessLog).where(AccessLog.user_id == uid, AccessLog.event == "login"))
        assert _close(login.at, TARGET, 60)


def test_without_an_app_context_the_clock_is_real_time():
    """Outside an app (no config, no Redis) clock.now() is plain aware UTC real time."""
    from lms import clock

    t = clock.now()
    assert t.tzinfo is not None and _close(t, datetime.now(timezone.utc))
