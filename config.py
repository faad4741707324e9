"""Application configuration.

Every setting comes from an ``LMS_*`` environment variable with a safe default, read when
:func:`load_config` runs (never at import), so tests, CLI processes and workers each see
their own environment. ``create_app(name)`` picks one of the classes below by ``LMS_ENV``
(or the name given). Production refuses to start without a real secret key and data key.
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
    """The variable's value; unset or blank means the default."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a number, got {raw!r}") from exc
    if value != value or value in (float("inf"), float("-inf")):
        raise RuntimeError(f"{name} must be a finite number, got {raw!r}")
    return value


def _data_key_problem(raw: str | None) -> str | None:
    """Why ``raw`` is not a usable LMS_DATA_KEY (comma-separated Fernet keys), or None."""
    from cryptography.fernet import Fernet

    keys = [k.strip() for k in (raw or "").split(",") if k.strip()]
    if not keys:
        return "LMS_DATA_KEY is empty"
    for key in keys:
        try:
            Fernet(key.encode())
        except ValueError:
            return "LMS_DATA_KEY must be Fernet keys (32 url-safe base64-encoded bytes each), comma-separated"
    return None


def settings_from_env(env_name: str) -> dict:
    """Every ``LMS_*`` setting, read from the environment now."""
    default_db = INSTANCE_DIR / ("lms-testing.sqlite3" if env_name == "testing" else "lms.sqlite3")
    testing = env_name == "testing"
    return {
        # Password hashing (argon2id). The defaults are argon2-cffi's (RFC 9106 low-memory
        # profile); the testing environment defaults to cheap parameters so suites that
        # create many users stay fast. Stored hashes carry their own parameters.
        "ARGON2_TIME_COST": _env_int("LMS_ARGON2_TIME_COST", 1 if testing else 3),
        "ARGON2_MEMORY_KIB": _env_int("LMS_ARGON2_MEMORY_KIB", 1024 if testing else 65536),
        "ARGON2_PARALLELISM": _env_int("LMS_ARGON2_PARALLELISM", 1 if testing else 4),
        "SECRET_KEY": _env("LMS_SECRET_KEY", DEV_SECRET_KEY),
        # Comma-separated Fernet keys; the first encrypts, all decrypt (key rotation).
        "DATA_KEY": _env("LMS_DATA_KEY", DEV_DATA_KEY),
        "SQLALCHEMY_DATABASE_URI": _env("LMS_DATABASE_URL", f"sqlite:///{default_db}"),
        "REDIS_URL": _env("LMS_REDIS_URL", "redis://127.0.0.1:6379/0"),
        # Every Redis key starts with this, so several deployments (or test runs) share a server.
        "REDIS_PREFIX": _env("LMS_REDIS_PREFIX", "lms"),
        "RQ_QUEUE": _env("LMS_RQ_QUEUE", "lms"),
        "TRUSTED_PROXIES": _env_int("LMS_TRUSTED_PROXIES", 0),
        "SESSION_IDLE_MINUTES": _env_int("LMS_SESSION_IDLE_MINUTES", 30),
        "LOGIN_TICKET_SECONDS": _env_int("LMS_LOGIN_TICKET_SECONDS", 300),
        # Failed logins: at most N failures per window, per username and per IP.
        "LOGIN_MAX_FAILURES_PER_USER": _env_int("LMS_LOGIN_MAX_FAILURES_PER_USER", 5),
        "LOGIN_MAX_FAILURES_PER_IP": _env_int("LMS_LOGIN_MAX_FAILURES_PER_IP", 30),
        "LOGIN_FAILURE_WINDOW_SECONDS": _env_int("LMS_LOGIN_FAILURE_WINDOW_SECONDS", 900),
        "OTP_ISSUER": _env("LMS_OTP_ISSUER", "Credit-Bank LMS"),
        "MAX_CONTENT_LENGTH": _env_int("LMS_MAX_BODY_BYTES", 1024 * 1024),
        "MEDIA_ROOT": _env("LMS_MEDIA_ROOT", str(INSTANCE_DIR / "media")),
        "MAX_UPLOAD_BYTES": _env_int("LMS_MAX_UPLOAD_BYTES", 2 * 1024 * 1024 * 1024),
        # Seconds a session's last-seen time may lag before it is written again.
        "SESSION_TOUCH_SECONDS": _env_int("LMS_SESSION_TOUCH_SECONDS", 30),
        "SMTP_HOST": _env("LMS_SMTP_HOST"),
        "SMTP_PORT": _env_int("LMS_SMTP_PORT", 25),
        "SMTP_FROM": _env("LMS_SMTP_FROM", "lms@localhost"),
        # ATT-4: the fastest playback the player offers and the server credits (× real time).
        "MAX_PLAYBACK_RATE": _env_float("LMS_MAX_PLAYBACK_RATE", 1.0),
        # ATT-4: presence challenges every MIN…MAX minutes of playing (random); MIN 0 = off.
        "CHALLENGE_MIN_MINUTES": _env_float("LMS_CHALLENGE_MIN_MINUTES", 8.0),
        "CHALLENGE_MAX_MINUTES": _env_float("LMS_CHALLENGE_MAX_MINUTES", 15.0),
        # How often the player reports what was played (seconds; at most 10, API.md).
        "PLAYER_HEARTBEAT_SECONDS": _env_float("LMS_PLAYER_HEARTBEAT_SECONDS", 10.0),
        # ATT-5: the largest evidence file an excuse application may carry.
        "EXCUSE_MAX_FILE_BYTES": _env_int("LMS_EXCUSE_MAX_FILE_BYTES", 10 * 1024 * 1024),
        # EXM-11: the largest evidence file of a make-up exam application.
        "MAKEUP_MAX_FILE_BYTES": _env_int("LMS_MAKEUP_MAX_FILE_BYTES", 10 * 1024 * 1024),
        # Evidence files of learner-register correction applications (ENR-5, REC-2).
        "REGISTER_MAX_FILE_BYTES": _env_int("LMS_REGISTER_MAX_FILE_BYTES", 10 * 1024 * 1024),
        # EXM-5: item analysis flags an item for replacement outside these bounds.
        "EXAM_ITEM_MIN_RATE": _env_float("LMS_EXAM_ITEM_MIN_RATE", 0.2),
        "EXAM_ITEM_MAX_RATE": _env_float("LMS_EXAM_ITEM_MAX_RATE", 0.9),
        "EXAM_ITEM_MIN_DISCRIMINATION": _env_float("LMS_EXAM_ITEM_MIN_DISCRIMINATION", 0.1),
        # The exam page re-reads its attempt (timer sync, session kept alive) this often.
        "EXAM_SYNC_SECONDS": _env_float("LMS_EXAM_SYNC_SECONDS", 60.0),
        # Proxy-attendance detection (issue 6): logins of one account from different IPv4 /16
        # or IPv6 /48 networks within this many minutes are reported; views whose heartbeats
        # claimed more than this many seconds beyond what was credited are reported.
        "PROXY_LOGIN_JUMP_MINUTES": _env_float("LMS_PROXY_LOGIN_JUMP_MINUTES", 30.0),
        "PROXY_IPV4_PREFIX": _env_int("LMS_PROXY_IPV4_PREFIX", 16),
        "PROXY_IPV6_PREFIX": _env_int("LMS_PROXY_IPV6_PREFIX", 48),
        "PROXY_EXCESS_SECONDS": _env_float("LMS_PROXY_EXCESS_SECONDS", 60.0),
        # Evidence (lms/audit): years logs are kept (REC-1: 5, only upward; lower values
        # refuse to start) and months of PostgreSQL log partitions created ahead.
        "RETENTION_YEARS": _env_int("LMS_RETENTION_YEARS", 5),
        "PARTITIONS_AHEAD_MONTHS": _env_int("LMS_PARTITIONS_AHEAD_MONTHS", 3),
        # CSV exports on PostgreSQL through COPY … TO STDOUT (lms.audit.export_copy); 0: Python writer.
        "EXPORT_COPY": _env_int("LMS_EXPORT_COPY", 1) != 0,
    }


def _retention_problem(years) -> str | None:
    """REC-1: logs are kept at least 5 years; the setting may only raise it."""
    if not isinstance(years, int) or years < 5:
        return f"LMS_RETENTION_YEARS must be 5 or more (REC-1), not {years!r}"
    return None


class Config:
    """What every environment shares. The ``LMS_*`` settings (:func:`settings_from_env`)
    are added by :func:`load_config`."""

    ENV_NAME = "development"
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

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

    TESTING_CLOCK = False
    HSTS = False

    @classmethod
    def validate(cls) -> None:
        """Raise RuntimeError when the configuration is unsafe for this environment."""
        problem = _data_key_problem(cls.DATA_KEY) or _retention_problem(cls.RETENTION_YEARS)
        if problem:
            raise RuntimeError(problem)


class DevelopmentConfig(Config):
    ENV_NAME = "development"


class TestingConfig(Config):
    ENV_NAME = "testing"
    TESTING = True
    TESTING_CLOCK = True


class ProductionConfig(Config):
    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = True
    HSTS = True

    @classmethod
    def validate(cls) -> None:
        problems = []
        if not cls.SECRET_KEY or cls.SECRET_KEY == DEV_SECRET_KEY or len(cls.SECRET_KEY) < 32:
            problems.append("LMS_SECRET_KEY must be set to a random value of at least 32 characters")
        keys = [k.strip() for k in (cls.DATA_KEY or "").split(",")]
        if not cls.DATA_KEY or DEV_DATA_KEY in keys:
            problems.append("LMS_DATA_KEY must be set to a Fernet key (not the development key)")
        elif _data_key_problem(cls.DATA_KEY):
            problems.append(_data_key_problem(cls.DATA_KEY))
        if _retention_problem(cls.RETENTION_YEARS):
            problems.append(_retention_problem(cls.RETENTION_YEARS))
        if problems:
            raise RuntimeError("Refusing to start in production: " + "; ".join(problems))


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(name: str | None = None) -> type[Config]:
    """Return a fresh config class for ``name`` (default: ``LMS_ENV``) with every
    ``LMS_*`` setting read from the environment at call time."""
    name = name or _env("LMS_ENV", "development")
    if name not in CONFIGS:
        raise RuntimeError(f"Unknown LMS_ENV {name!r}; use one of {sorted(CONFIGS)}")
    base = CONFIGS[name]
    return type(base.__name__, (base,), settings_from_env(name))
