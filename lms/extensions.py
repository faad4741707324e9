"""Process-wide extension objects. Nothing here connects at import time."""
from __future__ import annotations

import redis
from flask import current_app
from flask_babel import Babel
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

login_manager = LoginManager()
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()

_redis_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis:
    """The Redis connection of the current app (pooled, one per URL per process)."""
    url = current_app.config["REDIS_URL"]
    client = _redis_clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        _redis_clients[url] = client
    return client


def rkey(name: str) -> str:
    """A Redis key under this deployment's prefix."""
    return f"{current_app.config['REDIS_PREFIX']}:{name}"
