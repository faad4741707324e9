"""Pure rules of login and sessions. No clock, no request: times come in as arguments."""
from __future__ import annotations

import hmac
from datetime import datetime, timedelta

import pyotp

# ATT-3 / EXM-8: the second factor is a TOTP (RFC 6238) code, 6 digits, 30-second steps.
OTP_DIGITS = 6
OTP_STEP_SECONDS = 30
# One step of clock drift either way is tolerated.
OTP_DRIFT_STEPS = 1
USERNAME_PATTERN = r"^[A-Za-z0-9_.@-]{3,64}$"
PASSWORD_MIN_LENGTH = 10


def otp_step(at: datetime) -> int:
    return int(at.timestamp()) // OTP_STEP_SECONDS


def match_otp_step(secret: str, code: str, now: datetime, last_step: int | None) -> int | None:
    """The time step ``code`` belongs to, if it is valid at ``now`` (±1 step) and newer
    than ``last_step`` (a used code is never accepted twice); otherwise None."""
    # ASCII digits only: str.isdigit() also accepts other scripts' digits ("١٢٣٤٥٦").
    if not isinstance(code, str) or len(code) != OTP_DIGITS or not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=OTP_DIGITS, interval=OTP_STEP_SECONDS)
    current = otp_step(now)
    for step in range(current - OTP_DRIFT_STEPS, current + OTP_DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def idle_cutoff(now: datetime, idle: timedelta) -> datetime:
    """A session last seen at or before this instant has been idle too long."""
    return now - idle


def session_idle_expired(last_seen: datetime, now: datetime, idle: timedelta) -> bool:
    """An idle session expires once ``idle`` has passed since it was last seen."""
    return last_seen <= idle_cutoff(now, idle)


def account_blocked(locked: bool, expires_at: datetime | None, now: datetime) -> bool:
    """A locked account, or one whose validity ended at or before ``now``, cannot be used."""
    return bool(locked) or (expires_at is not None and expires_at <= now)


def touch_cutoff(now: datetime, every: timedelta) -> datetime:
    """A session last seen at or before this instant has its last-seen time rewritten."""
    return now - every


def touch_due(last_seen: datetime, now: datetime, every: timedelta) -> bool:
    """The session's last-seen time is rewritten at most once per ``every`` (a throttle:
    the idle limit is far longer than ``every``)."""
    return last_seen <= touch_cutoff(now, every)


def password_problems(password: str, username: str) -> list[str]:
    problems = []
    if len(password) < PASSWORD_MIN_LENGTH:
        problems.append(f"password must have at least {PASSWORD_MIN_LENGTH} characters")
    if username and username.lower() in password.lower():
        problems.append("password must not contain the username")
    return problems


def retry_after_seconds(window_ttl: int | None, window: int) -> int:
    """Seconds a rate-limited client must wait: the remaining window, at least 1."""
    if window_ttl is None or window_ttl < 0:
        return window
    return max(1, window_ttl)
