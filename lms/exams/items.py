"""Item banks (EXM-5, EXM-6, EXM-12): items per course, versioned.

An ``Item`` is the logical identity (course, difficulty, kind, active); its content lives
in ``ItemVersion`` rows. ``Item.current_version`` names the version new draws show; an
attempt keeps the ``ItemVersion`` it showed (``AttemptItem.item_version_id``). ``Item.kind``
and ``Item.difficulty`` always equal the current version's. An item is drawable while
``active`` (a retired item, ``retired_at`` set, is not). Validation: ``rules.item_problems``
plus the limits of this module (``item_data_problems``).

Editing (``edit_item``): while no attempt has shown the current version it is corrected in
place; once an ``AttemptItem`` references it, the edit becomes a new version (number + 1)
and ``Item.current_version`` moves to it — attempts keep the version they showed.
Retiring (``retire_item``) takes an item out of the bank; replacing (``replace_item``,
EXM-5's partial replacement after item analysis) adds a new item naming the old one in
``replaces_item_id`` and retires the old one.

Import and export (CSV or XLSX), one item per row
--------------------------------------------------
The first row names the columns (any order; names are case-insensitive)::

    difficulty,kind,prompt,choices,answer,model_answer,rubric,points,tags

``difficulty``, ``kind``, ``prompt`` and ``points`` are required; the others may be left
out or empty where the kind needs none.

- ``difficulty``: one of the institution's levels (default ``easy``, ``medium``, ``hard``).
- ``kind``: ``single_choice``, ``multiple_choice``, ``short_answer`` or ``essay``.
- ``choices``: choice items only, the choices separated by ``|`` (2–10 of them).
- ``answer`` (the scoring key, EXM-12): single_choice — the number of the correct choice,
  counted **from 1** (``2``); multiple_choice — the numbers of every correct choice
  (``1|3``); short_answer — the accepted answers (``서울|Seoul``); essay — empty.
- ``model_answer``, ``rubric``: required for essays (EXM-12), optional otherwise.
- ``points``: a number above 0 and at most 1000.
- ``tags``: separated by ``|``, e.g. ``week:3|topic:복지정책`` (at most 20, each ≤ 64 characters).

Inside ``choices``, ``answer`` and ``tags`` a literal ``|`` is written ``\\|`` and a
literal backslash ``\\\\``; spaces around each part are ignored. CSV files are UTF-8 (with
or without a byte-order mark) or CP949 (Excel's Korean default), comma-separated. In CSV
a cell that would start a spreadsheet formula (``= + - @``) or with ``'`` is exported with
one more ``'`` in front, and one leading ``'`` before such a character is dropped on import.
XLSX: the first sheet is read. At most 5 MB and 5,000 item rows per file.

Import report: row numbers count the header as row 1 (as a spreadsheet shows them); empty
rows are skipped. Every bad row is rejected with its reasons; every good row is added, all
in one transaction. A file that cannot be read at all (not CSV/XLSX, no header, unknown or
missing columns, too many rows) is refused whole (400; 413 when too large). Export writes
the course's active items in the same format, so an export imports back unchanged.
"""
from __future__ import annotations

import csv
import io
import math
import re
import zipfile
from dataclasses import dataclass

from sqlalchemy import and_, func, select

from lms import clock
from lms.auth.models import Institution, User
from lms.content.models import Course
from lms.content.service import course_for_manager
from lms.db import advisory_lock, db
from lms.errors import ApiError, not_found
from lms.exams import rules
from lms.exams.models import AttemptItem, Item, ItemVersion
from lms.spreadsheet import FORMULA_START, csv_bytes

ITEM_STAFF = ("instructor",)  # besides admins, who manages a course's items and exams

# Limits of an item's texts besides those of rules.item_problems (the API schema's too).
MAX_CHOICE_CHARS = 2_000
MAX_GUIDE_CHARS = 20_000  # model answer, rubric
MAX_TAG_CHARS = 64
MAX_TAGS = 20
MAX_ACCEPTED = 50  # accepted short answers

# Import files.
IMPORT_COLUMNS = ("difficulty", "kind", "prompt", "choices", "answer", "model_answer", "rubric", "points", "tags")
REQUIRED_COLUMNS = ("difficulty", "kind", "prompt", "points")
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 5_000
# An XLSX is a zip: its parts may not unpack to more than this (zip bombs).
MAX_XLSX_UNPACKED = 64 * 1024 * 1024
MAX_XLSX_PARTS = 1_000
IMPORT_FORMATS = ("csv", "xlsx")
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def levels_for(institution_id: int) -> tuple[str, ...]:
    """The institution's difficulty levels, easiest first (EXM-3; default easy/medium/hard)."""
    levels = db.session.scalar(select(Institution.difficulty_levels).where(Institution.id == institution_id))
    return tuple(levels) if levels else rules.DEFAULT_LEVELS


def course_for_items(course_id: int, user: User) -> Course:
    """Admins of the institution and the course's instructors (403 for others)."""
    return course_for_manager(course_id, user, staff=ITEM_STAFF)


def bank_counts(course_id: int) -> dict[str, int]:
    """Active (drawable) items of the course's bank per difficulty level (EXM-5)."""
    rows = db.session.execute(select(Item.difficulty, func.count(Item.id))
                              .where(Item.course_id == course_id, Item.active.is_(True))
                              .group_by(Item.difficulty))
    return {level: n for level, n in rows}


# --- validation ------------------------------------------------------------------------

def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, str):
                yield v


def item_data_problems(levels, data: dict) -> list[str]:
    """Everything that makes ``data`` no valid item: ``rules.item_problems`` (EXM-12) and
    this module's text limits (no NUL anywhere: no database text column takes one)."""
    kind = data.get("kind")
    out = rules.item_problems(kind, data.get("difficulty"), levels, data.get("prompt"), data.get("choices"),
                              data.get("answer"), data.get("model_answer"), data.get("rubric"),
                              data.get("points"))
    choices = data.get("choices")
    if isinstance(choices, list) and any(isinstance(c, str) and len(c) > MAX_CHOICE_CHARS for c in choices):
        out.append(f"each choice is at most {MAX_CHOICE_CHARS} characters")
    for name in ("model_answer", "rubric"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            out.append(f"{name} must be text")
        elif isinstance(value, str) and len(value) > MAX_GUIDE_CHARS:
            out.append(f"{name} is longer than {MAX_GUIDE_CHARS} characters")
    tags = data.get("tags")
    if tags is not None and (not isinstance(tags, list) or len(tags) > MAX_TAGS
                             or any(not isinstance(t, str) or not t.strip() or len(t) > MAX_TAG_CHARS
                                    for t in tags)):
        out.append(f"tags must be at most {MAX_TAGS} non-empty texts of at most {MAX_TAG_CHARS} characters")
    answer = data.get("answer")
    if kind == "essay" and answer not in (None, "", []):
        out.append("essay items take model_answer and rubric, not answer")
    if kind == "short_answer" and isinstance(answer, list) and len(answer) > MAX_ACCEPTED:
        out.append(f"at most {MAX_ACCEPTED} accepted answers")
    if kind == "short_answer" and any(len(a) > rules.MAX_SHORT_ANSWER for a in _strings(answer)):
        out.append(f"each accepted answer is at most {rules.MAX_SHORT_ANSWER} characters")
    texts = [data.get("difficulty"), data.get("prompt"), data.get("model_answer"), data.get("rubric")]
    texts += list(_strings(choices)) + list(_strings(answer)) + list(_strings(tags))
    if any(isinstance(t, str) and "\x00" in t for t in texts):
        out.append("texts may not contain a NUL character")
    return out


def check_item(levels, data: dict) -> None:
    problems = item_data_problems(levels, data)
    if problems:
        raise ApiError(400, "invalid_request", "; ".join(problems), extra={"problems": problems})


# --- items -----------------------------------------------------------------------------

def create_item(course: Course, user: User, data: dict, *, replaces: Item | None = None) -> Item:
    """A new item with its version 1 (validated; flushed, not committed)."""
    check_item(levels_for(course.institution_id), data)
    now = clock.now()
    item = _new_item(course, user, data, now, replaces_item_id=replaces.id if replaces else None)
    db.session.add(item)
    db.session.flush()
    db.session.add(_version(item, 1, data, user, now))
    db.session.flush()
    from lms.audit.service import record_admin_action

    record_admin_action("item", item.id, "create", actor=user, after={
        "course_id": course.id, "difficulty": item.difficulty, "kind": item.kind,
        "replaces_item_id": item.replaces_item_id})
    return item


def _new_item(course: Course, user: User, data: dict, now, *, replaces_item_id: int | None = None) -> Item:
    return Item(course_id=course.id, current_version=1, difficulty=data["difficulty"], kind=data["kind"],
                tags=data.get("tags") or None, active=True, replaces_item_id=replaces_item_id,
                created_by=user.id, created_at=now)


def _content(data: dict) -> dict:
    """The columns of an ItemVersion that ``data`` sets (short answers always a list)."""
    answer = data.get("answer")
    if data["kind"] == "short_answer" and isinstance(answer, str):
        answer = [answer]
    if data["kind"] == "essay" and answer in ("", []):
        answer = None
    return {"difficulty": data["difficulty"], "kind": data["kind"], "prompt": data["prompt"],
            "choices": data.get("choices") or None, "answer": answer,
            "model_answer": data.get("model_answer") or None, "rubric": data.get("rubric") or None,
            "points": float(data["points"]), "tags": data.get("tags") or None}


def _version(item: Item, number: int, data: dict, user: User, now) -> ItemVersion:
    return ItemVersion(item_id=item.id, version=number, created_by=user.id, created_at=now, **_content(data))


def current_version(item: Item) -> ItemVersion:
    return db.session.scalar(select(ItemVersion).where(ItemVersion.item_id == item.id,
                                                       ItemVersion.version == item.current_version))


def item_dict(item: Item, version: ItemVersion | None = None, *, with_key: bool = True) -> dict:
    """An item for staff (with its scoring key unless ``with_key`` is False)."""
    v = version or current_version(item)
    out = {"id": item.id, "course_id": item.course_id, "version": v.version, "difficulty": v.difficulty,
           "kind": v.kind, "prompt": v.prompt, "choices": v.choices, "points": v.points, "tags": v.tags,
           "active": item.active, "retired_at": clock.iso(item.retired_at),
           "replaces_item_id": item.replaces_item_id, "created_at": clock.iso(item.created_at)}
    if with_key:
        out.update(answer=v.answer, model_answer=v.model_answer, rubric=v.rubric)
    return out


def list_items(course: Course, *, difficulty: str | None = None, kind: str | None = None,
               tag: str | None = None, active: bool | None = None) -> list[tuple[Item, ItemVersion]]:
    """The course's items with their current versions, oldest first, filtered."""
    if any(isinstance(v, str) and "\x00" in v for v in (difficulty, kind)):
        return []  # no level or kind has a NUL (and PostgreSQL refuses one in a query)
    stmt = (select(Item, ItemVersion)
            .join(ItemVersion, and_(ItemVersion.item_id == Item.id, ItemVersion.version == Item.current_version))
            .where(Item.course_id == course.id).order_by(Item.id))
    if difficulty is not None:
        stmt = stmt.where(Item.difficulty == difficulty)
    if kind is not None:
        stmt = stmt.where(Item.kind == kind)
    if active is not None:
        stmt = stmt.where(Item.active.is_(active))
    rows = [(i, v) for i, v in db.session.execute(stmt)]
    if tag is not None:
        rows = [(i, v) for i, v in rows if tag in (i.tags or [])]
    return rows


def bank_lock_key(course_id: int) -> str:
    """The advisory-lock key of a course's item bank: draws hold it shared, in-place edits
    exclusively (``lms.db.advisory_lock``)."""
    return f"item-bank:{course_id}"


def get_item(item_id: int, user: User, *, lock: bool = False) -> Item:
    """An item of a course ``user`` manages (404 unknown or of another institution; 403
    for others). ``lock``: row-locked for an edit (PostgreSQL; SQLite writes serially)."""
    stmt = select(Item).where(Item.id == item_id)
    if lock:
        # The bank first, exclusively: no draw is reading the bank's items meanwhile (draws
        # take it shared), then the row (course_id never changes).
        course_id = db.session.scalar(select(Item.course_id).where(Item.id == item_id))
        if course_id is not None:
            advisory_lock(bank_lock_key(course_id))
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    item = db.session.scalar(stmt)
    if item is None:
        raise not_found("item")
    try:
        course_for_items(item.course_id, user)
    except ApiError as exc:
        if exc.status == 404:
            raise not_found("item") from exc
        raise
    return item


def version_in_use(version_id: int) -> bool:
    """Whether an attempt has shown this version (it may then never change)."""
    return db.session.scalar(select(AttemptItem.id).where(AttemptItem.item_version_id == version_id).limit(1)) \
        is not None


def _refuse_retired(item: Item) -> None:
    if not item.active:
        raise ApiError(409, "item_retired", "the item is retired; add a new item instead")


@dataclass
class EditResult:
    item: Item
    version: ItemVersion
    new_version: bool  # True: a new version was created (the old one was shown in an attempt)
    changed: bool


def edit_item(item: Item, user: User, data: dict) -> EditResult:
    """Replace the item's content (EXM-12 validated). The current version is corrected in
    place unless an attempt showed it; then a new version (number + 1) becomes current and
    the attempts keep theirs. Nothing changes when the content is the same. Flushed."""
    _refuse_retired(item)
    course = db.session.get(Course, item.course_id)
    check_item(levels_for(course.institution_id), data)
    v = current_version(item)
    content = _content(data)
    if all(getattr(v, k) == value for k, value in content.items()):
        return EditResult(item, v, False, False)
    from lms.audit.service import record_admin_action

    record_admin_action("item", item.id, "edit", actor=user,
                        before={"version": v.version, **{k: getattr(v, k) for k in content}},
                        after=content)
    new = version_in_use(v.id)
    if new:
        v = ItemVersion(item_id=item.id, version=item.current_version + 1, created_by=user.id,
                        created_at=clock.now(), **content)
        db.session.add(v)
        item.current_version = v.version
    else:
        for k, value in content.items():
            setattr(v, k, value)
    item.difficulty, item.kind, item.tags = v.difficulty, v.kind, v.tags
    db.session.flush()
    return EditResult(item, v, new, True)


def retire_item(item: Item, user: User) -> Item:
    """Take the item out of the bank (no longer drawn; attempts keep what they showed)."""
    _refuse_retired(item)
    from lms.audit.service import record_admin_action

    record_admin_action("item", item.id, "retire", actor=user, before={"active": True}, after={"active": False})
    item.active = False
    item.retired_at = clock.now()
    db.session.flush()
    return item


def replace_item(item: Item, user: User, data: dict) -> Item:
    """EXM-5 partial replacement: a new item (``replaces_item_id`` = the old one) with
    ``data``, and the old one retired. Flushed."""
    _refuse_retired(item)
    course = db.session.get(Course, item.course_id)
    new = create_item(course, user, data, replaces=item)
    retire_item(item, user)
    return new


def versions(item: Item) -> list[dict]:
    """Every version of the item, oldest first, with how many attempt items showed it."""
    shown = dict(db.session.execute(
        select(AttemptItem.item_version_id, func.count(AttemptItem.id))
        .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
        .where(ItemVersion.item_id == item.id).group_by(AttemptItem.item_version_id)).all())
    rows = db.session.scalars(select(ItemVersion).where(ItemVersion.item_id == item.id)
                              .order_by(ItemVersion.version))
    return [version_dict(v, shown.get(v.id, 0), current=v.version == item.current_version) for v in rows]


def version_dict(v: ItemVersion, attempts: int = 0, *, current: bool = False) -> dict:
    return {"version": v.version, "current": current, "difficulty": v.difficulty, "kind": v.kind,
            "prompt": v.prompt, "choices": v.choices, "answer": v.answer, "model_answer": v.model_answer,
            "rubric": v.rubric, "points": v.points, "tags": v.tags, "created_by": v.created_by,
            "created_at": clock.iso(v.created_at), "attempts": attempts}


# --- cells of the file format ----------------------------------------------------------

def split_cell(text: str) -> list[str]:
    """``a|b\\|c`` → ``["a", "b|c"]`` (``\\|`` a literal bar, ``\\\\`` a backslash); parts
    stripped; an empty cell has no parts."""
    if not text.strip():
        return []
    parts, cur, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "|\\":
            cur.append(text[i + 1])
            i += 2
            continue
        if ch == "|":
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur).strip())
    return parts


def join_cell(values) -> str:
    return "|".join(str(v).replace("\\", "\\\\").replace("|", "\\|") for v in values or [])


def answer_cell(kind: str, answer) -> str:
    """The scoring key as the file writes it (choice numbers from 1)."""
    if answer is None:
        return ""
    if kind == "single_choice" and isinstance(answer, int):
        return str(answer + 1)
    if kind == "multiple_choice" and isinstance(answer, list):
        return "|".join(str(a + 1) for a in answer if isinstance(a, int))
    if kind == "short_answer":
        return join_cell([answer] if isinstance(answer, str) else answer)
    return ""


def points_cell(points: float) -> str:
    return str(int(points)) if float(points).is_integer() else repr(float(points))


_NUMBER = re.compile(r"[0-9]{1,6}")


def _choice_numbers(parts: list[str]) -> list[int] | None:
    if not parts or any(not _NUMBER.fullmatch(p) for p in parts):
        return None
    return [int(p) - 1 for p in parts]


def row_data(cells: dict[str, str]) -> tuple[dict, list[str]]:
    """An item's data from the texts of one row (or the page's form), and what could not
    be read. Validate the data with ``item_data_problems``."""
    errors: list[str] = []
    kind = cells.get("kind", "").strip().lower()
    data: dict = {"difficulty": cells.get("difficulty", "").strip(), "kind": kind,
                  "prompt": cells.get("prompt", ""), "model_answer": cells.get("model_answer") or None,
                  "rubric": cells.get("rubric") or None}
    for name in ("model_answer", "rubric"):
        if data[name] is not None and not data[name].strip():
            data[name] = None
    choices = split_cell(cells.get("choices", ""))
    data["choices"] = choices or None
    tags = [t for t in split_cell(cells.get("tags", "")) if t]
    data["tags"] = tags or None
    points_text = cells.get("points", "").strip()
    if not points_text:
        errors.append("points is required")
        data["points"] = None
    else:
        try:
            data["points"] = float(points_text) if len(points_text) <= 32 else math.nan
        except ValueError:
            errors.append("points must be a number")
            data["points"] = None
    answer_text = cells.get("answer", "")
    parts = split_cell(answer_text)
    n = len(choices)
    if kind == "single_choice":
        numbers = _choice_numbers(parts)
        if numbers is None or len(numbers) != 1 or not 0 <= numbers[0] < max(n, 1):
            errors.append(f"answer must be the number of the correct choice (1…{n})" if n
                          else "answer must be the number of the correct choice (counted from 1)")
            data["answer"] = None
        else:
            data["answer"] = numbers[0]
    elif kind == "multiple_choice":
        numbers = _choice_numbers(parts)
        if numbers is None or len(set(numbers)) != len(numbers) or any(not 0 <= a < max(n, 1) for a in numbers):
            errors.append(f"answer must be the distinct numbers of the correct choices (1…{n}), e.g. 1|3" if n
                          else "answer must be the numbers of the correct choices (counted from 1), e.g. 1|3")
            data["answer"] = None
        else:
            data["answer"] = numbers
    elif kind == "short_answer":
        data["answer"] = parts or None
    else:
        data["answer"] = answer_text.strip() or None
    return data, errors


def item_cells(v: ItemVersion) -> dict[str, str]:
    """One exported row: the texts of the file format for a version."""
    return {"difficulty": v.difficulty, "kind": v.kind, "prompt": v.prompt, "choices": join_cell(v.choices),
            "answer": answer_cell(v.kind, v.answer), "model_answer": v.model_answer or "",
            "rubric": v.rubric or "", "points": points_cell(v.points), "tags": join_cell(v.tags)}


# --- reading files ---------------------------------------------------------------------

def _bad_file(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def file_format(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    if ext not in IMPORT_FORMATS:
        raise _bad_file("the file must be a .csv or .xlsx file")
    return ext


def read_limited(stream) -> bytes:
    """The upload's bytes; 413 above MAX_IMPORT_BYTES."""
    raw = stream.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise ApiError(413, "payload_too_large",
                       f"the file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB")
    return raw


_FORMULA_START = FORMULA_START


def _csv_out(value: str) -> str:
    """A cell that never starts a spreadsheet formula (CSV injection); ``_csv_in`` undoes it."""
    return "'" + value if value.startswith(_FORMULA_START + ("'",)) else value


def _csv_in(value: str) -> str:
    if value.startswith("'") and value[1:].startswith(_FORMULA_START + ("'",)):
        return value[1:]
    return value


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp949"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _bad_file("the CSV file is neither UTF-8 nor CP949 text")


def _csv_records(raw: bytes):
    text = _decode(raw)
    if "\x00" in text:
        raise _bad_file("the CSV file contains NUL characters (is it really a CSV file?)")
    try:
        for n, record in enumerate(csv.reader(io.StringIO(text, newline="")), start=1):
            yield n, [_csv_in(c) for c in record]
    except csv.Error as exc:
        raise _bad_file(f"the CSV file cannot be read: {exc}") from exc


def _xlsx_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _xlsx_records(raw: bytes):
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            infos = z.infolist()
    except Exception as exc:  # BadZipFile, and the odd ValueError/OSError of a mangled archive
        raise _bad_file("the file is not a readable XLSX workbook") from exc
    # The parts' declared sizes bound what unpacking yields (zipfile stops there): zip bombs.
    if len(infos) > MAX_XLSX_PARTS or sum(i.file_size for i in infos) > MAX_XLSX_UNPACKED:
        raise _bad_file("the XLSX file unpacks to too much data")
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a broken workbook
        raise _bad_file("the file is not a readable XLSX workbook") from exc
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            raise _bad_file("the workbook has no sheet")
        try:
            for n, row in enumerate(ws.iter_rows(values_only=True), start=1):
                yield n, [_xlsx_text(v) for v in row]
        except ApiError:
            raise
        except Exception as exc:
            raise _bad_file("the XLSX sheet cannot be read") from exc
    finally:
        wb.close()


def read_table(filename: str, raw: bytes) -> list[tuple[int, dict[str, str], list[str]]]:
    """The item rows of a file: ``(row number, {column: text}, problems of the row's
    shape)``. Empty rows are skipped. 400 for a file that cannot be read as a whole."""
    fmt = file_format(filename)
    records = _csv_records(raw) if fmt == "csv" else _xlsx_records(raw)
    header: list[str] | None = None
    out: list[tuple[int, dict[str, str], list[str]]] = []
    for n, record in records:
        if not any(c.strip() for c in record):
            continue
        if header is None:
            header = _header(record)
            continue
        if len(out) >= MAX_IMPORT_ROWS:
            raise _bad_file(f"the file has more than {MAX_IMPORT_ROWS} item rows; split it")
        problems = []
        extra = [c for c in record[len(header):] if c.strip()]
        if extra:
            problems.append(f"the row has {len(header) + len(extra)} or more cells; the header names {len(header)}")
        cells = {name: (record[i] if i < len(record) else "") for i, name in enumerate(header) if name}
        out.append((n, cells, problems))
    if header is None:
        raise _bad_file("the file is empty: the first row must name the columns "
                        f"({','.join(IMPORT_COLUMNS)})")
    if not out:
        raise _bad_file("the file has no item rows below its header")
    return out


def _header(record: list[str]) -> list[str]:
    names = [c.strip().lower() for c in record]
    while names and not names[-1]:
        names.pop()
    unknown = [n for n in names if n and n not in IMPORT_COLUMNS]
    if unknown or "" in names:
        raise _bad_file(f"unknown column(s) {', '.join(repr(n) for n in unknown) or '(empty)'}: "
                        f"the columns are {','.join(IMPORT_COLUMNS)}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _bad_file(f"column(s) named twice: {', '.join(dupes)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise _bad_file(f"missing column(s): {', '.join(missing)}")
    return names


# --- import and export -----------------------------------------------------------------

def import_items(course: Course, user: User, filename: str, stream) -> dict:
    """Import a CSV or XLSX file into the course's bank: every good row becomes an item
    (version 1), every bad row is reported ``{"row", "errors"}``. Flushed, not committed:
    the caller commits all good rows at once."""
    rows = read_table(filename, read_limited(stream))
    levels = levels_for(course.institution_id)
    good: list[dict] = []
    rejected: list[dict] = []
    for n, cells, shape in rows:
        data, errors = parse_row(levels, cells)
        errors = shape + errors
        if errors:
            rejected.append({"row": n, "errors": errors})
        else:
            good.append(data)
    now = clock.now()
    new_items = [_new_item(course, user, data, now) for data in good]
    db.session.add_all(new_items)
    db.session.flush()
    db.session.add_all([_version(item, 1, data, user, now) for item, data in zip(new_items, good)])
    db.session.flush()
    return {"imported": len(new_items), "rejected": rejected, "item_ids": [i.id for i in new_items]}


def parse_row(levels, cells: dict[str, str]) -> tuple[dict, list[str]]:
    """An item's data from one row's texts (or the page's form) and every problem of it
    (empty: the data makes a valid item)."""
    data, errors = row_data(cells)
    errors += [p for p in item_data_problems(levels, data) if not _duplicate(p, errors)]
    return data, errors


def _duplicate(problem: str, errors: list[str]) -> bool:
    """A rule's message repeating what reading the row already said about ``points`` or
    ``answer`` (the rule counts choices from 0, the file from 1)."""
    field_name = problem.split(" ", 1)[0]
    return field_name in ("points", "answer") and any(e.split(" ", 1)[0] == field_name for e in errors)


def export_table(course: Course) -> list[dict[str, str]]:
    return [item_cells(v) for _item, v in list_items(course, active=True)]


def export_csv(course: Course) -> bytes:
    """UTF-8 with a byte-order mark (Excel reads the Korean right); importable unchanged."""
    return csv_bytes([IMPORT_COLUMNS, *([_csv_out(row[c]) for c in IMPORT_COLUMNS] for row in export_table(course))])


def export_xlsx(course: Course) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    ws = wb.active
    ws.title = "items"
    ws.append(list(IMPORT_COLUMNS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    points_col = IMPORT_COLUMNS.index("points") + 1
    for r, row in enumerate(export_table(course), start=2):
        for c, name in enumerate(IMPORT_COLUMNS, start=1):
            value = row[name]
            if c == points_col:
                number = float(value)
                cell = ws.cell(row=r, column=c, value=int(number) if number.is_integer() else number)
            elif value:
                cell = ws.cell(row=r, column=c, value=value)
                cell.data_type = "s"  # text, never a formula
                if "\n" in value:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
    for letter, width in zip("ABCDEFGHI", (10, 16, 60, 40, 12, 40, 40, 8, 24)):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def export_filename(course: Course, ext: str) -> str:
    code = re.sub(r"[^A-Za-z0-9_-]", "_", course.code or "") or "course"
    return f"items-{code}-{clock.to_kst(clock.now()).strftime('%Y%m%d')}.{ext}"
