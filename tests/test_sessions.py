"""One ID, one session (EXM-9); logout; idle expiry; locked users lose their sessions."""
from __future__ import annotations

import http.client
import json
import re
import threading
from datetime import timedelta

import pyotp
from conftest import assert_api_error, bearer, set_clock
from sqlalchemy import select

REPLACED_NOTICE = "이 계정으로 다른 곳에서 로그인하여 현재 세션이 종료되었습니다."
EXPIRED_NOTICE = "세션이 만료되었습니다. 다시 로그인하세요."


def me(client, token):
    return client.get("/api/v1/me", headers=bearer(token))


def open_sessions(app, user_id=None) -> list:
    from lms.auth.models import UserSession
    from lms.db import db

    with app.app_context():
        stmt = select(UserSession).where(UserSession.ended_at.is_(None))
        if user_id is not None:
            stmt = stmt.where(UserSession.user_id == user_id)
        rows = db.session.scalars(stmt).all()
        for r in rows:
            db.session.expunge(r)
        db.session.remove()
        return rows


def session_row(app, token):
    from lms.auth.models import UserSession
    from lms.auth.service import hash_token
    from lms.db import db

    with app.app_context():
        row = db.session.scalar(select(UserSession).where(UserSession.token_hash == hash_token(token)))
        db.session.expunge(row)
        db.session.remove()
        return row


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf_token in the form"
    return m.group(1)


def page_login(client, users, username) -> None:
    """Log in through the HTML pages (password form, then OTP form), CSRF included."""
    page = client.get("/login")
    assert page.status_code == 200
    r = client.post("/login", data={"username": username, "password": users.passwords[username],
                                    "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login/otp"), r.status_code
    page = client.get("/login/otp")
    assert page.status_code == 200
    r = client.post("/login/otp", data={"code": users.code(username),
                                        "csrf_token": csrf_of(page.get_data(as_text=True))})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]


# --- one ID, one session ------------------------------------------------------------

def test_second_login_replaces_the_first(app, users):
    """EXM-9: a second login ends the first session: its next request is 401
    session_replaced; the second session works."""
    uid = users.create("kim01")
    first_client, second_client = app.test_client(), app.test_client()
    first = users.login(first_client, "kim01")
    assert me(first_client, first).status_code == 200
    second = users.login(second_client, "kim01")
    r = me(first_client, first)
    err = assert_api_error(r, 401, "session_replaced")
    assert "login elsewhere" in err["message"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert me(second_client, second).status_code == 200
    # Still replaced on every later try, and on any endpoint.
    assert_api_error(first_client.post("/api/v1/auth/logout", headers=bearer(first)), 401, "session_replaced")
    assert_api_error(me(first_client, first), 401, "session_replaced")
    assert [s.id for s in open_sessions(app, uid)] == [session_row(app, second).id]
    assert session_row(app, first).end_reason == "replaced"


def test_replaced_stays_replaced_after_the_new_session_ends(app, client, users):
    """EXM-9: a replaced token never comes back, even when the session that replaced it
    has logged out."""
    users.create("kim01")
    first = users.login(client, "kim01")
    second = users.login(client, "kim01")
    assert client.post("/api/v1/auth/logout", headers=bearer(second)).status_code == 204
    assert_api_error(me(client, first), 401, "session_replaced")


def test_other_users_sessions_untouched(app, client, users):
    """EXM-9 is per ID: another user's login leaves this user's session alone."""
    users.create("kim01")
    users.create("lee02")
    kim = users.login(client, "kim01")
    lee = users.login(client, "lee02")
    assert me(client, kim).status_code == 200
    assert me(client, lee).status_code == 200


def test_replaced_across_two_app_instances(app, second_app, users):
    """EXM-9 across processes: two app instances over one database (as behind a load
    balancer): a login through the second ends the session opened through the first."""
    uid = users.create("kim01")
    c1, c2 = app.test_client(), second_app.test_client()
    first = users.login(c1, "kim01")
    assert me(c2, first).status_code == 200  # sessions live in the database, not in a process
    second = users.login(c2, "kim01")
    assert_api_error(me(c1, first), 401, "session_replaced")
    assert_api_error(me(c2, first), 401, "session_replaced")
    assert me(c1, second).status_code == 200
    assert me(c2, second).status_code == 200
    assert len(open_sessions(app, uid)) == 1


def test_concurrent_logins_leave_one_session(app, live_server, users):
    """EXM-9 under concurrency: several logins of one ID racing through a real threaded
    server leave exactly one open session; every other successful token is replaced."""
    from lms import clock

    uid = users.create("kim01")
    with app.app_context():
        step = int(clock.now().timestamp()) // 30
    secret = users.secrets["kim01"]

    def call(method, path, body=None, token=None):
        conn = http.client.HTTPConnection(live_server.host, live_server.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, (json.loads(data) if data else None)

    tickets = []
    for _ in range(3):
        status, body = call("POST", "/api/v1/auth/login",
                            {"username": "kim01", "password": users.passwords["kim01"]})
        assert status == 200, body
        tickets.append(body["ticket"])
    codes = [pyotp.TOTP(secret).generate_otp(s) for s in (step - 1, step, step + 1)]
    results = [None] * 3
    barrier = threading.Barrier(3)

    def worker(i):
        barrier.wait()
        results[i] = call("POST", "/api/v1/auth/otp", {"ticket": tickets[i], "code": codes[i]})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    statuses = sorted(r[0] for r in results)
    assert all(s in (200, 401) for s in statuses), results
    tokens = [body["token"] for status, body in results if status == 200]
    assert tokens, results
    live = open_sessions(app, uid)
    assert len(live) == 1
    answers = [call("GET", "/api/v1/me", token=t) for t in tokens]
    assert sum(1 for status, _ in answers if status == 200) == 1
    assert all(body["error"]["code"] == "session_replaced" for status, body in answers if status != 200)


def test_html_session_replaced_by_api_login(app, users):
    """EXM-9: a page session (cookie) replaced by an API login is sent to the login page
    with the Korean notice that another login ended it."""
    users.create("kim01")
    browser = app.test_client()
    page_login(browser, users, "kim01")
    home = browser.get("/")
    assert home.status_code == 200
    users.login(app.test_client(), "kim01")
    r = browser.get("/")
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/login")
    page = browser.get(r.headers["Location"])
    assert page.status_code == 200
    assert REPLACED_NOTICE in page.get_data(as_text=True)
    # The dead cookie session is gone: the next visit redirects without the notice again.
    r = browser.get("/", follow_redirects=True)
    assert REPLACED_NOTICE not in r.get_data(as_text=True)


def test_api_session_replaced_by_page_login(app, users):
    """EXM-9 both ways: a login through the pages ends the API session."""
    users.create("kim01")
    api = app.test_client()
    token = users.login(api, "kim01")
    page_login(app.test_client(), users, "kim01")
    assert_api_error(me(api, token), 401, "session_replaced")


def test_cookie_api_call_needs_csrf(app, users):
    """A cookie-authenticated state-changing API call without X-CSRFToken is refused
    (400), not performed; with the token from the page it goes through."""
    users.create("kim01")
    browser = app.test_client()
    page_login(browser, users, "kim01")
    assert browser.get("/api/v1/me").status_code == 200  # safe method: cookie suffices
    r = browser.post("/api/v1/auth/logout")
    assert_api_error(r, 400, "invalid_request")
    assert browser.get("/api/v1/me").status_code == 200
    token = re.search(r'name="csrf-token" content="([^"]+)"', browser.get("/").get_data(as_text=True))
    assert token, "no csrf-token meta tag on the page"
    assert browser.post("/api/v1/auth/logout", headers={"X-CSRFToken": token.group(1)}).status_code == 204
    assert_api_error(browser.get("/api/v1/me"), 401, "session_expired")
    assert_api_error(browser.get("/api/v1/me"), 401, "unauthorized")  # the dead id left the cookie


# --- logout, idle expiry, locking ------------------------------------------------------

def test_logout_ends_the_session(app, client, users):
    """Logout answers 204 with no body; the token is dead afterwards (401)."""
    users.create("kim01")
    token = users.login(client, "kim01")
    r = client.post("/api/v1/auth/logout", headers=bearer(token))
    assert r.status_code == 204
    assert r.get_data() == b""
    assert_api_error(me(client, token), 401, "session_expired")
    assert_api_error(client.post("/api/v1/auth/logout", headers=bearer(token)), 401, "session_expired")
    assert session_row(app, token).end_reason == "logout"


def test_logout_without_token(client):
    assert_api_error(client.post("/api/v1/auth/logout"), 401, "unauthorized")
    assert_api_error(client.post("/api/v1/auth/logout", headers=bearer("made-up")), 401, "unauthorized")
    assert_api_error(client.post("/api/v1/auth/logout", headers={"Authorization": "Basic eDp5"}),
                     401, "unauthorized")


def test_page_logout(app, users):
    users.create("kim01")
    browser = app.test_client()
    page_login(browser, users, "kim01")
    page = browser.get("/").get_data(as_text=True)
    r = browser.post("/logout", data={"csrf_token": csrf_of(page)})
    assert r.status_code == 302
    assert open_sessions(app) == []
    assert browser.get("/").status_code == 302


def test_idle_session_expires_after_30_minutes(app, client, users):
    """A session idle for LMS_SESSION_IDLE_MINUTES (30) expires: 1 s before it is still
    valid (and the request renews it); at 30 minutes it is 401 session_expired."""
    assert app.config["SESSION_IDLE_MINUTES"] == 30
    users.create("kim01")
    token = users.login(client, "kim01")
    last = session_row(app, token).last_seen_at
    set_clock(app, last + timedelta(minutes=30) - timedelta(seconds=1))
    assert me(client, token).status_code == 200
    renewed = session_row(app, token).last_seen_at
    assert renewed >= last + timedelta(minutes=30) - timedelta(seconds=1)
    set_clock(app, renewed + timedelta(minutes=30))
    err = assert_api_error(me(client, token), 401, "session_expired")
    assert "expired" in err["message"]
    row = session_row(app, token)
    assert row.end_reason == "expired" and row.ended_at is not None
    # Expired for good, even if the clock went back.
    set_clock(app, last)
    assert_api_error(me(client, token), 401, "session_expired")


def test_idle_page_session_redirects_with_notice(app, users):
    users.create("kim01")
    browser = app.test_client()
    page_login(browser, users, "kim01")
    token_row = open_sessions(app)[0]
    set_clock(app, token_row.last_seen_at + timedelta(minutes=31))
    r = browser.get("/", follow_redirects=True)
    assert EXPIRED_NOTICE in r.get_data(as_text=True)


def test_periodic_job_expires_idle_sessions(app, client, users):
    """The minute job ends idle sessions so the session table tells admins the truth."""
    from lms.auth.service import expire_idle_sessions

    users.create("kim01")
    users.create("lee02")
    idle = users.login(client, "kim01")
    last = session_row(app, idle).last_seen_at
    set_clock(app, last + timedelta(minutes=30))
    fresh = users.login(client, "lee02")
    with app.app_context():
        assert expire_idle_sessions() == 1
    assert session_row(app, idle).end_reason == "expired"
    assert_api_error(me(client, idle), 401, "session_expired")
    assert me(client, fresh).status_code == 200


def test_locking_ends_sessions(app, client, users, admin_token):
    """Locking a user ends their open sessions at once (and they cannot log in again)."""
    uid = users.create("kim01")
    token = users.login(client, "kim01")
    assert client.post(f"/api/v1/users/{uid}/lock", json={"reason": "x"}, headers=bearer(admin_token)).status_code == 200
    assert_api_error(me(client, token), 401, "session_expired")
    assert session_row(app, token).end_reason == "locked"
    assert open_sessions(app, uid) == []
    # Unlocking does not revive the old session.
    assert client.post(f"/api/v1/users/{uid}/unlock", headers=bearer(admin_token)).status_code == 200
    assert_api_error(me(client, token), 401, "session_expired")
    assert me(client, admin_token).status_code == 200


# --- the per-request session check at its edges (one statement on PostgreSQL) -----------

def _request_rows(app, user_id) -> list:
    from lms.audit.models import AccessLog
    from lms.db import db

    with app.app_context():
        rows = db.session.execute(select(AccessLog.event, AccessLog.path).where(
            AccessLog.user_id == user_id).order_by(AccessLog.id)).all()
        db.session.remove()
        return [tuple(r) for r in rows]


def _set_user(app, user_id, **values) -> None:
    from sqlalchemy import update

    from lms.auth.models import User
    from lms.db import db

    with app.app_context():
        db.session.execute(update(User).where(User.id == user_id).values(**values))
        db.session.commit()
        db.session.remove()


def test_rec1_account_validity_ends_the_session_at_expires_at(app, client, users):
    """An account whose validity ends while its session is open (an inspector's access
    period): 1 s before expires_at the request is served and logged; at expires_at the
    session ends (401 session_expired), and the refused request leaves a session_expired
    row, not a request row (REC-1)."""
    uid = users.create("kim01")
    token = users.login(client, "kim01")
    start = session_row(app, token).last_seen_at
    _set_user(app, uid, expires_at=start + timedelta(minutes=10))
    set_clock(app, start + timedelta(minutes=10) - timedelta(seconds=1))
    assert me(client, token).status_code == 200
    assert _request_rows(app, uid)[-1] == ("request", "/api/v1/me")
    set_clock(app, start + timedelta(minutes=10))
    assert_api_error(me(client, token), 401, "session_expired")
    assert _request_rows(app, uid)[-1] == ("session_expired", "/api/v1/me")
    assert session_row(app, token).end_reason == "locked"


def test_rec1_locked_flag_refuses_without_a_request_row(app, client, users):
    """A user locked directly in the database (no lock endpoint ending the sessions) is
    refused on the next request, which is logged as session_expired only."""
    uid = users.create("kim01")
    token = users.login(client, "kim01")
    before = len(_request_rows(app, uid))
    _set_user(app, uid, locked=True)
    assert_api_error(me(client, token), 401, "session_expired")
    rows = _request_rows(app, uid)[before:]
    assert [e for e, _ in rows] == ["session_expired"]


def test_last_seen_is_rewritten_at_most_once_per_touch_interval(app, client, users):
    """The last-seen write is throttled (LMS_SESSION_TOUCH_SECONDS, 30): a request 1 s
    before the interval leaves it, one at the interval moves it; each is logged."""
    touch = app.config["SESSION_TOUCH_SECONDS"]
    uid = users.create("kim01")
    token = users.login(client, "kim01")
    last = session_row(app, token).last_seen_at
    logged = len(_request_rows(app, uid))
    set_clock(app, last + timedelta(seconds=touch - 1))
    assert me(client, token).status_code == 200
    assert session_row(app, token).last_seen_at == last
    set_clock(app, last + timedelta(seconds=touch))
    assert me(client, token).status_code == 200
    moved = session_row(app, token).last_seen_at  # the testing clock runs on from where it was set
    assert last + timedelta(seconds=touch) <= moved < last + timedelta(seconds=touch + 5)
    assert _request_rows(app, uid)[logged:] == [("request", "/api/v1/me")] * 2


def test_unlogged_view_still_checks_and_touches_the_session(app, client, users):
    """A view left out of the access log (lesson heartbeats) still needs a live session
    and still renews it, without a request row."""
    from lms.auth.service import check_session

    uid = users.create("kim01")
    token = users.login(client, "kim01")
    last = session_row(app, token).last_seen_at
    logged = len(_request_rows(app, uid))
    set_clock(app, last + timedelta(minutes=29))
    with app.test_request_context("/api/v1/views/1/heartbeat", method="POST"):
        auth = check_session(token, log_request=False)
        assert auth.problem is None and auth.principal.id == uid and auth.user.id == uid
        from lms.db import db

        db.session.commit()
        db.session.remove()
    moved = session_row(app, token).last_seen_at
    assert last + timedelta(minutes=29) <= moved < last + timedelta(minutes=29, seconds=5)
    assert len(_request_rows(app, uid)) == logged


def test_session_rules_at_their_edges():
    """The pure rules behind the session check (lms/auth/rules.py), which the PostgreSQL
    statement gets as cutoffs: idle expiry at the limit, not a second before; an account
    blocked when locked or at its expires_at, not a second before; last-seen rewritten at
    the touch interval, not a second before."""
    from datetime import datetime, timezone

    from lms.auth import rules

    now = datetime(2027, 3, 2, 9, 0, tzinfo=timezone.utc)
    idle, touch, second = timedelta(minutes=30), timedelta(seconds=30), timedelta(seconds=1)
    assert rules.idle_cutoff(now, idle) == now - idle
    assert rules.session_idle_expired(now - idle, now, idle)
    assert not rules.session_idle_expired(now - idle + second, now, idle)
    assert rules.account_blocked(True, None, now)
    assert rules.account_blocked(False, now, now)
    assert not rules.account_blocked(False, now + second, now)
    assert not rules.account_blocked(False, None, now)
    assert rules.touch_cutoff(now, touch) == now - touch
    assert rules.touch_due(now - touch, now, touch)
    assert not rules.touch_due(now - touch + second, now, touch)
