"""Login, sessions and users: the transactions. Rules live in ``lms.auth.rules``."""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import load_only, make_transient_to_detached
from sqlalchemy.orm.util import identity_key

from lms import clock
from lms.audit.service import REQUEST_FIELDS, log_access, request_course_ref, request_fields
from lms.auth import rules
from lms.auth.models import ROLES, Institution, LoginTicket, User, UserSession
from lms.db import UTCDateTime, commit_keeping_loaded, db
from lms.errors import ApiError
from lms.extensions import redis_client, rkey
from lms.net import client_ip, device_id, user_agent

# (time_cost, memory_kib, parallelism) → (hasher, a hash to verify against when the
# username is unknown, so timing does not tell). Built on first use, never at import.
_hashers: dict[tuple[int, int, int], tuple[PasswordHasher, str]] = {}


def _hasher() -> tuple[PasswordHasher, str]:
    cfg = current_app.config
    params = (cfg["ARGON2_TIME_COST"], cfg["ARGON2_MEMORY_KIB"], cfg["ARGON2_PARALLELISM"])
    found = _hashers.get(params)
    if found is None:
        hasher = PasswordHasher(time_cost=params[0], memory_cost=params[1], parallelism=params[2])
        found = _hashers[params] = (hasher, hasher.hash("not-a-real-password-0"))
    return found


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher()[0].hash(password)


def verify_password(user: User | None, password: str) -> bool:
    hasher, dummy = _hasher()
    try:
        return hasher.verify(user.password_hash if user else dummy, password) and user is not None
    except (VerificationError, InvalidHashError):
        return False


# --- rate limiting (Redis: losing it only forgets recent failures) -----------------

def _fail_keys(username: str, ip: str | None) -> tuple[str, str]:
    return rkey(f"loginfail:user:{username.lower()}"), rkey(f"loginfail:ip:{ip or '-'}")


def rate_limit_retry_after(username: str, ip: str | None) -> int | None:
    """Seconds to wait when this username or IP has used up its failures, else None."""
    cfg = current_app.config
    r = redis_client()
    ukey, ikey = _fail_keys(username, ip)
    ucount, icount = r.mget(ukey, ikey)
    window = cfg["LOGIN_FAILURE_WINDOW_SECONDS"]
    if ucount is not None and int(ucount) >= cfg["LOGIN_MAX_FAILURES_PER_USER"]:
        return rules.retry_after_seconds(r.ttl(ukey), window)
    if icount is not None and int(icount) >= cfg["LOGIN_MAX_FAILURES_PER_IP"]:
        return rules.retry_after_seconds(r.ttl(ikey), window)
    return None


def record_failure(username: str, ip: str | None) -> None:
    window = current_app.config["LOGIN_FAILURE_WINDOW_SECONDS"]
    pipe = redis_client().pipeline()
    for key in _fail_keys(username, ip):
        pipe.incr(key)
        pipe.expire(key, window, nx=True)
    pipe.execute()


def clear_failures(username: str) -> None:
    redis_client().delete(_fail_keys(username, None)[0])


def throttled_usernames() -> dict[str, int]:
    """username → seconds left, for accounts currently locked out by failures."""
    r = redis_client()
    limit = current_app.config["LOGIN_MAX_FAILURES_PER_USER"]
    prefix = rkey("loginfail:user:")
    out = {}
    for key in r.scan_iter(match=prefix + "*", count=500):
        count = r.get(key)
        if count is not None and int(count) >= limit:
            out[key.decode()[len(prefix):]] = max(1, r.ttl(key))
    return out


def _too_many(retry: int) -> ApiError:
    return ApiError(429, "too_many_attempts", "too many failed attempts; try again later",
                    headers={"Retry-After": str(retry)}, extra={"retry_after": retry})


# --- the login flow ----------------------------------------------------------------

def begin_login(username: str, password: str) -> tuple[User, str]:
    """Check the password. Returns the user and a fresh login ticket for the OTP step."""
    ip = client_ip()
    retry = rate_limit_retry_after(username, ip)
    if retry is not None:
        log_access("login_rate_limited", username=username[:64])
        raise _too_many(retry)
    # A NUL cannot be in a username (and PostgreSQL refuses it in a query): no such user.
    user = None if "\x00" in username else db.session.scalar(select(User).where(User.username == username))
    if not verify_password(user, password):
        record_failure(username, ip)
        log_access("login_failed", user=user, username=username[:64], detail="bad password")
        raise ApiError(401, "invalid_credentials", "wrong username or password")
    now = clock.now()
    if user.locked:
        log_access("login_locked", user=user)
        raise ApiError(403, "account_locked", "this account is locked; ask an administrator")
    if user.expires_at is not None and user.expires_at <= now:
        log_access("login_locked", user=user, detail="account expired")
        raise ApiError(403, "account_expired", "this account has expired")
    token = secrets.token_urlsafe(32)
    db.session.add(LoginTicket(
        token_hash=hash_token(token), user_id=user.id, created_at=now,
        expires_at=now + timedelta(seconds=current_app.config["LOGIN_TICKET_SECONDS"]), ip=ip,
    ))
    log_access("login_password_ok", user=user, commit=False)
    db.session.commit()
    return user, token


def ticket_user(ticket: str) -> tuple[LoginTicket, User]:
    """The unused, unexpired ticket and its user, or 401 ``invalid_ticket``."""
    row = db.session.scalar(select(LoginTicket).where(LoginTicket.token_hash == hash_token(ticket or "")))
    now = clock.now()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise ApiError(401, "invalid_ticket", "the login ticket is unknown, used or expired; log in again")
    return row, db.session.get(User, row.user_id)


def complete_login(ticket: str, code: str, *, kind: str) -> tuple[User, str]:
    """Check the TOTP code for a ticket; on success end every other session of the user
    (EXM-9) and open a new one. Returns the user and the new session token."""
    row, user = ticket_user(ticket)
    ip = client_ip()
    retry = rate_limit_retry_after(user.username, ip)
    if retry is not None:
        log_access("login_rate_limited", user=user)
        raise _too_many(retry)
    if user.locked:
        raise ApiError(403, "account_locked", "this account is locked; ask an administrator")
    now = clock.now()
    if not consume_otp(user, code, now):
        record_failure(user.username, ip)
        log_access("otp_failed", user=user)
        raise ApiError(401, "invalid_otp", "the one-time code is wrong or already used")
    # Single use of the ticket, race-free: only one request can flip used_at.
    used = db.session.execute(
        update(LoginTicket).where(LoginTicket.id == row.id, LoginTicket.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if used != 1:
        db.session.rollback()
        raise ApiError(401, "invalid_ticket", "the login ticket is unknown, used or expired; log in again")
    if not user.otp_confirmed:
        user.otp_confirmed = True
        log_access("otp_enrolled", user=user, commit=False)
    token = open_session(user, kind=kind, now=now)
    clear_failures(user.username)
    return user, token


def consume_otp(user: User, code: str, now, otp_columns: tuple[str, int | None] | None = None) -> bool:
    """Accept ``code`` once: the matched step is recorded with a conditional update, so
    a replayed code (or two requests racing with one code) fails. ``otp_columns``: the
    user's (otp_secret, otp_last_step) when the caller has already read them (no load)."""
    from sqlalchemy.orm.attributes import set_committed_value

    secret, last_step = otp_columns if otp_columns is not None else (user.otp_secret, user.otp_last_step)
    step = rules.match_otp_step(secret, code, now, last_step)
    if step is None:
        return False
    # The conditional update decides (the value read above may be stale). Plain SQL on the
    # session's connection: no statement to build and no session synchronisation (which
    # could load the user's columns) — it runs at every exam start.
    from sqlalchemy import text

    changed = db.session.connection().execute(text(
        f"UPDATE {User.__tablename__} SET otp_last_step = :step"
        " WHERE id = :id AND (otp_last_step IS NULL OR otp_last_step < :step)"), {"step": step, "id": user.id}
    ).rowcount
    if changed != 1:
        return False
    set_committed_value(user, "otp_last_step", step)  # as stored, without a second UPDATE at flush
    return True


def open_session(user: User, *, kind: str, now) -> str:
    """End every open session of ``user`` (reason ``replaced``) and open a new one."""
    replaced = db.session.scalars(
        select(UserSession.id).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
    ).all()
    if replaced:
        db.session.execute(
            update(UserSession).where(UserSession.id.in_(replaced), UserSession.ended_at.is_(None))
            .values(ended_at=now, end_reason="replaced")
        )
        for sid in replaced:
            log_access("session_replaced", user=user, session_id=sid, commit=False)
    token = secrets.token_urlsafe(32)
    sess = UserSession(
        token_hash=hash_token(token), user_id=user.id, kind=kind, created_at=now, last_seen_at=now,
        ip=client_ip(), device=device_id(), user_agent=user_agent(),
    )
    db.session.add(sess)
    user.last_login_at = now
    db.session.flush()
    log_access("login", user=user, session_id=sess.id, commit=False)
    db.session.commit()
    return token


@dataclass(slots=True)
class SessionInfo:
    """The request's login session, as read with it (REC-1 logs its id; EXM-8 compares
    its start with an exam entry). Not an ORM object: nothing to load or flush."""
    id: int
    user_id: int
    created_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None
    end_reason: str | None


class Principal:
    """The logged-in user's columns read with the session — enough for role checks and
    the usual views without building an ORM object. ``orm()`` gives the ``User`` (built
    from these values, no query; other columns load on first use)."""

    __slots__ = ("id", "institution_id", "username", "role", "disability", "locked",
                 "expires_at", "_name", "_name_token")

    def __init__(self, *, id, institution_id, username, role, disability, locked, expires_at,
                 name=None, name_token=None):
        self.id, self.institution_id, self.username, self.role = id, institution_id, username, role
        self.disability, self.locked, self.expires_at = disability, locked, expires_at
        self._name, self._name_token = name, name_token

    @property
    def name(self) -> str | None:
        """REC-4: decrypted on first use only."""
        if self._name_token is not None:
            from lms.crypto import decrypt

            self._name, self._name_token = decrypt(bytes(self._name_token)), None
        return self._name

    def orm(self) -> User:
        return _persistent(User, self.id, {k: getattr(self, k) for k in _USER_FIELDS})


class SessionCheck:
    """The outcome of resolving a request's session: its ``session``, the ``principal``
    (plain values) and ``user`` (the ORM object, built on first use), and a ``problem``:
    None | "session_replaced" | "session_expired" | "unauthorized"."""

    __slots__ = ("session", "principal", "problem", "_user")

    def __init__(self, session: SessionInfo | None, user: User | None, problem: str | None,
                 principal: Principal | None = None):
        self.session, self._user, self.problem = session, user, problem
        self.principal = principal

    @property
    def user(self) -> User | None:
        if self._user is None and self.principal is not None:
            self._user = self.principal.orm()
        return self._user


# Built once: the generic (SQLite) path of every authenticated request runs it (the
# statement's cache key is memoised). Only the columns the checks and the usual views need
# are read (and only ``name`` of the encrypted ones decrypted); any other attribute loads on
# first use, as deferred columns do.
_SESSION_AND_USER = (
    select(UserSession, User).join(User, User.id == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("token_hash"))
    .options(
        load_only(UserSession.user_id, UserSession.created_at, UserSession.last_seen_at,
                  UserSession.ended_at, UserSession.end_reason),
        load_only(User.institution_id, User.username, User.role, User.name, User.disability,
                  User.locked, User.expires_at),
    )
)

# PostgreSQL: the whole per-request work in ONE statement, run in its own transaction —
# read the session and its user; when the session is live (not ended, account usable, not
# idle: the conditions of rules.account_blocked / rules.session_idle_expired, given as
# parameters computed by those rules' cutoffs) append the request's access-log row (REC-1)
# and touch last-seen (throttled by rules.touch_due). Committed when it returns, so the row
# is durable before the view runs; check_session re-applies the rules to the returned row
# and fails the request if the statement and the rules disagree. The access_log columns are
# those lms.audit.service.log_access writes for a "request" row.
_PG_SESSION_AND_LOG = """
WITH s AS (
    SELECT s.id, s.created_at, s.last_seen_at, s.ended_at, s.end_reason,
           u.id AS user_id, u.institution_id, u.username, u.role, u.name, u.disability,
           u.locked, u.expires_at
    FROM user_session s JOIN user_account u ON u.id = s.user_id
    WHERE s.token_hash = %(token_hash)s
), live AS (
    SELECT id, user_id, username, role, last_seen_at FROM s
    WHERE ended_at IS NULL AND NOT locked
      AND (expires_at IS NULL OR expires_at > %(now)s)
      AND last_seen_at > %(idle_cutoff)s
), logged AS (
    INSERT INTO access_log (at, user_id, username, role, session_id, event,
                            ip, device, user_agent, method, path, course_id)
    SELECT %(now)s, user_id, username, role, id, 'request',
           %(ip)s, %(device)s, %(user_agent)s, %(method)s, %(path)s,
           COALESCE(%(course_id)s::integer,
                    (SELECT course_id FROM lesson WHERE id = %(lesson_id)s::integer))
    FROM live WHERE %(log)s
    RETURNING id
), touched AS (
    UPDATE user_session SET last_seen_at = %(now)s
    WHERE id IN (SELECT id FROM live WHERE last_seen_at <= %(touch_cutoff)s)
    RETURNING id
)
SELECT s.*, (SELECT count(*) FROM logged) AS logged FROM s
"""

_SESSION_FIELDS = ("id", "user_id", "created_at", "last_seen_at", "ended_at", "end_reason")
_USER_FIELDS = ("institution_id", "username", "role", "name", "disability", "locked", "expires_at")


# The driver-level statement converts times as the models' UTCDateTime columns do.
_UTC = UTCDateTime()


def _naive_utc(at):
    return _UTC.process_bind_param(at, None)


def _aware(at):
    return _UTC.process_result_value(at, None)


def _persistent(model, key: int, values: dict):
    """The ``model`` row ``key`` as a persistent object of this session, built from column
    values already read (no query); columns not given load on first use. An object already
    in the session's identity map is used as it is."""
    found = db.session.identity_map.get(identity_key(model, key))
    if found is not None:
        return found
    obj = model(id=key, **values)
    make_transient_to_detached(obj)  # as if loaded: no pending change, others expired
    db.session.add(obj)
    return obj


def _run_committed(sql: str, params: dict) -> dict | None:
    """Run one statement on the session's PostgreSQL connection as its own transaction
    (autocommit for this statement, as SQLAlchemy's own pre-ping does), so it is durable
    when this returns; the session's next statement begins a new transaction. If the
    connection is already inside a transaction, the statement joins it and it is committed."""
    from psycopg.pq import TransactionStatus
    from psycopg.rows import dict_row

    raw = db.session.connection().connection.driver_connection
    if raw.info.transaction_status != TransactionStatus.IDLE:
        with raw.cursor(row_factory=dict_row) as cur:
            row = cur.execute(sql, params).fetchone()
        commit_keeping_loaded()
        return row
    raw.autocommit = True
    try:
        with raw.cursor(row_factory=dict_row) as cur:
            return cur.execute(sql, params).fetchone()
    finally:
        if not raw.closed:
            raw.autocommit = False


def _resolve_postgresql(token_hash: str, now, idle: timedelta, touch: timedelta,
                        log_request: bool):
    course_id, lesson_id = request_course_ref() if log_request else (None, None)
    fields = request_fields() if log_request else dict.fromkeys(REQUEST_FIELDS)
    row = _run_committed(_PG_SESSION_AND_LOG, {
        "token_hash": token_hash, "now": _naive_utc(now),
        "idle_cutoff": _naive_utc(rules.idle_cutoff(now, idle)),
        "touch_cutoff": _naive_utc(rules.touch_cutoff(now, touch)), "log": log_request,
        "course_id": course_id, "lesson_id": lesson_id, **fields,
    })
    if row is None:
        return None
    sess = SessionInfo(row["id"], row["user_id"], _aware(row["created_at"]),
                       _aware(row["last_seen_at"]), _aware(row["ended_at"]), row["end_reason"])
    principal = Principal(id=row["user_id"], institution_id=row["institution_id"],
                          username=row["username"], role=row["role"], disability=row["disability"],
                          locked=row["locked"], expires_at=_aware(row["expires_at"]),
                          name_token=row["name"])
    return sess, principal, None, bool(row["logged"])


def _resolve_generic(token_hash: str):
    found = db.session.execute(_SESSION_AND_USER, {"token_hash": token_hash}).first()
    if found is None:
        return None
    sess, user = found
    principal = Principal(id=user.id, **{k: getattr(user, k) for k in _USER_FIELDS})
    return SessionInfo(*(getattr(sess, k) for k in _SESSION_FIELDS)), principal, user, None


def check_session(token: str | None, *, log_request: bool = False) -> SessionCheck:
    """Resolve a session token to its user, expiring it when idle or the account is
    blocked. With ``log_request``, a live session's request is appended to the access log
    (REC-1) and committed before this returns; if that cannot be done, this raises (the
    request fails rather than act unlogged)."""
    if not token:
        return SessionCheck(None, None, "unauthorized")
    cfg = current_app.config
    now = clock.now()
    idle = timedelta(minutes=cfg["SESSION_IDLE_MINUTES"])
    touch = timedelta(seconds=cfg["SESSION_TOUCH_SECONDS"])
    token_hash = hash_token(token)
    if db.session.get_bind().dialect.name == "postgresql":
        found = _resolve_postgresql(token_hash, now, idle, touch, log_request)
    else:
        found = _resolve_generic(token_hash)
    if found is None:
        return SessionCheck(None, None, "unauthorized")
    sess, principal, user, logged = found
    if sess.ended_at is not None:
        reason = {"replaced": "session_replaced"}.get(sess.end_reason, "session_expired")
        return SessionCheck(sess, user, reason, principal)
    blocked = rules.account_blocked(principal.locked, principal.expires_at, now)
    if blocked or rules.session_idle_expired(sess.last_seen_at, now, idle):
        if logged:
            raise RuntimeError("the access-log statement and the session rules disagree")
        reason = "locked" if blocked else "expired"
        db.session.execute(update(UserSession).where(UserSession.id == sess.id, UserSession.ended_at.is_(None))
                           .values(ended_at=now, end_reason=reason))
        log_access("session_expired", user=principal, session_id=sess.id, detail=reason, commit=False)
        db.session.commit()
        return SessionCheck(sess, None, "session_expired", principal)
    if logged is None:  # the generic path: touch and log here, in this transaction
        if rules.touch_due(sess.last_seen_at, now, touch):
            db.session.execute(update(UserSession).where(UserSession.id == sess.id).values(last_seen_at=now))
        if log_request:
            log_access("request", user=principal, session_id=sess.id, commit=False)
            # The user and session loaded above stay loaded (no second read of the user).
            commit_keeping_loaded()
    elif logged != log_request:
        raise RuntimeError("the access-log statement and the session rules disagree")
    return SessionCheck(sess, user, None, principal)


def end_session(sess: SessionInfo, user, reason: str = "logout") -> None:
    db.session.execute(update(UserSession).where(UserSession.id == sess.id, UserSession.ended_at.is_(None))
                       .values(ended_at=clock.now(), end_reason=reason))
    log_access("logout", user=user, session_id=sess.id, commit=False)
    db.session.commit()


def expire_idle_sessions() -> int:
    """End every session idle longer than the configured limit. Returns how many."""
    now = clock.now()
    cutoff = now - timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    # One statement ends exactly the sessions still open and idle, and says which: a
    # session touched or ended meanwhile (by a request) is neither ended nor logged twice.
    stale = db.session.execute(
        update(UserSession)
        .where(UserSession.ended_at.is_(None), UserSession.last_seen_at <= cutoff)
        .values(ended_at=now, end_reason="expired")
        .returning(UserSession.id, UserSession.user_id)
    ).all()
    if not stale:
        return 0
    from lms.audit.models import AccessLog

    who = {u.id: u for u in db.session.execute(
        select(User.id, User.username, User.role).where(User.id.in_({s.user_id for s in stale})))}
    db.session.add_all([AccessLog(at=now, user_id=s.user_id, username=who[s.user_id].username,
                                  role=who[s.user_id].role, session_id=s.id, event="session_expired",
                                  detail="idle (periodic job)") for s in stale])
    db.session.commit()
    return len(stale)


# --- users -------------------------------------------------------------------------

_USERNAME_RE = re.compile(rules.USERNAME_PATTERN)


def default_institution() -> Institution:
    inst = db.session.scalar(select(Institution).order_by(Institution.id).limit(1))
    if inst is None:
        inst = Institution(code="default", name="기본 교육훈련기관", created_at=clock.now())
        db.session.add(inst)
        db.session.flush()
    return inst


def create_user(*, username: str, password: str, role: str, name: str | None = None,
                disability: bool = False, institution_id: int | None = None, phone=None,
                email=None, birth_date=None, expires_at=None) -> User:
    if role not in ROLES:
        raise ApiError(400, "invalid_request", f"role must be one of {', '.join(ROLES)}")
    if not _USERNAME_RE.match(username or ""):
        raise ApiError(400, "invalid_request", "username: 3–64 letters, digits or . _ @ -")
    problems = rules.password_problems(password, username)
    if problems:
        raise ApiError(400, "invalid_request", "; ".join(problems))
    if expires_at is not None and rules.account_blocked(False, expires_at, clock.now()):
        raise ApiError(400, "invalid_request", "expires_at is already past")
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise ApiError(409, "username_taken", "that username is already in use")
    inst_id = institution_id or default_institution().id
    user = User(
        institution_id=inst_id, username=username, password_hash=hash_password(password), role=role,
        name=name, disability=bool(disability), otp_secret=pyotp.random_base32(), otp_confirmed=False,
        phone=phone, email=email, birth_date=birth_date, expires_at=expires_at, created_at=clock.now(),
    )
    db.session.add(user)
    db.session.flush()
    from lms.audit.service import record_admin_action

    record_admin_action("user", user.id, "create", after={"username": username, "role": role,
                                                          "institution_id": inst_id})
    return user


def set_locked(user: User, locked: bool, reason: str | None = None) -> None:
    now = clock.now()
    from lms.audit.service import record_admin_action

    record_admin_action("user", user.id, "lock" if locked else "unlock", before={"locked": bool(user.locked)},
                        after={"locked": locked, "reason": reason if locked else None})
    user.locked = locked
    user.locked_reason = reason if locked else None
    user.locked_at = now if locked else None
    if locked:
        db.session.execute(update(UserSession).where(UserSession.user_id == user.id,
                                                     UserSession.ended_at.is_(None))
                           .values(ended_at=now, end_reason="locked"))
    else:
        clear_failures(user.username)


def reset_authenticator(user: User) -> str:
    """New TOTP secret; the user must enrol it again (QR code) at next login."""
    from lms.audit.service import record_admin_action

    record_admin_action("user", user.id, "reset_authenticator")  # the secret itself is never logged
    user.otp_secret = pyotp.random_base32()
    user.otp_confirmed = False
    user.otp_last_step = None
    return user.otp_secret


def provisioning_uri(user: User) -> str:
    return pyotp.TOTP(user.otp_secret).provisioning_uri(
        name=user.username, issuer_name=current_app.config["OTP_ISSUER"])
