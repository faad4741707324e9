"""JSON API of API.md's "Logs" section (inspectors and admins; REC-3, REC-6).

``GET /api/v1/logs/access``, ``/logs/views`` (viewing sessions), ``/logs/view-events`` (the
viewing log's events) and ``/logs/exams`` (exam evidence). Filters are query parameters
(see ``lms.audit.filters``); a page answers ``{"entries": [...], "next": <cursor|null>,
"prev": <cursor|null>}``. ``Accept: text/csv`` or ``?format=csv`` streams every filtered row
as CSV (UTF-8 with BOM, a header line); ``?format=xlsx`` (or the XLSX media type in
``Accept``) as a workbook. Each search and export is written to the access log first.
"""
from __future__ import annotations

from apiflask import APIBlueprint
from flask import Response, request, stream_with_context
from flask_babel import gettext as _

from lms import clock
from lms.audit import export, export_copy, logsearch
from lms.audit.filters import FilterError, LogFilters, parse_filters
from lms.auth.models import ROLES
from lms.db import db
from lms.security import current_auth, roles_required

bp = APIBlueprint("audit_logs_api", __name__, url_prefix="/api/v1", tag="Logs")

_ACCEPTS = {"text/csv": "csv", export.XLSX_MIMETYPE: "xlsx"}


def negotiated_format(f: LogFilters) -> str:
    """``format`` when given, else ``Accept``: CSV or XLSX only when asked for by name
    (a browser's ``*/*`` gets JSON)."""
    if f.format:
        return f.format
    best = request.accept_mimetypes.best_match(["application/json", "text/csv", export.XLSX_MIMETYPE])
    return _ACCEPTS.get(best, "json")


def read_filters(kind: str) -> LogFilters:
    try:
        return parse_filters(kind, request.args, roles=ROLES)
    except FilterError as exc:
        raise logsearch.parse_error(exc) from None


def export_response(f: LogFilters, scope: logsearch.Scope, fmt: str) -> Response:
    """The streamed download of every row of ``f`` (logged before the first row is read)."""
    auth = current_auth()
    spec = logsearch.SPECS[f.kind]
    logsearch.log_search(auth.user, auth.session.id, f, export=fmt)
    header = [_(c.label) for c in spec.columns] if f.header == "labels" else [c.key for c in spec.columns]
    rows = logsearch.stream_rows(f, scope)
    path = "python"
    if fmt == "csv" and export_copy.usable(db.session, spec):
        # PostgreSQL: COPY … TO STDOUT writes the same bytes 2–4× faster (export_copy).
        path = "copy"
        body = export_copy.csv_body(db.session, f, scope, export.csv_header(header),
                                    lambda: logsearch.stream_rows(f, scope))
        mimetype = export.CSV_MIMETYPE
    elif fmt == "csv":
        body, mimetype = export.csv_stream(spec.columns, header, rows), export.CSV_MIMETYPE
    else:
        body, mimetype = export.xlsx_stream(spec.columns, header, rows, title=_(spec.title)), export.XLSX_MIMETYPE
    stamp = clock.to_kst(clock.now()).strftime("%Y%m%d-%H%M%S")
    name = f"{f.kind}-log-{stamp}.{fmt}"
    return Response(stream_with_context(body), mimetype=mimetype, headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # nginx: pass the stream on as it comes
        "X-LMS-Export-Path": path,  # copy | python: which writer served (bench_export.py reports it)
    })


def answer(kind: str):
    auth = current_auth()
    f = read_filters(kind)
    scope = logsearch.resolve_scope(f, auth.user.institution_id)
    fmt = negotiated_format(f)
    if fmt != "json":
        return export_response(f, scope, fmt)
    logsearch.log_search(auth.user, auth.session.id, f)
    page = logsearch.search_page(f, scope)
    return {"entries": [logsearch.entry(page.spec, r) for r in page.rows], "next": page.next, "prev": page.prev}


_DOC = """Filters (all optional, combined with AND): {filters}. ``from``/``to``: a KST date
(``to`` includes the whole day) or an ISO time with offset; ``week`` (with ``course_id`` or
``section_id``): {week}; ``section_id``: the class's learners (and its staff);
``ip``: an address, an IPv4 CIDR range or a prefix like ``10.1.``; ``order``: asc (default)
or desc; ``limit`` 1–500 (50); ``cursor``: ``next`` or ``prev`` of a previous page.
``format=csv|xlsx`` (or ``Accept``) streams every filtered row (cursor and limit do not
apply); ``header=labels`` puts the Korean column names in the header line.
Admins and inspectors of the institution; others 403. Every search and export is logged."""


@bp.get("/logs/access")
@roles_required(*logsearch.SEARCH_ROLES)
def access_logs():
    """Access records (REC-1, REC-3): login, logout, failures and every authenticated
    request, with time, user, role, IP, device and path."""
    return answer("access")


@bp.get("/logs/views")
@roles_required(*logsearch.SEARCH_ROLES)
def view_logs():
    """Viewing sessions (REC-1, REC-3): per view of a lesson its start, end, IP, device and
    credited seconds."""
    return answer("views")


@bp.get("/logs/view-events")
@roles_required(*logsearch.SEARCH_ROLES)
def view_event_logs():
    """The viewing log's events (REC-1, ATT-4): start, every heartbeat with the segments
    claimed and credited, challenges and end."""
    return answer("view-events")


@bp.get("/logs/exams")
@roles_required(*logsearch.SEARCH_ROLES)
def exam_logs():
    """Exam evidence (EXM-10, REC-1): attempt events — start, answers, IP/device changes,
    blocks, incidents, submission, grading."""
    return answer("exams")


for _view, _kind, _week in (
        (access_logs, "access", "the course's KST week (by time)"),
        (view_logs, "views", "the lessons of that week"),
        (view_event_logs, "view-events", "the lessons of that week"),
        (exam_logs, "exams", "the course's KST week (by time)")):
    from lms.audit.filters import ALLOWED

    _view.__doc__ = (_view.__doc__ or "") + "\n\n" + _DOC.format(
        filters=", ".join(k for k in ALLOWED[_kind] if k not in ("cursor", "limit", "format", "order", "header")),
        week=_week)
