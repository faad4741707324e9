"""Complaint (신문고) and 1:1 counselling channels (REC-5; REC-6 inspectors read them):
learners file, the course's staff answer, the thread is append-only evidence with times and
IPs, statuses open → answered → closed, notices go out, and access is strict."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from conftest import assert_api_error, bearer, set_clock, table_counts
from lms.clock import KST

T = datetime(2027, 3, 10, 10, 0, tzinfo=KST)


class World:
    def __init__(self, app, client, users):
        self.app, self.client, self.users = app, client, users
        set_clock(app, T)
        self.ids = {n: users.create(n, r, name=label) for n, r, label in (
            ("admin1", "admin", "관리자"), ("insp", "inspector", "점검자"), ("prof", "instructor", "김교수"),
            ("ta1", "ta", "이조교"), ("prof2", "instructor", "박교수"), ("lea", "learner", "홍길동"),
            ("leb", "learner", "김철수"))}
        self.tokens: dict[str, str] = {}
        admin = self.t("admin1")
        self.cid = self._course(admin, "CP1")
        self.other = self._course(admin, "CP2")
        for who, role, course in (("prof", "instructor", self.cid), ("ta1", "ta", self.cid),
                                  ("prof2", "instructor", self.other)):
            r = client.post(f"/api/v1/courses/{course}/staff", headers=bearer(admin),
                            json={"user_id": self.ids[who], "role": role})
            assert r.status_code == 201
        for who in ("lea", "leb"):
            r = client.post(f"/api/v1/courses/{self.cid}/enrollments", headers=bearer(admin),
                            json={"user_id": self.ids[who]})
            assert r.status_code == 201

    def _course(self, token, code):
        r = self.client.post("/api/v1/courses", headers=bearer(token), json={
            "code": code, "title": "사회복지학개론", "credits": 3, "starts_on": "2027-03-02", "weeks": 15,
            "capacity": 50})
        assert r.status_code == 201
        return r.get_json()["id"]

    def t(self, name):
        if name not in self.tokens:
            self.tokens[name] = self.users.login(self.client, name)
        return self.tokens[name]

    def file(self, name="lea", **body):
        payload = {"kind": "attendance", "subject": "3주차 출석 누락", "body": "끝까지 보았는데 결석으로 나옵니다.",
                   "course_id": self.cid, **body}
        return self.client.post("/api/v1/complaints", json=payload, headers=bearer(self.t(name)))

    def get(self, cid, name):
        return self.client.get(f"/api/v1/complaints/{cid}", headers=bearer(self.t(name)))

    def reply(self, cid, name, text="확인했습니다.", **headers):
        return self.client.post(f"/api/v1/complaints/{cid}/messages", json={"body": text},
                                headers={**bearer(self.t(name)), **headers})


@pytest.fixture
def world(app, client, users):
    return World(app, client, users)


EVIDENCE = ("complaint", "complaint_message", "notice", "outbox_email")


def written(app) -> dict:
    counts = table_counts(app)
    return {t: counts[t] for t in EVIDENCE}


def notices(app, user_id):
    from sqlalchemy import select

    from lms.db import db
    from lms.notify.models import Notice

    with app.app_context():
        rows = [(n.kind, n.link) for n in db.session.scalars(select(Notice).where(Notice.user_id == user_id)
                                                               .order_by(Notice.id))]
        db.session.remove()
    return rows


def test_rec_5_learner_files_staff_answer_thread_with_times_and_ips(world, app):
    """REC-5: a complaint is filed (open), the course's staff are notified, the TA answers
    (answered, the learner notified), the learner replies (open again), the instructor
    closes it (closed); every message keeps its author, time and IP."""
    r = world.file()
    assert r.status_code == 201, r.get_json()
    c = r.get_json()
    assert c["status"] == "open" and c["course_id"] == world.cid and len(c["messages"]) == 1
    assert ("complaint_filed", f"/complaints/{c['id']}") in notices(app, world.ids["prof"])
    assert ("complaint_filed", f"/complaints/{c['id']}") in notices(app, world.ids["ta1"])
    assert notices(app, world.ids["admin1"]) == []  # the course has staff: they answer
    set_clock(app, T + timedelta(hours=2))
    world.tokens.clear()  # sessions idle out after 30 minutes of the testing clock
    r = world.reply(c["id"], "ta1", "시청 기록을 확인하겠습니다.")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["status"] == "answered"
    assert ("complaint_answered", f"/complaints/{c['id']}") in notices(app, world.ids["lea"])
    assert world.reply(c["id"], "lea", "감사합니다. 기다리겠습니다.").get_json()["status"] == "open"
    r = world.client.post(f"/api/v1/complaints/{c['id']}/close", json={"body": "출석 인정 처리 완료"},
                          headers=bearer(world.t("prof")))
    assert r.status_code == 200 and r.get_json()["status"] == "closed"
    thread = world.get(c["id"], "insp").get_json()
    assert [(m["author_role"], m["action"]) for m in thread["messages"]] == [
        ("learner", "message"), ("ta", "message"), ("learner", "message"), ("instructor", "close")]
    assert all(m["ip"] == "127.0.0.1" and m["created_at"] for m in thread["messages"])
    assert thread["messages"][1]["created_at"].startswith("2027-03-10T12:00")
    assert thread["first_answer_at"].startswith("2027-03-10T12:00")
    # A closed thread takes no more messages.
    assert_api_error(world.reply(c["id"], "lea", "하나 더"), 409, "complaint_closed")
    # The learner does not see the staff's addresses.
    assert all("ip" not in m for m in world.get(c["id"], "lea").get_json()["messages"])


def test_messages_are_append_only(world, app):
    """No endpoint edits or deletes a message; a refused reply writes nothing."""
    cid = world.file().get_json()["id"]
    mid = world.get(cid, "lea").get_json()["messages"][0]["id"]
    for method in ("put", "patch", "delete"):
        r = getattr(world.client, method)(f"/api/v1/complaints/{cid}/messages/{mid}", json={"body": "x"},
                                          headers=bearer(world.t("lea")))
        assert r.status_code in (404, 405)
        r = getattr(world.client, method)(f"/api/v1/complaints/{cid}", json={"body": "x"},
                                          headers=bearer(world.t("admin1")))
        assert r.status_code == 405
    before = written(app)
    assert_api_error(world.reply(cid, "lea", ""), 400, "invalid_request")
    assert_api_error(world.reply(cid, "lea", "가" * 5001), 400, "invalid_request")
    assert_api_error(world.reply(cid, "insp", "점검자 의견"), 403, "forbidden")
    assert written(app) == before
    assert [m["body"] for m in world.get(cid, "lea").get_json()["messages"]] == ["끝까지 보았는데 결석으로 나옵니다."]


def test_access_rules(world, app, users):
    """The learner sees their own; the course's staff and the institution's admins and
    inspectors see it; another learner and another course's instructor get 403; another
    institution gets 404; inspectors cannot file, answer or close."""
    cid = world.file().get_json()["id"]
    for name in ("lea", "prof", "ta1", "admin1", "insp"):
        assert world.get(cid, name).status_code == 200, name
    for name in ("leb", "prof2"):
        assert_api_error(world.get(cid, name), 403, "forbidden")
        assert_api_error(world.reply(cid, name), 403, "forbidden")
    assert_api_error(world.client.post(f"/api/v1/complaints/{cid}/close", json={},
                                       headers=bearer(world.t("insp"))), 403, "forbidden")
    assert_api_error(world.file("insp"), 403, "forbidden")
    assert_api_error(world.file("prof"), 403, "forbidden")
    with app.app_context():
        from lms import clock
        from lms.auth.models import Institution
        from lms.db import db

        inst = Institution(code="ELSE", name="다른 기관", created_at=clock.now())
        db.session.add(inst)
        db.session.commit()
        oid = inst.id
    users.create("insp2", "inspector", institution_id=oid)
    assert_api_error(world.get(cid, "insp2"), 404, "not_found")
    assert world.client.get("/api/v1/complaints", headers=bearer(world.t("insp2"))).get_json()["complaints"] == []
    # Lists
    listed = lambda name: [c["id"] for c in world.client.get(  # noqa: E731
        "/api/v1/complaints", headers=bearer(world.t(name))).get_json()["complaints"]]
    assert listed("lea") == [cid] and listed("leb") == [] and listed("prof2") == []
    assert listed("prof") == [cid] and listed("insp") == [cid] and listed("admin1") == [cid]


def test_counselling_without_a_course_goes_to_admins(world, app):
    r = world.file(kind="counselling", subject="학습 계획 상담", body="학점 계획을 상담하고 싶습니다.", course_id=None)
    assert r.status_code == 201
    cid = r.get_json()["id"]
    assert ("complaint_filed", f"/complaints/{cid}") in notices(app, world.ids["admin1"])
    assert_api_error(world.reply(cid, "prof"), 403, "forbidden")  # no course: not the instructor's
    assert world.reply(cid, "admin1", "상담 일정을 잡겠습니다.").get_json()["status"] == "answered"


def test_filing_checks_the_course(world, app):
    before = written(app)
    assert_api_error(world.file(course_id=world.other), 403, "forbidden")  # not enrolled there
    assert_api_error(world.file(course_id=99999), 404, "not_found")
    assert_api_error(world.file(kind="other"), 400, "invalid_request")
    assert_api_error(world.file(subject=" "), 400, "invalid_request")
    assert_api_error(world.file(course_id="1"), 400, "invalid_request")
    assert_api_error(world.file(unknown=1), 400, "invalid_request")
    assert written(app) == before


def test_pages_inspector_reads_only(world, app, users):
    from audit_world import web_login

    cid = world.file().get_json()["id"]
    c = app.test_client()
    web_login(c, users, "insp")
    html = c.get(f"/complaints/{cid}").get_data(as_text=True)
    assert "3주차 출석 누락" in html and 'data-testid="reply-form"' not in html and "127.0.0.1" in html
    assert f'data-complaint-id="{cid}"' in c.get("/complaints").get_data(as_text=True)
    other = app.test_client()
    web_login(other, users, "leb")
    assert other.get(f"/complaints/{cid}").status_code == 403


def test_naming_a_lesson_or_exam_sets_its_course(world, app):
    """REC-5: a complaint may name a lesson or exam of the learner's course; the course is
    taken from it; naming things of two courses is refused."""
    from lms import clock
    from lms.content.models import Lesson
    from lms.db import db
    from lms.exams.models import Exam

    with app.app_context():
        now = clock.now()
        mine = Lesson(course_id=world.cid, week=3, position=2, title="3-2", kind="video", duration_seconds=1500,
                      opens_at=now, attendance_deadline=now + timedelta(days=14), created_at=now)
        exam = Exam(course_id=world.other, title="기말", kind="final", opens_at=now, closes_at=now + timedelta(days=1),
                    duration_minutes=60, items_per_difficulty={"easy": 1}, created_at=now)
        db.session.add_all([mine, exam])
        db.session.commit()
        lid, eid = mine.id, exam.id
    r = world.file(course_id=None, lesson_id=lid)
    assert r.status_code == 201 and (r.get_json()["course_id"], r.get_json()["lesson_id"]) == (world.cid, lid)
    assert_api_error(world.file(lesson_id=lid, exam_id=eid), 400, "invalid_request")
    assert_api_error(world.file(course_id=None, exam_id=eid, kind="grade"), 403, "forbidden")  # not enrolled
    assert_api_error(world.file(course_id=None, lesson_id=99999), 404, "not_found")
