"""JSON API of grading (GRD-1…7), objections, corrections, NILE reports (ENR-6, GRD-7) and
course evaluation (CRS-15).

Grades
- ``GET /api/v1/courses/{id}/grades`` (API.md): staff, admins, inspectors → every learner,
  the scheme and the GRD-2 distribution check; a learner → their own grade and components
  (from the course end, once proposed) and their objections
- ``POST /api/v1/courses/{id}/grades/propose`` (instructor, admin) → the sheet
- ``PUT /api/v1/courses/{id}/grades/{learner_id}`` ``{"grade", "reason"}`` → the sheet;
  422 GRD-3/ATT-6 (fixed F), EXM-13 (no grade), EXM-11 (above B+), GRD-6 (period over)
- ``PUT /api/v1/courses/{id}/grading-scheme`` ``{"scheme": "relative"|"absolute"|"pass_fail"}``; 422 GRD-2
- ``POST /api/v1/courses/{id}/grades/finalize`` → the sheet; 422 GRD-2 / GRD-6; 409
- ``GET /api/v1/courses/{id}/grades/history?learner_id=``
- ``PUT /api/v1/courses/{id}/component-scores/{learner_id}`` ``{"component", "score", "note"}`` → 201
Objections (GRD-6)
- ``POST /api/v1/courses/{id}/objections`` ``{"message"}`` (learner) → 201; 422 GRD-6
- ``GET /api/v1/courses/{id}/objections``; ``POST /api/v1/objections/{id}/answer`` ``{"answer", "grade"}``
Corrections (GRD-7)
- ``POST /api/v1/courses/{id}/grade-corrections`` ``{"learner_id", "grade", "reasons", "evidence"}`` → 201
- ``GET /api/v1/grade-corrections?status=``; ``POST /api/v1/grade-corrections/{id}/decision`` ``{"approve", "comment"}``
NILE reports (ENR-6, GRD-7)
- ``GET /api/v1/courses/{id}/nile-reports`` → due dates, states, generated reports
- ``POST /api/v1/courses/{id}/nile-reports`` ``{"kind", "format"}`` → 201 (id, sha256, rows)
- ``GET /api/v1/nile-reports/{id}/download``
Evaluation (CRS-15)
- ``GET|POST /api/v1/courses/{id}/evaluation`` (learner) ``{"answers": {...}, "comment"}``
- ``GET /api/v1/courses/{id}/evaluation/results``
"""
from __future__ import annotations

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Length, OneOf, Range
from flask import Response

from lms.content.models import Course
from lms.db import db
from lms.grading import evaluation, reports, rules, service
from lms.schemas import DecisionIn, FiniteFloat, StrictInt
from lms.security import current_auth, roles_required

bp = APIBlueprint("grading_api", __name__, url_prefix="/api/v1", tag="Grades")

ALL_GRADES = (*rules.GRADES, rules.PASS, rules.FAIL)


class GradingGradeIn(Schema):
    grade = fields.String(required=True, validate=OneOf(ALL_GRADES))
    reason = fields.String(load_default=None, allow_none=True, validate=Length(0, service.MAX_TEXT))


class GradingSchemeIn(Schema):
    scheme = fields.String(required=True, validate=OneOf(rules.SCHEMES))


class GradingComponentIn(Schema):
    component = fields.String(required=True, validate=OneOf(rules.ENTERED_COMPONENTS))
    score = FiniteFloat(required=True, validate=Range(min=0, max=100))
    note = fields.String(load_default=None, allow_none=True, validate=Length(0, service.MAX_TEXT))


class GradingObjectionIn(Schema):
    message = fields.String(required=True, validate=Length(1, service.MAX_TEXT))


class GradingAnswerIn(Schema):
    answer = fields.String(required=True, validate=Length(1, service.MAX_TEXT))
    grade = fields.String(load_default=None, allow_none=True, validate=OneOf(ALL_GRADES))


class GradingCorrectionIn(Schema):
    learner_id = StrictInt(required=True, validate=Range(min=1, max=2**31 - 1))
    grade = fields.String(required=True, validate=OneOf(ALL_GRADES))
    reasons = fields.String(required=True, validate=Length(1, service.MAX_TEXT))
    evidence = fields.String(required=True, validate=Length(1, 20000))


class GradingStatusQuery(Schema):
    status = fields.String(load_default=None, validate=OneOf(("pending", "approved", "rejected")))


class GradingHistoryQuery(Schema):
    learner_id = fields.Integer(load_default=None, validate=Range(min=1, max=2**31 - 1))


class GradingReportIn(Schema):
    kind = fields.String(required=True, validate=OneOf(reports.KINDS))
    format = fields.String(required=True, validate=OneOf(reports.FORMATS))


class GradingAnswers(Schema):
    goals = StrictInt(required=True, validate=Range(min=1, max=5))
    content = StrictInt(required=True, validate=Range(min=1, max=5))
    instructor = StrictInt(required=True, validate=Range(min=1, max=5))
    evaluation = StrictInt(required=True, validate=Range(min=1, max=5))
    overall = StrictInt(required=True, validate=Range(min=1, max=5))


class GradingEvaluationIn(Schema):
    answers = fields.Nested(GradingAnswers, required=True)
    comment = fields.String(load_default=None, allow_none=True, validate=Length(0, evaluation.MAX_COMMENT))


def _me():
    return current_auth().user


def _sheet(course_id: int) -> dict:
    return service.sheet_dict(db.session.get(Course, course_id))


# --- grades ---------------------------------------------------------------------------------

@bp.get("/courses/<int:course_id>/grades")
@roles_required()
def get_grades(course_id):
    """API.md: ``{"grades": [{"learner_id", "score", "grade", "points", ...}], "finalized"}``."""
    out = service.grades_for(course_id, _me())
    db.session.commit()  # the sheet row may have been created with its default scheme
    return out


@bp.post("/courses/<int:course_id>/grades/propose")
@roles_required("instructor", "admin")
def propose(course_id):
    """GRD-2/GRD-4: compute scores and store the proposed grades."""
    service.propose(course_id, _me())
    db.session.commit()
    return _sheet(course_id)


@bp.put("/courses/<int:course_id>/grades/<int:learner_id>")
@roles_required("instructor", "admin")
@bp.input(GradingGradeIn, arg_name="body")
def adjust(course_id, learner_id, body):
    service.adjust(course_id, learner_id, _me(), grade=body["grade"], reason=body["reason"])
    db.session.commit()
    return _sheet(course_id)


@bp.put("/courses/<int:course_id>/grading-scheme")
@roles_required("instructor", "admin")
@bp.input(GradingSchemeIn, arg_name="body")
def set_scheme(course_id, body):
    service.set_scheme(course_id, _me(), body["scheme"])
    db.session.commit()
    return _sheet(course_id)


@bp.post("/courses/<int:course_id>/grades/finalize")
@roles_required("instructor", "admin")
def finalize(course_id):
    """GRD-6: after the objection period; GRD-2: refused while the distribution breaks the rule."""
    service.finalize(course_id, _me())
    db.session.commit()
    return _sheet(course_id)


@bp.get("/courses/<int:course_id>/grades/history")
@roles_required("instructor", "ta", "admin", "inspector")
@bp.input(GradingHistoryQuery, location="query", arg_name="query")
def grade_history(course_id, query):
    return {"events": service.history(course_id, _me(), query["learner_id"])}


@bp.put("/courses/<int:course_id>/component-scores/<int:learner_id>")
@roles_required("instructor", "admin")
@bp.input(GradingComponentIn, arg_name="body")
def record_component(course_id, learner_id, body):
    """Assignments / participation score (0–100), appended with who and when (GRD-1)."""
    row = service.record_component(course_id, learner_id, _me(), component=body["component"],
                                   score=body["score"], note=body["note"])
    db.session.commit()
    return {"id": row.id, "learner_id": row.learner_id, "component": row.component, "score": row.score}, 201


# --- objections (GRD-6) ---------------------------------------------------------------------

@bp.post("/courses/<int:course_id>/objections")
@roles_required("learner")
@bp.input(GradingObjectionIn, arg_name="body")
def object_to_grade(course_id, body):
    o = service.object_to_grade(course_id, _me(), body["message"])
    db.session.commit()
    return service.objection_dict(o), 201


@bp.get("/courses/<int:course_id>/objections")
@roles_required()
def list_objections(course_id):
    return {"objections": service.list_objections(course_id, _me())}


@bp.post("/objections/<int:objection_id>/answer")
@roles_required("instructor", "admin")
@bp.input(GradingAnswerIn, arg_name="body")
def answer_objection(objection_id, body):
    o = service.answer_objection(objection_id, _me(), answer=body["answer"], grade=body["grade"])
    db.session.commit()
    return service.objection_dict(o)


# --- corrections (GRD-7) --------------------------------------------------------------------

@bp.post("/courses/<int:course_id>/grade-corrections")
@roles_required("instructor", "admin")
@bp.input(GradingCorrectionIn, arg_name="body")
def apply_correction(course_id, body):
    c = service.apply_correction(course_id, _me(), **body)
    db.session.commit()
    return service.correction_dict(c), 201


@bp.get("/grade-corrections")
@roles_required("instructor", "admin", "inspector")
@bp.input(GradingStatusQuery, location="query", arg_name="query")
def list_corrections(query):
    return {"corrections": [service.correction_dict(c) for c in service.list_corrections(_me(), status=query["status"])]}


@bp.post("/grade-corrections/<int:correction_id>/decision")
@roles_required("admin")
@bp.input(DecisionIn, arg_name="body")
def decide_correction(correction_id, body):
    c = service.decide_correction(correction_id, _me(), approve=body["approve"], comment=body["comment"])
    db.session.commit()
    return service.correction_dict(c)


# --- NILE reports (ENR-6, GRD-7) ------------------------------------------------------------------

@bp.get("/courses/<int:course_id>/nile-reports")
@roles_required("instructor", "ta", "admin", "inspector")
def list_reports(course_id):
    course = reports.course_for_reports(course_id, _me())
    return {"course_id": course.id, "due": reports.due_state(course),
            "reports": [reports.report_dict(r) for r in reports.list_reports(course)],
            "columns": {"course_status": reports.STATUS_COLUMNS, "grades": reports.GRADE_COLUMNS}}


@bp.post("/courses/<int:course_id>/nile-reports")
@roles_required("instructor", "admin")
@bp.input(GradingReportIn, arg_name="body")
def generate_report(course_id, body):
    r = reports.generate(course_id, _me(), kind=body["kind"], fmt=body["format"])
    db.session.commit()
    return reports.report_dict(r), 201


MIMETYPES = {"csv": "text/csv; charset=utf-8",
             "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@bp.get("/nile-reports/<int:report_id>/download")
@roles_required("instructor", "ta", "admin", "inspector")
def download_report(report_id):
    """The stored file, byte for byte (its SHA-256 is in the listing and in ``X-Content-SHA256``)."""
    r = reports.get_report(report_id, _me())
    course = db.session.get(Course, r.course_id)
    return Response(r.content, mimetype=MIMETYPES[r.fmt], headers={
        "Content-Disposition": f'attachment; filename="{reports.filename(r, course)}"',
        "X-Content-SHA256": r.sha256, "Cache-Control": "no-store"})


# --- evaluation (CRS-15) -------------------------------------------------------------------------

@bp.get("/courses/<int:course_id>/evaluation")
@roles_required("learner")
def get_evaluation(course_id):
    return evaluation.learner_state(course_id, _me())


@bp.post("/courses/<int:course_id>/evaluation")
@roles_required("learner")
@bp.input(GradingEvaluationIn, arg_name="body")
def submit_evaluation(course_id, body):
    evaluation.submit(course_id, _me(), body["answers"], body["comment"])
    db.session.commit()
    return {"submitted": True}, 201


@bp.get("/courses/<int:course_id>/evaluation/results")
@roles_required("instructor", "ta", "admin", "inspector")
def evaluation_results(course_id):
    return evaluation.results(course_id, _me())
