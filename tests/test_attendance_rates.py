"""Attendance rates and scores (ATT-5…ATT-8): pure rules at their edges (79.9% vs 80%, the
20-point table's bands, the 20% cap, ATT-8's 2/3) and ``GET /courses/{id}/attendance``
(API.md: who sees whose, stored statuses, rate, score, F)."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import select

from conftest import assert_api_error, bearer, set_clock
from lms.attendance import rules
from lms.attendance.rules import LessonRecord
from lms.clock import KST

F = Fraction


def recs(*pairs) -> list[LessonRecord]:
    """LessonRecords from (units, status) pairs."""
    return [LessonRecord(units=u, status=s) for u, s in pairs]


# --- rate (ATT-6) and the F flag --------------------------------------------------------

def test_rate_79_9_vs_80_percent():
    """1000 units: 799 attended is 79.9% → F; 800 is exactly 80% → no F (exact arithmetic)."""
    f799 = rules.attendance_figures(recs((799, "attended"), (201, "absent")))
    assert f799.rate == F(799, 1000) and f799.f is True
    f800 = rules.attendance_figures(recs((800, "attended"), (200, "absent")))
    assert f800.rate == F(4, 5) and f800.f is False
    assert rules.below_minimum_rate(F(4, 5) - F(1, 10**9))
    assert not rules.below_minimum_rate(rules.MIN_ATTENDANCE_RATE)


def test_rate_weighs_each_lesson_by_its_units():
    """ATT-6: measured in class time — a 2-unit lesson weighs twice a 1-unit one."""
    fig = rules.attendance_figures(recs((2, "attended"), (1, "absent"), (1, "absent")))
    assert fig.rate == F(1, 2)
    fig = rules.attendance_figures(recs((1, "attended"), (2, "absent"), (1, "attended")))
    assert fig.rate == F(1, 2)
    fig = rules.attendance_figures(recs((3, "attended"), (1, "pending"), (0, "absent")))
    assert (fig.total_units, fig.attended_units, fig.pending_units, fig.absent_units) == (4, 3, 1, 0)
    assert fig.rate == F(3, 4)


def test_excused_lessons_count_as_attended_up_to_20_percent():
    """ATT-5: excused units count as attended, never more than 20% of the total."""
    fig = rules.attendance_figures(recs((600, "attended"), (200, "excused"), (200, "absent")))
    assert fig.excused_counted == 200 and fig.rate == F(4, 5) and not fig.f
    over = rules.attendance_figures(recs((600, "attended"), (250, "excused"), (150, "absent")))
    assert over.excused_units == 250 and over.excused_counted == 200 and over.rate == F(4, 5)
    # 47 units: the cap is 9.4 units, a fraction, kept exactly.
    odd = rules.attendance_figures(recs((30, "attended"), (10, "excused"), (7, "absent")))
    assert odd.excused_counted == F(47, 5) and odd.rate == F(30 + F(47, 5), 47)


def test_excuse_cap_edges():
    assert rules.excuse_within_cap(199, 1000)  # 19.9%
    assert rules.excuse_within_cap(200, 1000)  # 20%
    assert not rules.excuse_within_cap(201, 1000)  # 20.1%
    assert rules.excuse_within_cap(9, 47) and not rules.excuse_within_cap(10, 47)  # cap 9.4
    assert rules.excuse_within_cap(0, 0) and not rules.excuse_within_cap(1, 0)
    assert rules.excused_cap_units(45) == 9


def test_no_units_is_rate_zero():
    fig = rules.attendance_figures([])
    assert fig.rate == 0 and fig.total_units == 0 and fig.f


# --- score (ATT-7) ----------------------------------------------------------------------

@pytest.mark.parametrize("percent, points", [
    ("100", 20),
    ("99.99", 19), ("97.5", 19), ("97.49", 18), ("95", 18),
    ("94.99", 17), ("92.5", 17), ("92.49", 16), ("90", 16),
    ("89.99", 15), ("87.5", 15), ("87.49", 14), ("85", 14),
    ("84.99", 13), ("82.5", 13), ("82.49", 12), ("80", 12),
    ("79.99", None), ("79.9", None), ("0", None),
])
def test_default_20_point_table(percent, points):
    """ATT-7's example table; inside a band the points step up at its midpoint (linear by
    rate, rounded down to whole points); below 80% F (None)."""
    rate = F(percent) / 100
    got = rules.attendance_score(rate)
    assert got == (None if points is None else F(points))


def test_score_never_exceeds_20_points():
    assert max(rules.attendance_score(F(n, 1000)) or 0 for n in range(800, 1001)) == rules.MAX_ATTENDANCE_POINTS


def test_course_scale_steps_and_f_below_80():
    scale = [[100, 10], [90, 9], [80, 8]]
    assert rules.attendance_score(F(1), scale) == 10
    assert rules.attendance_score(F(999, 1000), scale) == 9
    assert rules.attendance_score(F(9, 10), scale) == 9
    assert rules.attendance_score(F(899, 1000), scale) == 8
    assert rules.attendance_score(F(4, 5), scale) == 8
    assert rules.attendance_score(F(799, 1000), scale) is None  # ATT-6 whatever the scale says
    # A scale whose lowest band starts above 80%: a rate between scores 0, not F.
    assert rules.attendance_score(F(85, 100), [[90, 15.5]]) == 0
    assert rules.attendance_score(F(95, 100), [[90, 15.5]]) == F(31, 2)
    # Decimal percents are exact: 79.9 is 799/10.
    assert rules.attendance_score(F(8, 10), [[80.5, 20], [80, 19]]) == 19
    assert rules.attendance_score(F(805, 1000), [[80.5, 20], [80, 19]]) == 20


def test_course_scale_problems():
    assert rules.attendance_scale_problems([[100, 20], [80, 12]]) == []
    over = rules.attendance_scale_problems([[100, 20.5], [80, 12]])
    assert [r for r, _m in over] == ["ATT-7"]
    assert [r for r, _m in rules.attendance_scale_problems([[100, 21]])] == ["ATT-7"]
    for bad in ([], None, "x", [[100]], [[100, "20"]], [[True, 20]], [[101, 20]], [[100, -1]],
                [[80, 10], [90, 12]], [[100, 10], [90, 12]], [[100, float("nan")]]):
        problems = rules.attendance_scale_problems(bad)
        assert problems and all(r is None for r, _m in problems), bad


# --- military enlistment (ATT-8) ----------------------------------------------------------

START = date(2027, 3, 1)


def course_records(statuses: list[str]) -> list[LessonRecord]:
    """15 weeks × 3 one-unit lessons (45 units); statuses in course order, the rest pending."""
    out = []
    for i in range(45):
        week = i // 3 + 1
        deadline = rules.attendance_deadline(START, 15, week)
        status = statuses[i] if i < len(statuses) else "pending"
        opens = rules.lesson_opens_at(START, week)
        out.append(LessonRecord(units=1, status=status, deadline=deadline,
                                completed_at=opens + timedelta(days=1) if status == "attended" else None))
    return out


def test_enlistment_two_thirds_edge():
    """ATT-8: 30 of 45 units attended before enlisting is 2/3 → the score comes from the rate
    up to enlistment; 29 is not → the course rate counts (and it is far below 80%)."""
    # Weeks 1–11 due by the enlistment (33 lessons); the learner enlists on week 13's Monday,
    # when week 11's lessons (deadline: 14 days after opening) are due.
    enlisted_on = START + timedelta(days=7 * 12)
    enlisted_at = rules.enlistment_instant(enlisted_on)
    assert rules.attendance_deadline(START, 15, 11) == enlisted_at
    due = [r for r in course_records([]) if r.deadline <= enlisted_at]
    assert len(due) == 33
    ok = course_records(["attended"] * 30 + ["absent"] * 3)
    res = rules.course_attendance(ok, enlisted_on=enlisted_on)
    assert res.enlistment.applies
    assert res.enlistment.attended_units == 30 and res.enlistment.required_units == 30
    assert res.rate == F(30, 33) and not res.f
    assert res.score == 16  # 90.9%: the lower half of 90–<95
    assert res.course.rate == F(30, 45)
    short = course_records(["attended"] * 29 + ["absent"] * 4)
    res = rules.course_attendance(short, enlisted_on=enlisted_on)
    assert not res.enlistment.applies and res.enlistment.attended_units == 29
    assert res.rate == F(29, 45) and res.f and res.score is None


def test_enlistment_counts_lessons_attended_early_and_not_those_still_open():
    """Lessons open at enlistment and not attended are not held against the learner; lessons
    attended before enlisting count even when due later."""
    enlisted_on = START + timedelta(days=7 * 12)  # weeks 12's lessons still open
    statuses = ["attended"] * 33 + ["attended", "pending", "pending"]  # one of week 12 done early
    res = rules.course_attendance(course_records(statuses), enlisted_on=enlisted_on)
    assert res.enlistment.figures.total_units == 34
    assert res.enlistment.applies and res.rate == 1 and res.score == 20


def test_enlistment_rate_below_80_is_still_f():
    """30 of 45 units attended but 8 absent before enlisting: 30/38 < 80% → F."""
    enlisted_on = START + timedelta(days=7 * 14)  # weeks 1–13 due: 39 lessons
    statuses = ["attended"] * 30 + ["absent"] * 8 + ["excused"]
    res = rules.course_attendance(course_records(statuses), enlisted_on=enlisted_on)
    assert res.enlistment.applies  # 30 + 1 excused ≥ 30
    assert res.rate == F(31, 39) and res.f and res.score is None


def test_no_enlistment_is_the_course_rate():
    res = rules.course_attendance(recs((36, "attended"), (9, "absent")))
    assert res.enlistment is None and res.rate == F(4, 5) and res.score == 12 and not res.f


# --- the API ------------------------------------------------------------------------------

NOW = datetime(2027, 6, 20, 12, 0, tzinfo=KST)  # after the course's end (2027-06-13)
# Frame-based lessons: 500 + 299 + 1 + 200 = 1000 units.
FRAMES = [10000, 5980, 20, 4000]


def make_course(app, client, users, now):
    set_clock(app, now)
    ids = {}
    for name, role in (("admin1", "admin"), ("inst1", "instructor"), ("ta1", "ta"), ("ta2", "ta"),
                       ("insp1", "inspector"), ("lea1", "learner"), ("lea2", "learner"), ("lea3", "learner")):
        ids[name] = users.create(name, role)
    tokens = {}

    def h(name):
        if name not in tokens:
            tokens[name] = users.login(client, name)
        return bearer(tokens[name])

    r = client.post("/api/v1/courses", headers=h("admin1"), json={
        "code": "CB201", "title": "아동발달", "credits": 3, "starts_on": "2027-03-01", "weeks": 15, "capacity": 50})
    cid = r.get_json()["id"]
    lessons = []
    for i, frames in enumerate(FRAMES):
        r = client.post(f"/api/v1/courses/{cid}/lessons", headers=h("admin1"),
                        json={"week": i + 1, "title": f"{i + 1}차시", "frames": frames})
        lessons.append(r.get_json()["id"])
    for name, role in (("inst1", "instructor"), ("ta1", "ta")):
        assert client.post(f"/api/v1/courses/{cid}/staff", headers=h("admin1"),
                           json={"user_id": ids[name], "role": role}).status_code == 201
    for name in ("lea1", "lea2"):
        assert client.post(f"/api/v1/courses/{cid}/enrollments", headers=h("admin1"),
                           json={"user_id": ids[name]}).status_code == 201
    return {"id": cid, "lessons": lessons, "ids": ids, "h": h}


@pytest.fixture
def course(app, client, users):
    return make_course(app, client, users, NOW)


def store(app, course, learner, statuses: dict[int, tuple[str, int]]):
    """Stored progress rows: lesson index → (status, covered seconds/frames)."""
    from lms.attendance.models import LessonProgress
    from lms.db import db

    with app.app_context():
        for idx, (status, covered) in statuses.items():
            db.session.add(LessonProgress(
                learner_id=course["ids"][learner], lesson_id=course["lessons"][idx], course_id=course["id"],
                intervals=[[0, covered]], covered_seconds=covered, status=status,
                completed_at=NOW - timedelta(days=90) if status == "attended" else None))
        db.session.commit()


def get(client, course, who, learner=None):
    q = f"?learner_id={course['ids'][learner]}" if learner else ""
    return client.get(f"/api/v1/courses/{course['id']}/attendance{q}", headers=course["h"](who))


def test_attendance_answer_shape_and_80_percent(client, app, course):
    """500 + 299 + 1 attended of 1000 units: exactly 80% → 12 points, no F."""
    store(app, course, "lea1", {0: ("attended", 10000), 1: ("attended", 5980), 2: ("attended", 20),
                                3: ("absent", 1000)})
    r = get(client, course, "lea1")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["learner_id"] == course["ids"]["lea1"]
    assert body["rate"] == 0.8
    assert [l["lesson_id"] for l in body["lessons"]] == course["lessons"]
    for l in body["lessons"]:
        assert set(l) >= {"lesson_id", "status", "progress"}
        assert 0.0 <= l["progress"] <= 1.0
    assert [l["status"] for l in body["lessons"]] == ["attended", "attended", "attended", "absent"]
    assert [l["progress"] for l in body["lessons"]] == [1.0, 1.0, 1.0, 0.25]
    assert body["score"] == 12 and body["f"] is False and body["final"] is True
    assert (body["total_units"], body["attended_units"], body["absent_units"]) == (1000, 800, 200)
    assert body["excused_units"] == 0 and body["excused_cap_units"] == 200
    assert body["scale"] == "default" and body["enlistment"] is None


def test_attendance_79_9_percent_is_f(client, app, course):
    store(app, course, "lea1", {0: ("attended", 10000), 1: ("attended", 5980), 2: ("absent", 0),
                                3: ("absent", 0)})
    body = get(client, course, "lea1").get_json()
    assert body["rate"] == pytest.approx(0.799)
    assert body["f"] is True and body["score"] is None


def test_missing_rows_are_pending_with_no_progress(client, app, course):
    store(app, course, "lea2", {1: ("pending", 2990)})
    body = get(client, course, "ta1", "lea2").get_json()
    assert [l["status"] for l in body["lessons"]] == ["pending"] * 4
    assert [l["progress"] for l in body["lessons"]] == [0.0, 0.5, 0.0, 0.0]
    assert body["rate"] == 0.0 and body["final"] is False and body["pending_units"] == 1000


def test_excused_lessons_in_the_rate(client, app, course):
    store(app, course, "lea1", {0: ("attended", 10000), 1: ("attended", 5980), 3: ("excused", 0)})
    body = get(client, course, "lea1").get_json()
    assert body["rate"] == pytest.approx(0.999)
    assert body["excused_units"] == 200 and body["excused_units_counted"] == 200
    assert body["score"] == 19


def test_who_sees_whose_attendance(client, app, course):
    cid = course["id"]
    # A learner: their own, by default and by id; never another's.
    assert get(client, course, "lea1").get_json()["learner_id"] == course["ids"]["lea1"]
    assert get(client, course, "lea1", "lea1").status_code == 200
    assert_api_error(get(client, course, "lea1", "lea2"), 403, "forbidden")
    # A learner not enrolled in the course.
    assert_api_error(get(client, course, "lea3"), 403, "forbidden")
    # Staff of the course, admins and inspectors: anyone's, naming the learner.
    for who in ("inst1", "ta1", "admin1", "insp1"):
        r = get(client, course, who, "lea2")
        assert r.status_code == 200, (who, r.get_json())
        assert r.get_json()["learner_id"] == course["ids"]["lea2"]
    assert_api_error(get(client, course, "ta1"), 400, "invalid_request")
    assert_api_error(get(client, course, "ta2", "lea1"), 403, "forbidden")  # not staff of this course
    assert_api_error(get(client, course, "ta1", "lea3"), 404, "not_found")  # not in the course
    r = client.get(f"/api/v1/courses/{cid}/attendance?learner_id=abc", headers=course["h"]("ta1"))
    assert_api_error(r, 400, "invalid_request")
    for bad in ("-3", "0", str(2**31), "99999999999999999999", "1.5"):
        r = client.get(f"/api/v1/courses/{cid}/attendance?learner_id={bad}", headers=course["h"]("ta1"))
        assert_api_error(r, 400, "invalid_request")
    assert_api_error(client.get("/api/v1/courses/999999/attendance", headers=course["h"]("ta1")), 404, "not_found")
    assert client.get(f"/api/v1/courses/{cid}/attendance").status_code == 401


def test_enlistment_through_the_api(client, app, course):
    """ATT-8 with the enrollment's enlistment date: lessons 1–2 (799 units) attended before
    enlisting, lessons 3–4 due after it. 799 ≥ 2/3 × 1000 → rate up to enlistment = 1."""
    from lms.db import db
    from lms.enrolment.models import Enrollment

    store(app, course, "lea1", {0: ("attended", 10000), 1: ("attended", 5980), 2: ("absent", 0), 3: ("absent", 0)})
    with app.app_context():
        e = db.session.scalar(select(Enrollment).where(Enrollment.user_id == course["ids"]["lea1"]))
        e.enlisted_on = date(2027, 3, 22)  # lessons of weeks 1 and 2 are due by then (deadline +14 days)
        db.session.commit()
    body = get(client, course, "lea1").get_json()
    assert body["enlistment"]["applies"] is True
    assert body["enlistment"]["enlisted_on"] == "2027-03-22"
    assert body["enlistment"]["attended_units"] == 799
    assert body["rate"] == 1.0 and body["score"] == 20 and body["f"] is False
    assert body["course_rate"] == pytest.approx(0.799)
    # Enlisting a week earlier: only week 1 (500 units) is before it → below 2/3, no ATT-8.
    with app.app_context():
        e = db.session.scalar(select(Enrollment).where(Enrollment.user_id == course["ids"]["lea1"]))
        e.enlisted_on = date(2027, 3, 15)
        db.session.commit()
    body = get(client, course, "lea1").get_json()
    assert body["enlistment"]["applies"] is False
    assert body["rate"] == pytest.approx(0.799) and body["f"] is True


def test_course_scale_through_the_api(client, app, users):
    # Before the course starts.
    course = make_course(app, client, users, datetime(2027, 2, 20, 9, 0, tzinfo=KST))
    cid = course["id"]
    url = f"/api/v1/courses/{cid}/attendance-scale"
    tok = {n: course["h"](n)["Authorization"][7:] for n in ("admin1", "inst1", "ta1", "lea1")}
    r = client.get(url, headers=bearer(tok["lea1"]))
    assert r.status_code == 200 and r.get_json()["default"] is True
    assert r.get_json()["bands"][0] == {"from_percent": 100, "below_percent": None, "points": [20, 20]}
    err = assert_api_error(client.put(url, headers=bearer(tok["inst1"]), json={"scale": [[100, 25], [80, 10]]}),
                           422, "rule_violation")
    assert err["rules"] == ["ATT-7", "GRD-1"]
    for bad in ({"scale": [[80, 10], [100, 20]]}, {"scale": "20"}, {"scale": [[100, True]]}, {}, {"scale": [[100, 20]], "x": 1}):
        assert_api_error(client.put(url, headers=bearer(tok["inst1"]), json=bad), 400, "invalid_request")
    assert_api_error(client.put(url, headers=bearer(tok["ta1"]), json={"scale": None}), 403, "forbidden")
    assert_api_error(client.put(url, headers=bearer(tok["lea1"]), json={"scale": None}), 403, "forbidden")
    r = client.put(url, headers=bearer(tok["inst1"]), json={"scale": [[100, 10], [90, 9], [80, 8]]})
    assert r.status_code == 200, r.get_json()
    assert r.get_json() == {"course_id": cid, "default": False, "scale": [[100, 10], [90, 9], [80, 8]], "max_points": 20}
    # From the first day on, the published scale stays (ATT-7: published at the start).
    set_clock(app, datetime(2027, 3, 1, 0, 0, tzinfo=KST))
    tok = users.login(client, "admin1")
    err = assert_api_error(client.put(url, headers=bearer(tok), json={"scale": None}), 422, "rule_violation")
    assert err["rules"] == ["ATT-7"]
    # Scores follow the course's scale.
    set_clock(app, NOW)
    store(app, course, "lea1", {0: ("attended", 10000), 1: ("attended", 5980), 2: ("attended", 20),
                                3: ("attended", 4000)})
    learner = users.login(client, "lea1")
    body = client.get(f"/api/v1/courses/{cid}/attendance", headers=bearer(learner)).get_json()
    assert body["scale"] == "course" and body["score"] == 10 and body["rate"] == 1.0
