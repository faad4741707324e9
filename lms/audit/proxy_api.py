"""JSON API of proxy-attendance detection (issue 6, item 5).

- ``GET /api/v1/courses/{id}/proxy-report?from=YYYY-MM-DD&to=YYYY-MM-DD`` (KST dates, ``to``
  inclusive) → ``{"shared_views", "shared_attempts", "fast_lessons", "excess_views",
  "login_jumps", "settings", ...}``; every finding has ``rows: {"table", "ids"}`` and a
  ``link`` to the page of those raw rows
- ``GET /api/v1/audit/raw/{table}?ids=1,2`` (``lesson_view`` with its ``view_event`` rows,
  ``attempt`` with ``attempt_address`` and ``attempt_event``, ``access_log``)
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from apiflask import APIBlueprint
from flask import request

from lms import clock
from lms.audit import proxy
from lms.errors import ApiError
from lms.security import current_auth, roles_required

bp = APIBlueprint("audit_proxy_api", __name__, url_prefix="/api/v1", tag="Audit")
ROLES = ("admin", "inspector", "instructor", "ta")


def period_args() -> tuple[datetime | None, datetime | None]:
    """``from``/``to`` as KST dates (``to`` inclusive) → [since, until) in UTC; 400 when bad."""
    out = []
    for name, extra in (("from", 0), ("to", 1)):
        raw = request.args.get(name) or None
        if raw is None:
            out.append(None)
            continue
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise ApiError(400, "invalid_request", f"{name}: a date YYYY-MM-DD") from None
        out.append(clock.kst_midnight(day + timedelta(days=extra)))
    if out[0] and out[1] and out[0] >= out[1]:
        raise ApiError(400, "invalid_request", "from must not be after to")
    return out[0], out[1]


@bp.get("/courses/<int:course_id>/proxy-report")
@roles_required(*ROLES)
def proxy_report(course_id):
    user = current_auth().user
    course = proxy.course_for_detection(course_id, user)
    since, until = period_args()
    return proxy.report(course, user, since=since, until=until)


@bp.get("/audit/raw/<table>")
@roles_required(*ROLES)
def raw_rows(table):
    return proxy.raw_rows(table, proxy.parse_ids(request.args.get("ids")), current_auth().user)
