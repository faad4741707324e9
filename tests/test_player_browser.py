"""The lesson player in a real browser (headless Chromium, Playwright) against the app on
a real socket: a learner consents to the syllabus (ENR-2), plays a short generated lesson
to the end in real time (the server credits at most real time × rate + 2 s, ATT-4),
answers the presence challenge the player shows (ATT-4), and the lesson is then
*attended* (ATT-1) on the learner's course page; leaving the player ends the view (REC-1).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from conftest import bearer

pytestmark = pytest.mark.browser

VIDEO_SECONDS = 4
SCREENSHOT_DIR = os.environ.get("LMS_SCREENSHOT_DIR", "/tmp")


@pytest.fixture(scope="module")
def short_video(tmp_path_factory) -> Path:
    """A 4-second VP8 WebM (Debian's Chromium plays VP8)."""
    assert shutil.which("ffmpeg"), "ffmpeg is missing: apt-get install -y ffmpeg"
    out = tmp_path_factory.mktemp("player") / "lesson.webm"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc=duration={VIDEO_SECONDS}:size=320x240:rate=15", "-c:v", "libvpx", "-b:v", "200k",
                    str(out)], check=True, timeout=120)
    return out


def today_kst():
    from lms import clock

    return clock.real_now().astimezone(clock.KST).date()


@pytest.fixture
def lesson_setup(app, client, users, admin_token, short_video):
    """A course starting today (KST) with two week-1 lessons — the first with the 4 s video
    uploaded (its duration read from the file), the second without a video yet — and an
    enrolled learner who has not yet consented to the syllabus."""
    from lms import clock

    with app.app_context():
        clock.reset()
    h = bearer(admin_token)
    r = client.post("/api/v1/courses", json={"code": "PLAY1", "title": "플레이어 시험 과정", "credits": 3,
                                             "starts_on": today_kst().isoformat(), "weeks": 15, "capacity": 10},
                    headers=h)
    assert r.status_code == 201, r.get_json()
    course_id = r.get_json()["id"]
    lessons = []
    for title in ("첫 차시", "둘째 차시"):
        r = client.post(f"/api/v1/courses/{course_id}/lessons",
                        json={"week": 1, "title": title, "duration_seconds": 1500}, headers=h)
        assert r.status_code == 201, r.get_json()
        lessons.append(r.get_json()["id"])
    with short_video.open("rb") as f:
        r = client.post(f"/api/v1/lessons/{lessons[0]}/media", data={"file": (f, "lesson.webm", "video/webm")},
                        headers=h, content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["duration_seconds"] == VIDEO_SECONDS
    learner_id = users.create("learner1", "learner", name="김학생")
    r = client.post(f"/api/v1/courses/{course_id}/enrollments", json={"user_id": learner_id}, headers=h)
    assert r.status_code == 201, r.get_json()
    return {"course_id": course_id, "lesson_id": lessons[0], "other_lesson_id": lessons[1], "learner_id": learner_id}


@pytest.fixture
def page(browser, live_server):
    ctx = browser.new_context(base_url=live_server.url, locale="ko-KR", viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(20_000)
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    ctx.close()


def browser_login(page, users, username: str) -> None:
    page.goto("/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(users.passwords[username])
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/login/otp$"))
    page.locator("input[name=code]").fill(users.code(username))
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_test_id("dashboard")).to_be_visible()


def view_events(app, lesson_id: int) -> list[str]:
    from lms.attendance.models import ViewEvent
    from lms.db import db

    with app.app_context():
        kinds = list(db.session.scalars(select(ViewEvent.kind).where(ViewEvent.lesson_id == lesson_id)
                                        .order_by(ViewEvent.id)))
        db.session.remove()
    return kinds


def test_learner_plays_a_lesson_to_the_end_answers_a_challenge_and_is_attended(
        app, users, client, admin_token, browser, live_server, lesson_setup, page, monkeypatch):
    """ATT-1, ATT-4, ENR-2, CRS-11: the player reports what was played, the learner answers
    the presence challenge, the lesson shows attended — and the TA's live board, open in
    another browser all along, shows the change without a reload."""
    # A heartbeat every second; a presence challenge after 1.5 s of credited playing.
    monkeypatch.setitem(app.config, "PLAYER_HEARTBEAT_SECONDS", 1)
    monkeypatch.setitem(app.config, "CHALLENGE_MIN_MINUTES", 1.5 / 60)
    monkeypatch.setitem(app.config, "CHALLENGE_MAX_MINUTES", 1.5 / 60)
    lesson_id = lesson_setup["lesson_id"]

    # The course's TA watches the live board (refreshing every second) in another browser.
    ta_id = users.create("ta1", "ta", name="박조교")
    r = client.post(f"/api/v1/courses/{lesson_setup['course_id']}/staff", json={"user_id": ta_id, "role": "ta"},
                    headers=bearer(admin_token))
    assert r.status_code == 201, r.get_json()
    ta_ctx = browser.new_context(base_url=live_server.url, locale="ko-KR")
    ta_ctx.set_default_timeout(20_000)
    board = ta_ctx.new_page()
    browser_login(board, users, "ta1")
    board.goto(f"/courses/{lesson_setup['course_id']}/board?refresh=1")
    attended_cell = board.locator(f'tr[data-learner-id="{lesson_setup["learner_id"]}"] td[data-field="attended"]')
    expect(attended_cell).to_have_text("0")
    board.evaluate("() => { window.__sameDocument = true; }")

    browser_login(page, users, "learner1")
    # The dashboard leads to the learner's courses, and on to the course.
    page.get_by_role("link", name="내 강의").click()
    page.get_by_role("link", name="플레이어 시험 과정").click()
    expect(page.get_by_test_id("course-page")).to_be_visible()
    row = page.locator(f"tr#lesson-{lesson_id}")
    expect(row).to_have_attribute("data-status", "pending")
    # First visit: the syllabus must be confirmed before any lesson can be played (ENR-2).
    expect(page.get_by_test_id(f"play-{lesson_id}")).to_have_count(0)
    page.get_by_test_id("consent-button").click()
    expect(page.get_by_test_id("syllabus-consent")).to_have_count(0)
    page.get_by_test_id(f"play-{lesson_id}").click()

    expect(page).to_have_url(re.compile(rf"/lessons/{lesson_id}/play$"))
    expect(page.get_by_test_id("player")).to_have_attribute("data-heartbeat-ms", "1000")
    # The view is open (the server answered) and the video's metadata has loaded.
    page.wait_for_function("() => window.lmsPlayer && window.lmsPlayer.viewId !== null "
                           "&& document.getElementById('lesson-video').readyState >= 1")
    assert page.evaluate("() => document.getElementById('lesson-video').duration") == pytest.approx(VIDEO_SECONDS, abs=0.2)
    # Only rates up to the maximum (1.0 by default) are offered.
    assert page.locator("#rate option").evaluate_all("os => os.map(o => o.value)") == ["0.75", "1"]
    expect(page.get_by_test_id("lesson-progress")).to_have_text("0%")
    expect(page.get_by_test_id("week-progress")).to_have_text("0%")

    # Play (muted: headless autoplay policy allows muted playback without a gesture).
    page.evaluate("() => { const v = document.getElementById('lesson-video'); v.muted = true; return v.play(); }")

    challenges = 0
    deadline = time.monotonic() + 60  # a bounded wait: a 4 s video, a challenge or two
    while True:
        page.wait_for_function(
            "() => document.getElementById('challenge').open"
            " || document.getElementById('lesson-progress').textContent.trim() === '100%'",
            timeout=30_000)
        if page.get_by_test_id("lesson-progress").inner_text().strip() == "100%" and \
                not page.evaluate("() => document.getElementById('challenge').open"):
            break
        # A presence challenge: the video is paused while it is pending.
        dialog = page.get_by_test_id("challenge")
        expect(dialog).to_be_visible()
        assert page.evaluate("() => document.getElementById('lesson-video').paused") is True
        code = page.get_by_test_id("challenge-code").inner_text().strip()
        assert re.fullmatch(r"\d{4,6}", code), code
        if challenges == 0:
            page.screenshot(path=os.path.join(SCREENSHOT_DIR, "player_challenge.png"))
            # A wrong code is refused and the dialog stays.
            wrong = "0000" if code != "0000" else "1111"
            page.get_by_test_id("challenge-input").fill(wrong[:len(code)])
            page.get_by_test_id("challenge-submit").click()
            expect(page.locator("#challenge-error")).not_to_be_empty()
            expect(dialog).to_be_visible()
        page.get_by_test_id("challenge-input").fill(code)
        page.get_by_test_id("challenge-submit").click()
        expect(dialog).to_be_hidden()
        challenges += 1
        assert time.monotonic() < deadline, "the lesson did not complete in time"

    assert challenges >= 1
    expect(page.get_by_test_id("lesson-status")).to_have_attribute("data-status", "attended")
    # One of the week's two lessons complete: the week is at 50%.
    expect(page.get_by_test_id("week-progress")).to_have_text("50%")
    expect(page.get_by_test_id("week-attended")).to_have_text("2차시 중 출석 1")
    assert page.js_errors == []
    page.screenshot(path=os.path.join(SCREENSHOT_DIR, "player_done.png"))

    # CRS-11: the TA's board shows the attended lesson within its refresh, without a reload.
    expect(attended_cell).to_have_text("1", timeout=12_000)
    assert board.evaluate("() => window.__sameDocument === true")
    ta_ctx.close()

    kinds = view_events(app, lesson_id)
    assert kinds[0] == "start" and "challenge" in kinds and "challenge_fail" in kinds and "challenge_ok" in kinds
    assert kinds.index("challenge") < kinds.index("challenge_ok")

    # Back to the course page: the lesson is attended; leaving the player ended the view.
    page.get_by_test_id("back-to-course").click()
    expect(page.get_by_test_id("course-page")).to_be_visible()
    expect(page.locator(f"tr#lesson-{lesson_id}")).to_have_attribute("data-status", "attended")
    expect(page.get_by_test_id(f"status-{lesson_id}")).to_have_text("출석")
    expect(page.locator(f"tr#lesson-{lesson_setup['other_lesson_id']}")).to_have_attribute("data-status", "pending")
    page.screenshot(path=os.path.join(SCREENSHOT_DIR, "course_attended.png"), full_page=True)

    from lms.attendance.models import LessonProgress, LessonView
    from lms.db import db

    with app.app_context():
        progress = db.session.scalar(select(LessonProgress).where(LessonProgress.lesson_id == lesson_id))
        assert progress.status == "attended" and progress.covered_seconds == VIDEO_SECONDS
        assert progress.completed_at is not None
        db.session.remove()
    for _ in range(50):  # bounded wait for the keepalive /end sent on pagehide
        with app.app_context():
            view = db.session.scalar(select(LessonView).where(LessonView.lesson_id == lesson_id)
                                     .order_by(LessonView.id.desc()))
            reason = view.end_reason
            excess = view.suspicious_excess_seconds
            db.session.remove()
        if reason is not None:
            break
        time.sleep(0.1)
    assert reason == "ended"
    # What the player reported was real playing: nothing was discarded as excess.
    assert excess == 0


def test_hiding_the_page_pauses_and_reports(app, users, lesson_setup, page, monkeypatch):
    """The player pauses when the page is hidden and reports what was played at once."""
    monkeypatch.setitem(app.config, "PLAYER_HEARTBEAT_SECONDS", 10)
    monkeypatch.setitem(app.config, "CHALLENGE_MIN_MINUTES", 0)
    lesson_id = lesson_setup["lesson_id"]
    from lms.db import db
    from lms.enrolment.models import Enrollment
    from lms import clock

    with app.app_context():
        e = db.session.scalar(select(Enrollment).where(Enrollment.user_id == lesson_setup["learner_id"]))
        e.syllabus_consent_at = clock.now()
        db.session.commit()
    browser_login(page, users, "learner1")
    page.goto(f"/lessons/{lesson_id}/play")
    page.wait_for_function("() => window.lmsPlayer && window.lmsPlayer.viewId !== null "
                           "&& document.getElementById('lesson-video').readyState >= 1")
    page.evaluate("() => { const v = document.getElementById('lesson-video'); v.muted = true; return v.play(); }")
    page.wait_for_function("() => document.getElementById('lesson-video').currentTime >= 1.5")
    # The page goes to the background (as switching tabs does).
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
        Object.defineProperty(document, 'hidden', {value: true, configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    assert page.evaluate("() => document.getElementById('lesson-video').paused") is True
    expect(page.get_by_test_id("player-status")).to_contain_text("화면을 벗어나")
    # Long before the 10 s heartbeat, the played span is reported and credited.
    from lms.attendance.models import LessonProgress

    covered = 0
    for _ in range(50):
        with app.app_context():
            covered = db.session.scalar(select(LessonProgress.covered_seconds)
                                        .where(LessonProgress.lesson_id == lesson_id)) or 0
            db.session.remove()
        if covered >= 1:
            break
        time.sleep(0.1)
    assert covered >= 1
    assert "heartbeat" in view_events(app, lesson_id)
    assert page.js_errors == []
