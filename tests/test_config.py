"""Configuration: every setting comes from an ``LMS_*`` variable read when the app is
created (``config.load_config``), production refuses development or malformed keys,
``create_app`` connects to nothing, and the security headers are on every response.
"""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

import config
from lms import create_app

GOOD_SECRET = "s3cr3t-" + "x" * 40
GOOD_DATA_KEY = Fernet.generate_key().decode()
CSP_FRAME = "frame-ancestors 'none'"


@pytest.fixture
def prod_env(monkeypatch, test_env):
    """Real keys for production; each test then spoils one of them."""
    monkeypatch.setenv("LMS_SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("LMS_DATA_KEY", GOOD_DATA_KEY)
    return monkeypatch


# --- production keys -------------------------------------------------------------------

@pytest.mark.parametrize("secret, data_key, complaint", [
    (None, GOOD_DATA_KEY, "LMS_SECRET_KEY"),                                # unset: dev default
    ("", GOOD_DATA_KEY, "LMS_SECRET_KEY"),                                  # blank = unset
    (config.DEV_SECRET_KEY, GOOD_DATA_KEY, "LMS_SECRET_KEY"),               # the dev key itself
    ("short-but-not-dev-key-123456789", GOOD_DATA_KEY, "LMS_SECRET_KEY"),   # 31 characters
    (GOOD_SECRET, None, "LMS_DATA_KEY"),                                    # unset: dev default
    (GOOD_SECRET, config.DEV_DATA_KEY, "LMS_DATA_KEY"),
    (GOOD_SECRET, f"{GOOD_DATA_KEY}, {config.DEV_DATA_KEY}", "LMS_DATA_KEY"),  # dev key kept for decrypting
    (GOOD_SECRET, "not-a-fernet-key", "Fernet"),
    (GOOD_SECRET, f"{GOOD_DATA_KEY},{'A' * 20}", "Fernet"),                # second key malformed
], ids=["secret-unset", "secret-blank", "secret-dev", "secret-short", "data-key-unset", "data-key-dev",
        "data-key-dev-as-rotation-key", "data-key-not-fernet", "data-key-second-malformed"])
def test_production_refuses_development_short_or_invalid_keys(prod_env, secret, data_key, complaint):
    """Production will not start on the development secret, a secret under 32
    characters, the development data key (even as a rotation key) or a malformed Fernet
    key: a RuntimeError names the variable before anything is served."""
    for name, value in (("LMS_SECRET_KEY", secret), ("LMS_DATA_KEY", data_key)):
        if value is None:
            prod_env.delenv(name, raising=False)
        else:
            prod_env.setenv(name, value)
    with pytest.raises(RuntimeError, match="production|Fernet") as exc:
        create_app("production")
    assert complaint in str(exc.value)


def test_production_starts_with_real_keys(prod_env):
    """With a long random secret and a fresh Fernet key (plus an old one for rotation)
    production starts: secure cookies, HSTS, no testing clock."""
    old_key = Fernet.generate_key().decode()
    prod_env.setenv("LMS_DATA_KEY", f"{GOOD_DATA_KEY},{old_key}")
    app = create_app("production")
    assert app.config["SECRET_KEY"] == GOOD_SECRET
    assert app.config["DATA_KEY"] == f"{GOOD_DATA_KEY},{old_key}"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["TESTING_CLOCK"] is False
    assert not app.testing
    r = app.test_client().get("/api/v1/health")
    assert r.status_code == 200


def test_an_invalid_data_key_is_refused_in_every_environment(monkeypatch, test_env):
    """A malformed LMS_DATA_KEY is a clear start-up error outside production too (personal
    data could be neither written nor read)."""
    monkeypatch.setenv("LMS_DATA_KEY", "short")
    for env in ("development", "testing"):
        with pytest.raises(RuntimeError, match="LMS_DATA_KEY"):
            create_app(env)


# --- LMS_* variables -------------------------------------------------------------------

SETTINGS = [
    ("LMS_DATABASE_URL", "SQLALCHEMY_DATABASE_URI", "sqlite:////tmp/somewhere-else.sqlite3",
     "sqlite:////tmp/somewhere-else.sqlite3"),
    ("LMS_REDIS_URL", "REDIS_URL", "redis://10.9.8.7:6390/3", "redis://10.9.8.7:6390/3"),
    ("LMS_REDIS_PREFIX", "REDIS_PREFIX", "deploy-b", "deploy-b"),
    ("LMS_RQ_QUEUE", "RQ_QUEUE", "queue-b", "queue-b"),
    ("LMS_SESSION_IDLE_MINUTES", "SESSION_IDLE_MINUTES", "7", 7),
    ("LMS_TRUSTED_PROXIES", "TRUSTED_PROXIES", "2", 2),
    ("LMS_LOGIN_TICKET_SECONDS", "LOGIN_TICKET_SECONDS", "120", 120),
    ("LMS_LOGIN_MAX_FAILURES_PER_USER", "LOGIN_MAX_FAILURES_PER_USER", "3", 3),
    ("LMS_LOGIN_MAX_FAILURES_PER_IP", "LOGIN_MAX_FAILURES_PER_IP", "11", 11),
    ("LMS_LOGIN_FAILURE_WINDOW_SECONDS", "LOGIN_FAILURE_WINDOW_SECONDS", "60", 60),
    ("LMS_OTP_ISSUER", "OTP_ISSUER", "Other Institute", "Other Institute"),
    ("LMS_MAX_BODY_BYTES", "MAX_CONTENT_LENGTH", "2048", 2048),
    ("LMS_MEDIA_ROOT", "MEDIA_ROOT", "/tmp/lms-media-b", "/tmp/lms-media-b"),
    ("LMS_MAX_UPLOAD_BYTES", "MAX_UPLOAD_BYTES", "1000", 1000),
    ("LMS_SESSION_TOUCH_SECONDS", "SESSION_TOUCH_SECONDS", "5", 5),
    ("LMS_SMTP_HOST", "SMTP_HOST", "mail.example.org", "mail.example.org"),
    ("LMS_SMTP_PORT", "SMTP_PORT", "2525", 2525),
    ("LMS_SMTP_FROM", "SMTP_FROM", "noreply@example.org", "noreply@example.org"),
    ("LMS_SECRET_KEY", "SECRET_KEY", GOOD_SECRET, GOOD_SECRET),
    ("LMS_DATA_KEY", "DATA_KEY", GOOD_DATA_KEY, GOOD_DATA_KEY),
]


@pytest.mark.parametrize("var, key, raw, expected", SETTINGS, ids=[s[0] for s in SETTINGS])
def test_every_lms_variable_is_read_when_the_app_is_created(monkeypatch, test_env, var, key, raw, expected):
    """Set after ``config`` was imported, the variable still reaches app.config: settings
    are read when load_config runs, not when the module is imported."""
    assert create_app("testing").config[key] != expected
    monkeypatch.setenv(var, raw)
    assert create_app("testing").config[key] == expected


def test_variables_left_unset_or_blank_take_the_defaults(monkeypatch, test_env):
    """Unset or blank variables give the documented defaults (30-minute idle limit, no
    trusted proxy, local Redis, a SQLite file under instance/)."""
    for var, *_ in SETTINGS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LMS_SESSION_IDLE_MINUTES", "")
    monkeypatch.setenv("LMS_REDIS_URL", "  ")
    cfg = create_app("development").config
    assert cfg["SESSION_IDLE_MINUTES"] == 30
    assert cfg["TRUSTED_PROXIES"] == 0
    assert cfg["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert cfg["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{config.INSTANCE_DIR / 'lms.sqlite3'}"
    assert create_app("testing").config["SQLALCHEMY_DATABASE_URI"].endswith("lms-testing.sqlite3")


@pytest.mark.parametrize("var", ["LMS_SESSION_IDLE_MINUTES", "LMS_TRUSTED_PROXIES", "LMS_SMTP_PORT",
                                 "LMS_MAX_BODY_BYTES", "LMS_LOGIN_MAX_FAILURES_PER_USER"])
def test_a_non_integer_value_is_a_clear_error(monkeypatch, test_env, var):
    """A wrong value fails at start-up with a RuntimeError naming the variable and value."""
    monkeypatch.setenv(var, "thirty")
    with pytest.raises(RuntimeError, match=f"{var} must be an integer, got 'thirty'"):
        create_app("testing")


@pytest.mark.parametrize("name", ["staging", "prod", "Production"])
def test_an_unknown_environment_is_refused(monkeypatch, test_env, name):
    """LMS_ENV (or the name given to create_app) must be development, testing or
    production."""
    with pytest.raises(RuntimeError, match="Unknown LMS_ENV"):
        create_app(name)
    monkeypatch.setenv("LMS_ENV", name)
    with pytest.raises(RuntimeError, match="Unknown LMS_ENV"):
        create_app()


def test_lms_env_picks_the_environment(monkeypatch, test_env):
    """Without a name, create_app follows LMS_ENV (development when unset)."""
    monkeypatch.setenv("LMS_ENV", "testing")
    assert create_app().config["TESTING_CLOCK"] is True
    monkeypatch.delenv("LMS_ENV")
    app = create_app()
    assert app.config["ENV_NAME"] == "development" and app.config["TESTING_CLOCK"] is False


def test_session_idle_minutes_governs_session_expiry(monkeypatch, app, users, client):
    """LMS_SESSION_IDLE_MINUTES=5: a session idle for 6 minutes (testing clock) is ended
    by an app created with it, while 4 idle minutes are fine."""
    from datetime import timedelta

    from lms import clock
    from conftest import bearer

    monkeypatch.setenv("LMS_SESSION_IDLE_MINUTES", "5")
    short = create_app("testing")
    short_client = short.test_client()
    users.create("idler")
    users.create("busy")
    idle_token = users.login(client, "idler")
    busy_token = users.login(client, "busy")
    with app.app_context():
        start = clock.now()
        clock.set_now(start + timedelta(minutes=4))
    assert short_client.get("/api/v1/me", headers=bearer(busy_token)).status_code == 200
    with app.app_context():
        clock.set_now(start + timedelta(minutes=6))
    r = short_client.get("/api/v1/me", headers=bearer(idle_token))
    assert r.status_code == 401 and r.get_json()["error"]["code"] == "session_expired"
    # busy was seen at minute 4: two idle minutes only
    assert short_client.get("/api/v1/me", headers=bearer(busy_token)).status_code == 200


def _login_failure_ip(app_instance, app, username: str, **headers) -> str | None:
    from lms.audit.models import AccessLog
    from lms.db import db

    r = app_instance.test_client().post("/api/v1/auth/login", json={"username": username, "password": "wrong-1234567"},
                                        headers=headers, environ_base={"REMOTE_ADDR": "10.0.0.5"})
    assert r.status_code == 401
    with app.app_context():
        return db.session.scalar(select(AccessLog.ip).where(AccessLog.event == "login_failed",
                                                            AccessLog.username == username))


def test_trusted_proxies_decides_whether_x_forwarded_for_counts(monkeypatch, app):
    """LMS_TRUSTED_PROXIES=0 (default): the client IP is the TCP peer, X-Forwarded-For is
    ignored (a client could forge it). =1: the hop the one trusted proxy appended counts."""
    xff = {"X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
    assert _login_failure_ip(app, app, "nobody-a", **xff) == "10.0.0.5"
    monkeypatch.setenv("LMS_TRUSTED_PROXIES", "1")
    behind_proxy = create_app("testing")
    assert _login_failure_ip(behind_proxy, app, "nobody-b", **xff) == "203.0.113.9"


def test_database_and_redis_urls_are_the_ones_used(monkeypatch, app, test_env, tmp_path):
    """LMS_DATABASE_URL and LMS_REDIS_URL are where the app actually reads and writes:
    an app pointed at another (blank, migrated) database does not see this run's users,
    and the testing clock lives in the Redis database LMS_REDIS_URL names."""
    from flask_migrate import upgrade

    from lms import clock
    from lms.auth.models import User
    from lms.db import db
    from lms.extensions import redis_client, rkey

    with app.app_context():
        from lms.auth import service

        service.create_user(username="here-only", password="correct-horse-9", role="learner")
        db.session.commit()
    other_db = f"sqlite:///{tmp_path / 'other.sqlite3'}"
    other_redis = test_env["LMS_REDIS_URL"].rsplit("/", 1)[0] + "/7"
    monkeypatch.setenv("LMS_DATABASE_URL", other_db)
    monkeypatch.setenv("LMS_REDIS_URL", other_redis)
    other = create_app("testing")
    with other.app_context():
        upgrade()
        assert db.session.scalar(select(User).where(User.username == "here-only")) is None
        r = redis_client()
        assert r.connection_pool.connection_kwargs["db"] == 7
        try:
            clock.set_now(clock.now().replace(year=2031))
            assert r.get(rkey("testing:clock_offset")) is not None
        finally:
            clock.reset()
        db.engine.dispose()
    with app.app_context():
        assert db.session.scalar(select(User).where(User.username == "here-only")) is not None
        assert clock.now().year < 2031


def test_create_app_connects_to_nothing_and_never_migrates(monkeypatch, test_env, tmp_path):
    """create_app only builds the app: an unreachable PostgreSQL and an unreachable Redis
    do not stop it, and a SQLite file is not even created (no connection, no migration).
    The health check answers without touching either."""
    monkeypatch.setenv("LMS_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/nowhere")
    monkeypatch.setenv("LMS_REDIS_URL", "redis://127.0.0.1:1/0")
    for env in ("development", "testing"):
        app = create_app(env)
        assert app.config["SQLALCHEMY_DATABASE_URI"].endswith("127.0.0.1:1/nowhere")
        assert app.test_client().get("/api/v1/health").status_code == 200

    db_file = tmp_path / "never-created.sqlite3"
    monkeypatch.setenv("LMS_DATABASE_URL", f"sqlite:///{db_file}")
    app = create_app("testing")
    assert app.test_client().get("/api/v1/health").status_code == 200
    assert not db_file.exists()


# --- security headers ------------------------------------------------------------------

def test_hsts_only_in_production(prod_env):
    """Strict-Transport-Security is sent in production (behind TLS) and not in
    development, where the app is served over plain http on localhost."""
    prod = create_app("production").test_client().get("/api/v1/health")
    assert prod.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    for env in ("development", "testing"):
        r = create_app(env).test_client().get("/api/v1/health")
        assert r.status_code == 200
        assert "Strict-Transport-Security" not in r.headers


def _responses(app_instance):
    """One response of each kind: JSON 200, OpenAPI, HTML page, static file, 400, 401,
    404 (API and page), 405, HEAD, and an unexpected 500."""
    def boom():
        raise ZeroDivisionError("unexpected")

    app_instance.add_url_rule("/boom-for-test", "boom_for_test", boom)
    app_instance.testing = False  # a 500 is answered, not raised into the test
    c = app_instance.test_client()
    return {
        "health": c.get("/api/v1/health"),
        "openapi": c.get("/api/v1/openapi.json"),
        "login page": c.get("/login"),
        "static": c.get("/static/lms.css"),
        "bad json": c.post("/api/v1/auth/login", data="{", content_type="application/json"),
        "no token": c.get("/api/v1/me"),
        "api 404": c.get("/api/v1/no-such-thing"),
        "page 404": c.get("/no-such-page"),
        "405": c.delete("/api/v1/health"),
        "head": c.head("/api/v1/health"),
        "500": c.get("/boom-for-test"),
    }


@pytest.mark.parametrize("env", ["development", "testing", "production"])
def test_every_response_forbids_framing(prod_env, env):
    """Every response, whatever its status or type, carries a CSP with
    frame-ancestors 'none' (and X-Frame-Options DENY, nosniff): no page can be framed
    (clickjacking an exam or an attendance challenge)."""
    responses = _responses(create_app(env))
    expected = {"health": 200, "openapi": 200, "login page": 200, "static": 200, "bad json": 400,
                "no token": 401, "api 404": 404, "page 404": 404, "405": 405, "head": 200, "500": 500}
    assert {k: r.status_code for k, r in responses.items()} == expected
    for kind, r in responses.items():
        assert CSP_FRAME in r.headers.get("Content-Security-Policy", ""), kind
        assert r.headers.get("X-Frame-Options") == "DENY", kind
        assert r.headers.get("X-Content-Type-Options") == "nosniff", kind
        r.close()


def test_password_hashing_cost_by_environment(prod_env):
    """Production hashes passwords with argon2id at argon2-cffi's default cost (t=3,
    64 MiB, 4 lanes); the testing environment defaults to a cheap cost; LMS_ARGON2_*
    override both, and a stored hash verifies whatever the current cost."""
    from lms.auth import service

    prod = create_app("production")
    with prod.app_context():
        strong = service.hash_password("correct-horse-battery-9")
    assert strong.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    cheap_app = create_app("testing")
    with cheap_app.app_context():
        cheap = service.hash_password("correct-horse-battery-9")
        assert cheap.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
        # a hash made at another cost still verifies (it carries its parameters)
        user = type("U", (), {"password_hash": strong})()
        assert service.verify_password(user, "correct-horse-battery-9")
        assert not service.verify_password(user, "wrong-horse-battery-9")
    prod_env.setenv("LMS_ARGON2_TIME_COST", "2")
    prod_env.setenv("LMS_ARGON2_MEMORY_KIB", "19456")
    prod_env.setenv("LMS_ARGON2_PARALLELISM", "1")
    with create_app("production").app_context():
        assert service.hash_password("correct-horse-battery-9").startswith("$argon2id$v=19$m=19456,t=2,p=1$")
