"""Encryption of personal data at rest (REC-4) with ``cryptography``'s Fernet.

``LMS_DATA_KEY`` holds one or more comma-separated Fernet keys: the first encrypts,
every key decrypts, so keys can be rotated without a migration window.
"""
from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app

_cache: dict[str, MultiFernet] = {}


def _fernet() -> MultiFernet:
    raw = current_app.config["DATA_KEY"]
    f = _cache.get(raw)
    if f is None:
        keys = [k.strip() for k in raw.split(",") if k.strip()]
        if not keys:
            raise RuntimeError("LMS_DATA_KEY is empty")
        f = MultiFernet([Fernet(k.encode()) for k in keys])
        _cache[raw] = f
    return f


def encrypt(plaintext: str) -> bytes:
    return _fernet().encrypt(plaintext.encode("utf-8"))


def decrypt(token: bytes) -> str:
    try:
        return _fernet().decrypt(token).decode("utf-8")
    except InvalidToken as exc:  # wrong key: a configuration error, never silent
        raise RuntimeError("personal data cannot be decrypted with LMS_DATA_KEY") from exc


def check_key(raw: str) -> None:
    """Raise ValueError unless ``raw`` is a list of valid Fernet keys."""
    for k in [k.strip() for k in raw.split(",") if k.strip()]:
        Fernet(k.encode())
