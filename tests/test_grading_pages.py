"""Grading pages (server-rendered forms): the learner's grade with components and the
objection form (GRD-6), the admin's correction applications (GRD-7), the NILE reports page
with due dates and the overdue alert (ENR-6), the evaluation survey and its results (CRS-15)."""
from __future__ import annotations

import re
from datetime import timedelta

from conftest import set_clock
from test_board import web_login
from test_grading_api import COURSE_END, OBJECTIONS_CLOSE, Course


def csrf(client, path):
    html = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


def test_learner_sees_components_and_objects_on_the_page(app, client, users):
    """GRD-6: the learner sees grade and components after the course end and objects."""
    api = app.test_client()  # Bearer API calls, apart from the browser-like cookie client
    c = Course(app, api, users, 2)
    c.score("s00", 90)
    c.at(COURSE_END + timedelta(days=1))
    assert api.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=c.ph()).status_code == 200
    web_login(client, users, "s00")
    html = client.get(f"/my/grades/{c.cid}").get_data(as_text=True)
    assert 'data-testid="my-grade-letter"' in html and "과제" in html and "출석" in html
    token = csrf(client, f"/my/grades/{c.cid}")
    r = client.post(f"/my/grades/{c.cid}", data={"csrf_token": token, "message": "점수 확인 요청"})
    assert r.status_code == 303
    html = client.get(f"/my/grades/{c.cid}").get_data(as_text=True)
    assert "점수 확인 요청" in html and "답변 대기" in html
    assert "/my/grades" in client.get("/").get_data(as_text=True)  # dashboard link
    # The instructor's page lists it with the answer form.
    web_login(client, users, "prof")
    html = client.get(f"/courses/{c.cid}/grades").get_data(as_text=True)
    assert "점수 확인 요청" in html and 'name="action" value="answer"' in html
    # After day 14 the form is gone and a posted objection is refused (GRD-6).
    c.at(OBJECTIONS_CLOSE)
    web_login(client, users, "s01")
    token = csrf(client, f"/my/grades/{c.cid}")
    client.post(f"/my/grades/{c.cid}", data={"csrf_token": token, "message": "늦음"})
    html = client.get(f"/my/grades/{c.cid}").get_data(as_text=True)
    assert "GRD-6" in html and "늦음" not in html.split('data-testid="objection"')[1].split("</section>")[0].replace(
        "GRD-6", "")


def test_admin_decides_a_correction_on_the_page(app, client, users):
    """GRD-7: after finalisation, an application with reasons and evidence; an admin approves."""
    api = app.test_client()  # Bearer API calls, apart from the browser-like cookie client
    c = Course(app, api, users, 2)
    c.score("s00", 90)
    c.score("s01", 50)
    c.at(COURSE_END)
    api.post(f"/api/v1/courses/{c.cid}/grades/propose", headers=c.ph())
    c.at(OBJECTIONS_CLOSE)
    assert api.post(f"/api/v1/courses/{c.cid}/grades/finalize", headers=c.ph()).status_code == 200
    web_login(client, users, "prof")
    token = csrf(client, f"/courses/{c.cid}/grades")
    r = client.post(f"/courses/{c.cid}/grades", data={"csrf_token": token, "action": "correction",
                                                       "learner_id": c.ids["s01"], "grade": "D0",
                                                       "reasons": "출석 재산정", "evidence": "출석부 사본"})
    assert r.status_code == 303
    web_login(client, users, "admin1")
    html = client.get("/grade-corrections").get_data(as_text=True)
    assert "출석 재산정" in html and "출석부 사본" in html
    cid = re.search(r'data-correction="(\d+)"', html).group(1)
    token = csrf(client, "/grade-corrections")
    r = client.post("/grade-corrections", data={"csrf_token": token, "correction_id": cid, "decision": "approve",
                                                "comment": ""})
    assert r.status_code == 303
    c.at(OBJECTIONS_CLOSE + timedelta(minutes=1))  # the page login ended the admin's API session
    grades = {g["username"]: g for g in api.get(f"/api/v1/courses/{c.cid}/grades", headers=c.ah())
              .get_json()["grades"]}
    assert grades["s01"]["grade"] == "D0" and grades["s01"]["passed"] is True


def test_nile_page_due_dates_overdue_and_generate(app, client, users):
    """ENR-6: the page shows the due date, the overdue state, and generates a stored report."""
    api = app.test_client()  # Bearer API calls, apart from the browser-like cookie client
    c = Course(app, api, users, 2)
    from lms.content.models import Course as CourseRow
    from lms.db import db

    with app.app_context():
        db.session.get(CourseRow, c.cid).status = "published"
        db.session.commit()
        db.session.remove()
    c.at(COURSE_END)
    web_login(client, users, "admin1")
    html = client.get(f"/courses/{c.cid}/nile-reports").get_data(as_text=True)
    assert "2027-03-23 00:00" in html and 'data-testid="state-course_status"' in html and "기한 경과" in html
    assert "기한이 지난 NILE 보고" in client.get("/grading").get_data(as_text=True)
    token = csrf(client, f"/courses/{c.cid}/nile-reports")
    r = client.post(f"/courses/{c.cid}/nile-reports", data={"csrf_token": token, "kind": "course_status",
                                                             "format": "csv"})
    assert r.status_code == 303
    html = client.get(f"/courses/{c.cid}/nile-reports").get_data(as_text=True)
    assert "기한 후 생성" in html and re.search(r"<code>[0-9a-f]{64}</code>", html)


def test_evaluation_pages(app, client, users):
    """CRS-15: the survey page for a learner; results page shows no answers below 3."""
    api = app.test_client()  # Bearer API calls, apart from the browser-like cookie client
    c = Course(app, api, users, 1)
    set_clock(app, COURSE_END + timedelta(hours=1))
    web_login(client, users, "s00")
    html = client.get(f"/courses/{c.cid}/evaluation").get_data(as_text=True)
    assert 'type="radio" name="overall" value="5"' in html
    token = csrf(client, f"/courses/{c.cid}/evaluation")
    data = {"csrf_token": token, "goals": "5", "content": "4", "instructor": "5", "evaluation": "4", "overall": "5"}
    assert client.post(f"/courses/{c.cid}/evaluation", data=data).status_code == 303
    assert 'data-testid="evaluation-done"' in client.get(f"/courses/{c.cid}/evaluation").get_data(as_text=True)
    web_login(client, users, "prof")
    html = client.get(f"/courses/{c.cid}/evaluation/results").get_data(as_text=True)
    assert "응답자 1 / 1" in html and "3명 이상" in html
