"""The lockdown exam page in a real browser (headless Chromium, Playwright) against the app
on a real socket (EXM-8, EXM-9, EXM-10): a learner logs in, opens the exam's notice, enters
with a fresh OTP code, starts in fullscreen, answers a single-choice and a short-answer
item (saved server-side as typed), leaves fullscreen (an incident, the items hidden),
returns, tries to copy and to open the context menu (incidents), submits with
confirmation and sees the score; the instructor's monitor shows the incidents."""
from __future__ import annotations

import os
import re
import time
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect

from conftest import set_clock
from exam_world import OPENS, ExamWorld, item_body

pytestmark = pytest.mark.browser

SCREENSHOT_DIR = os.environ.get("LMS_SCREENSHOT_DIR", "/tmp")


@pytest.fixture
def world(app, client, users):
    """One learner; a bank of 3 items per level, one kind per level (single choice, short
    answer, multiple choice), so an exam drawing one item per level shows each kind once."""
    w = ExamWorld(app, client, users, learners=("lea",), bank=0)
    for level, kind in (("easy", "single_choice"), ("medium", "short_answer"), ("hard", "multiple_choice")):
        for n in range(3):
            r = client.post(f"/api/v1/courses/{w.cid}/items", json=item_body(level, kind, n), headers=w.ah())
            assert r.status_code == 201, r.get_json()
    w.exam_id = w.exam(items_per_difficulty={"easy": 1, "medium": 1, "hard": 1})["id"]
    # A 10-minute quiz: its deadline can be reached on the testing clock without the
    # learner's session idling out (30 minutes).
    w.quiz_id = w.exam(title="쪽지 시험", kind="quiz", duration_minutes=10,
                       items_per_difficulty={"easy": 1, "medium": 1, "hard": 1})["id"]
    w.goto(OPENS + timedelta(minutes=5))
    return w


def new_page(browser, live_server):
    ctx = browser.new_context(base_url=live_server.url, locale="ko-KR", viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    return ctx, page


def browser_login(page, users, username: str) -> None:
    page.goto("/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(users.passwords[username])
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/login/otp$"))
    page.locator("input[name=code]").fill(users.code(username))
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_test_id("dashboard")).to_be_visible()


def staff_get(w, path: str) -> dict:
    r = w.client.get(path, headers=w.ah())
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def incidents(w, attempt_id: int) -> list[str]:
    events = staff_get(w, f"/api/v1/attempts/{attempt_id}/events")["events"]
    return [e["detail"] for e in events if e["kind"] == "incident"]


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    until = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > until:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_exm8_exm9_learner_takes_the_exam_in_fullscreen_incidents_recorded_and_submits(
        app, users, world, browser, live_server):
    w = world
    ctx, page = new_page(browser, live_server)
    browser_login(page, users, "lea")

    # The dashboard leads to the notice board, and on to the exam's notice (EXM-7).
    page.get_by_role("link", name="시험 공지").click()
    page.locator(f'tr[data-exam-id="{w.exam_id}"]').get_by_role("link", name="시험 안내").click()
    expect(page.get_by_test_id("exam-notice")).to_contain_text("나의 제한 시간")
    expect(page.get_by_test_id("my-time")).to_contain_text("60분")

    page.screenshot(path=os.path.join(SCREENSHOT_DIR, "exam_notice.png"), full_page=True)

    # EXM-8: a wrong code is refused; a fresh one enters.
    page.get_by_test_id("exam-agree").check()
    page.get_by_test_id("exam-otp").fill("000000")
    page.get_by_test_id("enter-exam").click()
    expect(page.get_by_test_id("enter-error")).to_contain_text("OTP 코드가 맞지 않거나")
    page.get_by_test_id("exam-otp").fill(users.code("lea"))
    page.get_by_test_id("enter-exam").click()
    expect(page).to_have_url(re.compile(r"/attempts/\d+/take$"))
    attempt_id = int(re.search(r"/attempts/(\d+)/take$", page.url).group(1))

    # Before fullscreen the items stay hidden; the clock already runs from the server's deadline.
    gate = page.get_by_test_id("exam-gate")
    expect(gate).to_contain_text("전체 화면에서만")
    expect(page.get_by_test_id("exam-items")).to_be_hidden()
    expect(page.get_by_test_id("exam-timer")).to_have_text(re.compile(r"^(59|60):\d\d$"))
    assert page.evaluate("document.fullscreenElement") is None
    page.screenshot(path=os.path.join(SCREENSHOT_DIR, "exam_gate.png"))
    page.get_by_test_id("exam-fullscreen").click()  # "전체 화면으로 시작": a user gesture
    page.wait_for_function("document.fullscreenElement === document.documentElement")
    expect(page.get_by_test_id("exam-items")).to_be_visible()
    expect(gate).to_be_hidden()

    # The exam's text cannot be selected; answer fields can.
    single = page.locator('fieldset[data-kind="single_choice"]')
    short = page.locator('fieldset[data-kind="short_answer"]')
    assert single.locator(".prompt").evaluate("e => getComputedStyle(e).userSelect") == "none"
    assert short.locator("input").evaluate("e => getComputedStyle(e).userSelect") == "text"

    # Answer the single-choice item correctly (its key: choice n % 4 of item n) and the
    # short answer; both autosave, the indicator shows the save time.
    n = int(re.search(r"문항 (\d+)", single.locator(".prompt").inner_text()).group(1))
    key_text = ["가", "나", "다", "라"][n % 4]
    single.locator("label.choice", has_text=re.compile(rf"^\d+\.\s*{key_text}$")).click()
    expect(single.locator(".item-state")).to_have_text(re.compile(r"^저장됨 \d\d:\d\d:\d\d$"))
    short.locator("input").type("서울")
    expect(short.locator(".item-state")).to_have_text(re.compile(r"^저장됨 \d\d:\d\d:\d\d$"))
    expect(page.get_by_test_id("exam-save")).to_have_text(re.compile(r"^저장됨 \d\d:\d\d:\d\d$"))
    page.screenshot(path=os.path.join(SCREENSHOT_DIR, "exam_lockdown.png"), full_page=True)

    # The answers arrived server-side (staff view: original choice order, the typed text).
    detail = staff_get(w, f"/api/v1/attempts/{attempt_id}")
    by_kind = {it["kind"]: it for it in detail["items"]}
    assert by_kind["single_choice"]["answer_original"] == by_kind["single_choice"]["key"]
    assert by_kind["short_answer"]["answer_original"] == "서울"
    assert by_kind["multiple_choice"]["answer_original"] is None
    assert incidents(w, attempt_id) == []

    # EXM-9: leaving fullscreen is an incident, and the items are hidden until the learner returns.
    page.evaluate("document.exitFullscreen()")
    page.wait_for_function("document.fullscreenElement === null")
    expect(gate).to_be_visible()
    expect(gate).to_contain_text("전체 화면이 해제되어")
    expect(page.get_by_test_id("exam-items")).to_be_hidden()
    expect(page.get_by_test_id("exam-alert")).to_contain_text("전체 화면 해제")
    wait_for(lambda: any(d.startswith("fullscreen_exit") for d in incidents(w, attempt_id)), what="fullscreen_exit")
    expect(page.get_by_test_id("exam-fullscreen")).to_have_text("전체 화면으로 돌아가기")
    page.get_by_test_id("exam-fullscreen").click()
    page.wait_for_function("document.fullscreenElement === document.documentElement")
    expect(page.get_by_test_id("exam-items")).to_be_visible()

    # A copy attempt (Ctrl+C in the answer field) is blocked and recorded; so is the context menu.
    field = short.locator("input")
    field.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Control+C")
    wait_for(lambda: any(d.startswith("copy") for d in incidents(w, attempt_id)), what="copy incident")
    assert page.evaluate("navigator.clipboard ? 1 : 0") in (0, 1)
    single.locator(".prompt").click(button="right")
    wait_for(lambda: any(d.startswith("contextmenu") for d in incidents(w, attempt_id)), what="contextmenu")
    expect(field).to_have_value("서울")  # nothing was cut or replaced

    # Submit, with confirmation (one item unanswered); objective-only: the score is shown.
    page.get_by_test_id("exam-submit").click()
    expect(page.get_by_test_id("exam-confirm")).to_contain_text("답하지 않은 문항이 1개")
    page.get_by_test_id("exam-confirm-submit").click()
    result = page.get_by_test_id("exam-result")
    expect(result).to_contain_text("답안이 제출되었습니다.")
    expect(page.get_by_test_id("exam-score")).to_have_text("점수: 4 / 7점")
    page.wait_for_function("document.fullscreenElement === null")  # released after submission

    detail = staff_get(w, f"/api/v1/attempts/{attempt_id}")
    assert detail["submitted_at"] is not None and detail["submit_reason"] == "learner"
    assert detail["open"] is False and detail["score"] == 4.0
    found = incidents(w, attempt_id)
    # Exactly one fullscreen exit: leaving fullscreen after submitting is no incident.
    assert sum(d.startswith("fullscreen_exit") for d in found) == 1, found
    assert detail["incidents"] == len(found) >= 3
    assert page.js_errors == []
    # A reload shows the result, not the exam.
    page.reload()
    expect(page.get_by_test_id("exam-over")).to_contain_text("답안이 제출되었습니다.")
    expect(page.get_by_test_id("exam-score")).to_have_text("점수: 4 / 7점")
    ctx.close()

    # The instructor's monitor shows the attempt with its incidents; the evidence lists them.
    ctx, prof = new_page(browser, live_server)
    browser_login(prof, users, "prof")
    prof.goto(f"/exams/{w.exam_id}/monitor")
    row = prof.locator(f'tr[data-attempt-id="{attempt_id}"]')
    expect(row.locator('td[data-field="incidents"]')).to_have_text(str(len(found)))
    expect(row.locator('td[data-field="submitted"]')).to_contain_text("학습자 제출")
    prof.screenshot(path=os.path.join(SCREENSHOT_DIR, "exam_monitor.png"), full_page=True)
    row.get_by_role("link", name="증거 기록").click()
    expect(prof.get_by_test_id("evidence-events")).to_contain_text("전체 화면 해제")
    expect(prof.locator("tr.incident")).to_have_count(len(found))
    prof.screenshot(path=os.path.join(SCREENSHOT_DIR, "exam_evidence.png"), full_page=True)
    assert prof.js_errors == []
    ctx.close()


def test_exm9_the_clock_follows_the_servers_deadline_and_submits_at_zero(
        app, users, world, browser, live_server, monkeypatch):
    """EXM-4, EXM-10: the countdown is re-synced from the server (here: its clock jumps to
    3 s before the deadline); at zero the page submits the saved answers itself and the
    attempt is closed at its deadline."""
    monkeypatch.setitem(app.config, "EXAM_SYNC_SECONDS", 1)
    w = world
    ctx, page = new_page(browser, live_server)
    browser_login(page, users, "lea")
    page.goto(f"/exams/{w.quiz_id}")
    page.get_by_test_id("exam-agree").check()
    page.get_by_test_id("exam-otp").fill(users.code("lea"))
    page.get_by_test_id("enter-exam").click()
    expect(page).to_have_url(re.compile(r"/attempts/\d+/take$"))
    attempt_id = int(re.search(r"/attempts/(\d+)/take$", page.url).group(1))
    page.get_by_test_id("exam-fullscreen").click()
    page.wait_for_function("document.fullscreenElement !== null")
    short = page.locator('fieldset[data-kind="short_answer"]')
    short.locator("input").type("서울")
    expect(short.locator(".item-state")).to_have_text(re.compile(r"^저장됨 "))
    expect(page.get_by_test_id("exam-timer")).to_have_text(re.compile(r"^(09|10):\d\d$"))

    deadline = staff_get(w, f"/api/v1/attempts/{attempt_id}")["deadline"]
    set_clock(app, datetime.fromisoformat(deadline) - timedelta(seconds=3))
    expect(page.get_by_test_id("exam-timer")).to_have_text(re.compile(r"^00:0[0-4]$"), timeout=5_000)
    expect(page.get_by_test_id("exam-result")).to_contain_text("답안이 제출되었습니다.", timeout=15_000)
    expect(page.get_by_test_id("exam-score")).to_have_text("점수: 2 / 7점")
    detail = staff_get(w, f"/api/v1/attempts/{attempt_id}")
    assert detail["submit_reason"] == "deadline" and detail["submitted_at"] == deadline
    assert detail["score"] == 2.0
    assert page.js_errors == []
    ctx.close()
