"""Who is on the other end of a request: client IP (API.md) and device header."""
from __future__ import annotations

import re

from flask import request

_DEVICE_OK = re.compile(r"^[A-Za-z0-9:._-]{1,128}$")


def client_ip() -> str | None:
    """The TCP peer address; with ``LMS_TRUSTED_PROXIES`` > 0, ProxyFix (installed by
    create_app) has already replaced it with the trusted X-Forwarded-For hop."""
    return request.remote_addr


def user_agent() -> str | None:
    """The User-Agent header as stored (at most 512 characters, no NUL: PostgreSQL text
    cannot hold one, and a client must not be able to make its request fail to log)."""
    raw = request.user_agent.string or ""
    return text_safe(raw)[:512] or None


def text_safe(value: str) -> str:
    """``value`` without NUL characters (which no PostgreSQL text column accepts)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def device_id() -> str | None:
    """The ``X-LMS-Device`` header, normalised (MAC addresses lower-cased), or None when
    absent or malformed. One signal among IP, session and OTP — never trusted alone."""
    raw = request.headers.get("X-LMS-Device")
    if not raw:
        return None
    raw = raw.strip()
    if not _DEVICE_OK.match(raw):
        return None
    return raw.lower()
