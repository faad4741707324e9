"""Errors as API.md's conventions fix them.

API requests (paths under ``/api/``) get ``{"error": {"code", "message"[, "rules"]}}``;
HTML requests get a Korean error page with English available. Bad input is a 4xx,
never a 500.
"""
from __future__ import annotations

import logging

from apiflask.exceptions import HTTPError
from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

_DEFAULT_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "rule_violation",
    429: "too_many_attempts",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """Raise anywhere below a view to answer with this status and code."""

    def __init__(self, status: int, code: str, message: str, *, rules=None, headers=None, extra=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.rules = list(rules) if rules else None
        self.headers = headers or {}
        self.extra = extra or {}


class RuleViolation(ApiError):
    """A broken rule of RULES.md: 422 ``rule_violation`` naming the rule IDs."""

    def __init__(self, rules, message: str, *, details=None):
        super().__init__(422, "rule_violation", message, rules=rules,
                         extra={"details": details} if details else None)


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def forbidden(message: str = "not allowed for this role") -> ApiError:
    return ApiError(403, "forbidden", message)


def wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json"
    )


def error_body(code: str, message: str, rules=None, extra=None) -> dict:
    err = {"code": code, "message": message}
    if rules:
        err["rules"] = list(rules)
    if extra:
        err.update(extra)
    return {"error": err}


def _respond(status: int, code: str, message: str, rules=None, headers=None, extra=None):
    if wants_json():
        resp = jsonify(error_body(code, message, rules, extra))
        resp.status_code = status
    else:
        html = render_template("error.html", status=status, code=code, message=message, rules=rules or [])
        from flask import make_response

        resp = make_response(html, status)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _validation_message(detail) -> str:
    """Flatten webargs/marshmallow messages into one readable line."""
    parts = []

    def walk(prefix, node):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(node, list):
            msgs = [m for m in node if isinstance(m, str)]
            if msgs:
                parts.append(f"{prefix}: {' '.join(msgs)}" if prefix else " ".join(msgs))
            for m in node:
                if not isinstance(m, str):
                    walk(prefix, m)
        else:
            parts.append(f"{prefix}: {node}" if prefix else str(node))

    walk("", detail)
    return "; ".join(parts) or "invalid request"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def handle_api_error(e: ApiError):
        return _respond(e.status, e.code, e.message, e.rules, e.headers, e.extra)

    @app.errorhandler(HTTPError)
    def handle_apiflask_error(e: HTTPError):
        # Raised by APIFlask's input validation: body/query failed its schema.
        status = e.status_code
        if status in (400, 422) and e.detail:
            return _respond(400, "invalid_request", _validation_message(e.detail),
                            extra={"fields": e.detail})
        return _respond(status, _DEFAULT_CODES.get(status, "error"), e.message or "error",
                        headers=e.headers)

    @app.errorhandler(HTTPException)
    def handle_http_exception(e: HTTPException):
        status = e.code or 500
        message = e.description or e.name
        if status == 413:
            message = "request body too large"
        headers = {k: v for k, v in e.get_headers() if k.lower() not in ("content-type", "content-length")}
        return _respond(status, _DEFAULT_CODES.get(status, "error"), message, headers=headers)

    @app.errorhandler(Exception)
    def handle_unexpected(e: Exception):
        from lms.db import db

        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _respond(500, "internal_error", "internal server error")
