"""JSON API of the complaint (신문고) and 1:1 counselling channels (REC-5).

- ``POST /api/v1/complaints`` (learners) ``{"kind": "attendance"|"grade"|"counselling",
  "subject", "body", "course_id"?, "lesson_id"?, "exam_id"?}`` → 201 the thread
- ``GET /api/v1/complaints?status=&course_id=&kind=`` → ``{"complaints": [...]}``: a learner's
  own; a course's staff, those of their courses; administrators and inspectors, all of the
  institution
- ``GET /api/v1/complaints/{id}`` → the thread with ``messages`` (append-only)
- ``POST /api/v1/complaints/{id}/messages`` ``{"body"}`` → 201 (the learner, the course's
  staff, administrators; inspectors 403; a closed thread 409 ``complaint_closed``)
- ``POST /api/v1/complaints/{id}/close`` ``{"body"?}`` → 200
Messages are never edited or deleted: there is no such endpoint.
"""
from __future__ import annotations

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Length, OneOf, Range

from lms.audit import complaints
from lms.audit.models_compliance import COMPLAINT_KINDS, COMPLAINT_STATUSES
from lms.net import client_ip
from lms.schemas import StrictInt
from lms.security import current_auth, roles_required

bp = APIBlueprint("audit_complaints_api", __name__, url_prefix="/api/v1", tag="Complaints and counselling")

MAX_ID = 2**31 - 1


class ComplaintIn(Schema):
    kind = fields.String(required=True, validate=OneOf(COMPLAINT_KINDS))
    subject = fields.String(required=True, validate=Length(1, complaints.MAX_SUBJECT_CHARS))
    body = fields.String(required=True, validate=Length(1, complaints.MAX_BODY_CHARS))
    course_id = StrictInt(load_default=None, allow_none=True, validate=Range(1, MAX_ID))
    lesson_id = StrictInt(load_default=None, allow_none=True, validate=Range(1, MAX_ID))
    exam_id = StrictInt(load_default=None, allow_none=True, validate=Range(1, MAX_ID))


class MessageIn(Schema):
    body = fields.String(required=True, validate=Length(1, complaints.MAX_BODY_CHARS))


class CloseIn(Schema):
    body = fields.String(load_default=None, allow_none=True, validate=Length(0, complaints.MAX_BODY_CHARS))


class ListQuery(Schema):
    status = fields.String(load_default=None, validate=OneOf(COMPLAINT_STATUSES))
    kind = fields.String(load_default=None, validate=OneOf(COMPLAINT_KINDS))
    course_id = fields.Integer(load_default=None, validate=Range(1, MAX_ID))


@bp.post("/complaints")
@roles_required("learner")
@bp.input(ComplaintIn, arg_name="body")
def file_complaint(body):
    user = current_auth().user
    c = complaints.file_complaint(user, kind=body["kind"], subject=body["subject"], body=body["body"],
                                  course_id=body["course_id"], lesson_id=body["lesson_id"], exam_id=body["exam_id"],
                                  ip=client_ip())
    return complaints.complaint_dict(c, with_messages=True, viewer=user), 201


@bp.get("/complaints")
@roles_required()
@bp.input(ListQuery, location="query", arg_name="query")
def list_complaints(query):
    user = current_auth().user
    rows = complaints.visible(user, status=query["status"], course_id=query["course_id"], kind=query["kind"])
    return {"complaints": [complaints.complaint_dict(c, viewer=user) for c in rows]}


@bp.get("/complaints/<int:complaint_id>")
@roles_required()
def get_complaint(complaint_id):
    user = current_auth().user
    return complaints.complaint_dict(complaints.get_complaint(complaint_id, user), with_messages=True, viewer=user)


@bp.post("/complaints/<int:complaint_id>/messages")
@roles_required()
@bp.input(MessageIn, arg_name="body")
def reply(complaint_id, body):
    user = current_auth().user
    m = complaints.reply(complaint_id, user, body["body"], client_ip())
    c = complaints.get_complaint(complaint_id, user)
    return {"message_id": m.id, **complaints.complaint_dict(c, with_messages=True, viewer=user)}, 201


@bp.post("/complaints/<int:complaint_id>/close")
@roles_required()
@bp.input(CloseIn, arg_name="body")
def close(complaint_id, body):
    user = current_auth().user
    c = complaints.close(complaint_id, user, body["body"], client_ip())
    return complaints.complaint_dict(c, with_messages=True, viewer=user)
