"""Test fixtures. The suite runs against a real database and a real Redis.

``LMS_TEST_DB=sqlite`` (default) or ``LMS_TEST_DB=postgresql`` picks the database; each run
creates its own (a temp SQLite file or a fresh PostgreSQL database) and migrates it with
Alembic, so parallel runs never meet. Redis keys get a per-run prefix.
"""
from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import text

RUN_ID = uuid.uuid4().hex[:10]
TEST_DB = os.environ.get("LMS_TEST_DB", "sqlite")
PG_ADMIN_URL = os.environ.get("LMS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _create_pg_database() -> tuple[str, str]:
    import psycopg

    name = f"lms_test_{RUN_ID}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return name, f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


def _drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if TEST_DB == "postgresql":
        name, url = _create_pg_database()
        yield url
        _drop_pg_database(name)
    elif TEST_DB == "sqlite":
        path = tmp_path_factory.mktemp("db") / "lms.sqlite3"
        yield f"sqlite:///{path}"
    else:
        raise RuntimeError(f"LMS_TEST_DB must be sqlite or postgresql, not {TEST_DB!r}")


@pytest.fixture(scope="session")
def test_env(database_url, tmp_path_factory):
    """Environment of this test run; also given to subprocesses (servers, workers)."""
    env = {
        "LMS_ENV": "testing",
        "LMS_DATABASE_URL": database_url,
        "LMS_REDIS_URL": os.environ.get("LMS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "LMS_REDIS_PREFIX": f"lmstest-{RUN_ID}",
        "LMS_RQ_QUEUE": f"lmstest-{RUN_ID}",
        "LMS_MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
    }
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def app(test_env):
    from flask_migrate import upgrade

    from lms import create_app
    from lms.i18n import compile_catalogs

    compile_catalogs()
    app = create_app("testing")
    with app.app_context():
        upgrade()
    yield app


@pytest.fixture(autouse=True)
def _clean(request):
    """After each test: empty every table and this run's Redis keys."""
    yield
    if "app" not in request.fixturenames:
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        from lms.db import db
        from lms.extensions import redis_client

        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
            else:
                for t in tables:
                    conn.execute(text(f'DELETE FROM "{t}"'))
        r = redis_client()
        keys = list(r.scan_iter(match=f"{app.config['REDIS_PREFIX']}:*", count=1000))
        keys += list(r.scan_iter(match=f"rq:*{app.config['RQ_QUEUE']}*", count=1000))
        if keys:
            r.delete(*keys)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


# --- helpers -------------------------------------------------------------------------

class Users:
    """Create users and log them in through the real API flow."""

    def __init__(self, app):
        self.app = app
        self.secrets: dict[str, str] = {}
        self.passwords: dict[str, str] = {}

    def create(self, username: str, role: str = "learner", *, password: str = "correct-horse-9",
               name: str = "홍길동", disability: bool = False, institution_id: int | None = None):
        from lms.auth import service
        from lms.db import db

        with self.app.app_context():
            user = service.create_user(username=username, password=password, role=role, name=name,
                                       disability=disability, institution_id=institution_id)
            db.session.commit()
            self.secrets[username] = user.otp_secret
            self.passwords[username] = password
            return user.id

    def code(self, username: str) -> str:
        """A TOTP code of a step this user has not used yet (advancing the testing clock
        by one step when the window has no unused step left)."""
        from lms import clock
        from lms.auth.models import User
        from lms.auth.rules import OTP_STEP_SECONDS, otp_step
        from lms.db import db
        from sqlalchemy import select

        with self.app.app_context():
            last = db.session.scalar(select(User.otp_last_step).where(User.username == username))
            now = clock.now()
            step = otp_step(now)
            # The current step (or the next unused one): a code of the previous step would
            # stop working if the clock crossed a step boundary before the server checks it.
            candidate = step if last is None else max(step, last + 1)
            if candidate > step + 1:
                clock.set_now(now + timedelta(seconds=OTP_STEP_SECONDS))
                return self.code(username)
            return pyotp.TOTP(self.secrets[username]).generate_otp(candidate)

    def login(self, client, username: str, **headers) -> str:
        r = client.post("/api/v1/auth/login", json={"username": username, "password": self.passwords[username]},
                        headers=headers)
        assert r.status_code == 200, r.get_json()
        r = client.post("/api/v1/auth/otp", json={"ticket": r.get_json()["ticket"], "code": self.code(username)},
                        headers=headers)
        assert r.status_code == 200, r.get_json()
        return r.get_json()["token"]


@pytest.fixture
def users(app):
    return Users(app)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_token(users, client):
    users.create("admin1", "admin", name="관리자")
    return users.login(client, "admin1")


# --- real servers --------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """An app instance under werkzeug's threaded WSGI server on a real socket."""

    def __init__(self, app_instance, host: str = "127.0.0.1"):
        from werkzeug.serving import make_server

        # Port 0: the kernel picks a free port at bind time (a port picked first and bound
        # later may be taken meanwhile by a parallel run's server).
        self.host = host
        self.server = make_server(host, 0, app_instance, threaded=True)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def live_server(app):
    """The test app served on 127.0.0.1 (listening on all loopback addresses' port)."""
    with LiveServer(app, host="0.0.0.0") as srv:
        srv.host = "127.0.0.1"
        yield srv


@pytest.fixture
def second_app(test_env):
    """A second, independent app instance over the same database and Redis (as a second
    web process behind a load balancer would be)."""
    from lms import create_app

    return create_app("testing")


# --- helpers of the foundation suites (auth, sessions, access log, users, bad input) ---

def assert_api_error(resp, status: int, code: str) -> dict:
    """Assert an API error answer: this status, JSON ``{"error": {"code", "message", ...}}``
    (API.md, Conventions) with this code. Returns the inner error object."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == "application/json", resp.mimetype
    body = resp.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    err = body["error"]
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"].strip(), err
    return err


def set_clock(app, when) -> None:
    """Set the testing clock (as PUT /api/v1/testing/clock does)."""
    from lms import clock

    with app.app_context():
        clock.set_now(when)


def table_counts(app) -> dict[str, int]:
    """Rows in every table, to prove a refused request wrote nothing."""
    from sqlalchemy import func, select

    from lms.db import db

    with app.app_context():
        counts = {t.name: db.session.scalar(select(func.count()).select_from(t))
                  for t in db.metadata.sorted_tables}
        db.session.remove()
    return counts


def access_log(app, event: str | None = None) -> list[dict]:
    """Access-log rows (oldest first) as dicts, optionally of one event."""
    from sqlalchemy import select

    from lms.audit.models import AccessLog
    from lms.db import db

    with app.app_context():
        stmt = select(AccessLog).order_by(AccessLog.id)
        if event is not None:
            stmt = stmt.where(AccessLog.event == event)
        rows = [{c.name: getattr(r, c.key) for c in AccessLog.__table__.columns}
                for r in db.session.scalars(stmt)]
        db.session.remove()
    return rows


# --- real browser (tests/test_browser.py) ---------------------------------------------

CHROMIUM = "/usr/bin/chromium"  # Debian's chromium (apt-get install chromium)


@pytest.fixture
def browser():
    """Headless Chromium driven by Playwright, closed after the test. A missing browser is
    a failure, not a skip."""
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: apt-get install -y chromium"
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


# --- real subprocesses (workers, schedulers, CLI) -------------------------------------

import signal  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FLASK = ROOT / ".venv" / "bin" / "flask"


def start_lms_process(args: list[str], test_env: dict, log) -> subprocess.Popen:
    """``flask --app wsgi lms <args>`` in its own process group (so every child it forks
    is ended with it), output to ``log``."""
    out = open(log, "wb")
    try:
        return subprocess.Popen([str(FLASK), "--app", "wsgi", "lms", *args], cwd=ROOT,
                                env={**os.environ, **test_env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        out.close()


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group (rq's warm shutdown), SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    try:  # children left behind in the group (rq's forked scheduler)
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
