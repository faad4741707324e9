"""JSON API: make-up exams (EXM-11), item analysis and the bank report (EXM-5), cheating
findings (EXM-13) and the essay grading queue (EXM-12).

Make-up exams
- ``POST /api/v1/exams/{id}/makeup-requests`` (multipart: ``reason``, ``detail``, ``files``
  one to five PDF/JPEG/PNG) → 201; 409 ``exam_not_closed`` / ``attempt_exists`` /
  ``already_requested``; 422 EXM-11 for a quiz
- ``GET /api/v1/exams/{id}/makeup-requests?status=``, ``GET /api/v1/courses/{id}/makeup-requests?status=``
  (learners: their own), ``GET /api/v1/makeup-requests`` (the caller's own, every course)
- ``GET /api/v1/makeup-requests/{id}``; ``GET /api/v1/makeup-requests/{id}/evidence/{evidence_id}``
- ``POST /api/v1/makeup-requests/{id}/decision`` ``{"approve": bool, "comment"}`` — the
  make-up attempt is then started with ``POST /api/v1/exams/{id}/attempts`` within 5 days

Item analysis
- ``GET /api/v1/exams/{id}/item-analysis``; ``POST`` recomputes (instructor, admin)
- ``GET /api/v1/courses/{id}/bank-report?since=&until=`` (dates ``YYYY-MM-DD`` in KST —
  ``until`` inclusive — or ISO times with an offset)

Cheating and grading
- ``POST /api/v1/attempts/{id}/cheating-findings`` ``{"kind", "description", "evidence"}``;
  ``GET /api/v1/courses/{id}/cheating-findings``
- ``GET /api/v1/courses/{id}/grading-queue?exam_id=``;
  ``PUT /api/v1/attempts/{id}/items/{item_id}/grade`` ``{"points", "comment"}``
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Length, OneOf, Range
from flask import request
from marshmallow import ValidationError

from lms import uploads
# The decision and evidence shapes of applications are those of excused absences (ATT-5).
from lms.schemas import DecisionIn, EvidenceOut
from lms.content.service import get_course
from lms.exams import analysis, findings, grading, makeup
from lms.exams.analysis import kst_start
from lms.net import client_ip
from lms.schemas import FiniteFloat
from lms.security import current_auth, roles_required

bp = APIBlueprint("exam_api", __name__, url_prefix="/api/v1", tag="Items, exams and attempts")

MAX_ID = 2**31 - 1

# The application's body carries evidence files: its own size limit replaces the app's
# (LMS_MAX_BODY_BYTES) before anything reads the body.
UPLOAD_ENDPOINTS = {"exam_api.apply_makeup", "exam_pages.makeup_apply_page"}


def allow_evidence_uploads(endpoint, _values) -> None:
    if endpoint in UPLOAD_ENDPOINTS and request.method == "POST":
        request.max_content_length = makeup.max_request_bytes()


bp.url_value_preprocessor(allow_evidence_uploads)


# --- make-up exams (EXM-11) ------------------------------------------------------------------

class MakeupIn(Schema):
    reason = fields.String(required=True, validate=OneOf(makeup.REASONS))
    detail = fields.String(load_default=None, validate=Length(0, makeup.MAX_DETAIL_CHARS))
    files = fields.List(fields.File(), required=True, validate=Length(1, makeup.MAX_EVIDENCE_FILES))


class MakeupStatusQuery(Schema):
    status = fields.String(load_default=None, validate=OneOf(makeup.STATUSES))


class MakeupOut(Schema):
    id = fields.Integer()
    exam_id = fields.Integer()
    exam_title = fields.String()
    exam_kind = fields.String()
    course_id = fields.Integer()
    learner_id = fields.Integer()
    reason = fields.String()
    reason_label = fields.String()
    detail = fields.String(allow_none=True)
    status = fields.String()
    created_at = fields.String()
    evidence = fields.List(fields.Nested(EvidenceOut))
    decided_by = fields.Integer(allow_none=True)
    decided_at = fields.String(allow_none=True)
    decision_comment = fields.String(allow_none=True)
    window_opens_at = fields.String(allow_none=True)
    window_closes_at = fields.String(allow_none=True)
    window = fields.String(allow_none=True)
    attempt_id = fields.Integer(allow_none=True)
    grade_cap = fields.String(allow_none=True)


class MakeupEntryOut(MakeupOut):
    """An application in a list (its own class: nested and top-level uses of one schema
    class would be registered twice in the OpenAPI document)."""


class MakeupListOut(Schema):
    makeup_requests = fields.List(fields.Nested(MakeupEntryOut))


@bp.post("/exams/<int:exam_id>/makeup-requests")
@roles_required("learner")
@bp.input(MakeupIn, location="form_and_files", arg_name="body")
@bp.output(MakeupOut, status_code=201)
def apply_makeup(exam_id, body):
    """Apply for a make-up exam (EXM-11) of a regular exam that closed without your
    attempt: a reason, a detail and evidence files (PDF, JPEG, PNG; 10 MB each by default)."""
    files = [uploads.Upload(f.filename or "", f.stream) for f in body["files"]]
    req = makeup.apply(exam_id, current_auth().user, reason=body["reason"], detail=body["detail"], files=files,
                       ip=client_ip())
    return makeup.request_dict(req)


@bp.get("/exams/<int:exam_id>/makeup-requests")
@roles_required()
@bp.input(MakeupStatusQuery, location="query", arg_name="query")
@bp.output(MakeupListOut)
def exam_makeup_requests(exam_id, query):
    """The exam's applications: every one for staff, admins and inspectors; a learner's own."""
    user = current_auth().user
    exam, course = _exam(exam_id)
    rows = makeup.list_requests(course, user, exam_id=exam.id, status=query["status"])
    return {"makeup_requests": [makeup.request_dict(r) for r in rows]}


@bp.get("/courses/<int:course_id>/makeup-requests")
@roles_required()
@bp.input(MakeupStatusQuery, location="query", arg_name="query")
@bp.output(MakeupListOut)
def course_makeup_requests(course_id, query):
    user = current_auth().user
    rows = makeup.list_requests(get_course(course_id, user), user, status=query["status"])
    return {"makeup_requests": [makeup.request_dict(r) for r in rows]}


@bp.get("/makeup-requests")
@roles_required("learner")
@bp.output(MakeupListOut)
def my_makeup_requests():
    """The caller's own applications in every course."""
    return {"makeup_requests": [makeup.request_dict(r) for r in makeup.my_requests(current_auth().user)]}


@bp.get("/makeup-requests/<int:request_id>")
@roles_required()
@bp.output(MakeupOut)
def get_makeup_request(request_id):
    return makeup.request_dict(makeup.get_request(request_id, current_auth().user))


@bp.post("/makeup-requests/<int:request_id>/decision")
@roles_required("instructor", "admin")
@bp.input(DecisionIn, arg_name="body")
@bp.output(MakeupOut)
def decide_makeup(request_id, body):
    """Approve or reject (an instructor of the course or an admin). An approval opens the
    make-up window for 5 days (EXM-11); 409 ``already_decided`` the second time."""
    req = makeup.decide(request_id, current_auth().user, approve=body["approve"], comment=body["comment"])
    return makeup.request_dict(req)


@bp.get("/makeup-requests/<int:request_id>/evidence/<int:evidence_id>")
@roles_required()
def get_makeup_evidence(request_id, evidence_id):
    """An evidence file as uploaded (its SHA-256 is in the application)."""
    req = makeup.get_request(request_id, current_auth().user)
    return uploads.send_evidence(makeup.evidence_row(req, evidence_id))


def _exam(exam_id: int):
    from lms.exams.service import exam_for_viewer

    return exam_for_viewer(exam_id, current_auth().user)


# --- item analysis (EXM-5) -------------------------------------------------------------------

class AnalysisItemOut(Schema):
    item_id = fields.Integer()
    difficulty = fields.String()
    kind = fields.String()
    prompt = fields.String()
    points = fields.Float()
    drawn = fields.Integer()
    answered = fields.Integer()
    correct_rate = fields.Float(allow_none=True)
    discrimination = fields.Float(allow_none=True)
    flagged = fields.Boolean()
    flag_reason = fields.String(allow_none=True)
    active = fields.Boolean()
    retired_at = fields.String(allow_none=True)
    replaced_by = fields.Integer(allow_none=True)
    computed_at = fields.String()


class AnalysisOut(Schema):
    exam_id = fields.Integer()
    course_id = fields.Integer()
    title = fields.String()
    kind = fields.String()
    regular = fields.Boolean()
    closed = fields.Boolean()
    computed_at = fields.String(allow_none=True)
    bounds = fields.Dict(keys=fields.String(), values=fields.Float())
    flagged = fields.Integer()
    items = fields.List(fields.Nested(AnalysisItemOut))


class TimeOrDate(fields.Field):
    """``YYYY-MM-DD`` (a KST calendar date) or an ISO 8601 time with an offset, in 2000–2999."""

    def _deserialize(self, value, attr, data, **kwargs):
        problem = "A date YYYY-MM-DD or an ISO 8601 time with an offset, in 2000–2999."
        if not isinstance(value, str) or len(value) > 40:
            raise ValidationError(problem)
        try:
            parsed = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError(problem) from exc
        if (isinstance(parsed, datetime) and parsed.tzinfo is None) or not 2000 <= parsed.year <= 2999:
            raise ValidationError(problem)
        return parsed


class BankReportQuery(Schema):
    since = TimeOrDate(load_default=None)
    until = TimeOrDate(load_default=None)


class BankLevelOut(Schema):
    difficulty = fields.String()
    at_start = fields.Integer()
    retired = fields.Integer()
    replaced = fields.Integer()
    replacements = fields.Integer()
    added = fields.Integer()
    at_end = fields.Integer()
    replaced_share = fields.Float(allow_none=True)


class BankReportOut(Schema):
    course_id = fields.Integer()
    since = fields.String()
    until = fields.String()
    basis = fields.String()
    levels = fields.List(fields.Nested(BankLevelOut))
    total = fields.Nested(BankLevelOut)


@bp.get("/exams/<int:exam_id>/item-analysis")
@roles_required("admin", "instructor", "ta", "inspector")
@bp.output(AnalysisOut)
def get_item_analysis(exam_id):
    """Per item of a regular exam (computed after it closes): times drawn, answered,
    correct rate, discrimination (top vs bottom 27%), flagged for replacement (EXM-5)."""
    exam, _course = analysis.exam_for_reader(exam_id, current_auth().user)
    return analysis.exam_analysis(exam)


@bp.post("/exams/<int:exam_id>/item-analysis")
@roles_required("admin", "instructor")
@bp.output(AnalysisOut)
def recompute_item_analysis(exam_id):
    """Recompute the analysis now (after the window closed; regular exams only)."""
    exam = analysis.recompute(exam_id, current_auth().user)
    return analysis.exam_analysis(exam)


def _period_bound(value, *, end: bool) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return kst_start(value + timedelta(days=1) if end else value)


@bp.get("/courses/<int:course_id>/bank-report")
@roles_required("admin", "instructor", "ta", "inspector")
@bp.input(BankReportQuery, location="query", arg_name="query")
@bp.output(BankReportOut)
def bank_report(course_id, query):
    """EXM-5: per difficulty level, the bank at the start of the period, items retired and
    added as replacements in it, the share replaced. Default period: since the start of
    the previous course with the same code (the last term), else of this course; until now."""
    course = analysis.course_for_reader(course_id, current_auth().user)
    since = _period_bound(query["since"], end=False)
    until = _period_bound(query["until"], end=True)
    return analysis.bank_replacement_report(course.id, since, until)


# --- cheating findings (EXM-13) ----------------------------------------------------------------

class FindingIn(Schema):
    kind = fields.String(required=True, validate=OneOf(findings.KINDS))
    description = fields.String(required=True, validate=Length(1, findings.MAX_DESCRIPTION_CHARS))
    evidence = fields.String(load_default=None, allow_none=True, validate=Length(0, findings.MAX_EVIDENCE_CHARS))


class FindingOut(Schema):
    id = fields.Integer()
    attempt_id = fields.Integer()
    exam_id = fields.Integer()
    course_id = fields.Integer()
    learner_id = fields.Integer()
    learner_username = fields.String(allow_none=True)
    learner_name = fields.String(allow_none=True)
    kind = fields.String()
    kind_label = fields.String()
    description = fields.String()
    evidence = fields.String(allow_none=True)
    found_by = fields.Integer()
    found_at = fields.String()


class FindingEntryOut(FindingOut):
    """A finding in a list (its own class, as ``MakeupEntryOut``)."""


class FindingListOut(Schema):
    findings = fields.List(fields.Nested(FindingEntryOut))


@bp.post("/attempts/<int:attempt_id>/cheating-findings")
@roles_required("admin", "instructor")
@bp.input(FindingIn, arg_name="body")
@bp.output(FindingOut, status_code=201)
def record_cheating_finding(attempt_id, body):
    """Record a cheating finding on an attempt (an instructor of the course or an admin):
    the learner gets no grade for the course (EXM-13). Findings are never changed."""
    f = findings.record_finding(attempt_id, current_auth().user, kind=body["kind"],
                                description=body["description"], evidence=body["evidence"])
    return findings.finding_dict(f)


@bp.get("/courses/<int:course_id>/cheating-findings")
@roles_required("admin", "instructor", "ta", "inspector")
@bp.output(FindingListOut)
def course_cheating_findings(course_id):
    course = findings.course_for_reader(course_id, current_auth().user)
    return {"findings": findings.findings_dicts(course)}


# --- essay grading (EXM-12) ----------------------------------------------------------------------

class QueueQuery(Schema):
    exam_id = fields.Integer(load_default=None, validate=Range(min=1, max=MAX_ID))


class EssayOut(Schema):
    item_id = fields.Integer()
    position = fields.Integer()
    prompt = fields.String()
    answer = fields.Raw(allow_none=True)
    answered_at = fields.String(allow_none=True)
    model_answer = fields.String(allow_none=True)
    rubric = fields.String(allow_none=True)
    points = fields.Float()
    awarded = fields.Float(allow_none=True)
    graded_by = fields.Integer(allow_none=True)
    graded_at = fields.String(allow_none=True)
    grader_comment = fields.String(allow_none=True)
    pending = fields.Boolean()


class QueueEntryOut(Schema):
    attempt_id = fields.Integer()
    exam_id = fields.Integer()
    exam_title = fields.String()
    exam_kind = fields.String()
    learner_id = fields.Integer()
    username = fields.String()
    name = fields.String(allow_none=True)
    submitted_at = fields.String()
    score = fields.Float(allow_none=True)
    is_makeup = fields.Boolean()
    cheating_found = fields.Boolean()
    pending = fields.Integer()
    essays = fields.List(fields.Nested(EssayOut))


class QueueOut(Schema):
    attempts = fields.List(fields.Nested(QueueEntryOut))


class GradeIn(Schema):
    points = FiniteFloat(required=True)
    comment = fields.String(load_default=None, allow_none=True, validate=Length(0, grading.MAX_COMMENT_CHARS))


class GradeOut(Schema):
    attempt_id = fields.Integer()
    item_id = fields.Integer()
    awarded = fields.Float()
    points = fields.Float()
    graded_by = fields.Integer()
    graded_at = fields.String()
    grader_comment = fields.String(allow_none=True)
    score = fields.Float(allow_none=True)
    needs_grading = fields.Boolean()


@bp.get("/courses/<int:course_id>/grading-queue")
@roles_required("admin", "instructor", "ta", "inspector")
@bp.input(QueueQuery, location="query", arg_name="query")
@bp.output(QueueOut)
def grading_queue(course_id, query):
    """Submitted attempts with essays to grade, each essay with its prompt, the learner's
    answer, the model answer and the rubric (EXM-12)."""
    course = grading.course_for_queue(course_id, current_auth().user)
    return {"attempts": grading.grading_queue(course, exam_id=query["exam_id"])}


@bp.put("/attempts/<int:attempt_id>/items/<int:item_id>/grade")
@roles_required("admin", "instructor")
@bp.input(GradeIn, arg_name="body")
@bp.output(GradeOut)
def grade_item(attempt_id, item_id, body):
    """Grade an essay: 0 ≤ points ≤ the item's points (400 otherwise), with a comment. The
    attempt's score is recomputed; grading its last essay clears ``needs_grading``."""
    return grading.grade_item(attempt_id, item_id, body["points"], body["comment"], current_auth().user)

