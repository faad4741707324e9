"""The TAs' live progress board (CRS-11, CRS-8): the at-risk rule at its 3-day edge, the
board's figures for constructed progress (ATT-1, ATT-2, ATT-5 statuses, REC-3 last access),
sorting, CSV/XLSX exports, attendance reminders (notice + outbox e-mail to at-risk learners
only), access control, the pages (board, staff course list, the learner's status list) and
that a class costs a constant number of queries whatever its size."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import event, insert, select

from conftest import assert_api_error, bearer, set_clock
from lms.attendance import rules
from lms.clock import KST

STARTS_ON = "2027-03-02"  # a Tuesday; week w opens at 00:00 KST of 2027-03-02 + 7(w−1)
SECONDS = 1500  # 25-minute lessons


def kst(*args) -> datetime:
    return datetime(*args, tzinfo=KST)


# Week 1 lessons' deadline (ATT-1: 14 days after they open): 2027-03-16 00:00 KST;
# week 2's: 2027-03-23 00:00 KST; week 3's: 2027-03-30 00:00 KST.
WEEK2_DEADLINE = kst(2027, 3, 23)
# Week 3 (2027-03-16 … 03-22): week 1 is past its deadline, week 2's is 3 days − 1 s away.
NOW = WEEK2_DEADLINE - rules.AT_RISK_WINDOW + timedelta(seconds=1)


# --- pure rules ------------------------------------------------------------------------

def test_at_risk_rule_edges_crs11():
    """CRS-11: not complete and the deadline within 3 days: 3 d − 1 s is at risk, 3 d + 1 s
    is not; exactly 3 d and the deadline itself are (completion *at* it counts, ATT-1);
    one second after, it is no longer at risk (it is absent)."""
    dl = WEEK2_DEADLINE
    at_risk = lambda now, status=rules.PENDING: rules.lesson_at_risk(status=status, deadline=dl, now=now)
    assert rules.AT_RISK_WINDOW == timedelta(days=3)
    assert at_risk(dl - timedelta(days=3) + timedelta(seconds=1)) is True
    assert at_risk(dl - timedelta(days=3) - timedelta(seconds=1)) is False
    assert at_risk(dl - timedelta(days=3)) is True
    assert at_risk(dl) is True
    assert at_risk(dl + timedelta(seconds=1)) is False
    for done in (rules.ATTENDED, rules.EXCUSED, rules.ABSENT):
        assert at_risk(dl - timedelta(hours=1), done) is False


def test_board_status_rule_att1_att2():
    """A settled status is shown as stored; a pending or missing one is what ATT-1 gives at
    ``now`` (absent right after the deadline, before the settling job runs)."""
    dl = WEEK2_DEADLINE
    s = rules.board_status
    assert s(stored=None, completed_at=None, deadline=dl, now=dl) == rules.PENDING
    assert s(stored=None, completed_at=None, deadline=dl, now=dl + timedelta(seconds=1)) == rules.ABSENT
    assert s(stored="pending", completed_at=dl, deadline=dl, now=dl + timedelta(days=1)) == rules.ATTENDED
    assert s(stored="pending", completed_at=dl + timedelta(seconds=1), deadline=dl,
             now=dl + timedelta(days=1)) == rules.ABSENT
    assert s(stored="absent", completed_at=dl + timedelta(days=2), deadline=dl,
             now=dl + timedelta(days=3)) == rules.ABSENT
    assert s(stored="excused", completed_at=None, deadline=dl, now=dl + timedelta(days=1)) == rules.EXCUSED
    assert s(stored="attended", completed_at=dl, deadline=dl, now=dl) == rules.ATTENDED


def test_course_week_in_kst():
    start = date(2027, 3, 2)
    # 2027-03-02 00:00 KST is 2027-03-01 15:00 UTC
    assert rules.course_week(start, 15, datetime(2027, 3, 1, 14, 59, 59, tzinfo=timezone.utc)) is None
    assert rules.course_week(start, 15, datetime(2027, 3, 1, 15, 0, tzinfo=timezone.utc)) == 1
    assert rules.course_week(start, 15, kst(2027, 3, 8, 23, 59, 59)) == 1
    assert rules.course_week(start, 15, kst(2027, 3, 9)) == 2
    assert rules.course_week(start, 15, kst(2027, 6, 14, 23, 59, 59)) == 15  # the last day
    assert rules.course_week(start, 15, kst(2027, 6, 15)) is None


def test_progress_fraction():
    f = rules.lesson_progress_fraction
    assert f(covered=750, length=1500, completed=False) == 0.5
    assert f(covered=0, length=1500, completed=True) == 1.0
    assert f(covered=2000, length=1500, completed=False) == 1.0
    assert f(covered=10, length=None, completed=False) == 0.0
    assert rules.mean_or_none([]) is None and rules.mean_or_none([0.5, 0.0]) == 0.25


# --- fixtures --------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _course_time(app):
    """The testing clock in week 3 of the course from the start (sessions opened at real
    time would expire on a jump of months); tests set it again right before they measure."""
    set_clock(app, NOW)


_HASH: dict[str, str] = {}


def make_user(app, users, username, role="learner", name="홍길동", institution_id=None) -> int:
    """A user written directly with one shared password hash (argon2 per user is slow),
    registered with ``users`` so ``users.login`` and ``web_login`` work."""
    import pyotp

    from lms import clock
    from lms.auth.models import User
    from lms.auth.service import default_institution, hash_password
    from lms.db import db

    with app.app_context():
        if "pw" not in _HASH:
            _HASH["pw"] = hash_password("correct-horse-9")
        secret = pyotp.random_base32()
        user = User(institution_id=institution_id or default_institution().id, username=username,
                    password_hash=_HASH["pw"], role=role, name=name, otp_secret=secret, created_at=clock.now())
        db.session.add(user)
        db.session.commit()
        users.secrets[username], users.passwords[username] = secret, "correct-horse-9"
        return user.id


class Class_:
    """A course of 15 weeks with two lessons in each of weeks 1–3, a TA, and learners."""

    def __init__(self, app, client, users, admin_token, code="BRD101", learners=("kim", "lee", "park")):
        self.app, self.client, self.users, self.admin = app, client, users, admin_token
        h = bearer(admin_token)
        r = client.post("/api/v1/courses", json={"code": code, "title": "사회복지학개론", "credits": 3,
                                                 "starts_on": STARTS_ON, "weeks": 15, "capacity": 100}, headers=h)
        assert r.status_code == 201, r.get_json()
        self.id = r.get_json()["id"]
        self.lessons = {}  # (week, n) -> id
        for w in (1, 2, 3):
            for n in (1, 2):
                r = client.post(f"/api/v1/courses/{self.id}/lessons",
                                json={"week": w, "title": f"{w}주차 {n}차시", "duration_seconds": SECONDS}, headers=h)
                assert r.status_code == 201, r.get_json()
                self.lessons[(w, n)] = r.get_json()["id"]
        self.learners = {}
        names = {"kim": "김철수", "lee": "이영희", "park": "박민수"}
        for u in learners:
            username = f"{code.lower()}{u}"
            uid = make_user(app, users, username, "learner", name=names.get(u, u))
            r = client.post(f"/api/v1/courses/{self.id}/enrollments", json={"user_id": uid}, headers=h)
            assert r.status_code == 201, r.get_json()
            self.learners[u] = uid

    def add_staff(self, username, role="ta"):
        uid = make_user(self.app, self.users, username, role, name="조교")
        r = self.client.post(f"/api/v1/courses/{self.id}/staff", json={"user_id": uid, "role": role},
                             headers=bearer(self.admin))
        assert r.status_code == 201, r.get_json()
        return uid

    def progress(self, learner, week, n, *, status="pending", covered=0, completed_at=None,
                 last_access_at=None, last_access_ip=None):
        from lms.attendance.models import LessonProgress
        from lms.db import db

        with self.app.app_context():
            db.session.add(LessonProgress(
                learner_id=self.learners[learner], lesson_id=self.lessons[(week, n)], course_id=self.id,
                intervals=[[0, covered]] if covered else [], covered_seconds=covered, completed_at=completed_at,
                status=status, last_access_at=last_access_at, last_access_ip=last_access_ip))
            db.session.commit()

    def view(self, learner, week, n, *, started_at, last_heartbeat_at=None, ip=None):
        from lms.attendance.models import LessonView
        from lms.db import db

        with self.app.app_context():
            db.session.add(LessonView(learner_id=self.learners[learner], lesson_id=self.lessons[(week, n)],
                                      course_id=self.id, started_at=started_at, last_heartbeat_at=last_heartbeat_at,
                                      ip=ip, position_seconds=0.0, credited_seconds=0.0,
                                      suspicious_excess_seconds=0.0, played_since_challenge=0.0))
            db.session.commit()


def attended(cls, learner, week, n, at):
    cls.progress(learner, week, n, status="attended", covered=SECONDS, completed_at=at, last_access_at=at)


@pytest.fixture
def course(app, client, users, admin_token):
    """kim: weeks 1–2 attended but 2-2 half seen (at risk); week 3: one lesson done.
    lee: nothing at all (week 1 absent, week 2 both at risk).
    park: 1-1 excused, 1-2 pending past its deadline (absent), week 2 attended, 3-1 one fifth."""
    c = Class_(app, client, users, admin_token)
    for n in (1, 2):
        attended(c, "kim", 1, n, kst(2027, 3, 3, 10))
    attended(c, "kim", 2, 1, kst(2027, 3, 10, 10))
    c.progress("kim", 2, 2, covered=750, last_access_at=kst(2027, 3, 19, 21), last_access_ip="10.0.0.5")
    attended(c, "kim", 3, 1, kst(2027, 3, 17, 9))
    c.view("kim", 2, 2, started_at=kst(2027, 3, 19, 20), last_heartbeat_at=kst(2027, 3, 19, 21, 30), ip="10.0.0.7")
    c.view("kim", 1, 1, started_at=kst(2027, 3, 3, 9), last_heartbeat_at=kst(2027, 3, 3, 10), ip="10.0.0.1")
    c.progress("park", 1, 1, status="excused")
    c.progress("park", 1, 2, covered=1400, last_access_at=kst(2027, 3, 12, 8), last_access_ip="192.0.2.9")
    for n in (1, 2):
        attended(c, "park", 2, n, kst(2027, 3, 11, 10))
    c.progress("park", 3, 1, covered=300)
    return c


def rows_by_username(body):
    return {r["username"]: r for r in body["learners"]}


# --- the board's figures -----------------------------------------------------------------

def test_board_figures_crs11(app, client, users, admin_token, course):
    course.add_staff("brdta")
    token = users.login(client, "brdta")
    set_clock(app, NOW)
    r = client.get(f"/api/v1/courses/{course.id}/board", headers=bearer(token))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["week"] == 3 and body["week_lessons"] == 2 and body["lessons"] == 6
    assert body["at_risk_window_days"] == 3
    assert body["course"] == {"id": course.id, "code": "BRD101", "title": "사회복지학개론"}
    rows = rows_by_username(body)
    assert set(rows) == {"brd101kim", "brd101lee", "brd101park"}

    kim = rows["brd101kim"]
    assert (kim["attended"], kim["absent"], kim["excused"], kim["pending"], kim["at_risk"]) == (4, 0, 0, 2, 1)
    assert kim["at_risk_lesson_ids"] == [course.lessons[(2, 2)]]
    assert kim["week_progress"] == 0.5  # 3-1 complete, 3-2 not started
    assert kim["name"] == "김철수" and kim["lessons"] == 6
    # REC-3: the latest access is the later of progress and the viewing sessions
    assert kim["last_access_ip"] == "10.0.0.7"
    assert datetime.fromisoformat(kim["last_access_at"]) == kst(2027, 3, 19, 21, 30)

    lee = rows["brd101lee"]
    assert (lee["attended"], lee["absent"], lee["excused"], lee["pending"], lee["at_risk"]) == (0, 2, 0, 4, 2)
    assert lee["week_progress"] == 0.0
    assert lee["last_access_at"] is None and lee["last_access_ip"] is None

    park = rows["brd101park"]
    assert (park["attended"], park["absent"], park["excused"], park["pending"], park["at_risk"]) == (2, 1, 1, 2, 0)
    assert park["week_progress"] == pytest.approx(0.1)
    assert park["last_access_ip"] == "192.0.2.9"
    assert datetime.fromisoformat(park["last_access_at"]) == kst(2027, 3, 12, 8)
    assert body["at_risk_learners"] == 2


def test_at_risk_edge_on_the_board(app, client, users, admin_token, course):
    """The same class 2 s earlier: week 2's deadline is 3 days + 1 s away — nobody is at risk."""
    course.add_staff("brdta")
    token = users.login(client, "brdta")
    set_clock(app, WEEK2_DEADLINE - rules.AT_RISK_WINDOW - timedelta(seconds=1))
    rows = rows_by_username(client.get(f"/api/v1/courses/{course.id}/board", headers=bearer(token)).get_json())
    assert {u: r["at_risk"] for u, r in rows.items()} == {"brd101kim": 0, "brd101lee": 0, "brd101park": 0}
    set_clock(app, NOW)
    rows = rows_by_username(client.get(f"/api/v1/courses/{course.id}/board", headers=bearer(token)).get_json())
    assert {u: r["at_risk"] for u, r in rows.items()} == {"brd101kim": 1, "brd101lee": 2, "brd101park": 0}


def test_board_after_the_deadline_counts_absent(app, client, users, admin_token, course):
    """One second past week 2's deadline its unfinished lessons are absent, not at risk."""
    set_clock(app, WEEK2_DEADLINE + timedelta(seconds=1))
    token = users.login(client, "admin1")  # three days on, the first session has expired
    rows = rows_by_username(client.get(f"/api/v1/courses/{course.id}/board", headers=bearer(token)).get_json())
    assert (rows["brd101lee"]["absent"], rows["brd101lee"]["at_risk"]) == (4, 0)
    assert (rows["brd101kim"]["absent"], rows["brd101kim"]["at_risk"]) == (1, 0)


def test_withdrawn_learners_and_other_courses_are_left_out(app, client, users, admin_token, course):
    from lms.db import db
    from lms.enrolment.models import Enrollment

    other = Class_(app, client, users, admin_token, code="OTH101", learners=("kim",))
    other.progress("kim", 1, 1, status="attended", covered=SECONDS, completed_at=kst(2027, 3, 3))
    with app.app_context():
        e = db.session.scalar(select(Enrollment).where(Enrollment.user_id == course.learners["lee"]))
        e.status = "cancelled"
        db.session.commit()
    set_clock(app, NOW)
    rows = rows_by_username(client.get(f"/api/v1/courses/{course.id}/board", headers=bearer(admin_token)).get_json())
    assert set(rows) == {"brd101kim", "brd101park"}
    rows = rows_by_username(client.get(f"/api/v1/courses/{other.id}/board", headers=bearer(admin_token)).get_json())
    assert set(rows) == {"oth101kim"} and rows["oth101kim"]["attended"] == 1


# --- sorting -----------------------------------------------------------------------------

def order_of(client, course, token, **params):
    r = client.get(f"/api/v1/courses/{course.id}/board", query_string=params, headers=bearer(token))
    assert r.status_code == 200, r.get_json()
    return [row["username"].removeprefix("brd101") for row in r.get_json()["learners"]]


def test_sorting(app, client, admin_token, course):
    set_clock(app, NOW)
    assert order_of(client, course, admin_token) == ["kim", "park", "lee"]  # 김, 박, 이
    assert order_of(client, course, admin_token, sort="name", order="desc") == ["lee", "park", "kim"]
    assert order_of(client, course, admin_token, sort="at_risk", order="desc") == ["lee", "kim", "park"]
    assert order_of(client, course, admin_token, sort="at_risk", order="asc") == ["park", "kim", "lee"]
    assert order_of(client, course, admin_token, sort="progress", order="asc") == ["lee", "park", "kim"]
    assert order_of(client, course, admin_token, sort="absent", order="desc") == ["lee", "park", "kim"]
    assert order_of(client, course, admin_token, sort="attended", order="desc") == ["kim", "park", "lee"]
    # never accessed comes last in both orders
    assert order_of(client, course, admin_token, sort="last_access", order="desc") == ["kim", "park", "lee"]
    assert order_of(client, course, admin_token, sort="last_access", order="asc") == ["park", "kim", "lee"]
    for bad in ({"sort": "password"}, {"order": "up"}, {"format": "pdf"}, {"section_id": "x"}, {"sort": ""}):
        r = client.get(f"/api/v1/courses/{course.id}/board", query_string=bad, headers=bearer(admin_token))
        assert_api_error(r, 400, "invalid_request")


# --- exports -----------------------------------------------------------------------------

HEADER = ["아이디", "이름", "분반", "이번 주 진도율(%)", "출석", "결석", "공결", "미완료", "기한 임박",
          "최근 접속 IP", "최근 접속 시각"]


def test_csv_export_utf8_bom(app, client, admin_token, course):
    set_clock(app, NOW)
    r = client.get(f"/api/v1/courses/{course.id}/board?format=csv&sort=at_risk&order=desc", headers=bearer(admin_token))
    assert r.status_code == 200
    assert r.mimetype == "text/csv"
    assert re.match(r'attachment; filename="board-BRD101-\d{8}-\d{4}\.csv"', r.headers["Content-Disposition"])
    raw = r.get_data()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads the Korean right
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))
    assert rows[0] == HEADER
    assert [row[0] for row in rows[1:]] == ["brd101lee", "brd101kim", "brd101park"]
    assert rows[1] == ["brd101lee", "이영희", "1", "0", "0", "2", "0", "4", "2", "", ""]
    assert rows[2] == ["brd101kim", "김철수", "1", "50", "4", "0", "0", "2", "1", "10.0.0.7", "2027-03-19 21:30:00"]
    assert rows[3][3] == "10" and rows[3][6] == "1"


def test_exports_never_carry_formulas(app, client, users, admin_token):
    """A name like ``=HYPERLINK(...)`` is text in the CSV and in the XLSX (CSV injection)."""
    from openpyxl import load_workbook

    c = Class_(app, client, users, admin_token, learners=())
    uid = make_user(app, users, "evil01", "learner", name='=HYPERLINK("http://x","y")')
    assert client.post(f"/api/v1/courses/{c.id}/enrollments", json={"user_id": uid},
                       headers=bearer(admin_token)).status_code == 201
    raw = client.get(f"/api/v1/courses/{c.id}/board?format=csv", headers=bearer(admin_token)).get_data()
    rows = list(csv.reader(io.StringIO(raw[3:].decode("utf-8"))))
    assert rows[1][1] == "'=HYPERLINK(\"http://x\",\"y\")"
    raw = client.get(f"/api/v1/courses/{c.id}/board?format=xlsx", headers=bearer(admin_token)).get_data()
    ws = load_workbook(io.BytesIO(raw)).active
    assert ws.cell(row=2, column=2).value == '=HYPERLINK("http://x","y")'
    assert ws.cell(row=2, column=2).data_type == "s"


def test_xlsx_export(app, client, admin_token, course):
    from openpyxl import load_workbook

    set_clock(app, NOW)
    r = client.get(f"/api/v1/courses/{course.id}/board?format=xlsx&sort=name", headers=bearer(admin_token))
    assert r.status_code == 200
    assert r.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert re.match(r'attachment; filename="board-BRD101-\d{8}-\d{4}\.xlsx"', r.headers["Content-Disposition"])
    ws = load_workbook(io.BytesIO(r.get_data())).active
    values = [list(row) for row in ws.iter_rows(values_only=True)]
    assert values[0] == HEADER
    assert len(values) == 4
    assert values[1] == ["brd101kim", "김철수", "1", 50, 4, 0, 0, 2, 1, "10.0.0.7", datetime(2027, 3, 19, 21, 30)]
    assert values[2][:9] == ["brd101park", "박민수", "1", 10, 2, 1, 1, 2, 0]
    assert values[3][:9] == ["brd101lee", "이영희", "1", 0, 0, 2, 0, 4, 2]
    assert values[3][9:] == [None, None]


# --- reminders (CRS-8) -------------------------------------------------------------------

def test_reminders_reach_only_at_risk_learners(app, client, users, admin_token, course):
    from lms.audit.models import AccessLog
    from lms.db import db
    from lms.notify.models import Notice, OutboxEmail

    ta = course.add_staff("brdta")
    token = users.login(client, "brdta")
    set_clock(app, NOW)
    r = client.post(f"/api/v1/courses/{course.id}/reminders", json={}, headers=bearer(token))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["sent"] == 2
    at_risk = {course.learners["kim"], course.learners["lee"]}
    assert set(r.get_json()["learner_ids"]) == at_risk
    with app.app_context():
        notices = db.session.scalars(select(Notice)).all()
        mails = db.session.scalars(select(OutboxEmail)).all()
        assert {n.user_id for n in notices} == at_risk and len(notices) == 2
        assert {m.user_id for m in mails} == at_risk and len(mails) == 2
        assert all(m.status == "pending" for m in mails)
        kim = next(n for n in notices if n.user_id == course.learners["kim"])
        lee = next(n for n in notices if n.user_id == course.learners["lee"])
        assert kim.kind == "attendance_reminder" and "사회복지학개론" in kim.subject
        assert "2주차 「2주차 2차시」: 2027-03-23 00:00까지" in kim.body and "2주차 1차시" not in kim.body
        assert "2주차 1차시" in lee.body and "2주차 2차시" in lee.body and "1주차" not in lee.body
        assert kim.link == f"/courses/{course.id}"  # the learner's course page: lessons and the player
        logged = db.session.scalars(select(AccessLog).where(AccessLog.event == "attendance_reminder")).all()
        assert len(logged) == 1 and logged[0].user_id == ta
        assert f"course={course.id}" in logged[0].detail and "sent=2" in logged[0].detail
        assert logged[0].course_id == course.id


def test_reminders_when_nobody_is_at_risk(app, client, admin_token, course):
    from lms.db import db
    from lms.notify.models import Notice, OutboxEmail

    set_clock(app, WEEK2_DEADLINE - rules.AT_RISK_WINDOW - timedelta(seconds=1))
    r = client.post(f"/api/v1/courses/{course.id}/reminders", headers=bearer(admin_token))
    assert r.status_code == 200 and r.get_json()["sent"] == 0
    with app.app_context():
        assert db.session.scalars(select(Notice)).all() == []
        assert db.session.scalars(select(OutboxEmail)).all() == []


def test_reminders_refused(app, client, users, admin_token, course):
    from lms.db import db
    from lms.notify.models import Notice

    set_clock(app, NOW)
    make_user(app, users, "insp01", "inspector")
    other = Class_(app, client, users, admin_token, code="OTH101", learners=())
    other.add_staff("otherta")
    url = f"/api/v1/courses/{course.id}/reminders"
    for who in ("brd101kim", "insp01", "otherta"):
        assert_api_error(client.post(url, json={}, headers=bearer(users.login(client, who))), 403, "forbidden")
    assert_api_error(client.post(url, json={"section_id": "1"}, headers=bearer(admin_token)), 400, "invalid_request")
    assert_api_error(client.post(url, json={"extra": 1}, headers=bearer(admin_token)), 400, "invalid_request")
    assert_api_error(client.post(url, json={"section_id": 999}, headers=bearer(admin_token)), 404, "not_found")
    assert_api_error(client.post(url, json={}), 401, "unauthorized")
    with app.app_context():
        assert db.session.scalars(select(Notice)).all() == []


# --- access control ------------------------------------------------------------------------

def test_board_access_control(app, client, users, admin_token, course):
    url = f"/api/v1/courses/{course.id}/board"
    course.add_staff("brdinst", "instructor")
    course.add_staff("brdta")
    make_user(app, users, "insp01", "inspector")
    other = Class_(app, client, users, admin_token, code="OTH101", learners=())
    other.add_staff("otherta")
    for who in ("brdta", "brdinst", "insp01"):
        assert client.get(url, headers=bearer(users.login(client, who))).status_code == 200, who
    assert_api_error(client.get(url, headers=bearer(users.login(client, "brd101kim"))), 403, "forbidden")
    assert_api_error(client.get(url + "?format=csv", headers=bearer(users.login(client, "otherta"))), 403, "forbidden")
    assert_api_error(client.get(url), 401, "unauthorized")
    assert_api_error(client.get("/api/v1/courses/9999/board", headers=bearer(admin_token)), 404, "not_found")


def test_course_of_another_institution_is_not_found(app, client, users, admin_token, course):
    from lms import clock
    from lms.auth.models import Institution
    from lms.db import db

    with app.app_context():
        inst = Institution(code="other", name="다른 기관", created_at=clock.now())
        db.session.add(inst)
        db.session.commit()
        inst_id = inst.id
    make_user(app, users, "admin2", "admin", institution_id=inst_id)
    token = users.login(client, "admin2")
    assert_api_error(client.get(f"/api/v1/courses/{course.id}/board", headers=bearer(token)), 404, "not_found")


def test_ta_of_one_class_sees_only_that_class(app, client, users, admin_token, course):
    """A TA assigned to one class (분반) sees its learners and may not open another class."""
    from lms.content.models import Section, StaffAssignment
    from lms.db import db
    from lms.enrolment.models import Enrollment

    ta = course.add_staff("brdta")
    with app.app_context():
        sec2 = Section(course_id=course.id, name="2", capacity=200)
        db.session.add(sec2)
        db.session.flush()
        sec1 = db.session.scalar(select(Section.id).where(Section.course_id == course.id, Section.name == "1"))
        e = db.session.scalar(select(Enrollment).where(Enrollment.user_id == course.learners["lee"]))
        e.section_id = sec2.id
        a = db.session.scalar(select(StaffAssignment).where(StaffAssignment.user_id == ta))
        a.section_id = sec1
        db.session.commit()
        sec2_id = sec2.id
    token = users.login(client, "brdta")
    set_clock(app, NOW)
    url = f"/api/v1/courses/{course.id}/board"
    body = client.get(url, headers=bearer(token)).get_json()
    assert set(rows_by_username(body)) == {"brd101kim", "brd101park"}
    assert body["sections"] == [{"id": sec1, "name": "1"}]
    assert_api_error(client.get(url, query_string={"section_id": sec2_id}, headers=bearer(token)), 403, "forbidden")
    r = client.post(f"/api/v1/courses/{course.id}/reminders", json={}, headers=bearer(token))
    assert r.get_json() == {"sent": 1, "learner_ids": [course.learners["kim"]]}
    # the admin picks a class
    body = client.get(url, query_string={"section_id": sec2_id}, headers=bearer(admin_token)).get_json()
    assert set(rows_by_username(body)) == {"brd101lee"} and body["section_id"] == sec2_id
    assert len(body["sections"]) == 2


# --- a whole class in a constant number of queries ------------------------------------------

def _bulk_class(app, n_learners, n_lessons=45, code="BULK"):
    """A 15-week course of ``n_lessons`` lessons with ``n_learners`` learners, each with a
    progress row and a viewing session for every lesson, written directly."""
    from lms import clock
    from lms.attendance.models import LessonProgress, LessonView
    from lms.auth.models import User
    from lms.auth.service import default_institution
    from lms.content import service as content
    from lms.content.models import Course, Section
    from lms.db import db
    from lms.enrolment.models import Enrollment

    with app.app_context():
        inst = default_institution()
        course = Course(institution_id=inst.id, code=code, title="대량 과정", credits=3,
                        starts_on=date(2027, 3, 2), weeks=15, capacity=800, status="published",
                        created_at=clock.now())
        db.session.add(course)
        db.session.flush()
        sec = Section(course_id=course.id, name="1", capacity=200)
        db.session.add(sec)
        lessons = [content.add_lesson(course, week=1 + i % 15, title=f"차시 {i}", duration_seconds=SECONDS)
                   for i in range(n_lessons)]
        learners = [User(institution_id=inst.id, username=f"{code.lower()}{i:04d}", password_hash="x",
                         role="learner", name=f"학습자{i}", otp_secret="JBSWY3DPEHPK3PXP", created_at=clock.now())
                    for i in range(n_learners)]
        db.session.add_all(learners)
        db.session.flush()
        t = kst(2027, 3, 10, 9)
        db.session.execute(insert(Enrollment), [
            {"course_id": course.id, "section_id": sec.id, "user_id": u.id, "status": "active", "created_at": t}
            for u in learners])
        progress, views = [], []
        for u in learners:
            for j, l in enumerate(lessons):
                done = (u.id + j) % 3 == 0
                progress.append({"learner_id": u.id, "lesson_id": l.id, "course_id": course.id, "intervals": [],
                                 "covered_seconds": SECONDS if done else j * 10, "completed_at": t if done else None,
                                 "status": "attended" if done else "pending",
                                 "last_access_at": t + timedelta(minutes=j), "last_access_ip": "10.1.1.1"})
                views.append({"learner_id": u.id, "lesson_id": l.id, "course_id": course.id, "started_at": t,
                              "last_heartbeat_at": t + timedelta(minutes=j, seconds=30), "ip": "10.2.2.2",
                              "position_seconds": 0.0, "credited_seconds": 0.0,
                              "suspicious_excess_seconds": 0.0, "played_since_challenge": 0.0})
        db.session.execute(insert(LessonProgress), progress)
        db.session.execute(insert(LessonView), views)
        db.session.commit()
        return course.id


def _count_queries(app, course_id):
    from lms.attendance import board
    from lms.content.models import Course
    from lms.db import db

    with app.app_context():
        course = db.session.get(Course, course_id)
        statements = []
        listener = lambda *a, **k: statements.append(a[2])
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            result = board.build_board(course, now=NOW)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        db.session.remove()
    return len(statements), result


def test_whole_class_costs_a_constant_number_of_queries(app):
    """No query per learner or per lesson: 3 learners and 200 learners × 45 lessons cost the
    same few queries."""
    small = _bulk_class(app, 3, code="SMALL")
    big = _bulk_class(app, 200, code="BIG")
    n_small, board_small = _count_queries(app, small)
    n_big, board_big = _count_queries(app, big)
    assert len(board_small.rows) == 3 and len(board_big.rows) == 200
    assert n_big == n_small <= 6
    assert len(board_big.lessons) == 45
    assert sum(r.attended + r.absent + r.excused + r.pending for r in board_big.rows) == 200 * 45
    # the latest viewing session (heartbeat 30 s after the progress row's access) wins
    assert all(r.last_access_ip == "10.2.2.2" for r in board_big.rows)


# --- pages -----------------------------------------------------------------------------------

def csrf_from(html: str) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert m
    return m.group(1)


def web_login(client, users, username):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"csrf_token": token, "username": username, "password": users.passwords[username]})
    assert r.status_code == 302, r.get_data(as_text=True)
    page = client.get("/login/otp").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = client.post("/login/otp", data={"csrf_token": token, "code": users.code(username)})
    assert r.status_code == 302, r.get_data(as_text=True)


def test_board_page_for_a_ta(app, client, users, admin_token, course):
    course.add_staff("brdta")
    set_clock(app, NOW)
    web_login(client, users, "brdta")
    r = client.get(f"/courses/{course.id}/board")
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert 'data-refresh-ms="10000"' in html  # CRS-11: at most 10 s
    assert f'data-api-url="/api/v1/courses/{course.id}/board"' in html
    assert '<script src="/static/board.js" defer></script>' in html
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None  # CSP: no inline scripts
    assert "출석 독려 알림 보내기" in html and "마지막 갱신" in html
    assert "CSV 내려받기" in html and "XLSX 내려받기" in html
    row = re.search(r'<tr data-learner-id="%d"[^>]*>(.*?)</tr>' % course.learners["lee"], html, re.S).group(1)
    assert re.search(r'data-field="absent">2<', row) and re.search(r'data-field="at_risk"><span class="badge warn">2<', row)
    # the refresh interval may be made shorter, never longer than 10 s
    assert 'data-refresh-ms="1000"' in client.get(f"/courses/{course.id}/board?refresh=1").get_data(as_text=True)
    assert 'data-refresh-ms="10000"' in client.get(f"/courses/{course.id}/board?refresh=60").get_data(as_text=True)
    # the JSON call the page's script makes with the session cookie
    r = client.get(f"/api/v1/courses/{course.id}/board")
    assert r.status_code == 200 and len(r.get_json()["learners"]) == 3
    # the board.js file is served
    assert client.get("/static/board.js").status_code == 200


def test_reminder_from_the_page_needs_the_csrf_token(app, client, users, admin_token, course):
    course.add_staff("brdta")
    set_clock(app, NOW)
    web_login(client, users, "brdta")
    html = client.get(f"/courses/{course.id}/board").get_data(as_text=True)
    url = f"/api/v1/courses/{course.id}/reminders"
    assert client.post(url, json={}).status_code == 400
    r = client.post(url, json={}, headers={"X-CSRFToken": csrf_from(html)})
    assert r.status_code == 200 and r.get_json()["sent"] == 2


def test_board_page_refused(app, client, users, admin_token, course):
    web_login(client, users, "brd101kim")
    r = client.get(f"/courses/{course.id}/board")
    assert r.status_code == 403 and "이영희" not in r.get_data(as_text=True)
    client.post("/logout")


def test_board_page_not_for_another_courses_ta(app, client, users, admin_token, course):
    other = Class_(app, client, users, admin_token, code="OTH101", learners=())
    other.add_staff("otherta")
    web_login(client, users, "otherta")
    assert client.get(f"/courses/{course.id}/board").status_code == 403
    assert client.get(f"/courses/{other.id}/board").status_code == 200


def test_inspector_page_has_no_reminder_button(app, client, users, admin_token, course):
    make_user(app, users, "insp01", "inspector")
    web_login(client, users, "insp01")
    html = client.get(f"/courses/{course.id}/board").get_data(as_text=True)
    assert "data-testid=\"board-table\"" in html and "출석 독려 알림 보내기" not in html


def test_staff_course_list_and_dashboard_link(app, client, users, admin_token, course):
    other = Class_(app, client, users, admin_token, code="OTH101", learners=())
    course.add_staff("brdta")
    web_login(client, users, "brdta")
    home = client.get("/").get_data(as_text=True)
    assert 'href="/staff/courses"' in home and "담당 과정" in home
    html = client.get("/staff/courses").get_data(as_text=True)
    assert f'href="/courses/{course.id}/board"' in html and "BRD101" in html
    assert f'href="/courses/{other.id}/board"' not in html and "OTH101" not in html
    assert "조교" in html


def test_admin_course_list(app, client, users, admin_token, course):
    web_login(client, users, "admin1")
    home = client.get("/").get_data(as_text=True)
    assert 'href="/staff/courses"' in home and "과정별 학습 현황" in home
    assert f'href="/courses/{course.id}/board"' in client.get("/staff/courses").get_data(as_text=True)


def test_learner_status_list(app, client, users, admin_token, course):
    """The learner's own page: every lesson with its status and deadline (ATT-1)."""
    set_clock(app, NOW)
    web_login(client, users, "brd101park")
    home = client.get("/").get_data(as_text=True)
    assert 'href="/my/attendance"' in home and "나의 출석 현황" in home
    L = course.lessons
    expected = {str(L[(1, 1)]): "excused", str(L[(1, 2)]): "absent", str(L[(2, 1)]): "attended",
                str(L[(2, 2)]): "attended", str(L[(3, 1)]): "pending", str(L[(3, 2)]): "pending"}
    # the home page (the learner's dashboard) itself lists every lesson's status and deadline
    assert dict(re.findall(r'<tr data-lesson-id="(\d+)" data-status="(\w+)"', home)) == expected
    assert "2027-03-16 00:00" in home
    html = client.get("/my/attendance").get_data(as_text=True)
    statuses = dict(re.findall(r'<tr data-lesson-id="(\d+)" data-status="(\w+)"', html))
    assert statuses == expected
    assert "2027-03-16 00:00" in html and "2027-03-30 00:00" in html
    assert "출석 2 · 결석 1 · 공결 1 · 전체 6차시" in html
    assert "20%" in html  # 3-1 seen one fifth
    assert "차시 전체(100%)를 출석 인정 기한까지 수강하면" in html
    assert client.get(f"/courses/{course.id}/board").status_code == 403


def test_learner_status_list_marks_at_risk(app, client, users, admin_token, course):
    set_clock(app, NOW)
    web_login(client, users, "brd101lee")
    html = client.get("/my/attendance").get_data(as_text=True)
    at_risk = re.findall(r'<tr data-lesson-id="(\d+)" data-status="pending" class="at-risk"', html)
    assert sorted(at_risk) == sorted(str(course.lessons[(2, n)]) for n in (1, 2))


def test_board_api_in_openapi(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "get" in paths["/api/v1/courses/{course_id}/board"]
    assert "post" in paths["/api/v1/courses/{course_id}/reminders"]
