"""Exam pages through the Flask test client (EXM-7…10): the public notice board, the
learner's notice page with the OTP entry form (EXM-8) and the lockdown page (EXM-9), the
staff monitor and evidence pages (EXM-10) — each for the right roles only."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from exam_world import OPENS, ExamWorld

pytestmark = pytest.mark.usefixtures("app")


def text(resp) -> str:
    return resp.get_data(as_text=True)


def csrf_input(resp) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', text(resp))
    assert m, "the page has no csrf_token input"
    return m.group(1)


def csrf_meta(resp) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', text(resp))
    assert m, "the page has no csrf-token meta"
    return m.group(1)


def web_client(app, users, username: str):
    """A browser-like client logged in through the login pages (password, then OTP)."""
    web = app.test_client()
    r = web.post("/login", data={"csrf_token": csrf_input(web.get("/login")), "username": username,
                                 "password": users.passwords[username]})
    assert r.status_code == 302 and r.headers["Location"].endswith("/login/otp"), text(r)[:300]
    r = web.post("/login/otp", data={"csrf_token": csrf_input(web.get("/login/otp")), "code": users.code(username)})
    assert r.status_code == 302, text(r)[:300]
    return web


@pytest.fixture
def w(app, client, users):
    world = ExamWorld(app, client, users, learners=("lea", "leb"))
    world.add_learner("led", disability=True)
    world.add_learner("outsider", enrol=False)
    users.create("ta1", "ta", name="박조교")
    users.create("prof2", "instructor", name="다른교수")
    from exam_world import users_id

    r = client.post(f"/api/v1/courses/{world.cid}/staff", json={"user_id": users_id(app, "ta1"), "role": "ta"},
                    headers=world.ah())
    assert r.status_code == 201, r.get_json()
    world.exam_id = world.exam()["id"]
    return world


def start_in_browser_session(web, exam_id: int, otp: str, page_resp, **kw):
    """What exam.js does: the cookie-authenticated API call with the page's CSRF token."""
    return web.post(f"/api/v1/exams/{exam_id}/attempts", json={"otp": otp},
                    headers={"X-CSRFToken": csrf_meta(page_resp)}, **kw)


# --- the public notice board (EXM-7) -------------------------------------------------------------

def test_notice_board_is_public_and_lists_announced_exams_only_exm7(w, client):
    draft = w.exam(title="초안 시험", announce=False)
    r = w.app.test_client().get("/notices")
    assert r.status_code == 200
    body = text(r)
    assert "시험 공지" in body and "중간고사" in body and "EXM101" in body
    assert "2027-03-16 09:00" in body  # the window, KST
    assert "초안 시험" not in body and f'data-exam-id="{draft["id"]}"' not in body
    assert 'href="/login"' in body  # anonymous: a login link, no exam links
    assert f'/exams/{w.exam_id}"' not in body


def test_notice_board_links_by_role(w, app, users):
    body = text(web_client(app, users, "lea").get("/notices"))
    assert f'href="/exams/{w.exam_id}"' in body
    body = text(web_client(app, users, "prof").get("/notices"))
    assert f'href="/exams/{w.exam_id}/monitor"' in body


def test_dashboard_links_to_the_notice_board(w, app, users):
    assert 'href="/notices"' in text(web_client(app, users, "lea").get("/"))


# --- the learner's notice page and entry (EXM-4, EXM-8) -------------------------------------------

def test_exam_page_shows_the_notice_rules_and_otp_form_exm8(w, app, users):
    web = web_client(app, users, "lea")
    r = web.get(f"/exams/{w.exam_id}")
    assert r.status_code == 200, text(r)[:300]
    body = text(r)
    assert "중간고사" in body and "응시 규칙" in body and "전체 화면" in body
    assert re.search(r'data-testid="my-time"><strong>60분</strong>', body)
    assert 'data-testid="exam-otp"' in body and 'data-testid="enter-exam"' in body
    assert '<script type="module" src="/static/exam.js' in body
    assert "<script>" not in body  # no inline script (CSP)
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]


def test_learner_with_the_disability_flag_sees_90_minutes_exm4(w, app, users):
    body = text(web_client(app, users, "led").get(f"/exams/{w.exam_id}"))
    assert re.search(r'data-testid="my-time"><strong>90분</strong>', body)
    assert "장애 학습자 시간 연장 적용" in body


def test_exam_page_refuses_others(w, app, users):
    # not logged in: to the login page
    r = app.test_client().get(f"/exams/{w.exam_id}")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    # a learner not enrolled in the course: 403, in Korean
    r = web_client(app, users, "outsider").get(f"/exams/{w.exam_id}")
    assert r.status_code == 403 and "수강신청한 학습자만" in text(r)
    # an exam not announced yet does not exist for learners
    draft = w.exam(title="초안", announce=False)
    r = web_client(app, users, "lea").get(f"/exams/{draft['id']}")
    assert r.status_code == 404
    # staff are sent to the monitor
    r = web_client(app, users, "prof").get(f"/exams/{w.exam_id}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/exams/{w.exam_id}/monitor")


# --- the lockdown page (EXM-8, EXM-9) ---------------------------------------------------------------

def test_take_page_needs_an_otp_entry_in_this_session_exm8(w, app, users):
    w.goto(OPENS + timedelta(minutes=1))
    r = w.start("lea", w.exam_id)  # started through the API (another session)
    assert r.status_code == 201, r.get_json()
    attempt_id = r.get_json()["attempt_id"]
    web = web_client(app, users, "lea")  # a new login: the attempt must be entered again
    r = web.get(f"/attempts/{attempt_id}/take")
    assert r.status_code == 303 and r.headers["Location"].endswith(f"/exams/{w.exam_id}")
    page = web.get(f"/exams/{w.exam_id}")
    assert "시험을 계속하려면 OTP 코드를 다시 입력하세요." in text(page)
    assert "이어서 응시하기" in text(page)
    r = start_in_browser_session(web, w.exam_id, users.code("lea"), page)
    assert r.status_code == 200, r.get_json()  # resumed
    r = web.get(f"/attempts/{attempt_id}/take")
    assert r.status_code == 200
    body = text(r)
    assert f'data-attempt-id="{attempt_id}"' in body and 'data-testid="exam-fullscreen"' in body
    assert "전체 화면으로 시작" in body and 'class="exam-take lockdown"' in body
    assert '<script type="module" src="/static/exam.js' in body
    # no item text in the page itself: exam.js renders the items (textContent) in fullscreen
    assert "옳은 것은" not in body
    # another learner may not open it; staff have no lockdown page
    assert web_client(app, users, "leb").get(f"/attempts/{attempt_id}/take").status_code == 403
    assert web_client(app, users, "prof").get(f"/attempts/{attempt_id}/take").status_code == 403


def test_take_page_after_submission_shows_the_score(w, app, users):
    w.goto(OPENS + timedelta(minutes=1))
    web = web_client(app, users, "lea")
    page = web.get(f"/exams/{w.exam_id}")
    r = start_in_browser_session(web, w.exam_id, users.code("lea"), page)
    assert r.status_code == 201, r.get_json()
    attempt_id = r.get_json()["attempt_id"]
    token = csrf_meta(page)
    r = web.post(f"/api/v1/attempts/{attempt_id}/submit", headers={"X-CSRFToken": token})
    assert r.status_code == 200, r.get_json()
    r = web.get(f"/attempts/{attempt_id}/take")
    assert r.status_code == 200
    body = text(r)
    assert "답안이 제출되었습니다." in body and "점수: 0 / 12점" in body
    assert "exam.js" not in body  # nothing to lock any more
    body = text(web.get(f"/exams/{w.exam_id}"))
    assert "응시 완료" in body and 'data-testid="exam-otp"' not in body


def test_cookie_api_call_without_csrf_token_is_refused(w, app, users):
    w.goto(OPENS + timedelta(minutes=1))
    web = web_client(app, users, "lea")
    r = web.post(f"/api/v1/exams/{w.exam_id}/attempts", json={"otp": users.code("lea")})
    assert r.status_code == 400


# --- the monitor and the evidence (EXM-10) ------------------------------------------------------------

def _attempt_with_incident(w, users):
    w.goto(OPENS + timedelta(minutes=1))
    r = w.start("lea", w.exam_id, **{"X-LMS-Device": "web-abc123"})
    assert r.status_code == 201, r.get_json()
    attempt_id = r.get_json()["attempt_id"]
    r = w.client.post(f"/api/v1/attempts/{attempt_id}/incidents", json={"kind": "fullscreen_exit"},
                      headers=w.h("lea"))
    assert r.status_code == 201, r.get_json()
    return attempt_id


def test_monitor_for_the_courses_staff_and_admins(w, app, users):
    attempt_id = _attempt_with_incident(w, users)
    for name in ("prof", "ta1", "admin1"):
        r = web_client(app, users, name).get(f"/exams/{w.exam_id}/monitor")
        assert r.status_code == 200, (name, text(r)[:300])
        body = text(r)
        row = re.search(rf'<tr data-attempt-id="{attempt_id}"[^>]*>(.*?)</tr>', body, re.S)
        assert row, body[:2000]
        assert "lea" in row.group(1) and "127.0.0.1" in row.group(1) and "web-abc123" in row.group(1)
        assert re.search(r'data-field="incidents"><span class="badge bad">1</span>', row.group(1))
        assert "응시 중" in row.group(1)
        assert f'href="/attempts/{attempt_id}/evidence"' in body


def test_monitor_refused_to_others(w, app, users):
    r = app.test_client().get(f"/exams/{w.exam_id}/monitor")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert web_client(app, users, "lea").get(f"/exams/{w.exam_id}/monitor").status_code == 403
    r = web_client(app, users, "prof2").get(f"/exams/{w.exam_id}/monitor")  # not this course's
    assert r.status_code == 403 and "교수자·조교 또는 관리자만" in text(r)
    assert web_client(app, users, "prof").get("/exams/999999/monitor").status_code == 404


def test_evidence_lists_events_with_incidents_highlighted(w, app, users):
    attempt_id = _attempt_with_incident(w, users)
    r = web_client(app, users, "prof").get(f"/attempts/{attempt_id}/evidence")
    assert r.status_code == 200, text(r)[:300]
    body = text(r)
    assert 'data-kind="started"' in body
    incident = re.search(r'<tr class="event-incident incident" data-kind="incident">(.*?)</tr>', body, re.S)
    assert incident and "전체 화면 해제" in incident.group(1)
    assert 'data-testid="incident-count">1<' in body
    assert web_client(app, users, "lea").get(f"/attempts/{attempt_id}/evidence").status_code == 403
    assert web_client(app, users, "prof2").get(f"/attempts/{attempt_id}/evidence").status_code == 403
    assert web_client(app, users, "ta1").get(f"/attempts/{attempt_id}/evidence").status_code == 200
