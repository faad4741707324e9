"""Compliance-first LMS for Korea's credit-bank remote-learning institutions.

``create_app`` builds the application. It never migrates and never connects at import.
"""
from __future__ import annotations

import importlib
import logging

from apiflask import APIFlask
from flask import request
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

# Capability packages. Each may provide ``api.bp`` (JSON API under /api/v1),
# ``views.bp`` (HTML pages), more blueprint modules named in the package's
# ``BLUEPRINT_MODULES``, ``models`` (tables) and ``jobs.PERIODIC`` (scheduled jobs).
PACKAGES = (
    "lms.core",
    "lms.auth",
    "lms.audit",
    "lms.notify",
    "lms.content",
    "lms.enrolment",
    "lms.attendance",
    "lms.exams",
    "lms.proctoring",
    "lms.grading",
)


def import_models() -> None:
    """Import every package's models so the metadata (and Alembic) sees all tables."""
    for pkg in PACKAGES:
        try:
            importlib.import_module(f"{pkg}.models")
        except ModuleNotFoundError as exc:
            if exc.name != f"{pkg}.models":
                raise


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None


class IdConverter(IntegerConverter):
    """``<int:...>`` in routes: ids are INTEGER columns, so a number beyond 2**31 - 1 names
    no row and does not match (404) instead of overflowing the database (PostgreSQL
    "integer out of range", SQLite OverflowError: a 500). A route over a BIGINT id says
    ``<int(max=9223372036854775807):id>``."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(config_name: str | None = None, overrides: dict | None = None) -> APIFlask:
    from config import load_config

    cfg = load_config(config_name)
    cfg.validate()

    app = APIFlask(
        __name__,
        title="Credit-Bank LMS API",
        version="v1",
        spec_path="/api/v1/openapi.json",
        docs_path=None,
        json_errors=False,
        instance_relative_config=False,
    )
    app.config.from_object(cfg)
    if overrides:
        app.config.update(overrides)
    app.json.sort_keys = False
    app.url_map.converters["int"] = IdConverter

    from lms.crypto import check_key

    check_key(app.config["DATA_KEY"])

    if app.config["TRUSTED_PROXIES"] > 0:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    from lms.db import db
    from lms.extensions import babel, csrf, login_manager, migrate

    import_models()
    db.init_app(app)
    migrate.init_app(app, db, directory=str(_migrations_dir()), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)

    from lms.errors import register_error_handlers
    from lms.security import init_security

    register_error_handlers(app)
    init_security(app)

    for pkg in PACKAGES:
        # A package may list more blueprint modules in its ``BLUEPRINT_MODULES``.
        extra = getattr(importlib.import_module(pkg), "BLUEPRINT_MODULES", ())
        for kind in ("api", "views", *extra):
            mod = _optional(f"{pkg}.{kind}")
            if mod is not None and hasattr(mod, "bp"):
                app.register_blueprint(mod.bp)
    app.register_blueprint(importlib.import_module("lms.attendance.excuse_api").bp)  # ATT-5…8, CRS-10

    if app.config.get("TESTING_CLOCK"):
        from lms.core.api import testing_bp

        app.register_blueprint(testing_bp)

    from lms.cli import register_cli

    register_cli(app)

    from lms import clock

    app.jinja_env.filters["kst"] = lambda t: clock.to_kst(t).strftime("%Y-%m-%d %H:%M") if t else ""

    @app.context_processor
    def _template_globals():
        from flask_babel import get_locale

        from lms.auth.models import role_label

        return {"current_locale": str(get_locale() or "ko"), "role_label": role_label}

    if not app.debug and not app.testing:
        logging.basicConfig(level=logging.INFO)
    return app


def _migrations_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent / "migrations"


def _select_locale():
    """``?lang=`` (remembered in a cookie), then the cookie, then Accept-Language; Korean
    by default."""
    from flask import current_app

    langs = current_app.config["LANGUAGES"]
    lang = request.args.get("lang")
    if lang in langs:
        return lang
    lang = request.cookies.get("lms_lang")
    if lang in langs:
        return lang
    return request.accept_languages.best_match(langs) or current_app.config["BABEL_DEFAULT_LOCALE"]
