"""JSON API: Courses and content (API.md), staff, enrolments and syllabus."""
from __future__ import annotations

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError, validates_schema

from lms.content import service
from lms.db import db
from lms.enrolment import service as enrolment
from lms.schemas import StrictBool, StrictInt
from lms.security import current_auth, roles_required

bp = APIBlueprint("content_api", __name__, url_prefix="/api/v1", tag="Courses")


class CourseIn(Schema):
    code = fields.String(required=True, validate=Length(1, 32))
    title = fields.String(required=True, validate=Length(1, 200))
    credits = StrictInt(required=True)
    starts_on = fields.Date(required=True)
    weeks = StrictInt(required=True)
    capacity = StrictInt(required=True)
    practice = StrictBool(load_default=False)  # CRS-2: lab/practice/studio course
    accredited_capacity = StrictInt(load_default=None, allow_none=True)  # CRS-7


class CourseOut(Schema):
    id = fields.Integer()
    code = fields.String()
    title = fields.String()
    credits = fields.Integer()
    starts_on = fields.String()
    ends_on = fields.String()
    weeks = fields.Integer()
    capacity = fields.Integer()
    practice = fields.Boolean()
    accredited_capacity = fields.Integer(allow_none=True)
    status = fields.String()
    published_at = fields.String(allow_none=True)


class LessonIn(Schema):
    week = StrictInt(required=True)
    title = fields.String(required=True, validate=Length(1, 200))
    duration_seconds = StrictInt(validate=Range(min=1, max=24 * 3600))
    frames = StrictInt(validate=Range(min=1, max=10_000))
    instructor_intro = StrictBool(load_default=False)  # CRS-5

    @validates_schema
    def _one_kind(self, data, **kwargs):
        if ("duration_seconds" in data) == ("frames" in data):
            raise ValidationError("give exactly one of duration_seconds or frames")


class LessonOut(Schema):
    id = fields.Integer()
    course_id = fields.Integer()
    week = fields.Integer()
    position = fields.Integer()
    title = fields.String()
    kind = fields.String()
    duration_seconds = fields.Integer(allow_none=True)
    frames = fields.Integer(allow_none=True)
    units = fields.Integer()
    instructor_intro = fields.Boolean()
    has_media = fields.Boolean()
    opens_at = fields.String()
    attendance_deadline = fields.String()


class LessonListOut(Schema):
    lessons = fields.List(fields.Nested(LessonOut))


class PublishOut(Schema):
    warnings = fields.List(fields.Dict())


class StaffIn(Schema):
    user_id = StrictInt(required=True)
    role = fields.String(required=True, validate=OneOf(("instructor", "ta")))


class StaffOut(Schema):
    id = fields.Integer()
    course_id = fields.Integer()
    user_id = fields.Integer()
    role = fields.String()


class EnrollmentIn(Schema):
    user_id = StrictInt(required=True)
    syllabus_consent = StrictBool(load_default=False)  # ENR-2
    # An administrator's reason for a late or overriding registration (ENR-1), recorded.
    reason = fields.String(load_default=None, validate=Length(1, 500))


class EnrollmentOut(Schema):
    id = fields.Integer()
    course_id = fields.Integer()
    user_id = fields.Integer()
    section_id = fields.Integer(allow_none=True)
    status = fields.String()
    created_at = fields.String()
    syllabus_consent_at = fields.String(allow_none=True)


class EvaluationIn(Schema):
    exams = StrictInt(validate=Range(min=0, max=100))
    attendance = StrictInt(validate=Range(min=0, max=100))
    participation = StrictInt(validate=Range(min=0, max=100))
    quizzes = StrictInt(validate=Range(min=0, max=100))
    assignments = StrictInt(validate=Range(min=0, max=100))


class ExamPeriodsIn(Schema):
    midterm = fields.List(fields.Date(), validate=Length(2, 2))
    final = fields.List(fields.Date(), validate=Length(2, 2))


class SyllabusIn(Schema):
    instructor_name = fields.String(validate=Length(0, 100), allow_none=True)
    goals = fields.String(validate=Length(0, 5000), allow_none=True)
    textbook = fields.String(validate=Length(0, 2000), allow_none=True)
    method = fields.String(validate=Length(0, 2000), allow_none=True)
    evaluation = fields.Nested(EvaluationIn, allow_none=True)
    weekly_topics = fields.List(fields.String(validate=Length(0, 300)), allow_none=True)
    exam_periods = fields.Nested(ExamPeriodsIn, allow_none=True)
    assignment_periods = fields.List(fields.Dict(), allow_none=True)
    notes = fields.String(validate=Length(0, 5000), allow_none=True)


@bp.post("/courses")
@roles_required("admin")
@bp.input(CourseIn, arg_name="body")
@bp.output(CourseOut, status_code=201)
def create_course(body):
    """Create a course (draft). CRS-7: capacity at most 800 and the accredited capacity."""
    course = service.create_course(current_auth().user, **body)
    db.session.commit()
    return service.course_dict(course)


@bp.get("/courses/<int:course_id>")
@roles_required()
@bp.output(CourseOut)
def get_course(course_id):
    return service.course_dict(service.course_for_viewer(course_id, current_auth().user))


@bp.post("/courses/<int:course_id>/lessons")
@roles_required("admin", "instructor")
@bp.input(LessonIn, arg_name="body")
@bp.output(LessonOut, status_code=201)
def add_lesson(course_id, body):
    """Add a lesson to a week; it opens at 00:00 KST of its week and has its ATT-1 deadline."""
    course = service.course_for_manager(course_id, current_auth().user, staff=("instructor",))
    lesson = service.add_lesson(course, **body)
    db.session.commit()
    return service.lesson_dict(lesson)


@bp.get("/courses/<int:course_id>/lessons")
@roles_required()
@bp.output(LessonListOut)
def list_lessons(course_id):
    course = service.course_for_viewer(course_id, current_auth().user)
    return {"lessons": [service.lesson_dict(l) for l in service.course_lessons(course.id)]}


class MediaIn(Schema):
    file = fields.File(required=True)


class MediaOut(LessonOut):
    media_type = fields.String(allow_none=True)
    media_size = fields.Integer(allow_none=True)
    media_url = fields.String(allow_none=True)


@bp.post("/lessons/<int:lesson_id>/media")
@roles_required("admin", "instructor")
@bp.input(MediaIn, location="files", arg_name="body")
@bp.output(MediaOut, status_code=201)
def upload_lesson_media(lesson_id, body):
    """Upload a lesson's video.

    Multipart field ``file``: an MP4 or WebM video of at most LMS_MAX_UPLOAD_BYTES (413
    above). Its running time is read from the file with ffprobe and becomes the lesson's
    ``duration_seconds`` (whole seconds); anything else is 400 ``invalid_media`` and nothing
    is stored. Admins and the course's instructors; 409 once learners have watched it."""
    from lms.content import media

    lesson = media.upload_lesson_media(lesson_id, current_auth().user, body["file"])
    return media.media_dict(lesson)


@bp.post("/courses/<int:course_id>/publish")
@roles_required("admin")
@bp.output(PublishOut)
def publish(course_id):
    """Publish: 422 naming every broken rule of CRS-1…CRS-5 (with weeks/lessons), or 200
    with warnings of what else the course lacks (syllabus, staff)."""
    course = service.course_for_manager(course_id, current_auth().user)
    warnings = service.publish(course)
    db.session.commit()
    return {"warnings": warnings}


@bp.post("/courses/<int:course_id>/staff")
@roles_required("admin")
@bp.input(StaffIn, arg_name="body")
@bp.output(StaffOut, status_code=201)
def add_staff(course_id, body):
    course = service.course_for_manager(course_id, current_auth().user)
    row = service.add_staff(course, user_id=body["user_id"], role=body["role"])
    db.session.commit()
    return {"id": row.id, "course_id": row.course_id, "user_id": row.user_id, "role": row.role}


@bp.post("/courses/<int:course_id>/enrollments")
@roles_required("admin", "learner")
@bp.input(EnrollmentIn, arg_name="body")
@bp.output(EnrollmentOut, status_code=201)
def enrol(course_id, body):
    """Enrol a learner. A learner enrolling themself adds syllabus_consent (ENR-2)."""
    user = current_auth().user
    course = service.get_course(course_id, user)
    row = enrolment.enrol(course, learner_id=body["user_id"], actor=user,
                          syllabus_consent=body["syllabus_consent"], reason=body["reason"])
    db.session.commit()
    return enrolment.enrollment_dict(row)


@bp.put("/courses/<int:course_id>/syllabus")
@roles_required("admin", "instructor")
@bp.input(SyllabusIn, arg_name="body")
def put_syllabus(course_id, body):
    """Set the syllabus (CRS-12): evaluation weights (attendance ≤ 20, ATT-7), weekly
    topics, exam periods (EXM-2 windows must lie inside them)."""
    course = service.course_for_manager(course_id, current_auth().user, staff=("instructor",))
    row = service.set_syllabus(course, body)
    db.session.commit()
    return service.syllabus_dict(row)


@bp.get("/courses/<int:course_id>/syllabus")
@roles_required()
def get_syllabus(course_id):
    course = service.course_for_viewer(course_id, current_auth().user)
    row = service.get_syllabus(course.id)
    if row is None:
        from lms.errors import not_found

        raise not_found("syllabus")
    return service.syllabus_dict(row)
