"""Make-up exams (추가시험, EXM-11): a learner who missed a regular exam applies with a
reason and evidence files; the instructor approves; the make-up attempt is started through
the ordinary attempt API within 5 days of the approval (a fresh draw, ``is_makeup``) and
refused one second after; rejections; who may apply and decide; bad input writes nothing;
the pages."""
from __future__ import annotations

import hashlib
import io
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import assert_api_error
from conftest import table_counts as _table_counts
from exam_world import CLOSES, OPENS, ExamWorld, users_id
from test_board import web_login
from test_excuses import JPG, PDF, PNG

pytestmark = pytest.mark.usefixtures("app")

AFTER = CLOSES + timedelta(hours=2)  # the regular exam has closed


def table_counts(app) -> dict:
    counts = _table_counts(app)
    counts.pop("access_log")  # every authenticated request appends to it
    return counts


def stored_files(app) -> list[Path]:
    root = Path(app.config["MEDIA_ROOT"]) / "makeup"
    return sorted(p for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts) if root.exists() else []


@pytest.fixture
def w(app, client, users):
    import shutil

    shutil.rmtree(Path(app.config["MEDIA_ROOT"]) / "makeup", ignore_errors=True)  # left by earlier tests
    world = ExamWorld(app, client, users, learners=("lea", "leb", "lec"))
    users.create("ta1", "ta", name="이조교")
    r = client.post(f"/api/v1/courses/{world.cid}/staff", json={"user_id": users_id(app, "ta1"), "role": "ta"},
                    headers=world.ah())
    assert r.status_code == 201
    users.create("insp", "inspector", name="점검자")
    for name in ("ta1", "insp"):  # logged in again by every goto()
        world.tokens[name] = users.login(client, name)
    world.exam_ = world.exam()
    world.quiz = world.exam(title="퀴즈 1", kind="quiz")
    return world


def sit(w: ExamWorld, name: str, exam_id: int, ip: str) -> dict:
    r = w.client.post(f"/api/v1/exams/{exam_id}/attempts", json={"otp": w.users.code(name)}, headers=w.h(name),
                      environ_base={"REMOTE_ADDR": ip})
    assert r.status_code == 201, r.get_json()
    a = r.get_json()
    assert w.client.post(f"/api/v1/attempts/{a['attempt_id']}/submit", headers=w.h(name),
                         environ_base={"REMOTE_ADDR": ip}).status_code == 200
    return a


def after_close(w: ExamWorld, sitters=("leb",)) -> None:
    """``sitters`` sit the midterm; then the clock moves past its close."""
    w.goto(OPENS)
    for i, name in enumerate(sitters):
        sit(w, name, w.exam_["id"], f"10.0.0.{i + 1}")
    w.goto(AFTER)


def apply(w: ExamWorld, who: str, exam_id: int | None = None, *, files=None, reason="illness",
          detail="입원 치료로 응시하지 못했습니다", extra=None):
    data = {"reason": reason, "detail": detail,
            "files": files if files is not None else [(io.BytesIO(PDF), "진단서.pdf")]}
    data.update(extra or {})
    return w.client.post(f"/api/v1/exams/{exam_id or w.exam_['id']}/makeup-requests", headers=w.h(who), data=data,
                         content_type="multipart/form-data")


def decide(w: ExamWorld, who: str, request_id: int, approve: bool, comment: str | None = "확인함"):
    headers = w.ah() if who == "admin1" else ({"Authorization": f"Bearer {w.prof}"} if who == "prof" else w.h(who))
    return w.client.post(f"/api/v1/makeup-requests/{request_id}/decision", headers=headers,
                         json={"approve": approve, "comment": comment})


def attempt_row(app, attempt_id: int):
    from lms.db import db
    from lms.exams.models import Attempt

    with app.app_context():
        row = db.session.get(Attempt, attempt_id)
        db.session.expunge(row)
        db.session.remove()
    return row


# --- applying, approving, sitting -----------------------------------------------------------------

def test_apply_approve_and_sit_within_5_days_with_a_fresh_draw(w, app):
    after_close(w)
    leb_attempt = attempt_row(app, w.client.get(f"/api/v1/exams/{w.exam_['id']}/attempts",
                                                headers=w.ah()).get_json()["attempts"][0]["attempt_id"])
    # Before any application the missed exam cannot be started.
    assert_api_error(w.start("lea", w.exam_["id"]), 409, "exam_not_open")
    r = apply(w, "lea", files=[(io.BytesIO(PDF), "진단서.pdf"), (io.BytesIO(PNG), "입원확인.PNG"),
                               (io.BytesIO(JPG), "scan.jpeg")])
    assert r.status_code == 201, r.get_json()
    req = r.get_json()
    assert req["status"] == "pending" and req["learner_id"] == w.ids["lea"] and req["exam_id"] == w.exam_["id"]
    assert req["reason"] == "illness" and req["reason_label"] and req["detail"].startswith("입원")
    assert req["window_opens_at"] is None and req["attempt_id"] is None
    assert [e["content_type"] for e in req["evidence"]] == ["application/pdf", "image/png", "image/jpeg"]
    for e, raw in zip(req["evidence"], (PDF, PNG, JPG)):
        assert e["size"] == len(raw) and e["sha256"] == hashlib.sha256(raw).hexdigest()
    files = stored_files(app)
    assert len(files) == 3 and all(p.parent.name == str(req["id"]) for p in files)
    # Pending is not approved: still no attempt.
    assert_api_error(w.start("lea", w.exam_["id"]), 409, "exam_not_open")

    r = decide(w, "prof", req["id"], True, "진단서 확인")
    assert r.status_code == 200, r.get_json()
    done = r.get_json()
    opens, closes = datetime.fromisoformat(done["window_opens_at"]), datetime.fromisoformat(done["window_closes_at"])
    assert done["status"] == "approved" and done["decision_comment"] == "진단서 확인"
    assert closes - opens == timedelta(days=5) and abs(opens - AFTER) < timedelta(minutes=5)
    assert done["window"] == "open" and done["grade_cap"] == "B+"
    from lms.db import db
    from lms.notify.models import Notice

    with app.app_context():
        kinds = {(n.kind, n.user_id) for n in db.session.scalars(select(Notice).where(Notice.kind.like("makeup%")))}
        db.session.remove()
    assert kinds == {("makeup_request", users_id(app, "prof")), ("makeup_decision", w.ids["lea"])}

    # Four days and 23 hours later the make-up attempt starts: a fresh draw under the same rules.
    w.goto(opens + timedelta(days=4, hours=23))
    r = w.start("lea", w.exam_["id"])
    assert r.status_code == 201, r.get_json()
    a = r.get_json()
    assert a["is_makeup"] is True
    ids = [it["id"] for it in a["items"]]
    assert len(ids) == len(set(ids)) == 6
    for level in ("easy", "medium", "hard"):
        assert len([x for x in ids if x in w.item_ids[level]]) == 2
    row = attempt_row(app, a["attempt_id"])
    assert row.makeup_request_id == req["id"] and row.is_makeup
    assert row.seed != leb_attempt.seed and not leb_attempt.is_makeup
    # Its deadline never runs past the make-up window.
    assert datetime.fromisoformat(a["deadline"]) == closes
    got = w.client.get(f"/api/v1/makeup-requests/{req['id']}", headers=w.h("lea")).get_json()
    assert got["attempt_id"] == a["attempt_id"]
    with app.app_context():
        from lms.exams.makeup import grade_cap

        assert grade_cap(w.cid, w.ids["lea"]) == "B+"  # EXM-11: grading caps the course grade
        assert grade_cap(w.cid, w.ids["leb"]) is None
        db.session.remove()


def test_make_up_window_closes_5_days_after_the_approval(w):
    after_close(w)
    rid = apply(w, "lea").get_json()["id"]
    closes = datetime.fromisoformat(decide(w, "admin1", rid, True).get_json()["window_closes_at"])
    w.goto(closes + timedelta(seconds=1))
    err = assert_api_error(w.start("lea", w.exam_["id"]), 409, "exam_not_open")
    assert "closed" in err["message"]
    assert w.client.get(f"/api/v1/makeup-requests/{rid}", headers=w.h("lea")).get_json()["window"] == "closed"


def test_rejection(w, app):
    after_close(w)
    rid = apply(w, "lea").get_json()["id"]
    r = decide(w, "prof", rid, False, "증빙 불충분")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "rejected" and body["window_opens_at"] is None and body["grade_cap"] is None
    assert_api_error(w.start("lea", w.exam_["id"]), 409, "exam_not_open")
    assert_api_error(decide(w, "prof", rid, True), 409, "already_decided")
    assert_api_error(apply(w, "lea"), 409, "already_requested")  # one application per exam
    from lms.db import db
    from lms.notify.models import Notice

    with app.app_context():
        n = db.session.scalar(select(Notice).where(Notice.kind == "makeup_decision"))
        assert n.user_id == w.ids["lea"] and "반려" in n.subject and "증빙 불충분" in n.body
        db.session.remove()


# --- who may apply and for what -----------------------------------------------------------------

def test_only_learners_who_missed_a_closed_regular_exam_apply(w, app, users):
    w.goto(OPENS)
    # The window is open: sit it instead.
    assert_api_error(apply(w, "lea"), 409, "exam_not_closed")
    sit(w, "leb", w.exam_["id"], "10.0.0.2")
    after_close(w, sitters=())
    assert_api_error(apply(w, "leb"), 409, "attempt_exists")  # sat the exam
    err = assert_api_error(apply(w, "lea", w.quiz["id"]), 422, "rule_violation")  # quizzes have no make-up
    assert err["rules"] == ["EXM-11"]
    # Not enrolled; staff: 403.
    w.add_learner("outsider", enrol=False)
    assert_api_error(apply(w, "outsider"), 403, "forbidden")
    r = w.client.post(f"/api/v1/exams/{w.exam_['id']}/makeup-requests", headers={"Authorization": f"Bearer {w.prof}"},
                      data={"reason": "illness", "files": [(io.BytesIO(PDF), "a.pdf")]},
                      content_type="multipart/form-data")
    assert_api_error(r, 403, "forbidden")
    assert_api_error(apply(w, "lea", 999999), 404, "not_found")
    assert table_counts(app)["makeup_request"] == 0 and stored_files(app) == []
    assert apply(w, "lea").status_code == 201
    assert apply(w, "lec").status_code == 201


@pytest.mark.parametrize("change", [
    {"files": [(io.BytesIO(b"MZ\x90\x00binary"), "virus.exe")]},
    {"files": [(io.BytesIO(b"plain text pretending"), "note.pdf")]},
    {"files": [(io.BytesIO(PNG), "image.pdf")]},
    {"files": [(io.BytesIO(b""), "empty.pdf")]},
    {"files": [(io.BytesIO(PDF), "ok.pdf"), (io.BytesIO(b"<html>"), "page.html")]},
    {"files": [(io.BytesIO(PDF), f"{i}.pdf") for i in range(6)]},
    {"files": [(io.BytesIO(PDF), "a\x00b.exe")]},
    {"files": None},
    {"reason": "vacation"},
    {"reason": None},
    {"detail": "가" * 2001},
    {"unknown_field": "x"},
], ids=["exe", "text-as-pdf", "png-as-pdf", "empty", "one-bad", "six-files", "nul-name", "no-files", "bad-reason",
        "no-reason", "long-detail", "unknown-field"])
def test_bad_applications_are_400_and_write_nothing(w, app, change):
    after_close(w)
    data = {"reason": "illness", "detail": "입원", "files": [(io.BytesIO(PDF), "a.pdf")]}
    for k, v in change.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    before = table_counts(app)
    r = w.client.post(f"/api/v1/exams/{w.exam_['id']}/makeup-requests", headers=w.h("lea"), data=data,
                      content_type="multipart/form-data")
    assert_api_error(r, 400, "invalid_request")
    assert table_counts(app) == before and stored_files(app) == []


def test_file_size_limit_and_files_above_the_general_body_limit(w, app, monkeypatch):
    after_close(w)
    monkeypatch.setitem(app.config, "MAKEUP_MAX_FILE_BYTES", 1000)
    before = table_counts(app)
    assert_api_error(apply(w, "lea", files=[(io.BytesIO(PDF + b"\x00" * 1000), "big.pdf")]), 400, "invalid_request")
    assert table_counts(app) == before and stored_files(app) == []
    monkeypatch.delitem(app.config, "MAKEUP_MAX_FILE_BYTES")
    big = PDF + b"\x00" * (3 * 1024 * 1024)  # above LMS_MAX_BODY_BYTES (1 MB)
    r = apply(w, "lea", files=[(io.BytesIO(big), "scan.pdf"), (io.BytesIO(PDF), "con\x00trol\x07.pdf")])
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["evidence"][0]["size"] == len(big)
    assert r.get_json()["evidence"][1]["filename"] == "control.pdf"  # no NUL reaches the database


# --- who decides and who sees ----------------------------------------------------------------------

def test_who_decides_and_who_sees(w, app, users):
    after_close(w)
    rid = apply(w, "lea").get_json()["id"]
    assert_api_error(decide(w, "lea", rid, True), 403, "forbidden")
    assert_api_error(decide(w, "ta1", rid, True), 403, "forbidden")  # EXM-11: the instructor decides
    assert_api_error(decide(w, "insp", rid, True), 403, "forbidden")
    assert_api_error(decide(w, "prof", 999999, True), 404, "not_found")
    for body in ({}, {"approve": "yes"}, {"approve": True, "comment": 5}, {"approve": True, "comment": "가" * 2001},
                 {"approve": True, "x": 1}):
        before = table_counts(app)
        r = w.client.post(f"/api/v1/makeup-requests/{rid}/decision", headers={"Authorization": f"Bearer {w.prof}"},
                          json=body)
        assert_api_error(r, 400, "invalid_request")
        assert table_counts(app) == before
    # Lists: staff, admins and inspectors see every application; a learner only their own.
    for headers in (w.ah(), {"Authorization": f"Bearer {w.prof}"}, w.h("ta1"), w.h("insp")):
        r = w.client.get(f"/api/v1/exams/{w.exam_['id']}/makeup-requests", headers=headers)
        assert [x["id"] for x in r.get_json()["makeup_requests"]] == [rid]
    assert [x["id"] for x in w.client.get(f"/api/v1/exams/{w.exam_['id']}/makeup-requests",
                                          headers=w.h("lea")).get_json()["makeup_requests"]] == [rid]
    assert w.client.get(f"/api/v1/exams/{w.exam_['id']}/makeup-requests",
                        headers=w.h("lec")).get_json()["makeup_requests"] == []
    assert [x["id"] for x in w.client.get(f"/api/v1/courses/{w.cid}/makeup-requests?status=pending",
                                          headers=w.ah()).get_json()["makeup_requests"]] == [rid]
    assert [x["id"] for x in w.client.get("/api/v1/makeup-requests",
                                          headers=w.h("lea")).get_json()["makeup_requests"]] == [rid]
    assert_api_error(w.client.get(f"/api/v1/makeup-requests/{rid}", headers=w.h("lec")), 403, "forbidden")
    # Evidence: the learner and staff download it; another learner may not.
    ev = w.client.get(f"/api/v1/makeup-requests/{rid}", headers=w.h("lea")).get_json()["evidence"][0]["id"]
    for headers in (w.h("lea"), {"Authorization": f"Bearer {w.prof}"}, w.h("insp")):
        r = w.client.get(f"/api/v1/makeup-requests/{rid}/evidence/{ev}", headers=headers)
        assert r.status_code == 200 and r.data == PDF and r.headers["Cache-Control"] == "no-store"
    assert_api_error(w.client.get(f"/api/v1/makeup-requests/{rid}/evidence/{ev}", headers=w.h("lec")),
                     403, "forbidden")
    assert_api_error(w.client.get(f"/api/v1/makeup-requests/{rid}/evidence/{ev + 100}", headers=w.h("lea")),
                     404, "not_found")
    assert decide(w, "prof", rid, True).status_code == 200


# --- pages --------------------------------------------------------------------------------------------

def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_pages_apply_and_decide(w, app, users):
    after_close(w)
    learner = app.test_client()
    web_login(learner, users, "lea")
    html = learner.get("/makeup").get_data(as_text=True)
    assert "추가시험 신청" in html and f'data-exam-id="{w.exam_["id"]}"' in html
    assert f'data-exam-id="{w.quiz["id"]}"' not in html  # quizzes have no make-up
    page = learner.get(f"/exams/{w.exam_['id']}/makeup")
    assert page.status_code == 200 and "B+" in page.get_data(as_text=True)
    r = learner.post(f"/exams/{w.exam_['id']}/makeup", content_type="multipart/form-data",
                     data={"csrf_token": _csrf(page.get_data(as_text=True)), "reason": "illness",
                           "files": [(io.BytesIO(b"xx"), "a.txt")]})
    assert r.status_code == 400 and "PDF, JPG, PNG" in r.get_data(as_text=True)
    r = learner.post(f"/exams/{w.exam_['id']}/makeup", content_type="multipart/form-data",
                     data={"csrf_token": _csrf(page.get_data(as_text=True)), "reason": "illness", "detail": "입원",
                           "files": [(io.BytesIO(PDF), "진단서.pdf")]})
    assert r.status_code == 303, r.get_data(as_text=True)[:300]
    html = learner.get("/makeup").get_data(as_text=True)
    assert "접수했습니다" in html and "심사 중" in html
    rid = int(re.search(r'data-request-id="(\d+)"', html).group(1))

    staff = app.test_client()
    web_login(staff, users, "prof")
    assert "추가시험" in staff.get("/exam-review").get_data(as_text=True)
    page = staff.get(f"/courses/{w.cid}/makeup-requests")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "진단서.pdf" in html and f'data-request-id="{rid}"' in html
    ev = re.search(rf'/courses/{w.cid}/makeup-requests/{rid}/evidence/(\d+)', html).group(0)
    assert staff.get(ev).data == PDF
    r = staff.post(f"/courses/{w.cid}/makeup-requests/{rid}/decision",
                   data={"csrf_token": _csrf(html), "decision": "approve", "comment": "확인"})
    assert r.status_code == 303
    assert "승인했습니다" in staff.get(r.headers["Location"]).get_data(as_text=True)
    html = learner.get("/makeup").get_data(as_text=True)
    assert "응시 가능" in html
    # A TA reads the queue but cannot decide; a learner cannot open it.
    ta = app.test_client()
    web_login(ta, users, "ta1")
    page = ta.get(f"/courses/{w.cid}/makeup-requests")
    assert page.status_code == 200 and f"decide-{rid}" not in page.get_data(as_text=True)
    assert ta.post(f"/courses/{w.cid}/makeup-requests/{rid}/decision",
                   data={"csrf_token": _csrf(page.get_data(as_text=True)), "decision": "reject"}).status_code == 403
    assert learner.get(f"/courses/{w.cid}/makeup-requests").status_code == 403
