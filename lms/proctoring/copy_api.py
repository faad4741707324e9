"""JSON API: copied-answer detection reports (EXM-9).

``GET /api/v1/exams/{id}/similarity`` — the latest report; ``POST
/api/v1/exams/{id}/similarity/run`` — queue a new run (202), or with ``?sync=1`` (admins
only) run it inline. The institution's admins and the course's instructors; others 403,
an unknown exam 404. A run needs the exam closed (409 ``exam_not_closed`` before).
"""
from __future__ import annotations

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Range

from lms import jobs
from lms.errors import ApiError, forbidden
from lms.proctoring import copydetect
from lms.security import current_auth, roles_required

bp = APIBlueprint("copy_api", __name__, url_prefix="/api/v1", tag="Proctoring")

ROLES = ("admin", "instructor")
MAX_LIMIT = 5000


class SimilarityReportQuery(Schema):
    limit = fields.Integer(load_default=500, validate=Range(min=1, max=MAX_LIMIT))


class SimilarityRunQuery(Schema):
    sync = fields.Boolean(load_default=False)


class SimilarityLearnerOut(Schema):
    id = fields.Integer()
    username = fields.String(allow_none=True)


class SimilarityRunOut(Schema):
    id = fields.Integer()
    status = fields.String()
    started_at = fields.String()
    finished_at = fields.String(allow_none=True)
    answers = fields.Integer()
    candidate_pairs = fields.Integer()
    error = fields.String(allow_none=True)
    pairs = fields.Integer()


class SimilarPairOut(Schema):
    rank = fields.Integer()
    id = fields.Integer()
    kind = fields.String(metadata={"description": "text | objective_wrong"})
    item_id = fields.Integer()
    item_kind = fields.String(allow_none=True)
    prompt = fields.String()
    score = fields.Float()
    attempt_a = fields.Integer()
    attempt_b = fields.Integer()
    learner_a = fields.Nested(SimilarityLearnerOut)
    learner_b = fields.Nested(SimilarityLearnerOut)
    answer_a = fields.Raw(allow_none=True)
    answer_b = fields.Raw(allow_none=True)
    passages = fields.Raw(metadata={"description": '{"a": [[start, end], ...], "b": [...]}: character offsets '
                                                   "into answer_a and answer_b"})
    detail = fields.Raw(metadata={"description": "text: jaccard, containment, coverage, longest; "
                                                 "objective_wrong: value, value_text, chosen_by, answered, "
                                                 "shared_items"})


class SimilarityReportOut(Schema):
    exam_id = fields.Integer()
    run = fields.Nested(SimilarityRunOut, allow_none=True)
    latest_run = fields.Nested(SimilarityRunOut, allow_none=True)
    total = fields.Integer()
    pairs = fields.List(fields.Nested(SimilarPairOut))


@bp.get("/exams/<int:exam_id>/similarity")
@roles_required(*ROLES)
@bp.input(SimilarityReportQuery, location="query", arg_name="query")
@bp.output(SimilarityReportOut)
def similarity_report(exam_id, query):
    """EXM-9: the latest copied-answer report of the exam — suspicious pairs ranked (text
    pairs by score, then identical wrong answers), with both answers and the overlapping
    passages. ``run`` is null until a run has finished; ``latest_run`` shows a running or
    failed one."""
    copydetect.exam_for_manager(exam_id, current_auth().user)
    return copydetect.latest_report(exam_id, limit=query["limit"])


@bp.post("/exams/<int:exam_id>/similarity/run")
@roles_required(*ROLES)
@bp.input(SimilarityRunQuery, location="query", arg_name="query")
@bp.doc(responses={202: "queued", 200: "run inline (sync=1, admins)", 409: "the exam has not closed"})
def run_similarity(exam_id, query):
    """EXM-9: run copied-answer detection again (a new run; earlier runs stay). Queued for
    the worker (202 with the job id); ``?sync=1`` runs it inline and answers the summary
    (admins only)."""
    user = current_auth().user
    exam = copydetect.exam_for_manager(exam_id, user)
    if query["sync"] and user.role != "admin":
        raise forbidden("only an administrator may run the detection inline")
    if not copydetect.exam_closed(exam):
        raise ApiError(409, "exam_not_closed", "copied-answer detection runs once the exam has closed")
    if query["sync"]:
        return copydetect.run_copy_detection(exam.id), 200
    job = jobs.enqueue(copydetect.copy_detection_job, exam.id)
    return {"queued": True, "job_id": job.id, "exam_id": exam.id}, 202
