"""JSON API: exams and attempts (API.md "Items, exams and attempts"; EXM-1…10).

Answer saves and incidents are recorded in the exam evidence (``attempt_event``) with IP
and device, besides the access log every authenticated request gets.
"""
from __future__ import annotations

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Length, OneOf
from flask import current_app, request

from lms.db import db
from lms.exams import service
from lms.net import client_ip, device_id
from lms.proctoring import service as proctoring
from lms.schemas import AwareDateTime, StrictBool, StrictInt
from lms.security import current_auth, roles_required

bp = APIBlueprint("exams_api", __name__, url_prefix="/api/v1", tag="Items, exams and attempts")

STAFF = ("admin", "instructor")


class ExamIn(Schema):
    """``announce`` (default true): publish on the notice page and notify learners now
    (EXM-7: at least 14 days before ``opens_at``); false keeps a draft."""

    title = fields.String(required=True, validate=Length(1, 200))
    kind = fields.String(required=True, validate=OneOf(("midterm", "final", "quiz")))
    opens_at = AwareDateTime(required=True)
    closes_at = AwareDateTime(required=True)
    duration_minutes = StrictInt(required=True)
    items_per_difficulty = fields.Dict(keys=fields.String(validate=Length(1, 16)), values=StrictInt(),
                                       required=True, validate=Length(1, 10))
    announce = StrictBool(load_default=True)
    requires_seb = StrictBool(load_default=False)
    seb_config_key = fields.String(allow_none=True, validate=Length(8, 128))


class ExamPatch(Schema):
    title = fields.String(validate=Length(1, 200))
    kind = fields.String(validate=OneOf(("midterm", "final", "quiz")))
    opens_at = AwareDateTime()
    closes_at = AwareDateTime()
    duration_minutes = StrictInt()
    items_per_difficulty = fields.Dict(keys=fields.String(validate=Length(1, 16)), values=StrictInt(),
                                       validate=Length(1, 10))
    announce = StrictBool()
    requires_seb = StrictBool()
    seb_config_key = fields.String(allow_none=True, validate=Length(8, 128))


class ExamOut(Schema):
    id = fields.Integer()
    course_id = fields.Integer()
    title = fields.String()
    kind = fields.String()
    opens_at = fields.String()
    closes_at = fields.String()
    duration_minutes = fields.Integer()
    disability_minutes = fields.Integer()
    items_per_difficulty = fields.Dict(keys=fields.String(), values=fields.Integer())
    items_total = fields.Integer()
    announced_at = fields.String(allow_none=True)
    status = fields.String()
    requires_seb = fields.Boolean()
    created_at = fields.String()


class ExamEntryOut(ExamOut):
    """An exam in a list (a class of its own: a schema nested in another and also used as
    a route's output would be registered twice in the OpenAPI document)."""


class ExamListOut(Schema):
    exams = fields.List(fields.Nested(ExamEntryOut))


class AttemptIn(Schema):
    otp = fields.String(required=True, validate=Length(1, 12))


class AttemptItemOut(Schema):
    id = fields.Integer()
    position = fields.Integer()
    kind = fields.String()
    prompt = fields.String()
    choices = fields.List(fields.String(), allow_none=True)
    points = fields.Float()
    answer = fields.Raw(allow_none=True)
    # staff only
    version = fields.Integer()
    difficulty = fields.String()
    awarded = fields.Float(allow_none=True)
    key = fields.Raw(allow_none=True)
    model_answer = fields.String(allow_none=True)
    rubric = fields.String(allow_none=True)
    answer_original = fields.Raw(allow_none=True)
    grader_comment = fields.String(allow_none=True)


class AddressOut(Schema):
    kind = fields.String()
    value = fields.String()


class AttemptSummaryOut(Schema):
    attempt_id = fields.Integer()
    exam_id = fields.Integer()
    learner_id = fields.Integer()
    username = fields.String()
    started_at = fields.String()
    deadline = fields.String()
    submitted_at = fields.String(allow_none=True)
    submit_reason = fields.String(allow_none=True)
    open = fields.Boolean()
    remaining_seconds = fields.Integer()
    ip = fields.String(allow_none=True)
    device = fields.String(allow_none=True)
    seed = fields.String(allow_none=True)
    score = fields.Float(allow_none=True)
    needs_grading = fields.Boolean()
    is_makeup = fields.Boolean()
    cheating_found = fields.Boolean()
    incidents = fields.Integer()
    addresses = fields.List(fields.Nested(AddressOut))


class AttemptOut(AttemptSummaryOut):
    items = fields.List(fields.Nested(AttemptItemOut))


class AttemptListOut(Schema):
    attempts = fields.List(fields.Nested(AttemptSummaryOut))


class AnswerIn(Schema):
    """``answer``: single_choice — the index of a choice as shown; multiple_choice — a list
    of such indexes; short_answer and essay — text; null clears the answer."""

    answer = fields.Raw(required=True, allow_none=True)


class AnswerOut(Schema):
    attempt_id = fields.Integer()
    item_id = fields.Integer()
    saved_at = fields.String()
    deadline = fields.String()
    remaining_seconds = fields.Integer()


class SubmitOut(Schema):
    attempt_id = fields.Integer()
    submitted_at = fields.String()
    score = fields.Float(allow_none=True)
    needs_grading = fields.Boolean()
    submit_reason = fields.String()


class IncidentIn(Schema):
    kind = fields.String(required=True, validate=Length(1, 32))
    detail = fields.String(allow_none=True, validate=Length(0, 300))


class IncidentOut(Schema):
    attempt_id = fields.Integer()
    kind = fields.String()
    recorded_at = fields.String()


class EventOut(Schema):
    id = fields.Integer()
    at = fields.String()
    kind = fields.String()
    ip = fields.String(allow_none=True)
    device = fields.String(allow_none=True)
    attempt_item_id = fields.Integer(allow_none=True)
    answer = fields.Raw(allow_none=True)
    detail = fields.String(allow_none=True)


class EventListOut(Schema):
    events = fields.List(fields.Nested(EventOut))


class ExceptionIn(Schema):
    kind = fields.String(required=True, validate=OneOf(("ip", "device")))
    value = fields.String(required=True, validate=Length(1, 128))
    reason = fields.String(required=True, validate=Length(5, 1000))


class ExceptionOut(Schema):
    id = fields.Integer()
    exam_id = fields.Integer()
    kind = fields.String()
    value = fields.String()
    reason = fields.String()
    granted_by = fields.Integer()
    granted_at = fields.String()
    revoked_by = fields.Integer(allow_none=True)
    revoked_at = fields.String(allow_none=True)


class ExceptionListOut(Schema):
    exceptions = fields.List(fields.Nested(ExceptionOut))


def _seb() -> tuple[str, str | None]:
    """The request's absolute URL and its Safe Exam Browser config-key hash header."""
    return request.url, request.headers.get("X-SafeExamBrowser-ConfigKeyHash")


# --- exams ------------------------------------------------------------------------------------

@bp.post("/courses/<int:course_id>/exams")
@roles_required(*STAFF)
@bp.input(ExamIn, arg_name="body")
@bp.output(ExamOut, status_code=201)
def create_exam(course_id, body):
    """Define an exam. 422 ``rule_violation`` naming every broken rule: a window over 4 KST
    calendar days or outside the syllabus's period (EXM-2); fewer than 3 difficulty levels
    drawn (EXM-3); over 60 minutes (EXM-4); fewer than 3× the drawn items in the bank at a
    level (EXM-5); a start less than 14 days after the announcement (EXM-7)."""
    user = current_auth().user
    course = service.course_for_exams(course_id, user)
    exam = service.create_exam(course, user, body)
    db.session.commit()
    return service.exam_dict(exam)


@bp.get("/courses/<int:course_id>/exams")
@roles_required()
@bp.output(ExamListOut)
def list_exams(course_id):
    from lms.content.service import course_for_viewer

    user = current_auth().user
    course = course_for_viewer(course_id, user)
    return {"exams": [service.exam_dict(e) for e in service.list_exams(course, user)]}


@bp.get("/exams/<int:exam_id>")
@roles_required()
@bp.output(ExamOut)
def get_exam(exam_id):
    exam, _course = service.exam_for_viewer(exam_id, current_auth().user)
    return service.exam_dict(exam)


@bp.patch("/exams/<int:exam_id>")
@roles_required(*STAFF)
@bp.input(ExamPatch, arg_name="body")
@bp.output(ExamOut)
def update_exam(exam_id, body):
    """Change an exam before anyone started it; every rule is checked again (422)."""
    exam, course = service.exam_for_manager(exam_id, current_auth().user)
    service.update_exam(exam, course, body)
    db.session.commit()
    return service.exam_dict(exam)


@bp.post("/exams/<int:exam_id>/announce")
@roles_required(*STAFF)
@bp.output(ExamOut)
def announce_exam(exam_id):
    """Publish a draft exam on the notice page and notify every enrolled learner (EXM-7)."""
    from lms import clock

    exam, course = service.exam_for_manager(exam_id, current_auth().user)
    service.announce_exam(exam, course, clock.now())
    db.session.commit()
    return service.exam_dict(exam)


@bp.get("/notices/exams")
@bp.output(ExamListOut)
def exam_notices():
    """The public notice page's data: every announced exam (no login; EXM-7)."""
    return {"exams": [service.exam_dict(e) for e, _c in service.public_notices()]}


@bp.get("/exams/<int:exam_id>/attempts")
@roles_required("admin", "instructor", "ta", "inspector")
@bp.output(AttemptListOut)
def exam_attempts(exam_id):
    """Every attempt with start, deadline, submission, IP, device, incidents (EXM-10)."""
    from lms.content.service import course_for_viewer

    user = current_auth().user
    exam, course = service.get_exam(exam_id, user)
    course_for_viewer(course.id, user)
    return {"attempts": service.exam_attempts(exam)}


# --- proctoring exceptions (admin) --------------------------------------------------------------

@bp.post("/exams/<int:exam_id>/exceptions")
@roles_required("admin")
@bp.input(ExceptionIn, arg_name="body")
@bp.output(ExceptionOut, status_code=201)
def grant_exception(exam_id, body):
    """A documented exception to the duplicate IP/device rule for this exam (e.g. a
    supervised test centre); logged with its reason (EXM-9)."""
    user = current_auth().user
    exam, _course = service.exam_for_manager(exam_id, user)
    row = proctoring.grant_exception(exam, user, **body)
    db.session.commit()
    return proctoring.exception_dict(row)


@bp.get("/exams/<int:exam_id>/exceptions")
@roles_required("admin", "instructor", "inspector")
@bp.output(ExceptionListOut)
def list_exceptions(exam_id):
    from lms.content.service import course_for_viewer

    user = current_auth().user
    exam, course = service.get_exam(exam_id, user)
    course_for_viewer(course.id, user)
    return {"exceptions": [proctoring.exception_dict(r) for r in proctoring.list_exceptions(exam.id)]}


@bp.delete("/exams/<int:exam_id>/exceptions/<int:exception_id>")
@roles_required("admin")
@bp.output(ExceptionOut)
def revoke_exception(exam_id, exception_id):
    user = current_auth().user
    exam, _course = service.exam_for_manager(exam_id, user)
    row = proctoring.revoke_exception(exam, user, exception_id)
    db.session.commit()
    return proctoring.exception_dict(row)


# --- attempts -------------------------------------------------------------------------------------

@bp.post("/exams/<int:exam_id>/attempts")
@roles_required("learner")
@bp.input(AttemptIn, arg_name="body")
@bp.output(AttemptOut, status_code=201)
def start_attempt(exam_id, body):
    """Start the exam (201) or resume the learner's running attempt (200), after a fresh
    TOTP code (401 ``invalid_otp``, EXM-8). 403 ``duplicate_ip`` / ``duplicate_device``
    when another learner's attempt in this exam used the address, or one in any exam runs
    from it now (EXM-9); 403 ``seb_required``; 409 ``exam_not_open`` outside the window;
    409 ``attempt_closed`` once the learner's attempt is over."""
    url, header = _seb()
    out, created = service.start_attempt(current_auth().user, exam_id, body["otp"], ip=client_ip(),
                                         device=device_id(), url=url, seb_header=header)
    # The service built exactly AttemptOut's fields with their JSON types (see
    # tests/test_exams.py): answered as they are, without a second pass through the schema
    # (200 learners start at once; the schema's dump was a tenth of a start's CPU).
    resp = current_app.json.response(out)
    resp.status_code = 201 if created else 200
    return resp


@bp.get("/attempts/<int:attempt_id>")
@roles_required()
@bp.output(AttemptOut)
def get_attempt(attempt_id):
    """The attempt with its evidence summary: start, deadline, submission, IP, device
    (EXM-10). Learners see their own (no scoring keys); staff, admins, inspectors any."""
    user = current_auth().user
    attempt, _exam, _course = service.attempt_for(attempt_id, user)
    return service.attempt_detail(attempt, user)


class DrawItemOut(Schema):
    item_id = fields.Integer()
    choice_order = fields.List(fields.Integer(), allow_none=True)


class DrawCheckOut(Schema):
    attempt_id = fields.Integer()
    seed = fields.String()
    matches = fields.Boolean()
    stored = fields.List(fields.Nested(DrawItemOut))
    reproduced = fields.List(fields.Nested(DrawItemOut))


@bp.get("/attempts/<int:attempt_id>/draw-check")
@roles_required("admin", "instructor", "inspector")
@bp.output(DrawCheckOut)
def draw_check(attempt_id):
    """EXM-3: recompute the attempt's random draw from its stored seed and compare it with
    the items and choice orders it showed (for inspectors)."""
    attempt, _exam, _course = service.attempt_for(attempt_id, current_auth().user)
    return service.draw_check(attempt)


@bp.put("/attempts/<int:attempt_id>/answers/<int:item_id>")
@roles_required("learner")
@bp.input(AnswerIn, arg_name="body")
@bp.output(AnswerOut)
def save_answer(attempt_id, item_id, body):
    """Autosave an answer; durable once answered 200. 409 ``attempt_closed`` after the
    deadline or submission; 404 for an item not in the attempt."""
    return service.save_answer(current_auth().user, attempt_id, item_id, body["answer"],
                               ip=client_ip(), device=device_id(), seb=_seb())


@bp.post("/attempts/<int:attempt_id>/submit")
@roles_required("learner")
@bp.output(SubmitOut)
def submit_attempt(attempt_id):
    """Submit; objective items are scored at once (essays wait for the instructor)."""
    return service.submit_attempt(current_auth().user, attempt_id, ip=client_ip(), device=device_id(), seb=_seb())


@bp.post("/attempts/<int:attempt_id>/incidents")
@roles_required("learner")
@bp.input(IncidentIn, arg_name="body")
@bp.output(IncidentOut, status_code=201)
def record_incident(attempt_id, body):
    """The lockdown page reports an incident (fullscreen exit, blur, copy, paste, …)."""
    return service.record_incident(current_auth().user, attempt_id, body["kind"], body.get("detail"),
                                   ip=client_ip(), device=device_id())


@bp.get("/attempts/<int:attempt_id>/events")
@roles_required("admin", "instructor", "ta", "inspector")
@bp.output(EventListOut)
def attempt_events(attempt_id):
    """The attempt's exam evidence, in order (EXM-10, REC-1)."""
    attempt, _exam, _course = service.attempt_for(attempt_id, current_auth().user)
    return {"events": service.attempt_events(attempt)}
