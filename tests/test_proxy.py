"""Proxy-attendance detection (issue 6, item 5; ATT-4, EXM-9, EXM-13 evidence): planted
overlaps from one IP or device are found and touching or separate ones are not; lessons
completed faster than real time; logins jumping between distant networks; every finding
links to its raw rows, which only the right people see."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from conftest import assert_api_error, bearer, set_clock
from lms.audit import proxy
from lms.clock import KST

T = datetime(2027, 3, 10, 10, 0, tzinfo=KST)


def at(minutes: float) -> datetime:
    return T + timedelta(minutes=minutes)


# --- pure ---------------------------------------------------------------------------------------

def test_distant_networks_ipv4_16_and_ipv6_48():
    assert not proxy.distant("10.1.2.3", "10.1.200.9")
    assert proxy.distant("10.1.2.3", "10.2.2.3")
    assert not proxy.distant("2001:db8:1:ff::1", "2001:db8:1:1::2")
    assert proxy.distant("2001:db8:1::1", "2001:db8:2::1")
    assert proxy.distant("10.1.2.3", "2001:db8::1")  # another family
    assert not proxy.distant("10.1.2.3", "::ffff:10.1.9.9")  # IPv4-mapped
    assert not proxy.distant(None, "10.1.2.3") and not proxy.distant("bad", "10.1.2.3")
    assert proxy.distant("10.1.2.3", "10.1.200.9", ipv4_prefix=24)


def test_login_jumps_window_edge():
    """Logins from distant networks exactly N minutes apart are reported; N minutes and one
    second apart are not; near networks never."""
    rows = [(1, 7, T, "10.1.0.1"), (2, 7, T + timedelta(minutes=30), "172.16.0.1"),
            (3, 7, T + timedelta(minutes=60, seconds=1), "10.1.0.1"),
            (4, 8, T + timedelta(minutes=61), "10.1.0.2"), (5, 8, T + timedelta(minutes=62), "10.1.5.5")]
    jumps = proxy.login_jumps(rows, window=timedelta(minutes=30))
    assert [(a[0], b[0]) for a, b in jumps] == [(1, 2)]


def test_too_fast_edge():
    assert proxy.too_fast(1499.9, 1500, 1.0)
    assert not proxy.too_fast(1500, 1500, 1.0)
    assert not proxy.too_fast(750, 1500, 2.0)


# --- planted rows ---------------------------------------------------------------------------------

class World:
    def __init__(self, app, client, users):
        from lms import clock
        from lms.content.models import Lesson
        from lms.db import db
        from lms.enrolment.models import Enrollment

        self.app, self.client, self.users = app, client, users
        set_clock(app, datetime(2027, 3, 1, 9, 0, tzinfo=KST))
        self.ids = {n: users.create(n, r) for n, r in (("admin1", "admin"), ("insp", "inspector"),
                                                        ("prof", "instructor"), ("outsider", "instructor"),
                                                        ("lea", "learner"), ("leb", "learner"), ("lec", "learner"))}
        self.admin = users.login(client, "admin1")
        r = client.post("/api/v1/courses", headers=bearer(self.admin), json={
            "code": "PX1", "title": "대리출석 탐지", "credits": 3, "starts_on": "2027-03-02", "weeks": 15,
            "capacity": 50})
        assert r.status_code == 201
        self.cid = r.get_json()["id"]
        r = client.post(f"/api/v1/courses/{self.cid}/staff", headers=bearer(self.admin),
                        json={"user_id": self.ids["prof"], "role": "instructor"})
        assert r.status_code == 201
        with app.app_context():
            now = clock.now()
            for n in ("lea", "leb", "lec"):
                db.session.add(Enrollment(course_id=self.cid, user_id=self.ids[n], status="active", created_at=now))
            lesson = Lesson(course_id=self.cid, week=1, position=1, title="1차시", kind="video",
                            duration_seconds=1500, opens_at=now, attendance_deadline=now + timedelta(days=14),
                            created_at=now)
            db.session.add(lesson)
            db.session.commit()
            self.lesson = lesson.id

    def view(self, who, start, end, ip="10.1.1.1", device=None, excess=0.0, lesson=None):
        from lms.attendance.models import LessonView
        from lms.db import db

        with self.app.app_context():
            v = LessonView(learner_id=self.ids[who], lesson_id=lesson or self.lesson, course_id=self.cid,
                           started_at=start, ended_at=end, ip=ip, device=device, credited_seconds=0,
                           suspicious_excess_seconds=excess, position_seconds=0, played_since_challenge=0)
            db.session.add(v)
            db.session.commit()
            return v.id

    def token(self, name):
        return self.users.login(self.client, name)

    def report(self, name="insp", **q):
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        r = self.client.get(f"/api/v1/courses/{self.cid}/proxy-report?{qs}", headers=bearer(self.token(name)))
        assert r.status_code == 200, r.get_json()
        return r.get_json()


@pytest.fixture
def world(app, client, users):
    return World(app, client, users)


def test_overlapping_views_from_one_ip_are_found_and_touching_ones_not(world):
    a = world.view("lea", at(0), at(30))
    b = world.view("leb", at(29), at(50))  # overlaps a by one minute
    c = world.view("lec", at(50), at(80))  # starts when b ends: no overlap
    world.view("lea", at(0), at(30), ip="10.9.9.9")  # another IP
    world.view("lea", at(100), at(130))  # the same learner again: not "another learner"
    world.view("lea", at(100), at(130), ip="10.1.1.1")
    rep = world.report()
    pairs = [sorted([f["a"]["view_id"], f["b"]["view_id"]]) for f in rep["shared_views"]]
    assert pairs == [sorted([a, b])]
    f = rep["shared_views"][0]
    assert f["kind"] == "ip" and f["value"] == "10.1.1.1"
    assert {f["a"]["username"], f["b"]["username"]} == {"lea", "leb"}
    assert f["rows"] == {"table": "lesson_view", "ids": [a, b]}
    assert f["link"] == f"/audit/raw/lesson_view?ids={a},{b}"
    assert c not in sum(pairs, [])


def test_overlap_by_one_second_and_by_device(world):
    a = world.view("lea", at(0), at(10), ip="10.1.1.1", device="aa:bb:cc:dd:ee:ff")
    b = world.view("leb", at(10) - timedelta(seconds=1), at(20), ip="10.2.2.2", device="aa:bb:cc:dd:ee:ff")
    rep = world.report()
    assert [(f["kind"], f["a"]["view_id"], f["b"]["view_id"]) for f in rep["shared_views"]] == [("device", a, b)]


def test_open_view_ends_at_its_last_heartbeat(world, app):
    from lms.attendance.models import LessonView
    from lms.db import db

    a = world.view("lea", at(0), None)
    with app.app_context():
        db.session.get(LessonView, a).last_heartbeat_at = at(20)
        db.session.commit()
    c = world.view("leb", at(20), at(40))  # starts at a's last heartbeat: no overlap
    assert world.report()["shared_views"] == []
    b = world.view("lec", at(19), at(40))  # overlaps both
    assert sorted((f["a"]["view_id"], f["b"]["view_id"]) for f in world.report()["shared_views"]) == [
        (a, b), (c, b)]


def test_period_filter(world):
    world.view("lea", at(0), at(30))
    world.view("leb", at(10), at(20))
    assert len(world.report(**{"from": "2027-03-10", "to": "2027-03-10"})["shared_views"]) == 1
    assert world.report(**{"from": "2027-03-11"})["shared_views"] == []
    r = world.client.get(f"/api/v1/courses/{world.cid}/proxy-report?from=2027-13-01",
                         headers=bearer(world.token("insp")))
    assert_api_error(r, 400, "invalid_request")


def _attempt(app, exam_id, learner_id, start, end, addresses):
    from lms.db import db
    from lms.exams.models import Attempt
    from lms.proctoring.models import AttemptAddress

    with app.app_context():
        a = Attempt(exam_id=exam_id, learner_id=learner_id, started_at=start, deadline=end, submitted_at=end,
                    ip=addresses[0][1], seed="s")
        db.session.add(a)
        db.session.flush()
        for kind, value, exc in addresses:
            db.session.add(AttemptAddress(attempt_id=a.id, exam_id=exam_id, learner_id=learner_id, kind=kind,
                                          value=value, seen_at=start, exception_id=exc))
        db.session.commit()
        return a.id


def test_overlapping_attempts_from_one_ip(world, app):
    """EXM-9 evidence: two learners' attempts sharing an IP at overlapping times; an admin's
    exception is shown; a later attempt from that IP is not reported."""
    from lms.db import db
    from lms.exams.models import Exam

    with app.app_context():
        e = Exam(course_id=world.cid, title="중간", kind="midterm", opens_at=at(0), closes_at=at(60 * 24),
                 duration_minutes=60, items_per_difficulty={"easy": 1}, created_at=at(-1))
        db.session.add(e)
        db.session.commit()
        eid = e.id
    a = _attempt(app, eid, world.ids["lea"], at(0), at(60), [("ip", "10.5.5.5", None)])
    b = _attempt(app, eid, world.ids["leb"], at(59), at(119), [("ip", "10.5.5.5", 3)])
    _attempt(app, eid, world.ids["lec"], at(119), at(179), [("ip", "10.5.5.5", None)])  # touches b only
    rep = world.report()
    assert [(f["a"]["attempt_id"], f["b"]["attempt_id"], f["exception"]) for f in rep["shared_attempts"]] == [
        (a, b, True)]
    raw = world.client.get(rep["shared_attempts"][0]["link"].replace("/audit/raw", "/api/v1/audit/raw"),
                           headers=bearer(world.token("prof")))
    assert raw.status_code == 200
    body = raw.get_json()
    assert [r["id"] for r in body["rows"]] == [a, b]
    assert {x["value"] for x in body["related"]["attempt_address"]} == {"10.5.5.5"}


def test_lesson_completed_faster_than_real_time(world, app):
    from lms.attendance.models import LessonProgress
    from lms.db import db

    v1 = world.view("lea", at(0), at(20), ip="10.1.0.1")
    v2 = world.view("lea", at(30), at(34), ip="10.1.0.1")  # 24 minutes of viewing for 25
    world.view("leb", at(0), at(25), ip="10.7.0.1")  # exactly real time: fine
    with app.app_context():
        for who, done in (("lea", at(34)), ("leb", at(25))):
            db.session.add(LessonProgress(learner_id=world.ids[who], lesson_id=world.lesson, course_id=world.cid,
                                          intervals=[[0, 1500]], covered_seconds=1500, completed_at=done,
                                          status="attended"))
        db.session.commit()
    rep = world.report()
    assert [(f["username"], f["view_seconds"], f["rows"]["ids"]) for f in rep["fast_lessons"]] == [
        ("lea", 1440.0, [v1, v2])]


def test_excess_claims_beyond_the_threshold(world, app):
    world.view("lea", at(0), at(10), ip="10.1.0.1", excess=60.0)
    v = world.view("leb", at(0), at(10), ip="10.2.0.1", excess=60.5)
    assert [f["view_id"] for f in world.report()["excess_views"]] == [v]


def test_login_jumps_from_the_access_log(world, app):
    from lms.audit.models import AccessLog
    from lms.db import db

    with app.app_context():
        for i, (who, minutes, ip) in enumerate((("lea", 0, "10.1.0.1"), ("lea", 10, "211.33.1.1"),
                                                ("leb", 0, "10.1.0.1"), ("leb", 45, "211.33.1.1"))):
            db.session.add(AccessLog(at=at(minutes), user_id=world.ids[who], username=who, role="learner",
                                     event="login", ip=ip))
        db.session.commit()
    rep = world.report()
    assert [(j["username"], j["a"]["ip"], j["b"]["ip"], j["minutes"]) for j in rep["login_jumps"]] == [
        ("lea", "10.1.0.1", "211.33.1.1", 10.0)]
    # The instructor sees the report without other people's login addresses.
    assert world.report("prof")["login_jumps"] is None
    link = rep["login_jumps"][0]["link"]
    r = world.client.get("/api/v1" + link, headers=bearer(world.token("prof")))
    assert_api_error(r, 403, "forbidden")
    r = world.client.get("/api/v1" + link, headers=bearer(world.token("insp")))
    assert r.status_code == 200 and [x["ip"] for x in r.get_json()["rows"]] == ["10.1.0.1", "211.33.1.1"]


def test_who_may_see_the_report_and_the_raw_rows(world, app):
    a = world.view("lea", at(0), at(30))
    for name in ("lea", "outsider"):
        r = world.client.get(f"/api/v1/courses/{world.cid}/proxy-report", headers=bearer(world.token(name)))
        assert_api_error(r, 403, "forbidden")
    r = world.client.get(f"/api/v1/audit/raw/lesson_view?ids={a}", headers=bearer(world.token("outsider")))
    assert_api_error(r, 404, "not_found")
    r = world.client.get(f"/api/v1/audit/raw/lesson_view?ids={a},999999", headers=bearer(world.token("insp")))
    assert_api_error(r, 404, "not_found")
    r = world.client.get("/api/v1/audit/raw/user_account?ids=1", headers=bearer(world.token("insp")))
    assert_api_error(r, 404, "not_found")
    r = world.client.get("/api/v1/audit/raw/lesson_view?ids=x", headers=bearer(world.token("insp")))
    assert_api_error(r, 400, "invalid_request")


def test_pages_link_findings_to_raw_rows(world, app, users):
    from audit_world import web_login

    a = world.view("lea", at(0), at(30))
    b = world.view("leb", at(10), at(20))
    c = app.test_client()
    web_login(c, users, "insp")
    html = c.get(f"/audit/proxy/courses/{world.cid}").get_data(as_text=True)
    link = f"/audit/raw/lesson_view?ids={a},{b}"
    assert f'href="{link}"' in html
    raw = c.get(link)
    assert raw.status_code == 200
    text = raw.get_data(as_text=True)
    assert f'data-row-id="{a}"' in text and f'data-row-id="{b}"' in text and "10.1.1.1" in text
