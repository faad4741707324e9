"""Registration: ENR-1 deadline and late registration, ENR-2 consent, ENR-3 credit caps,
CRS-7 classes, CRS-14 cancellation — each at its edges, through the API."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from conftest import assert_api_error, bearer, set_clock, table_counts
from lms.clock import KST
from lms.enrolment import rules

START = date(2027, 3, 2)  # a Tuesday; registration closes at 2027-03-02 00:00:00 KST


def kst(*args) -> datetime:
    return datetime(*args, tzinfo=KST)


class World:
    """Courses created by the admin (published directly: publishing rules are tested
    elsewhere), learners logged in at a chosen instant."""

    def __init__(self, app, client, users):
        self.app, self.client, self.users = app, client, users
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, int] = {}
        set_clock(app, kst(2026, 12, 1, 9))
        users.create("admin1", "admin", name="관리자")
        self.admin = users.login(client, "admin1")
        self.n = 0

    def course(self, *, starts_on=START, weeks=15, credits=3, capacity=100, publish=True, **over) -> int:
        self.n += 1
        body = {"code": f"C{self.n:03d}", "title": f"과정 {self.n}", "credits": credits,
                "starts_on": starts_on.isoformat(), "weeks": weeks, "capacity": capacity, **over}
        r = self.client.post("/api/v1/courses", json=body, headers=bearer(self.admin))
        assert r.status_code == 201, r.get_json()
        cid = r.get_json()["id"]
        if publish:
            from lms.content.models import Course
            from lms.db import db

            with self.app.app_context():
                db.session.get(Course, cid).status = "published"
                db.session.commit()
        return cid

    def course_ending(self, end: date, credits: int) -> int:
        return self.course(starts_on=end - timedelta(days=7 * 15 - 1), credits=credits)

    def learner(self, name: str) -> int:
        self.ids[name] = self.users.create(f"u_{name}")
        return self.ids[name]

    def login(self, name: str) -> str:
        self.tokens[name] = self.users.login(self.client, f"u_{name}")
        return self.tokens[name]

    def at(self, when: datetime, *names: str) -> None:
        """Log ``names`` in a few seconds before ``when`` (sessions expire when idle), then
        set the clock to ``when``."""
        set_clock(self.app, when - timedelta(seconds=10))
        for n in names:
            self.login(n)
        set_clock(self.app, when)

    def self_enrol(self, name: str, cid: int):
        return self.client.post(f"/api/v1/courses/{cid}/enrollments",
                                json={"user_id": self.ids[name], "syllabus_consent": True},
                                headers=bearer(self.tokens[name]))

    def admin_enrol(self, uid: int, cid: int, **extra):
        return self.client.post(f"/api/v1/courses/{cid}/enrollments", json={"user_id": uid, **extra},
                                headers=bearer(self.admin))

    def events(self, enrollment_id: int) -> list[dict]:
        from sqlalchemy import select

        from lms.db import db
        from lms.enrolment.models import EnrollmentEvent

        with self.app.app_context():
            rows = [{"kind": e.kind, "registration_kind": e.registration_kind, "reason": e.reason, "ip": e.ip,
                     "actor_id": e.actor_id}
                    for e in db.session.scalars(select(EnrollmentEvent).where(
                        EnrollmentEvent.enrollment_id == enrollment_id).order_by(EnrollmentEvent.id))]
            db.session.remove()
        return rows


def test_mask_name_for_the_public_page():
    assert [rules.mask_name(n) for n in ("홍길동", "김철", "남궁민수", "A", "")] == ["홍*동", "김*", "남**수", "A", "*"]


@pytest.fixture
def w(app, client, users):
    return World(app, client, users)


# --- ENR-1: the deadline -------------------------------------------------------------------

def test_enr1_deadline_rule_edges():
    """ENR-1: "registers by the day before": the whole day before the start is open; the
    first closed instant is 00:00:00 KST of the start date."""
    assert rules.registration_deadline(START) == kst(2027, 3, 2, 0, 0, 0)
    assert rules.registration_period(START, kst(2027, 3, 1, 0, 0, 0)) == "regular"
    assert rules.registration_period(START, kst(2027, 3, 1, 23, 59, 59)) == "regular"
    assert rules.registration_period(START, kst(2027, 3, 2, 0, 0, 0)) == "late"
    assert rules.registration_period(START, kst(2027, 3, 16, 0, 0, 0)) == "late"  # start + 14 days
    assert rules.registration_period(START, kst(2027, 3, 16, 0, 0, 1)) == "closed"


def test_enr1_self_registration_closes_at_end_of_day_before(w, app):
    """ENR-1: a learner registering themself at 00:00:00 and 23:59:59 KST the day before is
    on time; at 00:00:00 KST of the start date they are refused with 422 naming ENR-1."""
    cid = w.course()
    for name in ("early", "last", "late"):
        w.learner(name)
    w.at(kst(2027, 3, 1, 0, 0, 0), "early")
    assert w.self_enrol("early", cid).status_code == 201
    w.at(kst(2027, 3, 1, 23, 59, 59), "last", "late")
    r = w.self_enrol("last", cid)
    assert r.status_code == 201, r.get_json()
    assert w.events(r.get_json()["id"])[0]["registration_kind"] == "regular"
    set_clock(app, kst(2027, 3, 2, 0, 0, 0))
    before = table_counts(app)
    err = assert_api_error(w.self_enrol("late", cid), 422, "rule_violation")
    assert err["rules"] == ["ENR-1"]
    assert err["details"]["registration_deadline"] == "2027-03-02T00:00:00+09:00"
    after = table_counts(app)
    assert {k: v for k, v in after.items() if k != "access_log"} == \
        {k: v for k, v in before.items() if k != "access_log"}


def test_enr1_admin_after_deadline_is_a_recorded_override(w, app):
    """ENR-1: an administrator enrolling after the deadline without a late-registration
    right makes a documented override, recorded with its reason in the history."""
    cid = w.course()
    a, b = w.learner("a"), w.learner("b")
    set_clock(app, kst(2027, 3, 5, 10))
    w.admin = w.users.login(w.client, "admin1")
    r = w.admin_enrol(a, cid, reason="기관 전산 장애로 접수 누락 (증빙 보관)")
    assert r.status_code == 201
    ev = w.events(r.get_json()["id"])
    assert ev[0]["kind"] == "enrolled" and ev[0]["registration_kind"] == "admin_override"
    assert ev[0]["reason"] == "기관 전산 장애로 접수 누락 (증빙 보관)"
    r = w.admin_enrol(b, cid)
    assert r.status_code == 201
    ev = w.events(r.get_json()["id"])[0]
    assert ev["registration_kind"] == "admin_override" and "사유 미기재" in ev["reason"]


def test_enr1_regular_admin_enrolment_is_regular(w, app):
    cid = w.course()
    uid = w.learner("a")
    r = w.admin_enrol(uid, cid)
    assert r.status_code == 201
    assert w.events(r.get_json()["id"])[0]["registration_kind"] == "regular"


# --- ENR-1 late registration and CRS-14 ---------------------------------------------------

def _cancelled_elsewhere(w, app, names, *, other_start=START) -> int:
    """The learners register in a small course that is then cancelled (CRS-14), which
    opens their late-registration right."""
    small = w.course(starts_on=other_start)
    for n in names:
        assert w.admin_enrol(w.ids[n], small).status_code == 201
    r = w.client.post(f"/api/v1/courses/{small}/cancel", json={"reason": "수강인원 미달"}, headers=bearer(w.admin))
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["cancelled_registrations"] == len(names)
    return small


def test_enr1_late_registration_at_14_days_vs_14_days_and_1s(w, app):
    """ENR-1: a learner whose registration was cancelled (course closed) registers late up to
    start + 14 days (inclusive); at start + 14 days + 1 s it is refused."""
    cid = w.course()
    for n in ("on_edge", "past_edge"):
        w.learner(n)
    _cancelled_elsewhere(w, app, ["on_edge", "past_edge"])
    edge = kst(2027, 3, 2) + timedelta(days=14)
    w.at(edge, "on_edge", "past_edge")
    r = w.self_enrol("on_edge", cid)
    assert r.status_code == 201, r.get_json()
    ev = w.events(r.get_json()["id"])[0]
    assert ev["registration_kind"] == "late" and "폐강" in ev["reason"]
    set_clock(app, edge + timedelta(seconds=1))
    err = assert_api_error(w.self_enrol("past_edge", cid), 422, "rule_violation")
    assert err["rules"] == ["ENR-1"]


def test_enr1_late_registration_needs_a_right_and_uses_it_once(w, app):
    """ENR-1: without a cancelled registration there is no late registration; a right is
    used by one late registration only."""
    c1, c2 = w.course(), w.course()
    w.learner("norights")
    w.learner("cancelled")
    _cancelled_elsewhere(w, app, ["cancelled"])
    w.at(kst(2027, 3, 3, 9), "norights", "cancelled")
    assert assert_api_error(w.self_enrol("norights", c1), 422, "rule_violation")["rules"] == ["ENR-1"]
    assert w.self_enrol("cancelled", c1).status_code == 201
    assert assert_api_error(w.self_enrol("cancelled", c2), 422, "rule_violation")["rules"] == ["ENR-1"]


def test_enr1_late_registration_only_below_capacity(w, app):
    """ENR-1 / CRS-7: late registration only into a course below capacity."""
    full = w.course(capacity=1)
    filler, late = w.learner("filler"), w.learner("late")
    assert w.admin_enrol(filler, full).status_code == 201
    _cancelled_elsewhere(w, app, ["late"])
    w.at(kst(2027, 3, 3, 9), "late")
    err = assert_api_error(w.self_enrol("late", full), 422, "rule_violation")
    assert "CRS-7" in err["rules"]


def test_crs14_cancel_at_10_vs_11_registrations(w, app):
    """CRS-14: a course with 10 registrations may be cancelled; with 11 it may not (422)."""
    ten, eleven = w.course(), w.course()
    ids = [w.learner(f"l{i:02d}") for i in range(11)]
    for uid in ids[:10]:
        assert w.admin_enrol(uid, ten).status_code == 201
    for uid in ids:
        assert w.admin_enrol(uid, eleven).status_code == 201
    err = assert_api_error(w.client.post(f"/api/v1/courses/{eleven}/cancel", json={"reason": "x"},
                                         headers=bearer(w.admin)), 422, "rule_violation")
    assert err["rules"] == ["CRS-14"] and err["details"]["registrations"] == 11
    r = w.client.post(f"/api/v1/courses/{ten}/cancel", json={"reason": "수강인원 미달"}, headers=bearer(w.admin))
    assert r.status_code == 200 and r.get_json()["cancelled_registrations"] == 10
    from sqlalchemy import func, select

    from lms.db import db
    from lms.enrolment.models import Enrollment, LateRight
    from lms.notify.models import Notice

    with app.app_context():
        assert db.session.scalar(select(func.count(LateRight.id))) == 10
        statuses = set(db.session.scalars(select(Enrollment.status).where(Enrollment.course_id == ten)))
        assert statuses == {"cancelled"}
        assert db.session.scalar(select(func.count(Notice.id)).where(Notice.kind == "course_cancelled")) == 10
    # A cancelled course takes no registrations.
    assert_api_error(w.admin_enrol(w.learner("x"), ten), 409, "course_cancelled")


# --- ENR-3: credit caps ----------------------------------------------------------------------

@pytest.mark.parametrize("end, half", [
    (date(2027, 2, 28), (2026, 2)), (date(2027, 3, 1), (2027, 1)), (date(2027, 8, 31), (2027, 1)),
    (date(2027, 9, 1), (2027, 2)), (date(2028, 2, 28), (2027, 2)), (date(2028, 2, 29), (2027, 2)),
    (date(2028, 3, 1), (2028, 1)),
])
def test_enr3_halves_by_end_date(end, half):
    """ENR-3: years run Mar 1 – end of Feb (Feb 29 in a leap year), halves Mar–Aug, Sep–Feb."""
    assert rules.credit_half(end) == half


def test_enr3_half_cap_24_at_aug_31_vs_sep_1(w, app):
    """ENR-3: 24 credits in Mar–Aug (courses ending Mar 1 and Aug 31); one more ending Aug 31
    is refused with the learner's totals; ending Sep 1 it counts in the other half."""
    uid = w.learner("a")
    for end, credits in ((date(2027, 3, 1), 12), (date(2027, 8, 31), 12)):
        assert w.admin_enrol(uid, w.course_ending(end, credits)).status_code == 201
    over = w.course_ending(date(2027, 8, 31), 1)
    err = assert_api_error(w.admin_enrol(uid, over), 422, "rule_violation")
    assert err["rules"] == ["ENR-3"]
    d = err["details"]
    assert d["half_credits"] == 24 and d["half_cap"] == 24 and d["broken"] == ["half"]
    assert d["year_credits"] == 24 and d["half"] == "2027-03-01/2027-08-31"
    assert "24" in err["message"]
    assert w.admin_enrol(uid, w.course_ending(date(2027, 9, 1), 1)).status_code == 201
    # The Feb 28 2027 end falls in the previous year (2026-03-01 – 2027-02-28): allowed.
    assert w.admin_enrol(uid, w.course_ending(date(2027, 2, 28), 24)).status_code == 201


def test_enr3_year_cap_42_with_leap_feb_29_vs_mar_1(w, app):
    """ENR-3: 42 credits from 2027-03-01 to 2028-02-29 (leap year): a course ending Feb 29
    2028 is over the year's cap; ending Mar 1 2028 it belongs to the next year."""
    uid = w.learner("a")
    for end, credits in ((date(2027, 3, 1), 12), (date(2027, 8, 31), 12), (date(2027, 9, 1), 10),
                         (date(2028, 2, 28), 8)):
        assert w.admin_enrol(uid, w.course_ending(end, credits)).status_code == 201, end
    err = assert_api_error(w.admin_enrol(uid, w.course_ending(date(2028, 2, 29), 1)), 422, "rule_violation")
    assert err["rules"] == ["ENR-3"]
    d = err["details"]
    assert d["year_credits"] == 42 and d["year_cap"] == 42 and d["broken"] == ["year"]
    assert d["half_credits"] == 18 and d["year"] == "2027-03-01/2028-02-29"
    assert {"year": 2027, "year_credits": 42, "half1": 24, "half2": 18} in d["totals"]
    assert w.admin_enrol(uid, w.course_ending(date(2028, 3, 1), 1)).status_code == 201


def test_enr3_exactly_at_cap_is_allowed_and_cancelled_courses_do_not_count(w, app):
    """ENR-3: reaching 24 exactly is allowed; a cancelled registration frees its credits."""
    uid = w.learner("a")
    first = w.course_ending(date(2027, 8, 31), 21)
    r = w.admin_enrol(uid, first)
    assert r.status_code == 201
    assert w.admin_enrol(uid, w.course_ending(date(2027, 7, 31), 3)).status_code == 201  # 24 = cap
    blocked = w.course_ending(date(2027, 6, 30), 3)
    assert_api_error(w.admin_enrol(uid, blocked), 422, "rule_violation")
    r2 = w.client.post(f"/api/v1/enrollments/{r.get_json()['id']}/cancel", json={"reason": "학습 포기"},
                       headers=bearer(w.admin))
    assert r2.status_code == 200
    assert w.admin_enrol(uid, blocked).status_code == 201


def test_enr3_credit_totals_api(w, app):
    uid = w.learner("a")
    assert w.admin_enrol(uid, w.course_ending(date(2027, 9, 1), 3)).status_code == 201
    token = w.login("a")
    body = w.client.get("/api/v1/me/credits", headers=bearer(token)).get_json()
    assert body["caps"] == {"year": 42, "half": 24}
    assert body["totals"] == [{"year": 2027, "year_credits": 3, "half1": 0, "half2": 3}]


# --- ENR-2 consent, CRS-7 classes -------------------------------------------------------------

def test_enr2_consent_recorded_with_time_and_ip(w, app):
    """ENR-2: the self-registration records consent's time and IP, and an event."""
    cid = w.course()
    w.learner("a")
    w.login("a")
    r = w.self_enrol("a", cid)
    assert r.status_code == 201
    kinds = [e["kind"] for e in w.events(r.get_json()["id"])]
    assert kinds == ["enrolled", "consent"]
    from lms.db import db
    from lms.enrolment.models import Enrollment

    with app.app_context():
        e = db.session.get(Enrollment, r.get_json()["id"])
        assert e.syllabus_consent_at is not None and e.syllabus_consent_ip == "127.0.0.1"


def test_crs7_admin_moves_learner_between_classes(w, app):
    """CRS-7: an admin moves a learner to another class of the course; never into a full
    class (200) nor a class of another course."""
    cid, other = w.course(capacity=300), w.course()
    from lms.content.models import Section
    from lms.db import db

    with app.app_context():
        s2 = Section(course_id=cid, name="2", capacity=1)
        db.session.add(s2)
        db.session.commit()
        s2_id = s2.id
        other_section = db.session.scalar(db.select(Section.id).where(Section.course_id == other))
    a, b = w.learner("a"), w.learner("b")
    ea = w.admin_enrol(a, cid).get_json()["id"]
    eb = w.admin_enrol(b, cid).get_json()["id"]
    r = w.client.post(f"/api/v1/enrollments/{ea}/move", json={"section_id": s2_id}, headers=bearer(w.admin))
    assert r.status_code == 200 and r.get_json()["section_id"] == s2_id
    err = assert_api_error(w.client.post(f"/api/v1/enrollments/{eb}/move", json={"section_id": s2_id},
                                         headers=bearer(w.admin)), 422, "rule_violation")
    assert err["rules"] == ["CRS-7"]
    assert_api_error(w.client.post(f"/api/v1/enrollments/{eb}/move", json={"section_id": other_section},
                                   headers=bearer(w.admin)), 400, "invalid_request")
    assert [e["kind"] for e in w.events(ea)] == ["enrolled", "moved"]
    token = w.login("a")
    assert_api_error(w.client.post(f"/api/v1/enrollments/{ea}/move", json={"section_id": s2_id},
                                   headers=bearer(token)), 403, "forbidden")


def test_crs7_accredited_capacity_is_never_exceeded(w, app):
    """CRS-7: the course never takes more than its accredited capacity."""
    cid = w.course(capacity=2, accredited_capacity=2)
    ids = [w.learner(f"l{i}") for i in range(3)]
    for uid in ids[:2]:
        assert w.admin_enrol(uid, cid).status_code == 201
    assert assert_api_error(w.admin_enrol(ids[2], cid), 422, "rule_violation")["rules"] == ["CRS-7"]


def test_registration_info_api(w, app):
    """The registration facts a client shows: period, deadlines (ENR-1), fee, totals (ENR-3)."""
    cid = w.course()
    w.learner("info")
    w.at(kst(2027, 3, 1, 23, 59, 59), "info")
    body = w.client.get(f"/api/v1/courses/{cid}/registration", headers=bearer(w.tokens["info"])).get_json()
    assert body["period"] == "regular" and body["registration_deadline"] == "2027-03-02T00:00:00+09:00"
    assert body["late_registration_until"] == "2027-03-16T00:00:00+09:00" and body["late_right"] is False
    assert body["ends_on"] == "2027-06-14" and body["fee"] is None and body["credit_totals"] == []


def _post(url: str, body: dict, token: str) -> int:
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_enr3_crs7_simultaneous_registrations_on_two_app_instances(w, app, second_app):
    """ENR-3 and CRS-7 hold under races across two web processes: one learner registered in
    two 13-credit courses of one half at once gets exactly one (24 cap); two learners taking
    the last seat at once: exactly one gets it."""
    import threading

    from conftest import LiveServer

    a, b = w.course_ending(date(2027, 8, 31), 13), w.course_ending(date(2027, 7, 31), 13)
    seat = w.course(capacity=1)
    uid, x, y = w.learner("racer"), w.learner("sx"), w.learner("sy")
    with LiveServer(app, host="0.0.0.0") as s1, LiveServer(second_app, host="0.0.0.0") as s2:
        s1.host = s2.host = "127.0.0.1"
        for jobs in ([(s1, a, uid), (s2, b, uid)], [(s1, seat, x), (s2, seat, y)]):
            barrier = threading.Barrier(2)
            results = []

            def go(srv, cid, learner):
                barrier.wait()
                results.append(_post(f"{srv.url}/api/v1/courses/{cid}/enrollments", {"user_id": learner}, w.admin))

            threads = [threading.Thread(target=go, args=job) for job in jobs]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert sorted(results) == [201, 422], results
