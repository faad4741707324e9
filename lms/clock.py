"""The one clock. Every "now" in the system — rules, jobs, log entries, OTP checks —
comes from :func:`now`.

In the ``testing`` environment the clock can be set (``PUT /api/v1/testing/clock``): the
offset from real time is kept in Redis, so every web process and every worker sees the
same time, and the clock runs on from the instant it was set to.
"""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

KST = ZoneInfo("Asia/Seoul")
_OFFSET_KEY = "testing:clock_offset"


def real_now() -> datetime:
    return datetime.now(timezone.utc)


def now() -> datetime:
    """Aware UTC now, shifted by the testing offset when the testing clock is on."""
    t = real_now()
    if has_app_context() and current_app.config.get("TESTING_CLOCK"):
        from lms.extensions import redis_client, rkey

        raw = redis_client().get(rkey(_OFFSET_KEY))
        if raw is not None:
            from datetime import timedelta

            t = t + timedelta(microseconds=int(raw))
    return t


def set_now(target: datetime) -> None:
    """Testing only: make :func:`now` return ``target`` from this instant on."""
    from lms.extensions import redis_client, rkey

    if target.tzinfo is None:
        raise ValueError("the testing clock needs an aware datetime")
    delta = target - real_now()
    micros = delta.days * 86_400_000_000 + delta.seconds * 1_000_000 + delta.microseconds
    redis_client().set(rkey(_OFFSET_KEY), micros)


def reset() -> None:
    from lms.extensions import redis_client, rkey

    redis_client().delete(rkey(_OFFSET_KEY))


def kst_midnight(day: date) -> datetime:
    """00:00 KST of a calendar date (aware): where every rule day begins."""
    return datetime.combine(day, time(0), tzinfo=KST)


def to_kst(t: datetime) -> datetime:
    return t.astimezone(KST)


def iso(t: datetime | None) -> str | None:
    """API form of a time: ISO 8601 in KST with its offset."""
    return None if t is None else t.astimezone(KST).isoformat()
