"""Errors as API.md's conventions fix them.

API requests (paths under ``/api/``) get ``{"error": {"code", "message"[, "rules"]}}``;
HTML requests get a Korean error page with English available. Bad input is a 4xx,
never a 500.
"""
from __future__ import annotations

import json
import logging
import re

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


def page_message(status: int, exc: Exception | None = None) -> str:
    """What an HTML error page says for ``status``, in the page's language (Korean by
    default). Werkzeug's English descriptions and the API's English messages stay off
    the pages; the JSON answers keep them."""
    from flask_babel import gettext as _
    from flask_wtf.csrf import CSRFError

    if isinstance(exc, CSRFError):
        return _("보안 토큰이 없거나 만료되었습니다. 페이지를 새로 고친 뒤 다시 시도하세요.")
    messages = {
        400: _("요청을 처리할 수 없습니다. 입력한 내용을 확인하세요."),
        401: _("로그인한 뒤 다시 시도하세요."),
        403: _("이 페이지에 접근할 권한이 없습니다."),
        404: _("요청한 페이지가 없습니다. 주소를 확인하세요."),
        405: _("이 방식으로는 요청할 수 없습니다."),
        413: _("보낸 내용이 허용된 크기보다 큽니다."),
        429: _("요청이 너무 많습니다. 잠시 후 다시 시도하세요."),
        500: _("서버에서 오류가 발생했습니다. 잠시 후 다시 시도하세요."),
    }
    return messages.get(status) or _("요청을 처리하지 못했습니다.")


def _respond(status: int, code: str, message: str, rules=None, headers=None, extra=None,
             page_msg=None):
    """``page_msg``: None (the page shows ``message``) or a callable giving the page's text."""
    if wants_json():
        resp = jsonify(error_body(code, message, rules, extra))
        resp.status_code = status
    else:
        html = render_template("error.html", status=status, code=code, rules=rules or [],
                               message=message if page_msg is None else page_msg())
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


def _caused_by_bad_json(e: Exception) -> bool:
    """True for the 400 raised when a body could not be parsed as JSON: webargs attaches
    the decoding error as ``e.exc``; ``request.get_json()`` chains it as a cause."""
    seen = 0
    cur: BaseException | None = e
    while cur is not None and seen < 10:
        if isinstance(cur, (json.JSONDecodeError, UnicodeDecodeError)):
            return True
        extra = getattr(cur, "exc", None)
        if isinstance(extra, (json.JSONDecodeError, UnicodeDecodeError)):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


_LONE_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value) -> bool:
    """Whether any string in a parsed JSON document cannot be encoded (iterative: the
    document may be nested nearly as deep as the recursion limit)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _harden_json_parser() -> None:
    """Bodies that ``json.loads`` accepts but that are no usable text become decoding
    errors (400 "not valid JSON") instead of 500s further on:

    - nesting deeper than the interpreter's recursion limit (RecursionError);
    - a number longer than ``int()`` converts (sys.get_int_max_str_digits(), a ValueError);
    - a lone UTF-16 surrogate escape ("\\ud800"), which no str method can encode, hash,
      store or encrypt. Bodies without such an escape are not walked.
    """
    from apiflask.schema_adapters.marshmallow import parser

    if getattr(parser, "_lms_hardened", False):
        return
    raw_load_json = parser._raw_load_json

    def _raw_load_json(req):
        try:
            data = raw_load_json(req)
        except RecursionError as exc:
            raise json.JSONDecodeError("JSON nested too deeply", "<request body>", 0) from exc
        except ValueError as exc:
            if isinstance(exc, json.JSONDecodeError):
                raise
            # int()'s digit limit (4,300 digits): a ValueError, not a JSONDecodeError
            raise json.JSONDecodeError(f"unusable JSON: {exc}", "<request body>", 0) from exc
        if _LONE_SURROGATE_HINT.search(req.get_data(cache=True)) and _has_lone_surrogate(data):
            raise json.JSONDecodeError("lone surrogate in a string", "<request body>", 0)
        return data

    parser._raw_load_json = _raw_load_json
    parser._lms_hardened = True


def register_error_handlers(app: Flask) -> None:
    _harden_json_parser()

    @app.errorhandler(ApiError)
    def handle_api_error(e: ApiError):
        # "user not found" and the like are API English: a page says it in its language.
        return _respond(e.status, e.code, e.message, e.rules, e.headers, e.extra,
                        page_msg=(lambda: page_message(404)) if e.status == 404 else None)

    @app.errorhandler(HTTPError)
    def handle_apiflask_error(e: HTTPError):
        # Raised by APIFlask's input validation: body/query failed its schema.
        status = e.status_code
        if status in (400, 422) and e.detail:
            return _respond(400, "invalid_request", _validation_message(e.detail),
                            extra={"fields": e.detail}, page_msg=lambda: page_message(400))
        return _respond(status, _DEFAULT_CODES.get(status, "error"), e.message or "error",
                        headers=e.headers, page_msg=lambda: page_message(status))

    @app.errorhandler(HTTPException)
    def handle_http_exception(e: HTTPException):
        status = e.code or 500
        message = e.description or e.name
        if status == 413:
            message = "request body too large"
        elif status == 400 and _caused_by_bad_json(e):
            message = "request body is not valid JSON"
        headers = {k: v for k, v in e.get_headers() if k.lower() not in ("content-type", "content-length")}
        return _respond(status, _DEFAULT_CODES.get(status, "error"), message, headers=headers,
                        page_msg=lambda: page_message(status, e))

    @app.errorhandler(Exception)
    def handle_unexpected(e: Exception):
        from lms.db import db

        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _respond(500, "internal_error", "internal server error", page_msg=lambda: page_message(500))
