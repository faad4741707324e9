"""Courses, lessons, publishing (CRS-1…CRS-5), staff, syllabus and enrolment (CRS-7, ENR-2)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from conftest import assert_api_error, bearer
from lms.clock import KST
from lms.content import rules

COURSE = {"code": "CB101", "title": "사회복지학개론", "credits": 3, "starts_on": "2027-03-02",
          "weeks": 15, "capacity": 100}


def make_course(client, token, **over):
    r = client.post("/api/v1/courses", json={**COURSE, **over}, headers=bearer(token))
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def add_lesson(client, token, course_id, **body):
    return client.post(f"/api/v1/courses/{course_id}/lessons", json=body, headers=bearer(token))


def full_content(client, token, course_id, weeks=15, per_week=3, seconds=1500, skip=()):
    """``per_week`` lessons of ``seconds`` each in every week; week 1's first is the
    instructor's introduction (CRS-5)."""
    for w in range(1, weeks + 1):
        for i in range(per_week):
            if (w, i) in skip:
                continue
            r = add_lesson(client, token, course_id, week=w, title=f"{w}주차 {i + 1}차시",
                           duration_seconds=seconds, instructor_intro=(w == 1 and i == 0))
            assert r.status_code == 201, r.get_json()


def publish(client, token, course_id):
    return client.post(f"/api/v1/courses/{course_id}/publish", headers=bearer(token))


# --- pure rules --------------------------------------------------------------------------

def test_lesson_units_edges():
    """CRS-2/CRS-3: 24:59 is no unit and too short; 25:00 is one unit; 20 frames one unit."""
    assert rules.lesson_units("video", 24 * 60 + 59, None) == 0
    assert rules.lesson_units("video", 25 * 60, None) == 1
    assert rules.lesson_units("video", 50 * 60 - 1, None) == 1
    assert rules.lesson_units("video", 50 * 60, None) == 2
    assert rules.lesson_units("frames", None, 19) == 0
    assert rules.lesson_units("frames", None, 20) == 1
    assert not rules.lesson_long_enough("video", 24 * 60 + 59, None)
    assert rules.lesson_long_enough("video", 25 * 60, None)
    assert not rules.lesson_long_enough("frames", None, 19)
    assert rules.lesson_long_enough("frames", None, 20)


def test_required_units():
    """CRS-2: 15 class hours per credit, 30 for practice courses."""
    assert rules.required_units(3) == 45
    assert rules.required_units(3, practice=True) == 90


def _facts(weeks, per_week, seconds=1500, intro=True):
    out, n = [], 0
    for w in range(1, weeks + 1):
        for i in range(per_week):
            n += 1
            out.append(rules.LessonFacts(id=n, week=w, title="", kind="video", duration_seconds=seconds,
                                         frames=None, instructor_intro=intro and w == 1 and i == 0))
    return out


def test_publish_rules_pure_edges():
    """CRS-1 14 vs 15 weeks; CRS-2 44 vs 45 units; CRS-4 1 vs 2 lessons; CRS-5 intro."""
    ok = rules.publish_problems(weeks=15, credits=3, practice=False, lessons=_facts(15, 3))
    assert ok == []
    p14 = rules.publish_problems(weeks=14, credits=2, practice=False, lessons=_facts(14, 3))
    assert [p.rule for p in p14] == ["CRS-1"]
    # 15 weeks × 3 lessons = 45 units for 3 credits; drop one lesson → 44 units.
    lessons = _facts(15, 3)[:-1]
    assert [p.rule for p in rules.publish_problems(weeks=15, credits=3, practice=False, lessons=lessons)] == ["CRS-2"]
    # one lesson in week 7 → CRS-4 names week 7 only
    lessons = [l for l in _facts(15, 4) if not (l.week == 7 and l.id % 4 != 1)]
    probs = rules.publish_problems(weeks=15, credits=3, practice=False, lessons=lessons)
    assert [(p.rule, p.weeks) for p in probs] == [("CRS-4", [7])]
    no_intro = rules.publish_problems(weeks=15, credits=3, practice=False, lessons=_facts(15, 3, intro=False))
    assert [p.rule for p in no_intro] == ["CRS-5"]


# --- API ---------------------------------------------------------------------------------

def test_create_course_and_dates(client, admin_token):
    """API.md: a course ends on starts_on + 7·weeks − 1."""
    c = make_course(client, admin_token)
    assert c["starts_on"] == "2027-03-02"
    assert c["ends_on"] == (date(2027, 3, 2) + timedelta(days=7 * 15 - 1)).isoformat()
    assert c["status"] == "draft"


def test_course_capacity_crs7(client, admin_token):
    """CRS-7: capacity 800 is allowed, 801 refused; never above the accredited capacity."""
    make_course(client, admin_token, code="A800", capacity=800)
    r = client.post("/api/v1/courses", json={**COURSE, "code": "A801", "capacity": 801}, headers=bearer(admin_token))
    err = assert_api_error(r, 422, "rule_violation")
    assert r.get_json()["error"]["rules"] == ["CRS-7"]
    r = client.post("/api/v1/courses", json={**COURSE, "code": "ACC", "capacity": 300, "accredited_capacity": 250},
                    headers=bearer(admin_token))
    assert_api_error(r, 422, "rule_violation")
    assert err["message"]


def test_course_bad_input(client, admin_token, app):
    """Bad input is 400 and writes nothing."""
    from lms.content.models import Course
    from lms.db import db

    for body in ({**COURSE, "credits": "3"}, {**COURSE, "starts_on": "2027-02-30"}, {**COURSE, "weeks": 0},
                 {k: v for k, v in COURSE.items() if k != "title"}, {**COURSE, "extra": 1}):
        r = client.post("/api/v1/courses", json=body, headers=bearer(admin_token))
        assert_api_error(r, 400, "invalid_request")
    with app.app_context():
        assert db.session.query(Course).count() == 0


def test_duplicate_course_code(client, admin_token):
    make_course(client, admin_token)
    r = client.post("/api/v1/courses", json=COURSE, headers=bearer(admin_token))
    assert_api_error(r, 409, "course_code_taken")


def test_courses_admin_only(client, users):
    """Only admins create courses (403 for others, 401 without a token)."""
    users.create("inst1", "instructor")
    token = users.login(client, "inst1")
    assert_api_error(client.post("/api/v1/courses", json=COURSE, headers=bearer(token)), 403, "forbidden")
    assert_api_error(client.post("/api/v1/courses", json=COURSE), 401, "unauthorized")


def test_lesson_opens_at_midnight_kst(client, admin_token):
    """API.md / ATT-1: week w opens at 00:00 KST of starts_on + 7(w−1); the deadline is 14
    days later, and for the last week the end of that week."""
    c = make_course(client, admin_token)
    r = add_lesson(client, admin_token, c["id"], week=1, title="1", duration_seconds=1500)
    assert r.status_code == 201
    l1 = r.get_json()
    assert l1["opens_at"] == "2027-03-02T00:00:00+09:00"
    assert l1["attendance_deadline"] == "2027-03-16T00:00:00+09:00"
    opens = datetime.fromisoformat(l1["opens_at"])
    assert opens.astimezone(timezone.utc) == datetime(2027, 3, 1, 15, 0, tzinfo=timezone.utc)
    l3 = add_lesson(client, admin_token, c["id"], week=3, title="3", frames=20).get_json()
    assert l3["opens_at"] == "2027-03-16T00:00:00+09:00"
    last = add_lesson(client, admin_token, c["id"], week=15, title="15", duration_seconds=1500).get_json()
    assert last["opens_at"] == "2027-06-08T00:00:00+09:00"
    # the course's last day is 2027-06-14: the last week's lessons are due by its end
    assert last["attendance_deadline"] == "2027-06-15T00:00:00+09:00"
    assert datetime.fromisoformat(last["attendance_deadline"]).astimezone(KST).date() == date(2027, 6, 15)


def test_lesson_bad_input(client, admin_token):
    c = make_course(client, admin_token)
    for body in ({"week": 16, "title": "x", "duration_seconds": 1500}, {"week": 0, "title": "x", "frames": 20},
                 {"week": 1, "title": "x"}, {"week": 1, "title": "x", "frames": 20, "duration_seconds": 1500},
                 {"week": 1, "title": "x", "duration_seconds": -5}, {"week": 1, "title": "x", "duration_seconds": 1.5},
                 {"week": "1", "title": "x", "frames": 20}):
        assert_api_error(add_lesson(client, admin_token, c["id"], **body), 400, "invalid_request")
    assert client.get(f"/api/v1/courses/{c['id']}/lessons", headers=bearer(admin_token)).get_json()["lessons"] == []
    assert_api_error(add_lesson(client, admin_token, 9999, week=1, title="x", frames=20), 404, "not_found")


def test_publish_complete_course(client, admin_token):
    """CRS-1…CRS-5 all hold → published, with warnings for what else is missing."""
    c = make_course(client, admin_token)
    full_content(client, admin_token, c["id"])
    r = publish(client, admin_token, c["id"])
    assert r.status_code == 200, r.get_json()
    warnings = {w["rule"]: w for w in r.get_json()["warnings"]}
    assert set(warnings) == {"CRS-12", "CRS-7", "CRS-8", "CRS-9"}
    # CRS-9: none of the 45 video lessons has its content uploaded to the platform yet
    assert len(warnings["CRS-9"]["lessons"]) == 45
    assert client.get(f"/api/v1/courses/{c['id']}", headers=bearer(admin_token)).get_json()["status"] == "published"


def test_publish_lists_every_broken_rule(client, admin_token):
    """CRS-1, CRS-3, CRS-4, CRS-5 broken at once: 422 names each, with weeks/lessons."""
    c = make_course(client, admin_token, weeks=14, credits=1)
    full_content(client, admin_token, c["id"], weeks=14, per_week=2, skip={(1, 0), (5, 1)})
    short = add_lesson(client, admin_token, c["id"], week=2, title="짧은 차시", duration_seconds=24 * 60 + 59).get_json()
    r = publish(client, admin_token, c["id"])
    err = assert_api_error(r, 422, "rule_violation")
    assert err["rules"] == ["CRS-1", "CRS-3", "CRS-4", "CRS-5"]
    details = {d["rule"]: d for d in err["details"]}
    assert details["CRS-3"]["lessons"] == [short["id"]]
    assert details["CRS-4"]["weeks"] == [1, 5]
    assert details["CRS-5"]["weeks"] == [1]


def test_publish_unit_edge_crs2(client, admin_token):
    """CRS-2: 44 units for 3 credits refused; the 45th unit allows publishing."""
    c = make_course(client, admin_token)
    full_content(client, admin_token, c["id"], skip={(15, 2)})
    err = assert_api_error(publish(client, admin_token, c["id"]), 422, "rule_violation")
    assert err["rules"] == ["CRS-2"]
    add_lesson(client, admin_token, c["id"], week=15, title="추가", frames=20)
    assert publish(client, admin_token, c["id"]).status_code == 200


def test_staff_assignment(client, admin_token, users):
    c = make_course(client, admin_token)
    ta = users.create("ta01", "ta")
    learner = users.create("lrn01", "learner")
    r = client.post(f"/api/v1/courses/{c['id']}/staff", json={"user_id": ta, "role": "ta"}, headers=bearer(admin_token))
    assert r.status_code == 201
    assert r.get_json()["role"] == "ta"
    r = client.post(f"/api/v1/courses/{c['id']}/staff", json={"user_id": ta, "role": "ta"}, headers=bearer(admin_token))
    assert_api_error(r, 409, "already_assigned")
    r = client.post(f"/api/v1/courses/{c['id']}/staff", json={"user_id": learner, "role": "ta"},
                    headers=bearer(admin_token))
    assert_api_error(r, 400, "invalid_request")
    r = client.post(f"/api/v1/courses/{c['id']}/staff", json={"user_id": 999, "role": "ta"}, headers=bearer(admin_token))
    assert_api_error(r, 404, "not_found")


def test_instructor_of_course_adds_lessons(client, admin_token, users):
    """Staff of the course may add its lessons; an instructor of another course may not."""
    c = make_course(client, admin_token)
    other = make_course(client, admin_token, code="OTHER")
    inst = users.create("inst2", "instructor")
    client.post(f"/api/v1/courses/{c['id']}/staff", json={"user_id": inst, "role": "instructor"},
                headers=bearer(admin_token))
    token = users.login(client, "inst2")
    assert add_lesson(client, token, c["id"], week=1, title="a", frames=20).status_code == 201
    assert_api_error(add_lesson(client, token, other["id"], week=1, title="a", frames=20), 403, "forbidden")


def test_syllabus(client, admin_token):
    """CRS-12 syllabus; ATT-7: the attendance weight is at most 20%."""
    c = make_course(client, admin_token)
    url = f"/api/v1/courses/{c['id']}/syllabus"
    assert_api_error(client.get(url, headers=bearer(admin_token)), 404, "not_found")
    body = {"goals": "사회복지의 이해", "evaluation": {"exams": 80, "attendance": 20},
            "weekly_topics": [f"{w}주차" for w in range(1, 16)],
            "exam_periods": {"midterm": ["2027-04-20", "2027-04-23"], "final": ["2027-06-08", "2027-06-11"]}}
    r = client.put(url, json=body, headers=bearer(admin_token))
    assert r.status_code == 200, r.get_json()
    assert client.get(url, headers=bearer(admin_token)).get_json()["exam_periods"]["final"] == ["2027-06-08", "2027-06-11"]
    r = client.put(url, json={"evaluation": {"exams": 79, "attendance": 21}}, headers=bearer(admin_token))
    assert "ATT-7" in assert_api_error(r, 422, "rule_violation")["rules"]
    r = client.put(url, json={"exam_periods": {"final": ["2027-06-12", "2027-06-15"]}}, headers=bearer(admin_token))
    assert_api_error(r, 400, "invalid_request")


# --- enrolment ---------------------------------------------------------------------------

def _bulk_learners(app, n, prefix="bulk"):
    """Learners created directly (one shared hash: argon2 per user would be slow)."""
    from lms import clock
    from lms.auth.models import User
    from lms.auth.service import default_institution, hash_password
    from lms.db import db

    with app.app_context():
        inst = default_institution()
        pw = hash_password("correct-horse-9")
        rows = [User(institution_id=inst.id, username=f"{prefix}{i:04d}", password_hash=pw, role="learner",
                     name=f"학습자{i}", otp_secret="JBSWY3DPEHPK3PXP", created_at=clock.now()) for i in range(n)]
        db.session.add_all(rows)
        db.session.commit()
        return [u.id for u in rows]


def test_admin_enrols_learner(client, admin_token, users):
    """An admin enrols directly; the learner's consent comes later (ENR-2)."""
    c = make_course(client, admin_token)
    lid = users.create("lrn10")
    r = client.post(f"/api/v1/courses/{c['id']}/enrollments", json={"user_id": lid}, headers=bearer(admin_token))
    assert r.status_code == 201
    body = r.get_json()
    assert body["user_id"] == lid and body["syllabus_consent_at"] is None and body["section_id"]
    r = client.post(f"/api/v1/courses/{c['id']}/enrollments", json={"user_id": lid}, headers=bearer(admin_token))
    assert_api_error(r, 409, "already_enrolled")


def test_learner_self_enrolment_needs_consent(client, admin_token, users):
    """ENR-2: a learner enrolling themself must record syllabus consent."""
    c = make_course(client, admin_token)
    full_content(client, admin_token, c["id"])
    assert publish(client, admin_token, c["id"]).status_code == 200
    lid = users.create("lrn11")
    other = users.create("lrn12")
    token = users.login(client, "lrn11")
    url = f"/api/v1/courses/{c['id']}/enrollments"
    err = assert_api_error(client.post(url, json={"user_id": lid}, headers=bearer(token)), 422, "rule_violation")
    assert err["rules"] == ["ENR-2"]
    assert_api_error(client.post(url, json={"user_id": other, "syllabus_consent": True}, headers=bearer(token)),
                     403, "forbidden")
    r = client.post(url, json={"user_id": lid, "syllabus_consent": True}, headers=bearer(token))
    assert r.status_code == 201
    assert r.get_json()["syllabus_consent_at"] is not None


def test_self_enrolment_in_draft_refused(client, admin_token, users):
    c = make_course(client, admin_token)
    lid = users.create("lrn13")
    token = users.login(client, "lrn13")
    r = client.post(f"/api/v1/courses/{c['id']}/enrollments", json={"user_id": lid, "syllabus_consent": True},
                    headers=bearer(token))
    assert_api_error(r, 409, "course_not_open")


def test_capacity_and_classes_of_200(client, admin_token, app):
    """CRS-7: the 201st learner goes to a second class; enrolment stops at capacity."""
    c = make_course(client, admin_token, capacity=202)
    ids = _bulk_learners(app, 203)
    sections = []
    for lid in ids[:202]:
        r = client.post(f"/api/v1/courses/{c['id']}/enrollments", json={"user_id": lid}, headers=bearer(admin_token))
        assert r.status_code == 201, r.get_json()
        sections.append(r.get_json()["section_id"])
    assert len(set(sections[:200])) == 1
    assert sections[200] == sections[201] != sections[0]
    r = client.post(f"/api/v1/courses/{c['id']}/enrollments", json={"user_id": ids[202]}, headers=bearer(admin_token))
    assert assert_api_error(r, 422, "rule_violation")["rules"] == ["CRS-7"]


@pytest.mark.parametrize("role", ["instructor", "ta", "inspector"])
def test_enrol_non_learner_refused(client, admin_token, users, role):
    c = make_course(client, admin_token)
    uid = users.create(f"u{role}", role)
    r = client.post(f"/api/v1/courses/{c['id']}/enrollments", json={"user_id": uid}, headers=bearer(admin_token))
    assert_api_error(r, 400, "invalid_request")
