"""Staff weekly access (CRS-10): instructors and TAs of a course who did not access its LMS in
a week (KST weeks from the course's start), from the access log — JSON, CSV, the admin page."""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import pytest

from conftest import assert_api_error, bearer, set_clock
from lms.clock import KST


def kst(*args) -> datetime:
    return datetime(*args, tzinfo=KST)


class Setup:
    """A 15-week course starting Monday 2027-03-01 (week 3: 03-15 … 03-21) with an
    instructor and two TAs assigned before it starts, a learner, and a second course."""

    def __init__(self, app, client, users):
        self.app, self.client, self.users = app, client, users
        set_clock(app, kst(2027, 2, 25, 9, 0))
        self.ids = {n: users.create(n, r, name=label) for n, r, label in (
            ("admin1", "admin", "관리자"), ("insp1", "inspector", "점검자"), ("inst1", "instructor", "김교수"),
            ("ta1", "ta", "이조교"), ("ta2", "ta", "박조교"), ("ta3", "ta", "최조교"), ("lea1", "learner", "학습자"))}
        admin = self.login("admin1")
        self.course = self._course(admin, "CB301")
        self.other = self._course(admin, "CB302")
        for name, role in (("inst1", "instructor"), ("ta1", "ta"), ("ta2", "ta")):
            self.assign(admin, self.course, name, role)
        self.assign(admin, self.other, "ta2", "ta")
        r = client.post(f"/api/v1/courses/{self.course}/enrollments", headers=bearer(admin),
                        json={"user_id": self.ids["lea1"]})
        assert r.status_code == 201

    def login(self, name: str) -> str:
        return self.users.login(self.client, name)

    def _course(self, token, code):
        r = self.client.post("/api/v1/courses", headers=bearer(token), json={
            "code": code, "title": "노인복지론", "credits": 3, "starts_on": "2027-03-01", "weeks": 15,
            "capacity": 50})
        assert r.status_code == 201, r.get_json()
        return r.get_json()["id"]

    def assign(self, token, course, name, role):
        r = self.client.post(f"/api/v1/courses/{course}/staff", headers=bearer(token),
                             json={"user_id": self.ids[name], "role": role})
        assert r.status_code == 201, r.get_json()

    def report(self, token, week, course=None, **params):
        q = "&".join(f"{k}={v}" for k, v in {"week": week, **params}.items() if v is not None)
        return self.client.get(f"/api/v1/courses/{course or self.course}/staff-access?{q}", headers=bearer(token))

    def missing(self, token, week) -> list[str]:
        r = self.report(token, week)
        assert r.status_code == 200, r.get_json()
        return sorted(m["username"] for m in r.get_json()["missing"])


@pytest.fixture
def setup(app, client, users):
    return Setup(app, client, users)


def test_staff_who_accessed_in_week_3_are_listed_for_week_4(setup, app, client):
    s = setup
    # Sunday 2027-03-14 23:55 KST (week 2): the instructor and TA 2 log in.
    set_clock(app, kst(2027, 3, 14, 23, 55))
    inst, ta2 = s.login("inst1"), s.login("ta2")
    # 23:59:59.5 — still week 2 — TA 2 opens the course.
    set_clock(app, kst(2027, 3, 14, 23, 59, 59, 500000))
    assert client.get(f"/api/v1/courses/{s.course}", headers=bearer(ta2)).status_code == 200
    # 00:00 KST Monday 03-15: week 3 begins; the instructor opens the course's lessons.
    set_clock(app, kst(2027, 3, 15, 0, 0))
    assert client.get(f"/api/v1/courses/{s.course}/lessons", headers=bearer(inst)).status_code == 200
    # Wednesday of week 3: TA 1 opens the course; TA 2 only looks at other things.
    set_clock(app, kst(2027, 3, 17, 10, 0))
    ta1 = s.login("ta1")
    assert client.get(f"/api/v1/courses/{s.course}", headers=bearer(ta1)).status_code == 200
    ta2 = s.login("ta2")
    assert client.get("/api/v1/me", headers=bearer(ta2)).status_code == 200
    assert client.get(f"/api/v1/courses/{s.other}", headers=bearer(ta2)).status_code == 200
    # The learner's and the admin's accesses do not matter here.
    set_clock(app, kst(2027, 4, 1, 9, 0))
    admin = s.login("admin1")

    assert s.missing(admin, 3) == ["ta2"]
    assert s.missing(admin, 4) == ["inst1", "ta1", "ta2"]
    assert s.missing(admin, 2) == ["inst1", "ta1"]

    body = s.report(admin, 3).get_json()
    assert body["week"] == 3 and body["complete"] is True
    assert body["starts_at"] == "2027-03-15T00:00:00+09:00" and body["ends_at"] == "2027-03-22T00:00:00+09:00"
    assert (body["week_starts_on"], body["week_ends_on"]) == ("2027-03-15", "2027-03-21")
    staff = {x["username"]: x for x in body["staff"]}
    assert set(staff) == {"inst1", "ta1", "ta2"}
    assert staff["inst1"]["accessed"] and staff["inst1"]["accesses"] == 1
    assert staff["inst1"]["first_access_at"].startswith("2027-03-15T00:00:00")
    assert staff["inst1"]["roles"] == ["instructor"] and staff["ta1"]["roles"] == ["ta"]
    assert staff["ta2"] == {**staff["ta2"], "accessed": False, "accesses": 0, "last_access_at": None}
    assert body["missing"] == [{"user_id": s.ids["ta2"], "username": "ta2", "name": "박조교", "roles": ["ta"]}]
    # TA 2's access to the other course counts there.
    r = s.report(admin, 3, course=s.other)
    assert [m["username"] for m in r.get_json()["missing"]] == []


def test_week_boundaries_at_00_00_kst(setup, app):
    """Access-log rows at the exact instants: 00:00:00 KST Monday belongs to the week it
    starts; 23:59:59.999999 Sunday to the week before."""
    from lms.audit.models import AccessLog
    from lms.db import db

    s = setup
    rows = [("inst1", kst(2027, 3, 15, 0, 0)),  # first instant of week 3
            ("ta1", kst(2027, 3, 21, 23, 59, 59, 999999)),  # last instant of week 3
            ("ta2", kst(2027, 3, 22, 0, 0))]  # first instant of week 4
    with app.app_context():
        for name, at in rows:
            db.session.add(AccessLog(at=at, user_id=s.ids[name], username=name, event="request",
                                     course_id=s.course, path=f"/courses/{s.course}/board"))
        # Another course's row and a row without a course never count.
        db.session.add(AccessLog(at=kst(2027, 3, 16, 9, 0), user_id=s.ids["ta2"], event="request",
                                 course_id=s.other))
        db.session.add(AccessLog(at=kst(2027, 3, 16, 9, 0), user_id=s.ids["ta2"], event="login"))
        db.session.commit()
    set_clock(app, kst(2027, 3, 20, 12, 0))
    admin = s.login("admin1")
    assert s.missing(admin, 3) == ["ta2"]
    assert s.missing(admin, 4) == ["inst1", "ta1"]
    assert s.missing(admin, 2) == ["inst1", "ta1", "ta2"]
    assert s.report(admin, 3).get_json()["complete"] is False  # week 3 is still running
    # Without ?week= the report is of the current week (03-20 is in week 3).
    assert s.report(admin, None).get_json()["week"] == 3


def test_staff_assigned_later_are_not_listed_for_earlier_weeks(setup, app):
    s = setup
    set_clock(app, kst(2027, 3, 31, 9, 0))  # Wednesday of week 5
    admin = s.login("admin1")
    s.assign(admin, s.course, "ta3", "ta")
    assert "ta3" not in s.missing(admin, 4)
    assert "ta3" in s.missing(admin, 5)


def test_csv_download(setup, app, client):
    from lms.audit.models import AccessLog
    from lms.db import db

    s = setup
    with app.app_context():
        db.session.add(AccessLog(at=kst(2027, 3, 16, 9, 0), user_id=s.ids["ta1"], event="request", course_id=s.course))
        db.session.commit()
    set_clock(app, kst(2027, 4, 1, 9, 0))
    admin = s.login("admin1")
    r = s.report(admin, 3, format="csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"] and "week3" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["course_id", "course_code", "week", "week_starts_on", "week_ends_on", "user_id", "username",
                       "name", "roles", "accessed", "accesses", "first_access_at", "last_access_at"]
    assert sorted(row[6] for row in rows[1:]) == ["inst1", "ta2"]
    assert all(row[9] == "no" and row[2] == "3" and row[3] == "2027-03-15" for row in rows[1:])
    everyone = list(csv.reader(io.StringIO(s.report(admin, 3, format="csv", include="all")
                                           .get_data(as_text=True).lstrip("\ufeff"))))
    assert {row[6]: row[9] for row in everyone[1:]} == {"inst1": "no", "ta1": "yes", "ta2": "no"}
    r = client.get(f"/api/v1/courses/{s.course}/staff-access?week=3", headers={**bearer(admin), "Accept": "text/csv"})
    assert r.mimetype == "text/csv"


def test_csv_cells_cannot_start_formulas(setup, app):
    from lms.attendance import reports

    report = {"course_id": 1, "course_code": "X", "week": 1, "week_starts_on": "2027-03-01",
              "week_ends_on": "2027-03-07", "staff": [{"user_id": 5, "username": "ta9", "name": "=HYPERLINK(1)",
                                                       "roles": ["ta"], "accessed": False, "accesses": 0,
                                                       "first_access_at": None, "last_access_at": None}]}
    row = list(csv.reader(io.StringIO(reports.staff_access_csv(report))))[1]
    assert row[7] == "'=HYPERLINK(1)"


def test_who_may_see_the_report_and_bad_weeks(setup, app, client):
    s = setup
    set_clock(app, kst(2027, 3, 20, 12, 0))
    for name in ("inst1", "ta1", "lea1"):
        assert_api_error(s.report(s.login(name), 3), 403, "forbidden")
    insp = s.login("insp1")
    assert s.report(insp, 3).status_code == 200
    admin = s.login("admin1")
    for week in (0, 16, "x", 53):
        assert_api_error(s.report(admin, week), 400, "invalid_request")
    assert_api_error(s.report(admin, 3, format="pdf"), 400, "invalid_request")
    assert_api_error(s.report(admin, 3, course=999999), 404, "not_found")
    assert client.get(f"/api/v1/courses/{s.course}/staff-access?week=3").status_code == 401


def test_default_week_before_the_course_starts_is_refused(setup, app):
    s = setup
    set_clock(app, kst(2027, 2, 28, 23, 59))
    admin = s.login("admin1")
    assert_api_error(s.report(admin, None), 400, "invalid_request")
    assert s.report(admin, 1).status_code == 200


def _csrf(resp) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', resp.get_data(as_text=True)).group(1)


def test_admin_page(setup, app, users):
    from lms.audit.models import AccessLog
    from lms.db import db

    s = setup
    with app.app_context():
        db.session.add(AccessLog(at=kst(2027, 3, 16, 9, 0), user_id=s.ids["inst1"], event="request",
                                 course_id=s.course))
        db.session.commit()
    set_clock(app, kst(2027, 4, 1, 9, 0))
    web = app.test_client()
    page = web.get("/login")
    r = web.post("/login", data={"csrf_token": _csrf(page), "username": "admin1", "password": users.passwords["admin1"]})
    assert r.status_code == 302
    page = web.get("/login/otp")
    assert web.post("/login/otp", data={"csrf_token": _csrf(page), "code": users.code("admin1")}).status_code == 302
    r = web.get(f"/admin/staff-access?course_id={s.course}&week=3")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "교강사 주차별 접속 점검" in html and "미접속" in html
    assert f'data-user-id="{s.ids["inst1"]}" data-accessed="yes"' in html
    assert f'data-user-id="{s.ids["ta2"]}" data-accessed="no"' in html
    assert "미접속 2명 / 전체 3명" in html
    assert f"/api/v1/courses/{s.course}/staff-access?week=3&amp;format=csv" in html
    # The CSV link works with the page's session.
    assert web.get(f"/api/v1/courses/{s.course}/staff-access?week=3&format=csv").mimetype == "text/csv"
    assert web.get("/admin/staff-access").status_code == 200
    assert web.get(f"/admin/staff-access?course_id={2**40}").status_code == 404
    r = web.get(f"/admin/staff-access?course_id={s.course}&week=99")
    assert r.status_code == 200 and "주차를 고르세요" in r.get_data(as_text=True)
    ta = app.test_client()
    page = ta.get("/login")
    ta.post("/login", data={"csrf_token": _csrf(page), "username": "ta1", "password": users.passwords["ta1"]})
    page = ta.get("/login/otp")
    ta.post("/login/otp", data={"csrf_token": _csrf(page), "code": users.code("ta1")})
    assert ta.get("/admin/staff-access").status_code == 403
