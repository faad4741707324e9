"""Item banks (EXM-5, EXM-6, EXM-12): the four kinds of item, validation, access, versions
kept by attempts, retire/replace, CSV/XLSX import with row-level reports, export round
trip, and the bank pages."""
from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from conftest import assert_api_error, bearer
from conftest import table_counts as _all_counts

COURSE = {"code": "IB101", "title": "사회복지학개론", "credits": 3, "starts_on": "2027-03-02",
          "weeks": 15, "capacity": 100}

SINGLE = {"difficulty": "easy", "kind": "single_choice", "prompt": "대한민국의 수도는?",
          "choices": ["부산", "서울", "대구"], "answer": 1, "points": 2, "tags": ["week:1", "topic:지리"]}
MULTIPLE = {"difficulty": "medium", "kind": "multiple_choice", "prompt": "짝수를 모두 고르시오.",
            "choices": ["1", "2", "3", "4"], "answer": [1, 3], "points": 3, "tags": ["week:2"]}
SHORT = {"difficulty": "hard", "kind": "short_answer", "prompt": "사회복지의 영문 표기는?",
         "answer": "social welfare", "points": 4}
ESSAY = {"difficulty": "hard", "kind": "essay", "prompt": "복지국가의 유형을 논하시오.",
         "model_answer": "에스핑-안데르센의 세 가지 유형…", "rubric": "유형 3개 각 3점, 논리 1점", "points": 10,
         "tags": ["week:5"]}


def make_course(client, token, **over) -> int:
    r = client.post("/api/v1/courses", json={**COURSE, **over}, headers=bearer(token))
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def add_item(client, token, course_id, body):
    return client.post(f"/api/v1/courses/{course_id}/items", json=body, headers=bearer(token))


def created(client, token, course_id, body) -> dict:
    r = add_item(client, token, course_id, body)
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def assign(client, admin_token, course_id, user_id, role):
    r = client.post(f"/api/v1/courses/{course_id}/staff", json={"user_id": user_id, "role": role},
                    headers=bearer(admin_token))
    assert r.status_code == 201, r.get_json()


@pytest.fixture
def course_id(client, admin_token):
    return make_course(client, admin_token)


def upload(client, token, course_id, content: bytes, filename: str):
    return client.post(f"/api/v1/courses/{course_id}/items/import", headers=bearer(token),
                       data={"file": (io.BytesIO(content), filename)}, content_type="multipart/form-data")


def csv_bytes(rows, encoding="utf-8") -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        w.writerow(row)
    return buf.getvalue().encode(encoding)


def xlsx_bytes(rows) -> bytes:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def table_counts(app) -> dict[str, int]:
    """Rows of every table but the access log (which records every request, refused or not)."""
    return {k: v for k, v in _all_counts(app).items() if k != "access_log"}


def counts(client, token, course_id) -> dict[str, int]:
    """Active items per level (EXM-5)."""
    return client.get(f"/api/v1/courses/{course_id}/items", headers=bearer(token)).get_json()["counts"]


def item_rows(app) -> int:
    return table_counts(app)["item"]


CONTENT_KEYS = ("difficulty", "kind", "prompt", "choices", "answer", "model_answer", "rubric", "points", "tags")


def content(item: dict) -> dict:
    return {k: item[k] for k in CONTENT_KEYS}


# --- creation and validation (EXM-12) --------------------------------------------------

def test_create_all_four_kinds_with_scoring_keys_exm12(client, admin_token, course_id):
    """EXM-12: every kind is stored with its scoring key or model answer and rubric."""
    single = created(client, admin_token, course_id, SINGLE)
    assert single["version"] == 1 and single["answer"] == 1 and single["choices"] == SINGLE["choices"]
    assert single["tags"] == ["week:1", "topic:지리"] and single["active"] is True
    multiple = created(client, admin_token, course_id, MULTIPLE)
    assert multiple["answer"] == [1, 3]
    short = created(client, admin_token, course_id, SHORT)
    assert short["answer"] == ["social welfare"] and short["choices"] is None  # accepted answers: a list
    short2 = created(client, admin_token, course_id, {**SHORT, "answer": ["서울", "Seoul"]})
    assert short2["answer"] == ["서울", "Seoul"]
    essay = created(client, admin_token, course_id, ESSAY)
    assert essay["model_answer"] == ESSAY["model_answer"] and essay["rubric"] == ESSAY["rubric"]
    assert essay["answer"] is None

    r = client.get(f"/api/v1/items/{essay['id']}", headers=bearer(admin_token))
    assert r.status_code == 200 and content(r.get_json()) == content(essay)
    r = client.get(f"/api/v1/courses/{course_id}/items", headers=bearer(admin_token))
    body = r.get_json()
    assert [i["id"] for i in body["items"]] == [single["id"], multiple["id"], short["id"], short2["id"], essay["id"]]
    assert body["counts"] == {"easy": 1, "medium": 1, "hard": 3}
    assert body["levels"] == ["easy", "medium", "hard"]


BAD_BODIES = [
    {**SINGLE, "kind": "true_false"},  # unknown kind
    {**SINGLE, "difficulty": "extreme"},  # not a level of the institution
    {**SINGLE, "answer": 3},  # index beyond the 3 choices
    {**SINGLE, "answer": -1},
    {**SINGLE, "answer": "1"},  # wrong type
    {**SINGLE, "answer": True},
    {**SINGLE, "answer": None},  # EXM-12: no scoring key
    {**SINGLE, "choices": ["only one"]},
    {**SINGLE, "choices": ["a", ""]},
    {**SINGLE, "choices": "a|b"},  # wrong type
    {**MULTIPLE, "answer": [1, 1]},
    {**MULTIPLE, "answer": []},
    {**MULTIPLE, "answer": [[1]]},
    {**SHORT, "answer": ""},
    {**SHORT, "answer": [1, 2]},
    {**SHORT, "choices": ["a", "b"]},
    {k: v for k, v in ESSAY.items() if k != "model_answer"},  # EXM-12: essay without a model answer
    {k: v for k, v in ESSAY.items() if k != "rubric"},  # EXM-12: essay without a rubric
    {**ESSAY, "rubric": "   "},
    {**ESSAY, "answer": "정답"},  # essays take a model answer, not a key
    {**SINGLE, "points": 0},
    {**SINGLE, "points": 1001},
    {**SINGLE, "points": "2"},  # wrong type
    {**SINGLE, "points": True},
    {**SINGLE, "prompt": ""},
    {**SINGLE, "prompt": "   "},
    {**SINGLE, "prompt": "a\x00b"},  # no database text column takes a NUL
    {**SINGLE, "tags": ["x" * 65]},
    {**SINGLE, "tags": [f"t{i}" for i in range(21)]},
    {**SINGLE, "tags": "week:1"},
    {**SINGLE, "extra": 1},  # unknown field
    {k: v for k, v in SINGLE.items() if k != "points"},
    {k: v for k, v in SINGLE.items() if k != "kind"},
]


def test_create_validation_400_writes_nothing_exm12(client, admin_token, course_id, app):
    before = table_counts(app)
    for body in BAD_BODIES:
        assert_api_error(add_item(client, admin_token, course_id, body), 400, "invalid_request")
    for raw in ('{"difficulty": "easy", "kind": "single_choice", "prompt": "p", "choices": ["a", "b"], '
                '"answer": 0, "points": NaN}',
                '{"difficulty": "easy", "kind": "single_choice", "prompt": "p", "choices": ["a", "b"], '
                '"answer": 0, "points": Infinity}',
                '{"difficulty": "easy", "kind": "single_choice", "prompt": "p", "choices": ["a", "b"], '
                '"answer": 0, "points": 1e400}',
                '{"difficulty": "easy", "kind": "single_choice", "prompt": "p", "choices": ["a", "b"], '
                '"answer": ' + "[" * 5000 + "]" * 5000 + ', "points": 1}',
                "[1, 2]", "not json", ""):
        r = client.post(f"/api/v1/courses/{course_id}/items", data=raw, content_type="application/json",
                        headers=bearer(admin_token))
        assert r.status_code == 400, (raw[:80], r.get_data(as_text=True)[:300])
    assert table_counts(app) == before


def test_institution_levels_are_used(client, admin_token, course_id, app):
    """EXM-3: an institution may define more difficulty levels than easy/medium/hard."""
    from lms.auth.models import Institution
    from lms.db import db

    with app.app_context():
        for inst in db.session.query(Institution):
            inst.difficulty_levels = ["very_easy", "easy", "medium", "hard", "very_hard"]
        db.session.commit()
    created(client, admin_token, course_id, {**SINGLE, "difficulty": "very_hard"})
    r = client.get(f"/api/v1/courses/{course_id}/items", headers=bearer(admin_token))
    assert r.get_json()["levels"] == ["very_easy", "easy", "medium", "hard", "very_hard"]
    assert r.get_json()["counts"] == {"very_hard": 1}


# --- access ------------------------------------------------------------------------------

def test_access_admins_and_the_courses_instructors_only(client, admin_token, users, course_id, app):
    item = created(client, admin_token, course_id, SINGLE)
    inst = users.create("inst1", "instructor")
    assign(client, admin_token, course_id, inst, "instructor")
    ta = users.create("ta1", "ta")
    assign(client, admin_token, course_id, ta, "ta")
    users.create("inst2", "instructor")  # instructor of no course here
    users.create("lrn1", "learner")
    other_course = make_course(client, admin_token, code="OTHER1")

    t_inst = users.login(client, "inst1")
    mine = created(client, t_inst, course_id, MULTIPLE)
    assert client.get(f"/api/v1/items/{item['id']}", headers=bearer(t_inst)).status_code == 200
    assert client.get(f"/api/v1/courses/{course_id}/items", headers=bearer(t_inst)).status_code == 200
    assert_api_error(add_item(client, t_inst, other_course, SINGLE), 403, "forbidden")

    before = table_counts(app)
    for who in ("ta1", "lrn1", "inst2"):
        t = users.login(client, who)
        for method, url, kw in (
                ("post", f"/api/v1/courses/{course_id}/items", {"json": SINGLE}),
                ("get", f"/api/v1/courses/{course_id}/items", {}),
                ("get", f"/api/v1/items/{item['id']}", {}),
                ("put", f"/api/v1/items/{item['id']}", {"json": SINGLE}),
                ("post", f"/api/v1/items/{item['id']}/retire", {}),
                ("post", f"/api/v1/items/{item['id']}/replace", {"json": SINGLE}),
                ("get", f"/api/v1/items/{item['id']}/versions", {}),
                ("get", f"/api/v1/courses/{course_id}/items/export", {})):
            r = getattr(client, method)(url, headers=bearer(t), **kw)
            assert_api_error(r, 403, "forbidden")
        r = upload(client, t, course_id, csv_bytes([["difficulty", "kind", "prompt", "points"]]), "a.csv")
        assert_api_error(r, 403, "forbidden")
    assert_api_error(client.get(f"/api/v1/items/{mine['id']}"), 401, "unauthorized")

    # unknown ids: 404
    assert_api_error(client.get("/api/v1/items/999999", headers=bearer(admin_token)), 404, "not_found")
    assert_api_error(client.put("/api/v1/items/999999", json=SINGLE, headers=bearer(admin_token)), 404, "not_found")
    assert_api_error(client.get("/api/v1/courses/999999/items", headers=bearer(admin_token)), 404, "not_found")
    assert_api_error(add_item(client, admin_token, 999999, SINGLE), 404, "not_found")
    assert_api_error(client.get("/api/v1/items/99999999999", headers=bearer(admin_token)), 404, "not_found")
    assert table_counts(app)["item"] == before["item"]


def test_course_and_items_of_another_institution_are_not_found(client, admin_token, users, course_id, app):
    from lms import clock
    from lms.auth.models import Institution
    from lms.db import db

    item = created(client, admin_token, course_id, SINGLE)
    with app.app_context():
        inst = Institution(code="other", name="다른 기관", created_at=clock.now())
        db.session.add(inst)
        db.session.commit()
        inst_id = inst.id
    users.create("admin2", "admin", institution_id=inst_id)
    t = users.login(client, "admin2")
    assert_api_error(client.get(f"/api/v1/courses/{course_id}/items", headers=bearer(t)), 404, "not_found")
    assert_api_error(add_item(client, t, course_id, SINGLE), 404, "not_found")
    assert_api_error(client.get(f"/api/v1/items/{item['id']}", headers=bearer(t)), 404, "not_found")
    assert_api_error(client.put(f"/api/v1/items/{item['id']}", json=SINGLE, headers=bearer(t)), 404, "not_found")
    assert_api_error(client.post(f"/api/v1/items/{item['id']}/retire", headers=bearer(t)), 404, "not_found")
    assert_api_error(client.get(f"/api/v1/courses/{course_id}/items/export", headers=bearer(t)), 404, "not_found")


# --- listing -------------------------------------------------------------------------------

def test_list_filters(client, admin_token, course_id):
    a = created(client, admin_token, course_id, SINGLE)
    b = created(client, admin_token, course_id, MULTIPLE)
    c = created(client, admin_token, course_id, ESSAY)
    client.post(f"/api/v1/items/{b['id']}/retire", headers=bearer(admin_token))
    url = f"/api/v1/courses/{course_id}/items"

    def ids(query):
        r = client.get(url + query, headers=bearer(admin_token))
        assert r.status_code == 200, r.get_json()
        return [i["id"] for i in r.get_json()["items"]]

    assert ids("") == [a["id"], b["id"], c["id"]]
    assert ids("?active=true") == [a["id"], c["id"]]
    assert ids("?active=false") == [b["id"]]
    assert ids("?difficulty=hard") == [c["id"]]
    assert ids("?kind=multiple_choice") == [b["id"]]
    assert ids("?tag=week:1") == [a["id"]]
    assert ids("?tag=week:5&kind=essay&active=true") == [c["id"]]
    assert ids("?tag=nothing") == []
    for bad in ("?kind=nope", "?active=maybe", "?difficulty=" + "x" * 17, "?tag="):
        assert_api_error(client.get(url + bad, headers=bearer(admin_token)), 400, "invalid_request")


# --- editing and versions --------------------------------------------------------------

def _attempt_showing(app, course_id: int, item_id: int, learner_id: int) -> int:
    """An exam, an attempt and an AttemptItem showing the item's current version (written
    directly with the models). Returns the AttemptItem's id."""
    from lms import clock
    from lms.db import db
    from lms.exams.models import Attempt, AttemptItem, Exam, Item, ItemVersion

    with app.app_context():
        now = clock.now()
        item = db.session.get(Item, item_id)
        version = db.session.query(ItemVersion).filter_by(item_id=item_id, version=item.current_version).one()
        exam = Exam(course_id=course_id, title="중간고사", kind="midterm", opens_at=now, closes_at=now + timedelta(days=1),
                    duration_minutes=60, items_per_difficulty={"easy": 1}, status="announced", created_at=now)
        db.session.add(exam)
        db.session.flush()
        attempt = Attempt(exam_id=exam.id, learner_id=learner_id, started_at=now, deadline=now + timedelta(hours=1),
                          seed="s", ip="127.0.0.1")
        db.session.add(attempt)
        db.session.flush()
        ai = AttemptItem(attempt_id=attempt.id, item_id=item_id, item_version_id=version.id, position=1,
                         choice_order=[2, 0, 1])
        db.session.add(ai)
        db.session.commit()
        return ai.id


def _attempt_item_version(app, attempt_item_id: int) -> tuple[int, str]:
    from lms.db import db
    from lms.exams.models import AttemptItem, ItemVersion

    with app.app_context():
        ai = db.session.get(AttemptItem, attempt_item_id)
        v = db.session.get(ItemVersion, ai.item_version_id)
        return v.version, v.prompt


def test_edit_unused_item_corrects_the_version_in_place(client, admin_token, course_id, app):
    item = created(client, admin_token, course_id, SINGLE)
    body = {**SINGLE, "prompt": "고친 문제", "answer": 2, "difficulty": "medium"}
    r = client.put(f"/api/v1/items/{item['id']}", json=body, headers=bearer(admin_token))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["version"] == 1 and body["new_version"] is False
    assert body["prompt"] == "고친 문제" and body["answer"] == 2 and body["difficulty"] == "medium"
    r = client.get(f"/api/v1/items/{item['id']}/versions", headers=bearer(admin_token))
    v = r.get_json()
    assert v["current_version"] == 1 and len(v["versions"]) == 1 and v["versions"][0]["prompt"] == "고친 문제"
    # Item.difficulty follows the version (bank counts use it).
    assert counts(client, admin_token, course_id) == {"medium": 1}


def test_edit_item_shown_in_an_attempt_creates_version_2(client, admin_token, users, course_id, app):
    """Items are versioned: editing an item an attempt showed makes version 2; the attempt
    keeps version 1 (its scoring key and prompt, EXM-12)."""
    item = created(client, admin_token, course_id, SINGLE)
    learner = users.create("lrn1", "learner")
    ai = _attempt_showing(app, course_id, item["id"], learner)

    edited = {**SHORT, "prompt": "새 문제", "difficulty": "medium", "tags": ["week:9"]}
    r = client.put(f"/api/v1/items/{item['id']}", json=edited, headers=bearer(admin_token))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["version"] == 2 and body["new_version"] is True and body["id"] == item["id"]
    assert body["kind"] == "short_answer" and body["difficulty"] == "medium" and body["tags"] == ["week:9"]
    assert _attempt_item_version(app, ai) == (1, SINGLE["prompt"])

    with app.app_context():
        from lms.db import db
        from lms.exams.models import Item

        row = db.session.get(Item, item["id"])
        assert (row.current_version, row.kind, row.difficulty, row.tags) == (2, "short_answer", "medium", ["week:9"])

    versions = client.get(f"/api/v1/items/{item['id']}/versions", headers=bearer(admin_token)).get_json()
    assert versions["current_version"] == 2
    assert [(v["version"], v["current"], v["attempts"]) for v in versions["versions"]] == [(1, False, 1), (2, True, 0)]
    assert versions["versions"][0]["answer"] == 1 and versions["versions"][0]["choices"] == SINGLE["choices"]

    # Version 2 has not been shown: the next edit corrects it in place.
    r = client.put(f"/api/v1/items/{item['id']}", json={**edited, "prompt": "새 문제 (수정)"}, headers=bearer(admin_token))
    assert r.get_json()["version"] == 2 and r.get_json()["new_version"] is False
    versions = client.get(f"/api/v1/items/{item['id']}/versions", headers=bearer(admin_token)).get_json()
    assert len(versions["versions"]) == 2
    assert _attempt_item_version(app, ai) == (1, SINGLE["prompt"])


def test_edit_without_change_and_invalid_edit_change_nothing(client, admin_token, users, course_id, app):
    item = created(client, admin_token, course_id, SINGLE)
    learner = users.create("lrn1", "learner")
    _attempt_showing(app, course_id, item["id"], learner)
    r = client.put(f"/api/v1/items/{item['id']}", json=SINGLE, headers=bearer(admin_token))
    assert r.status_code == 200 and r.get_json()["version"] == 1  # same content: no new version
    before = table_counts(app)
    for body in ({**SINGLE, "answer": 7}, {**ESSAY, "rubric": None}, {**SINGLE, "points": "x"}, {**SINGLE, "id": 3}):
        assert_api_error(client.put(f"/api/v1/items/{item['id']}", json=body, headers=bearer(admin_token)),
                         400, "invalid_request")
    assert table_counts(app) == before
    got = client.get(f"/api/v1/items/{item['id']}", headers=bearer(admin_token)).get_json()
    assert got["prompt"] == SINGLE["prompt"]


# --- retire and replace (EXM-5) ----------------------------------------------------------

def test_retire_and_replace_exm5(client, admin_token, course_id, app):
    """EXM-5: items whose difficulty needs adjusting are partly replaced: the new item
    names the one it replaces, which is retired (no longer drawn)."""
    a = created(client, admin_token, course_id, SINGLE)
    b = created(client, admin_token, course_id, {**SINGLE, "prompt": "두 번째"})

    r = client.post(f"/api/v1/items/{a['id']}/retire", headers=bearer(admin_token))
    assert r.status_code == 200
    assert r.get_json()["active"] is False and r.get_json()["retired_at"]
    assert_api_error(client.post(f"/api/v1/items/{a['id']}/retire", headers=bearer(admin_token)), 409, "item_retired")
    assert_api_error(client.put(f"/api/v1/items/{a['id']}", json=SINGLE, headers=bearer(admin_token)),
                     409, "item_retired")
    assert_api_error(client.post(f"/api/v1/items/{a['id']}/replace", json=SINGLE, headers=bearer(admin_token)),
                     409, "item_retired")
    assert counts(client, admin_token, course_id) == {"easy": 1}

    before = table_counts(app)
    assert_api_error(client.post(f"/api/v1/items/{b['id']}/replace", json={**SINGLE, "answer": 9},
                                 headers=bearer(admin_token)), 400, "invalid_request")
    assert table_counts(app) == before  # the old one is not retired either
    r = client.post(f"/api/v1/items/{b['id']}/replace", json={**SINGLE, "difficulty": "medium", "prompt": "교체 문항"},
                    headers=bearer(admin_token))
    assert r.status_code == 201, r.get_json()
    new = r.get_json()
    assert new["replaces_item_id"] == b["id"] and new["version"] == 1 and new["difficulty"] == "medium"
    old = client.get(f"/api/v1/items/{b['id']}", headers=bearer(admin_token)).get_json()
    assert old["active"] is False and old["retired_at"]
    assert counts(client, admin_token, course_id) == {"medium": 1}


# --- import (CSV, XLSX) --------------------------------------------------------------------

HEADER = ["difficulty", "kind", "prompt", "choices", "answer", "model_answer", "rubric", "points", "tags"]
GOOD_ROWS = [
    ["easy", "single_choice", "수도는?", "부산|서울|대구", "2", "", "", "2", "week:1|topic:지리"],
    ["medium", "multiple_choice", "짝수는?", "1|2|3|4", "2|4", "", "", "3", ""],
    ["hard", "short_answer", "영문 표기는?", "", "social welfare|Social Welfare", "", "", "1.5", "week:2"],
    ["hard", "essay", "논하시오.", "", "", "모범답안", "채점 기준", "10", ""],
]
BAD_ROWS = [
    ["easy", "single_choice", "보기 번호 초과", "a|b|c", "4", "", "", "1", ""],  # answer beyond the choices
    ["hard", "essay", "채점 기준 없음", "", "", "모범답안", "", "10", ""],  # EXM-12
    ["easy", "true_false", "유형 오류", "", "", "", "", "1", ""],
    ["easy", "single_choice", "배점 오류", "a|b", "1", "", "", "nan", ""],
    ["extreme", "short_answer", "난이도 오류", "", "답", "", "", "1", ""],
    ["easy", "multiple_choice", "중복 정답", "a|b|c", "1|1", "", "", "1", ""],
]


def _check_mixed_report(client, token, course_id, r, app):
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    body = r.get_json()
    assert body["imported"] == 4 and len(body["item_ids"]) == 4
    # Rows: header 1, good 2–3, bad 4–5, an empty row 6 (skipped), good 7–8, bad 9–12.
    assert [x["row"] for x in body["rejected"]] == [4, 5, 9, 10, 11, 12]
    errors = {x["row"]: " ".join(x["errors"]) for x in body["rejected"]}
    assert "answer" in errors[4] and "1…3" in errors[4]
    assert "rubric" in errors[5]
    assert "kind" in errors[9]
    assert "points" in errors[10]
    assert "difficulty" in errors[11]
    assert "answer" in errors[12]
    listed = client.get(f"/api/v1/courses/{course_id}/items", headers=bearer(token)).get_json()["items"]
    assert [i["id"] for i in listed] == body["item_ids"]
    by_prompt = {i["prompt"]: i for i in listed}
    assert by_prompt["수도는?"]["answer"] == 1 and by_prompt["수도는?"]["tags"] == ["week:1", "topic:지리"]
    assert by_prompt["짝수는?"]["answer"] == [1, 3]
    assert by_prompt["영문 표기는?"]["answer"] == ["social welfare", "Social Welfare"]
    assert by_prompt["영문 표기는?"]["points"] == 1.5
    assert by_prompt["논하시오."]["rubric"] == "채점 기준" and by_prompt["논하시오."]["answer"] is None
    assert item_rows(app) == 4


def _mixed():
    return [HEADER, *GOOD_ROWS[:2], *BAD_ROWS[:2], [], *GOOD_ROWS[2:], *BAD_ROWS[2:]]


def test_import_csv_keeps_good_rows_and_reports_bad_rows(client, admin_token, course_id, app):
    r = upload(client, admin_token, course_id, csv_bytes(_mixed()), "bank.csv")
    _check_mixed_report(client, admin_token, course_id, r, app)


def test_import_xlsx_keeps_good_rows_and_reports_bad_rows(client, admin_token, course_id, app):
    rows = _mixed()
    rows[1] = ["easy", "single_choice", "수도는?", "부산|서울|대구", 2, None, None, 2, "week:1|topic:지리"]  # numbers
    r = upload(client, admin_token, course_id, xlsx_bytes([row or [None] for row in rows]), "bank.XLSX")
    _check_mixed_report(client, admin_token, course_id, r, app)


def test_import_cp949_csv_and_columns_in_any_order(client, admin_token, course_id, app):
    """Korean Excel saves CSV as CP949; columns may come in any order and case."""
    rows = [["Points", "KIND", "prompt", "difficulty", "choices", "answer"],
            ["1", "single_choice", "한글 문제", "easy", "가|나", "1"]]
    r = upload(client, admin_token, course_id, csv_bytes(rows, "cp949"), "한글.csv")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["imported"] == 1 and r.get_json()["rejected"] == []
    item = client.get(f"/api/v1/items/{r.get_json()['item_ids'][0]}", headers=bearer(admin_token)).get_json()
    assert item["prompt"] == "한글 문제" and item["choices"] == ["가", "나"] and item["answer"] == 0


def test_import_all_rows_bad_adds_nothing(client, admin_token, course_id, app):
    r = upload(client, admin_token, course_id, csv_bytes([HEADER, *BAD_ROWS]), "bad.csv")
    assert r.status_code == 200
    assert r.get_json()["imported"] == 0 and len(r.get_json()["rejected"]) == len(BAD_ROWS)
    assert item_rows(app) == 0


def test_import_row_with_more_cells_than_the_header_is_rejected(client, admin_token, course_id, app):
    rows = [["difficulty", "kind", "prompt", "points", "answer", "choices"],
            ["easy", "single_choice", "p", "1", "1", "a|b", "stray"],
            ["easy", "single_choice", "p", "1", "1", "a|b", ""]]
    r = upload(client, admin_token, course_id, csv_bytes(rows), "x.csv")
    assert r.status_code == 200
    assert r.get_json()["imported"] == 1 and [x["row"] for x in r.get_json()["rejected"]] == [2]


def test_unreadable_files_are_refused_whole(client, admin_token, course_id, app):
    """A file that cannot be read at all is 400 (413 when too large) and adds nothing."""
    from lms.exams import items

    before = table_counts(app)
    good = [HEADER, GOOD_ROWS[0]]
    cases = [
        (csv_bytes(good), "bank.txt"),  # neither .csv nor .xlsx
        (csv_bytes(good), "noextension"),
        (b"", "empty.csv"),
        (b"\r\n\r\n", "blank.csv"),
        (csv_bytes([HEADER]), "header-only.csv"),
        (csv_bytes([[*HEADER, "colour"], [*GOOD_ROWS[0], "red"]]), "unknown-column.csv"),
        (csv_bytes([["difficulty", "kind", "prompt"], ["easy", "essay", "p"]]), "missing-points.csv"),
        (csv_bytes([["difficulty", "kind", "prompt", "points", "points"], ["easy", "essay", "p", "1", "1"]]),
         "dupe.csv"),
        (csv_bytes([["difficulty", "", "kind", "prompt", "points"], ["easy", "", "essay", "p", "1"]]), "blank-col.csv"),
        (b"\xff\xfe\x00\x00garbage\x81\x00", "binary.csv"),
        (b"difficulty,kind,prompt,points\r\neasy,essay,\"unterminated\x00,1\r\n", "nul.csv"),
        (b"PK\x03\x04 not really a zip", "broken.xlsx"),
        (csv_bytes(good), "csv-named.xlsx"),
        (xlsx_bytes([]), "empty.xlsx"),
        (csv_bytes([HEADER] + [GOOD_ROWS[0]] * (items.MAX_IMPORT_ROWS + 1)), "too-many.csv"),
    ]
    for content, name in cases:
        r = upload(client, admin_token, course_id, content, name)
        assert_api_error(r, 400, "invalid_request")
    # no file, or another field
    r = client.post(f"/api/v1/courses/{course_id}/items/import", headers=bearer(admin_token), data={},
                    content_type="multipart/form-data")
    assert_api_error(r, 400, "invalid_request")
    r = client.post(f"/api/v1/courses/{course_id}/items/import", headers=bearer(admin_token), json={"file": "x"})
    assert_api_error(r, 400, "invalid_request")
    # too large: 413 (the file's own limit and the request's)
    big = csv_bytes(good) + b"#" * (items.MAX_IMPORT_BYTES + 10)
    assert_api_error(upload(client, admin_token, course_id, big, "big.csv"), 413, "payload_too_large")
    huge = b"x" * (items.MAX_IMPORT_BYTES + 200 * 1024)
    assert_api_error(upload(client, admin_token, course_id, huge, "huge.csv"), 413, "payload_too_large")
    assert table_counts(app) == before


def test_import_just_under_the_limits_is_accepted(client, admin_token, course_id, app):
    """5,000 rows are accepted in one go; a file above the app's 1 MB body limit is fine."""
    from lms.exams import items

    rows = [HEADER] + [["easy", "essay", f"문제 {i} " + "가" * 60, "", "", "모범답안", "채점 기준", "1", "week:1"]
                       for i in range(items.MAX_IMPORT_ROWS)]
    content = csv_bytes(rows)
    assert 1024 * 1024 < len(content) < items.MAX_IMPORT_BYTES
    r = upload(client, admin_token, course_id, content, "big.csv")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert r.get_json()["imported"] == items.MAX_IMPORT_ROWS and r.get_json()["rejected"] == []
    assert item_rows(app) == items.MAX_IMPORT_ROWS


def test_xlsx_zip_bomb_is_refused(client, admin_token, course_id, app):
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/sharedStrings.xml", b"<sst>" + b"A" * (80 * 1024 * 1024) + b"</sst>")
    assert len(buf.getvalue()) < 1024 * 1024
    assert_api_error(upload(client, admin_token, course_id, buf.getvalue(), "bomb.xlsx"), 400, "invalid_request")
    assert item_rows(app) == 0


# --- export and the round trip ----------------------------------------------------------

TRICKY = [
    {**SINGLE, "choices": ["a|b", "c\\d", "평범한 보기"], "answer": 0, "prompt": "=1+1 은?\n두 번째 줄, \"따옴표\""},
    {**MULTIPLE, "prompt": "-3 + 5 = ?", "choices": ["+2", "@x", "'인용", "2"], "answer": [0, 3], "points": 2.5},
    {**SHORT, "answer": ["서울|Seoul", "'s", "back\\slash"], "tags": ["week:3", "topic:a|b"]},
    {**ESSAY, "model_answer": "=SUM(A1)\n두 줄", "rubric": "- 항목 1\n- 항목 2", "tags": None},
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_export_import_round_trip(client, admin_token, course_id, app, fmt):
    """What is exported imports back unchanged (into another course); retired items are
    not exported."""
    made = [created(client, admin_token, course_id, body) for body in TRICKY]
    retired = created(client, admin_token, course_id, {**SINGLE, "prompt": "폐기할 문항"})
    client.post(f"/api/v1/items/{retired['id']}/retire", headers=bearer(admin_token))

    r = client.get(f"/api/v1/courses/{course_id}/items/export?format={fmt}", headers=bearer(admin_token))
    assert r.status_code == 200
    assert f".{fmt}" in r.headers["Content-Disposition"] and "attachment" in r.headers["Content-Disposition"]
    data = r.get_data()
    if fmt == "csv":
        assert r.mimetype == "text/csv" and data.startswith("\ufeff".encode())
        text = data.decode("utf-8-sig")
        assert text.splitlines()[0] == ",".join(HEADER)
        assert "'=1+1" in text and "'-3 + 5" in text  # no cell starts a formula
        assert "폐기할 문항" not in text
    else:
        from openpyxl import load_workbook

        ws = load_workbook(io.BytesIO(data)).active
        assert [c.value for c in ws[1]] == HEADER
        assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
        assert ws.max_row == 1 + len(TRICKY)

    other = make_course(client, admin_token, code="IB102")
    r = upload(client, admin_token, other, data, f"export.{fmt}")
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["imported"] == len(TRICKY) and r.get_json()["rejected"] == []
    imported = client.get(f"/api/v1/courses/{other}/items", headers=bearer(admin_token)).get_json()["items"]
    expected = [content(m) for m in made]
    for e in expected:
        if isinstance(e["answer"], str):
            e["answer"] = [e["answer"]]
    assert [content(i) for i in imported] == expected

    # the empty bank exports its header only
    empty = make_course(client, admin_token, code="IB103")
    r = client.get(f"/api/v1/courses/{empty}/items/export?format={fmt}", headers=bearer(admin_token))
    assert r.status_code == 200
    assert_api_error(client.get(f"/api/v1/courses/{empty}/items/export?format=pdf", headers=bearer(admin_token)),
                     400, "invalid_request")


def test_cell_splitting():
    from lms.exams import items

    assert items.split_cell("a|b\\|c|d\\\\|") == ["a", "b|c", "d\\", ""]
    assert items.split_cell("  ") == []
    assert items.split_cell("C:\\path") == ["C:\\path"]
    for parts in (["a|b", "c\\d", "e"], ["x\\|y"], ["\\"]):
        assert items.split_cell(items.join_cell(parts)) == parts


# --- pages ---------------------------------------------------------------------------------

def _csrf(resp) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True))
    assert m, "no csrf_token on the page"
    return m.group(1)


def web_login(client, users, username):
    page = client.get("/login")
    r = client.post("/login", data={"csrf_token": _csrf(page), "username": username,
                                    "password": users.passwords[username]})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    page = client.get("/login/otp")
    r = client.post("/login/otp", data={"csrf_token": _csrf(page), "code": users.code(username)})
    assert r.status_code == 302, r.get_data(as_text=True)[:300]


def test_bank_pages_for_an_admin(app, client, users, admin_token, course_id):
    """The item bank page (EXM-6: items live in the LMS): counts per level, add, import
    with the row report, edit (a new version once shown), retire."""
    item = created(client, admin_token, course_id, SINGLE)
    web = app.test_client()
    web_login(web, users, "admin1")  # ends admin_token's session (EXM-9): API reads go through the cookie

    home = web.get("/").get_data(as_text=True)
    assert "/items" in home and "문항 은행" in home
    r = web.get("/items")
    assert r.status_code == 200 and f"/courses/{course_id}/items" in r.get_data(as_text=True)

    r = web.get(f"/courses/{course_id}/items")
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert "문항 은행" in page and 'data-level="easy">1<' in page and f'data-item-id="{item["id"]}"' in page
    assert f"/api/v1/courses/{course_id}/items/export?format=xlsx" in page
    assert "difficulty,kind,prompt,choices,answer,model_answer,rubric,points,tags" in page
    token = _csrf(r)

    # add an item through the form (choices one per line, answer numbered from 1)
    r = web.post(f"/courses/{course_id}/items", data={
        "csrf_token": token, "difficulty": "hard", "kind": "multiple_choice", "prompt": "폼 문제",
        "choices": "가\r\n나\r\n\r\n다\r\n", "answer": "1|3", "points": "2", "tags": "week:4"})
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    listed = web.get(f"/api/v1/courses/{course_id}/items").get_json()["items"]
    new = listed[-1]
    assert (new["prompt"], new["choices"], new["answer"], new["tags"]) == ("폼 문제", ["가", "나", "다"], [0, 2], ["week:4"])
    # a bad form shows the problems and writes nothing
    r = web.post(f"/courses/{course_id}/items", data={
        "csrf_token": token, "difficulty": "hard", "kind": "essay", "prompt": "서술", "points": "5"})
    assert r.status_code == 400 and "rubric" in r.get_data(as_text=True)
    assert len(web.get(f"/api/v1/courses/{course_id}/items").get_json()["items"]) == 2
    # no CSRF token: refused
    r = web.post(f"/courses/{course_id}/items", data={"difficulty": "easy"})
    assert r.status_code == 400

    # import shows the row-level report
    r = web.post(f"/courses/{course_id}/items/import", content_type="multipart/form-data",
                 data={"csrf_token": token,
                       "file": (io.BytesIO(csv_bytes([HEADER, GOOD_ROWS[0], BAD_ROWS[0]])), "b.csv")})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'data-testid="import-report"' in page and 'data-row="3"' in page
    r = web.post(f"/courses/{course_id}/items/import", content_type="multipart/form-data",
                 data={"csrf_token": token, "file": (io.BytesIO(b"nonsense"), "b.pdf")})
    assert r.status_code == 400 and 'data-testid="import-error"' in r.get_data(as_text=True)

    # edit: in place while unused, then a new version once an attempt showed it
    learner = users.create("lrn1", "learner")
    r = web.get(f"/courses/{course_id}/items/{item['id']}")
    assert r.status_code == 200 and "서울" in r.get_data(as_text=True)
    form = {"csrf_token": token, "action": "save", "difficulty": "easy", "kind": "single_choice",
            "prompt": "고친 문제", "choices": "부산\n서울\n대구", "answer": "2", "points": "2", "tags": "week:1"}
    assert web.post(f"/courses/{course_id}/items/{item['id']}", data=form).status_code == 303
    got = web.get(f"/api/v1/items/{item['id']}").get_json()
    assert got["version"] == 1 and got["prompt"] == "고친 문제" and got["answer"] == 1
    ai = _attempt_showing(app, course_id, item["id"], learner)
    assert 'data-testid="in-use"' in web.get(f"/courses/{course_id}/items/{item['id']}").get_data(as_text=True)
    assert web.post(f"/courses/{course_id}/items/{item['id']}", data={**form, "prompt": "v2"}).status_code == 303
    assert web.get(f"/api/v1/items/{item['id']}").get_json()["version"] == 2
    assert _attempt_item_version(app, ai) == (1, "고친 문제")
    r = web.post(f"/courses/{course_id}/items/{item['id']}", data={**form, "answer": "9"})
    assert r.status_code == 400

    # replace (EXM-5) and retire
    r = web.post(f"/courses/{course_id}/items/{item['id']}", data={**form, "action": "replace", "prompt": "교체"})
    assert r.status_code == 303
    assert web.get(f"/api/v1/items/{item['id']}").get_json()["active"] is False
    r = web.post(f"/courses/{course_id}/items/{new['id']}/retire", data={"csrf_token": token})
    assert r.status_code == 303
    assert web.get(f"/api/v1/items/{new['id']}").get_json()["active"] is False
    r = web.get(f"/courses/{course_id}/items?active=0&kind=multiple_choice")
    assert r.status_code == 200 and f'data-item-id="{new["id"]}"' in r.get_data(as_text=True)
    assert web.get(f"/courses/{course_id}/items?active=zz&kind=zz&difficulty=zz").status_code == 200
    assert web.get(f"/courses/{course_id}/items/999999").status_code == 404


def test_bank_pages_refuse_learners_tas_and_other_courses(app, client, users, admin_token, course_id):
    item = created(client, admin_token, course_id, SINGLE)
    users.create("lrn1", "learner")
    ta = users.create("ta1", "ta")
    assign(client, admin_token, course_id, ta, "ta")
    for who in ("lrn1", "ta1"):
        web = app.test_client()
        web_login(web, users, who)
        assert web.get(f"/courses/{course_id}/items").status_code == 403
        assert web.get(f"/courses/{course_id}/items/{item['id']}").status_code == 403
        assert web.get("/items").status_code == 403
    inst = users.create("inst1", "instructor")
    web = app.test_client()
    web_login(web, users, "inst1")
    r = web.get("/items")
    assert r.status_code == 200 and f"/courses/{course_id}/items" not in r.get_data(as_text=True)
    r = web.get(f"/courses/{course_id}/items")
    assert r.status_code == 403 and "교수자" in r.get_data(as_text=True)
    assign(client, admin_token, course_id, inst, "instructor")
    assert web.get(f"/courses/{course_id}/items").status_code == 200
    other = make_course(client, admin_token, code="IB109")
    assert web.get(f"/courses/{other}/items/{item['id']}").status_code == 403
    assert web.get(f"/courses/{course_id}/items/{item['id']}").status_code == 200
    assert web.get("/courses/999999/items").status_code == 404


def test_odd_input_is_never_a_server_error(client, admin_token, course_id, app):
    """Odd queries, bodies and workbooks answer 4xx (or a report), never 500."""
    import zipfile

    item = created(client, admin_token, course_id, SINGLE)
    h = bearer(admin_token)
    for query in ("?difficulty=%00", "?tag=%00", "?difficulty=a%00b&tag=x"):
        r = client.get(f"/api/v1/courses/{course_id}/items{query}", headers=h)
        assert r.status_code in (200, 400), r.get_data(as_text=True)[:300]
    for body in ([1], "x", None, {**SINGLE, "answer": 10**30}, {**MULTIPLE, "answer": list(range(100_000))},
                 {**SINGLE, "choices": ["a\x00", "b"]}, {**ESSAY, "rubric": "r\x00"}, {**SINGLE, "tags": ["\x00"]},
                 {**SHORT, "answer": ["ok", "\x00"]}, {**SINGLE, "choices": ["a"] * 11, "answer": 0}):
        r = client.put(f"/api/v1/items/{item['id']}", json=body, headers=h)
        assert_api_error(r, 400, "invalid_request")
    # a zip that is no workbook; a workbook with formulas, dates, booleans and wide rows
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w/>")
    assert_api_error(upload(client, admin_token, course_id, buf.getvalue(), "doc.xlsx"), 400, "invalid_request")
    from datetime import datetime

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["difficulty", "kind", "prompt", "points", "choices", "answer"])
    ws.append(["easy", "single_choice", "=1+1", 1, "a|b", "=A1"])  # formulas without cached values
    ws.append(["easy", "single_choice", datetime(2027, 1, 1), True, "a|b", 1.0])
    ws.append(["easy", "single_choice", "wide", 1, "a|b", 1, *([None] * 50), "stray"])
    ws.append(["easy", "single_choice", "ok", 1.5, "a|b", 2.0])
    out = io.BytesIO()
    wb.save(out)
    r = upload(client, admin_token, course_id, out.getvalue(), "odd.xlsx")
    assert r.status_code == 200, r.get_data(as_text=True)[:300]
    assert r.get_json()["imported"] == 1 and [x["row"] for x in r.get_json()["rejected"]] == [2, 3, 4]
    # a CSV cell beyond the csv module's field limit: the file cannot be read
    big_cell = csv_bytes([HEADER, ["easy", "essay", "x" * 200_000, "", "", "m", "r", "1", ""]])
    assert_api_error(upload(client, admin_token, course_id, big_cell, "long.csv"), 400, "invalid_request")


def test_openapi_document_lists_the_item_endpoints(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    for path, method in (("/api/v1/courses/{course_id}/items", "get"), ("/api/v1/items/{item_id}", "put"),
                         ("/api/v1/items/{item_id}/retire", "post"), ("/api/v1/items/{item_id}/replace", "post"),
                         ("/api/v1/items/{item_id}/versions", "get"),
                         ("/api/v1/courses/{course_id}/items/import", "post"),
                         ("/api/v1/courses/{course_id}/items/export", "get")):
        assert method in paths[path], (path, method)


def test_exm3_in_place_edit_waits_for_a_draw_holding_the_bank(client, admin_token, course_id, app):
    """EXM-3/EXM-5 versioning under concurrency (PostgreSQL): a draw holds its course's bank
    lock shared until it commits; an in-place edit takes it exclusively, so it waits for the
    draw (and would then see the draw's attempt rows and make a new version). Two draws'
    shared holds do not wait for each other."""
    import threading

    from conftest import TEST_DB
    from sqlalchemy import text

    from lms.db import advisory_lock_number, db
    from lms.exams.items import bank_lock_key

    if TEST_DB != "postgresql":
        pytest.skip("PostgreSQL advisory locks (SQLite has one writer at a time)")
    item = created(client, admin_token, course_id, SINGLE)
    key = advisory_lock_number(bank_lock_key(course_id))
    with app.app_context():
        engine = db.engine
    draw_a, draw_b = engine.connect(), engine.connect()
    try:
        draw_a.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": key})
        # A second draw takes the shared lock at once (it would hang here otherwise).
        draw_b.execute(text("SET lock_timeout = '2s'"))
        draw_b.execute(text("SELECT pg_advisory_xact_lock_shared(:k)"), {"k": key})
        draw_b.rollback()
        answers = []
        edit = threading.Thread(target=lambda: answers.append(client.put(
            f"/api/v1/items/{item['id']}", json={**SINGLE, "prompt": "고친 문제"},
            headers=bearer(admin_token)).status_code))
        edit.start()
        edit.join(1.0)
        assert edit.is_alive() and answers == []  # waiting for the draw
        draw_a.commit()
        edit.join(10)
        assert answers == [200]
    finally:
        draw_a.close()
        draw_b.close()
