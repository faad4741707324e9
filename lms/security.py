"""Per-request authentication, CSRF, access logging and security headers.

Every request resolves its server-side session (Bearer token for the API, the signed
session cookie for pages) before the view runs. An authenticated request is written to
the access log (REC-1) *before* the view runs and committed, so a request whose log
cannot be written fails instead of acting unlogged.
"""
from __future__ import annotations

from functools import wraps

from flask import Flask, flash, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _

from lms.auth.service import SessionCheck, check_session
from lms.errors import ApiError
from lms.extensions import csrf, login_manager

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Endpoints whose requests are never written to the access log.
_UNLOGGED_ENDPOINTS = {"static"}

_PROBLEM_MESSAGES = {
    "session_replaced": "this session was ended by a login elsewhere (one ID, one session)",
    "session_expired": "the session has expired; log in again",
    "unauthorized": "authentication required",
}


def no_access_log(view):
    """Mark a view whose requests the access log leaves to another evidence store
    (lesson heartbeats: the viewing log records those)."""
    view._lms_no_access_log = True
    return view


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None
    return None


def _is_api() -> bool:
    return request.path.startswith("/api/")


def _request_token() -> tuple[str | None, str | None]:
    """(session token, "api" | "web" | None): a Bearer token, else the page session's."""
    token = _bearer_token()
    if token is not None:
        return token, "api"
    if "sid" in session:
        return session.get("sid"), "web"
    return None, None


def authenticate(token: str | None, *, log_request: bool) -> None:
    """Resolve the request's session into ``g.auth``; with ``log_request`` a live
    session's request is in the access log, committed, when this returns (REC-1)."""
    if token is None:
        g.auth = SessionCheck(None, None, "unauthorized")
        return
    g.auth = check_session(token, log_request=log_request)
    if g.auth.problem and g.auth_kind == "web":
        session.pop("sid", None)
        g.web_session_problem = g.auth.problem


def _view_unlogged() -> bool:
    from flask import current_app

    if request.endpoint in _UNLOGGED_ENDPOINTS:
        return True
    view = current_app.view_functions.get(request.endpoint)
    return bool(view and getattr(view, "_lms_no_access_log", False))


def current_auth() -> SessionCheck:
    return g.get("auth") or SessionCheck(None, None, "unauthorized")


def require_principal():
    """The live session's principal (plain values, no ORM object); 401 with API.md's codes
    unless the request has a live session."""
    auth = current_auth()
    if auth.problem or auth.principal is None:
        code = auth.problem or "unauthorized"
        raise ApiError(401, code, _PROBLEM_MESSAGES.get(code, "authentication required"),
                       headers={"WWW-Authenticate": "Bearer"})
    return auth.principal


def require_auth_api():
    """The live session's user (ORM object); 401 with API.md's codes otherwise."""
    require_principal()
    return current_auth().user


def roles_required(*roles: str):
    """API view decorator: live session and one of ``roles`` (any role when empty)."""

    def deco(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = require_principal()
            if roles and principal.role not in roles:
                raise ApiError(403, "forbidden", "not allowed for this role")
            return view(*args, **kwargs)

        spec = wrapper.__dict__.setdefault("_spec", {})
        spec.setdefault("security", "BearerAuth")
        return wrapper

    return deco


def page_roles_required(*roles: str):
    """HTML view decorator: redirect to the login page (with a notice) when there is no
    live session; 403 page for a wrong role."""

    def deco(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            auth = current_auth()
            if auth.problem or auth.principal is None:
                problem = g.get("web_session_problem")
                if problem == "session_replaced":
                    flash(_("이 계정으로 다른 곳에서 로그인하여 현재 세션이 종료되었습니다."), "warning")
                elif problem == "session_expired":
                    flash(_("세션이 만료되었습니다. 다시 로그인하세요."), "warning")
                return redirect(url_for("auth_pages.login", next=request.full_path))
            if roles and auth.principal.role not in roles:
                raise ApiError(403, "forbidden", _("이 역할로는 접근할 수 없습니다."))
            return view(*args, **kwargs)

        return wrapper

    return deco


def init_security(app: Flask) -> None:
    login_manager.session_protection = None

    @login_manager.request_loader
    def _load(_request):
        auth = g.get("auth")
        return auth.user if auth and not auth.problem else None

    @app.before_request
    def _before():
        token, g.auth_kind = _request_token()
        if request.method not in SAFE_METHODS and not (_is_api() and g.auth_kind == "api"):
            # HTML forms and cookie-authenticated API calls (the player's JS) need CSRF.
            if not (_is_api() and g.auth_kind is None):
                csrf.protect()
        # An authenticated request's access-log row is committed before the view runs
        # (REC-1), in the same step that resolves the session; a failure to write fails
        # the request.
        authenticate(token, log_request=not _view_unlogged())

    security_headers = dict(_SECURITY_HEADERS)
    if app.config.get("HSTS"):
        security_headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    app.session_interface = _CookieSessions()

    @app.after_request
    def _headers(resp):
        h = resp.headers
        present = {k.lower() for k in h.keys()}
        for name, value in security_headers.items():
            if name.lower() not in present:
                h.add(name, value)
        auth = g.get("auth")
        if (auth is not None and auth.problem is None and auth.principal is not None
                and "cache-control" not in present):
            h.add("Cache-Control", "no-store")
        return resp


_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class _CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session (it holds only the server-side session's token), without
    building the signer for requests that carry no session cookie (API calls with a Bearer
    token): those get an empty session, as Flask gives them."""

    def open_session(self, app, request):
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)
