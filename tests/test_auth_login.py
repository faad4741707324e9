"""Login: password, then a TOTP code (ATT-3, EXM-8); tickets; failure limits; locked accounts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyotp
from conftest import access_log, assert_api_error, bearer, set_clock, table_counts
from sqlalchemy import select

# 15 s into a 30-second TOTP step, so a test's few milliseconds never cross a step boundary.
T0 = datetime(2027, 3, 2, 0, 0, 15, tzinfo=timezone.utc)
STEP0 = int(T0.timestamp()) // 30


def password_step(client, username, password, **kw):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password}, **kw)


def ticket_for(client, users, username, **kw) -> str:
    r = password_step(client, username, users.passwords[username], **kw)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["ticket"]


def otp_step(client, ticket, code, **kw):
    return client.post("/api/v1/auth/otp", json={"ticket": ticket, "code": code}, **kw)


def code_at(users, username, step: int) -> str:
    return pyotp.TOTP(users.secrets[username]).generate_otp(step)


def user_row(app, username):
    from lms.auth.models import User
    from lms.db import db

    with app.app_context():
        u = db.session.scalar(select(User).where(User.username == username))
        db.session.expunge(u)
        return u


# --- the two steps -----------------------------------------------------------------

def test_login_is_password_then_totp(client, users):
    """ATT-3, EXM-8: a correct password alone gives no session, only a ticket for the
    TOTP step; the code turns it into a bearer token."""
    uid = users.create("kim01", "learner", name="김학생")
    r = password_step(client, "kim01", users.passwords["kim01"])
    assert r.status_code == 200
    body = r.get_json()
    assert body["otp_required"] is True
    assert isinstance(body["ticket"], str) and len(body["ticket"]) >= 32
    assert body["otp_enrolled"] is False
    assert "token" not in body
    # The ticket is not a session token.
    assert_api_error(client.get("/api/v1/me", headers=bearer(body["ticket"])), 401, "unauthorized")

    r = otp_step(client, body["ticket"], users.code("kim01"))
    assert r.status_code == 200
    out = r.get_json()
    assert out["user"] == {"id": uid, "username": "kim01", "role": "learner"}
    me = client.get("/api/v1/me", headers=bearer(out["token"]))
    assert me.status_code == 200
    assert me.get_json()["id"] == uid
    assert me.get_json()["name"] == "김학생"
    assert me.get_json()["username"] == "kim01" and me.get_json()["role"] == "learner"


def test_wrong_password_is_invalid_credentials(app, client, users):
    """ATT-3: a wrong password is refused with 401 invalid_credentials and no ticket."""
    users.create("kim01")
    before = table_counts(app)
    err = assert_api_error(password_step(client, "kim01", "wrong-password-1"), 401, "invalid_credentials")
    assert "ticket" not in err
    after = table_counts(app)
    assert after["login_ticket"] == before["login_ticket"] == 0
    assert after["user_session"] == 0


def test_unknown_username_is_indistinguishable(client, users):
    """ATT-3: an unknown username answers exactly as a wrong password does (no user
    enumeration)."""
    users.create("kim01")
    wrong_pw = assert_api_error(password_step(client, "kim01", "wrong-password-1"), 401, "invalid_credentials")
    unknown = assert_api_error(password_step(client, "nobody99", "wrong-password-1"), 401, "invalid_credentials")
    assert unknown == wrong_pw
    # Case matters: usernames are exact.
    assert_api_error(password_step(client, "KIM01", users.passwords["kim01"]), 401, "invalid_credentials")


def test_wrong_otp_is_invalid_otp(client, users):
    """EXM-8: a wrong, malformed or empty-looking code is 401 invalid_otp; the ticket
    survives a wrong code (the failure limit bounds guessing), and a right code then works."""
    users.create("kim01")
    set_clock(client.application, T0)
    ticket = ticket_for(client, users, "kim01")
    good = code_at(users, "kim01", STEP0)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    for bad in (wrong, "12345", "abcdef", good + " "):
        assert_api_error(otp_step(client, ticket, bad), 401, "invalid_otp")
    assert otp_step(client, ticket, good).status_code == 200


def test_replayed_otp_is_refused(client, users):
    """EXM-8: a code already used is never accepted again, even on a fresh ticket
    within its 30-second step."""
    users.create("kim01")
    set_clock(client.application, T0)
    code = code_at(users, "kim01", STEP0)
    assert otp_step(client, ticket_for(client, users, "kim01"), code).status_code == 200
    second = ticket_for(client, users, "kim01")
    assert_api_error(otp_step(client, second, code), 401, "invalid_otp")
    # An older step than the one used is refused too (no going back).
    assert_api_error(otp_step(client, second, code_at(users, "kim01", STEP0 - 1)), 401, "invalid_otp")
    # The next step's code is fresh: accepted on the same (still unused) ticket.
    assert otp_step(client, second, code_at(users, "kim01", STEP0 + 1)).status_code == 200


def test_otp_drift_one_step_either_way(app, client, users):
    """ATT-3, EXM-8: codes of the current step and one step either side are accepted;
    two steps away is refused (set by the testing clock API)."""
    users.create("kim01")
    r = client.put("/api/v1/testing/clock", json={"now": T0.isoformat()})
    assert r.status_code == 204
    ticket = ticket_for(client, users, "kim01")
    assert_api_error(otp_step(client, ticket, code_at(users, "kim01", STEP0 - 2)), 401, "invalid_otp")
    assert_api_error(otp_step(client, ticket, code_at(users, "kim01", STEP0 + 2)), 401, "invalid_otp")
    # -1, 0, +1 in increasing order (each step may be used once, and only forwards).
    assert otp_step(client, ticket, code_at(users, "kim01", STEP0 - 1)).status_code == 200
    assert otp_step(client, ticket_for(client, users, "kim01"),
                    code_at(users, "kim01", STEP0)).status_code == 200
    assert otp_step(client, ticket_for(client, users, "kim01"),
                    code_at(users, "kim01", STEP0 + 1)).status_code == 200
    assert user_row(app, "kim01").otp_last_step == STEP0 + 1


def test_login_ticket_expires(app, client, users):
    """ATT-3: the ticket of the password step lasts LMS_LOGIN_TICKET_SECONDS (300 s):
    usable 1 s before, refused at and after its end (401 invalid_ticket)."""
    from lms.auth.models import LoginTicket
    from lms.db import db

    assert app.config["LOGIN_TICKET_SECONDS"] == 300
    users.create("kim01")
    set_clock(app, T0)
    first = ticket_for(client, users, "kim01")
    second = ticket_for(client, users, "kim01")
    with app.app_context():
        created = sorted(db.session.scalars(select(LoginTicket.created_at)))
        expires = sorted(db.session.scalars(select(LoginTicket.expires_at)))
        db.session.remove()
    assert [e - c for c, e in zip(created, expires)] == [timedelta(seconds=300)] * 2

    set_clock(app, created[0] + timedelta(seconds=299))
    assert otp_step(client, first, users.code("kim01")).status_code == 200

    set_clock(app, created[1] + timedelta(seconds=300))
    assert_api_error(otp_step(client, second, users.code("kim01")), 401, "invalid_ticket")
    set_clock(app, created[1] + timedelta(seconds=301))
    assert_api_error(otp_step(client, second, users.code("kim01")), 401, "invalid_ticket")


def test_ticket_is_single_use(client, users):
    """ATT-3: a ticket gives at most one session; unknown tickets are refused."""
    users.create("kim01")
    ticket = ticket_for(client, users, "kim01")
    assert otp_step(client, ticket, users.code("kim01")).status_code == 200
    assert_api_error(otp_step(client, ticket, users.code("kim01")), 401, "invalid_ticket")
    assert_api_error(otp_step(client, "not-a-ticket", users.code("kim01")), 401, "invalid_ticket")


def test_ticket_belongs_to_its_user(client, users):
    """EXM-8: one user's ticket cannot be completed with another user's code."""
    users.create("kim01")
    users.create("lee02")
    ticket = ticket_for(client, users, "kim01")
    assert_api_error(otp_step(client, ticket, users.code("lee02")), 401, "invalid_otp")


# --- failure limits ------------------------------------------------------------------

def test_per_user_failure_limit(app, client, users):
    """ATT-3: after LOGIN_MAX_FAILURES_PER_USER failures the username is refused with
    429 too_many_attempts and Retry-After, even with the right password; other users
    are unaffected."""
    limit = app.config["LOGIN_MAX_FAILURES_PER_USER"]
    assert limit == 5
    users.create("kim01")
    users.create("lee02")
    for _ in range(limit):
        assert_api_error(password_step(client, "kim01", "wrong-password-1"), 401, "invalid_credentials")
    r = password_step(client, "kim01", users.passwords["kim01"])
    assert_api_error(r, 429, "too_many_attempts")
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= app.config["LOGIN_FAILURE_WINDOW_SECONDS"]
    assert_api_error(password_step(client, "kim01", "wrong-password-1"), 429, "too_many_attempts")
    # Another username from the same address still logs in.
    assert ticket_for(client, users, "lee02")
    assert access_log(app, "login_rate_limited")[0]["username"] == "kim01"


def test_per_user_limit_counts_unknown_usernames(app, client):
    """ATT-3: guessing against a username that does not exist is limited the same way
    (the answer does not reveal whether it exists)."""
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_USER"]):
        assert_api_error(password_step(client, "ghost01", "wrong-password-1"), 401, "invalid_credentials")
    assert_api_error(password_step(client, "ghost01", "wrong-password-1"), 429, "too_many_attempts")


def test_wrong_otp_codes_count_towards_the_limit(app, client, users):
    """EXM-8: guessing TOTP codes on one ticket is limited: after the limit even the
    right code is refused with 429."""
    users.create("kim01")
    set_clock(app, T0)
    ticket = ticket_for(client, users, "kim01")
    good = code_at(users, "kim01", STEP0)
    for i in range(app.config["LOGIN_MAX_FAILURES_PER_USER"]):
        assert_api_error(otp_step(client, ticket, f"{(int(good) + 1 + i) % 1_000_000:06d}"), 401, "invalid_otp")
    r = otp_step(client, ticket, good)
    assert_api_error(r, 429, "too_many_attempts")
    assert int(r.headers["Retry-After"]) >= 1
    assert table_counts(app)["user_session"] == 0


def test_per_ip_failure_limit(app, client, users, monkeypatch):
    """ATT-3: LOGIN_MAX_FAILURES_PER_IP failures from one address, spread over many
    usernames, block that address (429, even for a right password); other addresses
    are unaffected."""
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_PER_IP", 3)
    users.create("kim01")
    attacker = {"environ_base": {"REMOTE_ADDR": "198.51.100.7"}}
    for name in ("alpha01", "bravo02", "charlie03"):
        assert_api_error(password_step(client, name, "wrong-password-1", **attacker), 401, "invalid_credentials")
    r = password_step(client, "kim01", users.passwords["kim01"], **attacker)
    assert_api_error(r, 429, "too_many_attempts")
    assert int(r.headers["Retry-After"]) >= 1
    # The same user from another address: fine.
    ticket = ticket_for(client, users, "kim01", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert otp_step(client, ticket, users.code("kim01"),
                    environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code == 200


def test_success_clears_user_failures(app, client, users):
    """ATT-3: a successful login resets the username's failure count."""
    limit = app.config["LOGIN_MAX_FAILURES_PER_USER"]
    users.create("kim01")
    for _ in range(limit - 1):
        assert_api_error(password_step(client, "kim01", "wrong-password-1"), 401, "invalid_credentials")
    users.login(client, "kim01")
    # A full set of failures is allowed again before the limit applies.
    for _ in range(limit):
        assert_api_error(password_step(client, "kim01", "wrong-password-1"), 401, "invalid_credentials")
    assert_api_error(password_step(client, "kim01", users.passwords["kim01"]), 429, "too_many_attempts")


def test_password_success_alone_does_not_clear_failures(app, client, users):
    """ATT-3: only a completed login (password and code) resets the count: a right
    password followed by wrong codes stays counted."""
    limit = app.config["LOGIN_MAX_FAILURES_PER_USER"]
    users.create("kim01")
    for _ in range(limit - 1):
        assert_api_error(password_step(client, "kim01", "wrong-password-1"), 401, "invalid_credentials")
    ticket = ticket_for(client, users, "kim01")
    assert_api_error(otp_step(client, ticket, "000000" if users.code("kim01") != "000000" else "111111"),
                     401, "invalid_otp")
    assert_api_error(password_step(client, "kim01", users.passwords["kim01"]), 429, "too_many_attempts")


# --- locked and throttled accounts ---------------------------------------------------

def test_locked_account(app, client, users, admin_token):
    """ATT-3: a locked account is refused (403 account_locked) after a right password; a
    wrong password still says only invalid_credentials; the admin sees locked=true."""
    uid = users.create("kim01")
    r = client.post(f"/api/v1/users/{uid}/lock", json={"reason": "분실 신고"}, headers=bearer(admin_token))
    assert r.status_code == 200 and r.get_json()["locked"] is True
    assert_api_error(password_step(client, "kim01", users.passwords["kim01"]), 403, "account_locked")
    assert_api_error(password_step(client, "kim01", "wrong-password-1"), 401, "invalid_credentials")

    listed = client.get("/api/v1/users", headers=bearer(admin_token)).get_json()["users"]
    entry = next(u for u in listed if u["id"] == uid)
    assert entry["locked"] is True and entry["locked_reason"] == "분실 신고"
    assert next(u for u in listed if u["username"] == "admin1")["locked"] is False
    only_locked = client.get("/api/v1/users?locked=true", headers=bearer(admin_token)).get_json()["users"]
    assert [u["id"] for u in only_locked] == [uid]

    r = client.post(f"/api/v1/users/{uid}/unlock", headers=bearer(admin_token))
    assert r.status_code == 200 and r.get_json()["locked"] is False
    users.login(client, "kim01")


def test_lock_between_password_and_code(client, users, admin_token):
    """ATT-3: an account locked after its password step cannot complete the code step."""
    uid = users.create("kim01")
    ticket = ticket_for(client, users, "kim01")
    assert client.post(f"/api/v1/users/{uid}/lock", json={}, headers=bearer(admin_token)).status_code == 200
    assert_api_error(otp_step(client, ticket, users.code("kim01")), 403, "account_locked")


def test_throttled_account_shows_to_admin(app, client, users, admin_token):
    """ATT-3: an account blocked by failed logins shows throttled_seconds to the admin;
    unlocking it clears the failures."""
    uid = users.create("kim01")
    for _ in range(app.config["LOGIN_MAX_FAILURES_PER_USER"]):
        password_step(client, "kim01", "wrong-password-1")
    listed = client.get("/api/v1/users", headers=bearer(admin_token)).get_json()["users"]
    by_name = {u["username"]: u for u in listed}
    assert 1 <= by_name["kim01"]["throttled_seconds"] <= app.config["LOGIN_FAILURE_WINDOW_SECONDS"]
    assert by_name["kim01"]["locked"] is False
    assert by_name["admin1"]["throttled_seconds"] is None
    one = client.get(f"/api/v1/users/{uid}", headers=bearer(admin_token)).get_json()
    assert one["throttled_seconds"] >= 1

    assert client.post(f"/api/v1/users/{uid}/unlock", headers=bearer(admin_token)).status_code == 200
    one = client.get(f"/api/v1/users/{uid}", headers=bearer(admin_token)).get_json()
    assert one["throttled_seconds"] is None
    users.login(client, "kim01")


def test_expired_account_is_refused(app, client, users, admin_token):
    """An inspector account past its expires_at cannot log in (403 account_expired); an
    expiry already past is refused when the account is created (400, nothing written)."""

    past = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    body = {"username": "inspect01", "password": "inspector-pass-1", "role": "inspector", "name": "점검자"}
    def written(counts):  # the admin's request itself is in the access log, before the view
        return {table: n for table, n in counts.items() if table != "access_log"}

    before = written(table_counts(app))
    r = client.post("/api/v1/users", headers=bearer(admin_token), json={**body, "expires_at": past})
    assert_api_error(r, 400, "invalid_request")
    assert written(table_counts(app)) == before
    ends = datetime.now(timezone.utc) + timedelta(hours=1)
    r = client.post("/api/v1/users", headers=bearer(admin_token), json={**body, "expires_at": ends.isoformat()})
    assert r.status_code == 201
    set_clock(app, ends)
    assert_api_error(password_step(client, "inspect01", "inspector-pass-1"), 403, "account_expired")


# --- enrolment ---------------------------------------------------------------------------

def test_first_login_enrols_the_authenticator(app, client, users, admin_token):
    """ATT-3: otp_enrolled stays false until one valid code has been entered; the first
    completed login sets it (and logs otp_enrolled once)."""
    uid = users.create("kim01")
    assert client.get(f"/api/v1/users/{uid}", headers=bearer(admin_token)).get_json()["otp_enrolled"] is False
    ticket = ticket_for(client, users, "kim01")
    assert_api_error(otp_step(client, ticket, "000000" if users.code("kim01") != "000000" else "111111"),
                     401, "invalid_otp")
    assert user_row(app, "kim01").otp_confirmed is False
    assert otp_step(client, ticket, users.code("kim01")).status_code == 200
    assert client.get(f"/api/v1/users/{uid}", headers=bearer(admin_token)).get_json()["otp_enrolled"] is True
    r = password_step(client, "kim01", users.passwords["kim01"])
    assert r.get_json()["otp_enrolled"] is True
    users.login(client, "kim01")
    enrolled = [e for e in access_log(app, "otp_enrolled") if e["user_id"] == uid]
    assert len(enrolled) == 1
