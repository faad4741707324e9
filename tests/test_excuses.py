"""Excused absence (공결, ATT-5): applications with evidence files, decisions by the course's
TA or instructor, the 20% cap at its edges (19.9% / 20% / 20.1%), and the Korean pages."""
from __future__ import annotations

import hashlib
import io
import re
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import assert_api_error, bearer, set_clock
from conftest import table_counts as _table_counts
from lms.clock import KST

NOW = datetime(2027, 3, 10, 10, 0, tzinfo=KST)  # week 2 of a course starting Monday 2027-03-01
# Frame-based lessons whose units (⌊frames/20⌋, CRS-2) add up to exactly 1000:
# 199 + 1 + 1 + 500 + 299. Excusing A is 19.9%, A+B 20%, A+B+C 20.1%.
FRAMES = {"A": 3980, "B": 20, "C": 20, "D": 10000, "E": 5980}
UNITS = {"A": 199, "B": 1, "C": 1, "D": 500, "E": 299}

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
JPG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40


def table_counts(app) -> dict:
    """Rows per table, the access log aside (every authenticated request appends to it)."""
    counts = _table_counts(app)
    counts.pop("access_log")
    return counts


class World:
    def __init__(self, app, client, users):
        self.app, self.client, self.users = app, client, users
        self.tokens: dict[str, str] = {}

    def token(self, name: str) -> str:
        if name not in self.tokens:
            self.tokens[name] = self.users.login(self.client, name)
        return self.tokens[name]

    def h(self, name: str) -> dict:
        return bearer(self.token(name))


def _course(w: World, code: str, lessons: dict[str, int]) -> tuple[int, dict[str, int]]:
    r = w.client.post("/api/v1/courses", headers=w.h("admin1"), json={
        "code": code, "title": "사회복지학개론", "credits": 3, "starts_on": "2027-03-01", "weeks": 15,
        "capacity": 100})
    assert r.status_code == 201, r.get_json()
    cid = r.get_json()["id"]
    ids = {}
    for i, (key, frames) in enumerate(lessons.items()):
        r = w.client.post(f"/api/v1/courses/{cid}/lessons", headers=w.h("admin1"),
                          json={"week": i + 1, "title": f"{key} 차시", "frames": frames})
        assert r.status_code == 201, r.get_json()
        assert r.get_json()["units"] == frames // 20
        ids[key] = r.get_json()["id"]
    return cid, ids


@pytest.fixture
def world(app, client, users):
    import shutil

    shutil.rmtree(media_root(app) / "excuses", ignore_errors=True)  # left by earlier tests
    set_clock(app, NOW)
    users.create("admin1", "admin", name="관리자")
    users.create("inst1", "instructor", name="김교수")
    users.create("ta1", "ta", name="이조교")
    users.create("ta2", "ta", name="박조교")
    users.create("insp1", "inspector", name="점검자")
    w = World(app, client, users)
    w.ids = {}
    for name in ("lea1", "lea2", "lea3"):
        w.ids[name] = users.create(name, "learner", name=f"학습자{name[-1]}")
    for name in ("inst1", "ta1", "ta2"):
        from lms.auth.models import User
        from lms.db import db

        with app.app_context():
            w.ids[name] = db.session.scalar(select(User.id).where(User.username == name))
    w.course, w.lessons = _course(w, "CB101", FRAMES)
    w.other_course, w.other_lessons = _course(w, "CB102", {"X": 1500, "Y": 1500})
    for course, name, role in ((w.course, "inst1", "instructor"), (w.course, "ta1", "ta"),
                               (w.other_course, "ta2", "ta")):
        r = client.post(f"/api/v1/courses/{course}/staff", headers=w.h("admin1"),
                        json={"user_id": w.ids[name], "role": role})
        assert r.status_code == 201, r.get_json()
    for name in ("lea1", "lea2"):
        r = client.post(f"/api/v1/courses/{w.course}/enrollments", headers=w.h("admin1"),
                        json={"user_id": w.ids[name]})
        assert r.status_code == 201, r.get_json()
    r = client.post(f"/api/v1/courses/{w.other_course}/enrollments", headers=w.h("admin1"),
                    json={"user_id": w.ids["lea3"]})
    assert r.status_code == 201, r.get_json()
    return w


def apply(w: World, who: str, lesson_keys, *, files=None, reason="hospitalisation", statement="입원 치료",
          course=None, extra=None):
    data = {"reason": reason, "statement": statement,
            "lesson_ids": [str(w.lessons[k]) for k in lesson_keys],
            "files": files if files is not None else [(io.BytesIO(PDF), "진단서.pdf")]}
    if extra:
        data.update(extra)
    return w.client.post(f"/api/v1/courses/{course or w.course}/excuses", headers=w.h(who), data=data,
                         content_type="multipart/form-data")


def decide(w: World, who: str, excuse_id: int, approve: bool, comment: str | None = "확인함"):
    return w.client.post(f"/api/v1/excuses/{excuse_id}/decision", headers=w.h(who),
                         json={"approve": approve, "comment": comment})


def attendance(w: World, who: str, learner: str | None = None):
    q = f"?learner_id={w.ids[learner]}" if learner else ""
    r = w.client.get(f"/api/v1/courses/{w.course}/attendance{q}", headers=w.h(who))
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def media_root(app) -> Path:
    return Path(app.config["MEDIA_ROOT"])


def stored_files(app) -> list[Path]:
    """Evidence files kept (the staging area of uploads in progress aside)."""
    root = media_root(app) / "excuses"
    return sorted(p for p in root.rglob("*") if p.is_file() and ".staging" not in p.parts) if root.exists() else []


# --- applying ------------------------------------------------------------------------------

def test_learner_applies_with_evidence_files_stored_with_hash_and_size(world, app):
    w = world
    r = apply(w, "lea1", ["A", "B"], files=[(io.BytesIO(PDF), "진단서.pdf"), (io.BytesIO(PNG), "입원확인.PNG"),
                                             (io.BytesIO(JPG), "scan.jpeg")])
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["status"] == "pending" and body["learner_id"] == w.ids["lea1"]
    assert body["reason"] == "hospitalisation" and body["statement"] == "입원 치료"
    assert [l["lesson_id"] for l in body["lessons"]] == [w.lessons["A"], w.lessons["B"]]
    assert body["units"] == 200
    ev = body["evidence"]
    assert [e["filename"] for e in ev] == ["진단서.pdf", "입원확인.PNG", "scan.jpeg"]
    assert [e["content_type"] for e in ev] == ["application/pdf", "image/png", "image/jpeg"]
    for e, raw in zip(ev, (PDF, PNG, JPG)):
        assert e["size"] == len(raw)
        assert e["sha256"] == hashlib.sha256(raw).hexdigest()
    files = stored_files(app)
    assert len(files) == 3
    assert all(p.parent == media_root(app) / "excuses" / str(body["id"]) for p in files)
    assert sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in files) == \
        sorted(hashlib.sha256(x).hexdigest() for x in (PDF, PNG, JPG))
    # The TA and the instructor got an in-app notice.
    from lms.db import db
    from lms.notify.models import Notice

    with app.app_context():
        to = sorted(db.session.scalars(select(Notice.user_id).where(Notice.kind == "excuse_request")))
        db.session.remove()
    assert to == sorted([w.ids["inst1"], w.ids["ta1"]])


def test_lesson_ids_may_be_comma_separated(world):
    w = world
    r = w.client.post(f"/api/v1/courses/{w.course}/excuses", headers=w.h("lea1"), content_type="multipart/form-data",
                      data={"reason": "wedding", "lesson_ids": f"{w.lessons['B']},{w.lessons['C']}",
                            "files": [(io.BytesIO(PDF), "청첩장.pdf")]})
    assert r.status_code == 201, r.get_json()
    assert [l["lesson_id"] for l in r.get_json()["lessons"]] == [w.lessons["B"], w.lessons["C"]]


@pytest.mark.parametrize("files", [
    [(io.BytesIO(b"MZ\x90\x00binary"), "virus.exe")],
    [(io.BytesIO(b"plain text pretending"), "note.pdf")],  # a PDF by name only
    [(io.BytesIO(PNG), "image.pdf")],  # a PNG named .pdf
    [(io.BytesIO(b"GIF89a" + b"\x00" * 20), "photo.gif")],
    [(io.BytesIO(b""), "empty.pdf")],
    [(io.BytesIO(PDF), "ok.pdf"), (io.BytesIO(b"<html>"), "page.html")],  # one bad file spoils all
    [(io.BytesIO(PDF), f"{i}.pdf") for i in range(6)],  # more than 5 files
], ids=["exe", "text-as-pdf", "png-as-pdf", "gif", "empty", "one-bad", "six-files"])
def test_other_file_types_are_refused_and_nothing_is_stored(world, app, files):
    w = world
    w.token("lea1")
    before = table_counts(app)
    r = apply(w, "lea1", ["A"], files=files)
    assert_api_error(r, 400, "invalid_request")
    assert table_counts(app) == before
    assert stored_files(app) == []


def test_file_above_the_size_limit_is_refused(world, app, monkeypatch):
    w = world
    w.token("lea1")
    monkeypatch.setitem(app.config, "EXCUSE_MAX_FILE_BYTES", 1000)
    before = table_counts(app)
    r = apply(w, "lea1", ["A"], files=[(io.BytesIO(PDF + b"\x00" * 1000), "big.pdf")])
    assert_api_error(r, 400, "invalid_request")
    assert table_counts(app) == before and stored_files(app) == []
    r = apply(w, "lea1", ["A"], files=[(io.BytesIO(PDF + b"\x00" * (1000 - len(PDF))), "exact.pdf")])
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["evidence"][0]["size"] == 1000


def test_evidence_larger_than_the_general_body_limit_is_accepted(world, app):
    """The app refuses bodies above LMS_MAX_BODY_BYTES (1 MB); an application has its own
    limit (files × 10 MB), so a 3 MB scan goes through."""
    w = world
    big = PDF + b"\x00" * (3 * 1024 * 1024)
    assert len(big) > app.config["MAX_CONTENT_LENGTH"]
    r = apply(w, "lea1", ["A"], files=[(io.BytesIO(big), "scan.pdf")])
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["evidence"][0]["size"] == len(big)


@pytest.mark.parametrize("change, status, code", [
    ({"reason": "vacation"}, 400, "invalid_request"),
    ({"reason": None}, 400, "invalid_request"),
    ({"lesson_ids": None}, 400, "invalid_request"),
    ({"lesson_ids": ["abc"]}, 400, "invalid_request"),
    ({"lesson_ids": ["1.5"]}, 400, "invalid_request"),
    ({"lesson_ids": ["999999"]}, 400, "invalid_request"),
    ({"files": None}, 400, "invalid_request"),
    ({"statement": "가" * 2001}, 400, "invalid_request"),
    ({"unknown_field": "x"}, 400, "invalid_request"),
], ids=["bad-reason", "no-reason", "no-lessons", "non-numeric", "fraction", "unknown-lesson", "no-files",
        "long-statement", "unknown-field"])
def test_malformed_applications_are_400(world, app, change, status, code):
    w = world
    w.token("lea1")
    data = {"reason": "hospitalisation", "statement": "입원", "lesson_ids": [str(w.lessons["A"])],
            "files": [(io.BytesIO(PDF), "a.pdf")]}
    for k, v in change.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    before = table_counts(app)
    r = w.client.post(f"/api/v1/courses/{w.course}/excuses", headers=w.h("lea1"), data=data,
                      content_type="multipart/form-data")
    assert_api_error(r, status, code)
    assert table_counts(app) == before and stored_files(app) == []


def test_lesson_of_another_course_is_refused(world):
    w = world
    r = w.client.post(f"/api/v1/courses/{w.course}/excuses", headers=w.h("lea1"), content_type="multipart/form-data",
                      data={"reason": "military", "lesson_ids": [str(w.other_lessons["X"])],
                            "files": [(io.BytesIO(PDF), "a.pdf")]})
    assert_api_error(r, 400, "invalid_request")


def test_only_enrolled_learners_apply(world):
    w = world
    assert_api_error(apply(w, "lea3", ["A"]), 403, "forbidden")  # enrolled elsewhere
    assert_api_error(apply(w, "ta1", ["A"]), 403, "forbidden")
    assert_api_error(apply(w, "admin1", ["A"]), 403, "forbidden")
    r = w.client.post(f"/api/v1/courses/{w.course}/excuses", data={}, content_type="multipart/form-data")
    assert r.status_code == 401


def test_same_lesson_twice_and_attended_lessons_are_refused(world, app):
    w = world
    assert apply(w, "lea1", ["A"]).status_code == 201
    err = assert_api_error(apply(w, "lea1", ["A", "B"]), 409, "already_requested")
    assert err["lesson_ids"] == [w.lessons["A"]]
    # Another learner may apply for the same lesson.
    assert apply(w, "lea2", ["A"]).status_code == 201
    # A lesson the learner attended needs no excuse.
    from lms.attendance.models import LessonProgress
    from lms.db import db

    with app.app_context():
        db.session.add(LessonProgress(learner_id=w.ids["lea1"], lesson_id=w.lessons["E"], course_id=w.course,
                                      intervals=[], covered_seconds=5980, status="attended"))
        db.session.commit()
    err = assert_api_error(apply(w, "lea1", ["E"]), 409, "already_attended")
    assert err["lesson_ids"] == [w.lessons["E"]]


# --- listing and reading --------------------------------------------------------------------

def test_listing_learners_see_their_own_staff_see_all(world):
    w = world
    a = apply(w, "lea1", ["A"]).get_json()["id"]
    b = apply(w, "lea2", ["B"]).get_json()["id"]
    url = f"/api/v1/courses/{w.course}/excuses"
    mine = w.client.get(url, headers=w.h("lea1")).get_json()["excuses"]
    assert [e["id"] for e in mine] == [a]
    assert_api_error(w.client.get(f"{url}?learner_id={w.ids['lea2']}", headers=w.h("lea1")), 403, "forbidden")
    for who in ("ta1", "inst1", "admin1", "insp1"):
        r = w.client.get(url, headers=w.h(who))
        assert r.status_code == 200, (who, r.get_json())
        assert [e["id"] for e in r.get_json()["excuses"]] == [b, a]
    only = w.client.get(f"{url}?learner_id={w.ids['lea2']}", headers=w.h("ta1")).get_json()["excuses"]
    assert [e["id"] for e in only] == [b]
    assert_api_error(w.client.get(url, headers=w.h("ta2")), 403, "forbidden")  # TA of another course
    assert_api_error(w.client.get(url, headers=w.h("lea3")), 403, "forbidden")
    assert_api_error(w.client.get(f"{url}?status=maybe", headers=w.h("ta1")), 400, "invalid_request")
    assert_api_error(w.client.get(f"{url}?learner_id={2**31}", headers=w.h("ta1")), 400, "invalid_request")
    assert w.client.get(f"/api/v1/excuses/{a}", headers=w.h("lea1")).get_json()["id"] == a
    assert_api_error(w.client.get(f"/api/v1/excuses/{a}", headers=w.h("lea2")), 403, "forbidden")
    assert_api_error(w.client.get("/api/v1/excuses/999999", headers=w.h("ta1")), 404, "not_found")


def test_evidence_download_is_the_uploaded_file(world):
    w = world
    body = apply(w, "lea1", ["A"], files=[(io.BytesIO(PNG), "사진.png")]).get_json()
    ev = body["evidence"][0]
    url = f"/api/v1/excuses/{body['id']}/evidence/{ev['id']}"
    for who in ("lea1", "ta1", "insp1"):
        r = w.client.get(url, headers=w.h(who))
        assert r.status_code == 200
        assert r.data == PNG and r.mimetype == "image/png"
        assert "attachment" in r.headers["Content-Disposition"]
    assert_api_error(w.client.get(url, headers=w.h("lea2")), 403, "forbidden")
    assert_api_error(w.client.get(f"/api/v1/excuses/{body['id']}/evidence/999", headers=w.h("ta1")), 404, "not_found")


# --- deciding -------------------------------------------------------------------------------

def test_approval_marks_lessons_excused_and_counts_them_as_attended(world, app):
    w = world
    eid = apply(w, "lea1", ["A"]).get_json()["id"]
    before = attendance(w, "lea1")
    assert {l["lesson_id"]: l["status"] for l in before["lessons"]}[w.lessons["A"]] == "pending"
    r = decide(w, "ta1", eid, True, "진단서 확인")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["status"] == "approved" and body["decided_by"] == w.ids["ta1"]
    assert body["decision_comment"] == "진단서 확인" and body["decided_at"].endswith("+09:00")
    after = attendance(w, "lea1")
    status = {l["lesson_id"]: l["status"] for l in after["lessons"]}
    assert status[w.lessons["A"]] == "excused"
    assert status[w.lessons["B"]] == "pending"
    assert after["excused_units"] == 199 and after["total_units"] == 1000
    assert after["rate"] == pytest.approx(0.199)
    # The learner was told (in-app notice and an e-mail in the outbox).
    from lms.db import db
    from lms.notify.models import Notice, OutboxEmail

    with app.app_context():
        notes = list(db.session.scalars(select(Notice).where(Notice.user_id == w.ids["lea1"])))
        mails = list(db.session.scalars(select(OutboxEmail).where(OutboxEmail.user_id == w.ids["lea1"])))
        assert len(notes) == 1 and "승인" in notes[0].subject and "진단서 확인" in notes[0].body
        assert len(mails) == 1
        db.session.remove()


def test_excused_cap_edges_19_9_20_and_20_1_percent(world, app):
    """ATT-5 on a course of exactly 1000 units: 199 units (19.9%) and then 200 (20%) are
    approved; the 201st unit (20.1%) is refused with the rule named and changes nothing."""
    w = world
    a = apply(w, "lea1", ["A"]).get_json()["id"]
    b = apply(w, "lea1", ["B"]).get_json()["id"]
    c = apply(w, "lea1", ["C"]).get_json()["id"]
    assert decide(w, "ta1", a, True).status_code == 200  # 199/1000 = 19.9%
    assert attendance(w, "lea1")["excused_units"] == 199
    assert decide(w, "inst1", b, True).status_code == 200  # 200/1000 = 20%
    assert attendance(w, "lea1")["excused_units"] == 200
    before = table_counts(app)
    err = assert_api_error(decide(w, "ta1", c, True), 422, "rule_violation")  # 201/1000 = 20.1%
    assert err["rules"] == ["ATT-5"]
    assert "20%" in err["message"]
    assert err["details"][0]["excused_units"] == 201 and err["details"][0]["total_units"] == 1000
    assert table_counts(app) == before
    got = w.client.get(f"/api/v1/excuses/{c}", headers=w.h("ta1")).get_json()
    assert got["status"] == "pending" and got["decided_by"] is None
    att = attendance(w, "lea1")
    assert {l["lesson_id"]: l["status"] for l in att["lessons"]}[w.lessons["C"]] == "pending"
    assert att["excused_units"] == 200 and att["rate"] == pytest.approx(0.2)
    # It can still be rejected; another learner's cap is their own.
    assert decide(w, "ta1", c, False, "20% 초과").get_json()["status"] == "rejected"
    d = apply(w, "lea2", ["A", "B"]).get_json()["id"]
    assert decide(w, "ta1", d, True).status_code == 200


def test_one_application_above_the_cap_at_once_is_refused(world):
    w = world
    eid = apply(w, "lea1", ["A", "B", "C"]).get_json()["id"]  # 201 units in one go
    err = assert_api_error(decide(w, "ta1", eid, True), 422, "rule_violation")
    assert err["rules"] == ["ATT-5"]
    # 200 units in one application: exactly 20%, allowed.
    eid2 = apply(w, "lea2", ["A", "B"]).get_json()["id"]
    assert decide(w, "admin1", eid2, True).status_code == 200


def test_attended_lessons_do_not_use_the_cap(world, app):
    """A lesson the learner attended anyway stays *attended* and takes nothing of the 20%."""
    w = world
    a = apply(w, "lea1", ["A", "B"]).get_json()["id"]
    assert decide(w, "ta1", a, True).status_code == 200  # 200 units = 20%
    from lms.attendance.models import LessonProgress
    from lms.db import db

    with app.app_context():
        row = db.session.scalar(select(LessonProgress).where(LessonProgress.learner_id == w.ids["lea1"],
                                                             LessonProgress.lesson_id == w.lessons["B"]))
        row.status = "attended"  # as if B had been completed in time
        db.session.commit()
    c = apply(w, "lea1", ["C"]).get_json()["id"]
    assert decide(w, "ta1", c, True).status_code == 200  # A + C = 200 units again


def test_rejection_keeps_the_lesson_and_allows_a_new_application(world):
    w = world
    eid = apply(w, "lea1", ["A"]).get_json()["id"]
    r = decide(w, "inst1", eid, False, "증빙 불충분")
    assert r.status_code == 200 and r.get_json()["status"] == "rejected"
    assert r.get_json()["decision_comment"] == "증빙 불충분"
    assert {l["lesson_id"]: l["status"] for l in attendance(w, "lea1")["lessons"]}[w.lessons["A"]] == "pending"
    assert apply(w, "lea1", ["A"]).status_code == 201


def test_who_decides(world):
    w = world
    eid = apply(w, "lea1", ["A"]).get_json()["id"]
    assert_api_error(decide(w, "lea1", eid, True), 403, "forbidden")
    assert_api_error(decide(w, "insp1", eid, True), 403, "forbidden")
    assert_api_error(decide(w, "ta2", eid, True), 403, "forbidden")  # TA of another course
    assert_api_error(decide(w, "ta1", 999999, True), 404, "not_found")
    assert decide(w, "ta1", eid, True).status_code == 200
    assert_api_error(decide(w, "inst1", eid, False), 409, "already_decided")


@pytest.mark.parametrize("body", [{}, {"approve": "yes"}, {"approve": 1}, {"approve": True, "comment": 5},
                                  {"approve": True, "comment": "가" * 2001}, {"approve": True, "x": 1}])
def test_malformed_decisions_are_400(world, app, body):
    w = world
    eid = apply(w, "lea1", ["A"]).get_json()["id"]
    w.token("ta1")
    before = table_counts(app)
    r = w.client.post(f"/api/v1/excuses/{eid}/decision", headers=w.h("ta1"), json=body)
    assert_api_error(r, 400, "invalid_request")
    assert table_counts(app) == before


# --- pages ----------------------------------------------------------------------------------

def _csrf(resp) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True))
    assert m, "no csrf_token on the page"
    return m.group(1)


def _web_login(client, users, username):
    page = client.get("/login")
    r = client.post("/login", data={"csrf_token": _csrf(page), "username": username,
                                    "password": users.passwords[username]})
    assert r.status_code == 302
    page = client.get("/login/otp")
    r = client.post("/login/otp", data={"csrf_token": _csrf(page), "code": users.code(username)})
    assert r.status_code == 302


def test_learner_page_applies_and_staff_page_decides(world, app, users):
    w = world
    learner = app.test_client()
    _web_login(learner, users, "lea1")
    page = learner.get(f"/courses/{w.course}/excuses")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "공결 신청" in html and "증빙서류" in html and "질병 등으로 인한 입원" in html
    assert f'value="{w.lessons["A"]}"' in html
    # Without the CSRF token the form is refused and nothing is written.
    before = table_counts(app)
    r = learner.post(f"/courses/{w.course}/excuses", content_type="multipart/form-data",
                     data={"reason": "hospitalisation", "lesson_ids": [str(w.lessons["A"])],
                           "files": [(io.BytesIO(PDF), "a.pdf")]})
    assert r.status_code == 400 and table_counts(app) == before
    # A bad file: the form comes back with a Korean message.
    r = learner.post(f"/courses/{w.course}/excuses", content_type="multipart/form-data",
                     data={"csrf_token": _csrf(page), "reason": "hospitalisation",
                           "lesson_ids": [str(w.lessons["A"])], "files": [(io.BytesIO(b"xx"), "a.txt")]})
    assert r.status_code == 400
    assert "PDF, JPG, PNG" in r.get_data(as_text=True)
    # A good application, with a file above the app's general 1 MB body limit.
    big = PDF + b"\x00" * (2 * 1024 * 1024)
    r = learner.post(f"/courses/{w.course}/excuses", content_type="multipart/form-data",
                     data={"csrf_token": _csrf(page), "reason": "hospitalisation", "statement": "입원",
                           "lesson_ids": [str(w.lessons["A"]), str(w.lessons["B"])],
                           "files": [(io.BytesIO(big), "진단서.pdf")]})
    assert r.status_code == 302, r.get_data(as_text=True)[:500]
    html = learner.get(r.headers["Location"]).get_data(as_text=True)
    assert "접수했습니다" in html and "심사 중" in html
    eid = int(re.search(r'data-excuse-id="(\d+)"', html).group(1))

    staff = app.test_client()
    _web_login(staff, users, "ta1")
    page = staff.get(f"/courses/{w.course}/excuses/review")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "공결 신청 심사" in html and "진단서.pdf" in html and f'data-excuse-id="{eid}"' in html
    ev = re.search(rf'/courses/{w.course}/excuses/{eid}/evidence/(\d+)', html)
    r = staff.get(ev.group(0))
    assert r.status_code == 200 and r.data == big
    r = staff.post(f"/courses/{w.course}/excuses/{eid}/decision",
                   data={"decision": "approve", "comment": "확인"})
    assert r.status_code == 400  # no CSRF token
    r = staff.post(f"/courses/{w.course}/excuses/{eid}/decision",
                   data={"csrf_token": _csrf(page), "decision": "approve", "comment": "확인"})
    assert r.status_code == 302
    html = staff.get(r.headers["Location"]).get_data(as_text=True)
    assert "승인했습니다" in html
    att = attendance(w, "lea1")
    assert {l["lesson_id"]: l["status"] for l in att["lessons"]}[w.lessons["A"]] == "excused"
    # 20.1%: the page says so in Korean and naming ATT-5.
    eid2 = apply(w, "lea1", ["C"]).get_json()["id"]
    r = staff.post(f"/courses/{w.course}/excuses/{eid2}/decision",
                   data={"csrf_token": _csrf(page), "decision": "approve"})
    html = staff.get(r.headers["Location"]).get_data(as_text=True)
    assert "20%까지만" in html and "ATT-5" in html
    # Others cannot open the queue; a learner of the course cannot open another's evidence page.
    other = app.test_client()
    _web_login(other, users, "ta2")
    assert other.get(f"/courses/{w.course}/excuses/review").status_code == 403
    lea2 = app.test_client()
    _web_login(lea2, users, "lea2")
    r = lea2.get(ev.group(0))
    assert r.status_code == 403 and "권한이 없습니다" in r.get_data(as_text=True)
    assert lea2.get(f"/courses/{w.course}/excuses/review").status_code == 403
    r = other.post(f"/courses/{w.course}/excuses/{eid2}/decision",
                   data={"csrf_token": _csrf(other.get("/excuses")), "decision": "reject"})
    assert r.status_code == 403 and "권한이 없습니다" in r.get_data(as_text=True)


def test_excuse_index_page_lists_courses(world, app, users):
    w = world
    apply(w, "lea1", ["A"])
    c = app.test_client()
    _web_login(c, users, "ta1")
    r = c.get("/excuses")
    assert r.status_code == 200, r.get_data(as_text=True)[-800:]
    html = r.get_data(as_text=True)
    assert f'data-course-id="{w.course}"' in html and f'data-course-id="{w.other_course}"' not in html
    assert '<td data-field="pending">1</td>' in html
    c2 = app.test_client()
    _web_login(c2, users, "lea1")
    html = c2.get("/excuses").get_data(as_text=True)
    assert f"/courses/{w.course}/excuses" in html
