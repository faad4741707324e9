"""Item bank pages (EXM-3, EXM-5, EXM-6, EXM-12) for the course's instructors and admins.

- ``/items``: the courses whose bank the user manages, with active items per level
- ``/courses/<id>/items``: the bank — counts per difficulty level, filters, the items,
  add an item, import a CSV/XLSX file (with the row-level report), export links
- ``/courses/<id>/items/<item_id>``: edit (a new version once an attempt showed the
  current one), replace (EXM-5), retire; the item's versions

Services: ``lms.exams.items``; the file format is described there.
"""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from lms.content.models import Course, StaffAssignment
from lms.db import db
from lms.errors import ApiError
from lms.exams import items, rules
from lms.exams.item_api import allow_import_uploads
from lms.exams.models import Item
from lms.i18n import N_
from lms.security import current_auth, page_roles_required

bp = Blueprint("exams_views", __name__, template_folder="templates")
bp.url_value_preprocessor(allow_import_uploads)  # the import form's body may be up to 5 MB

ITEM_ROLES = ("admin", *items.ITEM_STAFF)

DASHBOARD_LINKS = {
    "instructor": [("exams_views.bank_courses", N_("문항 은행"))],
    "admin": [("exams_views.bank_courses", N_("문항 은행"))],
}

KIND_LABELS = {"single_choice": N_("단일 선택형"), "multiple_choice": N_("복수 선택형"),
               "short_answer": N_("단답형"), "essay": N_("서술형")}
LEVEL_LABELS = {"easy": N_("쉬움"), "medium": N_("보통"), "hard": N_("어려움")}
FORM_FIELDS = ("difficulty", "kind", "prompt", "choices", "answer", "model_answer", "rubric", "points", "tags")


def _labels():
    return {"kind_label": lambda k: _(KIND_LABELS[k]) if k in KIND_LABELS else k,
            "level_label": lambda d: _(LEVEL_LABELS[d]) if d in LEVEL_LABELS else d,
            "kinds": rules.ITEM_KINDS, "answer_cell": items.answer_cell, "join_cell": items.join_cell}


def _page_course(course_id: int) -> Course:
    try:
        return items.course_for_items(course_id, current_auth().user)
    except ApiError as exc:
        if exc.status == 403:
            raise ApiError(403, "forbidden", _("이 과정의 교수자 또는 관리자만 문항 은행을 관리할 수 있습니다.")) from exc
        raise


def _page_item(course: Course, item_id: int) -> Item:
    item = db.session.get(Item, item_id)
    if item is None or item.course_id != course.id:
        raise ApiError(404, "not_found", "item not found")
    return item


def _form_cells(form) -> dict[str, str]:
    """The form's texts in the import format (choices one per line on the page)."""
    cells = {name: (form.get(name) or "").replace("\r\n", "\n") for name in FORM_FIELDS}
    lines = [line.strip() for line in cells["choices"].split("\n") if line.strip()]
    cells["choices"] = items.join_cell(lines)
    return cells


def _form_of(version) -> dict[str, str]:
    cells = items.item_cells(version)
    cells["choices"] = "\n".join(version.choices or [])
    return cells


def _filters() -> dict:
    """The bank's filters from the query string (unknown values are ignored)."""
    args = request.args
    active = {"1": True, "0": False}.get(args.get("active", "1"))
    kind = args.get("kind") if args.get("kind") in rules.ITEM_KINDS else None
    difficulty = (args.get("difficulty") or "").strip()[:16] or None
    tag = (args.get("tag") or "").strip()[:items.MAX_TAG_CHARS] or None
    return {"difficulty": difficulty, "kind": kind, "tag": tag, "active": active}


def _render_bank(course: Course, *, form=None, form_errors=None, report=None, import_error=None, status=200):
    filters = _filters()
    rows = items.list_items(course, **filters)
    levels = items.levels_for(course.institution_id)
    counts = items.bank_counts(course.id)
    return render_template(
        "exams/items.html", course=course, rows=rows, levels=levels, counts=counts, filters=filters,
        form=form or {"difficulty": levels[0], "kind": "single_choice", "points": "1"},
        form_errors=form_errors or [], report=report, import_error=import_error,
        columns=items.IMPORT_COLUMNS, max_mb=items.MAX_IMPORT_BYTES // (1024 * 1024),
        max_rows=items.MAX_IMPORT_ROWS, bank_factor=rules.BANK_FACTOR, min_levels=rules.MIN_LEVELS,
        **_labels()), status


@bp.route("/items")
@page_roles_required(*ITEM_ROLES)
def bank_courses():
    """The courses whose item bank the user manages: an admin's institution's, an
    instructor's own."""
    user = current_auth().user
    stmt = select(Course).where(Course.institution_id == user.institution_id)
    if user.role != "admin":
        stmt = stmt.where(Course.id.in_(select(StaffAssignment.course_id).where(
            StaffAssignment.user_id == user.id, StaffAssignment.role.in_(items.ITEM_STAFF))))
    courses = list(db.session.scalars(stmt.order_by(Course.starts_on.desc(), Course.code)))
    counts = {c.id: items.bank_counts(c.id) for c in courses}
    return render_template("exams/item_courses.html", courses=courses, counts=counts)


@bp.route("/courses/<int:course_id>/items", methods=["GET", "POST"])
@page_roles_required(*ITEM_ROLES)
def bank_page(course_id):
    """The bank; POST adds an item from the form."""
    course = _page_course(course_id)
    if request.method == "GET":
        return _render_bank(course)
    user = current_auth().user
    cells = _form_cells(request.form)
    data, problems = items.parse_row(items.levels_for(course.institution_id), cells)
    if problems:
        return _render_bank(course, form={**cells, "choices": request.form.get("choices", "")},
                            form_errors=problems, status=400)
    item = items.create_item(course, user, data)
    db.session.commit()
    flash(_("문항 #%(id)s을 추가했습니다.", id=item.id), "info")
    return redirect(url_for("exams_views.bank_page", course_id=course.id), 303)


@bp.route("/courses/<int:course_id>/items/import", methods=["POST"])
@page_roles_required(*ITEM_ROLES)
def import_page(course_id):
    """Import a CSV/XLSX file; the bank page shows the row-level report."""
    course = _page_course(course_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _render_bank(course, import_error=_("가져올 파일(.csv 또는 .xlsx)을 고르세요."), status=400)
    try:
        report = items.import_items(course, current_auth().user, upload.filename, upload.stream)
    except ApiError as exc:
        db.session.rollback()
        if exc.status == 413:
            message = _("파일이 너무 큽니다 (최대 %(mb)sMB).", mb=items.MAX_IMPORT_BYTES // (1024 * 1024))
        else:
            message = _("파일을 읽을 수 없어 아무 문항도 추가하지 않았습니다: %(reason)s", reason=exc.message)
        return _render_bank(course, import_error=message, status=exc.status)
    db.session.commit()
    return _render_bank(course, report=report)


@bp.route("/courses/<int:course_id>/items/<int:item_id>", methods=["GET", "POST"])
@page_roles_required(*ITEM_ROLES)
def item_page(course_id, item_id):
    """Edit (``action=save``) or replace (``action=replace``, EXM-5) an item; its versions."""
    course = _page_course(course_id)
    item = _page_item(course, item_id)
    version = items.current_version(item)
    form, problems, status = _form_of(version), [], 200
    if request.method == "POST":
        action = request.form.get("action")
        if action not in ("save", "replace"):
            raise ApiError(400, "invalid_request", _("저장 또는 교체를 고르세요."))
        user = current_auth().user
        cells = _form_cells(request.form)
        form = {**cells, "choices": (request.form.get("choices") or "").replace("\r\n", "\n")}
        data, problems = items.parse_row(items.levels_for(course.institution_id), cells)
        if not item.active:
            problems = [_("폐기된 문항은 수정하거나 교체할 수 없습니다. 새 문항을 추가하세요.")]
        if problems:
            status = 400
        elif action == "replace":
            item = items.get_item(item.id, user, lock=True)
            new = items.replace_item(item, user, data)
            db.session.commit()
            flash(_("문항 #%(old)s을 폐기하고 새 문항 #%(new)s으로 교체했습니다.", old=item.id, new=new.id), "info")
            return redirect(url_for("exams_views.item_page", course_id=course.id, item_id=new.id), 303)
        else:
            item = items.get_item(item.id, user, lock=True)
            result = items.edit_item(item, user, data)
            db.session.commit()
            if not result.changed:
                flash(_("바뀐 내용이 없습니다."), "info")
            elif result.new_version:
                flash(_("응시에 출제된 문항이라 새 버전 v%(v)s을 만들었습니다. 응시 기록은 출제 당시 버전을 유지합니다.",
                        v=result.version.version), "info")
            else:
                flash(_("문항을 저장했습니다 (v%(v)s).", v=result.version.version), "info")
            return redirect(url_for("exams_views.item_page", course_id=course.id, item_id=item.id), 303)
    return render_template(
        "exams/item_edit.html", course=course, item=item, version=version, form=form, form_errors=problems,
        levels=items.levels_for(course.institution_id), in_use=items.version_in_use(version.id),
        versions=items.versions(item), **_labels()), status


@bp.route("/courses/<int:course_id>/items/<int:item_id>/retire", methods=["POST"])
@page_roles_required(*ITEM_ROLES)
def retire_page(course_id, item_id):
    course = _page_course(course_id)
    item = _page_item(course, item_id)
    if not item.active:
        flash(_("이미 폐기된 문항입니다."), "warning")
    else:
        items.retire_item(items.get_item(item.id, current_auth().user, lock=True), current_auth().user)
        db.session.commit()
        flash(_("문항 #%(id)s을 폐기했습니다. 더 이상 출제되지 않습니다.", id=item.id), "info")
    return redirect(url_for("exams_views.bank_page", course_id=course.id), 303)
