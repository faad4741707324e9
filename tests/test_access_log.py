"""The access log (REC-1, REC-3): every login event and every authenticated request, with
the client's address, device, user agent and time; append-only; no log, no request."""
from __future__ import annotations

import http.client
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import LiveServer, access_log, assert_api_error, bearer, set_clock, table_counts
from sqlalchemy import event

T0 = datetime(2027, 3, 2, 0, 0, 15, tzinfo=timezone.utc)
DEVICE = {"X-LMS-Device": "AA:BB:CC:DD:EE:0F", "User-Agent": "ExamClient/2.1 (Windows NT 10.0)"}


class Http:
    """A JSON client over a real socket, bound to a chosen source address."""

    def __init__(self, host: str, port: int, source: str = "127.0.0.2"):
        self.host, self.port, self.source = host, port, source

    def call(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30, source_address=(self.source, 0))
        h = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=h)
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        return resp.status, (json.loads(raw) if raw else None)

    def login(self, users, username, headers=None) -> str:
        status, body = self.call("POST", "/api/v1/auth/login",
                                 {"username": username, "password": users.passwords[username]}, headers)
        assert status == 200, body
        status, body = self.call("POST", "/api/v1/auth/otp",
                                 {"ticket": body["ticket"], "code": users.code(username)}, headers)
        assert status == 200, body
        return body["token"]


def _one(rows, **match):
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


def test_every_login_event_is_logged(app, client, users):
    """REC-1, REC-3: login_failed, otp_failed, login, request, session_replaced, logout
    and session_expired each leave a row with user, role, session, address, device, user
    agent and the (testing) clock's time."""
    from lms.auth.service import hash_token

    set_clock(app, T0)
    uid = users.create("kim01", "instructor")
    c = client

    assert_api_error(c.post("/api/v1/auth/login", json={"username": "kim01", "password": "wrong-password-1"},
                            headers=DEVICE), 401, "invalid_credentials")
    assert_api_error(c.post("/api/v1/auth/login", json={"username": "ghost01", "password": "wrong-password-1"}),
                     401, "invalid_credentials")
    ticket = c.post("/api/v1/auth/login", json={"username": "kim01", "password": users.passwords["kim01"]},
                    headers=DEVICE).get_json()["ticket"]
    good = users.code("kim01")
    assert_api_error(c.post("/api/v1/auth/otp", json={"ticket": ticket, "code": f"{(int(good) + 1) % 10**6:06d}"},
                            headers=DEVICE), 401, "invalid_otp")
    first = c.post("/api/v1/auth/otp", json={"ticket": ticket, "code": good}, headers=DEVICE).get_json()["token"]
    assert c.get("/api/v1/me", headers={**bearer(first), **DEVICE}).status_code == 200
    second = users.login(c, "kim01")  # replaces the first
    assert c.post("/api/v1/auth/logout", headers=bearer(second)).status_code == 204
    third = users.login(c, "kim01")

    from sqlalchemy import select

    from lms.auth.models import UserSession
    from lms.db import db

    with app.app_context():
        sid = {t: db.session.scalar(select(UserSession.id).where(UserSession.token_hash == hash_token(t)))
               for t in (first, second, third)}
        last_seen = db.session.scalar(select(UserSession.last_seen_at).where(UserSession.id == sid[third]))
        db.session.remove()
    set_clock(app, last_seen + timedelta(minutes=30))
    assert_api_error(c.get("/api/v1/me", headers=bearer(third)), 401, "session_expired")
    rows = access_log(app)

    for r in rows:
        assert r["ip"] == "127.0.0.1", r
        assert T0 <= r["at"] <= last_seen + timedelta(minutes=31), r

    failed = [r for r in rows if r["event"] == "login_failed"]
    assert [(r["username"], r["user_id"]) for r in failed] == [("kim01", uid), ("ghost01", None)]
    assert failed[0]["device"] == "aa:bb:cc:dd:ee:0f"
    assert failed[0]["user_agent"] == DEVICE["User-Agent"]
    assert failed[0]["path"] == "/api/v1/auth/login" and failed[0]["method"] == "POST"

    otp_failed = _one(rows, event="otp_failed")
    assert otp_failed["user_id"] == uid and otp_failed["role"] == "instructor"
    assert otp_failed["path"] == "/api/v1/auth/otp"

    logins = [r for r in rows if r["event"] == "login"]
    assert [r["session_id"] for r in logins] == [sid[first], sid[second], sid[third]]
    assert logins[0]["device"] == "aa:bb:cc:dd:ee:0f"
    assert logins[0]["user_agent"] == DEVICE["User-Agent"]
    assert all(r["user_id"] == uid and r["username"] == "kim01" and r["role"] == "instructor" for r in logins)

    request = _one(rows, event="request", session_id=sid[first])
    assert request["path"] == "/api/v1/me"
    assert request["method"] == "GET"
    assert (request["user_id"], request["username"], request["role"]) == (uid, "kim01", "instructor")
    assert request["device"] == "aa:bb:cc:dd:ee:0f"
    assert request["user_agent"] == DEVICE["User-Agent"]

    replaced = _one(rows, event="session_replaced")
    assert replaced["session_id"] == sid[first] and replaced["user_id"] == uid

    logout = _one(rows, event="logout")
    assert logout["session_id"] == sid[second] and logout["path"] == "/api/v1/auth/logout"

    expired = _one(rows, event="session_expired")
    assert expired["session_id"] == sid[third]
    assert expired["at"] >= last_seen + timedelta(minutes=30)


def test_unauthenticated_requests_write_no_request_rows(app, client, users):
    """REC-1 records people's access: anonymous calls and dead tokens add no request row."""
    users.create("kim01")
    token = users.login(client, "kim01")
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    before = len(access_log(app))
    client.get("/api/v1/health")
    client.get("/api/v1/me")
    client.get("/api/v1/me", headers=bearer(token))
    client.get("/api/v1/me", headers=bearer("made-up-token"))
    assert len(access_log(app)) == before


def test_malformed_device_header_is_not_stored(app, client, users):
    """REC-1: the device column holds only a well-formed identifier; junk is 'unknown'."""
    users.create("kim01")
    token = users.login(client, "kim01")
    client.get("/api/v1/me", headers={**bearer(token), "X-LMS-Device": "<script>alert(1)</script>"})
    client.get("/api/v1/me", headers={**bearer(token), "X-LMS-Device": "x" * 129})
    assert [r["device"] for r in access_log(app, "request")] == [None, None]


def test_real_socket_peer_address_is_logged(app, live_server, users):
    """REC-1: the address logged is the TCP peer (here 127.0.0.2, over a real socket);
    X-Forwarded-For is ignored when LMS_TRUSTED_PROXIES is unset."""
    assert app.config["TRUSTED_PROXIES"] == 0
    uid = users.create("kim01", "ta")
    net = Http(live_server.host, live_server.port, source="127.0.0.2")
    spoof = {"X-Forwarded-For": "203.0.113.50", "X-Real-IP": "203.0.113.51", **DEVICE}
    token = net.login(users, "kim01", headers=spoof)
    status, body = net.call("GET", "/api/v1/me", headers={**bearer(token), **spoof})
    assert status == 200 and body["id"] == uid
    rows = access_log(app)
    assert {r["event"] for r in rows} >= {"login_password_ok", "login", "request"}
    assert {r["ip"] for r in rows} == {"127.0.0.2"}
    request = _one(rows, event="request")
    assert request["user_agent"] == DEVICE["User-Agent"] and request["device"] == "aa:bb:cc:dd:ee:0f"
    assert request["role"] == "ta"

    from lms.auth.models import UserSession
    from lms.db import db

    with app.app_context():
        assert [s.ip for s in db.session.query(UserSession)] == ["127.0.0.2"]
        db.session.remove()


@pytest.fixture
def proxied_app(test_env, monkeypatch):
    """An app created with LMS_TRUSTED_PROXIES=1 (ProxyFix is installed at creation)."""
    from lms import create_app

    monkeypatch.setenv("LMS_TRUSTED_PROXIES", "1")
    proxied = create_app("testing")
    assert proxied.config["TRUSTED_PROXIES"] == 1
    return proxied


def test_trusted_proxy_hop_is_logged(app, proxied_app, users):
    """REC-1 behind one trusted proxy: the address the proxy appended to X-Forwarded-For
    (the last hop) is logged, not what the client wrote before it, nor the proxy's own."""
    users.create("kim01")
    with LiveServer(proxied_app, host="0.0.0.0") as srv:
        net = Http("127.0.0.1", srv.port, source="127.0.0.2")
        xff = {"X-Forwarded-For": "10.66.66.66, 198.51.100.23"}
        token = net.login(users, "kim01", headers=xff)
        status, _ = net.call("GET", "/api/v1/me", headers={**bearer(token), **xff})
        assert status == 200
        status, _ = net.call("GET", "/api/v1/me", headers=bearer(token))
        assert status == 200
    rows = access_log(app, "request")
    assert [r["ip"] for r in rows] == ["198.51.100.23", "127.0.0.2"]
    assert _one(access_log(app), event="login")["ip"] == "198.51.100.23"


def test_untrusted_forwarded_for_cannot_dodge_the_ip_limit(app, client, monkeypatch):
    """ATT-3 with REC-1's client address: rotating X-Forwarded-For values does not reset
    the per-address failure limit when no proxy is trusted."""
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES_PER_IP", 2)
    for i, name in enumerate(("alpha01", "bravo02", "charlie03")):
        r = client.post("/api/v1/auth/login", json={"username": name, "password": "wrong-password-1"},
                        headers={"X-Forwarded-For": f"192.0.2.{i + 1}"})
        assert r.status_code == (401 if i < 2 else 429)
    assert {r["ip"] for r in access_log(app)} == {"127.0.0.1"}


class _BrokenLog:
    """Makes the database refuse every INSERT into access_log while armed (as a full disk
    or a revoked grant would), whichever way the row is written (ORM, Core or the driver
    directly): a trigger on the table raises."""

    _PG_ARM = (
        "CREATE OR REPLACE FUNCTION lms_test_refuse_log() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'access log unavailable'; END $$",
        "CREATE TRIGGER lms_test_refuse_log BEFORE INSERT ON access_log "
        "FOR EACH ROW EXECUTE FUNCTION lms_test_refuse_log()",
    )
    _PG_DISARM = ("DROP TRIGGER IF EXISTS lms_test_refuse_log ON access_log",
                  "DROP FUNCTION IF EXISTS lms_test_refuse_log()")
    _SQLITE_ARM = ("CREATE TRIGGER lms_test_refuse_log BEFORE INSERT ON access_log "
                   "BEGIN SELECT RAISE(ABORT, 'access log unavailable'); END",)
    _SQLITE_DISARM = ("DROP TRIGGER IF EXISTS lms_test_refuse_log",)

    def __init__(self, app):
        from lms.db import db

        with app.app_context():
            self.engine = db.engine
        self.pg = self.engine.dialect.name == "postgresql"

    def _run(self, statements):
        from sqlalchemy import text

        with self.engine.begin() as conn:
            for sql in statements:
                conn.execute(text(sql))

    def arm(self):
        self._run(self._PG_ARM if self.pg else self._SQLITE_ARM)

    def disarm(self):
        self._run(self._PG_DISARM if self.pg else self._SQLITE_DISARM)


@pytest.fixture
def broken_log(app):
    b = _BrokenLog(app)
    yield b
    b.disarm()


def test_request_fails_when_the_log_cannot_be_written(app, client, users, admin_token, broken_log):
    """REC-1: an authenticated request whose access-log row cannot be written fails (5xx)
    and its action does not happen; login steps fail the same way."""
    users.create("kim01")
    before = table_counts(app)
    log_rows = len(access_log(app))
    broken_log.arm()

    r = client.post("/api/v1/users", headers=bearer(admin_token), json={
        "username": "lee02", "password": "long-enough-pw-1", "role": "learner", "name": "이학생"})
    assert_api_error(r, 500, "internal_error")
    r = client.get("/api/v1/me", headers=bearer(admin_token))
    assert_api_error(r, 500, "internal_error")
    r = client.post("/api/v1/auth/login", json={"username": "kim01", "password": users.passwords["kim01"]})
    assert r.status_code >= 500 and "ticket" not in r.get_data(as_text=True)
    r = client.post("/api/v1/auth/login", json={"username": "kim01", "password": "wrong-password-1"})
    assert r.status_code >= 500
    r = client.post("/api/v1/auth/logout", headers=bearer(admin_token))
    assert r.status_code >= 500

    after = table_counts(app)
    assert after == before
    assert len(access_log(app)) == log_rows


def test_log_write_failure_leaves_session_alive(app, client, users, admin_token, broken_log):
    """REC-1: a failed logout (its log row could not be written) did not end the session:
    nothing happened unlogged; once the log works again, so does the session."""
    broken_log.arm()
    assert client.post("/api/v1/auth/logout", headers=bearer(admin_token)).status_code >= 500
    broken_log.disarm()
    assert client.get("/api/v1/me", headers=bearer(admin_token)).status_code == 200


def test_access_log_is_append_only(app, client, users, admin_token):
    """REC-1: a run through logins, requests, replacement, logout, locking and expiry
    never issues an UPDATE or DELETE on access_log; earlier rows stay exactly as written."""
    from lms.db import db

    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        uid = users.create("kim01")
        first = users.login(client, "kim01")
        snapshot = access_log(app)
        client.get("/api/v1/me", headers=bearer(first))
        second = users.login(client, "kim01")
        client.get("/api/v1/me", headers=bearer(first))
        client.post("/api/v1/auth/logout", headers=bearer(second))
        third = users.login(client, "kim01")
        client.post(f"/api/v1/users/{uid}/lock", json={}, headers=bearer(admin_token))
        client.get("/api/v1/me", headers=bearer(third))
        client.post(f"/api/v1/users/{uid}/unlock", headers=bearer(admin_token))
        client.post("/api/v1/auth/login", json={"username": "kim01", "password": "wrong-password-1"})
        fourth = users.login(client, "kim01")
        set_clock(app, datetime.now(timezone.utc) + timedelta(hours=1))
        client.get("/api/v1/me", headers=bearer(fourth))
        from lms.auth.service import expire_idle_sessions

        with app.app_context():
            expire_idle_sessions()
    finally:
        event.remove(engine, "before_cursor_execute", capture)

    writes = [s for s in statements if re.match(r"\s*(UPDATE|DELETE)\b[^;]*\baccess_log\b", s, re.I | re.S)]
    assert writes == []
    assert any(re.match(r"\s*INSERT INTO access_log", s, re.I) for s in statements)
    after = access_log(app)
    assert after[:len(snapshot)] == snapshot
    assert len(after) > len(snapshot) + 8
    ids = [r["id"] for r in after]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_no_code_path_updates_the_access_log():
    """REC-1: no module of the application updates access-log rows (only retention may
    ever remove old ones)."""
    root = Path(__file__).resolve().parent.parent / "lms"
    pattern = re.compile(r"update\(\s*AccessLog\b|UPDATE\s+\"?access_log\b|AccessLog\)\s*\.\s*update\(", re.I)
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if pattern.search(p.read_text("utf-8"))]
    assert offenders == []
    # And the model says so where people will read it.
    from lms.audit.models import AccessLog

    assert "Append-only" in AccessLog.__doc__
