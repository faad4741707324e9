"""JSON API: item banks (API.md "Items, exams and attempts"; EXM-5, EXM-6, EXM-12).

Admins of the institution and the course's instructors manage a course's items (TAs and
learners: 403; an unknown item or a course of another institution: 404). Learners never
see an item's scoring key or model answer (EXM-12).

- ``POST /api/v1/courses/{id}/items`` → 201 the item (version 1)
- ``GET /api/v1/courses/{id}/items?difficulty=&kind=&tag=&active=`` → ``{"items", "counts", "levels"}``
- ``GET|PUT /api/v1/items/{id}`` → the item; PUT replaces its content (a new version when
  an attempt showed the current one)
- ``POST /api/v1/items/{id}/retire`` → 200 the item; ``POST /api/v1/items/{id}/replace``
  (an item body) → 201 the new item (EXM-5)
- ``GET /api/v1/items/{id}/versions`` → ``{"item_id", "current_version", "versions"}``
- ``POST /api/v1/courses/{id}/items/import`` (multipart ``file``, .csv or .xlsx) → 200
  ``{"imported", "rejected": [{"row", "errors"}], "item_ids"}`` (format: ``lms.exams.items``)
- ``GET /api/v1/courses/{id}/items/export?format=csv|xlsx`` → the file
"""
from __future__ import annotations

from apiflask import APIBlueprint, Schema, fields
from apiflask.validators import Length, OneOf
from flask import Response, request

from lms.db import db
from lms.exams import items, rules
from lms.schemas import FiniteFloat
from lms.security import current_auth, roles_required

bp = APIBlueprint("item_api", __name__, url_prefix="/api/v1", tag="Items, exams and attempts")

# Endpoints receiving an item file: their body limit is the file's (plus the form's
# overhead) instead of LMS_MAX_BODY_BYTES, set before anything reads the body.
IMPORT_ENDPOINTS = {"item_api.import_items", "exams_views.import_page"}
FORM_OVERHEAD_BYTES = 64 * 1024


def allow_import_uploads(endpoint, _values) -> None:
    if endpoint in IMPORT_ENDPOINTS and request.method == "POST":
        request.max_content_length = items.MAX_IMPORT_BYTES + FORM_OVERHEAD_BYTES


bp.url_value_preprocessor(allow_import_uploads)


class ItemIn(Schema):
    """``answer`` is the scoring key (EXM-12): single_choice — the correct choice's index;
    multiple_choice — the list of correct indexes; short_answer — the accepted text or a
    list of them. Essays need ``model_answer`` and ``rubric`` instead."""

    difficulty = fields.String(required=True, validate=Length(1, 16))
    kind = fields.String(required=True, validate=Length(1, 16))
    prompt = fields.String(required=True, validate=Length(1, rules.MAX_PROMPT))
    choices = fields.List(fields.String(validate=Length(1, items.MAX_CHOICE_CHARS)), allow_none=True,
                          validate=Length(max=rules.MAX_CHOICES))
    answer = fields.Raw(allow_none=True)
    model_answer = fields.String(allow_none=True, validate=Length(0, items.MAX_GUIDE_CHARS))
    rubric = fields.String(allow_none=True, validate=Length(0, items.MAX_GUIDE_CHARS))
    points = FiniteFloat(required=True)
    tags = fields.List(fields.String(validate=Length(1, items.MAX_TAG_CHARS)), allow_none=True,
                       validate=Length(max=items.MAX_TAGS))


class ItemOut(Schema):
    id = fields.Integer()
    course_id = fields.Integer()
    version = fields.Integer()
    difficulty = fields.String()
    kind = fields.String()
    prompt = fields.String()
    choices = fields.List(fields.String(), allow_none=True)
    answer = fields.Raw(allow_none=True)
    model_answer = fields.String(allow_none=True)
    rubric = fields.String(allow_none=True)
    points = fields.Float()
    tags = fields.List(fields.String(), allow_none=True)
    active = fields.Boolean()
    retired_at = fields.String(allow_none=True)
    replaces_item_id = fields.Integer(allow_none=True)
    created_at = fields.String()


class ItemEditOut(ItemOut):
    new_version = fields.Boolean()  # the edit created a version (an attempt showed the old one)


class ItemListQuery(Schema):
    difficulty = fields.String(load_default=None, validate=Length(1, 16))
    kind = fields.String(load_default=None, validate=OneOf(rules.ITEM_KINDS))
    tag = fields.String(load_default=None, validate=Length(1, items.MAX_TAG_CHARS))
    active = fields.Boolean(load_default=None)


class ItemListOut(Schema):
    items = fields.List(fields.Nested(ItemOut))
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())  # active items per level (EXM-5)
    levels = fields.List(fields.String())


class VersionOut(Schema):
    version = fields.Integer()
    current = fields.Boolean()
    difficulty = fields.String()
    kind = fields.String()
    prompt = fields.String()
    choices = fields.List(fields.String(), allow_none=True)
    answer = fields.Raw(allow_none=True)
    model_answer = fields.String(allow_none=True)
    rubric = fields.String(allow_none=True)
    points = fields.Float()
    tags = fields.List(fields.String(), allow_none=True)
    created_by = fields.Integer(allow_none=True)
    created_at = fields.String()
    attempts = fields.Integer()  # attempt items that showed this version


class VersionListOut(Schema):
    item_id = fields.Integer()
    current_version = fields.Integer()
    versions = fields.List(fields.Nested(VersionOut))


class ImportIn(Schema):
    file = fields.File(required=True)


class RejectedRow(Schema):
    row = fields.Integer()
    errors = fields.List(fields.String())


class ImportOut(Schema):
    imported = fields.Integer()
    rejected = fields.List(fields.Nested(RejectedRow))
    item_ids = fields.List(fields.Integer())


class ExportQuery(Schema):
    format = fields.String(load_default="csv", validate=OneOf(items.IMPORT_FORMATS))


@bp.post("/courses/<int:course_id>/items")
@roles_required("admin", "instructor")
@bp.input(ItemIn, arg_name="body")
@bp.output(ItemOut, status_code=201)
def create_item(course_id, body):
    """Add an item to the course's bank (version 1)."""
    user = current_auth().user
    course = items.course_for_items(course_id, user)
    item = items.create_item(course, user, body)
    db.session.commit()
    return items.item_dict(item)


@bp.get("/courses/<int:course_id>/items")
@roles_required("admin", "instructor")
@bp.input(ItemListQuery, location="query", arg_name="query")
@bp.output(ItemListOut)
def list_items(course_id, query):
    """The course's bank (current versions, with keys), filtered by difficulty, kind, tag
    and active; ``counts``: active items per difficulty level (EXM-5)."""
    course = items.course_for_items(course_id, current_auth().user)
    rows = items.list_items(course, difficulty=query["difficulty"], kind=query["kind"], tag=query["tag"],
                            active=query["active"])
    return {"items": [items.item_dict(i, v) for i, v in rows], "counts": items.bank_counts(course.id),
            "levels": list(items.levels_for(course.institution_id))}


@bp.get("/items/<int:item_id>")
@roles_required("admin", "instructor")
@bp.output(ItemOut)
def get_item(item_id):
    return items.item_dict(items.get_item(item_id, current_auth().user))


@bp.put("/items/<int:item_id>")
@roles_required("admin", "instructor")
@bp.input(ItemIn, arg_name="body")
@bp.output(ItemEditOut)
def edit_item(item_id, body):
    """Replace the item's content. Corrected in place while no attempt has shown the
    current version; otherwise a new version becomes current (``new_version``) and the
    attempts keep the one they showed. 409 ``item_retired`` for a retired item."""
    user = current_auth().user
    result = items.edit_item(items.get_item(item_id, user, lock=True), user, body)
    db.session.commit()
    return {**items.item_dict(result.item, result.version), "new_version": result.new_version}


@bp.post("/items/<int:item_id>/retire")
@roles_required("admin", "instructor")
@bp.output(ItemOut)
def retire_item(item_id):
    """Take the item out of the bank: it is no longer drawn (409 when already retired)."""
    user = current_auth().user
    item = items.retire_item(items.get_item(item_id, user, lock=True), user)
    db.session.commit()
    return items.item_dict(item)


@bp.post("/items/<int:item_id>/replace")
@roles_required("admin", "instructor")
@bp.input(ItemIn, arg_name="body")
@bp.output(ItemOut, status_code=201)
def replace_item(item_id, body):
    """EXM-5 partial replacement: a new item naming this one in ``replaces_item_id``; this
    one is retired."""
    user = current_auth().user
    new = items.replace_item(items.get_item(item_id, user, lock=True), user, body)
    db.session.commit()
    return items.item_dict(new)


@bp.get("/items/<int:item_id>/versions")
@roles_required("admin", "instructor")
@bp.output(VersionListOut)
def item_versions(item_id):
    item = items.get_item(item_id, current_auth().user)
    return {"item_id": item.id, "current_version": item.current_version, "versions": items.versions(item)}


@bp.post("/courses/<int:course_id>/items/import")
@roles_required("admin", "instructor")
@bp.input(ImportIn, location="form_and_files", arg_name="body")
@bp.output(ImportOut)
def import_items(course_id, body):
    """Import items from a CSV or XLSX file (columns ``difficulty, kind, prompt, choices,
    answer, model_answer, rubric, points, tags``; choice numbers from 1; ``|`` separates
    parts). Good rows are added together; bad rows are reported by row number. 400 for a
    file that cannot be read (nothing is added); 413 above 5 MB."""
    user = current_auth().user
    course = items.course_for_items(course_id, user)
    upload = body["file"]
    report = items.import_items(course, user, upload.filename or "", upload.stream)
    db.session.commit()
    return report


@bp.get("/courses/<int:course_id>/items/export")
@roles_required("admin", "instructor")
@bp.input(ExportQuery, location="query", arg_name="query")
def export_items(course_id, query):
    """The course's active items as CSV (UTF-8 with BOM) or XLSX, in the import format."""
    course = items.course_for_items(course_id, current_auth().user)
    if query["format"] == "csv":
        body, mimetype = items.export_csv(course), "text/csv; charset=utf-8"
    else:
        body, mimetype = items.export_xlsx(course), items.XLSX_MIMETYPE
    name = items.export_filename(course, query["format"])
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                      "Cache-Control": "no-store"})
