"""Grading through the API with stored attendance (ATT-6 at 79.9% vs 80%), instructor-
entered components (GRD-1), 9 vs 10 learners (GRD-2), the finalisation job and its reminder
(GRD-6), NILE reports (ENR-6, GRD-7) and the course evaluation (CRS-15)."""
from __future__ import annotations

import csv
import hashlib
import io
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from conftest import assert_api_error, bearer, set_clock, table_counts
from lms.clock import KST

STARTS = date(2027, 3, 2)
T0 = datetime(2027, 3, 2, 9, 0, tzinfo=KST)
COURSE_END = datetime(2027, 6, 15, 0, 0, tzinfo=KST)
OBJECTIONS_CLOSE = datetime(2027, 6, 29, 0, 0, tzinfo=KST)
FINALIZE_DUE = datetime(2027, 7, 6, 0, 0, tzinfo=KST)
# Frame lessons weighing 500, 299, 1 and 200 units (CRS-2: 20 frames a unit): 1000 in all.
FRAMES = (10000, 5980, 20, 4000)


class Course:
    """A course with four frame lessons (1000 units), syllabus weights assignments 80 /
    attendance 20, ``n`` learners; attendance stored as the settling leaves it."""

    def __init__(self, app, client, users, n: int, *, practice=False, publish_status=None):
        self.app, self.client, self.users = app, client, users
        set_clock(app, T0)
        users.create("admin1", "admin", name="관리자")
        users.create("prof", "instructor", name="김교수")
        self.admin = users.login(client, "admin1")
        r = client.post("/api/v1/courses", json={"code": "GRD101", "title": "성적 테스트", "credits": 3,
                                                 "starts_on": STARTS.isoformat(), "weeks": 15, "capacity": 100,
                                                 "practice": practice}, headers=self.ah())
        assert r.status_code == 201, r.get_json()
        self.cid = r.get_json()["id"]
        self.prof_id = self._uid("prof")
        assert client.post(f"/api/v1/courses/{self.cid}/staff", json={"user_id": self.prof_id, "role": "instructor"},
                           headers=self.ah()).status_code == 201
        r = client.put(f"/api/v1/courses/{self.cid}/syllabus",
                       json={"evaluation": {"assignments": 80, "attendance": 20}}, headers=self.ah())
        assert r.status_code == 200, r.get_json()
        self.lessons = []
        for i, fr in enumerate(FRAMES):
            r = client.post(f"/api/v1/courses/{self.cid}/lessons", json={"week": i + 1, "title": f"L{i}", "frames": fr},
                            headers=self.ah())
            assert r.status_code == 201, r.get_json()
            self.lessons.append(r.get_json()["id"])
        self.ids = {}
        for k in range(n):
            self.add(f"s{k:02d}")
        self.prof = users.login(client, "prof")

    def _uid(self, username):
        from lms.auth.models import User
        from lms.db import db

        with self.app.app_context():
            uid = db.session.scalar(select(User.id).where(User.username == username))
            db.session.remove()
        return uid

    def ah(self):
        return bearer(self.admin)

    def at(self, when):
        """Move the clock to ``when``; staff log in again (sessions idle out after 30
        minutes of clock time) and the clock is put back to exactly ``when``."""
        set_clock(self.app, when)
        self.admin = self.users.login(self.client, "admin1")
        self.prof = self.users.login(self.client, "prof")
        set_clock(self.app, when)

    def ph(self):
        return bearer(self.prof)

    def add(self, name, attended=(0, 1, 2, 3)):
        uid = self.users.create(name)
        self.ids[name] = uid
        r = self.client.post(f"/api/v1/courses/{self.cid}/enrollments", json={"user_id": uid}, headers=self.ah())
        assert r.status_code == 201, r.get_json()
        self.attend(uid, attended)
        return uid

    def attend(self, uid, attended):
        from lms.attendance.models import LessonProgress
        from lms.db import db

        with self.app.app_context():
            for i, lid in enumerate(self.lessons):
                db.session.add(LessonProgress(learner_id=uid, lesson_id=lid, course_id=self.cid, intervals=[],
                                              covered_seconds=0, status="attended" if i in attended else "absent",
                                              completed_at=T0 + timedelta(days=1) if i in attended else None))
            db.session.commit()
            db.session.remove()

    def score(self, name, value, component="assignments"):
        r = self.client.put(f"/api/v1/courses/{self.cid}/component-scores/{self.ids[name]}",
                            json={"component": component, "score": value}, headers=self.ph())
        assert r.status_code == 201, r.get_json()

    def login(self, name):
        return bearer(self.users.login(self.client, name))

    def sheet(self):
        r = self.client.get(f"/api/v1/courses/{self.cid}/grades", headers=self.ph())
        assert r.status_code == 200, r.get_json()
        return r.get_json()

    def grades(self, sheet=None):
        sheet = sheet or self.sheet()
        names = {v: k for k, v in self.ids.items()}
        return {names[g["learner_id"]]: g for g in sheet["grades"]}


def test_f_at_79_9_percent_attendance_but_not_at_80(app, client, users):
    """ATT-6 / GRD-3: 799 of 1000 units → F whatever the score; 800 → graded (B0 here)."""
    c = Course(app, client, users, 0)
    c.add("low", attended=(0, 1))  # 500 + 299 = 799 units: 79.9%
    c.add("edge", attended=(0, 1, 2))  # 800 units: exactly 80%
    c.score("low", 100)
    c.score("edge", 100)
    c.at(COURSE_END)
    r = client.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=c.ph())
    assert r.status_code == 200, r.get_json()
    g = c.grades(r.get_json())
    assert g["low"]["attendance_rate"] == pytest.approx(0.799) and g["low"]["grade"] == "F"
    assert g["low"]["fixed_by"] == ["ATT-6"] and g["low"]["passed"] is False
    # 80%: ATT-7 gives 12 of 20 points → attendance 60% × 20 + 100 × 80 = 92 → A0 by GRD-4 (absolute, 2 learners).
    assert g["edge"]["attendance_rate"] == pytest.approx(0.8) and g["edge"]["fixed_by"] == []
    assert g["edge"]["components"] == {"assignments": 100, "attendance": 60} and g["edge"]["score"] == 92
    assert g["edge"]["grade"] == "A0" and g["edge"]["points"] == 4.0
    # The F stays F: raising it is refused, naming the rule.
    err = assert_api_error(client.put(f"/api/v1/courses/{c.cid}/grades/{c.ids['low']}", json={"grade": "D0"},
                                      headers=c.ph()), 422, "rule_violation")
    assert err["rules"] == ["ATT-6"]


def _class(app, client, users, n):
    c = Course(app, client, users, n)
    for k in range(n):
        c.score(f"s{k:02d}", 95 - 3 * k)
    c.at(COURSE_END)
    return c


def test_nine_learners_absolute_grading(app, client, users):
    """GRD-2: with 9 learners absolute grading (GRD-4 table) applies; relative may be chosen."""
    c = _class(app, client, users, 9)
    s = c.sheet()
    assert s["class_size"] == 9 and s["scheme"] == "absolute" and s["absolute_allowed"] is True
    s = client.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=c.ph()).get_json()
    g = c.grades(s)
    # s00: 95×0.8 + 20 = 96 → A+; s08: 71×0.8 + 20 = 76.8 → C+
    assert g["s00"]["score"] == 96 and g["s00"]["grade"] == "A+"
    assert g["s08"]["score"] == pytest.approx(76.8) and g["s08"]["grade"] == "C+"
    assert sum(1 for x in g.values() if x["grade"].startswith("A")) == 3  # 33%: fine when absolute
    c.at(OBJECTIONS_CLOSE)
    r = client.post(f"/api/v1/courses/{c.cid}/grades/finalize", headers=c.ph())
    assert r.status_code == 200 and r.get_json()["finalized"] is True


def test_ten_learners_relative_grading_only(app, client, users):
    """GRD-2: with 10 learners the grading is relative; absolute is refused (422 GRD-2)."""
    c = _class(app, client, users, 10)
    s = c.sheet()
    assert s["class_size"] == 10 and s["scheme"] == "relative" and s["absolute_allowed"] is False
    before = table_counts(app)
    err = assert_api_error(client.put(f"/api/v1/courses/{c.cid}/grading-scheme", json={"scheme": "absolute"},
                                      headers=c.ph()), 422, "rule_violation")
    assert err["rules"] == ["GRD-2"]
    after = table_counts(app)
    before.pop("access_log"), after.pop("access_log")
    assert before == after
    s = client.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=c.ph()).get_json()
    assert s["distribution"]["counts"] == {"A": 3, "B": 4, "C": 3} and s["distribution"]["ok"]
    assert s["distribution"]["allowed"] == {"A": [2, 3], "B": [3, 4], "C": [3, 5]}


def test_practice_course_may_be_pass_fail(app, client, users):
    """GRD-2: a practice course may be graded P/F; P at the score of a D0 (GRD-5)."""
    c = Course(app, client, users, 12, practice=True)
    c.score("s00", 40)  # 40 × 0.8 + 20 = 52
    c.score("s01", 75)
    c.at(COURSE_END)
    assert c.sheet()["scheme"] == "absolute"
    r = client.put(f"/api/v1/courses/{c.cid}/grading-scheme", json={"scheme": "pass_fail"}, headers=c.ph())
    assert r.status_code == 200, r.get_json()
    g = c.grades(client.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=c.ph()).get_json())
    assert g["s00"]["grade"] == "NP" and g["s01"]["grade"] == "P" and g["s01"]["passed"] and g["s01"]["points"] is None


def test_bad_input_is_400_and_writes_nothing(app, client, users):
    c = _class(app, client, users, 2)
    before = table_counts(app)
    for body in ({"component": "assignments", "score": 101}, {"component": "exams", "score": 50},
                 {"component": "assignments", "score": "90"}, {"component": "assignments"}, {"x": 1}):
        assert_api_error(client.put(f"/api/v1/courses/{c.cid}/component-scores/{c.ids['s00']}", json=body,
                                    headers=c.ph()), 400, "invalid_request")
    assert_api_error(client.put(f"/api/v1/courses/{c.cid}/grades/{c.ids['s00']}", json={"grade": "A"},
                                headers=c.ph()), 400, "invalid_request")
    assert_api_error(client.post(f"/api/v1/courses/{c.cid}/nile-reports", json={"kind": "x", "format": "csv"},
                                 headers=c.ph()), 400, "invalid_request")
    after = table_counts(app)
    before.pop("access_log"), after.pop("access_log")
    assert before == after
    # Learners never see others' grades or grade anything.
    h = c.login("s01")
    assert_api_error(client.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=h), 403, "forbidden")
    assert_api_error(client.get(f"/api/v1/courses/{c.cid}/grades/history", headers=h), 403, "forbidden")


def test_finalisation_job_reminds_then_finalises(app, client, users):
    """GRD-6: the instructor is reminded 2 days before; the job finalises at the deadline
    (never before) and the grades are locked."""
    from lms.db import db
    from lms.grading.jobs import grading_deadlines
    from lms.grading.models import GradeSheet
    from lms.notify.models import Notice

    c = _class(app, client, users, 3)
    from lms.content.models import Course as CourseRow

    with app.app_context():
        db.session.get(CourseRow, c.cid).status = "published"
        db.session.commit()

    def run(at):
        set_clock(app, at)
        with app.app_context():
            out = grading_deadlines()
            db.session.remove()
        return out

    first = run(FINALIZE_DUE - timedelta(days=2, seconds=1))
    assert first == {"reminded": 0, "finalized": 0, "alerted": 0, "nile_alerts": 1}  # ENR-6 report overdue
    assert run(FINALIZE_DUE - timedelta(days=2)) == {"reminded": 1, "finalized": 0, "alerted": 0, "nile_alerts": 0}
    assert run(FINALIZE_DUE - timedelta(seconds=1)) == {"reminded": 0, "finalized": 0, "alerted": 0,
                                                        "nile_alerts": 0}
    assert run(FINALIZE_DUE)["finalized"] == 1
    with app.app_context():
        sheet = db.session.scalar(select(GradeSheet).where(GradeSheet.course_id == c.cid))
        assert sheet.finalized_at is not None and sheet.finalized_by is None
        kinds = [n.kind for n in db.session.scalars(select(Notice).where(Notice.user_id == c.prof_id))]
        assert "grade_finalize_reminder" in kinds
        admin_kinds = [n.kind for n in db.session.scalars(select(Notice).where(Notice.user_id != c.prof_id))]
        assert admin_kinds.count("nile_report_overdue") == 1
        db.session.remove()
    c.prof = users.login(client, "prof")
    g = c.grades()
    assert g["s00"]["grade"] == "A+" and c.sheet()["finalized"] is True
    assert_api_error(client.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=c.ph()), 409, "grades_finalized")


def test_openapi_lists_grading_endpoints_with_unique_schema_names(app):
    import warnings

    app.config.pop("_spec", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with app.test_request_context():
            spec = app._get_spec(force_update=True)
    assert not [str(w.message) for w in caught if "schema" in str(w.message).lower()]
    assert not [k for k in spec["components"]["schemas"] if k[-1].isdigit()]
    for path in ("/api/v1/courses/{course_id}/grades", "/api/v1/courses/{course_id}/grades/finalize",
                 "/api/v1/courses/{course_id}/objections", "/api/v1/courses/{course_id}/nile-reports",
                 "/api/v1/courses/{course_id}/evaluation"):
        assert path in spec["paths"], path


def test_finalisation_job_alerts_when_the_sheet_breaks_grd2(app, client, users):
    from lms.content.models import Course as CourseRow
    from lms.db import db
    from lms.grading.jobs import grading_deadlines

    c = _class(app, client, users, 10)
    with app.app_context():
        db.session.get(CourseRow, c.cid).status = "published"
        db.session.commit()
    client.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=c.ph())
    assert client.put(f"/api/v1/courses/{c.cid}/grades/{c.ids['s09']}", json={"grade": "A0"},
                      headers=c.ph()).status_code == 200
    c.at(FINALIZE_DUE)
    with app.app_context():
        assert grading_deadlines()["alerted"] == 1
        assert grading_deadlines()["alerted"] == 0  # once
        db.session.remove()
    c.prof = users.login(client, "prof")
    assert c.sheet()["finalized"] is False


def test_nile_course_status_report_due_and_xlsx(app, client, users):
    """ENR-6: due before 1/5 of the class time (21 days of 105); stored with its hash."""
    from openpyxl import load_workbook

    c = Course(app, client, users, 3)
    c.at(datetime(2027, 3, 22, 23, 59, 59, tzinfo=KST))
    c.admin = users.login(client, "admin1")
    st = client.get(f"/api/v1/courses/{c.cid}/nile-reports", headers=c.ah()).get_json()
    assert st["due"]["course_status"] == {"due": "2027-03-23T00:00:00+09:00", "state": "pending", "overdue": False,
                                          "first_generated_at": None}
    assert st["due"]["grades"]["state"] == "waiting"
    assert_api_error(client.post(f"/api/v1/courses/{c.cid}/nile-reports", json={"kind": "grades", "format": "csv"},
                                 headers=c.ah()), 409, "not_finalized")
    r = client.post(f"/api/v1/courses/{c.cid}/nile-reports", json={"kind": "course_status", "format": "xlsx"},
                    headers=c.ah())
    assert r.status_code == 201 and r.get_json()["rows"] == 3
    rep = r.get_json()
    d = client.get(f"/api/v1/nile-reports/{rep['id']}/download", headers=c.ah())
    assert hashlib.sha256(d.data).hexdigest() == rep["sha256"] == d.headers["X-Content-SHA256"]
    ws = load_workbook(io.BytesIO(d.data)).active
    rows = list(ws.values)
    assert rows[0][0] == "과정코드" and len(rows) == 4
    assert rows[1][:6] == ("GRD101", "성적 테스트", 3, "2027-03-02", "2027-06-14", 15)
    assert rows[1][9] == "김교수" and rows[1][10] == "s00" and rows[1][13] == "수강"
    c.at(datetime(2027, 3, 23, 0, 0, tzinfo=KST))
    st = client.get(f"/api/v1/courses/{c.cid}/nile-reports", headers=c.ah()).get_json()
    assert st["due"]["course_status"]["state"] == "submitted"


def test_course_status_report_overdue_at_the_due_instant(app, client, users):
    c = Course(app, client, users, 1)
    c.at(datetime(2027, 3, 23, 0, 0, tzinfo=KST))
    c.admin = users.login(client, "admin1")
    st = client.get(f"/api/v1/courses/{c.cid}/nile-reports", headers=c.ah()).get_json()
    assert st["due"]["course_status"]["overdue"] is True


def test_course_evaluation_week_and_anonymous_aggregates(app, client, users):
    """CRS-15: open from the course end for a week; one answer set each; the instructor
    sees aggregates only after it closes and with at least 3 respondents."""
    from lms.db import db
    from lms.grading.models import EvaluationResponse

    c = Course(app, client, users, 4)
    answers = {"goals": 5, "content": 4, "instructor": 5, "evaluation": 3, "overall": 4}
    c.at(COURSE_END - timedelta(seconds=1))
    h = {n: c.login(n) for n in ("s00", "s01", "s02", "s03")}
    c.at(COURSE_END - timedelta(seconds=1))
    err = assert_api_error(client.post(f"/api/v1/courses/{c.cid}/evaluation", json={"answers": answers},
                                       headers=h["s00"]), 422, "rule_violation")
    assert err["rules"] == ["CRS-15"]
    c.at(COURSE_END)
    assert client.get(f"/api/v1/courses/{c.cid}/evaluation", headers=h["s00"]).get_json()["open"] is True
    for i, n in enumerate(("s00", "s01")):
        r = client.post(f"/api/v1/courses/{c.cid}/evaluation",
                        json={"answers": {**answers, "overall": 5 - i}, "comment": f"좋았습니다 {i}"}, headers=h[n])
        assert r.status_code == 201, r.get_json()
    assert_api_error(client.post(f"/api/v1/courses/{c.cid}/evaluation", json={"answers": answers},
                                 headers=h["s00"]), 409, "already_submitted")
    assert_api_error(client.post(f"/api/v1/courses/{c.cid}/evaluation", json={"answers": {**answers, "goals": 6}},
                                 headers=h["s02"]), 400, "invalid_request")
    res = client.get(f"/api/v1/courses/{c.cid}/evaluation/results", headers=c.ph()).get_json()
    assert res["respondents"] == 2 and res["shown"] is False and res["questions"] == []
    assert_api_error(client.get(f"/api/v1/courses/{c.cid}/evaluation/results", headers=h["s00"]), 403, "forbidden")
    last = COURSE_END + timedelta(days=7, seconds=-1)
    c.at(last)
    h["s02"] = c.login("s02")
    c.at(last)
    assert client.post(f"/api/v1/courses/{c.cid}/evaluation", json={"answers": answers},
                       headers=h["s02"]).status_code == 201
    c.at(COURSE_END + timedelta(days=7))
    h["s03"] = c.login("s03")
    assert_api_error(client.post(f"/api/v1/courses/{c.cid}/evaluation", json={"answers": answers},
                                 headers=h["s03"]), 422, "rule_violation")
    c.prof = users.login(client, "prof")
    res = client.get(f"/api/v1/courses/{c.cid}/evaluation/results", headers=c.ph()).get_json()
    assert res["shown"] is True and res["respondents"] == 3
    overall = next(q for q in res["questions"] if q["id"] == "overall")
    assert overall["counts"] == {"1": 0, "2": 0, "3": 0, "4": 2, "5": 1} and overall["mean"] == pytest.approx(4.33)
    assert res["comments"] == ["좋았습니다 0", "좋았습니다 1"]
    assert "learner_id" not in str(res)
    with app.app_context():  # nothing in a response names its learner
        cols = {col.name for col in EvaluationResponse.__table__.columns}
        assert cols == {"id", "course_id", "answers", "comment", "has_comment"}
        db.session.remove()


def test_scheme_follows_the_class_until_chosen_and_is_rechecked_at_finalisation(app, client, users):
    """GRD-2: reading the sheet does not fix the default scheme (9 learners → absolute, a
    10th → relative); an absolute sheet of a class grown to 10 is refused at finalisation."""
    c = Course(app, client, users, 9)
    for k in range(9):
        c.score(f"s{k:02d}", 90 - k)
    c.at(COURSE_END)
    assert c.sheet()["scheme"] == "absolute"
    assert client.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=c.ph()).status_code == 200
    c.add("s09")
    c.score("s09", 50)
    assert c.sheet()["scheme"] == "absolute" and c.sheet()["absolute_allowed"] is False
    c.at(OBJECTIONS_CLOSE)
    err = assert_api_error(client.post(f"/api/v1/courses/{c.cid}/grades/finalize", headers=c.ph()),
                           422, "rule_violation")
    assert err["rules"] == ["GRD-2"]


def test_reading_the_sheet_does_not_fix_the_default_scheme(app, client, users):
    """GRD-2: 9 learners → absolute; a 10th enrols → relative (nothing was stored by reading)."""
    from sqlalchemy import func

    from lms.db import db
    from lms.grading.models import GradeSheet

    c = Course(app, client, users, 9)
    assert c.sheet()["scheme"] == "absolute"
    c.add("s09")
    assert c.sheet()["scheme"] == "relative"
    with app.app_context():
        assert db.session.scalar(select(func.count(GradeSheet.id))) == 0
        db.session.remove()


def test_finalising_before_the_objection_period_ends_is_refused(app, client, users):
    """GRD-6: finalising at 23:59:59 of day 14 is refused; at 00:00 of day 15 it works."""
    c = _class(app, client, users, 3)
    client.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=c.ph())
    c.at(OBJECTIONS_CLOSE - timedelta(seconds=1))
    err = assert_api_error(client.post(f"/api/v1/courses/{c.cid}/grades/finalize", headers=c.ph()),
                           422, "rule_violation")
    assert err["rules"] == ["GRD-6"]
    c.at(OBJECTIONS_CLOSE)
    assert client.post(f"/api/v1/courses/{c.cid}/grades/finalize", headers=c.ph()).status_code == 200
