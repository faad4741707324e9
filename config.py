"""Application configuration.

Every setting comes from an ``LMS_*`` environment variable with a safe default.
``create_app(name)`` picks one of the classes below by ``LMS_ENV`` (or the name
given). Production refuses to start without a real secret key and data key.
"""
from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"

# Development-only keys. Production refuses them (see ProductionConfig.validate).
DEV_SECRET_KEY = "dev-secret-key-not-for-production"
# A Fernet key (32 url-safe base64 bytes) used only outside production.
DEV_DATA_KEY = "ZGV2LWRhdGEta2V5LW5vdC1mb3ItcHJvZHVjdGlvbiE="


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


class Config:
    ENV_NAME = "development"
    SECRET_KEY = _env("LMS_SECRET_KEY", DEV_SECRET_KEY)
    # Comma-separated Fernet keys; the first encrypts, all decrypt (key rotation).
    DATA_KEY = _env("LMS_DATA_KEY", DEV_DATA_KEY)
    SQLALCHEMY_DATABASE_URI = _env(
        "LMS_DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'lms.sqlite3'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    REDIS_URL = _env("LMS_REDIS_URL", "redis://127.0.0.1:6379/0")
    # Every Redis key starts with this, so several deployments (or test runs) share a server.
    REDIS_PREFIX = _env("LMS_REDIS_PREFIX", "lms")
    RQ_QUEUE = _env("LMS_RQ_QUEUE", "lms")
    TRUSTED_PROXIES = _env_int("LMS_TRUSTED_PROXIES", 0)
    SESSION_IDLE_MINUTES = _env_int("LMS_SESSION_IDLE_MINUTES", 30)
    LOGIN_TICKET_SECONDS = _env_int("LMS_LOGIN_TICKET_SECONDS", 300)
    # Failed logins: at most N failures per window, per username and per IP.
    LOGIN_MAX_FAILURES_PER_USER = _env_int("LMS_LOGIN_MAX_FAILURES_PER_USER", 5)
    LOGIN_MAX_FAILURES_PER_IP = _env_int("LMS_LOGIN_MAX_FAILURES_PER_IP", 30)
    LOGIN_FAILURE_WINDOW_SECONDS = _env_int("LMS_LOGIN_FAILURE_WINDOW_SECONDS", 900)
    OTP_ISSUER = _env("LMS_OTP_ISSUER", "Credit-Bank LMS")
    MAX_CONTENT_LENGTH = _env_int("LMS_MAX_BODY_BYTES", 1024 * 1024)
    MEDIA_ROOT = _env("LMS_MEDIA_ROOT", str(INSTANCE_DIR / "media"))
    MAX_UPLOAD_BYTES = _env_int("LMS_MAX_UPLOAD_BYTES", 2 * 1024 * 1024 * 1024)
    # Seconds a session's last-seen time may lag before it is written again.
    SESSION_TOUCH_SECONDS = _env_int("LMS_SESSION_TOUCH_SECONDS", 30)

    BABEL_DEFAULT_LOCALE = "ko"
    BABEL_DEFAULT_TIMEZONE = "Asia/Seoul"
    LANGUAGES = ("ko", "en")

    WTF_CSRF_CHECK_DEFAULT = False  # checked in lms.security for HTML/cookie requests
    WTF_CSRF_TIME_LIMIT = None  # bound to the session, which has its own idle limit
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_NAME = "lms_session"
    JSON_SORT_KEYS = False

    # APIFlask / OpenAPI
    VALIDATION_ERROR_STATUS_CODE = 400
    AUTO_404_RESPONSE = False
    INFO = {"title": "Credit-Bank LMS API", "version": "v1"}
    SECURITY_SCHEMES = {"BearerAuth": {"type": "http", "scheme": "bearer"}}

    SMTP_HOST = _env("LMS_SMTP_HOST")
    SMTP_PORT = _env_int("LMS_SMTP_PORT", 25)
    SMTP_FROM = _env("LMS_SMTP_FROM", "lms@localhost")

    TESTING_CLOCK = False
    HSTS = False

    @classmethod
    def validate(cls) -> None:
        """Raise RuntimeError when the configuration is unsafe for this environment."""


class DevelopmentConfig(Config):
    ENV_NAME = "development"


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    TESTING_CLOCK = True
    SQLALCHEMY_DATABASE_URI = _env(
        "LMS_DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'lms-testing.sqlite3'}"
    )


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    HSTS = True

    @classmethod
    def validate(cls) -> None:
        problems = []
        if not cls.SECRET_KEY or cls.SECRET_KEY == DEV_SECRET_KEY or len(cls.SECRET_KEY) < 32:
            problems.append("LMS_SECRET_KEY must be set to a random value of at least 32 characters")
        if not cls.DATA_KEY or DEV_DATA_KEY in cls.DATA_KEY.split(","):
            problems.append("LMS_DATA_KEY must be set to a Fernet key (not the development key)")
        if problems:
            raise RuntimeError("Refusing to start in production: " + "; ".join(problems))


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None) -> type[Config]:
    """Return a fresh config class for ``name`` (default: ``LMS_ENV``), read from the
    environment at call time so tests and CLI processes see their own variables."""
    name = name or os.environ.get("LMS_ENV", "development")
    if name not in CONFIGS:
        raise RuntimeError(f"Unknown LMS_ENV {name!r}; use one of {sorted(CONFIGS)}")
    base = CONFIGS[name]
    # Re-read the environment: class attributes above were bound at import time.
    env = {
        "SECRET_KEY": _env("LMS_SECRET_KEY", DEV_SECRET_KEY),
        "DATA_KEY": _env("LMS_DATA_KEY", DEV_DATA_KEY),
        "REDIS_URL": _env("LMS_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "REDIS_PREFIX": _env("LMS_REDIS_PREFIX", "lms"),
        "RQ_QUEUE": _env("LMS_RQ_QUEUE", "lms"),
        "TRUSTED_PROXIES": _env_int("LMS_TRUSTED_PROXIES", 0),
        "SESSION_IDLE_MINUTES": _env_int("LMS_SESSION_IDLE_MINUTES", 30),
        "MEDIA_ROOT": _env("LMS_MEDIA_ROOT", str(INSTANCE_DIR / "media")),
    }
    default_db = (
        f"sqlite:///{INSTANCE_DIR / 'lms-testing.sqlite3'}"
        if name == "testing"
        else f"sqlite:///{INSTANCE_DIR / 'lms.sqlite3'}"
    )
    env["SQLALCHEMY_DATABASE_URI"] = _env("LMS_DATABASE_URL", default_db)
    return type(base.__name__, (base,), env)
