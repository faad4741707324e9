"""JSON API: Viewing and attendance — the write side (API.md, ATT-4, REC-1).

Views start and end through the access log as every request does; heartbeats are left
out of it (``no_access_log``): the viewing log records each one, with IP and device.
"""
from __future__ import annotations

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Length
from flask import current_app
from marshmallow import ValidationError, missing

from lms.attendance import rules, service
from lms.errors import ApiError
from lms.net import client_ip, device_id
from lms.schemas import FiniteFloat
from lms.security import current_auth, no_access_log, roles_required

bp = APIBlueprint("attendance_api", __name__, url_prefix="/api/v1", tag="Viewing and attendance")


def _valid_segments(value) -> None:
    problem = rules.segment_problem(value)
    if problem:
        raise ValidationError(problem)


class HeartbeatIn(Schema):
    """``segments``: the spans ``[from_s, to_s]`` of the lesson's timeline played since the
    previous heartbeat. Numbers only, finite, 0 ≤ from ≤ to ≤ 172800, at most 200 spans
    (ATT-4); anything else is 400 ``invalid_request`` and nothing is stored."""

    segments = fields.List(fields.List(FiniteFloat(), validate=Length(2, 2)), required=True,
                           validate=[Length(max=rules.MAX_SEGMENTS_PER_HEARTBEAT), _valid_segments])


class ChallengeIn(Schema):
    id = fields.String(required=True, validate=Length(1, 32))
    code = fields.String(required=True, validate=Length(1, 12))


class ChallengeOut(Schema):
    id = fields.String()
    code = fields.String()


class ViewOut(Schema):
    view_id = fields.Integer()
    lesson_id = fields.Integer()
    course_id = fields.Integer()
    position_seconds = fields.Float()
    duration_seconds = fields.Integer()
    max_playback_rate = fields.Float()
    progress = fields.Float()
    covered_seconds = fields.Integer()
    completed = fields.Boolean()
    status = fields.String()
    intervals = fields.List(fields.List(fields.Float()))
    attendance_deadline = fields.String()
    started_at = fields.String()
    challenge = fields.Nested(ChallengeOut)


class HeartbeatOut(Schema):
    view_id = fields.Integer()
    progress = fields.Float()
    completed = fields.Boolean()
    credited_seconds = fields.Float()
    discarded_seconds = fields.Float()
    covered_seconds = fields.Integer()
    duration_seconds = fields.Integer()
    status = fields.String()
    intervals = fields.List(fields.List(fields.Float()))
    challenge = fields.Nested(ChallengeOut)


class OkOut(Schema):
    ok = fields.Boolean()


class EndOut(Schema):
    view_id = fields.Integer()
    ended_at = fields.String()
    end_reason = fields.String()
    credited_seconds = fields.Float()
    progress = fields.Float()
    status = fields.String()


@bp.post("/lessons/<int:lesson_id>/views")
@roles_required("learner")
@bp.output(ViewOut, status_code=201)
def start_view(lesson_id):
    """Open a view of a lesson (enrolled learner, lesson open; 409 ``lesson_not_open``
    before 00:00 KST of its week). Ends the learner's other open views; ``position_seconds``
    is the resume point."""
    return service.start_view(current_auth().user, lesson_id, ip=client_ip(), device=device_id())


def _heartbeat_segments(body) -> list[list[float]]:
    """``HeartbeatIn`` checked by hand: the schema documents the body, but marshmallow's
    nested lists cost more than the rest of a heartbeat's Python. Same answers: 400
    ``invalid_request`` (with ``fields``) for a body that is not an object, unknown or
    missing fields, and every ``rules.segment_problem`` (ATT-4); the spans as floats."""
    if body is missing or not isinstance(body, dict):
        detail = {"segments": ["Missing data for required field."]} if body is missing or body is None \
            else {"_schema": ["Invalid input type."]}
    elif len(body) != 1 or "segments" not in body:
        detail = {k: ["Unknown field."] for k in body if k != "segments"}
        if "segments" not in body:
            detail["segments"] = ["Missing data for required field."]
    else:
        segments = body["segments"]
        problem = rules.segment_problem(segments)
        if problem is None:
            return [[float(a), float(b)] for a, b in segments]
        detail = {"segments": [problem]}
    message = "; ".join(f"json.{k}: {' '.join(v)}" for k, v in detail.items())
    raise ApiError(400, "invalid_request", message, extra={"fields": {"json": detail}})


@bp.post("/views/<int:view_id>/heartbeat")
@no_access_log
@roles_required("learner")
@bp.input(HeartbeatIn, arg_name="body", validation=False)  # documented; checked by _heartbeat_segments
@bp.output(HeartbeatOut)
def heartbeat(view_id, body):
    """Report the spans played since the previous heartbeat (ATT-4). Credited: new coverage
    up to the real time elapsed × the maximum playback rate + 2 s. May carry a presence
    ``challenge``; until it is answered nothing more is credited."""
    segments = _heartbeat_segments(body)
    answer = service.heartbeat(current_auth().user, view_id, segments, ip=client_ip(), device=device_id())
    return current_app.json.response(answer)  # HeartbeatOut's fields exactly, no second pass


@bp.post("/views/<int:view_id>/challenge")
@roles_required("learner")
@bp.input(ChallengeIn, arg_name="body")
@bp.output(OkOut)
def challenge(view_id, body):
    """Answer the presence challenge (ATT-4): 200 ``{"ok": true}``; 422 ``wrong_code``."""
    return service.answer_challenge(current_auth().user, view_id, body["id"], body["code"],
                                    ip=client_ip(), device=device_id())


@bp.post("/views/<int:view_id>/end")
@roles_required("learner")
@bp.output(EndOut)
def end_view(view_id):
    """End a view: its end time in the viewing log (REC-1)."""
    return service.end_view(current_auth().user, view_id, ip=client_ip(), device=device_id())


# --- the attendance record (ATT-9) ------------------------------------------------------------

class SubmissionOut(Schema):
    id = fields.Integer()
    course_id = fields.Integer()
    submitted_by = fields.Integer()
    submitted_at = fields.String()
    due_at = fields.String()
    on_time = fields.Boolean()
    learners = fields.Integer()
    sha256 = fields.String()


class RecordStatusOut(Schema):
    course_id = fields.Integer()
    due_at = fields.String()
    state = fields.String()
    submissions = fields.List(fields.Nested(SubmissionOut))


@bp.post("/courses/<int:course_id>/attendance-record")
@roles_required("instructor", "admin")
@bp.output(SubmissionOut, status_code=201)
def submit_attendance_record(course_id):
    """ATT-9: the instructor submits the course's attendance record (a settled snapshot of
    every learner) within one week after the course ends; 409 ``course_not_ended`` before."""
    from lms.attendance import records

    return records.submission_dict(records.submit(course_id, current_auth().user))


@bp.get("/courses/<int:course_id>/attendance-record")
@roles_required("instructor", "ta", "admin", "inspector")
@bp.output(RecordStatusOut)
def attendance_record(course_id):
    """ATT-9: the due time, the state (not_due, open, on_time, late, overdue) and every
    submission of the course's attendance record."""
    from lms.attendance import records

    return records.record_status(course_id, current_auth().user)
