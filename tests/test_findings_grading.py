"""Cheating findings (EXM-13) and the essay grading queue (EXM-12): a finding sets
``cheating_found``, is appended to the exam evidence and listed, and grading learns of it;
only the course's instructor or an admin records one. Essays wait in the queue with their
rubric and model answer; grades outside 0…points are 400; grading the last essay clears
``needs_grading`` and sets the score; the pages."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from conftest import assert_api_error
from conftest import table_counts as _table_counts
from exam_world import OPENS, ExamWorld, users_id
from test_board import web_login

pytestmark = pytest.mark.usefixtures("app")


def table_counts(app) -> dict:
    counts = _table_counts(app)
    counts.pop("access_log")
    return counts


@pytest.fixture
def w(app, client, users):
    """lea sat the midterm (six essays, five answered) and submitted; leb's attempt is open."""
    world = ExamWorld(app, client, users, learners=("lea", "leb"), kinds=("essay",))
    users.create("ta1", "ta", name="이조교")
    users.create("insp", "inspector", name="점검자")
    r = client.post(f"/api/v1/courses/{world.cid}/staff", json={"user_id": users_id(app, "ta1"), "role": "ta"},
                    headers=world.ah())
    assert r.status_code == 201
    world.tokens.update(ta1=users.login(client, "ta1"), insp=users.login(client, "insp"))
    world.exam_ = world.exam()
    world.goto(OPENS)
    a = world.start("lea", world.exam_["id"]).get_json()
    for it in a["items"][:5]:
        r = client.put(f"/api/v1/attempts/{a['attempt_id']}/answers/{it['id']}", json={"answer": f"답안 {it['id']}"},
                       headers=world.h("lea"))
        assert r.status_code == 200
    r = client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=world.h("lea"))
    assert r.get_json()["needs_grading"] is True and r.get_json()["score"] == 0.0
    world.attempt = a
    r = client.post(f"/api/v1/exams/{world.exam_['id']}/attempts", json={"otp": users.code("leb")},
                    headers=world.h("leb"), environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert r.status_code == 201, r.get_json()
    world.open_attempt = r.get_json()
    world.goto(OPENS + timedelta(minutes=20))
    return world


def prof(w: ExamWorld) -> dict:
    return {"Authorization": f"Bearer {w.prof}"}


def grade(w: ExamWorld, headers: dict, item_id: int, body, attempt_id: int | None = None):
    return w.client.put(f"/api/v1/attempts/{attempt_id or w.attempt['attempt_id']}/items/{item_id}/grade",
                        json=body, headers=headers)


# --- the grading queue (EXM-12) ---------------------------------------------------------------------

def test_queue_lists_essays_with_rubric_and_grading_the_last_one_sets_the_score(w, app):
    aid = w.attempt["attempt_id"]
    r = w.client.get(f"/api/v1/courses/{w.cid}/grading-queue", headers=prof(w))
    assert r.status_code == 200, r.get_json()
    queue = r.get_json()["attempts"]
    assert [q["attempt_id"] for q in queue] == [aid]  # leb's open attempt is not there
    entry = queue[0]
    assert entry["learner_id"] == w.ids["lea"] and entry["pending"] == 5 and len(entry["essays"]) == 6
    first = entry["essays"][0]
    assert first["prompt"].startswith(("easy", "medium", "hard")) and first["answer"] == f"답안 {first['item_id']}"
    assert first["model_answer"] == "모범 답안" and first["rubric"] == "핵심 개념 3가지 각 5점" and first["points"] == 15
    blank = entry["essays"][5]
    assert blank["answer"] is None and blank["pending"] is False and blank["awarded"] == 0.0
    answered = [e["item_id"] for e in entry["essays"] if e["pending"]]

    total = 0.0
    for n, item_id in enumerate(answered):
        r = grade(w, prof(w), item_id, {"points": 10 + n * 0.5, "comment": f"의견 {n}"})
        assert r.status_code == 200, r.get_json()
        total += 10 + n * 0.5
        body = r.get_json()
        assert body["awarded"] == 10 + n * 0.5 and body["score"] == total
        assert body["needs_grading"] is (n < len(answered) - 1)
    assert w.client.get(f"/api/v1/courses/{w.cid}/grading-queue", headers=prof(w)).get_json()["attempts"] == []
    detail = w.client.get(f"/api/v1/attempts/{aid}", headers=prof(w)).get_json()
    assert detail["score"] == total and detail["needs_grading"] is False
    assert {i["grader_comment"] for i in detail["items"] if i["id"] in answered} == {f"의견 {n}" for n in range(5)}
    # A correction: another 'graded' event, the score follows.
    r = grade(w, w.ah(), answered[0], {"points": 15})
    assert r.status_code == 200 and r.get_json()["score"] == total + 5 and r.get_json()["grader_comment"] is None
    events = w.client.get(f"/api/v1/attempts/{aid}/events", headers=prof(w)).get_json()["events"]
    graded = [e for e in events if e["kind"] == "graded"]
    assert len(graded) == 6 and "15/15" in graded[-1]["detail"]
    from lms.db import db
    from lms.exams.models import AttemptItem

    with app.app_context():
        ai = db.session.scalar(select(AttemptItem).where(AttemptItem.attempt_id == aid,
                                                         AttemptItem.item_id == answered[1]))
        assert ai.graded_by == users_id(app, "prof") and ai.graded_at is not None and ai.awarded == 10.5
        db.session.remove()


@pytest.mark.parametrize("body", [{"points": 15.5}, {"points": -1}, {"points": "10"}, {"points": True},
                                  {"points": None}, {}, {"points": 5, "comment": 3},
                                  {"points": 5, "comment": "가" * 2001}, {"points": 5, "x": 1}],
                         ids=["above-points", "negative", "string", "bool", "null", "missing", "comment-type",
                              "long-comment", "unknown-field"])
def test_bad_grades_are_400_and_write_nothing(w, app, body):
    item_id = w.attempt["items"][0]["id"]
    before = table_counts(app)
    assert_api_error(grade(w, prof(w), item_id, body), 400, "invalid_request")
    assert table_counts(app) == before


def test_grading_refusals(w, app):
    items = w.attempt["items"]
    assert_api_error(grade(w, prof(w), items[5]["id"], {"points": 3}), 409, "nothing_to_grade")  # unanswered
    assert_api_error(grade(w, prof(w), 999999, {"points": 3}), 404, "not_found")
    leb_item = w.open_attempt["items"][0]["id"]
    assert_api_error(grade(w, prof(w), leb_item, {"points": 3}, w.open_attempt["attempt_id"]), 409, "attempt_open")
    for name in ("ta1", "lea", "insp"):  # TAs and inspectors read the queue; nobody but the instructor/admin grades
        assert_api_error(grade(w, w.h(name), items[0]["id"], {"points": 3}), 403, "forbidden")
    for name in ("ta1", "insp"):
        assert w.client.get(f"/api/v1/courses/{w.cid}/grading-queue", headers=w.h(name)).status_code == 200
    assert_api_error(w.client.get(f"/api/v1/courses/{w.cid}/grading-queue", headers=w.h("lea")), 403, "forbidden")


def test_objective_items_are_not_graded_by_hand(app, client, users):
    w = ExamWorld(app, client, users, learners=("lea",))
    exam = w.exam()
    w.goto(OPENS)
    a = w.start("lea", exam["id"]).get_json()
    client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=w.h("lea"))
    r = client.put(f"/api/v1/attempts/{a['attempt_id']}/items/{a['items'][0]['id']}/grade", json={"points": 1},
                   headers=prof(w))
    assert_api_error(r, 409, "not_an_essay")


# --- cheating findings (EXM-13) -----------------------------------------------------------------------

def finding(w: ExamWorld, headers: dict, body: dict, attempt_id: int | None = None):
    return w.client.post(f"/api/v1/attempts/{attempt_id or w.attempt['attempt_id']}/cheating-findings", json=body,
                         headers=headers)


FINDING = {"kind": "proxy_exam", "description": "응시 중 다른 사람이 답안을 작성함", "evidence": "IP 10.0.0.7, 14:02 영상"}


def test_finding_sets_cheating_found_is_evidence_and_is_listed(w, app):
    aid = w.attempt["attempt_id"]
    r = finding(w, prof(w), FINDING)
    assert r.status_code == 201, r.get_json()
    f = r.get_json()
    assert f["kind"] == "proxy_exam" and f["kind_label"] == "대리시험" and f["learner_id"] == w.ids["lea"]
    assert f["evidence"] == FINDING["evidence"] and f["found_by"] == users_id(app, "prof")
    assert w.client.get(f"/api/v1/attempts/{aid}", headers=prof(w)).get_json()["cheating_found"] is True
    events = w.client.get(f"/api/v1/attempts/{aid}/events", headers=prof(w)).get_json()["events"]
    assert events[-1]["kind"] == "cheating_finding" and f"finding {f['id']}" in events[-1]["detail"]
    for headers in (prof(w), w.ah(), w.h("ta1"), w.h("insp")):
        listed = w.client.get(f"/api/v1/courses/{w.cid}/cheating-findings", headers=headers).get_json()["findings"]
        assert [x["id"] for x in listed] == [f["id"]] and listed[0]["learner_username"] == "lea"
    # An admin may add another finding on the same attempt (findings are appended).
    assert finding(w, w.ah(), {"kind": "answer_exchange", "description": "답안 교환"}).status_code == 201
    from lms.db import db
    from lms.notify.models import Notice

    with app.app_context():
        from lms.exams.findings import learner_has_cheating_finding

        assert learner_has_cheating_finding(w.cid, w.ids["lea"]) is True  # grading: no grade (EXM-13)
        assert learner_has_cheating_finding(w.cid, w.ids["leb"]) is False
        notes = db.session.scalars(select(Notice).where(Notice.kind == "cheating_finding")).all()
        assert [n.user_id for n in notes] == [w.ids["lea"]] * 2
        db.session.remove()


def test_findings_refused_for_learners_and_tas_and_bad_bodies(w, app):
    before = table_counts(app)
    assert_api_error(finding(w, w.h("lea"), FINDING), 403, "forbidden")
    assert_api_error(finding(w, w.h("ta1"), FINDING), 403, "forbidden")
    assert_api_error(finding(w, w.h("insp"), FINDING), 403, "forbidden")
    assert_api_error(w.client.get(f"/api/v1/courses/{w.cid}/cheating-findings", headers=w.h("lea")), 403, "forbidden")
    assert_api_error(finding(w, prof(w), FINDING, 999999), 404, "not_found")
    for body in ({**FINDING, "kind": "cheating"}, {"kind": "proxy_exam"}, {**FINDING, "description": "   "},
                 {**FINDING, "description": 5}, {**FINDING, "evidence": "가" * 20001}, {**FINDING, "x": 1},
                 {**FINDING, "description": "a\x00b"}):
        assert_api_error(finding(w, prof(w), body), 400, "invalid_request")
    assert table_counts(app) == before
    assert w.client.get(f"/api/v1/attempts/{w.attempt['attempt_id']}", headers=prof(w)).get_json()["cheating_found"] \
        is False


# --- pages -----------------------------------------------------------------------------------------------

def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_grading_and_findings_pages(w, app, users):
    aid = w.attempt["attempt_id"]
    page = app.test_client()
    web_login(page, users, "prof")
    html = page.get(f"/courses/{w.cid}/grading").get_data(as_text=True)
    assert f'data-attempt-id="{aid}"' in html and "핵심 개념 3가지 각 5점" in html and "모범 답안" in html
    item_id = w.attempt["items"][0]["id"]
    url = f"/courses/{w.cid}/grading/{aid}/{item_id}"
    assert f'action="{url}"' in html
    r = page.post(url, data={"csrf_token": _csrf(html), "points": "99", "comment": ""})
    assert r.status_code == 303
    assert "배점까지" in page.get(r.headers["Location"]).get_data(as_text=True)
    r = page.post(url, data={"csrf_token": _csrf(html), "points": "12.5", "comment": "좋음"})
    assert "채점했습니다" in page.get(r.headers["Location"]).get_data(as_text=True)
    assert w.client.get(f"/api/v1/attempts/{aid}", headers=w.ah()).get_json()["score"] == 12.5  # prof: on the page

    html = page.get(f"/courses/{w.cid}/cheating-findings").get_data(as_text=True)
    assert 'data-testid="finding-form"' in html and f'value="{aid}"' in html
    r = page.post(f"/courses/{w.cid}/cheating-findings",
                  data={"csrf_token": _csrf(html), "attempt_id": str(aid), "kind": "early_view", "description": ""})
    assert r.status_code == 400
    r = page.post(f"/courses/{w.cid}/cheating-findings",
                  data={"csrf_token": _csrf(html), "attempt_id": str(aid), "kind": "early_view",
                        "description": "시작 전 문항 열람", "evidence": "접속 기록"})
    assert r.status_code == 303
    html = page.get(r.headers["Location"]).get_data(as_text=True)
    assert "기록했습니다" in html and "시작 전 문항 열람" in html

    ta = app.test_client()
    web_login(ta, users, "ta1")
    html = ta.get(f"/courses/{w.cid}/cheating-findings").get_data(as_text=True)
    assert "시작 전 문항 열람" in html and 'data-testid="finding-form"' not in html
    assert ta.post(f"/courses/{w.cid}/cheating-findings",
                   data={"csrf_token": _csrf(html), "attempt_id": str(aid), "kind": "other",
                         "description": "x"}).status_code == 403
    html = ta.get(f"/courses/{w.cid}/grading").get_data(as_text=True)
    assert f'data-attempt-id="{aid}"' in html and 'data-testid="grade-' not in html  # TAs read, do not grade
    learner = app.test_client()
    web_login(learner, users, "lea")
    assert learner.get(f"/courses/{w.cid}/grading").status_code == 403
    assert learner.get(f"/courses/{w.cid}/cheating-findings").status_code == 403


def test_openapi_document_lists_the_endpoints(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path, method in (("/api/v1/exams/{exam_id}/makeup-requests", "post"),
                         ("/api/v1/makeup-requests/{request_id}/decision", "post"),
                         ("/api/v1/makeup-requests/{request_id}/evidence/{evidence_id}", "get"),
                         ("/api/v1/exams/{exam_id}/item-analysis", "post"),
                         ("/api/v1/courses/{course_id}/bank-report", "get"),
                         ("/api/v1/attempts/{attempt_id}/cheating-findings", "post"),
                         ("/api/v1/courses/{course_id}/cheating-findings", "get"),
                         ("/api/v1/courses/{course_id}/grading-queue", "get"),
                         ("/api/v1/attempts/{attempt_id}/items/{item_id}/grade", "put")):
        assert method in paths[path], path
